"""Learning curve on QE-labelled alpha-Li3N: E, F and Z* test error vs training-set size.

Two steps, both reproducible from their seeds.

``label`` builds randomly strained (``--max-strain``) and rattled (``--stdev`` Å) copies of the
primitive alpha-Li3N cell with the sampling calcfunctions (so the provenance shows how each frame
was made) and labels them with ``LabelWorkChain`` through the profile's daemon: E/F/S for all,
DFPT Born charges for the first ``--bec-frames``. The merged dataset is saved as ``.npz``::

    AIIDA_PATH=/tmp/aiida-dev python benchmarks/learning_curve_li3n.py label -p dev \\
        --frames 40 --bec-frames 10 --out li3n_labels.npz

``curve`` holds out a fixed, seeded test set (``--test-bec`` frames with Z*, ``--test-plain``
without), then trains one model per training-set size on nested subsets of the rest with
``ionfield-train`` (the product's runner, one torch thread) and evaluates every model on the same
test set. The result is a JSON file with, per size, the frames used and E/F/S/Z* errors::

    OMP_NUM_THREADS=1 python benchmarks/learning_curve_li3n.py curve li3n_labels.npz \\
        --sizes 6 12 24 all --out benchmarks/results/learning_curve_li3n.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def label(args) -> None:
    from aiida import load_profile, orm
    from aiida.engine import submit

    from ionfield.models.data.dataset import Dataset
    from ionfield.models.structures.reference import alpha_li3n
    from ionfield.plugins.cli.launch import wait_for
    from ionfield.plugins.setup.settings import get_settings
    from ionfield.workflows.label.workchain import LabelWorkChain
    from ionfield.workflows.structures import functions as sampling

    load_profile(args.profile)
    settings = get_settings()
    codes = settings['codes']
    start = orm.StructureData(ase=alpha_li3n(), label='alpha-Li3N')
    strained = sampling.random_strains(
        structure=start, max_strain=orm.Float(args.max_strain), seed=orm.Int(args.seed), count=orm.Int(args.frames)
    )
    structures = {}
    for index in range(args.frames):
        rattled = sampling.rattle_structure(
            structure=strained[f'strained_{index:03d}'],
            stdev=orm.Float(args.stdev),
            seed=orm.Int(args.seed * 1000 + index),
            count=orm.Int(1),
        )
        structures[f'li3n_{index:03d}'] = rattled['rattled_000']
    keys = sorted(structures)
    # plain first (minutes), then DFPT; one batch at a time, one structure at a time: 2 MPI ranks fill 2 cores
    batches = {'plain': keys[args.bec_frames :], 'bec': keys[: args.bec_frames]}
    nodes = {}
    started = time.monotonic()
    for name, batch in batches.items():
        if not batch:
            continue
        bec = name == 'bec'
        builder = LabelWorkChain.get_builder_from_protocol(
            {key: structures[key] for key in batch},
            engine='qe',
            protocol=args.protocol,
            bec=bec,
            overrides={'pseudo_family': settings['pseudo_family']},
            pw_code=codes['pw'],
            ph_code=codes['ph'] if bec else None,
        )
        builder.max_concurrent = orm.Int(1)
        nodes[name] = submit(builder)
        print(f'{name}: LabelWorkChain<{nodes[name].pk}> with {len(batch)} structures', flush=True)
        if not wait_for([nodes[name]], timeout=args.timeout, poll=10):
            raise SystemExit(f'not finished after {args.timeout} s; LabelWorkChain<{nodes[name].pk}> keeps running')
        print(f'{name}: done after {time.monotonic() - started:.0f} s', flush=True)
    frames = []
    for name, node in nodes.items():
        summary = node.outputs.summary.get_dict()
        print(f'{name}: [{node.exit_status}] counts {summary["counts"]}', flush=True)
        if 'dataset' in node.outputs:
            frames.extend(node.outputs.dataset.get_dataset())
    dataset = Dataset(frames)
    dataset.save(args.out)
    print(
        f'{len(dataset)} frames ({sum(f.has_born_charges for f in dataset)} with Z*) in {args.out}; '
        f'{time.monotonic() - started:.0f} s of labelling'
    )


def _subset(dataset, indices):
    from ionfield.models.data.dataset import Dataset

    return Dataset(dataset[int(i)] for i in indices)


def species_baseline_rmse(train, test) -> float | None:
    """Z* RMSE (e) on ``test`` of the per-species mean tensor of ``train``, sum-rule corrected per frame."""
    sums, counts = {}, {}
    for frame in train:
        if frame.has_born_charges:
            for z, born in zip(frame.numbers, frame.born_charges, strict=True):
                sums[z] = sums.get(z, 0) + born
                counts[z] = counts.get(z, 0) + 1
    errors = []
    for frame in test:
        if not frame.has_born_charges:
            continue
        if not all(z in sums for z in frame.numbers):
            return None
        pred = np.array([sums[z] / counts[z] for z in frame.numbers])
        errors.append(pred - pred.mean(axis=0) - frame.born_charges)
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2))) if errors else None


def curve(args) -> None:
    from ionfield.models.data.dataset import Dataset
    from ionfield.models.potential.calculator import load_calculator
    from ionfield.models.potential.evaluation import error_metrics, predict
    from ionfield.models.train.config import SPLIT_FILES, training_frames
    from ionfield.models.train.runner import MODEL_FILE, RESULT_FILE, run_training

    dataset = training_frames(Dataset.load(args.dataset))
    rng = np.random.default_rng(args.seed)
    with_bec = [i for i, f in enumerate(dataset) if f.has_born_charges]
    plain = [i for i, f in enumerate(dataset) if not f.has_born_charges]
    rng.shuffle(with_bec)
    rng.shuffle(plain)
    test_idx = with_bec[: args.test_bec] + plain[: args.test_plain]
    pool_bec, pool_plain = with_bec[args.test_bec :], plain[args.test_plain :]
    # nested training sets that keep the pool's share of Z* frames at every size
    pool = []
    while pool_bec or pool_plain:
        share = len(pool_bec) / (len(pool_bec) + len(pool_plain))
        take_bec = pool_bec and (
            not pool_plain or sum(dataset[i].has_born_charges for i in pool) < share * (len(pool) + 1)
        )
        pool.append((pool_bec if take_bec else pool_plain).pop(0))
    test = _subset(dataset, test_idx)
    sizes = [len(pool) if s == 'all' else int(s) for s in args.sizes]
    base = {
        'size': args.model_size,
        'max_epochs': args.epochs,
        'patience': args.patience,
        'learning_rate': args.lr,
        'batch_size': args.batch,
        'r_max': args.r_max,
        'bec_weight': args.bec_weight,
        'forces_weight': args.forces_weight,
        'seed': args.seed,
        'val_fraction': 0.1,
        'test_fraction': 0.1,
    }
    results = {
        'dataset': str(args.dataset),
        'frames': len(dataset),
        'test_frames': len(test),
        'test_frames_with_bec': args.test_bec,
        'settings': base,
        'curve': [],
    }
    for size in sizes:
        train = _subset(dataset, pool[:size])
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            train.save(work / 'dataset.npz')
            (work / 'settings.json').write_text(json.dumps(base))
            started = time.monotonic()
            rc = run_training(work, work / 'dataset.npz', work / 'settings.json')
            run = json.loads((work / RESULT_FILE).read_text())
            if rc != 0:
                print(json.dumps({'size': size, 'status': run['status'], 'message': run['message']}))
                results['curve'].append({'size': size, 'status': run['status'], 'message': run['message']})
                continue
            calc = load_calculator(work / MODEL_FILE)
            metrics = error_metrics(test, predict(calc, test))
            trained = Dataset.from_extxyz(work / SPLIT_FILES['train'])
        entry = {
            'pool_frames': size,
            'trained_on': len(trained),
            'bec_frames_trained_on': sum(f.has_born_charges for f in trained),
            'bec_baseline_rmse_e': species_baseline_rmse(trained, test),
            'epochs': run['epochs'],
            'wall_s': round(time.monotonic() - started, 1),
            'test': metrics,
        }
        results['curve'].append(entry)
        print(json.dumps(entry), flush=True)
    args.out.write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    p = commands.add_parser('label', help='label strained, rattled Li3N frames with QE through the daemon')
    p.add_argument('-p', '--profile', required=True)
    p.add_argument('--frames', type=int, default=40)
    p.add_argument('--bec-frames', type=int, default=10)
    p.add_argument('--stdev', type=float, default=0.08, help='rattle, Å')
    p.add_argument('--max-strain', type=float, default=0.03)
    p.add_argument('--seed', type=int, default=7)
    p.add_argument('--protocol', default='fast')
    p.add_argument('--timeout', type=float, default=6 * 3600)
    p.add_argument('--out', type=Path, default=Path('li3n_labels.npz'))
    p.set_defaults(run=label)
    c = commands.add_parser('curve', help='train on nested subsets, test on a fixed held-out set')
    c.add_argument('dataset', type=Path)
    c.add_argument('--sizes', nargs='+', default=['6', '12', '24', 'all'])
    c.add_argument('--test-bec', type=int, default=4)
    c.add_argument('--test-plain', type=int, default=4)
    c.add_argument('--model-size', default='small')
    c.add_argument('--epochs', type=int, default=300)
    c.add_argument('--patience', type=int, default=60)
    c.add_argument('--lr', type=float, default=0.01)
    c.add_argument('--batch', type=int, default=2)
    c.add_argument('--r-max', type=float, default=4.5)
    c.add_argument('--bec-weight', type=float, default=5.0)
    c.add_argument('--forces-weight', type=float, default=5.0)
    c.add_argument('--seed', type=int, default=0)
    c.add_argument('--out', type=Path, default=Path('learning_curve_li3n.json'))
    c.set_defaults(run=curve)
    args = parser.parse_args()
    args.run(args)


if __name__ == '__main__':
    main()
