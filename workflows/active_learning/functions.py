"""Calcfunctions of the active-learning loop, so the provenance graph shows how every frame was chosen.

* :func:`merge_datasets`: one dataset from several (the running training set);
* :func:`select_frames`: explored MD frames + committee deviations -> frames to label and a record of
  every frame's class (accurate / candidate / failed);
* :func:`calibrate_committee`: committee deviation vs true error on the frames just labelled.

The decisions themselves are the plain classes of :mod:`ionfield.models.active_learning`.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ionfield.models.active_learning.calibration import calibrate, frame_max_error
from ionfield.models.active_learning.descriptors import descriptor_matrix
from ionfield.models.active_learning.selection import FrameSelector
from ionfield.models.active_learning.trust import FAILED, TrustLevels
from ionfield.models.data.dataset import Dataset
from ionfield.plugins.data.dataset import DatasetData

__all__ = ('calibrate_committee', 'explored_frames', 'merge_datasets', 'select_frames')

DESCRIPTOR_R_MAX = 5.0
DESCRIPTOR_BINS = 24


@calcfunction
def merge_datasets(**datasets: DatasetData) -> DatasetData:
    """The frames of all ``datasets`` (in key order); a frame whose source calculation is already in wins once."""
    frames, seen = [], set()
    for key in sorted(datasets):
        for frame in datasets[key].get_dataset():
            if frame.source_uuid and frame.source_uuid in seen:
                continue
            seen.add(frame.source_uuid)
            frames.append(frame)
    return DatasetData(Dataset(frames))


def explored_frames(trajectory, uncertainty) -> tuple[list, np.ndarray, np.ndarray | None]:
    """(atoms, force deviation, Z* deviation) of every trajectory frame that was also monitored.

    The committee is evaluated every ``monitor_every`` steps and a frame written every
    ``trajectory_every`` steps; frames are matched to deviations by step.
    """
    data = trajectory.read()
    steps = np.asarray(uncertainty.get_array('step')).astype(int)
    force = np.asarray(uncertainty.get_array('max_force_deviation_eV_A'), dtype=float)
    names = uncertainty.get_arraynames()
    bec = (
        np.asarray(uncertainty.get_array('max_bec_deviation_e'), dtype=float)
        if 'max_bec_deviation_e' in names
        else None
    )
    where = {int(step): k for k, step in enumerate(steps)}
    atoms, rows = [], []
    for index, step in enumerate(np.asarray(data.steps).astype(int)):
        if int(step) in where:
            atoms.append(data.atoms(index))
            rows.append(where[int(step)])
    rows = np.asarray(rows, dtype=int)
    bec_rows = bec[rows] if bec is not None and len(rows) and np.isfinite(bec[rows]).any() else None
    return atoms, force[rows] if len(rows) else np.zeros(0), bec_rows


@calcfunction
def select_frames(parameters: orm.Dict, dataset: DatasetData, **explored) -> dict:
    """Classify every explored frame and pick the frames to label.

    ``parameters``: ``trust`` (TrustLevels as a dict), ``cap``, ``seed``, ``species``, ``prefix`` (for
    the output names). ``explored``: ``trajectory_<task>`` and ``uncertainty_<task>`` per MD task.
    Outputs ``selected_<prefix>_<k>`` structures (labelled with task and step) and ``record``, a Dict
    with every frame's task, step, deviations and class, the counts and shares, and the selected and
    failed frames (failed frames are kept here as a record, never labelled).
    """
    values = parameters.get_dict()
    trust = TrustLevels(**values['trust'])
    species = list(values['species'])
    tasks = sorted(key.removeprefix('trajectory_') for key in explored if key.startswith('trajectory_'))
    frames, force, bec, origin = [], [], [], []
    for task in tasks:
        atoms, f_dev, z_dev = explored_frames(explored[f'trajectory_{task}'], explored[f'uncertainty_{task}'])
        frames += atoms
        force += [float(x) for x in f_dev]
        bec += [None] * len(atoms) if z_dev is None else [float(x) for x in z_dev]
        origin += [(task, int(a.info['step'])) for a in atoms]
    reference = descriptor_matrix(dataset.get_dataset().to_ase(), species, DESCRIPTOR_R_MAX, DESCRIPTOR_BINS)
    descriptors = descriptor_matrix(frames, species, DESCRIPTOR_R_MAX, DESCRIPTOR_BINS)
    selector = FrameSelector(trust, cap=int(values['cap']), seed=int(values['seed']))
    selection = selector.select(force, descriptors, bec, reference=reference)
    record = {
        'frames': [
            {'task': task, 'step': step, 'force_deviation': f, 'bec_deviation': z, 'class': name}
            for (task, step), f, z, name in zip(origin, force, bec, selection.classes, strict=False)
        ],
        **selection.to_dict(),
        'n_frames': len(frames),
        'trust': trust.to_dict(),
        'failed_frames': [{'task': origin[k][0], 'step': origin[k][1]} for k in selection.indices(FAILED)],
    }
    outputs = {'record': orm.Dict(record)}
    prefix = values.get('prefix', 'sel')
    for rank, index in enumerate(selection.selected):
        task, step = origin[index]
        structure = orm.StructureData(ase=frames[index])
        structure.label = f'{task} step {step} (force deviation {force[index]:.3f} eV/Å)'[:255]
        outputs[f'{prefix}_{rank:03d}'] = structure
    return outputs


@calcfunction
def calibrate_committee(committee, dataset: DatasetData, deviations: orm.List, trust: orm.Dict) -> orm.Dict:
    """Committee-mean error vs committee deviation on freshly labelled frames.

    ``deviations``: one dict per frame of ``dataset`` (same order) with the ``force_deviation`` and
    ``bec_deviation`` the frame had at selection time. Returns per-quantity RMSE/max of the true
    frame errors, the error/deviation ratio, the rank correlation and the rescaled (suggested) levels.
    """
    from ionfield.models.potential.devices import limit_threads

    limit_threads()
    frames = list(dataset.get_dataset())
    known_deviations = deviations.get_list()
    if len(known_deviations) != len(frames):
        raise ValueError(f'{len(known_deviations)} deviations for {len(frames)} frames')
    with committee.evaluator() as evaluator:
        predictions = evaluator.evaluate([frame.to_ase() for frame in frames])
    force_dev, force_err, bec_dev, bec_err = [], [], [], []
    for frame, prediction, known in zip(frames, predictions, known_deviations, strict=False):
        force_dev.append(known.get('force_deviation'))
        force_err.append(frame_max_error(prediction.forces, frame.forces) if frame.has_forces else None)
        if frame.has_born_charges and prediction.born_charges is not None:
            bec_dev.append(known.get('bec_deviation'))
            bec_err.append(frame_max_error(prediction.born_charges, frame.born_charges_asr))
    result = calibrate(TrustLevels(**trust.get_dict()), force_dev, force_err, bec_dev, bec_err)
    return orm.Dict({**result.to_dict(), 'force_errors': force_err, 'bec_errors': bec_err})
