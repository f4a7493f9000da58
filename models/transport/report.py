"""A self-contained HTML report of a campaign (tables, warnings, figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from .campaign import summarise_campaign
from .plots import campaign_plots

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1300px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 3px 7px; text-align: right; }
th { background: #eee; } td.text { text-align: left; }
.warn { background: #fff4d6; border-left: 4px solid #e0a000; padding: 0.5em 1em; }
.note { color: #555; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
"""


def _number(value, digits: int = 3) -> str:
    if value is None:
        return '–'
    if isinstance(value, str):
        return html.escape(value)
    if value == 0:
        return '0'
    return f'{value:.{digits}g}'


def _estimate(estimate: dict | None, digits: int = 3) -> str:
    if not estimate:
        return '–'
    if estimate.get('status') == 'not_applicable':
        return 'n/a under E'
    if estimate.get('status') != 'ok':
        return 'not fitted'
    return f'{_number(estimate["mean"], digits)} ± {_number(estimate["std"], 2)}'


def _table(headers: Sequence[str], rows: Sequence[Sequence], text_columns: int = 1) -> str:
    head = ''.join(f'<th>{html.escape(h)}</th>' for h in headers)
    body = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            css = ' class="text"' if index < text_columns else ''
            cells.append(f'<td{css}>{cell}</td>')
        body.append('<tr>' + ''.join(cells) + '</tr>')
    return f'<table><tr>{head}</tr>{"".join(body)}</table>'


def image_sections(images: Mapping[str, bytes] | None) -> list[str]:
    """One heading and embedded PNG (base64) per figure, so that a report is one self-contained file."""
    sections = []
    for name, content in (images or {}).items():
        encoded = base64.b64encode(content).decode()
        sections.append(
            f'<h3>{html.escape(name)}</h3><img alt="{html.escape(name)}" src="data:image/png;base64,{encoded}">'
        )
    return sections


def _conditions_table(conditions: Sequence[dict]) -> str:
    rows = []
    for c in sorted(conditions, key=lambda c: (c['structure'], c['temperature_K'], c['field_magnitude_V_per_A'])):
        for species, r in c['species'].items():
            drift = r['drift']
            rows.append(
                [
                    html.escape(c['structure']),
                    species,
                    html.escape(c['bec_mode']),
                    _number(c['temperature_K']),
                    ' '.join(_number(x, 2) for x in c['field_V_per_A']),
                    f'{c["n_replicas"]} × {c["duration_ps"]:.3g}',
                    _number(r['msd_final_A2']['along']),
                    _number(r['msd_final_A2']['across']),
                    _estimate(r['D'].get('xyz')),
                    _estimate(r['D'].get('along')),
                    _estimate(r['D'].get('across')),
                    _estimate(r.get('D_collective')),
                    _estimate(r.get('haven_ratio'), 2),
                    _estimate(r.get('conductivity_nernst_einstein')),
                    _estimate(r.get('conductivity_collective')),
                    f'{_number(drift["velocity_along_A_per_fs"] * 1e3)} ± '
                    f'{_number(drift["velocity_along_error_A_per_fs"] * 1e3, 2)}',
                    _number(drift.get('mobility_cm2_per_Vs')),
                ]
            )
    headers = [
        'system',
        'ion',
        'Z* mode',
        'T (K)',
        'E (V/Å)',
        'replicas × ps',
        'MSD along (Å²)',
        'MSD across (Å²)',
        'D* (cm²/s)',
        'D* along',
        'D* across',
        'D_J (cm²/s)',
        'Haven',
        'σ NE (mS/cm)',
        'σ coll. (mS/cm)',
        'drift (Å/ps)',
        'μ (cm²/V s)',
    ]
    return _table(headers, rows, text_columns=3)


def _drift_note(conditions: Sequence[dict]) -> str:
    """What was done with the drift before D was fitted, as the analyses recorded it (older ones did not)."""
    if any(r.get('drift_removed') for c in conditions for r in c['species'].values()):
        return 'D* (x+y+z, along, across) under a field is fitted after the drift (velocity × t) is removed; '
    return ''


def html_report(
    summary: dict,
    conditions: Sequence[dict],
    images: Mapping[str, bytes] | None = None,
    title: str = 'Transport campaign',
    provenance: Mapping[str, str] | None = None,
) -> str:
    parts = [
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f'<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>',
    ]
    if provenance:
        parts.append(
            '<p class="note">' + '<br>'.join(f'{html.escape(k)}: {html.escape(str(v))}' for k, v in provenance.items())
        )
        parts.append('</p>')
    if summary['warnings']:
        items = ''.join(f'<li>{html.escape(w)}</li>' for w in summary['warnings'])
        parts.append(f'<div class="warn"><b>Warnings</b><ul>{items}</ul></div>')
    parts.append('<h2>Conditions</h2>')
    parts.append(
        '<p class="note">Mean ± standard deviation of kinisi posteriors; "not fitted": the MSD is not diffusive '
        '(see warnings). MSDs at the longest time interval, relative to the framework. Under a field the MSD along '
        f'E includes the drift; {_drift_note(conditions)}D_J is the collective (charge) diffusion, Haven = D*/D_J.</p>'
    )
    parts.append(_conditions_table(conditions))

    parts.append('<h2>Arrhenius (E = 0)</h2>')
    rows = []
    for entry in summary['arrhenius']:
        fit = entry['fit']
        if fit['status'] == 'ok':
            ea = f'{fit["activation_energy_eV"]:.3f} ± {fit["activation_energy_std_eV"]:.3f}'
            a = f'{fit["prefactor_cm2_per_s"]:.3g} (± {fit["prefactor_log10_std"]:.2f} dex)'
        else:
            ea, a = html.escape(fit['reason']), '–'
        temps = ', '.join(f'{t:g}' for t in fit.get('temperatures_K', []))
        rows.append([html.escape(entry['structure']), entry['species'], entry['direction'], temps, ea, a])
    parts.append(_table(['system', 'ion', 'direction', 'T used (K)', 'Ea (eV)', 'A (cm²/s)'], rows, text_columns=5))

    if summary['field_enhancement']:
        parts.append('<h2>Field enhancement of the MSD along E</h2>')
        rows = [
            [
                html.escape(e['structure']),
                e['species'],
                html.escape(e['bec_mode']),
                _number(e['temperature_K']),
                _number(e['field_magnitude_V_per_A']),
                _number(e['msd_along_A2']),
                _number(e['msd_along_control_A2']),
                _number(e['msd_along_ratio']),
                _number(e['msd_across_ratio']),
            ]
            for e in summary['field_enhancement']
        ]
        headers = ['system', 'ion', 'Z* mode', 'T (K)', '|E|', 'MSD along', 'MSD along, E=0', 'ratio', 'across ratio']
        parts.append(_table(headers, rows, text_columns=3))

    if summary['drift_vs_field']:
        parts.append('<h2>Drift and mobility</h2>')
        rows = []
        for s in summary['drift_vs_field']:
            linear = {True: 'yes', False: 'no', None: '–'}[s.get('linear')]
            if 'p_value' in s:
                linear += f' (p = {s["p_value"]:.2g})'
            rows.append(
                [
                    html.escape(s['structure']),
                    s['species'],
                    html.escape(s['bec_mode']),
                    _number(s['temperature_K']),
                    ', '.join(_number(f) for f in s.get('fields_V_per_A', [])),
                    f'{_number(s.get("mobility_cm2_per_Vs"))} ± {_number(s.get("mobility_error_cm2_per_Vs"), 2)}',
                    _number(s.get('einstein_mobility_cm2_per_Vs')),
                    linear,
                ]
            )
        headers = ['system', 'ion', 'Z* mode', 'T (K)', '|E| (V/Å)', 'μ drift (cm²/V s)', 'μ Einstein', 'linear']
        parts.append(_table(headers, rows, text_columns=3))

    if summary['ablation']:
        parts.append('<h2>Off-diagonal ablation (against the full Z*)</h2>')
        rows = [
            [
                html.escape(a['structure']),
                a['species'],
                html.escape(a['mode']),
                _number(a['temperature_K']),
                ' '.join(_number(x, 2) for x in a['field_V_per_A']),
                f'{_number(a["drift_along_ratio_to_full"])} ± {_number(a["drift_along_ratio_error"], 2)}',
                _number(a['msd_along_ratio_to_full']),
                f'{_number(a["drift_across_A_per_fs"] * 1e3)} / {_number(a["drift_across_full_A_per_fs"] * 1e3)}',
            ]
            for a in summary['ablation']
        ]
        headers = ['system', 'ion', 'mode', 'T (K)', 'E', 'drift ratio', 'MSD along ratio', 'across drift (Å/ps)']
        parts.append(_table(headers, rows, text_columns=3))

    if summary['anisotropy']:
        parts.append('<h2>Anisotropy (E = 0)</h2>')
        rows = [
            [
                html.escape(a['structure']),
                a['species'],
                _number(a['temperature_K']),
                *(f'{_number(a["D_cm2_per_s"][x])} ± {_number(a["D_std_cm2_per_s"][x], 2)}' for x in 'xyz'),
                f'{_number(a["xy_over_z"])} ± {_number(a["xy_over_z_error"], 2)}',
            ]
            for a in summary['anisotropy']
        ]
        parts.append(_table(['system', 'ion', 'T (K)', 'D x', 'D y', 'D z', 'D xy / D z'], rows, text_columns=2))

    if summary.get('failures'):
        parts.append('<h2>Failed runs</h2>')
        rows = [[html.escape(str(f.get('key'))), html.escape(str(f.get('message')))] for f in summary['failures']]
        parts.append(_table(['condition', 'what happened'], rows, text_columns=2))

    parts += image_sections(images)
    parts.append('</body></html>')
    return '\n'.join(parts)


def write_report(
    conditions: Sequence[dict],
    curves: Mapping[str, Mapping],
    folder,
    title: str,
    failures: Sequence[dict] = (),
    seed: int = 0,
    note: str | None = None,
) -> tuple[dict, list[Path], Path]:
    """Summarise ``conditions``, draw the figures and write ``report.html`` into ``folder``.

    ``note`` (e.g. "partial report") goes first among the warnings. Returns the summary, the PNG
    paths and the report path.
    """
    folder = Path(folder)
    summary = summarise_campaign(conditions, failures, seed=seed)
    if note:
        summary['warnings'].insert(0, note)
    paths = campaign_plots(summary, conditions, curves, folder)
    report = folder / 'report.html'
    images = {path.stem: path.read_bytes() for path in paths}
    report.write_text(html_report(summary, conditions, images, title=title), encoding='utf-8')
    return summary, paths, report
