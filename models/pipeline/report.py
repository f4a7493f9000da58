"""The pipeline's one report: what each stage did, how active learning went, the validation gate, the transport
numbers per direction and the published values beside them; a self-contained HTML page with embedded PNGs.

Everything it shows comes in as plain dicts (the stage records, the active-learning history, the validation
tables, the campaign summary), so the page is built and tested without AiiDA; the pipeline's calcfunction
passes the nodes' contents.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from ionfield.models.transport.report import STYLE, _number, _table, image_sections

from .references import IN_PLANE


def history_rows(history: Sequence[dict]) -> list[list]:
    """One row per active-learning iteration: explored frames, shares, labels, dataset, errors on the new labels."""
    rows = []
    for entry in history:
        if 'iteration' not in entry:
            continue
        selection = entry.get('selection', {})
        shares = selection.get('shares', {})
        calibration = entry.get('calibration', {})
        md = entry.get('md', {})
        rows.append(
            [
                str(entry['iteration']),
                f'{md.get("usable", "–")}/{md.get("runs", "–")}',
                _number(selection.get('n_frames')),
                _number(shares.get('accurate')),
                _number(shares.get('candidate')),
                _number(shares.get('failed')),
                _number(entry.get('labels', {}).get('done')),
                f'{entry.get("dataset_frames", "–")} ({entry.get("dataset_bec_frames", "–")} with Z*)',
                _number(calibration.get('force', {}).get('error_rmse')),
                _number(calibration.get('bec', {}).get('error_rmse')),
                ' / '.join(f'{entry.get(f"{name}_s", 0.0):.0f}' for name in ('label', 'train', 'explore')),
            ]
        )
    return rows


HISTORY_HEADERS = (
    'iteration',
    'MD usable/runs',
    'frames explored',
    'accurate',
    'candidate',
    'failed',
    'new labels',
    'dataset',
    'force error on new labels (eV/Å)',
    'Z* error on new labels (e)',
    'label / train / explore (s)',
)


def plot_history(history: Sequence[dict], path) -> Path | None:
    """Accurate share and the committee's true errors on each iteration's new labels, against iteration."""
    entries = [entry for entry in history if 'iteration' in entry]
    if not entries:
        return None
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    iterations = [entry['iteration'] for entry in entries]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for share in ('accurate', 'candidate', 'failed'):
        left.plot(iterations, [e.get('selection', {}).get('shares', {}).get(share) for e in entries], 'o-', label=share)
    left.set_xlabel('iteration')
    left.set_ylabel('share of explored frames')
    left.set_ylim(-0.02, 1.02)
    left.legend()
    for key, name, unit in (('force', 'force', 'eV/Å'), ('bec', 'Z*', 'e')):
        values = [e.get('calibration', {}).get(key, {}).get('error_rmse') for e in entries]
        if any(v is not None for v in values):
            right.plot(iterations, [float('nan') if v is None else v for v in values], 's-', label=f'{name} ({unit})')
    right.set_xlabel('iteration')
    right.set_ylabel('RMSE on the new DFT labels')
    right.legend()
    fig.suptitle('active learning on the campaign systems')
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _validation_table(table: Mapping) -> str:
    rows = [
        [
            html.escape(row['quantity']),
            _number(row['dft'], 4),
            _number(row['model'], 4),
            _number(row['error']),
            html.escape(str(row.get('unit', ''))),
            f'{_number(row["warn"])} / {_number(row["fail"])}',
            html.escape(row['status']),
        ]
        for row in table['rows']
    ]
    verdict = 'passed' if table['passed'] else ('FAILED, overridden' if table['overridden'] else 'FAILED')
    return f'<p>Gate: <b>{verdict}</b>.</p>' + _table(
        ('quantity', 'DFT', 'model', 'error', 'unit', 'warn / fail', 'status'), rows
    )


def _transport_tables(summary: Mapping) -> str:
    rows = []
    for entry in summary.get('arrhenius', []):
        fit = entry['fit']
        if fit.get('status') == 'ok':
            ea = f'{fit["activation_energy_eV"]:.3f} ± {fit["activation_energy_std_eV"]:.3f}'
            d_values = ', '.join(
                f'{t:g} K: {d:.2e}' for t, d in zip(fit['temperatures_K'], fit['D_cm2_per_s'], strict=True)
            )
        else:
            ea, d_values = html.escape(fit.get('reason', fit.get('status', ''))), '–'
        rows.append([html.escape(entry['structure']), entry['species'], entry['direction'], ea, d_values])
    parts = [
        '<h3>Arrhenius fits of the zero-field D* (per direction)</h3>',
        _table(('structure', 'species', 'direction', 'Ea (eV)', 'D* (cm²/s)'), rows, text_columns=3),
    ]
    anisotropy = [
        [
            html.escape(a['structure']),
            a['species'],
            _number(a['temperature_K']),
            _number(a['xy_over_z']),
            _number(a['xy_over_z_error'], 2),
        ]
        for a in summary.get('anisotropy', [])
    ]
    if anisotropy:
        parts += ['<h3>Anisotropy</h3>', _table(('structure', 'species', 'T (K)', 'D*xy / D*z', '±'), anisotropy, 2)]
    enhancement = [
        [
            html.escape(e.get('structure', '')),
            e.get('species', ''),
            html.escape(str(e.get('bec_mode', ''))),
            _number(e.get('temperature_K')),
            _number(e.get('field_magnitude_V_per_A')),
            _number(e.get('msd_along_ratio')),
            _number(e.get('msd_across_ratio')),
        ]
        for e in summary.get('field_enhancement', [])
    ]
    if enhancement:
        parts += [
            '<h3>Field enhancement (MSD along E over the E = 0 MSD)</h3>',
            _table(('structure', 'species', 'Z* mode', 'T (K)', '|E| (V/Å)', 'along E', 'across E'), enhancement, 3),
        ]
    return ''.join(parts)


def _comparison_table(rows: Sequence[dict]) -> str:
    body = []
    for row in rows:
        ours = row.get('ours')
        measured = f'{ours["value"]:.3f} ± {ours["std"]:.3f}' if ours else 'not measured'
        direction = 'in the plane (x, y)' if row['direction'] == IN_PLANE else row['direction']
        body.append(
            [
                row['species'],
                html.escape(row['quantity'].replace('_', ' ')),
                html.escape(direction),
                f'{_number(row["value"])} {html.escape(row["unit"])}',
                measured,
                html.escape(row['source']),
                html.escape(row.get('note', '')),
            ]
        )
    return _table(('species', 'quantity', 'direction', 'published', 'this pipeline', 'source', 'note'), body, 3)


def _absent(stages: Sequence[Mapping], stage: str) -> str:
    """What stands in a part the stage gave no results for: why (its failure), or that it was not reached."""
    entries = [s for s in stages if s['stage'] == stage and s['status'] == 'failed']
    if not entries:
        return '<p class="note">Not reached.</p>'
    entry = entries[-1]
    process = f' ({html.escape(entry["process"])})' if entry.get('process') else ''
    return f'<p class="warn">The stage failed{process}: {html.escape(entry.get("message", ""))}</p>'


def pipeline_html(
    title: str,
    stages: Sequence[Mapping],
    history: Sequence[dict] | None = None,
    validation: Mapping[str, Mapping] | None = None,
    campaign: Mapping | None = None,
    comparisons: Mapping[str, Sequence[dict]] | None = None,
    images: Mapping[str, bytes] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The report page; every part that a stage did not reach says so instead of being left out."""
    parts = [f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>']
    parts.append(f'<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>')
    for note in notes:
        parts.append(f'<p class="warn">{html.escape(note)}</p>')
    stage_rows = [
        [
            html.escape(s['stage']),
            html.escape(s.get('process', '–')),
            html.escape(s['status']),
            _number(s.get('wall_s')),
            html.escape(s.get('message', '')),
        ]
        for s in stages
    ]
    parts += ['<h2>Stages</h2>', _table(('stage', 'process', 'status', 'wall (s)', 'message'), stage_rows, 3)]
    parts.append('<h2>Active learning on the campaign systems</h2>')
    if history:
        stop = next((entry for entry in history if 'stop_reason' in entry), None)
        if stop:
            parts.append(f'<p>Stopped: {html.escape(stop["stop_reason"])}: {html.escape(stop["message"])}</p>')
        parts.append(_table(HISTORY_HEADERS, history_rows(history)))
    else:
        parts.append(_absent(stages, 'active_learning'))
    parts.append('<h2>Validation against DFT</h2>')
    if validation:
        for name, table in sorted(validation.items()):
            parts += [f'<h3>{html.escape(name)}</h3>', _validation_table(table)]
    else:
        parts.append(_absent(stages, 'validation'))
    parts.append('<h2>Transport</h2>')
    if campaign:
        parts.append(_transport_tables(campaign))
        for warning in campaign.get('warnings', [])[:20]:
            parts.append(f'<p class="warn">{html.escape(warning)}</p>')
    else:
        parts.append(_absent(stages, 'campaign'))
    if comparisons:
        parts.append('<h2>Published values</h2>')
        for name, rows in sorted(comparisons.items()):
            parts += [f'<h3>{html.escape(name)}</h3>', _comparison_table(rows)]
    parts += image_sections(images)
    parts.append('</body></html>')
    return '\n'.join(parts)
