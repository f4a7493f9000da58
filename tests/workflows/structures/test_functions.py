"""The sampling calcfunctions: outputs, provenance links, labels and exit codes for invalid parameters."""

import ase.io
import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType

from ionfield.models.structures import sampling
from ionfield.models.structures.reference import alpha_li3n, beta_li3po4
from ionfield.workflows.structures import functions as workflows
from tests.conftest import SHARED


@pytest.fixture
def li3n():
    structure = orm.StructureData(ase=alpha_li3n())
    structure.label = 'alpha-Li3N'
    return structure.store()


def assert_made_by(output: orm.Data, process_label: str, structure: orm.Data) -> orm.ProcessNode:
    creator = output.creator
    assert creator is not None and creator.process_label == process_label
    assert creator.is_finished_ok
    assert creator.inputs.structure.uuid == structure.uuid
    return creator


def test_make_supercell_records_provenance(li3n):
    supercell = workflows.make_supercell(li3n, orm.List([2, 2, 1]))
    assert len(supercell.sites) == 16
    assert supercell.get_cell_volume() == pytest.approx(4 * li3n.get_cell_volume())
    creator = assert_made_by(supercell, 'make_supercell', li3n)
    assert creator.inputs.matrix.get_list() == [2, 2, 1]
    assert supercell.label == 'alpha-Li3N supercell 2x2x1'
    assert len(workflows.make_supercell(li3n, orm.List([2])).sites) == 32


def test_rattle_structure_gives_dynamic_outputs_equal_to_the_plain_function(li3n):
    results, node = workflows.rattle_structure.run_get_node(li3n, orm.Float(0.05), orm.Int(7), orm.Int(3))
    assert node.is_finished_ok
    assert sorted(results) == ['rattled_000', 'rattled_001', 'rattled_002']
    expected = sampling.rattle(li3n.get_ase(), 0.05, 7, 3)
    for index, key in enumerate(sorted(results)):
        structure = results[key]
        assert np.allclose(structure.get_ase().positions, expected[index].positions)
        assert structure.creator.uuid == node.uuid
        assert structure.label == f'alpha-Li3N rattle 0.05 Å #{index} seed 7'
    assert node.inputs.structure.uuid == li3n.uuid
    assert node.inputs.seed.value == 7 and node.inputs.count.value == 3
    assert not np.allclose(results['rattled_000'].get_ase().positions, results['rattled_001'].get_ase().positions)


def test_strain_structure_and_random_strains(li3n):
    strained = workflows.strain_structure(li3n, orm.List([0.01]))
    assert strained.get_cell_volume() == pytest.approx(li3n.get_cell_volume() * 1.01**3)
    assert_made_by(strained, 'strain_structure', li3n)
    voigt = workflows.strain_structure(li3n, orm.List([0, 0, 0, 0, 0, 0.02]))
    assert np.array(voigt.cell) == pytest.approx(
        np.array(li3n.cell) @ (np.eye(3) + [[0, 0.01, 0], [0.01, 0, 0], [0, 0, 0]])
    )

    results, node = workflows.random_strains.run_get_node(li3n, orm.Float(0.02), orm.Int(1), orm.Int(2))
    assert node.is_finished_ok
    assert sorted(results) == ['strained_000', 'strained_001', 'strains']
    tensors = results['strains'].get_array('strains')
    assert tensors.shape == (2, 3, 3)
    for index in range(2):
        structure = results[f'strained_{index:03d}']
        assert np.array(structure.cell) == pytest.approx(np.array(li3n.cell) @ (np.eye(3) + tensors[index]))
        assert structure.creator.uuid == node.uuid
        assert structure.label == f'alpha-Li3N random strain 0.02 #{index} seed 1'


def test_read_structure_file_from_a_cif_written_by_ase(tmp_path):
    path = tmp_path / 'beta-Li3PO4.cif'
    ase.io.write(path, beta_li3po4())
    file = orm.SinglefileData(path).store()
    structure = workflows.read_structure_file(file)
    assert structure.get_formula(mode='hill_compact') == 'Li3O4P'
    assert len(structure.sites) == 16
    assert structure.get_cell_volume() == pytest.approx(beta_li3po4().get_volume())
    assert structure.creator.process_label == 'read_structure_file'
    assert structure.creator.inputs.file.uuid == file.uuid
    assert structure.label == 'Li6O8P2 from beta-Li3PO4.cif'


def test_read_structure_file_guesses_a_poscar_from_its_name(tmp_path):
    path = tmp_path / 'CONTCAR'
    ase.io.write(path, alpha_li3n(), format='vasp')
    structure = workflows.read_structure_file(orm.SinglefileData(path))
    assert structure.get_ase().get_chemical_formula() == 'Li3N'


@pytest.mark.skipif(not (SHARED / 'data' / 'structures').is_dir(), reason='../shared (team data) is not present')
def test_read_the_shared_materials_project_cif():
    file = orm.SinglefileData(SHARED / 'data' / 'structures' / 'beta-Li3PO4_mp-13725.cif')
    structure = workflows.read_structure_file(file)
    assert len(structure.sites) == 16
    assert structure.get_cell_volume() == pytest.approx(161.01966865, abs=1e-4)


@pytest.mark.parametrize(
    ('name', 'arguments', 'words'),
    [  # the nodes are made in the test: there is no profile yet when pytest collects
        ('make_supercell', lambda: (orm.List([2, 0, 2]),), 'singular'),
        ('rattle_structure', lambda: (orm.Float(-0.1), orm.Int(1), orm.Int(1)), 'standard deviation'),
        ('rattle_structure', lambda: (orm.Float(0.1), orm.Int(1), orm.Int(0)), 'number of copies'),
        ('strain_structure', lambda: (orm.List([[0, 0.1, 0], [0, 0, 0], [0, 0, 0]]),), 'symmetric'),
        ('random_strains', lambda: (orm.Float(0.5), orm.Int(1), orm.Int(1)), 'max_strain'),
    ],
)
def test_invalid_parameters_fail_with_exit_code_305(li3n, name, arguments, words):
    results, node = getattr(workflows, name).run_get_node(li3n, *arguments())
    assert node.is_failed and not node.is_excepted
    assert node.exit_status == workflows.EXIT_INVALID_SAMPLING_PARAMETERS.status == 305
    assert words in node.exit_message
    assert not results
    assert not node.base.links.get_outgoing(link_type=LinkType.CREATE).all()


def test_unreadable_file_fails_with_exit_code_306(tmp_path):
    path = tmp_path / 'broken.cif'
    path.write_text('not a cif\n')
    _, node = workflows.read_structure_file.run_get_node(orm.SinglefileData(path))
    assert node.exit_status == 306
    assert 'broken.cif' in node.exit_message and 'could not read' in node.exit_message
