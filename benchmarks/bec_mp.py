"""Born-charge head on the Materials Project DFPT set: Z* RMSE vs a per-species constant.

Data: ``../shared/data/bec/mp-dfpt-bec.xyz`` (614 structures, VASP-PBE DFPT, per-atom
``REF_becs`` as 9 numbers, row-major; no energies or forces). Entries whose raw charges break
the acoustic sum rule by more than ``--asr-max`` e (max |Σ_i Z_i| element) are dropped and
listed; the rest are sum-rule corrected (mean subtracted), which is what our head predicts.

Split: seeded, by structure (``--test-fraction``). Baseline: the per-species mean tensor of the
training atoms, then sum-rule corrected per structure. Model: ``NequIPBECModel`` (a ``--size``
preset), nominal charges initialised to each species' mean isotropic charge in the training
split, trained on the Z* mean squared error only (``do_derivatives=False``: no forces needed).

    OMP_NUM_THREADS=1 python benchmarks/bec_mp.py --epochs 40 --size small --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from ase.io import read
from nequip.data import AtomicDataDict, from_ase
from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform
from nequip.utils.global_state import set_global_state

from ionfield.models.nequip_bec.model import NequIPBECModel
from ionfield.models.train.settings import SIZES

DATA = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / 'bec' / 'mp-dfpt-bec.xyz'


def load(path: Path, asr_max: float):
    kept, dropped = [], []
    for index, atoms in enumerate(read(path, index=':')):
        born = np.asarray(atoms.arrays['REF_becs'], dtype=float).reshape(-1, 3, 3)
        violation = float(np.abs(born.sum(axis=0)).max())
        if violation > asr_max:
            dropped.append((index, atoms.get_chemical_formula(), round(violation, 3)))
            continue
        atoms.arrays['born'] = (born - born.mean(axis=0)).reshape(-1, 9)
        kept.append(atoms)
    return kept, dropped


def rmse(errors: list[np.ndarray]) -> float:
    return float(np.sqrt(np.mean(np.concatenate([e.ravel() for e in errors]) ** 2)))


def mae(errors: list[np.ndarray]) -> float:
    return float(np.mean(np.abs(np.concatenate([e.ravel() for e in errors]))))


def baseline(train, test):
    sums, counts = {}, {}
    for atoms in train:
        for symbol, z in zip(atoms.get_chemical_symbols(), atoms.arrays['born'].reshape(-1, 3, 3), strict=True):
            sums[symbol] = sums.get(symbol, 0) + z
            counts[symbol] = counts.get(symbol, 0) + 1
    means = {s: sums[s] / counts[s] for s in sums}
    errors = []
    for atoms in test:
        pred = np.array([means.get(s, np.zeros((3, 3))) for s in atoms.get_chemical_symbols()])
        pred -= pred.mean(axis=0)
        errors.append(pred - atoms.arrays['born'].reshape(-1, 3, 3))
    return means, errors


def to_data(atoms, type_names, r_max):
    data = from_ase(atoms)
    data[AtomicDataDict.BORN_CHARGE_KEY] = torch.as_tensor(atoms.arrays['born'].reshape(-1, 3, 3))
    data = ChemicalSpeciesToAtomTypeMapper(type_names, {t: t for t in type_names})(data)
    return NeighborListTransform(r_max=r_max)(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', type=Path, default=DATA)
    parser.add_argument('--size', default='small', choices=sorted(SIZES))
    parser.add_argument('--epochs', type=int, default=40)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--lr', type=float, default=0.005)
    parser.add_argument('--r-max', type=float, default=5.0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--test-fraction', type=float, default=0.2)
    parser.add_argument('--asr-max', type=float, default=0.1)
    parser.add_argument('--out', type=Path, default=Path('bec_mp_result.json'))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    set_global_state()

    frames, dropped = load(args.data, args.asr_max)
    order = np.random.default_rng(args.seed).permutation(len(frames))
    n_test = round(args.test_fraction * len(frames))
    test = [frames[i] for i in order[:n_test]]
    train = [frames[i] for i in order[n_test:]]
    means, base_errors = baseline(train, test)
    type_names = sorted({s for a in frames for s in a.get_chemical_symbols()})
    nominal = {t: float(np.trace(means[t]) / 3) if t in means else 0.0 for t in type_names}

    train_data = [to_data(a, type_names, args.r_max) for a in train]
    test_data = [to_data(a, type_names, args.r_max) for a in test]
    avg_neighbors = float(np.mean([d[AtomicDataDict.EDGE_INDEX_KEY].shape[1] / len(d['pos']) for d in train_data]))
    sizes = dict(SIZES[args.size])
    head = sizes.pop('bec_head_features')
    model = NequIPBECModel(
        seed=args.seed,
        model_dtype='float32',
        type_names=type_names,
        r_max=args.r_max,
        parity=False,
        avg_num_neighbors=avg_neighbors,
        per_type_energy_shifts=0.0,
        per_type_energy_scales=1.0,
        do_derivatives=False,
        bec_head_features=head,
        bec_nominal_charges=nominal,
        **sizes,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    rng = np.random.default_rng(args.seed)

    def evaluate(datas):
        model.eval()
        errors = []
        with torch.no_grad():
            for d in datas:
                out = model(AtomicDataDict.batched_from_list([dict(d)]))
                errors.append(
                    (out[AtomicDataDict.BORN_CHARGE_KEY].double() - d[AtomicDataDict.BORN_CHARGE_KEY]).numpy()
                )
        return errors

    start = time.monotonic()
    history = []
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for i in range(0, len(train_data), args.batch):
            batch = AtomicDataDict.batched_from_list(
                [dict(train_data[j]) for j in rng.permutation(len(train_data))[i : i + args.batch]]
            )
            out = model(batch)
            loss = torch.mean(
                (out[AtomicDataDict.BORN_CHARGE_KEY] - batch[AtomicDataDict.BORN_CHARGE_KEY].to(torch.float32)) ** 2
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        scheduler.step()
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            test_rmse = rmse(evaluate(test_data))
            history.append(
                {
                    'epoch': epoch + 1,
                    'train_mse': total / math.ceil(len(train_data) / args.batch),
                    'test_rmse_e': test_rmse,
                }
            )
            print(json.dumps(history[-1]), flush=True)
    errors = evaluate(test_data)
    result = {
        'structures_kept': len(frames),
        'structures_dropped_asr': len(dropped),
        'dropped': dropped,
        'train_structures': len(train),
        'test_structures': len(test),
        'test_atoms': int(sum(len(a) for a in test)),
        'species': len(type_names),
        'size': args.size,
        'epochs': args.epochs,
        'seed': args.seed,
        'baseline_rmse_e': rmse(base_errors),
        'baseline_mae_e': mae(base_errors),
        'model_rmse_e': rmse(errors),
        'model_mae_e': mae(errors),
        'train_time_s': round(time.monotonic() - start, 1),
        'history': history,
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k not in ('dropped', 'history')}, indent=1))


if __name__ == '__main__':
    main()
