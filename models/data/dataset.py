"""Labelled DFT frames as one plain-Python object, so labelling, training and selection agree on one layout.

A :class:`Dataset` is an ordered list of :class:`~.frame.Frame` objects (see there for units and the
NaN convention). It needs only numpy and ase (pymatgen is imported lazily by :meth:`Dataset.from_pymatgen`),
so it runs on a compute node or in a notebook without AiiDA. :meth:`Dataset.save` writes one ``.npz``
file; :meth:`Dataset.to_extxyz` writes the extended XYZ that ``nequip.data.dataset.ASEDataset`` (nequip
0.19) reads, with the keys of :data:`ionfield.models.keys.EXTXYZ_KEYS`.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO

import ase.io
import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from ionfield.models import keys

from .born import asr_violation
from .frame import FLAG_SEPARATOR, Frame
from .io import frame_from_ase, frame_from_pymatgen

FORMAT_VERSION = 1
"""Version of the ``.npz`` layout written by :meth:`Dataset.save`."""


class Dataset:
    """An ordered collection of :class:`Frame` objects; operations return new datasets and never mutate."""

    def __init__(self, frames: Iterable[Frame] = ()) -> None:
        self._frames = list(frames)
        for index, frame in enumerate(self._frames):
            if not isinstance(frame, Frame):
                raise ValueError(f'frame {index}: expected a Frame, got {type(frame).__name__}')
            _at(index, frame.validate)

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[Frame]:
        return iter(self._frames)

    def __getitem__(self, key: int | slice) -> Frame | Dataset:
        if isinstance(key, slice):
            return Dataset(self._frames[key])
        return self._frames[key]

    def __repr__(self) -> str:
        return f'Dataset({len(self)} frames, {self.natoms} atoms)'

    @property
    def frames(self) -> tuple[Frame, ...]:
        return tuple(self._frames)

    @property
    def natoms(self) -> int:
        """Total number of atoms over all frames."""
        return sum(frame.natoms for frame in self._frames)

    @property
    def source_uuids(self) -> list[str]:
        """UUID of the calculation behind each frame ('' where unknown), in frame order."""
        return [frame.source_uuid for frame in self._frames]

    # --- combining and selecting -------------------------------------------------------------------

    @classmethod
    def concatenate(cls, datasets: Iterable[Dataset]) -> Dataset:
        """All frames of ``datasets`` in order."""
        return cls([frame for dataset in datasets for frame in dataset])

    def merge(self, other: Dataset) -> Dataset:
        """This dataset's frames followed by ``other``'s."""
        return Dataset.concatenate((self, other))

    def filter(self, predicate: Callable[[Frame], bool]) -> Dataset:
        """The frames for which ``predicate(frame)`` is true, in order."""
        return Dataset(frame for frame in self._frames if predicate(frame))

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> tuple[Dataset, ...]:
        """Disjoint random subsets covering all frames (sizes rounded from ``fractions``), reproducible by ``seed``.

        Frames keep their original order inside each subset.
        """
        fractions = np.asarray(fractions, dtype=float)
        if fractions.ndim != 1 or len(fractions) == 0 or (fractions < 0).any() or abs(fractions.sum() - 1) > 1e-6:
            raise ValueError(f'fractions must be non-negative and sum to 1, got {fractions.tolist()}')
        permutation = np.random.default_rng(seed).permutation(len(self))
        bounds = np.rint(np.cumsum(fractions) * len(self)).astype(int)
        parts = np.split(permutation, bounds[:-1])
        return tuple(Dataset(self._frames[index] for index in np.sort(part)) for part in parts)

    def flag_asr(self, threshold: float) -> Dataset:
        """A copy in which frames whose :func:`~.born.asr_violation` exceeds ``threshold`` (e) carry the ASR flag."""
        return Dataset(
            frame.replace(flags=frame.flags | {keys.ASR_FLAG})
            if asr_violation(frame.born_charges) > threshold
            else frame
            for frame in self._frames
        )

    # --- summary -------------------------------------------------------------------------------------

    def species_counts(self) -> dict[str, int]:
        """Number of atoms of each element over all frames, keys sorted."""
        numbers, counts = np.unique(self._concat('numbers', (0,), np.int64), return_counts=True)
        return {chemical_symbols[number]: int(count) for number, count in zip(numbers, counts, strict=True)}

    def statistics(self) -> dict:
        """Counts, label coverage and the ranges a training run or a reviewer looks at first (NaN where no data)."""
        frames = self._frames
        energies = [frame.energy / frame.natoms for frame in frames if frame.has_energy and frame.natoms]
        forces = [np.linalg.norm(frame.forces, axis=1) for frame in frames if frame.has_forces and frame.natoms]
        violations = [asr_violation(frame.born_charges) for frame in frames if frame.has_born_charges]
        return {
            'n_frames': len(frames),
            'n_atoms': self.natoms,
            'species_counts': self.species_counts(),
            'n_energy': sum(frame.has_energy for frame in frames),
            'n_forces': sum(frame.has_forces for frame in frames),
            'n_stress': sum(frame.has_stress for frame in frames),
            'n_born_charges': sum(frame.has_born_charges for frame in frames),
            'n_eps_inf': sum(frame.has_eps_inf for frame in frames),
            'energy_per_atom_mean': float(np.mean(energies)) if energies else math.nan,
            'energy_per_atom_std': float(np.std(energies)) if energies else math.nan,
            'max_abs_force': float(np.concatenate(forces).max()) if forces else math.nan,
            'asr_violation_max': float(np.max(violations)) if violations else math.nan,
            'asr_violation_mean': float(np.mean(violations)) if violations else math.nan,
        }

    # --- one-file storage ------------------------------------------------------------------------------

    def save(self, target: str | os.PathLike | IO[bytes]) -> None:
        """Write everything to one ``.npz`` (path written as given, or a binary file object); exact round trip."""
        arrays = self._to_arrays()
        if hasattr(target, 'write'):
            np.savez(target, **arrays)
            return
        with open(target, 'wb') as handle:
            np.savez(handle, **arrays)

    def content_hash(self) -> str:
        """sha256 of the frames' content (not of a file, whose zip entries carry timestamps): equal data, equal hash."""
        digest = hashlib.sha256()
        for name, array in sorted(self._to_arrays().items()):
            array = np.ascontiguousarray(array)
            digest.update(f'{name}:{array.dtype.str}:{array.shape};'.encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    @classmethod
    def load(cls, source: str | os.PathLike | IO[bytes]) -> Dataset:
        """Read a file written by :meth:`save`."""
        with np.load(source, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        version = int(arrays.get('format_version', -1))
        if version != FORMAT_VERSION:
            raise ValueError(f'unsupported dataset file format version {version}, expected {FORMAT_VERSION}')
        return cls._from_arrays(arrays)

    def _concat(self, name: str, tail: tuple[int, ...], dtype) -> np.ndarray:
        parts = [getattr(frame, name) for frame in self._frames]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(tail, dtype=dtype)

    def _stack(self, name: str, shape: tuple[int, ...], dtype=float) -> np.ndarray:
        return np.array([getattr(frame, name) for frame in self._frames], dtype=dtype).reshape((len(self), *shape))

    def _to_arrays(self) -> dict[str, np.ndarray]:
        frames = self._frames
        natoms = np.array([frame.natoms for frame in frames], dtype=np.int64)
        return {
            'format_version': np.array(FORMAT_VERSION),
            'offsets': np.concatenate([[0], np.cumsum(natoms)]).astype(np.int64),
            'numbers': self._concat('numbers', (0,), np.int64),
            'positions': self._concat('positions', (0, 3), float),
            'forces': self._concat('forces', (0, 3), float),
            'born_charges': self._concat('born_charges', (0, 3, 3), float),
            'cell': self._stack('cell', (3, 3)),
            'pbc': self._stack('pbc', (3,), bool),
            'energy': self._stack('energy', ()),
            'stress': self._stack('stress', (3, 3)),
            'eps_inf': self._stack('eps_inf', (3, 3)),
            'weight': self._stack('weight', ()),
            'flags': np.array([FLAG_SEPARATOR.join(sorted(frame.flags)) for frame in frames], dtype=str),
            keys.SOURCE_UUID: np.array([frame.source_uuid for frame in frames], dtype=str),
        }

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> Dataset:
        offsets = arrays['offsets']
        frames = []
        for index in range(len(offsets) - 1):
            atoms = slice(offsets[index], offsets[index + 1])
            flags = str(arrays['flags'][index])
            frames.append(
                _at(
                    index,
                    lambda atoms=atoms, index=index, flags=flags: Frame(
                        numbers=arrays['numbers'][atoms],
                        positions=arrays['positions'][atoms],
                        cell=arrays['cell'][index],
                        pbc=arrays['pbc'][index],
                        energy=arrays['energy'][index],
                        forces=arrays['forces'][atoms],
                        stress=arrays['stress'][index],
                        born_charges=arrays['born_charges'][atoms],
                        eps_inf=arrays['eps_inf'][index],
                        weight=arrays['weight'][index],
                        flags=frozenset(flags.split(FLAG_SEPARATOR)) if flags else frozenset(),
                        source_uuid=str(arrays[keys.SOURCE_UUID][index]),
                    ),
                )
            )
        return cls(frames)

    # --- exchange formats ------------------------------------------------------------------------------

    def to_ase(self) -> list[Atoms]:
        """One ``ase.Atoms`` per frame (see :meth:`Frame.to_ase`)."""
        return [frame.to_ase() for frame in self._frames]

    def to_extxyz(self, path: str | os.PathLike) -> None:
        """Extended XYZ that nequip's ``ASEDataset`` reads (keys: :data:`ionfield.models.keys.EXTXYZ_KEYS`)."""
        ase.io.write(path, self.to_ase(), format='extxyz')

    @classmethod
    def from_extxyz(cls, path: str | os.PathLike) -> Dataset:
        """Read a file written by :meth:`to_extxyz` (or any extended XYZ with the same keys)."""
        return cls.from_ase(ase.io.read(path, index=':', format='extxyz'))

    @classmethod
    def from_ase(cls, images: Iterable[Atoms]) -> Dataset:
        """Frames from ``ase.Atoms``: labels from a single-point calculator, then ``arrays``/``info``.

        Born charges are read from ``born_effective_charges`` as ``(N, 3, 3)`` or ``(N, 9)`` in
        :data:`~.born.BORN_CHARGE_CONVENTION`; stress as Voigt 6 or 3x3 in ASE's sign convention.
        """
        return cls(_at(index, lambda atoms=atoms: frame_from_ase(atoms)) for index, atoms in enumerate(images))

    @classmethod
    def from_pymatgen(cls, structures: Iterable) -> Dataset:
        """Frames from ordered pymatgen ``Structure`` objects.

        Labels, where present: ``structure.properties['energy'|'stress'|'eps_inf']`` and
        ``site_properties['forces'|'born_effective_charges']``.
        """
        return cls(
            _at(index, lambda structure=structure: frame_from_pymatgen(structure))
            for index, structure in enumerate(structures)
        )


def _at(index: int, build: Callable):
    """Call ``build()``, prefixing any ``ValueError`` with the frame index."""
    try:
        return build()
    except ValueError as exception:
        raise ValueError(f'frame {index}: {exception}') from exception
