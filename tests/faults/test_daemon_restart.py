"""The README's main job, with the daemon stopped and started again in the middle of its iteration.

``ionfield quickstart`` (shortened: one iteration, no DFPT in it) runs the real active-learning loop
on a laptop profile: QE labels, a trained 2-member committee, field MD with and without a field, the
selection, the labels of the selection, the final training, and the report and its plot. Once the
iteration is under way (a training or MD job of the campaign exists), the daemon is stopped: the
running jobs are not the daemon's children and go on, and ``quickstart`` keeps waiting. When the
daemon starts again, the workers pick the campaign up from its last checkpoint; it must finish with
every label made before the stop. One test for both, because the main job is the costliest in CI.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from ..conftest import IONFIELD, VERDI, ionfield, profile_python, requires_qe, run

pytestmark = [pytest.mark.slow, pytest.mark.fault]

PROGRESS = """
import datetime
since = datetime.datetime.fromisoformat({since!r})
query = orm.QueryBuilder().append(
    orm.WorkChainNode, filters={{'attributes.process_label': 'ActiveLearningWorkChain', 'ctime': {{'>': since}}}}
)
nodes = query.all(flat=True)
if not nodes:
    print(json.dumps(None))
    raise SystemExit
node = nodes[0]
descendants = node.called_descendants
jobs = [n.process_label for n in descendants if n.process_label in ('TrainCalculation', 'MDCalculation')]
labels = sorted(n.uuid for n in descendants if n.process_label == 'LabelWorkChain' and n.is_finished)
datasets = sorted(
    n.uuid for d in descendants if d.process_label == 'LabelWorkChain' for n in d.base.links.get_outgoing().all_nodes()
    if n.node_type.startswith('data.ionfield.dataset')
)
bad = [f'{{n.process_label}}<{{n.pk}}> {{n.process_state.value}}' for n in descendants if n.is_excepted or n.is_killed]
state = {{'terminated': node.is_terminated, 'jobs': jobs, 'labels': labels, 'datasets': datasets, 'bad': bad}}
print(json.dumps(state))
"""


@requires_qe
def test_main_job_survives_a_daemon_restart_in_the_middle_of_its_iteration(laptop_profile, tmp_path):
    name, env, _ = laptop_profile
    since = profile_python(name, env, 'from aiida.common import timezone\nprint(json.dumps(str(timezone.now())))')
    command = [IONFIELD, 'quickstart', '-p', name, '--max-iterations', '1', '--bec-fraction', '0', '--timeout', '2400']
    main_job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 1200
        while True:
            progress = profile_python(name, env, PROGRESS.format(since=since))
            if (progress and (progress['jobs'] or progress['terminated'])) or time.monotonic() > deadline:
                break
            # each look is a fresh interpreter (~2 s of CPU): every 3 s it took half a core from pw.x
            time.sleep(20)
        assert progress and progress['jobs'] and not progress['terminated'], progress
        stopped = run([VERDI, '-p', name, 'daemon', 'stop'], env=env, timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr  # the profile's daemon.timeout (60 s) is used
        before = profile_python(name, env, PROGRESS.format(since=since))
        assert before['labels'] and before['datasets'], 'the stop came before the first labels were finished'
        time.sleep(10)  # the campaign waits, its running jobs go on
        started = run([VERDI, '-p', name, 'daemon', 'start', '1'], env=env, timeout=120)
        assert started.returncode == 0, started.stdout + started.stderr
        out, err = main_job.communicate(timeout=2700)
    finally:
        if main_job.poll() is None:
            main_job.kill()
    assert main_job.returncode == 0, out + err

    after = profile_python(name, env, PROGRESS.format(since=since))
    assert not after['bad'], after['bad']
    assert set(before['labels']) <= set(after['labels']) and set(before['datasets']) <= set(after['datasets'])
    assert 'MDCalculation' in after['jobs'] and 'TrainCalculation' in after['jobs']

    assert 'alpha-Li3N: Li3N, 4 atoms' in out
    assert 'ActiveLearningWorkChain<' in out and '[0]' in out
    header = next(line for line in out.splitlines() if line.split()[:2] == ['iter', 'frames'])
    row = out.splitlines()[out.splitlines().index(header) + 1].split()
    assert row[0] == '1' and int(row[1]) >= 6  # 6 initial frames (+ the selected ones)
    assert 'stopped: ' in out and 'Born charges of alpha-Li3N' in out
    pk = out.split('ActiveLearningWorkChain<')[1].split('>')[0]
    plot = tmp_path / 'al.png'
    report = ionfield('al', 'report', pk, '-p', name, '--plot', str(plot), env=env)
    assert report.returncode == 0, report.stderr
    assert plot.read_bytes().startswith(b'\x89PNG')
