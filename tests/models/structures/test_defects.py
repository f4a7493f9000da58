"""Defect cells that DFT can label as insulators: what each mode takes away or moves, and the charge it leaves."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from ase.geometry import get_distances

from ionfield.models.structures.defects import DefectError, DefectSpec, formal_charge, make_defect, oxidation_states
from ionfield.models.structures.reference import get_reference_structure
from ionfield.models.structures.sampling import make_supercell


def li3n(cell=(2, 2, 1)):
    return make_supercell(get_reference_structure('alpha-Li3N'), list(cell))


@pytest.mark.parametrize(
    ('name', 'expected'),
    [
        ('alpha-Li3N', {'Li': 1.0, 'N': -3.0}),
        ('gamma-Li3PO4', {'Li': 1.0, 'O': -2.0, 'P': 5.0}),
        ('alpha-AgI', {'Ag': 1.0, 'I': -1.0}),
    ],
)
def test_formal_oxidation_states_of_the_reference_structures(name, expected):
    atoms = get_reference_structure(name)
    assert oxidation_states(atoms) == expected
    assert formal_charge(atoms, expected) == 0.0


def test_a_charged_vacancy_removes_one_ion_and_leaves_its_charge():
    cell = make_defect(li3n(), DefectSpec('charged', 'Li', 1), seed=3)
    assert Counter(cell.get_chemical_symbols()) == {'Li': 11, 'N': 4}
    assert cell.info['defect']['charge'] == -1.0
    two = make_defect(li3n((3, 3, 1)), DefectSpec('charged', 'Li', 2), seed=3)
    assert two.info['defect']['charge'] == -2.0


def test_a_frenkel_pair_keeps_the_composition_and_puts_the_ion_in_a_void_away_from_its_vacancy():
    perfect = li3n((2, 2, 2))
    cell = make_defect(perfect, DefectSpec('frenkel', 'Li', 1), seed=0)
    assert Counter(cell.get_chemical_symbols()) == Counter(perfect.get_chemical_symbols())
    assert cell.info['defect']['charge'] == 0.0
    (moved,) = cell.info['defect']['moved']
    others = np.delete(cell.positions, moved, axis=0)
    _, distances = get_distances(cell.positions[[moved]], others, cell=cell.cell, pbc=True)
    nearest_in_crystal = 1.93  # the Li-N bond of alpha-Li3N
    assert distances.min() > 0.85 * nearest_in_crystal  # a void, not on top of another atom
    _, from_vacancy = get_distances(cell.positions[[moved]], perfect.positions[[moved]], cell=cell.cell, pbc=True)
    assert from_vacancy.min() >= 3.0


def test_a_schottky_defect_removes_whole_formula_units():
    cell = make_defect(li3n((2, 2, 2)), DefectSpec('schottky', 'Li', 1), seed=1)
    counts = Counter(cell.get_chemical_symbols())
    assert counts == {'Li': 21, 'N': 7}
    assert cell.info['defect']['charge'] == 0.0


def test_the_same_seed_makes_the_same_cell():
    a = make_defect(li3n(), DefectSpec('charged'), seed=5)
    b = make_defect(li3n(), DefectSpec('charged'), seed=5)
    assert np.array_equal(a.positions, b.positions)


@pytest.mark.parametrize(
    ('atoms', 'spec', 'message'),
    [
        (li3n(), DefectSpec('charged', 'Ag', 1), 'has no Ag'),
        (li3n((1, 1, 1)), DefectSpec('frenkel', 'Li', 1), 'too small for a Frenkel pair'),
        (li3n((1, 1, 1)), DefectSpec('schottky', 'Li', 1), '1 formula unit'),
        (li3n((1, 1, 1)), DefectSpec('charged', 'Li', 3), 'cannot take 3 Li of 3'),
    ],
)
def test_defects_the_cell_cannot_take_are_refused(atoms, spec, message):
    with pytest.raises(DefectError, match=message):
        make_defect(atoms, spec)


def test_a_cell_that_is_not_neutral_to_start_with_is_refused():
    charged = make_defect(li3n(), DefectSpec('charged'), seed=0)
    with pytest.raises(DefectError, match='not charge-neutral'):
        make_defect(charged, DefectSpec('charged'), states={'Li': 1, 'N': -3})


@pytest.mark.parametrize(
    ('values', 'message'),
    [({'mode': 'vacancy'}, 'unknown defect mode'), ({'mode': 'charged', 'count': 0}, 'count >= 1')],
)
def test_bad_specs_are_refused(values, message):
    with pytest.raises(DefectError, match=message):
        DefectSpec(**values)
