"""Predictions of a model on a dataset, and the errors we report (in meV and e).

Units: energy MAE in meV/atom, force MAE/RMSE in meV/Å, stress MAE in meV/Å³, Z* MAE/RMSE in e.
Errors are taken over the labels that exist (missing Z* or stress are skipped), with Z* compared
against the ASR-corrected labels, which is what the head is trained on.
"""

from __future__ import annotations

import numpy as np

from ionfield.models.data.dataset import Dataset
from ionfield.models.keys import BORN_CHARGES


def predict(calculator, dataset: Dataset) -> dict[str, list[np.ndarray]]:
    """Energy, forces, stress (3x3) and Z* (or None) for every frame."""
    out: dict[str, list] = {'energy': [], 'forces': [], 'stress': [], 'born_charges': []}
    for frame in dataset:
        atoms = frame.to_ase()
        atoms.calc = calculator
        out['energy'].append(float(atoms.get_potential_energy()))
        out['forces'].append(np.array(atoms.get_forces()))
        out['stress'].append(np.array(atoms.get_stress(voigt=False)))
        out['born_charges'].append(calculator.results.get(BORN_CHARGES))
    return out


def _mae(errors: list[np.ndarray]) -> float | None:
    if not errors:
        return None
    return float(np.mean(np.abs(np.concatenate([np.ravel(e) for e in errors]))))


def _rmse(errors: list[np.ndarray]) -> float | None:
    if not errors:
        return None
    return float(np.sqrt(np.mean(np.square(np.concatenate([np.ravel(e) for e in errors])))))


def error_metrics(dataset: Dataset, predictions: dict[str, list]) -> dict[str, float | None]:
    """MAE/RMSE per label kind; ``None`` where the dataset has no such label."""
    de, df, ds, dz = [], [], [], []
    for i, frame in enumerate(dataset):
        if frame.has_energy:
            de.append(np.array([(predictions['energy'][i] - frame.energy) / frame.natoms]))
        if frame.has_forces:
            df.append(predictions['forces'][i] - frame.forces)
        if frame.has_stress:
            ds.append(predictions['stress'][i] - frame.stress)
        born = predictions['born_charges'][i]
        if frame.has_born_charges and born is not None:
            dz.append(born - frame.born_charges_asr)
    scale = {'energy': 1000.0, 'forces': 1000.0, 'stress': 1000.0}
    metrics = {
        'energy_mae_mev_per_atom': _mae(de),
        'energy_rmse_mev_per_atom': _rmse(de),
        'forces_mae_mev_per_a': _mae(df),
        'forces_rmse_mev_per_a': _rmse(df),
        'stress_mae_mev_per_a3': _mae(ds),
        'bec_mae_e': _mae(dz),
        'bec_rmse_e': _rmse(dz),
    }
    for key in list(metrics):
        kind = key.split('_')[0]
        if metrics[key] is not None and kind in scale:
            metrics[key] *= scale[kind]
    metrics['n_frames'] = len(dataset)
    metrics['n_bec_frames'] = len(dz)
    return metrics
