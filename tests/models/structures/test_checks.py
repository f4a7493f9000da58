import numpy as np
import pytest
from ase import Atoms

from ionfield.models.structures import checks as sc
from ionfield.models.structures.reference import alpha_li3n, get_reference_structure


def test_alpha_li3n_matches_the_published_structure():
    atoms = alpha_li3n()
    report = sc.analyse_structure(atoms)
    assert report.ok and report.formula == 'Li3N' and report.natoms == 4
    # Li1-N along c is c/2, the shortest distance of the structure
    assert report.min_distance == pytest.approx(3.875 / 2)
    assert report.density == pytest.approx(1.295, abs=0.002)  # x-ray density of alpha-Li3N
    assert 'Rabenau' in atoms.info['source']


def test_overlap_is_found_across_the_periodic_boundary():
    atoms = Atoms('Li2', scaled_positions=[[0.0, 0, 0], [0.98, 0, 0]], cell=[5, 5, 5], pbc=True)
    report = sc.analyse_structure(atoms, min_distance=0.5)
    assert report.min_distance == pytest.approx(0.1)
    assert report.problem_kinds == (sc.OVERLAPPING_ATOMS,)
    assert 'atoms 0 (Li) and 1 (Li)' in report.problems[0]


def test_non_periodic_empty_and_degenerate_structures_are_named():
    molecule = Atoms('N2', positions=[[0, 0, 0], [1.1, 0, 0]])
    assert sc.analyse_structure(molecule).problem_kinds == (sc.NOT_PERIODIC,)
    assert sc.analyse_structure(Atoms(cell=[3, 3, 3], pbc=True)).problem_kinds == (sc.EMPTY,)
    flat = Atoms('Li', positions=[[0, 0, 0]], cell=[[1, 0, 0], [2, 0, 0], [0, 0, 3]], pbc=True)
    assert sc.analyse_structure(flat).problem_kinds == (sc.DEGENERATE_CELL,)


def test_report_is_json_serialisable():
    import json

    data = sc.analyse_structure(alpha_li3n()).as_dict()
    assert json.loads(json.dumps(data))['closest_pair'] == [0, 1]
    assert np.isclose(data['volume'], 3.648**2 * np.sqrt(3) / 2 * 3.875)


def test_unknown_reference_structure_lists_the_known_ones():
    with pytest.raises(KeyError, match='alpha-Li3N'):
        get_reference_structure('beta-Li3N')
