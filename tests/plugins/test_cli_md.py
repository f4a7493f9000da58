"""``ionfield md`` in-process (CliRunner) against the test profile.

Bad inputs must fail before anything is submitted; the inputs that are built are checked by
replacing ``aiida.engine.submit`` with a recorder. Real MD runs are in ``test_md_plugins``.
"""

from __future__ import annotations

import types

import pytest
from aiida import orm
from aiida.engine import ProcessBuilder

from ionfield.plugins.data.model import CommitteeData

from ..fakes import dummy_model
from .test_cli_train import invoke, n_processes


@pytest.fixture
def models(aiida_profile):
    made = [dummy_model(seed=seed) for seed in (0, 1)]
    return made, CommitteeData(made).store(), dummy_model(has_bec=False, seed=9)


@pytest.fixture
def submitted(monkeypatch):
    calls = []

    def fake_submit(process, **inputs):
        if isinstance(process, ProcessBuilder):  # a builder carries its inputs
            inputs = process._inputs(prune=True)
        calls.append(inputs)
        return types.SimpleNamespace(pk=-1)

    monkeypatch.setattr('aiida.engine.submit', fake_submit)
    return calls


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (('--field', '1e8', '0', '0'), 'did you give V/m'),
        (('--set', 'ensemble=nvt'), 'ensemble must be one of'),
        (('--set', 'no_such=1'), 'unknown MD setting'),
        (('--timestep', '30'), 'timestep_fs must be in (0, 10]'),
    ],
)
def test_md_refuses_bad_settings_before_submitting(models, md_code, args, message):
    (member, _), _, _ = models
    before = n_processes()
    result = invoke('md', 'alpha-Li3N', '--model', member.pk, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert n_processes() == before


def test_md_refuses_a_field_without_born_charges_and_unknown_species(models, md_code, tmp_path):
    _, _, plain = models
    result = invoke('md', 'alpha-Li3N', '--model', plain.pk, '--field', '0', '0', '0.1')
    assert result.exit_code == 2 and 'no Born-charge head' in result.output
    (member, _), _, _ = models
    cif = tmp_path / 'agi.xyz'
    from ase import Atoms

    Atoms('AgI', positions=[[0, 0, 0], [2, 2, 2]], cell=[4, 4, 4], pbc=True).write(cif)
    result = invoke('md', str(cif), '--model', member.pk)
    assert result.exit_code == 2 and "does not know species ['Ag', 'I']" in result.output
    result = invoke('md', 'alpha-Li3N', '--model', orm.Int(3).store().pk)
    assert result.exit_code == 2 and 'not a ModelData or CommitteeData' in result.output


def test_md_builds_inputs(models, md_code, submitted):
    _, committee, _ = models
    result = invoke(
        'md',
        'alpha-Li3N',
        '--model',
        committee.pk,
        '--field',
        '0',
        '0',
        '0.1',
        '--temperature',
        '600',
        '--steps',
        '500',
        '--set',
        'max_force_deviation=0.3',
        '--bec-mode',
        'diagonal',
        '--supercell',
        '2x2x1',
    )
    assert result.exit_code == 0, result.output
    assert 'submitted MDWorkChain<-1>' in result.output
    (inputs,) = [call['md'] for call in submitted]
    settings = inputs['settings'].get_dict()
    assert settings['field'] == [0.0, 0.0, 0.1] and settings['temperature_K'] == 600 and settings['steps'] == 500
    assert settings['max_force_deviation'] == 0.3 and settings['bec_mode'] == 'diagonal'
    assert inputs['committee'].pk == committee.pk and 'model' not in inputs
    assert inputs['code'].pk == md_code.pk
    assert sorted(inputs['structure'].get_symbols_set()) == ['Li', 'N'] and len(inputs['structure'].sites) == 16
