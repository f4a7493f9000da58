"""Load on the server profile: N labelling workchains submitted at once, all must finish.

    python benchmarks/server_load.py [N] [--workers 2] [--keep]

Sets up a fresh server profile (PostgreSQL + RabbitMQ on localhost, ``ionfield setup server``, a
daemon with ``--workers`` workers), submits N ``LabelWorkChain`` (each a differently rattled
alpha-Li3N, E/F/S only) in one go with a fast engine setting (pw.x on one rank, 25/200 Ry,
a coarse k mesh: seconds per SCF, so the engine's own bookkeeping is what is measured), waits
for all of them, and writes processes/min (every process node: workchains, calculations,
calcfunctions) to ``benchmarks/results/server_load.json``. The profile and its database are
deleted afterwards unless ``--keep``. Needs QE, PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / 'results' / 'server_load.json'
FAST_ENGINE = {
    'ecutwfc': 25,
    'ecutrho': 200,
    'kpoints_distance': 0.8,
    'pw': {
        'metadata': {'options': {'withmpi': False, 'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}}
    },
}

SUBMIT = """
import json, sys, time
from aiida import load_profile, orm
from aiida.engine import submit
load_profile(sys.argv[1])
from aiida.manage.configuration import get_config_option
options = {name: get_config_option(name) for name in ('runner.poll.interval', 'daemon.worker_process_slots')}
from ionfield.models.structures.reference import get_reference_structure
from ionfield.models.structures.sampling import rattle
from ionfield.plugins.setup.settings import get_settings
from ionfield.workflows.label.workchain import LabelWorkChain
n, overrides = int(sys.argv[2]), json.loads(sys.argv[3])
settings = get_settings()
overrides['pseudo_family'] = settings['pseudo_family']
li3n = get_reference_structure('alpha-Li3N')
builders = []
for k in range(n):
    structure = orm.StructureData(ase=rattle(li3n, 0.05, seed=k)[0])
    builder = LabelWorkChain.get_builder_from_protocol(
        {'li3n': structure}, protocol='fast', bec=False, overrides=overrides, pw_code=settings['codes']['pw'])
    builder.max_concurrent = orm.Int(0)
    builders.append(builder)
start = time.time()
pks = [submit(builder).pk for builder in builders]
print(json.dumps({'start': start, 'submitted_s': time.time() - start, 'pks': pks, 'options': options}))
"""

WAIT = """
import json, sys, time
from aiida import load_profile, orm
load_profile(sys.argv[1])
pks = json.loads(sys.argv[2])
# one light query every 10 s: this script shares the 2 cores it measures
while orm.QueryBuilder().append(orm.ProcessNode, filters={'id': {'in': pks}, 'attributes.process_state': {
        'in': ['finished', 'excepted', 'killed']}}).count() < len(pks):
    time.sleep(10)
nodes = [orm.load_node(pk) for pk in pks]
first = min(node.ctime for node in nodes)
end = max(node.mtime for node in nodes).timestamp()
processes = orm.QueryBuilder().append(orm.ProcessNode, filters={'ctime': {'>=': first}}).count()
jobs = orm.QueryBuilder().append(orm.CalcJobNode, filters={'ctime': {'>=': first}}).count()
print(json.dumps({'last_mtime': end, 'ok': sum(n.is_finished_ok for n in nodes),
                  'failed': [[n.pk, n.exit_status, n.exit_message] for n in nodes if not n.is_finished_ok],
                  'processes': processes, 'calcjobs': jobs}))
"""


def python(profile: str, env: dict, script: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, '-c', script, profile, *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('n', nargs='?', type=int, default=100)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--keep', action='store_true')
    args = parser.parse_args()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, 'AIIDA_PATH': tempfile.mkdtemp(prefix='ionfield-load-'), 'OMP_NUM_THREADS': '1'}
    env['PATH'] = f'{bin_dir}{os.pathsep}{env.get("PATH", "")}'
    profile = f'ionfield-load-{secrets.token_hex(3)}'
    setup = subprocess.run(
        [f'{bin_dir}/ionfield', 'setup', 'server', '-p', profile, '--workers', str(args.workers)],
        env=env,
        capture_output=True,
        text=True,
    )
    if setup.returncode != 0:
        raise SystemExit(setup.stdout + setup.stderr)
    try:
        submitted = python(profile, env, SUBMIT, str(args.n), json.dumps(FAST_ENGINE))
        print(f'submitted {args.n} LabelWorkChains in {submitted["submitted_s"]:.1f} s', flush=True)
        done = python(profile, env, WAIT, json.dumps(submitted['pks']))
    finally:
        if not args.keep:
            subprocess.run([f'{bin_dir}/verdi', '-p', profile, 'daemon', 'stop'], env=env, capture_output=True)
            subprocess.run(
                [f'{bin_dir}/verdi', 'profile', 'delete', '--force', '--delete-data', profile],
                env=env,
                capture_output=True,
            )
            database = f'aiida_{profile}'.replace('-', '_')
            for sql in (f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{database}"'):
                subprocess.run(['psql', '-h', 'localhost', '-U', 'postgres', '-c', sql], capture_output=True)
    minutes = (done['last_mtime'] - submitted['start']) / 60
    result = {
        'workchains': args.n,
        'workers': args.workers,
        'finished_ok': done['ok'],
        'failed': done['failed'],
        'processes': done['processes'],
        'calcjobs': done['calcjobs'],
        'submit_s': round(submitted['submitted_s'], 1),
        'wall_min': round(minutes, 2),
        'processes_per_min': round(done['processes'] / minutes, 1),
        'workchains_per_min': round(args.n / minutes, 1),
        'profile_options': submitted['options'],
        'engine': FAST_ENGINE,
        'machine': f'{platform.node()} {os.cpu_count()} cores',
    }
    RESULTS.write_text(json.dumps(result, indent=1) + '\n')
    print(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
