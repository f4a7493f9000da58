"""Faults of the MD stage with the real ``ionfield-md``: a run that blows up, a corrupt model file.

Each ends with an ``MDCalculation`` exit code whose message says what happened; the frames written
before a stop are kept as outputs, and finished work elsewhere in the profile is untouched.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from ionfield.models.structures.reference import alpha_li3n
from ionfield.plugins.calculations.md import MDCalculation
from ionfield.plugins.data.model import ModelData

from .conftest import assert_nothing_lost, ledger

pytestmark = [pytest.mark.slow, pytest.mark.fault]


def run_md(md_code, model, **settings):
    base = {'steps': 400, 'temperature_K': 300, 'log_every': 5, 'trajectory_every': 5}
    return run_get_node(
        MDCalculation,
        code=md_code,
        structure=orm.StructureData(ase=alpha_li3n().repeat((2, 2, 2))),
        model=model,
        settings=orm.Dict({**base, **settings}),
        metadata={'options': {'max_wallclock_seconds': 600}},
    )


def test_md_that_blows_up_stops_with_its_reason_and_keeps_the_frames(md_code, finished_work):
    """A 10 fs timestep at 5000 K under 1 V/Å: the run must stop on its own, say why, and keep what it wrote."""
    before = ledger()
    results, node = run_md(md_code, finished_work['model'], timestep_fs=10.0, temperature_K=5000, field=[0.0, 0.0, 1.0])
    assert node.exit_status in (511, 512, 513), f'[{node.exit_status}] {node.exit_message}'
    reason = {511: 'close contact', 512: 'temperature runaway', 513: 'non-finite'}[node.exit_status]
    assert reason in node.exit_message
    summary = results['summary'].get_dict()
    assert 0 < summary['step'] < 400
    steps = results['trajectory'].read().steps
    assert steps[0] == 0 and len(steps) >= 1 and steps[-1] <= summary['step']
    assert results['thermo'].get_array('step')[-1] <= summary['step']
    assert_nothing_lost(before)


def test_corrupt_model_file_is_refused_with_a_message(md_code, finished_work, tmp_path):
    """Not a package at all: refused when the node is made. A package with garbage weights: exit 501."""
    before = ledger()
    source = finished_work['model'].base.repository.get_object_content(ModelData.PACKAGE, mode='rb')
    truncated = tmp_path / 'truncated.nequip.zip'
    truncated.write_bytes(source[: len(source) // 3][-1000:])
    with pytest.raises(ValueError, match='not a nequip package'):
        ModelData(truncated, species=['Li', 'N'], r_max=4.5, has_bec=True)

    original = tmp_path / 'model.nequip.zip'
    original.write_bytes(source)
    corrupt = tmp_path / 'corrupt.nequip.zip'
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(original) as inside, zipfile.ZipFile(corrupt, 'w') as outside:
        for info in inside.infolist():
            data = inside.read(info)
            if len(data) > 1024:  # the weights and the pickled model: replaced by noise of the same size
                data = rng.bytes(len(data))
            outside.writestr(info, data)
    model = ModelData(corrupt, species=['Li', 'N'], r_max=4.5, has_bec=True).store()
    results, node = run_md(md_code, model, steps=10)
    assert node.exit_status == 501, f'[{node.exit_status}] {node.exit_message}'
    assert 'cannot load the model' in node.exit_message
    assert 'trajectory' not in results
    assert_nothing_lost(before)
