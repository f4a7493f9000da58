"""Reference structures shipped with the package, each with its source.

They are built from published crystallographic facts (space group, lattice parameters, Wyckoff
positions) rather than copied files, so the source of every number is stated next to it.
"""

from __future__ import annotations

from collections.abc import Callable

from ase import Atoms
from ase.spacegroup import crystal

__all__ = (
    'REFERENCE_STRUCTURES',
    'alpha_agi',
    'alpha_li3n',
    'beta_agi',
    'beta_li3po4',
    'gamma_li3po4',
    'get_reference_structure',
)


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


def gamma_li3po4() -> Atoms:
    """gamma-Li3PO4, Pnma (62), Z = 4 (32 atoms), a = 10.4612 Å, b = 6.1113 Å, c = 4.9208 Å.

    Wyckoff positions (x, y, z) in the standard Pnma setting::

        Li1 8d (0.1627, 0.5016, 0.3008)    Li2 4c (0.4246, 0.75, 0.2045)
        P   4c (0.4115, 0.25, 0.3079)
        O1  8d (0.3418, 0.0441, 0.2054)    O2  4c (0.0503, 0.25, 0.2928)
        O3  4c (0.0896, 0.75, 0.1223)

    Source: B. Wang, B. C. Chakoumakos, B. C. Sales, B. S. Kwak and J. B. Bates, J. Solid State Chem. 115,
    313 (1995), neutron powder refinement of gamma-Li3PO4 (AMCSD 0013843), published in the Pmnb setting
    (a' = 6.1113, b' = 10.4612, c' = 4.9208 Å); re-expressed here in Pnma by a = b', b = a', c = c' and
    (x, y, z) = (y', x', z'), which maps the Pmnb symmetry operations onto those of Pnma. X-ray density
    2.445 g/cm^3. It is the quenchable high-temperature polymorph (Li2CdSiO4 type), the parent structure of
    LiPON electrolytes.
    """
    atoms = crystal(
        symbols=['Li', 'Li', 'P', 'O', 'O', 'O'],
        basis=[
            (0.1627, 0.5016, 0.3008),
            (0.4246, 0.75, 0.2045),
            (0.4115, 0.25, 0.3079),
            (0.3418, 0.0441, 0.2054),
            (0.0503, 0.25, 0.2928),
            (0.0896, 0.75, 0.1223),
        ],
        spacegroup=62,
        cellpar=[10.4612, 6.1113, 4.9208, 90, 90, 90],
    )
    atoms.info['source'] = (
        'gamma-Li3PO4, Pnma (62), a=10.4612 b=6.1113 c=4.9208 Å; Wang, Chakoumakos, Sales, Kwak & Bates, '
        'J. Solid State Chem. 115, 313 (1995), AMCSD 0013843 (Pmnb setting, axes a<->b swapped to Pnma)'
    )
    return atoms


def beta_li3po4() -> Atoms:
    """beta-Li3PO4, Pmn2_1 (31), Z = 2 (16 atoms), a = 6.176136 Å, b = 5.296402 Å, c = 4.922448 Å (PBE).

    Wyckoff positions (x, y, z) in the standard Pmn2_1 setting::

        Li1 2a (0, 0.844520, 0.509417)     Li2 4b (0.747127, 0.326434, 0.508363)
        P   2a (0, 0.175739, 0.001420)
        O1  2a (0, 0.896492, 0.102126)     O2  2a (0, 0.181604, 0.685191)
        O3  4b (0.207138, 0.313509, 0.107010)

    Source: Materials Project mp-13725 (PBE-relaxed; the CIF is kept in the team's
    ``shared/data/structures/beta-Li3PO4_mp-13725.cif``). That CIF lists the 16 atoms in P1 with the axes
    (4.922448, 5.296402, 6.176136 Å); the positions above are its spglib standardisation,
    (x, y, z) = (-z_mp, y_mp, x_mp) with a = |c_mp|, b = |b_mp|, c = |a_mp| and no origin shift, which
    reproduces all 16 atoms of the CIF to 1e-6. Density 2.388 g/cm^3, 3.4 % below the
    X-ray density 2.472 g/cm^3 of the experimental cell (Keffer, Mighell, Mauer, Swanson & Block,
    Inorg. Chem. 6, 119 (1967): a = 6.115, b = 5.2394, c = 4.8554 Å), as usual for PBE. The room-temperature
    ground state of Li3PO4.
    """
    atoms = crystal(
        symbols=['Li', 'Li', 'P', 'O', 'O', 'O'],
        basis=[
            (0.0, 0.844520, 0.509417),
            (0.747127, 0.326434, 0.508363),
            (0.0, 0.175739, 0.001420),
            (0.0, 0.896492, 0.102126),
            (0.0, 0.181604, 0.685191),
            (0.207138, 0.313509, 0.107010),
        ],
        spacegroup=31,
        cellpar=[6.176136, 5.296402, 4.922448, 90, 90, 90],
    )
    atoms.info['source'] = (
        'beta-Li3PO4, Pmn2_1 (31), a=6.176136 b=5.296402 c=4.922448 Å; Materials Project mp-13725 (PBE-relaxed), '
        'standard setting of its CIF'
    )
    return atoms


def alpha_agi() -> Atoms:
    """alpha-AgI as an ordered model: bcc I (Im-3m, a = 5.07 Å) with 2 Ag on one I-centred pair of 12d sites.

    In the real superionic alpha phase (above 420 K) the iodide ions form a body-centred cubic lattice,
    I 2a (0, 0, 0) of Im-3m, and the two Ag+ per cell are disordered over many interstitial sites, mostly
    the twelve tetrahedral sites 12d (1/4, 0, 1/2) and equivalents (Strock, Z. Phys. Chem. B 25, 441
    (1934); Cava, Reidinger & Wuensch, Solid State Commun. 24, 411 (1977)). A simulation cell needs
    definite positions, so this model puts one Ag on the 12d site (1/4, 0, 1/2) and the other on its
    body-centring image (3/4, 1/2, 0), leaving the other ten 12d sites and all 6b and 24h sites empty:
    each Ag sits in an I4 tetrahedron (Ag-I = a sqrt(5)/4 = 2.834 Å) and Ag-Ag = a sqrt(3)/2 = 4.391 Å.
    The occupation keeps the I-centring and the site symmetry -4m2 of 12d, so the model's space group is
    I-4m2 (119), with the -4 axis along x and the cell still metrically cubic; only the iodide sublattice
    has Im-3m. It is a starting point for supercells, rattled copies and MD above 420 K, where the Ag ions
    leave their initial sites; it is not a model of the time-averaged disorder.

    a = 5.07 Å is the lattice parameter of alpha-AgI just above the beta -> alpha transition at about 420 K
    (published values lie between 5.06 and 5.09 Å depending on temperature); x-ray density 5.98 g/cm^3.
    The 4-atom conventional cubic cell: I, I, Ag, Ag.
    """
    a = 5.07
    atoms = Atoms(
        symbols=['I', 'I', 'Ag', 'Ag'],
        scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5), (0.25, 0, 0.5), (0.75, 0.5, 0)],
        cell=[a, a, a],
        pbc=True,
    )
    atoms.info['source'] = (
        'alpha-AgI ordered model, bcc I Im-3m a=5.07 Å (~420 K; Strock 1934, Cava, Reidinger & Wuensch, '
        'Solid State Commun. 24, 411 (1977)); Ag ordered on 12d (1/4,0,1/2) and (3/4,1/2,0) -> I-4m2 (119)'
    )
    return atoms


def beta_agi() -> Atoms:
    """beta-AgI (iodargyrite), wurtzite, P6_3mc (186), a = 4.592 Å, c = 7.510 Å; Ag 2b (1/3,2/3,0), I 2b (1/3,2/3,u).

    u = 3/8 = 0.375, the ideal wurtzite value (the refined u differs from it by less than 0.002, below what
    matters for a starting structure). Source: G. Burley, J. Chem. Phys. 38, 2807 (1963) (room-temperature
    lattice parameters of hexagonal AgI; mineral data a = 4.59, c = 7.51 Å, Z = 2, specific gravity 5.69).
    X-ray density 5.685 g/cm^3. Stable below about 420 K, where it turns into superionic alpha-AgI. The 4-atom
    primitive cell.
    """
    atoms = crystal(
        symbols=['Ag', 'I'],
        basis=[(1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, 0.375)],
        spacegroup=186,
        cellpar=[4.592, 4.592, 7.510, 90, 90, 120],
    )
    atoms.info['source'] = (
        'beta-AgI, wurtzite P6_3mc (186), a=4.592 c=7.510 Å, Ag 2b (1/3,2/3,0), I 2b (1/3,2/3,0.375); '
        'Burley, J. Chem. Phys. 38, 2807 (1963)'
    )
    return atoms


REFERENCE_STRUCTURES: dict[str, Callable[[], Atoms]] = {
    'alpha-Li3N': alpha_li3n,
    'gamma-Li3PO4': gamma_li3po4,
    'beta-Li3PO4': beta_li3po4,
    'alpha-AgI': alpha_agi,
    'beta-AgI': beta_agi,
}


def get_reference_structure(name: str) -> Atoms:
    """Return a fresh copy of the reference structure ``name`` (see ``REFERENCE_STRUCTURES``)."""
    try:
        return REFERENCE_STRUCTURES[name]()
    except KeyError:
        raise KeyError(f'unknown reference structure `{name}`; known: {", ".join(REFERENCE_STRUCTURES)}') from None
