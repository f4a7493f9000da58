"""The structures a validation computes: strained cells for elastic constants, displaced cells for Gamma phonons.

Both sides, DFT and model, must be given the same structures, so they are made here, from the one input
structure, and nowhere else. Everything is ASE: cells are rows of lattice vectors in Å.

A strain ``eps`` (symmetric 3x3) deforms a cell as ``cell' = cell @ (I + eps)`` with the atoms scaled
with it (fractional coordinates kept). Voigt components 1-3 are normal strains, 4-6 (yz, xz, xy) are
engineering shears ``gamma = 2 eps_ab``, so that the Voigt stress-strain coefficients are the elastic
constants ``C_ij`` with no factor of two (:func:`ionfield.models.validation.properties.elastic_constants`).
The ions are not relaxed in the strained cells: the constants are clamped-ion ones unless the caller
relaxes the ions in every strained cell, on both sides alike (needed where atoms are not at inversion
centres, e.g. wurtzite or perovskites with tilts).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from phonopy import Phonopy
from phonopy.structure.atoms import PhonopyAtoms

#: Voigt order of the six strain and stress components.
VOIGT = ('xx', 'yy', 'zz', 'yz', 'xz', 'xy')
#: (row, column) of each Voigt component.
VOIGT_INDICES = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def strain_label(component: int, sign: int) -> str:
    """``'e1+'`` ... ``'e6-'``: the key of Voigt component ``component`` (0-5) strained with ``sign`` (+1 or -1)."""
    return f'e{component + 1}{"+" if sign > 0 else "-"}'


def strain_matrix(component: int, amplitude: float) -> np.ndarray:
    """The symmetric 3x3 strain of Voigt component ``component`` (0-5); shears split ``amplitude / 2`` per element."""
    row, column = VOIGT_INDICES[component]
    eps = np.zeros((3, 3))
    if row == column:
        eps[row, column] = amplitude
    else:
        eps[row, column] = eps[column, row] = amplitude / 2
    return eps


def strained_cells(atoms: Atoms, strain: float) -> dict[str, Atoms]:
    """The 12 copies of ``atoms`` strained by ``+/- strain`` in each Voigt component, keyed ``'e1+'`` ... ``'e6-'``.

    ``cell' = cell @ (I + eps)`` with the atoms scaled with the cell; no calculator is attached.
    """
    if not strain > 0:
        raise ValueError(f'the strain amplitude must be above 0, got {strain!r}')
    cells = {}
    for component in range(6):
        for sign in (1, -1):
            strained = atoms.copy()  # ASE copies no calculator
            deformation = np.eye(3) + strain_matrix(component, sign * strain)
            strained.set_cell(atoms.cell.array @ deformation, scale_atoms=True)
            cells[strain_label(component, sign)] = strained
    return cells


def to_phonopy(atoms: Atoms) -> PhonopyAtoms:
    """``atoms`` as phonopy's structure, with ASE's masses (so both sides and ASE tools agree on them)."""
    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=atoms.cell.array,
        scaled_positions=atoms.get_scaled_positions(wrap=False),
        masses=atoms.get_masses(),
    )


def to_ase(structure: PhonopyAtoms) -> Atoms:
    """A phonopy structure as periodic ASE ``Atoms`` (masses kept)."""
    atoms = Atoms(structure.symbols, cell=structure.cell, scaled_positions=structure.scaled_positions, pbc=True)
    atoms.set_masses(structure.masses)
    return atoms


def phonon_displacements(
    atoms: Atoms, supercell: Sequence[int] = (1, 1, 1), distance: float = 0.01
) -> tuple[Phonopy, list[Atoms]]:
    """A phonopy object for ``atoms`` and its displaced supercells (ASE, pbc True) whose forces it needs.

    ``supercell`` is diagonal; ``[1, 1, 1]`` displaces atoms of the cell itself, which gives the Gamma
    dynamical matrix exactly (every periodic image moves along: the q = 0 perturbation). ``distance`` is
    in Å. The cell is taken as it is (``primitive_matrix=None``): the Gamma frequencies are those of all
    its 3N modes, not of a primitive cell phonopy might find. Phonopy uses the symmetry it finds to
    displace as few atoms as it can, and +/- pairs where symmetry does not relate them.
    """
    supercell = [int(n) for n in supercell]
    if len(supercell) != 3 or min(supercell) < 1:
        raise ValueError(f'supercell must be 3 positive integers (a diagonal supercell), got {supercell!r}')
    phonon = Phonopy(to_phonopy(atoms), supercell_matrix=np.diag(supercell), primitive_matrix=None)
    phonon.generate_displacements(distance=distance)
    return phonon, [to_ase(cell) for cell in phonon.supercells_with_displacements]
