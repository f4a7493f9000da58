"""Field-MD step time: with and without field, and the share of a step spent outside the model.

Three runs per system size on alpha-Li3N supercells (96, 768, 6144 atoms), Langevin at 600 K,
through the product's engine (``ionfield.models.md.engine.run_field_md``), same backbone:

* ``plain``:  the E/F/S model without a Born-charge head, no field (ordinary MLIP MD);
* ``bec0``:   the model with the head, field 0 (Z* computed, no field force);
* ``field``:  the model with the head, E = (0, 0, 0.1) V/Å, full tensor.

Runs are interleaved ``--rounds`` times so machine noise hits all alike; the median step time
is reported with the ratios ``field / bec0`` and ``field / plain`` and, for ``field``, the share
of the step outside the model call (integrator, field force, observers, logging, output).
Weights are untrained (timing does not depend on them). Eager float32 on CPU, one thread.

    OMP_NUM_THREADS=1 python benchmarks/field_md_step.py --out benchmarks/results/field_md_step_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform
from nequip.integrations.ase import NequIPCalculator
from nequip.utils.global_state import set_global_state

from ionfield.models.md.engine import run_field_md
from ionfield.models.md.settings import MDSettings
from ionfield.models.potential.calculator import BornChargeCalculator
from ionfield.models.structures.reference import alpha_li3n

sys.path.insert(0, str(Path(__file__).parent))
from bec_inference import R_MAX, build  # noqa: E402 - the same backbone builder as the inference benchmark

REPEATS = {96: (2, 3, 4), 768: (4, 6, 8), 6144: (8, 12, 16)}  # Li3N cells: 4 atoms each
STEPS = {96: 40, 768: 10, 6144: 3}


def calculator(preset: str, bec: bool, device: str):
    model = build(preset, bec, 'float32').to(device)
    transforms = [ChemicalSpeciesToAtomTypeMapper(['Li', 'N']), NeighborListTransform(r_max=R_MAX)]
    cls = BornChargeCalculator if bec else NequIPCalculator
    return cls(model=model, device=device, transforms=transforms)


def one_run(atoms, calc, field, steps: int) -> dict:
    settings = MDSettings(
        ensemble='langevin',
        temperature_K=600,
        steps=steps,
        field=field,
        log_every=10,
        trajectory_every=10,
        checkpoint_every=10**6,
        seed=0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = run_field_md(atoms, calc, settings, tmp)
    assert result.stop_reason == 'completed', result.message
    calls = result.model_calls
    return {'step_s': result.wall_time_s / calls, 'model_share': result.model_time_s / result.wall_time_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=sorted(REPEATS), choices=sorted(REPEATS))
    parser.add_argument('--preset', default='small')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    set_global_state()
    calcs = {
        'plain': calculator(args.preset, False, args.device),
        'bec0': calculator(args.preset, True, args.device),
        'field': calculator(args.preset, True, args.device),
    }
    fields = {'plain': (0.0, 0.0, 0.0), 'bec0': (0.0, 0.0, 0.0), 'field': (0.0, 0.0, 0.1)}
    report = {
        'device': args.device,
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'machine': platform.processor() or platform.machine(),
        'preset': args.preset,
        'sizes': [],
    }
    print(f'torch {torch.__version__}, {args.device}, threads {torch.get_num_threads()}, preset {args.preset}')
    print(f'{"atoms":>6}{"plain ms":>10}{"bec0 ms":>10}{"field ms":>10}{"f/bec0":>8}{"f/plain":>8}{"outside":>9}')
    for natoms in args.sizes:
        atoms = alpha_li3n().repeat(REPEATS[natoms])
        atoms.rattle(0.05, seed=1)
        assert len(atoms) == natoms
        for name in calcs:  # warm-up: first calls allocate
            one_run(atoms, calcs[name], fields[name], 1)
        samples = {name: [] for name in calcs}
        for _ in range(args.rounds):
            for name in calcs:
                samples[name].append(one_run(atoms, calcs[name], fields[name], STEPS[natoms]))
        step = {name: statistics.median(s['step_s'] for s in runs) for name, runs in samples.items()}
        outside = 1 - statistics.median(s['model_share'] for s in samples['field'])
        row = {
            'atoms': natoms,
            'steps_per_run': STEPS[natoms],
            'step_ms': {name: round(1000 * value, 2) for name, value in step.items()},
            'field_over_bec0': round(step['field'] / step['bec0'], 3),
            'field_over_plain': round(step['field'] / step['plain'], 3),
            'outside_model_share_field': round(float(outside), 4),
            'atom_steps_per_s_field': round(natoms / step['field'], 1),
        }
        report['sizes'].append(row)
        print(
            f'{natoms:>6}{1000 * step["plain"]:>10.1f}{1000 * step["bec0"]:>10.1f}{1000 * step["field"]:>10.1f}'
            f'{row["field_over_bec0"]:>8.3f}{row["field_over_plain"]:>8.3f}{100 * outside:>8.1f}%',
            flush=True,
        )
    if args.out:
        with open(args.out, 'w') as handle:
            json.dump(report, handle, indent=1)


if __name__ == '__main__':
    np.set_printoptions(precision=4)
    main()
