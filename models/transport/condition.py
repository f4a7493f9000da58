"""Everything measured for one condition (a system at one T, one field, one Z* mode, all its replicas).

``analyse_condition`` returns a JSON-able summary (what a ``Dict`` node stores) and the MSD curves
(what an ``ArrayData`` node stores and the plots draw). Per mobile species:

* tracer MSD tensor curves (lab frame) and MSDs along / across the field;
* D* over x+y+z, along and across E, and per lab axis at E = 0 (anisotropy, e.g. Li3N ab vs c);
* the collective (jump) diffusion D_J, the Haven ratio H = D*/D_J, and the Nernst-Einstein and
  collective conductivities (formal charges), the Einstein mobility q D*_along / k_B T;
* the drift velocity along and across E and the drift mobility (a zero-field run gives the control,
  which should be zero within its error).

Under a field the MSD is 2Dt + (v t)²: every D (x+y+z, along, across) is fitted after the drift (the
reported drift velocity times t) is taken out of the displacements, and ``drift_removed`` says so.
The MSD curves and ``msd_final_A2`` keep the drift: the field enhancement of the MSD is defined with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ionfield.models.md.field import parse_field
from ionfield.models.md.trajectory import MDTrajectory

from .diffusion import (
    Estimate,
    KinisiDisplacements,
    collective_diffusion,
    conductivity_factor,
    diffusive_problem,
    einstein_mobility_factor,
    lag_indices,
    msd_curve,
    select,
    tracer_diffusion,
)
from .drift import drift_velocity, without_drift
from .replicas import AnalysisOptions, ReplicaSet, rotation_to_field

LAB_DIRECTIONS = {'xyz': (0, 1, 2), 'x': (0,), 'y': (1,), 'z': (2,)}
FIELD_DIRECTIONS = {'along': (2,), 'across': (0, 1)}


@dataclasses.dataclass
class ConditionResult:
    summary: dict
    curves: dict[str, np.ndarray]


def condition_key(structure: str, temperature_K: float, field, bec_mode: str) -> str:
    """A stable, readable key, e.g. ``li3n_T600_E0_0_0p1_full``."""
    field = [float(x) for x in field]
    parts = '_'.join(f'{x:g}'.replace('.', 'p').replace('-', 'm') for x in field)
    return f'{structure}_T{temperature_K:g}_E{parts}_{bec_mode}'.replace('.', 'p')


def analyse_condition(
    trajectories: Sequence[MDTrajectory],
    temperature_K: float,
    field=(0.0, 0.0, 0.0),
    bec_mode: str = 'full',
    options: AnalysisOptions | None = None,
    structure: str = 'system',
) -> ConditionResult:
    options = options or AnalysisOptions()
    options.validate()
    field = parse_field(field)
    magnitude = float(np.linalg.norm(field))
    replicas = ReplicaSet.from_trajectories(trajectories, options.equilibration_fs)
    mobile = replicas.mobile_species(options)
    rotation = rotation_to_field(field)
    direction = rotation.T @ np.array([0.0, 0.0, 1.0])  # the field direction (z at E = 0)
    corrected = replicas.framework_corrected(mobile)
    rotated = corrected @ rotation.T
    lags = lag_indices(replicas.n_frames, options.n_intervals, options.max_lag_fraction)
    lags_fs = lags * replicas.frame_fs
    curves = {'lag_ps': lags_fs / 1000.0}
    species_results = {}
    for species in mobile:
        index = replicas.indices(species)
        lab, field_frame = corrected[:, :, index], rotated[:, :, index]
        tensor, error = msd_curve(lab, lags)
        along = np.einsum('a,lab,b->l', direction, tensor, direction)
        total = np.trace(tensor, axis1=1, axis2=2)
        curves.update(
            {
                f'{species}_msd_tensor': tensor,
                f'{species}_msd_error': error,
                f'{species}_msd_along': along,
                f'{species}_msd_across': total - along,
            }
        )
        drift = drift_velocity(field_frame, replicas.frame_fs)
        result = {
            'n_ions': int(len(index)),
            'charge': options.charge(species),
            'msd_final_A2': {
                'xyz': float(total[-1]),
                'along': float(along[-1]),
                'across': float(total[-1] - along[-1]),
            },
            'msd_tensor_final_A2': tensor[-1].tolist(),
            'drift': drift.to_dict(magnitude),
            'drift_removed': magnitude > 0,
        }
        if magnitude > 0:  # every D is fitted to the motion about the drift; the MSDs above keep it
            lab = without_drift(lab, rotation.T @ drift.velocity, replicas.frame_fs)
            field_frame = without_drift(field_frame, drift.velocity, replicas.frame_fs)
            total = np.trace(msd_curve(lab, lags)[0], axis1=1, axis2=2)
        problem = diffusive_problem(lags_fs, total, options, what=species)
        numbers, collective_msd = _diffusion_numbers(
            replicas, lab, field_frame, lags, magnitude, temperature_K, species, options, problem
        )
        result.update(numbers)
        if collective_msd is not None:
            curves[f'{species}_msd_collective'] = collective_msd
        species_results[species] = result
    summary = {
        'structure': structure,
        'key': condition_key(structure, temperature_K, field, bec_mode),
        'temperature_K': float(temperature_K),
        'field_V_per_A': field.tolist(),
        'field_magnitude_V_per_A': magnitude,
        'field_direction': direction.tolist(),
        'bec_mode': bec_mode,
        'n_replicas': replicas.n_replicas,
        'n_frames': replicas.n_frames,
        'frame_fs': replicas.frame_fs,
        'duration_ps': replicas.duration_fs / 1000.0,
        'max_lag_ps': float(lags_fs[-1]) / 1000.0,
        'natoms': len(replicas.numbers),
        'volume_A3': replicas.volume_A3,
        'mobile_species': mobile,
        'options': options.to_dict(),
        'warnings': list(replicas.warnings),
        'species': species_results,
    }
    for species, result in species_results.items():
        if not result['diffusive']:
            summary['warnings'].append(f'{species}: {result["reason"]}')
    return ConditionResult(summary, curves)


def _diffusion_numbers(
    replicas, lab, field_frame, lags, magnitude, temperature_K, species, options, problem
) -> tuple[dict, np.ndarray | None]:
    """The fitted numbers of one species, and its collective MSD (E = 0 only)."""
    charge = options.charge(species)
    sigma = conductivity_factor(lab.shape[2], replicas.volume_A3, charge, temperature_K)
    directions = dict(LAB_DIRECTIONS) if magnitude == 0 else {'xyz': LAB_DIRECTIONS['xyz']}
    if problem is not None:
        missing = {name: Estimate.missing('cm^2/s', problem).to_dict() for name in [*directions, *FIELD_DIRECTIONS]}
        return {'diffusive': False, 'reason': problem, 'D': missing}, None

    def source(displacements, components):
        return KinisiDisplacements(select(displacements, components), replicas.frame_fs, lags, replicas.volume_A3)

    estimates = {name: tracer_diffusion(source(lab, c), options)[0] for name, c in directions.items()}
    for name, components in FIELD_DIRECTIONS.items():
        estimates[name] = tracer_diffusion(source(field_frame, components), options)[0]
    tracer = estimates['xyz']
    numbers = {
        'diffusive': True,
        'reason': '',
        'D': {name: estimate.to_dict() for name, estimate in estimates.items()},
        'conductivity_nernst_einstein': tracer.scaled(sigma, 'mS/cm').to_dict(),
        'einstein_mobility_along': estimates['along']
        .scaled(einstein_mobility_factor(charge, temperature_K), 'cm^2/(V s)')
        .to_dict(),
    }
    if magnitude > 0:
        why = 'under a field the centre-of-mass MSD is the drift squared; see the drift mobility'
        for name in ('D_collective', 'haven_ratio', 'conductivity_collective'):
            numbers[name] = {'status': 'not_applicable', 'unit': '', 'reason': why}
        return numbers, None
    collective, collective_msd = collective_diffusion(source(lab, (0, 1, 2)), options)
    n = min(len(tracer.samples), len(collective.samples))
    haven = Estimate.from_samples(tracer.samples[:n] / np.clip(collective.samples[:n], 1e-30, None), '')
    numbers.update(
        {
            'D_collective': collective.to_dict(),
            'haven_ratio': haven.to_dict(),
            'conductivity_collective': collective.scaled(sigma, 'mS/cm').to_dict(),
        }
    )
    return numbers, collective_msd
