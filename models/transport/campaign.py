"""What a campaign shows across its conditions: Arrhenius fits, field enhancement, drift vs field,
the off-diagonal ablation and anisotropy, with the warnings a reader must see.

Input: the condition summaries of :func:`~.condition.analyse_condition` (plain dicts, as stored in
``Dict`` nodes), so a summary can be rebuilt from the database without re-reading trajectories.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from .arrhenius import arrhenius_fit
from .drift import linear_response

ARRHENIUS_DIRECTIONS = ('xyz', 'x', 'y', 'z')


def _rounded(values, digits: int = 6) -> tuple:
    return tuple(round(float(x), digits) for x in values)


def _zero_field(condition: dict) -> bool:
    return condition['field_magnitude_V_per_A'] == 0


def summarise_campaign(conditions: Sequence[dict], failures: Sequence[dict] = (), seed: int = 0) -> dict:
    """The campaign summary (JSON-able). ``failures``: MD runs that gave no usable trajectory."""
    warnings: list[str] = []
    controls = {(c['structure'], c['temperature_K']): c for c in conditions if _zero_field(c)}
    for structure, temperature in sorted({(c['structure'], c['temperature_K']) for c in conditions}):
        if (structure, temperature) not in controls:
            warnings.append(
                f'{structure} at {temperature:g} K has no E = 0 control: field effects cannot be told apart from '
                'thermal motion, and no zero-field D enters the Arrhenius fit; add the field 0 0 0'
            )
    for condition in conditions:
        warnings.extend(f'{condition["key"]}: {w}' for w in condition.get('warnings', []))
    for failure in failures:
        warnings.append(f'{failure.get("key")}: MD failed ({failure.get("message", "no message")}); not analysed')
    summary = {
        'n_conditions': len(conditions),
        'structures': sorted({c['structure'] for c in conditions}),
        'arrhenius': _arrhenius(controls.values(), seed),
        'field_enhancement': _enhancement(conditions, controls),
        'drift_vs_field': _drift_series(conditions, controls),
        'ablation': _ablation(conditions),
        'anisotropy': _anisotropy(controls.values()),
        'failures': list(failures),
        'warnings': warnings,
    }
    for entry in summary['arrhenius']:
        if entry['fit']['status'] != 'ok' and entry['direction'] == 'xyz':
            warnings.append(f'Arrhenius {entry["structure"]} {entry["species"]}: {entry["fit"]["reason"]}')
    return summary


def _arrhenius(controls, seed: int) -> list[dict]:
    grouped = defaultdict(list)
    for condition in controls:
        for species, result in condition['species'].items():
            for direction in ARRHENIUS_DIRECTIONS:
                grouped[(condition['structure'], species, direction)].append(
                    (condition['temperature_K'], result['D'].get(direction, {}))
                )
    entries = []
    for (structure, species, direction), points in sorted(grouped.items()):
        usable = sorted((t, d['mean'], d['std']) for t, d in points if d.get('status') == 'ok' and d['mean'] > 0)
        skipped = sorted(t for t, d in points if d.get('status') != 'ok')
        if usable:
            temperatures, means, stds = (np.array(column) for column in zip(*usable, strict=True))
        else:
            temperatures = means = stds = np.array([])
        fit = arrhenius_fit(temperatures, means, stds, seed=seed)
        entries.append(
            {
                'structure': structure,
                'species': species,
                'direction': direction,
                'fit': fit,
                'not_diffusive_K': skipped,
            }
        )
    return entries


def _enhancement(conditions, controls) -> list[dict]:
    """MSD along E under field over the zero-field MSD along the same direction, at the longest lag."""
    entries = []
    for condition in conditions:
        if _zero_field(condition):
            continue
        control = controls.get((condition['structure'], condition['temperature_K']))
        if control is None:
            continue
        n = np.asarray(condition['field_direction'])
        for species, result in condition['species'].items():
            if species not in control['species']:
                continue
            tensor0 = np.asarray(control['species'][species]['msd_tensor_final_A2'])
            along0 = float(n @ tensor0 @ n)
            across0 = float(np.trace(tensor0) - along0)
            entry = {
                'key': condition['key'],
                'structure': condition['structure'],
                'species': species,
                'temperature_K': condition['temperature_K'],
                'field_magnitude_V_per_A': condition['field_magnitude_V_per_A'],
                'bec_mode': condition['bec_mode'],
                'msd_along_A2': result['msd_final_A2']['along'],
                'msd_along_control_A2': along0,
                'msd_along_ratio': result['msd_final_A2']['along'] / along0 if along0 > 0 else None,
                'msd_across_ratio': result['msd_final_A2']['across'] / across0 if across0 > 0 else None,
            }
            if abs(condition['duration_ps'] - control['duration_ps']) > 0.01 * control['duration_ps']:
                entry['note'] = (
                    f'durations differ ({condition["duration_ps"]:g} vs {control["duration_ps"]:g} ps): the ratio '
                    'compares MSDs at different times'
                )
            entries.append(entry)
    return entries


def _drift_series(conditions, controls) -> list[dict]:
    grouped = defaultdict(list)
    for condition in conditions:
        if _zero_field(condition):
            continue
        key = (condition['structure'], condition['temperature_K'], condition['bec_mode'])
        grouped[key + (_rounded(condition['field_direction'], 3),)].append(condition)
    series = []
    for (structure, temperature, bec_mode, direction), members in sorted(grouped.items()):
        members = sorted(members, key=lambda c: c['field_magnitude_V_per_A'])
        for species in members[0]['species']:
            drifts = [m['species'][species]['drift'] for m in members if species in m['species']]
            fields = [m['field_magnitude_V_per_A'] for m in members if species in m['species']]
            entry = {
                'structure': structure,
                'species': species,
                'temperature_K': temperature,
                'bec_mode': bec_mode,
                'field_direction': list(direction),
                'velocity_along_A_per_fs': [d['velocity_along_A_per_fs'] for d in drifts],
                'velocity_along_error_A_per_fs': [d['velocity_along_error_A_per_fs'] for d in drifts],
                'velocity_across_A_per_fs': [d['velocity_across_A_per_fs'] for d in drifts],
                **linear_response(
                    np.array(fields),
                    np.array([d['velocity_along_A_per_fs'] for d in drifts]),
                    np.array([d['velocity_along_error_A_per_fs'] for d in drifts]),
                ),
            }
            control = controls.get((structure, temperature))
            if control is not None and species in control['species']:
                drift0 = control['species'][species]['drift']
                entry['control_velocity_A_per_fs'] = drift0['velocity_along_A_per_fs']
                entry['control_velocity_error_A_per_fs'] = drift0['velocity_along_error_A_per_fs']
            einstein = einstein_mobility_along((control or {}).get('species', {}).get(species, {}), direction)
            if einstein is not None:
                entry['einstein_mobility_cm2_per_Vs'] = einstein
            series.append(entry)
    return series


def einstein_mobility_along(control: dict, direction) -> float | None:
    """Einstein mobility q D_n / kT of the E = 0 control along the series' field direction n.

    At E = 0 the control's own "along" axis is z, which is not the field's direction in general, and in an
    anisotropic conductor (Li3N: in-plane vs c) the two differ. D_n = sum_a n_a^2 D_aa from the control's
    per-axis D (the cross terms of a crystal's D vanish along its axes); ``None`` when any of them is missing.
    """
    d, einstein = control.get('D', {}), control.get('einstein_mobility_along') or {}
    needed = [einstein, d.get('along', {}), *(d.get(axis, {}) for axis in 'xyz')]
    if any(entry.get('status') != 'ok' for entry in needed) or not d['along']['mean']:
        return None
    factor = einstein['mean'] / d['along']['mean']  # q / kT in the control's units
    n = np.asarray(direction, dtype=float)
    n = n / np.linalg.norm(n)
    return float(factor * sum(n[a] ** 2 * d[axis]['mean'] for a, axis in enumerate('xyz')))


def _ablation(conditions) -> list[dict]:
    """Each Z* mode against ``full`` at the same system, T and field: drift and MSD ratios."""
    by_run = defaultdict(dict)
    for condition in conditions:
        if _zero_field(condition):
            continue
        key = (condition['structure'], condition['temperature_K'], _rounded(condition['field_V_per_A']))
        by_run[key][condition['bec_mode']] = condition
    entries = []
    for (structure, temperature, field), modes in sorted(by_run.items()):
        full = modes.get('full')
        if full is None:
            continue
        for mode, condition in sorted(modes.items()):
            if mode == 'full':
                continue
            for species, result in condition['species'].items():
                reference = full['species'].get(species)
                if reference is None:
                    continue
                v, v_full = result['drift']['velocity_along_A_per_fs'], reference['drift']['velocity_along_A_per_fs']
                e, e_full = (
                    result['drift']['velocity_along_error_A_per_fs'],
                    reference['drift']['velocity_along_error_A_per_fs'],
                )
                ratio = v / v_full if v_full else None
                ratio_error = (
                    abs(ratio) * np.hypot(e / v if v else np.inf, e_full / v_full) if ratio is not None else None
                )
                entries.append(
                    {
                        'structure': structure,
                        'species': species,
                        'temperature_K': temperature,
                        'field_V_per_A': list(field),
                        'mode': mode,
                        'drift_along_ratio_to_full': ratio,
                        'drift_along_ratio_error': float(ratio_error) if ratio_error is not None else None,
                        'drift_across_A_per_fs': result['drift']['velocity_across_A_per_fs'],
                        'drift_across_full_A_per_fs': reference['drift']['velocity_across_A_per_fs'],
                        'msd_along_ratio_to_full': result['msd_final_A2']['along'] / reference['msd_final_A2']['along']
                        if reference['msd_final_A2']['along'] > 0
                        else None,
                    }
                )
    return entries


def _anisotropy(controls) -> list[dict]:
    entries = []
    for condition in sorted(controls, key=lambda c: (c['structure'], c['temperature_K'])):
        for species, result in condition['species'].items():
            d = result['D']
            if not all(d.get(axis, {}).get('status') == 'ok' for axis in 'xyz'):
                continue
            values = {axis: d[axis]['mean'] for axis in 'xyz'}
            errors = {axis: d[axis]['std'] for axis in 'xyz'}
            in_plane = 0.5 * (values['x'] + values['y'])
            in_plane_error = 0.5 * np.hypot(errors['x'], errors['y'])
            ratio = in_plane / values['z'] if values['z'] > 0 else None
            entries.append(
                {
                    'structure': condition['structure'],
                    'species': species,
                    'temperature_K': condition['temperature_K'],
                    'D_cm2_per_s': values,
                    'D_std_cm2_per_s': errors,
                    'xy_over_z': ratio,
                    'xy_over_z_error': float(ratio * np.hypot(in_plane_error / in_plane, errors['z'] / values['z']))
                    if ratio
                    else None,
                }
            )
    return entries
