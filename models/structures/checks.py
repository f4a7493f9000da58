"""Plain-Python sanity checks of a structure, shared by the CLI and the workflows.

Bad structures (overlapping atoms, no periodicity, empty) must be rejected with a message that
names the problem before any DFT or MD is spent on them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

__all__ = ('EMPTY', 'NOT_PERIODIC', 'DEGENERATE_CELL', 'OVERLAPPING_ATOMS', 'StructureReport', 'analyse_structure')

EMPTY = 'empty'
NOT_PERIODIC = 'not_periodic'
DEGENERATE_CELL = 'degenerate_cell'
OVERLAPPING_ATOMS = 'overlapping_atoms'

AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


@dataclasses.dataclass(frozen=True)
class StructureReport:
    """What a labelling or MD run needs to know about a structure before it starts."""

    formula: str
    natoms: int
    pbc: tuple[bool, bool, bool]
    volume: float | None
    density: float | None
    min_distance: float | None
    closest_pair: tuple[int, int] | None
    problems: tuple[str, ...]
    problem_kinds: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data['pbc'] = list(self.pbc)
        data['closest_pair'] = list(self.closest_pair) if self.closest_pair else None
        data['problems'] = list(self.problems)
        data['problem_kinds'] = list(self.problem_kinds)
        return data


def analyse_structure(atoms: Atoms, min_distance: float = 0.5, search_radius: float = 4.0) -> StructureReport:
    """Return formula, density and the shortest interatomic distance (minimum image) of ``atoms``.

    ``problems`` lists, in words, every reason the structure cannot be simulated as a bulk crystal:
    no atoms, not periodic in three directions, a degenerate cell, or two atoms closer than
    ``min_distance`` (Å); ``problem_kinds`` gives the same as constants of this module.
    """
    problems, kinds = [], []
    natoms = len(atoms)
    pbc = tuple(bool(x) for x in atoms.pbc)
    if natoms == 0:
        return StructureReport('', 0, pbc, None, None, None, None, ('the structure has no atoms',), (EMPTY,))
    if not all(pbc):
        problems.append(f'the structure is not periodic in all three directions (pbc={list(pbc)})')
        kinds.append(NOT_PERIODIC)
    volume = float(abs(np.linalg.det(atoms.cell.array))) if all(pbc) else None
    if all(pbc) and (volume is None or volume < 1e-6):
        problems.append('the cell is degenerate (zero volume)')
        kinds.append(DEGENERATE_CELL)
        volume = None
    density = float(atoms.get_masses().sum() / volume * AMU_PER_A3_TO_G_PER_CM3) if volume else None

    dmin, pair = _shortest_distance(atoms, search_radius)
    if dmin is not None and dmin < min_distance:
        i, j = pair
        problems.append(
            f'atoms {i} ({atoms[i].symbol}) and {j} ({atoms[j].symbol}) are {dmin:.3f} Å apart, '
            f'closer than {min_distance} Å (overlapping atoms)'
        )
        kinds.append(OVERLAPPING_ATOMS)
    return StructureReport(
        formula=atoms.get_chemical_formula(mode='metal'),
        natoms=natoms,
        pbc=pbc,
        volume=volume,
        density=density,
        min_distance=dmin,
        closest_pair=pair,
        problems=tuple(problems),
        problem_kinds=tuple(kinds),
    )


def _shortest_distance(atoms: Atoms, cutoff: float) -> tuple[float | None, tuple[int, int] | None]:
    if len(atoms) == 1 and not any(atoms.pbc):
        return None, None
    if any(atoms.pbc) and abs(np.linalg.det(atoms.cell.array)) < 1e-6:
        return None, None
    i, j, d = neighbor_list('ijd', atoms, cutoff, self_interaction=False)
    if len(d) == 0:
        return None, None
    k = int(np.argmin(d))
    return float(d[k]), (int(min(i[k], j[k])), int(max(i[k], j[k])))
