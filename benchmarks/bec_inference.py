"""Inference cost of the Born-charge head: E/F/S + Z* vs E/F/S alone, same backbone.

Both models are built with the same seed and the same backbone hyperparameters (a training
``size`` preset); the only difference is the head. For each system size the two models are
timed alternately (median of ``--repeats`` calls after warm-up), so machine noise hits both
alike; the ratio is what we report. Eager PyTorch on CPU, one thread (as on our 2-core boxes).

    OMP_NUM_THREADS=1 python benchmarks/bec_inference.py --sizes 100 1000 --preset small medium
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from nequip.data import AtomicDataDict, from_ase
from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform
from nequip.model import NequIPGNNModel
from nequip.utils.global_state import set_global_state

from ionfield.models.nequip_bec.model import NequIPBECModel
from ionfield.models.structures.reference import alpha_li3n
from ionfield.models.train.settings import SIZES

R_MAX = 4.5
REPEATS_FOR = {100: (5, 5, 1), 1000: (5, 5, 10)}  # Li3N cells: 4 atoms each


def li3n_system(natoms: int):
    repeat = REPEATS_FOR[natoms]
    atoms = alpha_li3n().repeat(repeat)
    atoms.rattle(0.05, seed=1)
    data = ChemicalSpeciesToAtomTypeMapper(['Li', 'N'])(from_ase(atoms))
    return NeighborListTransform(r_max=R_MAX)(data)


def build(preset: str, bec: bool, dtype: str):
    kwargs = dict(SIZES[preset])
    head = kwargs.pop('bec_head_features')
    common = dict(
        seed=0,
        model_dtype=dtype,
        type_names=['Li', 'N'],
        r_max=R_MAX,
        parity=False,
        avg_num_neighbors=20.0,
        per_type_energy_shifts=0.0,
        per_type_energy_scales=1.0,
        **kwargs,
    )
    model = NequIPBECModel(bec_head_features=head, **common) if bec else NequIPGNNModel(**common)
    return model.eval()


def time_call(model, data) -> float:
    start = time.perf_counter()
    out = model(data.copy())
    out[AtomicDataDict.FORCE_KEY].sum().item()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[100, 1000], choices=sorted(REPEATS_FOR))
    parser.add_argument('--preset', nargs='+', default=['small', 'medium'], choices=sorted(SIZES))
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--dtype', default='float32')
    args = parser.parse_args()
    set_global_state()
    print(f'torch {torch.__version__}, threads {torch.get_num_threads()}, {args.dtype}, eager, CPU')
    print(f'{"preset":<8}{"atoms":>6}{"E/F/S ms":>11}{"+Z* ms":>10}{"ratio":>8}')
    for preset in args.preset:
        plain, bec = build(preset, False, args.dtype), build(preset, True, args.dtype)
        for natoms in args.sizes:
            data = li3n_system(natoms)
            for _ in range(2):
                time_call(plain, data), time_call(bec, data)
            t_plain, t_bec = [], []
            for _ in range(args.repeats):
                t_plain.append(time_call(plain, data))
                t_bec.append(time_call(bec, data))
            a, b = statistics.median(t_plain), statistics.median(t_bec)
            print(f'{preset:<8}{natoms:>6}{1000 * a:>11.1f}{1000 * b:>10.1f}{b / a:>8.3f}')


if __name__ == '__main__':
    main()
