"""Frames from the formats other codes write: ASE ``Atoms`` (extxyz, single-point results) and pymatgen.

Born charges are read from ``born_effective_charges`` as ``(N, 3, 3)`` or ``(N, 9)`` (row-major) in
:data:`~.born.BORN_CHARGE_CONVENTION`; stress as Voigt 6 or 3x3 in ASE's sign convention.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.stress import voigt_6_to_full_3x3_stress

from ionfield.models import keys

from .frame import FLAG_SEPARATOR, Frame


def label_value(atoms: Atoms, key: str | None):
    """The value under ``key`` in the calculator results, ``info`` or ``arrays`` (``None``: absent or no key)."""
    if key is None:
        return None
    results = getattr(atoms.calc, 'results', None) or {}
    for source in (results, atoms.info, atoms.arrays):
        if key in source:
            return source[key]
    return None


def as_3x3(value) -> np.ndarray | None:
    if value is None:
        return None
    value = np.asarray(value, dtype=float)
    return voigt_6_to_full_3x3_stress(value) if value.shape == (6,) else value.reshape(3, 3)


def frame_from_ase(atoms: Atoms) -> Frame:
    born = label_value(atoms, keys.BORN_CHARGES)
    flags = atoms.info.get(keys.FLAGS, '')
    return Frame(
        numbers=atoms.numbers,
        positions=atoms.positions,
        cell=atoms.cell.array,
        pbc=atoms.pbc,
        energy=label_value(atoms, keys.ENERGY),
        forces=label_value(atoms, keys.FORCES),
        stress=as_3x3(label_value(atoms, keys.STRESS)),
        born_charges=None if born is None else np.asarray(born, dtype=float).reshape(len(atoms), 3, 3),
        eps_inf=as_3x3(label_value(atoms, keys.DIELECTRIC)),
        weight=atoms.info.get(keys.WEIGHT, 1.0),
        flags=frozenset(str(flags).split(FLAG_SEPARATOR)) if flags else frozenset(),
        source_uuid=str(atoms.info.get(keys.SOURCE_UUID, '')),
    )


def frame_from_pymatgen(structure) -> Frame:
    if not structure.is_ordered:
        raise ValueError('disordered structures cannot be labelled frames')
    properties = getattr(structure, 'properties', {}) or {}
    sites = structure.site_properties
    born = sites.get(keys.BORN_CHARGES)
    return Frame(
        numbers=[site.specie.Z for site in structure],
        positions=structure.cart_coords,
        cell=structure.lattice.matrix,
        pbc=structure.lattice.pbc,
        energy=properties.get(keys.ENERGY),
        forces=sites.get(keys.FORCES),
        stress=as_3x3(properties.get('stress')),
        born_charges=None if born is None else np.asarray(born, dtype=float).reshape(len(structure), 3, 3),
        eps_inf=as_3x3(properties.get('eps_inf')),
        source_uuid=str(properties.get(keys.SOURCE_UUID, '')),
    )
