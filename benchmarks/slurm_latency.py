"""Time from submit to running on the single-node SLURM, through the daemon of a laptop profile.

    sudo python benchmarks/slurm_latency.py [--jobs 5] [--burst 20] [--poll 1]

Starts ``setup_profiles/slurm/local-slurm.sh`` in a temporary folder, sets up a fresh laptop profile
(``ionfield setup laptop --without-qe``, daemon started with that cluster's ``SLURM_CONF``) and its
``core.slurm`` computer (``ionfield setup slurm``), and submits ``core.arithmetic.add`` jobs to it with
``aiida.engine.submit``: a job that does nothing, so that only the path is timed. The job script writes
the time it starts and ends, so that every job gives, at sub-second resolution:

- submit -> running: ``submit()`` returned (the node's ctime) to the first line of the job script on the node;
  SLURM's own share, its SubmitTime -> StartTime (``scontrol``, 1 s resolution), is reported beside it;
- job end -> finished: the last line of the job script to the process being finished (scheduler poll,
  retrieve, parse).

``--jobs`` are submitted one after the other (each waits for the previous: latency on an idle queue), then
``--burst`` at once (the time until all have run). ``--poll`` sets the computer's minimum scheduler poll
interval (``ionfield setup`` gives 1 s; aiida-core's default is 10 s). Results go to
``benchmarks/results/slurm_latency.json``, one entry per poll interval; the cluster and profile are
removed afterwards.
Needs root (slurmd starts the job steps) and ``apt-get install slurmctld slurmd slurm-client munge``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLURM_SCRIPT = REPO / 'setup_profiles' / 'slurm' / 'local-slurm.sh'
RESULTS = Path(__file__).parent / 'results' / 'slurm_latency.json'
PROFILE = 'ionfield-slurm-latency'

JOBS = """
import json, re, statistics, subprocess, sys, time
from aiida import load_profile, orm
from aiida.engine import submit
from aiida.plugins import CalculationFactory
load_profile(sys.argv[1])
sequential, burst, poll = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
computer = orm.load_computer('slurm')
computer.set_minimum_job_poll_interval(poll)
code = orm.InstalledCode(label='bash', computer=computer, filepath_executable='/bin/bash',
                         default_calc_job_plugin='core.arithmetic.add').store()
Add = CalculationFactory('core.arithmetic.add')
STAMP = 'date +%s.%N >'

def builder(k):
    b = Add.get_builder()
    b.code, b.x, b.y = code, orm.Int(k), orm.Int(1)
    b.metadata.options.resources = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
    b.metadata.options.queue_name = 'debug'
    b.metadata.options.max_wallclock_seconds = 300
    b.metadata.options.prepend_text = STAMP + ' started.txt'
    b.metadata.options.append_text = STAMP + ' ended.txt'
    b.metadata.options.additional_retrieve_list = ['started.txt', 'ended.txt']
    return b

def wait(nodes):
    while not all(n.is_terminated for n in nodes):
        time.sleep(0.2)

def slurm_times(job_id):
    out = subprocess.run(['scontrol', '-o', 'show', 'job', job_id], capture_output=True, text=True).stdout
    stamps = dict(re.findall(r'(SubmitTime|StartTime)=(\\S+)', out))
    if len(stamps) < 2:
        return None
    parse = lambda s: time.mktime(time.strptime(s, '%Y-%m-%dT%H:%M:%S'))
    return parse(stamps['StartTime']) - parse(stamps['SubmitTime'])

def timings(node):
    read = lambda name: float(node.outputs.retrieved.base.repository.get_object_content(name))
    return {'pk': node.pk, 'job_id': node.get_job_id(), 'exit_status': node.exit_status,
            'submit_to_running_s': read('started.txt') - node.ctime.timestamp(),
            'slurm_submit_to_start_s': slurm_times(node.get_job_id()),
            'end_to_finished_s': node.mtime.timestamp() - read('ended.txt'),
            'submit_to_finished_s': node.mtime.timestamp() - node.ctime.timestamp()}

one_by_one = []
for k in range(sequential):
    node = submit(builder(k))
    wait([node])
    one_by_one.append(node)
start = time.time()
at_once = [submit(builder(k)) for k in range(burst)]
submitted = time.time() - start
wait(at_once)
failed = [[n.pk, n.exit_status, n.exit_message] for n in one_by_one + at_once if not n.is_finished_ok]
ok = lambda nodes: [timings(n) for n in nodes if n.is_finished_ok]
burst_ok = ok(at_once)
print(json.dumps({'sequential': ok(one_by_one), 'burst': burst_ok, 'failed': failed, 'burst_submit_s': submitted,
                  'burst_wall_s': max(n.mtime.timestamp() for n in at_once) - start if at_once else None}))
"""


def free_port_pair(first: int = 6817) -> int:
    """A port P with P and P + 1 free (slurmctld and slurmd), from ``first`` on."""
    for port in range(first, first + 200, 2):
        try:
            with socket.socket() as one, socket.socket() as two:
                one.bind(('', port))
                two.bind(('', port + 1))
            return port
        except OSError:
            continue
    raise SystemExit(f'no two adjacent free ports from {first}')


def checked(command: list[str], env: dict) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f'{" ".join(command)} failed:\n{result.stdout}{result.stderr}'[-3000:])
    return result.stdout


def summary(rows: list[dict], key: str) -> dict | None:
    values = sorted(row[key] for row in rows if row[key] is not None)
    if not values:
        return None
    return {'median': round(values[len(values) // 2], 2), 'min': round(values[0], 2), 'max': round(values[-1], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--jobs', type=int, default=5, help='jobs submitted one after the other')
    parser.add_argument('--burst', type=int, default=20, help='jobs submitted at once afterwards')
    parser.add_argument('--poll', type=float, default=1.0, help="the computer's minimum job poll interval (s)")
    args = parser.parse_args()
    missing = [tool for tool in ('munged', 'slurmctld', 'slurmd', 'sbatch', 'scontrol') if not shutil.which(tool)]
    if missing:
        found = ', '.join(missing)
        raise SystemExit(f'SLURM is not installed ({found}): apt-get install slurmctld slurmd slurm-client munge')
    if os.geteuid() != 0:
        raise SystemExit('run as root: the single-node SLURM needs it (slurmd starts the job steps)')
    bin_dir = Path(sys.executable).parent
    root = Path(tempfile.mkdtemp(prefix='ionfield-slurm-latency-'))
    cluster = root / 'slurm'
    env = {**os.environ, 'AIIDA_PATH': str(root / 'aiida'), 'OMP_NUM_THREADS': '1'}
    env['PATH'] = f'{bin_dir}{os.pathsep}{env.get("PATH", "")}'
    env['SLURM_PORT'] = str(free_port_pair())
    env['SLURM_CONF'] = str(cluster / 'slurm.conf')  # the daemon started by `setup laptop` polls this cluster
    try:
        checked(['bash', str(SLURM_SCRIPT), 'start', str(cluster)], env)
        checked([str(bin_dir / 'ionfield'), 'setup', 'laptop', '-p', PROFILE, '--without-qe'], env)
        checked([str(bin_dir / 'ionfield'), 'setup', 'slurm', '-p', PROFILE, '--without-qe'], env)
        command = [sys.executable, '-c', JOBS, PROFILE, str(args.jobs), str(args.burst), str(args.poll)]
        measured = json.loads(checked(command, env).strip().splitlines()[-1])
    finally:
        subprocess.run([str(bin_dir / 'verdi'), '-p', PROFILE, 'daemon', 'stop'], env=env, capture_output=True)
        subprocess.run(['scancel', '--user', str(os.geteuid())], env=env, capture_output=True)
        subprocess.run(['bash', str(SLURM_SCRIPT), 'stop', str(cluster)], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    keys = ('submit_to_running_s', 'slurm_submit_to_start_s', 'end_to_finished_s', 'submit_to_finished_s')
    result = {
        'job': 'core.arithmetic.add on /bin/bash, partition debug, through the daemon of a laptop profile',
        'minimum_job_poll_interval_s': args.poll,
        'sequential': {'jobs': args.jobs, **{key: summary(measured['sequential'], key) for key in keys}},
        'burst': {
            'jobs': args.burst,
            'submit_s': round(measured['burst_submit_s'], 2),
            'wall_s': round(measured['burst_wall_s'], 1) if measured['burst_wall_s'] is not None else None,
            **{key: summary(measured['burst'], key) for key in keys},
        },
        'failed': measured['failed'],
        'machine': f'{platform.node()} {os.cpu_count()} cores',
    }
    runs = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    runs[f'poll_{args.poll:g}s'] = result
    RESULTS.write_text(json.dumps(runs, indent=1) + '\n')
    print(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
