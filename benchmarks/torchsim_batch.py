"""TorchSim batched field MD vs the ASE backend one run at a time, on a campaign grid of 16 runs (CPU or GPU).

The grid is the laptop campaign's shape: 4 temperatures (500-950 K) x E = 0 / 0.1 V/Å along x x full and
diagonal Z*, one replica each, on an alpha-Li3N supercell of ~100 atoms (3x3x3, 108) and ~1000 atoms (6x6x7,
1008). The same model file drives both backends; every run is Langevin, 1 fs, frames every 10 steps.
Reported per size: atom-steps per second of the 16 runs one after the other with ASE and of the 16 in one
TorchSim batch, their ratio, and the batched throughput with the field off (all E = 0) for the cost of the
field (goal <= 1.10x). Steps are few (timing, not physics): the statistics of both backends are compared in
tests/models/md/test_torchsim_backend.py.

    OMP_NUM_THREADS=1 python benchmarks/torchsim_batch.py --model MODEL.nequip.zip \\
        --out benchmarks/results/torchsim_batch_cpu.json

Needs the ``gpu`` extra (torch-sim, Python >= 3.12).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from ionfield.models.md.engine import run_field_md
from ionfield.models.md.runner import run_batch
from ionfield.models.md.settings import MDSettings
from ionfield.models.md.torchsim_engine import BatchRun
from ionfield.models.potential.calculator import load_calculator
from ionfield.models.potential.devices import limit_threads
from ionfield.models.structures.reference import alpha_li3n

SIZES = {108: (3, 3, 3), 1008: (6, 6, 7)}
TEMPERATURES = (500.0, 650.0, 800.0, 950.0)


def grid(steps: int, field_on: bool = True) -> list[MDSettings]:
    runs = []
    for temperature in TEMPERATURES:
        for field in ((0.0, 0.0, 0.0), (0.1, 0.0, 0.0)):
            for mode in ('full', 'diagonal'):
                runs.append(
                    MDSettings(
                        steps=steps,
                        temperature_K=temperature,
                        field=field if field_on else (0.0, 0.0, 0.0),
                        bec_mode=mode,
                        seed=len(runs),
                        backend='torchsim',
                        min_distance=0.0,  # an untrained or toy model must not stop a timing run
                        max_temperature_K=1e6,
                    )
                )
    return runs


def ase_serial(atoms, model: Path, settings: list[MDSettings], root: Path, device: str) -> dict:
    started = time.perf_counter()
    for index, s in enumerate(settings):
        calc = load_calculator(model, device=device)
        ase = MDSettings.from_dict({**s.to_dict(), 'backend': 'ase'})
        result = run_field_md(atoms, calc, ase, root / f'ase{index}')
        assert result.stop_reason == 'completed', result
    wall = time.perf_counter() - started
    return {'wall_s': round(wall, 2), 'atom_steps_per_s': round(len(atoms) * sum(s.steps for s in settings) / wall, 1)}


def torchsim_batch(atoms, model: Path, settings: list[MDSettings], root: Path, device: str, tag: str) -> dict:
    runs = [BatchRun(atoms, s, root / f'{tag}{index}') for index, s in enumerate(settings)]
    started = time.perf_counter()
    results = run_batch(runs, [model], device)
    wall = time.perf_counter() - started
    assert all(r.stop_reason == 'completed' for r in results), [r.message for r in results]
    return {'wall_s': round(wall, 2), 'atom_steps_per_s': round(len(atoms) * sum(s.steps for s in settings) / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', type=Path, required=True)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--steps', type=int, nargs=2, default=(100, 20), metavar=('STEPS_100', 'STEPS_1000'))
    parser.add_argument('--out', type=Path)
    args = parser.parse_args()
    threads = limit_threads()
    import torch
    import torch_sim

    rows = []
    for (natoms, repeat), steps in zip(SIZES.items(), args.steps, strict=True):
        atoms = alpha_li3n().repeat(repeat)
        assert len(atoms) == natoms
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            field = torchsim_batch(atoms, args.model, grid(steps), root, args.device, 'ts')
            no_field = torchsim_batch(atoms, args.model, grid(steps, field_on=False), root, args.device, 'ts0')
            ase = ase_serial(atoms, args.model, grid(steps), root, args.device)
        row = {
            'natoms': natoms,
            'runs': 16,
            'steps_per_run': steps,
            'ase_one_by_one': ase,
            'torchsim_batched': field,
            'torchsim_batched_field_off': no_field,
            'batched_over_ase': round(field['atom_steps_per_s'] / ase['atom_steps_per_s'], 2),
            'field_on_over_off_time': round(field['wall_s'] / no_field['wall_s'], 3),
        }
        print(json.dumps(row))
        rows.append(row)
    report = {
        'benchmark': 'torchsim_batch',
        'device': args.device,
        'threads': threads,
        'torch': torch.__version__,
        'torch_sim': torch_sim.__version__,
        'python': platform.python_version(),
        'model': args.model.name,
        'rows': rows,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + '\n')


if __name__ == '__main__':
    main()
