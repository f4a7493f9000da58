"""Labelled DFT frames as one plain-Python object, so labelling, training and selection agree on one layout.

A :class:`Dataset` is a list of :class:`Frame` objects. Every frame carries every label field; a label
the calculation did not produce is NaN (never a missing key), because NequIP batches frames with the
same keys and skips NaN labels in its losses and metrics. A label array is either entirely finite or
entirely NaN: a partly-NaN array is a corrupted label and is refused, with the frame index in the message.

Units (fixed project-wide): positions and cell in Å, energy in eV, forces in eV/Å, stress in eV/Å^3
with ASE's sign (positive = tensile, ``stress = (1/V) dE/d(strain)``, the sign NequIP uses), Born
charges in units of the elementary charge e, the high-frequency dielectric tensor dimensionless.

Born charges follow :data:`BORN_CHARGE_CONVENTION`. DFPT codes violate the acoustic sum rule (ASR,
``sum_i Z_i = 0``) by numerical noise; the raw tensors are stored and the corrected ones are derived
(:func:`asr_corrected`), so that the correction can be changed later without relabelling.

The module needs only numpy and ase (pymatgen is imported lazily by :meth:`Dataset.from_pymatgen`), so it
runs on a compute node or in a notebook without AiiDA. :meth:`Dataset.save` writes one ``.npz`` file;
:meth:`Dataset.to_extxyz` writes the extended XYZ that ``nequip.data.dataset.ASEDataset`` (nequip 0.19) reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols
from ase.stress import voigt_6_to_full_3x3_stress

__all__ = (
    'ASR_FLAG',
    'BORN_CHARGE_CONVENTION',
    'EXTXYZ_KEYS',
    'FORMAT_VERSION',
    'Dataset',
    'Frame',
    'asr_corrected',
    'asr_violation',
    'field_forces',
)

BORN_CHARGE_CONVENTION = (
    'Z[i, a, b] = dF_ib / d(e E_a): first index field (polarization) direction a, second index displacement '
    'direction b, units of e; the field force on atom i is F_i = e Z_i^T E, i.e. F_ib = sum_a Z_iab E_a.'
)
"""The Born-charge index convention of every frame, model and MD run in the project."""

ASR_FLAG = 'asr_violation'
"""Flag set by :meth:`Dataset.flag_asr` on frames whose Born charges break the acoustic sum rule."""

FORMAT_VERSION = 1
"""Version of the ``.npz`` layout written by :meth:`Dataset.save`."""

EXTXYZ_KEYS = {
    'energy': 'energy',
    'forces': 'forces',
    'stress': 'stress',
    'born_charges': 'born_effective_charges',
    'eps_inf': 'dielectric_tensor',
}
"""Frame field -> key in extended XYZ, equal to NequIP's ``AtomicDataDict`` keys (``nequip/data/_keys.py``).

``born_effective_charges`` is per atom, written as 9 columns ``Z[i].reshape(9)`` (row-major, so column
``3a + b`` holds ``Z[i, a, b]``); nequip's ``from_ase`` reshapes ``(N, 9)`` back to ``(N, 3, 3)`` the same way.
``dielectric_tensor`` and ``stress`` are per frame, 9 values, read by nequip as ``(1, 3, 3)``.
"""

_FLAG_SEPARATOR = ','


def _nan(*shape: int) -> np.ndarray:
    return np.full(shape, np.nan)


@dataclasses.dataclass(eq=False)
class Frame:
    """One labelled configuration; labels that were not computed are NaN (``None`` is turned into NaN)."""

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    energy: float = math.nan
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    born_charges: np.ndarray | None = None
    eps_inf: np.ndarray | None = None
    weight: float = 1.0
    flags: frozenset[str] = frozenset()
    source_uuid: str = ''

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        natoms = len(self.numbers)
        self.positions = np.asarray(self.positions, dtype=float)
        self.cell = np.asarray(self.cell, dtype=float)
        self.pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        self.energy = math.nan if self.energy is None else float(self.energy)
        self.forces = _nan(natoms, 3) if self.forces is None else np.asarray(self.forces, dtype=float)
        self.stress = _nan(3, 3) if self.stress is None else np.asarray(self.stress, dtype=float)
        self.born_charges = (
            _nan(natoms, 3, 3) if self.born_charges is None else np.asarray(self.born_charges, dtype=float)
        )
        self.eps_inf = _nan(3, 3) if self.eps_inf is None else np.asarray(self.eps_inf, dtype=float)
        self.weight = float(self.weight)
        self.flags = frozenset(self.flags)
        self.source_uuid = str(self.source_uuid)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field if shapes or values are inconsistent."""
        natoms = len(self.numbers)
        if natoms and self.numbers.min() < 1:
            raise ValueError(f'atomic numbers must be >= 1, got {self.numbers.min()}')
        _check_shape('positions', self.positions, (natoms, 3))
        _check_shape('cell', self.cell, (3, 3))
        _check_shape('forces', self.forces, (natoms, 3))
        _check_shape('stress', self.stress, (3, 3))
        _check_shape('born_charges', self.born_charges, (natoms, 3, 3))
        _check_shape('eps_inf', self.eps_inf, (3, 3))
        if not np.isfinite(self.positions).all():
            raise ValueError('positions contain NaN or inf')
        if not np.isfinite(self.cell).all():
            raise ValueError('cell contains NaN or inf')
        if math.isinf(self.energy):
            raise ValueError('energy is infinite')
        for name in ('forces', 'stress', 'born_charges', 'eps_inf'):
            _check_all_or_nothing(name, getattr(self, name))
        if not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f'weight must be finite and >= 0, got {self.weight}')
        for flag in self.flags:
            if not isinstance(flag, str) or not flag or _FLAG_SEPARATOR in flag or flag.strip() != flag:
                raise ValueError(f'flags must be non-empty strings without {_FLAG_SEPARATOR!r} or spaces: {flag!r}')

    @property
    def natoms(self) -> int:
        return len(self.numbers)

    @property
    def species(self) -> list[str]:
        """Chemical symbols, one per atom."""
        return [chemical_symbols[number] for number in self.numbers]

    @property
    def has_energy(self) -> bool:
        return not math.isnan(self.energy)

    @property
    def has_forces(self) -> bool:
        return _present(self.forces)

    @property
    def has_stress(self) -> bool:
        return _present(self.stress)

    @property
    def has_born_charges(self) -> bool:
        return _present(self.born_charges)

    @property
    def has_eps_inf(self) -> bool:
        return _present(self.eps_inf)

    @property
    def born_charges_asr(self) -> np.ndarray:
        """Born charges with the acoustic sum rule imposed (NaN when the frame has none); raw ones stay stored."""
        return asr_corrected(self.born_charges)

    def replace(self, **changes) -> Frame:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_ase(self) -> Atoms:
        """``ase.Atoms`` with a single-point calculator and the keys of :data:`EXTXYZ_KEYS` (NaN where absent)."""
        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)
        atoms.calc = SinglePointCalculator(atoms, energy=self.energy, forces=self.forces, stress=self.stress)
        atoms.arrays[EXTXYZ_KEYS['born_charges']] = self.born_charges.reshape(self.natoms, 9)
        atoms.info[EXTXYZ_KEYS['eps_inf']] = self.eps_inf.reshape(9)
        atoms.info['weight'] = self.weight
        if self.flags:
            atoms.info['flags'] = _FLAG_SEPARATOR.join(sorted(self.flags))
        if self.source_uuid:
            atoms.info['source_uuid'] = self.source_uuid
        return atoms


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise ValueError(f'{name} has shape {array.shape}, expected {shape}')


def _check_all_or_nothing(name: str, array: np.ndarray) -> None:
    if np.isinf(array).any():
        raise ValueError(f'{name} contains inf')
    nan = np.isnan(array)
    if nan.any() and not nan.all():
        raise ValueError(f'{name} is partly NaN ({int(nan.sum())} of {nan.size} values): a label is all or nothing')


def _present(array: np.ndarray) -> bool:
    return array.size > 0 and not np.isnan(array).all()


def asr_violation(frame: Frame) -> float:
    """Largest ``|sum_i Z_iab|`` over (a, b) in e; NaN when the frame has no Born charges."""
    if not frame.has_born_charges:
        return math.nan
    return float(np.abs(frame.born_charges.sum(axis=0)).max())


def asr_corrected(born: np.ndarray) -> np.ndarray:
    """Born charges ``(N, 3, 3)`` with the ASR violation spread equally over the atoms (mean subtracted)."""
    born = np.asarray(born, dtype=float)
    if born.shape[0] == 0:
        return born.copy()
    return born - born.mean(axis=0, keepdims=True)


def field_forces(born: np.ndarray, field: Sequence[float]) -> np.ndarray:
    """Field forces ``F_i = e Z_i^T E`` in eV/Å for ``born`` ``(N, 3, 3)`` in e and ``field`` ``(3,)`` in V/Å."""
    return np.einsum('iab,a->ib', np.asarray(born, dtype=float), np.asarray(field, dtype=float))


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
        """A copy in which frames whose :func:`asr_violation` exceeds ``threshold`` (e) carry :data:`ASR_FLAG`."""
        return Dataset(
            frame.replace(flags=frame.flags | {ASR_FLAG}) if asr_violation(frame) > threshold else frame
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
        violations = [asr_violation(frame) for frame in frames if frame.has_born_charges]
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
            'flags': np.array([_FLAG_SEPARATOR.join(sorted(frame.flags)) for frame in frames], dtype=str),
            'source_uuid': np.array([frame.source_uuid for frame in frames], dtype=str),
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
                        flags=frozenset(flags.split(_FLAG_SEPARATOR)) if flags else frozenset(),
                        source_uuid=str(arrays['source_uuid'][index]),
                    ),
                )
            )
        return cls(frames)

    # --- exchange formats ------------------------------------------------------------------------------

    def to_ase(self) -> list[Atoms]:
        """One ``ase.Atoms`` per frame (see :meth:`Frame.to_ase`)."""
        return [frame.to_ase() for frame in self._frames]

    def to_extxyz(self, path: str | os.PathLike) -> None:
        """Extended XYZ readable by ``nequip.data.dataset.ASEDataset`` with the keys of :data:`EXTXYZ_KEYS`."""
        ase.io.write(path, self.to_ase(), format='extxyz')

    @classmethod
    def from_extxyz(cls, path: str | os.PathLike) -> Dataset:
        """Read a file written by :meth:`to_extxyz` (or any extended XYZ with the same keys)."""
        return cls.from_ase(ase.io.read(path, index=':', format='extxyz'))

    @classmethod
    def from_ase(cls, images: Iterable[Atoms]) -> Dataset:
        """Frames from ``ase.Atoms``: labels from a single-point calculator, then ``arrays``/``info``.

        Born charges are read from ``born_effective_charges`` as ``(N, 3, 3)`` or ``(N, 9)`` in
        :data:`BORN_CHARGE_CONVENTION`; stress as Voigt 6 or 3x3 in ASE's sign convention.
        """
        return cls(_at(index, lambda atoms=atoms: _frame_from_ase(atoms)) for index, atoms in enumerate(images))

    @classmethod
    def from_pymatgen(cls, structures: Iterable) -> Dataset:
        """Frames from ordered pymatgen ``Structure`` objects.

        Labels, where present: ``structure.properties['energy'|'stress'|'eps_inf']`` and
        ``site_properties['forces'|'born_effective_charges']``.
        """
        return cls(
            _at(index, lambda structure=structure: _frame_from_pymatgen(structure))
            for index, structure in enumerate(structures)
        )


def _at(index: int, build: Callable):
    """Call ``build()``, prefixing any ``ValueError`` with the frame index."""
    try:
        return build()
    except ValueError as exception:
        raise ValueError(f'frame {index}: {exception}') from exception


def _label(atoms: Atoms, key: str):
    results = getattr(atoms.calc, 'results', None) or {}
    for source in (results, atoms.info, atoms.arrays):
        if key in source:
            return source[key]
    return None


def _as_3x3(value) -> np.ndarray | None:
    if value is None:
        return None
    value = np.asarray(value, dtype=float)
    return voigt_6_to_full_3x3_stress(value) if value.shape == (6,) else value.reshape(3, 3)


def _frame_from_ase(atoms: Atoms) -> Frame:
    born = _label(atoms, EXTXYZ_KEYS['born_charges'])
    flags = atoms.info.get('flags', '')
    return Frame(
        numbers=atoms.numbers,
        positions=atoms.positions,
        cell=atoms.cell.array,
        pbc=atoms.pbc,
        energy=_label(atoms, EXTXYZ_KEYS['energy']),
        forces=_label(atoms, EXTXYZ_KEYS['forces']),
        stress=_as_3x3(_label(atoms, EXTXYZ_KEYS['stress'])),
        born_charges=None if born is None else np.asarray(born, dtype=float).reshape(len(atoms), 3, 3),
        eps_inf=_as_3x3(_label(atoms, EXTXYZ_KEYS['eps_inf'])),
        weight=atoms.info.get('weight', 1.0),
        flags=frozenset(str(flags).split(_FLAG_SEPARATOR)) if flags else frozenset(),
        source_uuid=str(atoms.info.get('source_uuid', '')),
    )


def _frame_from_pymatgen(structure) -> Frame:
    if not structure.is_ordered:
        raise ValueError('disordered structures cannot be labelled frames')
    properties = getattr(structure, 'properties', {}) or {}
    sites = structure.site_properties
    born = sites.get('born_effective_charges')
    return Frame(
        numbers=[site.specie.Z for site in structure],
        positions=structure.cart_coords,
        cell=structure.lattice.matrix,
        pbc=structure.lattice.pbc,
        energy=properties.get('energy'),
        forces=sites.get('forces'),
        stress=_as_3x3(properties.get('stress')),
        born_charges=None if born is None else np.asarray(born, dtype=float).reshape(len(structure), 3, 3),
        eps_inf=_as_3x3(properties.get('eps_inf')),
        source_uuid=str(properties.get('source_uuid', '')),
    )
