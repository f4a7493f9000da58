"""Trajectory files of field MD: HDF5 (default, compact, appendable) or extxyz (human-readable).

Positions are **unwrapped** (the ASE integrators never wrap them), so mean squared displacements
can be computed directly. Both writers flush every frame: a run that is killed or stops on a
failure keeps every frame written before. On restart from a step, frames after it are dropped
before new ones are appended, so a restarted trajectory has no duplicated or orphaned frames.

HDF5 layout (``/`` attributes ``format = 'ionfield-md-trajectory'``, ``version``, ``units``):
``numbers`` (N,), ``pbc`` (3,), and per frame ``step`` (T,), ``time_fs`` (T,), ``positions``
(T, N, 3) Å, ``cell`` (T, 3, 3) Å, optionally ``velocities`` (T, N, 3) Å/fs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from ase import Atoms, units

H5_FORMAT = 'ionfield-md-trajectory'
H5_VERSION = 1
UNITS = {'positions': 'Å', 'cell': 'Å', 'time_fs': 'fs', 'velocities': 'Å/fs'}
ASE_VELOCITY_TO_A_PER_FS = units.fs
"""ASE velocities are in Å per ASE time unit; times ``units.fs`` gives Å/fs."""


class TrajectoryFileError(ValueError):
    """A trajectory file that cannot be read (missing, truncated, or not ours)."""


@dataclasses.dataclass
class MDTrajectory:
    """All frames of a trajectory as arrays (positions unwrapped)."""

    numbers: np.ndarray
    pbc: np.ndarray
    steps: np.ndarray
    times_fs: np.ndarray
    positions: np.ndarray
    cells: np.ndarray
    velocities: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.steps)

    def atoms(self, index: int) -> Atoms:
        atoms = Atoms(numbers=self.numbers, positions=self.positions[index], cell=self.cells[index], pbc=self.pbc)
        if self.velocities is not None:
            atoms.set_velocities(self.velocities[index] / ASE_VELOCITY_TO_A_PER_FS)
        atoms.info.update(step=int(self.steps[index]), time_fs=float(self.times_fs[index]))
        return atoms


class H5TrajectoryWriter:
    """Append frames to an HDF5 trajectory (see the module docstring for the layout)."""

    def __init__(self, path: Path, atoms: Atoms, velocities: bool = False, keep_until_step: int | None = None):
        import h5py

        self.path = Path(path)
        self.velocities = velocities
        if keep_until_step is not None and self.path.is_file():
            self.file = h5py.File(self.path, 'a')
            keep = int(np.sum(self.file['step'][:] <= keep_until_step))
            for name in ('step', 'time_fs', 'positions', 'cell', 'velocities'):
                if name in self.file:
                    self.file[name].resize(keep, axis=0)
            return
        self.file = h5py.File(self.path, 'w')
        natoms = len(atoms)
        self.file.attrs.update(format=H5_FORMAT, version=H5_VERSION, units=str(UNITS))
        self.file['numbers'] = atoms.numbers
        self.file['pbc'] = atoms.pbc
        chunk = max(1, min(64, 2**20 // (24 * max(natoms, 1))))
        self.file.create_dataset('step', (0,), maxshape=(None,), dtype='i8', chunks=(1024,))
        self.file.create_dataset('time_fs', (0,), maxshape=(None,), dtype='f8', chunks=(1024,))
        self.file.create_dataset(
            'positions', (0, natoms, 3), maxshape=(None, natoms, 3), dtype='f8', chunks=(chunk, natoms, 3)
        )
        self.file.create_dataset('cell', (0, 3, 3), maxshape=(None, 3, 3), dtype='f8', chunks=(1024, 3, 3))
        if velocities:
            self.file.create_dataset(
                'velocities', (0, natoms, 3), maxshape=(None, natoms, 3), dtype='f8', chunks=(chunk, natoms, 3)
            )

    def append(self, step: int, time_fs: float, atoms: Atoms) -> None:
        values = {'step': step, 'time_fs': time_fs, 'positions': atoms.positions, 'cell': atoms.cell.array}
        if 'velocities' in self.file:
            values['velocities'] = atoms.get_velocities() * ASE_VELOCITY_TO_A_PER_FS
        for name, value in values.items():
            data = self.file[name]
            data.resize(data.shape[0] + 1, axis=0)
            data[-1] = value
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class ExtxyzTrajectoryWriter:
    """Append frames to an extended-XYZ file (``step`` and ``time_fs`` in each frame's info)."""

    def __init__(self, path: Path, atoms: Atoms, velocities: bool = False, keep_until_step: int | None = None):
        from ase.io import read, write

        self.path = Path(path)
        self.velocities = velocities
        if keep_until_step is not None and self.path.is_file():
            kept = [a for a in read(self.path, index=':') if a.info['step'] <= keep_until_step]
            write(self.path, kept, format='extxyz')
        elif self.path.exists():
            self.path.unlink()

    def append(self, step: int, time_fs: float, atoms: Atoms) -> None:
        from ase.io import write

        frame = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        frame.info.update(step=step, time_fs=time_fs)
        if self.velocities:
            frame.arrays['velocities_A_per_fs'] = atoms.get_velocities() * ASE_VELOCITY_TO_A_PER_FS
        with open(self.path, 'a') as handle:
            write(handle, frame, format='extxyz')

    def close(self) -> None:
        pass


WRITERS = {'h5': H5TrajectoryWriter, 'extxyz': ExtxyzTrajectoryWriter}
FILE_NAMES = {'h5': 'trajectory.h5', 'extxyz': 'trajectory.xyz'}


def trajectory_metadata(path: str | Path) -> dict:
    """Species, frame count, steps and time span, without reading positions from an HDF5 file."""
    path = Path(path)
    if path.suffix in ('.h5', '.hdf5') and path.is_file():
        import h5py

        try:
            with h5py.File(path, 'r') as handle:
                if handle.attrs.get('format') != H5_FORMAT:
                    raise TrajectoryFileError(f'{path}: not an ionfield MD trajectory')
                numbers, steps, times = handle['numbers'][:], handle['step'][:], handle['time_fs'][:]
                has_velocities = 'velocities' in handle
        except OSError as exc:
            raise TrajectoryFileError(f'{path}: cannot read ({exc})') from exc
    else:
        trajectory = read_trajectory(path)
        numbers, steps, times = trajectory.numbers, trajectory.steps, trajectory.times_fs
        has_velocities = trajectory.velocities is not None
    return {
        'numbers': numbers,
        'nframes': len(steps),
        'first_step': int(steps[0]) if len(steps) else None,
        'last_step': int(steps[-1]) if len(steps) else None,
        'time_span_fs': float(times[-1] - times[0]) if len(steps) else 0.0,
        'has_velocities': has_velocities,
    }


def read_trajectory(path: str | Path) -> MDTrajectory:
    """Read an HDF5 or extxyz trajectory written by the engine."""
    path = Path(path)
    if not path.is_file():
        raise TrajectoryFileError(f'{path}: no such trajectory file')
    if path.suffix in ('.h5', '.hdf5'):
        import h5py

        try:
            with h5py.File(path, 'r') as handle:
                if handle.attrs.get('format') != H5_FORMAT:
                    raise TrajectoryFileError(f'{path}: not an ionfield MD trajectory')
                return MDTrajectory(
                    numbers=handle['numbers'][:],
                    pbc=handle['pbc'][:],
                    steps=handle['step'][:],
                    times_fs=handle['time_fs'][:],
                    positions=handle['positions'][:],
                    cells=handle['cell'][:],
                    velocities=handle['velocities'][:] if 'velocities' in handle else None,
                )
        except OSError as exc:
            raise TrajectoryFileError(f'{path}: cannot read ({exc})') from exc
    from ase.io import read

    frames = read(path, index=':', format='extxyz')
    if not frames:
        raise TrajectoryFileError(f'{path}: no frames')
    has_v = 'velocities_A_per_fs' in frames[0].arrays
    return MDTrajectory(
        numbers=frames[0].numbers,
        pbc=frames[0].pbc,
        steps=np.array([a.info['step'] for a in frames]),
        times_fs=np.array([a.info['time_fs'] for a in frames], dtype=float),
        positions=np.array([a.positions for a in frames]),
        cells=np.array([a.cell.array for a in frames]),
        velocities=np.array([a.arrays['velocities_A_per_fs'] for a in frames]) if has_v else None,
    )
