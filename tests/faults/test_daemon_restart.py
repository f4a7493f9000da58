"""The daemon stopped and started again in the middle of an active-learning iteration (laptop profile).

A real, small campaign (QE labels, a 2-member committee, field MD) is submitted to the daemon. Once
the iteration is under way (a training or MD job of the campaign exists), the daemon is stopped:
the running jobs are not the daemon's children and go on. When it starts again, the workers pick the
campaign up from its last checkpoint, and it must finish with every label made before the stop.
"""

from __future__ import annotations

import time

import pytest

from ..conftest import VERDI, ionfield, profile_python, run

pytestmark = [pytest.mark.slow, pytest.mark.fault]

PROGRESS = """
node = orm.load_node({pk})
descendants = node.called_descendants
jobs = [n.process_label for n in descendants if n.process_label in ('TrainCalculation', 'MDCalculation')]
labels = sorted(n.uuid for n in descendants if n.process_label == 'LabelWorkChain' and n.is_finished)
datasets = sorted(
    n.uuid for d in descendants if d.process_label == 'LabelWorkChain' for n in d.base.links.get_outgoing().all_nodes()
    if n.node_type.startswith('data.ionfield.dataset')
)
bad = [f'{{n.process_label}}<{{n.pk}}> {{n.process_state.value}}' for n in descendants if n.is_excepted or n.is_killed]
print(json.dumps({{'terminated': node.is_terminated, 'ok': node.is_finished_ok, 'exit': node.exit_status,
                  'message': node.exit_message, 'jobs': jobs, 'labels': labels, 'datasets': datasets, 'bad': bad}}))
"""


def test_daemon_restart_in_the_middle_of_an_iteration_loses_nothing(laptop_profile):
    name, env, _ = laptop_profile
    command = ['al', 'run', 'alpha-Li3N', '-p', name, '--max-iterations', '1', '--bec-fraction', '0']
    command += ['--md-steps', '100', '--temperature', '300', '--field', '0', '0', '0', '--max-selected', '2']
    command += ['--set', 'initial_rattles=3', '--set', 'initial_strains=0', '--set', 'initial_bec_fraction=0']
    command += ['--train-set', 'max_epochs=8', '--train-set', 'patience=8', '--train-set', 'bec=false']
    submitted = ionfield(*command, env=env)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    pk = int(submitted.stdout.split('ActiveLearningWorkChain<')[1].split('>')[0])

    deadline = time.monotonic() + 900
    while True:
        progress = profile_python(name, env, PROGRESS.format(pk=pk))
        if progress['jobs'] or progress['terminated'] or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert progress['jobs'] and not progress['terminated'], progress
    stopped = run([VERDI, '-p', name, 'daemon', 'stop'], env=env, timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr  # the profile's daemon.timeout (60 s) is used
    before = profile_python(name, env, PROGRESS.format(pk=pk))
    assert before['labels'] and before['datasets'], 'the stop came before the first labels were finished'
    time.sleep(10)  # the campaign waits, its running jobs go on
    assert run([VERDI, '-p', name, 'daemon', 'start', '1'], env=env, timeout=120).returncode == 0

    deadline = time.monotonic() + 1500
    while not (after := profile_python(name, env, PROGRESS.format(pk=pk)))['terminated']:
        assert time.monotonic() < deadline, f'the campaign did not finish after the restart: {after}'
        time.sleep(5)
    assert after['ok'], f'[{after["exit"]}] {after["message"]}'
    assert not after['bad'], after['bad']
    assert set(before['labels']) <= set(after['labels']) and set(before['datasets']) <= set(after['datasets'])
    assert 'MDCalculation' in after['jobs'] and 'TrainCalculation' in after['jobs']
