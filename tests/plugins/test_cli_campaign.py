"""``ionfield campaign run|report|analyse`` in-process (CliRunner).

Bad inputs fail before anything is submitted; the built inputs are checked with a recording
``submit``; ``analyse`` runs the real analysis on trajectory files written here.
"""

from __future__ import annotations

import json
import os
import types

import psutil
import pytest
from aiida import orm

from ionfield.models.md.trajectory import H5TrajectoryWriter

from ..models.transport_synthetic import brownian, vibrating
from .test_cli_md import models, submitted  # noqa: F401 - fixtures used by name
from .test_cli_train import invoke


def n_campaigns() -> int:
    query = orm.QueryBuilder().append(orm.WorkflowNode, filters={'process_type': 'aiida.workflows:ionfield.campaign'})
    return query.count()


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (('-E', '1e8', '0', '0'), 'did you give V/m'),
        (('-T', '500', '-T', '500'), 'temperatures_K has duplicates'),
        (('--steps', '1000', '--equilibration', '2000'), 'leaves nothing'),
        (('--set', 'md_overrides={seed: 3}'), 'set by the campaign'),
        (('--vacancies', 'Li:99'), 'cannot remove 99 Li'),
        (('--vacancies', 'Li:x'), 'is not SPECIES[:N]'),
    ],
)
def test_campaign_run_refuses_bad_input_before_submitting(models, md_code, args, message):  # noqa: F811
    (member, _), _, _ = models
    before = n_campaigns()
    result = invoke('campaign', 'run', 'alpha-Li3N', '--model', member.pk, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert n_campaigns() == before


def test_campaign_run_refuses_a_field_without_born_charges(models, md_code):  # noqa: F811
    _, _, plain = models
    before = n_campaigns()
    result = invoke('campaign', 'run', 'alpha-Li3N', '--model', plain.pk, '-E', '0', '0', '0.1')
    assert result.exit_code == 2 and 'no Born-charge head' in result.output
    assert n_campaigns() == before


def test_campaign_run_builds_inputs(models, md_code, submitted):  # noqa: F811
    _, committee, _ = models
    result = invoke(
        'campaign',
        'run',
        'alpha-Li3N',
        '--model',
        committee.pk,
        '--supercell',
        '2x2x2',
        '--vacancies',
        'Li',
        '-T',
        '500',
        '-T',
        '700',
        '-E',
        '0.1',
        '0',
        '0',
        '--bec-mode',
        'full',
        '--bec-mode',
        'diagonal',
        '--replicas',
        '3',
        '--steps',
        '5000',
        '--max-concurrent',
        '2',
    )
    assert result.exit_code == 0, result.output
    assert 'no E = 0 control' in result.output
    assert 'submitted TransportCampaignWorkChain<-1> (12 MD runs, 2 at a time)' in result.output
    (inputs,) = submitted
    assert inputs['md']['max_concurrent'].value == 2
    settings = inputs['settings'].get_dict()
    assert settings['temperatures_K'] == [500.0, 700.0] and settings['fields'] == [[0.1, 0.0, 0.0]]
    assert settings['bec_modes'] == ['full', 'diagonal'] and settings['replicas'] == 3
    (structure,) = inputs['structures'].values()
    assert structure.get_formula() == 'Li23N8'  # 2x2x2 alpha-Li3N minus one Li
    assert structure.creator.process_label == 'make_vacancies'
    assert inputs['committee'].pk == committee.pk


def test_a_laptop_runs_no_more_md_at_once_than_it_has_cores(monkeypatch):
    """18 runs on a 2-core laptop profile: 2 at a time (one thread each), fewer when memory is short."""
    from ionfield.plugins.cli import defaults

    monkeypatch.setattr(defaults, 'profile_settings', lambda: {'kind': 'laptop'})
    monkeypatch.setattr(os, 'sched_getaffinity', lambda _pid: {0, 1})
    memory = types.SimpleNamespace(available=8 * defaults.MD_PROCESS_BYTES)
    monkeypatch.setattr(psutil, 'virtual_memory', lambda: memory)
    assert defaults.max_concurrent_md() == 2
    memory.available = defaults.MD_PROCESS_BYTES // 2
    assert defaults.max_concurrent_md() == 1
    monkeypatch.setattr(defaults, 'profile_settings', lambda: {'kind': 'server'})
    assert defaults.max_concurrent_md() is None  # the protocol's value: the scheduler queues the runs


def test_campaign_report_needs_a_campaign(aiida_profile):
    result = invoke('campaign', 'report', orm.Int(1).store().pk)
    assert result.exit_code == 2 and 'not a TransportCampaignWorkChain' in result.output


def write(trajectory, path):
    writer = H5TrajectoryWriter(path, trajectory.atoms(0))
    for index in range(len(trajectory)):
        writer.append(int(trajectory.steps[index]), float(trajectory.times_fs[index]), trajectory.atoms(index))
    writer.close()
    return path


def test_campaign_analyse_files(tmp_path):
    files = [write(brownian(seed, frames=600), tmp_path / f'r{seed}.h5') for seed in (0, 1)]
    out = tmp_path / 'out'
    result = invoke('campaign', 'analyse', *files, '-T', '600', '--set', 'n_samples=100', '-o', out)
    assert result.exit_code == 0, result.output
    assert 'Li: D* = ' in result.output and 'cm²/s' in result.output
    condition = json.loads((out / 'condition.json').read_text())
    assert condition['n_replicas'] == 2
    assert (out / 'report.html').stat().st_size > 10_000 and (out / 'msd_system_Li.png').is_file()


def test_campaign_analyse_says_what_is_wrong(tmp_path):
    still = write(vibrating(0), tmp_path / 'still.h5')
    result = invoke('campaign', 'analyse', still, '-T', '300', '-o', tmp_path / 'a')
    assert result.exit_code == 0
    assert 'not fitted' in result.output and 'too short or too cold' in result.output
    other = write(brownian(1, n_mobile=30), tmp_path / 'other.h5')
    result = invoke('campaign', 'analyse', still, other, '-T', '300', '-o', tmp_path / 'b')
    assert result.exit_code == 1 and 'replicas must be the same system' in result.output
    result = invoke('campaign', 'analyse', still, '-T', '300', '--set', 'fit_start_fraction=2')
    assert result.exit_code == 2 and 'fit_start_fraction' in result.output
