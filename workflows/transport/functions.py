"""Calcfunctions of the transport campaign: the analysis of one condition, and the campaign report.

They wrap :mod:`ionfield.models.transport` so every number, curve, figure and the HTML report is
a node whose inputs (trajectories, settings) are linked: provenance from MD to Arrhenius plot.
"""

from __future__ import annotations

import tempfile

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ionfield.models.transport.condition import analyse_condition
from ionfield.models.transport.replicas import AnalysisOptions
from ionfield.models.transport.report import write_report


@calcfunction
def analyse_replicas(condition: orm.Dict, **trajectories) -> dict:
    """Analyse the replica trajectories of one condition (``condition``: structure, T, field, Z* mode, options)."""
    values = condition.get_dict()
    result = analyse_condition(
        [trajectories[key].read() for key in sorted(trajectories)],
        values['temperature_K'],
        values['field'],
        values['bec_mode'],
        AnalysisOptions.from_dict(values.get('analysis')),
        structure=values['structure'],
    )
    curves = orm.ArrayData()
    for name, array in result.curves.items():
        curves.set_array(name, np.asarray(array))
    return {'result': orm.Dict(result.summary), 'curves': curves}


def curves_of(node: orm.ArrayData) -> dict:
    return {name: node.get_array(name) for name in node.get_arraynames()}


@calcfunction
def campaign_report(failures: orm.List, seed: orm.Int, title: orm.Str, **inputs) -> dict:
    """Summary, figures and the HTML report of analysed conditions (``result_<key>``, ``curves_<key>``)."""
    keys = sorted(name[len('result_') :] for name in inputs if name.startswith('result_'))
    conditions = [inputs[f'result_{key}'].get_dict() for key in keys]
    curves = {c['key']: curves_of(inputs[f'curves_{key}']) for key, c in zip(keys, conditions, strict=True)}
    with tempfile.TemporaryDirectory() as tmp:
        summary, paths, report = write_report(
            conditions, curves, tmp, title.value, failures=failures.get_list(), seed=seed.value
        )
        outputs = {'summary': orm.Dict(summary), 'report': orm.SinglefileData(report)}
        for path in paths:
            outputs[f'plot_{path.stem}'] = orm.SinglefileData(path)
    return outputs
