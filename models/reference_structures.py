"""Reference structures shipped with the package, each with its source.

They are built from published crystallographic facts (space group, lattice parameters, Wyckoff
positions) rather than copied files, so the source of every number is stated next to it.
"""

from __future__ import annotations

from collections.abc import Callable

from ase import Atoms
from ase.spacegroup import crystal

__all__ = ('REFERENCE_STRUCTURES', 'alpha_li3n', 'get_reference_structure')


def alpha_li3n() -> Atoms:
    """alpha-Li3N, P6/mmm (191), a = 3.648 Å, c = 3.875 Å; N 1a (0,0,0), Li1 1b (0,0,1/2), Li2 2c (1/3,2/3,0).

    Source: A. Rabenau and H. Schulz, J. Less-Common Met. 50, 155 (1976) (room-temperature X-ray
    structure); the 4-atom primitive cell.
    """
    atoms = crystal(
        symbols=['N', 'Li', 'Li'],
        basis=[(0, 0, 0), (0, 0, 0.5), (1 / 3, 2 / 3, 0)],
        spacegroup=191,
        cellpar=[3.648, 3.648, 3.875, 90, 90, 120],
        primitive_cell=True,
    )
    atoms.info['source'] = 'alpha-Li3N, P6/mmm, Rabenau & Schulz, J. Less-Common Met. 50, 155 (1976)'
    return atoms


REFERENCE_STRUCTURES: dict[str, Callable[[], Atoms]] = {
    'alpha-Li3N': alpha_li3n,
}


def get_reference_structure(name: str) -> Atoms:
    """Return a fresh copy of the reference structure ``name`` (see ``REFERENCE_STRUCTURES``)."""
    try:
        return REFERENCE_STRUCTURES[name]()
    except KeyError:
        raise KeyError(f'unknown reference structure `{name}`; known: {", ".join(REFERENCE_STRUCTURES)}') from None
