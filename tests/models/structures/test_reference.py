"""The shipped reference structures reproduce their published facts: formula, space group, density, bonds, source."""

import re

import numpy as np
import pytest
import spglib
from ase import Atoms
from ase.formula import Formula
from ase.io import read
from ase.neighborlist import neighbor_list

from ionfield.models.structures import reference as rs
from ionfield.models.structures.checks import analyse_structure
from tests.conftest import SHARED

pytestmark = pytest.mark.filterwarnings('ignore:Set OLD_ERROR_HANDLING:DeprecationWarning')

FORMAL_CHARGES = {'Li': 1, 'N': -3, 'P': 5, 'O': -2, 'Ag': 1, 'I': -1}

# name: (formula, natoms, space group number spglib finds, density g/cm^3 to compare with and its relative
# tolerance, shortest distance in Å, a word of the source that both the docstring and info['source'] name)
EXPECTED = {
    # x-ray density of the Rabenau & Schulz cell; shortest distance Li1-N = c/2
    'alpha-Li3N': ('Li3N', 4, 191, 1.295, 0.005, 3.875 / 2, 'Rabenau'),
    # x-ray density 2.445 g/cm^3 of Wang et al. (1995); shortest P-O 1.534 Å
    'gamma-Li3PO4': ('Li3PO4', 32, 62, 2.445, 0.005, 1.534, 'Chakoumakos'),
    # PBE cell (2.388 g/cm^3) vs the x-ray density 2.472 of Keffer et al. (1967): PBE is 3.4 % too light
    'beta-Li3PO4': ('Li3PO4', 16, 31, 2.472, 0.04, 1.556, 'mp-13725'),
    # the ordered model: only I-4m2 (119) is left of Im-3m; 6.01 g/cm^3 is the density at 250 C (a = 5.063 Å)
    'alpha-AgI': ('AgI', 4, 119, 6.01, 0.01, 5.07 * np.sqrt(5) / 4, 'Cava'),
    # specific gravity 5.69 of iodargyrite; shortest Ag-I along c = u c = 0.375 * 7.510
    'beta-AgI': ('AgI', 4, 186, 5.69, 0.005, 2.812, 'Burley'),
}


def spacegroup(atoms: Atoms, symprec: float = 1e-3) -> tuple[int, str]:
    dataset = spglib.get_symmetry_dataset((atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers), symprec)
    return dataset.number, dataset.international


def test_every_registered_structure_is_tested():
    assert set(rs.REFERENCE_STRUCTURES) == set(EXPECTED)


@pytest.mark.parametrize('name', EXPECTED)
def test_formula_space_group_density_and_bonds(name):
    formula, natoms, number, density, rel, shortest, _ = EXPECTED[name]
    atoms = rs.get_reference_structure(name)
    report = analyse_structure(atoms, min_distance=1.4)  # no bond in these crystals is shorter than P-O, 1.53 Å
    assert report.ok, report.problems
    assert atoms.symbols.formula.reduce()[0].count() == Formula(formula).count()
    assert report.natoms == natoms
    assert spacegroup(atoms)[0] == number
    assert report.density == pytest.approx(density, rel=rel)
    assert report.min_distance == pytest.approx(shortest, abs=0.005)


@pytest.mark.parametrize('name', EXPECTED)
def test_charge_neutral_with_formal_oxidation_states(name):
    atoms = rs.get_reference_structure(name)
    assert sum(FORMAL_CHARGES[symbol] for symbol in atoms.get_chemical_symbols()) == 0


@pytest.mark.parametrize('name', EXPECTED)
def test_source_is_stated_in_docstring_and_info(name):
    word = EXPECTED[name][-1]
    function = rs.REFERENCE_STRUCTURES[name]
    atoms = function()
    assert word in atoms.info['source']
    assert word in function.__doc__
    assert re.search(r'\b\d{1,2}[a-l] \(', function.__doc__), 'the docstring gives no Wyckoff position'


def test_get_reference_structure_returns_fresh_copies_and_names_the_known_ones():
    first = rs.get_reference_structure('beta-AgI')
    first.positions += 1.0
    assert not np.allclose(rs.get_reference_structure('beta-AgI').positions, first.positions)
    with pytest.raises(KeyError, match='alpha-AgI'):
        rs.get_reference_structure('delta-AgI')


def test_phosphates_are_built_from_po4_tetrahedra():
    for name in ('gamma-Li3PO4', 'beta-Li3PO4'):
        atoms = rs.get_reference_structure(name)
        i, j, d = neighbor_list('ijd', atoms, 1.8)
        symbols = np.array(atoms.get_chemical_symbols())
        for p in np.flatnonzero(symbols == 'P'):
            bonds = d[(i == p) & (symbols[j] == 'O')]
            assert len(bonds) == 4 and np.all((bonds > 1.5) & (bonds < 1.6)), (name, bonds)


def test_alpha_agi_has_a_bcc_iodide_lattice_and_tetrahedral_silver():
    atoms = rs.alpha_agi()
    iodide = atoms[[atom.index for atom in atoms if atom.symbol == 'I']]
    assert spacegroup(iodide) == (229, 'Im-3m')
    assert spacegroup(atoms) == (119, 'I-4m2')
    i, j, d = neighbor_list('ijd', atoms, 3.0)
    for ag in (2, 3):
        assert np.allclose(d[i == ag], 5.07 * np.sqrt(5) / 4) and np.all(atoms.numbers[j[i == ag]] == 53)
        assert np.count_nonzero(i == ag) == 4  # an I4 tetrahedron, nothing else within 3 Å


def test_beta_agi_is_wurtzite_with_tetrahedral_coordination():
    atoms = rs.beta_agi()
    i, j, d = neighbor_list('ijd', atoms, 3.0)
    assert np.all(np.bincount(i) == 4)
    assert np.all(atoms.numbers[i] != atoms.numbers[j])
    assert atoms.cell.cellpar()[[0, 2, 5]] == pytest.approx([4.592, 7.510, 120])


@pytest.mark.skipif(not (SHARED / 'data' / 'structures').is_dir(), reason='../shared (team data) is not present')
def test_beta_li3po4_reproduces_the_materials_project_cif():
    cif = read(SHARED / 'data' / 'structures' / 'beta-Li3PO4_mp-13725.cif')
    ours = rs.beta_li3po4()
    assert ours.cell.cellpar() == pytest.approx(cif.cell.cellpar()[[2, 1, 0, 3, 4, 5]], abs=1e-6)
    mapped = cif.get_scaled_positions()[:, [2, 1, 0]] * [-1, 1, 1]  # (x, y, z) = (-z_mp, y_mp, x_mp)
    for symbol in ('Li', 'P', 'O'):
        theirs = mapped[np.array(cif.get_chemical_symbols()) == symbol]
        mine = ours.get_scaled_positions()[np.array(ours.get_chemical_symbols()) == symbol]
        difference = theirs[:, None, :] - mine[None, :, :]
        difference -= np.round(difference)
        distance = np.linalg.norm(difference, axis=-1)
        assert len(theirs) == len(mine) and np.all(distance.min(axis=1) < 1e-5), symbol
