"""One labelled configuration, the unit that labelling, training and selection exchange.

Every frame carries every label field; a label the calculation did not produce is NaN (never a missing
key), because NequIP batches frames with the same keys and skips NaN labels in its losses and metrics. A
label array is either entirely finite or entirely NaN: a partly-NaN array is a corrupted label and is
refused, with the field in the message.

Units (fixed project-wide): positions and cell in Å, energy in eV, forces in eV/Å, stress in eV/Å^3
with ASE's sign (positive = tensile, ``stress = (1/V) dE/d(strain)``, the sign NequIP uses), Born
charges in units of the elementary charge e (:data:`~.born.BORN_CHARGE_CONVENTION`), the
high-frequency dielectric tensor dimensionless.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols

from ionfield.models import keys

from .born import asr_corrected

FLAG_SEPARATOR = ','
"""Flags are stored joined by this character (extxyz info, the dataset .npz)."""


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
            if not isinstance(flag, str) or not flag or FLAG_SEPARATOR in flag or flag.strip() != flag:
                raise ValueError(f'flags must be non-empty strings without {FLAG_SEPARATOR!r} or spaces: {flag!r}')

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
        """``ase.Atoms`` with a single-point calculator and the keys of :data:`~ionfield.models.keys.EXTXYZ_KEYS`."""
        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)
        atoms.calc = SinglePointCalculator(atoms, energy=self.energy, forces=self.forces, stress=self.stress)
        atoms.arrays[keys.BORN_CHARGES] = self.born_charges.reshape(self.natoms, 9)
        atoms.info[keys.DIELECTRIC] = self.eps_inf.reshape(9)
        atoms.info[keys.WEIGHT] = self.weight
        if self.flags:
            atoms.info[keys.FLAGS] = FLAG_SEPARATOR.join(sorted(self.flags))
        if self.source_uuid:
            atoms.info[keys.SOURCE_UUID] = self.source_uuid
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
