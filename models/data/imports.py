"""Labelled frames from another group's files: key mapping, units, stress sign and Born-charge index order.

A file written by another code or group names its labels differently (``REF_energy``, ``DFT_forces``,
``REF_becs``), may hold them in Rydberg or Hartree units, may store a stress with the pressure sign (VASP
and QE print positive = compressed) or a virial instead of a stress, and may store Born charges in either
index order. None of that can be guessed from the numbers, so the reader states it in
:class:`ImportSettings` and :func:`read_frames` turns every frame into the project's units and conventions
(:mod:`ionfield.models.data.frame`), with an :class:`ImportReport` of what it did and what it found.

The index order is checked where it can be: the transpose of a Born tensor is indistinguishable from the
tensor itself when the tensor is symmetric, so a file whose tensors are all symmetric (within
:attr:`ImportSettings.symmetric_tolerance`) needs no order; one with antisymmetric parts larger than
that is refused until ``born_order`` says which index is the field. The acoustic sum rule is measured on
every frame and frames beyond ``asr_threshold`` are flagged, as labelling does.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import ClassVar

import numpy as np
from ase import Atoms, units
from ase.io import read

from ionfield.models import keys
from ionfield.models.settings import Settings, SettingsError, is_number

from .born import asr_violation
from .dataset import Dataset
from .frame import Frame
from .io import as_3x3, label_value

#: Energies in eV per unit.
ENERGY_UNITS = {'eV': 1.0, 'meV': 1e-3, 'Ry': units.Ry, 'Ha': units.Hartree, 'kcal/mol': units.kcal / units.mol,
                'kJ/mol': units.kJ / units.mol}  # fmt: skip
#: Forces in eV/Å per unit.
FORCE_UNITS = {
    'eV/Å': 1.0,
    'meV/Å': 1e-3,
    'Ry/bohr': units.Ry / units.Bohr,
    'Ha/bohr': units.Hartree / units.Bohr,
    'kcal/mol/Å': units.kcal / units.mol,
}
#: Stresses in eV/Å^3 per unit.
STRESS_UNITS = {'eV/Å^3': 1.0, 'GPa': units.GPa, 'kbar': 0.1 * units.GPa, 'Ry/bohr^3': units.Ry / units.Bohr**3}
#: Signs of a stress: ``tensile`` is ASE's and nequip's (positive = stretched, the project's);
#: ``compressive`` is what VASP (vasprun ``stress``, OUTCAR ``in kB``) and QE (``total stress``) print.
STRESS_SIGNS = {'tensile': 1.0, 'compressive': -1.0}
#: Born-charge index orders: ``field_displacement`` is the project's (``Z[a, b] = dF_b / d(e E_a)``, as ph.x
#: and VASP write it); ``displacement_field`` is its transpose.
BORN_ORDERS = ('field_displacement', 'displacement_field')


#: The labels a mapping may name (``<label>_key`` in :class:`ImportSettings`).
LABELS = ('energy', 'forces', 'stress', 'virial', 'born_charges', 'dielectric')
#: The label counts of the report (:meth:`Dataset.statistics` names).
COUNTED = ('energy', 'forces', 'stress', 'born_charges', 'eps_inf')


class DatasetImportError(SettingsError):
    """A file or mapping that cannot be imported; the message says what to state or change."""


@dataclasses.dataclass
class ImportSettings(Settings):
    """How to read one file: which key holds each label, in which unit, sign and index order.

    A key left ``None`` means the file has no such label (the frames get NaN there). ``stress_key`` and
    ``virial_key`` exclude each other; a virial ``W = -V sigma`` is in the energy unit.
    """

    input_error: ClassVar[type[SettingsError]] = DatasetImportError
    label: ClassVar[str] = 'import setting'

    energy_key: str | None = keys.ENERGY
    forces_key: str | None = keys.FORCES
    stress_key: str | None = keys.STRESS
    virial_key: str | None = None
    born_charges_key: str | None = keys.BORN_CHARGES
    dielectric_key: str | None = keys.DIELECTRIC
    weight_key: str | None = None
    energy_unit: str = 'eV'
    forces_unit: str = 'eV/Å'
    stress_unit: str = 'eV/Å^3'
    stress_sign: str = 'tensile'
    born_order: str | None = None
    symmetric_tolerance: float = 1e-3
    asr_threshold: float = 0.05
    index: str = ':'

    @classmethod
    def _normalise(cls, values: dict) -> dict:
        # a virial replaces the default stress key unless a stress key was stated too (then both are refused)
        if values.get('virial_key') and 'stress_key' not in values:
            values = {**values, 'stress_key': None}
        return values

    def problems(self) -> list[str]:
        problems = []
        for name, value, known in (
            ('energy_unit', self.energy_unit, ENERGY_UNITS),
            ('forces_unit', self.forces_unit, FORCE_UNITS),
            ('stress_unit', self.stress_unit, STRESS_UNITS),
            ('stress_sign', self.stress_sign, STRESS_SIGNS),
        ):
            if value not in known:
                problems.append(f'{name} {value!r} is not one of {", ".join(known)}')
        if self.born_order is not None and self.born_order not in BORN_ORDERS:
            problems.append(f'born_order {self.born_order!r} is not one of {", ".join(BORN_ORDERS)}')
        if self.stress_key and self.virial_key:
            problems.append('stress_key and virial_key are both set: a file holds one or the other')
        for name in ('symmetric_tolerance', 'asr_threshold'):
            value = getattr(self, name)
            if not (is_number(value) and value > 0):
                problems.append(f'{name} must be a number above 0 (e), got {value!r}')
        return problems


@dataclasses.dataclass
class ImportReport:
    """What :func:`read_frames` did: counts per label, the Born-charge checks, and the conversions applied."""

    n_frames: int
    label_counts: dict[str, int]
    absent_labels: list[str]
    """Labels whose stated key no frame has (their values are NaN everywhere)."""
    born_order: str | None
    """The order used (``None``: no Born charges); ``'symmetric'`` when every tensor was symmetric."""
    max_antisymmetry: float
    """Largest ``|Z - Z^T| / 2`` element over all atoms and frames in e (NaN without Born charges)."""
    max_asr_violation: float
    n_asr_flagged: int
    conversions: dict[str, str]

    def to_dict(self) -> dict:
        return {key: (None if isinstance(value, float) and math.isnan(value) else value)
                for key, value in dataclasses.asdict(self).items()}  # fmt: skip


def _born(atoms: Atoms, settings: ImportSettings, where: str) -> np.ndarray | None:
    value = label_value(atoms, settings.born_charges_key)
    if value is None:
        return None
    value = np.asarray(value, dtype=float)
    if value.size != 9 * len(atoms):
        raise DatasetImportError(
            f'{where}: `{settings.born_charges_key}` has {value.size} numbers for {len(atoms)} atoms; '
            'Born charges need 9 per atom (a 3x3 tensor, row-major)'
        )
    return value.reshape(len(atoms), 3, 3)


def _stress(atoms: Atoms, settings: ImportSettings, where: str) -> np.ndarray | None:
    if settings.virial_key:
        virial = label_value(atoms, settings.virial_key)
        if virial is None:
            return None
        volume = atoms.get_volume() if atoms.pbc.all() else 0.0
        if volume <= 0:
            raise DatasetImportError(f'{where}: a virial needs a periodic cell with a volume to become a stress')
        return -as_3x3(virial) * ENERGY_UNITS[settings.energy_unit] / volume
    stress = label_value(atoms, settings.stress_key)
    if stress is None:
        return None
    return as_3x3(stress) * STRESS_UNITS[settings.stress_unit] * STRESS_SIGNS[settings.stress_sign]


def _frame(atoms: Atoms, settings: ImportSettings, where: str) -> Frame:
    energy = label_value(atoms, settings.energy_key)
    forces = label_value(atoms, settings.forces_key)
    dielectric = label_value(atoms, settings.dielectric_key)
    weight = label_value(atoms, settings.weight_key)
    born = _born(atoms, settings, where)
    if born is not None and settings.born_order == 'displacement_field':
        born = born.transpose(0, 2, 1)
    try:
        return Frame(
            numbers=atoms.numbers,
            positions=atoms.positions,
            cell=atoms.cell.array,
            pbc=atoms.pbc,
            energy=None if energy is None else float(np.reshape(energy, ())) * ENERGY_UNITS[settings.energy_unit],
            forces=None if forces is None else np.asarray(forces, dtype=float) * FORCE_UNITS[settings.forces_unit],
            stress=_stress(atoms, settings, where),
            born_charges=born,
            eps_inf=as_3x3(dielectric),
            weight=1.0 if weight is None else float(weight),
        )
    except (ValueError, TypeError) as exception:
        raise DatasetImportError(f'{where}: {exception}') from exception


def _antisymmetry(born: np.ndarray) -> float:
    return float(np.abs(born - born.transpose(0, 2, 1)).max() / 2) if born.size else 0.0


def _check_born_order(frames: list[Frame], settings: ImportSettings) -> tuple[str | None, float]:
    """The order to record and the largest antisymmetric element; refuses an unstated order that matters."""
    with_born = [(index, frame) for index, frame in enumerate(frames) if frame.has_born_charges]
    if not with_born:
        return None, math.nan
    index, worst = max(((i, _antisymmetry(frame.born_charges)) for i, frame in with_born), key=lambda item: item[1])
    if settings.born_order is not None:
        return settings.born_order, worst
    if worst > settings.symmetric_tolerance:
        born = frames[index].born_charges
        atom = int(np.abs(born - born.transpose(0, 2, 1)).max(axis=(1, 2)).argmax())
        raise DatasetImportError(
            f'the Born charges of frame {index} (atom {atom}) are not symmetric (antisymmetric part {worst:.4f} e > '
            f'{settings.symmetric_tolerance} e), so their index order matters and cannot be read from the numbers: '
            f'state it with born_order: field_displacement (Z[a, b] = dF_b / d(e E_a), first index the field, as '
            f'QE ph.x and VASP write them) or displacement_field (the transpose)'
        )
    return 'symmetric', worst


def read_frames(path: str | os.PathLike, settings: ImportSettings | None = None) -> tuple[Dataset, ImportReport]:
    """Every frame of ``path`` (any format ASE reads; extxyz by default) in project units and conventions."""
    settings = settings or ImportSettings()
    try:
        images = read(path, index=settings.index)
    except FileNotFoundError as exception:
        raise DatasetImportError(f'{os.fspath(path)} does not exist') from exception
    except Exception as exception:  # ASE raises many kinds for a file it cannot parse
        raise DatasetImportError(f'{os.fspath(path)} cannot be read by ASE: {exception}') from exception
    images = images if isinstance(images, list) else [images]
    if not images:
        raise DatasetImportError(f'{os.fspath(path)} holds no frames (index {settings.index!r})')
    frames = [_frame(atoms, settings, f'frame {index}') for index, atoms in enumerate(images)]
    stated = {name: getattr(settings, f'{name}_key') for name in LABELS if getattr(settings, f'{name}_key')}
    absent = sorted(name for name, key in stated.items() if all(label_value(atoms, key) is None for atoms in images))
    if len(absent) == len(stated):
        raise DatasetImportError(
            f'{os.fspath(path)}: no frame has any of the stated labels '
            + ', '.join(f'{name} (`{stated[name]}`)' for name in absent)
            + f"; map the file's keys (its first frame has info {sorted(images[0].info)} and arrays "
            f'{sorted(images[0].arrays)})'
        )
    born_order, antisymmetry = _check_born_order(frames, settings)
    dataset = Dataset(frames).flag_asr(settings.asr_threshold)
    violations = [asr_violation(frame.born_charges) for frame in frames if frame.has_born_charges]
    statistics = dataset.statistics()
    report = ImportReport(
        n_frames=len(frames),
        label_counts={name: statistics[f'n_{name}'] for name in COUNTED},
        absent_labels=absent,
        born_order=born_order,
        max_antisymmetry=antisymmetry,
        max_asr_violation=max(violations) if violations else math.nan,
        n_asr_flagged=sum(keys.ASR_FLAG in frame.flags for frame in dataset),
        conversions={
            'energy': f'{settings.energy_unit} -> eV',
            'forces': f'{settings.forces_unit} -> eV/Å',
            'stress': (
                f'virial ({settings.energy_unit}) -> -W/V in eV/Å^3'
                if settings.virial_key
                else f'{settings.stress_unit}, {settings.stress_sign} sign -> eV/Å^3, tensile sign'
            ),
            'born_charges': 'transposed' if born_order == 'displacement_field' else 'as given',
        },
    )
    return dataset, report
