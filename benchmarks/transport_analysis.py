"""Analysis cost of one long trajectory: ``python benchmarks/transport_analysis.py [frames] [atoms]``.

Makes a synthetic Li3N-like trajectory (a quarter of the atoms framework, the rest Brownian Li with
D = 1e-5 cm²/s), writes it as an ionfield-md HDF5 file, then times reading it and the whole
analysis of one condition at E = 0 (6 tracer fits, the collective fit, drift) and under a field
(drift, its removal, 3 tracer fits), with the default options (MSDs up to half the run).
Results go to ``benchmarks/results/transport_analysis.json``. Run with OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ionfield.models.md.trajectory import H5TrajectoryWriter, read_trajectory
from ionfield.models.transport.condition import analyse_condition


def write_trajectory(path: Path, frames: int, atoms: int, seed: int = 0) -> None:
    from ase import Atoms

    rng = np.random.default_rng(seed)
    n_li = atoms * 3 // 4
    numbers = np.array([3] * n_li + [7] * (atoms - n_li))
    length = (atoms / 0.05) ** (1 / 3)  # a density of 0.05 atoms/Å³
    positions = rng.random((atoms, 3)) * length
    first = Atoms(numbers=numbers, positions=positions, cell=np.eye(3) * length, pbc=True)
    writer = H5TrajectoryWriter(path, first)
    sigma = np.sqrt(2 * 1e-4 * 10.0)  # Å per 10 fs frame for D = 1e-5 cm²/s
    for frame in range(frames):
        if frame:
            positions[:n_li] += rng.standard_normal((n_li, 3)) * sigma
            positions[n_li:] = first.positions[n_li:] + rng.standard_normal((atoms - n_li, 3)) * 0.05
        first.positions = positions
        writer.append(frame * 10, frame * 10.0, first)
    writer.close()


def main(frames: int = 10000, atoms: int = 1000) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'trajectory.h5'
        start = time.perf_counter()
        write_trajectory(path, frames, atoms)
        written = time.perf_counter() - start
        start = time.perf_counter()
        trajectory = read_trajectory(path)
        read = time.perf_counter() - start
        timings = {}
        for name, field in (('zero_field', (0, 0, 0)), ('field', (0, 0, 0.1))):
            start = time.perf_counter()
            result = analyse_condition([trajectory], 600, field=field)
            timings[name] = time.perf_counter() - start
        d = result.summary['species']['Li']['D']['xyz']
    record = {
        'frames': frames,
        'atoms': atoms,
        'python': platform.python_version(),
        'machine': platform.machine(),
        'write_s': round(written, 2),
        'read_s': round(read, 2),
        'analyse_zero_field_s': round(timings['zero_field'], 2),
        'analyse_field_s': round(timings['field'], 2),
        'max_lag_fraction': result.summary['options']['max_lag_fraction'],
        'D_xyz_cm2_per_s': [d['mean'], d['std']],
        'D_true_cm2_per_s': 1e-5,
    }
    return record


if __name__ == '__main__':
    args = [int(a) for a in sys.argv[1:3]]
    record = main(*args)
    print(json.dumps(record, indent=1))
    out = Path(__file__).parent / 'results' / 'transport_analysis.json'
    out.write_text(json.dumps(record, indent=1) + '\n')
