import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase import Atoms

from ionfield.models.structures.reference import alpha_li3n
from ionfield.workflows.structures.check import StructureCheckWorkChain


def test_li3n_passes_and_records_provenance():
    structure = orm.StructureData(ase=alpha_li3n())
    results, node = run_get_node(StructureCheckWorkChain, structure=structure)
    assert node.is_finished_ok
    assert results['summary']['formula'] == 'Li3N'
    calcfunction = results['summary'].creator
    assert calcfunction.process_label == 'check_structure'
    assert calcfunction.inputs.structure.uuid == structure.uuid


@pytest.mark.parametrize(
    ('atoms', 'exit_status', 'words'),
    [
        (Atoms('Li2', positions=[[0, 0, 0], [0.1, 0, 0]], cell=[4, 4, 4], pbc=True), 301, 'overlapping'),
        (Atoms('N2', positions=[[0, 0, 0], [1.1, 0, 0]], cell=[9, 9, 9], pbc=False), 302, 'not periodic'),
    ],
)
def test_bad_structures_get_an_exit_code_and_keep_the_summary(atoms, exit_status, words):
    _, node = run_get_node(StructureCheckWorkChain, structure=orm.StructureData(ase=atoms))
    assert node.exit_status == exit_status
    assert words in node.exit_message
    assert 'summary' in node.outputs  # the record is kept even when the structure is rejected
