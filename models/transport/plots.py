"""PNG figures of a campaign: MSD curves along / across E, the Arrhenius plot, drift velocity vs field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .arrhenius import arrhenius_curve
from .drift import MOBILITY_UNIT_FACTOR


def _pyplot():
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def _label(condition: dict) -> str:
    label = f'{condition["temperature_K"]:g} K, |E| {condition["field_magnitude_V_per_A"]:g} V/Å'
    if condition['field_magnitude_V_per_A'] > 0 and condition['bec_mode'] != 'full':
        label += f' ({condition["bec_mode"]})'
    return label


def plot_msd(conditions: Sequence[dict], curves: Mapping[str, Mapping], structure: str, species: str, path) -> Path:
    """Tracer MSD along and across the field, one line per condition of ``structure``."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    chosen = [c for c in conditions if c['structure'] == structure and species in c['species']]
    chosen.sort(key=lambda c: (c['temperature_K'], c['field_magnitude_V_per_A'], c['bec_mode']))
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(chosen), 1)))
    for colour, condition in zip(colours, chosen, strict=False):
        curve = curves.get(condition['key'])
        if curve is None or f'{species}_msd_along' not in curve:
            continue
        style = '--' if condition['field_magnitude_V_per_A'] == 0 else '-'
        lag = np.asarray(curve['lag_ps'])
        axes[0].plot(lag, curve[f'{species}_msd_along'], style, color=colour, label=_label(condition))
        axes[1].plot(lag, np.asarray(curve[f'{species}_msd_across']) / 2, style, color=colour)
    axes[0].set_title(f'{species} MSD along E (E = 0: along z)')
    axes[1].set_title(f'{species} MSD across E, per direction')
    for ax in axes:
        ax.set_xlabel('time interval (ps)')
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('MSD (Å²)')
    axes[0].legend(fontsize=7)
    fig.suptitle(f'{structure}: framework-corrected tracer MSD (dashed: E = 0)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_arrhenius(summary: dict, path) -> Path | None:
    """log10 D* against 1000/T with the fitted line, for each system and species (x+y+z)."""
    entries = [e for e in summary['arrhenius'] if e['direction'] == 'xyz' and e['fit'].get('D_cm2_per_s')]
    if not entries:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for entry in entries:
        fit = entry['fit']
        t = np.asarray(fit['temperatures_K'])
        d, e = np.asarray(fit['D_cm2_per_s']), np.asarray(fit['D_std_cm2_per_s'])
        label = f'{entry["structure"]} {entry["species"]}'
        if fit['status'] == 'ok':
            label += f': Ea = {fit["activation_energy_eV"]:.3f} ± {fit["activation_energy_std_eV"]:.3f} eV'
            grid = np.linspace(t.min() * 0.95, t.max() * 1.05, 50)
            ax.plot(1000 / grid, np.log10(arrhenius_curve(fit, grid)), '-', alpha=0.7)
        yerr = e / (d * np.log(10))
        ax.errorbar(1000 / t, np.log10(d), yerr=yerr, fmt='o', capsize=3, label=label)
    ax.set_xlabel('1000 / T (1/K)')
    ax.set_ylabel('log10 D* (cm²/s)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title('Arrhenius plot of zero-field tracer diffusion')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_drift(summary: dict, path) -> Path | None:
    """Drift velocity along E against |E|, with the linear-response line v = μ|E|."""
    series = [s for s in summary['drift_vs_field'] if s.get('status') == 'ok']
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for entry in series:
        fields = np.r_[0.0, entry['fields_V_per_A']]
        velocity = np.r_[entry.get('control_velocity_A_per_fs', np.nan), entry['velocity_along_A_per_fs']]
        error = np.r_[entry.get('control_velocity_error_A_per_fs', np.nan), entry['velocity_along_error_A_per_fs']]
        label = f'{entry["structure"]} {entry["species"]} {entry["temperature_K"]:g} K {entry["bec_mode"]}'
        points = ax.errorbar(fields, velocity * 1e3, yerr=error * 1e3, fmt='o', capsize=3, label=label)
        slope = entry['mobility_cm2_per_Vs'] / MOBILITY_UNIT_FACTOR
        grid = np.linspace(0, fields.max() * 1.05, 20)
        ax.plot(grid, slope * grid * 1e3, '-', color=points[0].get_color(), alpha=0.6)
    ax.set_xlabel('|E| (V/Å)')
    ax.set_ylabel('drift velocity along E (Å/ps)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title('Drift relative to the framework (line: v = μ|E|)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def campaign_plots(summary: dict, conditions: Sequence[dict], curves: Mapping[str, Mapping], folder) -> list[Path]:
    """Every figure the data allow, written to ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    pairs = sorted({(c['structure'], s) for c in conditions for s in c['species']})
    for structure, species in pairs:
        paths.append(plot_msd(conditions, curves, structure, species, folder / f'msd_{structure}_{species}.png'))
    for maker, name in ((plot_arrhenius, 'arrhenius.png'), (plot_drift, 'drift_vs_field.png')):
        path = maker(summary, folder / name)
        if path is not None:
            paths.append(path)
    return paths
