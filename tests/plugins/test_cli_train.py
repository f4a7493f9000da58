"""``ionfield train|committee|model`` in-process (CliRunner) against the test profile.

Nothing is submitted for real: bad inputs must fail before submission, and the one test that
checks the built inputs replaces ``aiida.engine.submit`` by a function that records the builder.
"""

from __future__ import annotations

import types

import pytest
from aiida import orm
from click.testing import CliRunner

from ionfield.plugins.cli import cli
from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.data.model import CommitteeData

from ..fakes import DUMMY_PACKAGE, dummy_model
from ..models.synthetic import synthetic_dataset

METRICS = {'energy_mae_mev_per_atom': 1.25, 'forces_mae_mev_per_a': 42.5, 'bec_rmse_e': 0.0375, 'epochs': 7}


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def n_processes() -> int:
    return orm.QueryBuilder().append(orm.ProcessNode).count()


@pytest.fixture
def dataset_node(aiida_profile):
    return DatasetData(synthetic_dataset(6)).store()


@pytest.fixture
def models(aiida_profile):
    return [dummy_model(('N', 'Li'), seed=seed, metrics=METRICS, dataset_uuid='d' * 32) for seed in (3, 4)]


def test_train_refuses_bad_settings_before_submitting(dataset_node, train_code):
    before = n_processes()
    result = invoke('train', dataset_node.pk, '--set', 'size=huge')
    assert result.exit_code == 2, result.output
    assert "size must be one of ['large', 'medium', 'small'], got 'huge'" in result.output
    assert n_processes() == before
    result = invoke('train', dataset_node.pk, '--set', 'no_such_setting=1')
    assert result.exit_code == 2 and 'unknown training setting(s)' in result.output
    assert n_processes() == before


def test_committee_needs_two_members(dataset_node, train_code):
    before = n_processes()
    result = invoke('committee', dataset_node.pk, '-n', 1)
    assert result.exit_code == 2, result.output
    assert 'a committee needs at least 2 members' in result.output
    assert n_processes() == before


def test_train_builds_inputs(dataset_node, train_code, models, monkeypatch):
    submitted = []

    def fake_submit(builder):
        submitted.append(builder)
        return types.SimpleNamespace(pk=-1)

    monkeypatch.setattr('aiida.engine.submit', fake_submit)
    result = invoke(
        'train',
        dataset_node.pk,
        '--size',
        'medium',
        '--epochs',
        3,
        '--no-bec',
        '--set',
        'learning_rate=0.005',
        '--parent',
        models[0].pk,
        '--compile',
    )
    assert result.exit_code == 0, result.output
    assert 'submitted TrainWorkChain<-1>' in result.output
    (builder,) = submitted
    settings = builder.train.settings.get_dict()
    assert settings['size'] == 'medium' and settings['max_epochs'] == 3
    assert settings['bec'] is False and settings['learning_rate'] == 0.005
    assert builder.train.code.uuid == train_code.uuid and builder.train.dataset.uuid == dataset_node.uuid
    assert builder.train.parent_model.uuid == models[0].uuid and builder.train.compile.value is True


def test_model_show(models):
    result = invoke('model', 'show', models[0].pk)
    assert result.exit_code == 0, result.output
    assert 'Li, N' in result.output and models[0].sha256 in result.output
    for text in ('1.25', '42.5', '0.0375', 'energy_mae_mev_per_atom', 'stress_mae_mev_per_a3', 'n/a'):
        assert text in result.output

    committee = CommitteeData(models).store()
    result = invoke('model', 'show', committee.pk)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for model in models:
        (row,) = [line for line in lines if line.split()[1:3] == [str(model.pk), str(model.seed)]]
        assert '1.25' in row and '42.5' in row


def test_model_export(models, tmp_path):
    target = tmp_path / 'out.nequip.zip'
    result = invoke('model', 'export', models[0].pk, '-o', target)
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == DUMMY_PACKAGE

    result = invoke('model', 'export', models[0].pk, '-o', tmp_path / 'out.txt')
    assert result.exit_code == 2 and '.nequip.zip' in result.output
    assert not (tmp_path / 'out.txt').exists()

    result = invoke('model', 'export', models[0].pk, '--compiled', '-o', tmp_path / 'out.nequip.pt2')
    assert result.exit_code == 1 and 'was not compiled' in result.output
