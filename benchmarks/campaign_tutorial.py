"""The campaign tutorial of docs/campaign.md, end to end, without an AiiDA profile.

Measures what the tutorial quotes: Li D* at E = 0 (x+y+z) per temperature, the enhancement of the Li MSD
along a 0.1 V/Å field (over the E = 0 MSD along the same axis), the drift and Einstein mobilities, the
Arrhenius Ea, which runs stopped early and why, and the wall time of each stage. It runs the same plain code
as the AiiDA path, stage by stage:

1. ``train``: ``ionfield train <dataset> --epochs 80``, i.e. the train protocol's default settings with
   ``max_epochs`` 80 and seed 0, on the committed QE labels (``benchmarks/results/li3n_labels_qe_fast.npz``,
   40 frames of 4-atom alpha-Li3N), with ``python -m ionfield.models.train.runner`` (``ionfield-train``).
2. ``md``: the grid of the ``fast`` protocol of ``workflows/transport/protocol.yaml`` (read from the YAML
   through ``TransportCampaignWorkChain.get_protocol_inputs``) on a 3x3x3 alpha-Li3N supercell with one Li
   vacancy (``make_supercell``/``remove_atoms``, what ``--supercell 3x3x3 --vacancies Li`` calls), each run
   with ``python -m ionfield.models.md.runner`` (``ionfield-md``), ``--jobs`` at a time, one torch thread each.
   MD settings and seeds are those of ``TransportCampaignWorkChain.run_md``.
3. ``analyse``: ``analyse_condition`` per condition (what the ``analyse_replicas`` calcfunction calls) with
   the campaign's analysis options, then ``summarise_campaign`` (Arrhenius, enhancement, drift).

Runs that stopped early on a physical bound (close contact, uncertainty, ...) are kept and analysed, as the
workchain does; failed runs are listed and left out. The command (about 12 minutes on 2 cores)::

    OMP_NUM_THREADS=1 python benchmarks/campaign_tutorial.py --workdir /tmp/campaign_tutorial \\
        --out benchmarks/results/campaign_tutorial.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
DATASET = HERE / 'results' / 'li3n_labels_qe_fast.npz'
STRUCTURE_KEY = 'alpha_li3n'  # what `ionfield campaign run alpha-Li3N` names the structure
USABLE = ('completed', 'uncertainty', 'close_contact', 'temperature_runaway', 'nan')  # workflows/md: md_usable


def tutorial_structure():
    """alpha-Li3N, 3x3x3 supercell (108 atoms), the first Li removed (107 atoms)."""
    from ase import Atoms

    from ionfield.models.structures.reference import alpha_li3n
    from ionfield.models.structures.sampling import make_supercell, remove_atoms

    atoms = remove_atoms(make_supercell(alpha_li3n(), 3), 'Li', 1)
    # what MDCalculation writes: the structure only (a StructureData keeps no info dict)
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)


def training_settings(epochs: int, seed: int) -> dict:
    from ionfield.workflows.train.workchain import TrainWorkChain

    return TrainWorkChain.get_protocol_inputs(None, {'training': {'max_epochs': epochs, 'seed': seed}})['training']


def _shown(command: list[str]) -> str:
    """A command as a reader types it: ``python`` for this interpreter, paths relative to the repository."""
    repo = f'{Path(__file__).resolve().parents[1]}/'
    return ' '.join('python' if part == sys.executable else part.replace(repo, '') for part in command)


def _ok(result_file: Path) -> dict | None:
    return json.loads(result_file.read_text()) if result_file.is_file() else None


def train(workdir: Path, dataset: Path, epochs: int, seed: int, reuse: bool = False) -> tuple[Path, dict, list[str]]:
    workdir.mkdir(parents=True, exist_ok=True)
    settings = workdir / 'settings.json'
    settings.write_text(json.dumps(training_settings(epochs, seed), indent=1))
    command = [
        sys.executable,
        '-m',
        'ionfield.models.train.runner',
        '--workdir',
        str(workdir),
        '--dataset',
        str(dataset.resolve()),
        '--settings',
        str(settings),
        '--device',
        'cpu',
    ]
    earlier = _ok(workdir / 'result.json') if reuse else None
    if earlier is not None and earlier['status'] == 'ok' and earlier['settings'] == training_settings(epochs, seed):
        return workdir / 'model.nequip.zip', {**earlier, 'reused': True}, command
    rc = subprocess.run(command, env=_env()).returncode
    result = json.loads((workdir / 'result.json').read_text())
    if rc != 0 or result['status'] != 'ok':
        raise SystemExit(f'training failed ({rc}): {result.get("message")}')
    return workdir / 'model.nequip.zip', result, command


def _env() -> dict:
    env = dict(os.environ)
    env['OMP_NUM_THREADS'] = '1'
    return env


def md_runs(campaign, structure: str) -> list[dict]:
    """One entry per MD run: the seeds and settings of TransportCampaignWorkChain.run_md (one structure)."""
    from ionfield.models.transport.condition import condition_key

    runs = []
    s_index = 0
    for c_index, (temperature, field, mode) in enumerate(campaign.runs()):
        key = condition_key(structure, temperature, field, mode)
        for replica in range(campaign.replicas):
            seed = campaign.seed + 10000 * s_index + 100 * c_index + replica
            runs.append(
                {
                    'name': f'md_{key}_r{replica}',
                    'condition': key,
                    'temperature_K': temperature,
                    'field': field,
                    'bec_mode': mode,
                    'replica': replica,
                    'seed': seed,
                    'settings': campaign.md_settings(temperature, field, mode, seed),
                }
            )
    return runs


def md_command(workdir: Path, structure_file: Path, model: Path) -> list[str]:
    return [
        sys.executable,
        '-m',
        'ionfield.models.md.runner',
        '--workdir',
        str(workdir),
        '--structure',
        str(structure_file),
        '--model',
        str(model),
        '--settings',
        str(workdir / 'settings.json'),
        '--device',
        'cpu',
    ]


def run_md_grid(
    runs: list[dict], root: Path, structure_file: Path, model: Path, jobs: int, reuse: bool = False
) -> list[str]:
    """Run every MD run with ionfield-md, ``jobs`` at a time; fills in status, message and wall time.

    ``reuse``: a run whose folder already has a ``result.json`` with the same settings is not run again."""
    pending, active = [], []
    for run in runs:
        workdir = root / run['name']
        earlier = _ok(workdir / 'result.json') if reuse else None
        same = earlier is not None and _ok(workdir / 'settings.json') == run['settings']
        if same and earlier['status'] != 'input_error':
            run.update(
                exit_code=None,
                status=earlier['status'],
                message=earlier['message'],
                step=earlier.get('step'),
                time_fs=earlier.get('time_fs'),
                wall_s=earlier.get('wall_time_s'),
                reused=True,
            )
        else:
            pending.append(run)
    while pending or active:
        while pending and len(active) < jobs:
            run = pending.pop(0)
            workdir = root / run['name']
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / 'settings.json').write_text(json.dumps(run['settings'], indent=1))
            command = md_command(workdir, structure_file, model)
            log = open(workdir / 'md.log', 'w')  # noqa: SIM115 - closed when the run ends
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_env())
            active.append((run, process, log, time.monotonic()))
        time.sleep(1.0)
        for item in list(active):
            run, process, log, started = item
            if process.poll() is None:
                continue
            log.close()
            active.remove(item)
            result_file = root / run['name'] / 'result.json'
            result = json.loads(result_file.read_text()) if result_file.is_file() else {}
            run.update(
                exit_code=process.returncode,
                status=result.get('status', 'failed'),
                message=result.get('message', 'no result.json'),
                step=result.get('step'),
                time_fs=result.get('time_fs'),
                wall_s=round(time.monotonic() - started, 1),
            )
            print(f'{run["name"]}: {run["status"]} in {run["wall_s"]} s {run["message"]}', flush=True)
    return md_command(root / runs[0]['name'], structure_file, model)


def analyse(runs: list[dict], root: Path, campaign, structure: str) -> tuple[list, list, dict]:
    from ionfield.models.md.trajectory import FILE_NAMES, read_trajectory
    from ionfield.models.transport.campaign import summarise_campaign
    from ionfield.models.transport.condition import analyse_condition

    options = campaign.analysis_options
    conditions, failures, by_key = [], [], {}
    for run in runs:
        path = root / run['name'] / FILE_NAMES[run['settings']['trajectory_format']]
        if run['status'] in USABLE and path.is_file():
            by_key.setdefault(run['condition'], (run, []))[1].append(read_trajectory(path))
        else:
            failures.append({'key': run['name'], 'message': f'{run["status"]}: {run["message"]}'})
    for run, trajectories in (by_key[key] for key in sorted(by_key)):
        result = analyse_condition(
            trajectories, run['temperature_K'], run['field'], run['bec_mode'], options, structure=structure
        )
        conditions.append(result.summary)
    summary = summarise_campaign(conditions, failures, seed=campaign.seed)
    return conditions, failures, summary


def table(conditions: list[dict], summary: dict, species: str = 'Li') -> list[dict]:
    """The tutorial's table: one row per temperature (full Z*, plus the diagonal ablation)."""
    from ionfield.models.transport.diffusion import einstein_mobility_factor

    rows = []
    controls = {c['temperature_K']: c for c in conditions if c['field_magnitude_V_per_A'] == 0}
    for temperature, control in sorted(controls.items()):
        li = control['species'][species]
        d = li['D']
        factor = einstein_mobility_factor(li['charge'], temperature)
        row = {
            'temperature_K': temperature,
            'D_xyz_cm2_per_s': [d['xyz'].get('mean'), d['xyz'].get('std')],
            'D_x_cm2_per_s': [d['x'].get('mean'), d['x'].get('std')],
            'D_z_cm2_per_s': [d['z'].get('mean'), d['z'].get('std')],
            'einstein_mobility_x_cm2_per_Vs': [d['x']['mean'] * factor, d['x']['std'] * factor]
            if d['x'].get('status') == 'ok'
            else None,
            'einstein_mobility_xyz_cm2_per_Vs': [d['xyz']['mean'] * factor, d['xyz']['std'] * factor]
            if d['xyz'].get('status') == 'ok'
            else None,
            'control_drift_x_A_per_fs': [
                li['drift']['velocity_along_A_per_fs'],
                li['drift']['velocity_along_error_A_per_fs'],
            ],
            'duration_ps': control['duration_ps'],
            'max_lag_ps': control['max_lag_ps'],
        }
        for entry in summary['field_enhancement']:
            if entry['temperature_K'] == temperature and entry['species'] == species:
                row[f'msd_along_ratio_{entry["bec_mode"]}'] = entry['msd_along_ratio']
                row[f'msd_across_ratio_{entry["bec_mode"]}'] = entry['msd_across_ratio']
        for condition in conditions:
            if condition['temperature_K'] == temperature and condition['field_magnitude_V_per_A'] > 0:
                drift = condition['species'][species]['drift']
                row[f'drift_mobility_{condition["bec_mode"]}_cm2_per_Vs'] = [
                    drift['mobility_cm2_per_Vs'],
                    drift['mobility_error_cm2_per_Vs'],
                ]
        rows.append(row)
    return rows


def versions() -> dict:
    found = {'python': platform.python_version(), 'machine': platform.machine()}
    for package in ('torch', 'nequip', 'kinisi', 'ase', 'numpy', 'aiida-ionfield', 'aiida-core'):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--workdir', type=Path, default=Path('campaign_tutorial'), help='runs go here')
    parser.add_argument('--dataset', type=Path, default=DATASET)
    parser.add_argument('--epochs', type=int, default=80)
    parser.add_argument('--seed', type=int, default=0, help='training seed')
    parser.add_argument('--protocol', default='fast', help='of workflows/transport/protocol.yaml')
    parser.add_argument('--jobs', type=int, default=2, help='MD runs at a time (one torch thread each)')
    parser.add_argument(
        '--reuse', action='store_true', help='keep finished runs of an earlier call in --workdir (same settings)'
    )
    parser.add_argument('--out', type=Path, default=HERE / 'results' / 'campaign_tutorial.json')
    args = parser.parse_args(argv)

    from ionfield.models.data.dataset import Dataset
    from ionfield.models.transport.settings import CampaignSettings
    from ionfield.workflows.transport.workchain import TransportCampaignWorkChain

    root = args.workdir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    wall = {}
    started = time.monotonic()
    model, trained, train_command = train(root / 'train', args.dataset, args.epochs, args.seed, args.reuse)
    wall['train_s'] = round(time.monotonic() - started, 1)
    print(f'trained in {wall["train_s"]} s: {trained["epochs"]} epochs, {trained["metrics"]}', flush=True)

    campaign = CampaignSettings.from_dict(TransportCampaignWorkChain.get_protocol_inputs(args.protocol)['settings'])
    structure = tutorial_structure()
    structure_file = root / 'structure.xyz'
    structure.write(structure_file, format='extxyz')
    runs = md_runs(campaign, STRUCTURE_KEY)
    started = time.monotonic()
    md_command = run_md_grid(runs, root / 'md', structure_file, model, args.jobs, args.reuse)
    wall['md_s'] = round(time.monotonic() - started, 1)

    started = time.monotonic()
    conditions, failures, summary = analyse(runs, root / 'md', campaign, STRUCTURE_KEY)
    wall['analyse_s'] = round(time.monotonic() - started, 1)

    xyz = next(e for e in summary['arrhenius'] if e['species'] == 'Li' and e['direction'] == 'xyz')
    record = {
        'what': 'docs/campaign.md tutorial: Li transport under 0.1 V/Å in alpha-Li3N (3x3x3, one Li vacancy)',
        'command': ' '.join(['OMP_NUM_THREADS=1', 'python', 'benchmarks/campaign_tutorial.py', *sys.argv[1:]]),
        'train_command': _shown(train_command),
        'md_command_example': _shown(md_command),
        'dataset': {'path': str(args.dataset), 'frames': len(Dataset.load(args.dataset))},
        'training': {
            'settings': trained['settings'],
            'epochs': trained['epochs'],
            'split_sizes': trained['split_sizes'],
            'test_metrics': trained['metrics'],
        },
        'structure': {
            'name': STRUCTURE_KEY,
            'natoms': len(structure),
            'formula': structure.get_chemical_formula(),
            'cell_A': np.asarray(structure.cell).round(4).tolist(),
        },
        'protocol': args.protocol,
        'campaign_settings': campaign.to_dict(),
        'analysis_options': campaign.analysis_options.to_dict(),
        'jobs': args.jobs,
        'cpu_count': os.cpu_count(),
        'wall_time_s': wall,
        'runs': [{k: v for k, v in run.items() if k != 'settings'} for run in runs],
        'stopped_early': [
            {'run': r['name'], 'status': r['status'], 'message': r['message'], 'step': r.get('step')}
            for r in runs
            if r['status'] != 'completed'
        ],
        'table_Li': table(conditions, summary),
        'arrhenius_Li_xyz': xyz['fit'],
        'summary': summary,
        'conditions': conditions,
        'versions': versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, default=float) + '\n')
    print(json.dumps({'wall_time_s': wall, 'table_Li': record['table_Li'], 'Ea': xyz['fit']}, indent=1))
    return record


if __name__ == '__main__':
    main()
