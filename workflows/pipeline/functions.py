"""Calcfunctions of the pipeline: the report joining every stage's results, with provenance."""

from __future__ import annotations

import tempfile
from pathlib import Path

from aiida import orm
from aiida.engine import calcfunction

from ionfield.models.pipeline.references import comparison_rows
from ionfield.models.pipeline.report import pipeline_html, plot_history


@calcfunction
def pipeline_report(stages: orm.List, title: orm.Str, references: orm.Dict, notes: orm.List, **nodes) -> dict:
    """``report`` (HTML) and ``plot_history`` (PNG) from what the stages produced.

    ``nodes``: ``history`` (List), ``validation_<key>`` tables (Dict) and ``validation_plot_<key>`` (PNG),
    ``campaign_summary`` (Dict) and ``campaign_plot_<name>`` (PNG); any of them may be missing (a stage not
    reached). ``references`` maps a structure key to its reference structure (for the published values);
    ``notes`` are shown first (e.g. that the campaign ran with a model that failed validation).
    """
    history = nodes['history'].get_list() if 'history' in nodes else None
    validation = {key[len('validation_') :]: node.get_dict() for key, node in nodes.items() if _is_table(key)}
    campaign = nodes['campaign_summary'].get_dict() if 'campaign_summary' in nodes else None
    comparisons = {}
    for key, reference in references.get_dict().items():
        rows = comparison_rows(reference, campaign, key)
        if rows:
            comparisons[f'{key} ({reference})'] = rows
    images = {}
    outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = plot_history(history or [], Path(tmp) / 'history.png')
        if path is not None:
            images['active learning'] = path.read_bytes()
            outputs['plot_history'] = orm.SinglefileData(path)
        for key, node in sorted(nodes.items()):
            if key.startswith(('validation_plot_', 'campaign_plot_')):
                images[key.replace('_', ' ')] = node.get_content(mode='rb')
        page = pipeline_html(
            title.value,
            stages.get_list(),
            history=history,
            validation=validation,
            campaign=campaign,
            comparisons=comparisons,
            images=images,
            notes=notes.get_list(),
        )
        report = Path(tmp) / 'report.html'
        report.write_text(page)
        outputs['report'] = orm.SinglefileData(report)
    return outputs


def _is_table(key: str) -> bool:
    return key.startswith('validation_') and not key.startswith('validation_plot_')
