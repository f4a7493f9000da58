"""Sample efficiency of active learning on alpha-Li3N: committee selection vs random selection.

Pool-based and reproducible from its seeds, in three steps:

``pool``: a model trained on the committed QE labels (``results/li3n_labels_qe_fast.npz``) drives
field MD of the primitive cell at several temperatures, with and without a field; frames sampled
from every run are split, seeded, into an explored *pool* and a fixed *test* set (drawn from every
temperature)::

    OMP_NUM_THREADS=1 python benchmarks/al_sample_efficiency.py pool --out /tmp/al_pool

``label``: every pool and test frame is labelled with QE (``fast`` protocol, E/F/S) by
``LabelWorkChain`` through the profile's daemon::

    AIIDA_PATH=/tmp/aiida-dev python benchmarks/al_sample_efficiency.py label -p dev --dir /tmp/al_pool

``compare``: both arms start from the same initial frames (the unperturbed cell and rattles from the
committed labels) and, for ``--rounds`` rounds, add ``--per-round`` frames of the same pool: the
*active* arm picks with the product's selector (committee force deviation, trust levels, farthest-point
on descriptors), the *random* arm at random. After each round both train the same 2-member committee
with ``ionfield-train`` and the committee mean is tested on the fixed test set (E, F)::

    OMP_NUM_THREADS=1 python benchmarks/al_sample_efficiency.py compare --dir /tmp/al_pool \\
        --out benchmarks/results/al_sample_efficiency_li3n.json

Born charges are left out of the comparison: a DFPT label of a distorted frame costs 4.5 min here, so
the pool carries E/F/S only and the committees are trained without a Born-charge head.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / 'results'
COMMITTED_LABELS = RESULTS / 'li3n_labels_qe_fast.npz'


def _train(dataset, settings: dict, workdir: Path) -> Path:
    from ionfield.models.train.runner import MODEL_FILE, RESULT_FILE, run_training

    workdir.mkdir(parents=True, exist_ok=True)
    dataset.save(workdir / 'dataset.npz')
    (workdir / 'settings.json').write_text(json.dumps(settings))
    rc = run_training(workdir, workdir / 'dataset.npz', workdir / 'settings.json')
    if rc != 0:
        raise SystemExit(f'training failed: {(workdir / RESULT_FILE).read_text()}')
    return workdir / MODEL_FILE


def pool(args) -> None:
    from ionfield.models.data.dataset import Dataset
    from ionfield.models.md.engine import run_field_md
    from ionfield.models.md.settings import MDSettings
    from ionfield.models.md.trajectory import read_trajectory
    from ionfield.models.potential.calculator import load_calculator
    from ionfield.models.structures.reference import alpha_li3n
    from ionfield.models.train.config import training_frames

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    labels = training_frames(Dataset.load(COMMITTED_LABELS))
    settings = {'max_epochs': 200, 'patience': 50, 'seed': 0, 'batch_size': 2}
    model = _train(labels, settings, out / 'driver')
    frames, origin = [], []
    for temperature in args.temperatures:
        for field in (0.0, args.field):
            md = MDSettings.from_dict(
                {
                    'steps': args.steps,
                    'temperature_K': temperature,
                    'field': [0.0, 0.0, field],
                    'trajectory_every': args.every,
                    'seed': int(temperature + 1000 * field),
                }
            )
            workdir = out / f'md_T{temperature:g}_E{field:g}'
            result = run_field_md(alpha_li3n(), load_calculator(model), md, workdir)
            trajectory = read_trajectory(workdir / result.trajectory_file)
            for index in range(1, len(trajectory)):  # frame 0 is the perfect crystal
                frames.append(trajectory.atoms(index))
                origin.append({'temperature_K': temperature, 'field': field, 'step': int(trajectory.steps[index])})
            print(
                f'T {temperature:g} K, E {field:g} V/Å: {result.stop_reason}, {len(trajectory) - 1} frames', flush=True
            )
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(frames))
    test_idx, pool_idx = sorted(order[: args.test].tolist()), sorted(order[args.test : args.test + args.pool].tolist())
    from ase.io import write

    for name, indices in (('test', test_idx), ('pool', pool_idx)):
        images = []
        for index in indices:
            atoms = frames[index]
            atoms.info.update(origin[index])
            images.append(atoms)
        write(out / f'{name}.extxyz', images)
    (out / 'pool.json').write_text(json.dumps({'origin': origin, 'test': test_idx, 'pool': pool_idx}))
    print(f'{len(pool_idx)} pool and {len(test_idx)} test frames in {out}')


def label(args) -> None:
    from aiida import load_profile, orm
    from aiida.engine import submit
    from ase.io import read

    from ionfield.models.data.dataset import Dataset
    from ionfield.plugins.cli.launch import wait_for
    from ionfield.plugins.setup.settings import get_settings
    from ionfield.workflows.label.workchain import LabelWorkChain

    load_profile(args.profile)
    settings = get_settings()
    for name in ('test', 'pool'):
        images = read(args.dir / f'{name}.extxyz', index=':')
        structures = {f'{name}_{k:03d}': orm.StructureData(ase=atoms) for k, atoms in enumerate(images)}
        builder = LabelWorkChain.get_builder_from_protocol(
            structures,
            protocol='fast',
            bec=False,
            overrides={'pseudo_family': settings['pseudo_family']},
            pw_code=settings['codes']['pw'],
        )
        builder.max_concurrent = orm.Int(1)
        started = time.monotonic()
        node = submit(builder)
        print(f'{name}: LabelWorkChain<{node.pk}> with {len(structures)} frames', flush=True)
        if not wait_for([node], timeout=args.timeout, poll=10):
            raise SystemExit(f'LabelWorkChain<{node.pk}> not finished after {args.timeout} s')
        summary = node.outputs.summary.get_dict()['structures']
        frames = node.outputs.dataset.get_dataset()
        keys = [key for key in sorted(summary) if summary[key].get('frame_index') is not None]
        ordered = Dataset(frames[summary[key]['frame_index']] for key in keys)
        ordered.save(args.dir / f'{name}_labels.npz')
        indices = [int(key.split('_')[1]) for key in keys]
        (args.dir / f'{name}_labels.json').write_text(json.dumps(indices))
        print(f'{name}: {len(ordered)} of {len(structures)} labelled in {time.monotonic() - started:.0f} s', flush=True)


def _committee_errors(models, test) -> tuple[dict, list]:
    """(E/F errors of the committee mean on ``test``, the committee for later use)."""
    from ionfield.models.potential.disagreement import CommitteeEvaluator

    committee = CommitteeEvaluator(models, has_bec=False)
    predictions = committee.evaluate(test.to_ase())
    force_errors = np.concatenate([p.forces - f.forces for p, f in zip(predictions, test, strict=True)])
    energy_errors = [(p.energy - f.energy) / f.natoms for p, f in zip(predictions, test, strict=True)]
    return {
        'forces_rmse_mev_per_a': float(1000 * np.sqrt(np.mean(force_errors**2))),
        'energy_mae_mev_per_atom': float(1000 * np.mean(np.abs(energy_errors))),
    }, committee


def compare(args) -> None:
    from ionfield.models.active_learning.descriptors import descriptor_matrix
    from ionfield.models.active_learning.selection import FrameSelector
    from ionfield.models.active_learning.trust import TrustLevels
    from ionfield.models.data.dataset import Dataset
    from ionfield.models.train.config import training_frames

    test = Dataset.load(args.dir / 'test_labels.npz')
    pool_frames = Dataset.load(args.dir / 'pool_labels.npz')
    committed = training_frames(Dataset.load(COMMITTED_LABELS))
    initial = Dataset(committed[k].replace(born_charges=None, eps_inf=None) for k in range(args.initial))
    species = ['Li', 'N']
    descriptors = descriptor_matrix(pool_frames.to_ase(), species)
    base = {'max_epochs': args.epochs, 'patience': args.patience, 'batch_size': 2, 'bec': False}
    trust = TrustLevels(*args.force_trust)
    results = {'initial': args.initial, 'per_round': args.per_round, 'pool': len(pool_frames), 'test': len(test)}
    results.update(settings=base, force_trust=list(args.force_trust), arms={})
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        for arm in ('active', 'random'):
            chosen: list[int] = []
            curve = []
            for round_ in range(args.rounds + 1):
                train = Dataset([*initial, *(pool_frames[k] for k in chosen)])
                started = time.monotonic()
                models = [
                    _train(train, {**base, 'seed': seed}, Path(tmp) / f'{arm}_{round_}_{seed}') for seed in (0, 1)
                ]
                errors, committee = _committee_errors(models, test)
                entry = {'labels': len(train), 'selected': list(chosen), **errors}
                entry['train_s'] = round(time.monotonic() - started, 1)
                if round_ == args.rounds:
                    curve.append(entry)
                    print(arm, json.dumps(entry), flush=True)
                    break
                left = [k for k in range(len(pool_frames)) if k not in chosen]
                if arm == 'active':
                    predictions = committee.evaluate([pool_frames[k].to_ase() for k in left])
                    deviation = np.array([p.max_force_deviation for p in predictions])
                    selection = FrameSelector(trust, cap=args.per_round, seed=args.seed + round_).select(
                        deviation, descriptors[left], reference=descriptor_matrix(train.to_ase(), species)
                    )
                    picks = [left[k] for k in selection.selected]
                    if len(picks) < args.per_round:  # fewer candidates than the cap: top up by deviation
                        rest = [left[k] for k in np.argsort(-deviation) if left[k] not in picks]
                        picks += rest[: args.per_round - len(picks)]
                    entry['shares'] = selection.shares
                else:
                    picks = rng.choice(left, size=args.per_round, replace=False).tolist()
                chosen += [int(k) for k in picks]
                curve.append(entry)
                print(arm, json.dumps(entry), flush=True)
            results['arms'][arm] = curve
    random_final = results['arms']['random'][-1]['forces_rmse_mev_per_a']
    reached = [e['labels'] for e in results['arms']['active'] if e['forces_rmse_mev_per_a'] <= random_final]
    results['random_final_forces_rmse'] = random_final
    results['active_labels_to_reach_it'] = reached[0] if reached else None
    results['random_labels'] = results['arms']['random'][-1]['labels']
    args.out.write_text(json.dumps(results, indent=1))
    print(
        json.dumps({k: results[k] for k in ('random_final_forces_rmse', 'active_labels_to_reach_it', 'random_labels')})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    p = commands.add_parser('pool', help='field MD with a model trained on the committed labels')
    p.add_argument('--temperatures', type=float, nargs='+', default=[300.0, 600.0, 900.0])
    p.add_argument('--field', type=float, default=0.05, help='V/Å along z (runs with and without it)')
    p.add_argument('--steps', type=int, default=1000)
    p.add_argument('--every', type=int, default=50)
    p.add_argument('--pool', type=int, default=36)
    p.add_argument('--test', type=int, default=12)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', type=Path, default=Path('al_pool'))
    p.set_defaults(run=pool)
    lab = commands.add_parser('label', help='QE E/F/S labels of the pool and the test set through the daemon')
    lab.add_argument('-p', '--profile', required=True)
    lab.add_argument('--dir', type=Path, default=Path('al_pool'))
    lab.add_argument('--timeout', type=float, default=4 * 3600)
    lab.set_defaults(run=label)
    c = commands.add_parser('compare', help='active vs random selection from the labelled pool')
    c.add_argument('--dir', type=Path, default=Path('al_pool'))
    c.add_argument('--initial', type=int, default=4)
    c.add_argument('--rounds', type=int, default=3)
    c.add_argument('--per-round', type=int, default=4)
    c.add_argument('--force-trust', type=float, nargs=2, default=[0.05, 1.0])
    c.add_argument('--epochs', type=int, default=150)
    c.add_argument('--patience', type=int, default=40)
    c.add_argument('--seed', type=int, default=0)
    c.add_argument('--out', type=Path, default=RESULTS / 'al_sample_efficiency_li3n.json')
    c.set_defaults(run=compare)
    args = parser.parse_args()
    args.run(args)


if __name__ == '__main__':
    main()
