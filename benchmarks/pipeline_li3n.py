"""``ionfield run`` for real, as a new user runs it: a fresh laptop profile, the daemon, alpha-Li3N, one command.

It makes the profile (``ionfield setup laptop``), runs ``ionfield run alpha-Li3N --protocol fast`` with the
``--set`` overrides given after ``--`` (none: the README main job itself), waits for it, and writes what it
measured: the wall time of each stage, the DFT jobs (pw.x and ph.x, with the wall time each reports), the
orchestration overhead of every labelling batch (its wall time less the DFT wall time of its jobs, over the
latter), the validation table and the campaign's Arrhenius fits. The command of the committed smoke run::

    OMP_NUM_THREADS=1 python benchmarks/pipeline_li3n.py --aiida-path /tmp/bench-pipeline \\
        --out benchmarks/results/pipeline_li3n_smoke.json -- --override-validation \\
        --set active_learning.settings.max_iterations=1 ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def _run(command: list[str], env: dict, log) -> float:
    start = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    log.write(f'$ {" ".join(command)}\n{result.stdout}\n{result.stderr}\n')
    log.flush()
    print(result.stdout[-3000:], result.stderr[-2000:], sep='\n')
    if result.returncode and command[1] != 'run':
        sys.exit(f'{command[:3]} failed: {result.returncode}')
    return time.monotonic() - start


def _wall(node) -> float:
    return round((node.mtime - node.ctime).total_seconds(), 1)


def measure(profile: str) -> dict:
    """Stage times, DFT jobs and labelling overhead of the newest PipelineWorkChain of ``profile``."""
    from aiida import load_profile, orm

    load_profile(profile)
    from ionfield.workflows.pipeline.workchain import PipelineWorkChain

    query = orm.QueryBuilder().append(PipelineWorkChain, tag='p').order_by({'p': {'ctime': 'desc'}})
    node = query.first()[0]
    result = {
        'pipeline_pk': node.pk,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'pipeline_wall_s': _wall(node),
        'stages': node.outputs.stages.get_list() if 'stages' in node.outputs else [],
    }
    dft = {'pw': [], 'ph': []}
    batches = []
    for descendant in node.called_descendants:
        label = descendant.process_label
        if label in ('PwCalculation', 'PhCalculation') and 'output_parameters' in descendant.outputs:
            reported = descendant.outputs.output_parameters.get('wall_time_seconds')
            dft['pw' if label == 'PwCalculation' else 'ph'].append(
                {
                    'natoms': len(descendant.inputs.structure.sites) if 'structure' in descendant.inputs else None,
                    'wall_s': reported,
                    'job_s': _wall(descendant),
                }
            )
        if label == 'LabelWorkChain':
            jobs = [
                d.outputs.output_parameters.get('wall_time_seconds') or 0.0
                for d in descendant.called_descendants
                if d.process_label in ('PwCalculation', 'PhCalculation') and 'output_parameters' in d.outputs
            ]
            if jobs:
                batches.append(
                    {
                        'pk': descendant.pk,
                        'structures': len(descendant.inputs.structures),
                        'wall_s': _wall(descendant),
                        'dft_s': round(sum(jobs), 1),
                        'overhead_fraction': round((_wall(descendant) - sum(jobs)) / sum(jobs), 4),
                    }
                )
    result['dft_jobs'] = {name: len(jobs) for name, jobs in dft.items()}
    result['dft_wall_s'] = {name: round(sum(j['wall_s'] or 0 for j in jobs), 1) for name, jobs in dft.items()}
    result['pw_by_size'] = {}
    for job in dft['pw']:
        result['pw_by_size'].setdefault(str(job['natoms']), []).append(job['wall_s'])
    result['label_batches'] = batches
    total_dft = sum(b['dft_s'] for b in batches)
    total_wall = sum(b['wall_s'] for b in batches)
    result['label_overhead_fraction'] = round((total_wall - total_dft) / total_dft, 4) if total_dft else None
    if 'validation' in node.outputs:
        result['validation'] = {key: table.get_dict() for key, table in node.outputs.validation.items()}
    if 'campaign_summary' in node.outputs:
        summary = node.outputs.campaign_summary.get_dict()
        result['arrhenius'] = summary.get('arrhenius')
        result['anisotropy'] = summary.get('anisotropy')
        result['campaign_warnings'] = summary.get('warnings', [])[:20]
    if 'history' in node.outputs:
        result['active_learning_history'] = node.outputs.history.get_list()
    if 'defects' in node.outputs:
        result['defects'] = {key: value.get_dict() for key, value in node.outputs.defects.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--aiida-path', type=Path, required=True, help='A fresh folder for the profile.')
    parser.add_argument('--profile', default='bench-pipeline')
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--wait', type=float, default=6 * 3600)
    parser.add_argument('run_arguments', nargs='*', help='After --: more `ionfield run` arguments.')
    args = parser.parse_args()

    env = {**os.environ, 'AIIDA_PATH': str(args.aiida_path), 'OMP_NUM_THREADS': '1'}
    os.environ.update(AIIDA_PATH=str(args.aiida_path))
    args.aiida_path.mkdir(parents=True, exist_ok=True)
    report = args.out.with_suffix('.html')
    with open(args.out.with_suffix('.log'), 'w') as log:
        setup_s = _run(['ionfield', 'setup', 'laptop', '-p', args.profile], env, log)
        command = ['ionfield', 'run', 'alpha-Li3N', '--protocol', 'fast', '-p', args.profile]
        command += [*args.run_arguments, '--wait', str(args.wait), '-o', str(report)]
        run_s = _run(command, env, log)
        subprocess.run(['verdi', '-p', args.profile, 'daemon', 'stop'], env=env, capture_output=True)
    result = {
        'command': ' '.join(command),
        'machine': {'cpus': os.cpu_count(), 'python': platform.python_version()},
        'setup_s': round(setup_s, 1),
        'run_command_s': round(run_s, 1),
        **measure(args.profile),
    }
    args.out.write_text(json.dumps(result, indent=1, default=str) + '\n')
    print(json.dumps({k: result[k] for k in ('pipeline_wall_s', 'dft_jobs', 'dft_wall_s', 'label_overhead_fraction')}))


if __name__ == '__main__':
    main()
