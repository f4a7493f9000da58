"""``ionfield provenance``: the walk from a number back to the DFT calculations, and only what it depends on.

A graph of the real shape is built by hand: pw.x and ph.x jobs -> a frame step -> a dataset -> a training
job -> a model -> an MD job -> a trajectory -> an analysis step -> a number. A pw.x job whose output went
nowhere near the number must not be reported, nor the workflow that returned it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import calcfunction
from aiida.plugins.entry_point import format_entry_point_string

from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.data.model import ModelData
from ionfield.plugins.provenance import upstream

from ..fakes import DUMMY_PACKAGE
from ..models.synthetic import synthetic_dataset
from .test_cli_train import invoke


def _job(computer, entry_point: str, inputs: dict, outputs: dict) -> orm.CalcJobNode:
    """A finished CalcJobNode of ``entry_point`` that took ``inputs`` and created ``outputs``."""
    node = orm.CalcJobNode(computer=computer, process_type=format_entry_point_string('aiida.calculations', entry_point))
    node.set_option('resources', {'num_machines': 1})
    for label, value in inputs.items():
        node.base.links.add_incoming(value.store(), LinkType.INPUT_CALC, label)
    node.store()
    for label, value in outputs.items():
        value.base.links.add_incoming(node, LinkType.CREATE, label)
        value.store()
    node.set_process_state('finished')
    node.set_exit_status(0)
    node.seal()
    return node


@calcfunction
def frames_from(scf: orm.Dict, dfpt: orm.Dict) -> DatasetData:
    return DatasetData(synthetic_dataset(2))


@calcfunction
def analyse(trajectory: orm.SinglefileData) -> orm.Dict:
    return orm.Dict({'D': 1e-5})


@pytest.fixture
def chain(aiida_localhost, tmp_path):
    structure = orm.StructureData(cell=np.eye(3) * 4, pbc=(True, True, True))
    structure.append_atom(position=(0, 0, 0), symbols='Li')
    scf, dfpt = orm.Dict({'energy': -1.0}), orm.Dict({'zstar': 1.0})
    nodes = {'structure': structure}
    nodes['pw'] = _job(aiida_localhost, 'quantumespresso.pw', {'structure': structure}, {'output_parameters': scf})
    nodes['ph'] = _job(aiida_localhost, 'quantumespresso.ph', {'parent': scf}, {'output_parameters': dfpt})
    nodes['unrelated'] = _job(
        aiida_localhost, 'quantumespresso.pw', {'structure': structure}, {'output_parameters': orm.Dict({'e': 0})}
    )
    nodes['dataset'] = frames_from(scf, dfpt)
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / 'model.nequip.zip'
        package.write_bytes(DUMMY_PACKAGE)
        nodes['model'] = ModelData(package, species=['Li'], has_bec=True, seed=7, r_max=4.5)
        nodes['train'] = _job(
            aiida_localhost, 'ionfield.train', {'dataset': nodes['dataset']}, {'model': nodes['model']}
        )
    (tmp_path / 'trajectory.h5').write_bytes(b'frames')
    nodes['trajectory'] = orm.SinglefileData(tmp_path / 'trajectory.h5')
    nodes['md'] = _job(
        aiida_localhost,
        'ionfield.md',
        {'model': nodes['model'], 'structure': structure},
        {'trajectory': nodes['trajectory']},
    )
    nodes['number'] = analyse(nodes['trajectory'])
    return nodes


def test_the_walk_finds_every_step_back_to_dft_and_nothing_else(chain):
    summary = upstream(chain['number']).summary()
    pks = summary['pks']
    assert pks['dft'] == [chain['pw'].pk, chain['ph'].pk]  # oldest first; the unrelated pw.x job is not there
    assert summary['dft_programs'] == {'pw.x': 1, 'ph.x': 1}
    assert pks['datasets'] == [chain['dataset'].pk]
    assert pks['training'] == [chain['train'].pk] and pks['models'] == [chain['model'].pk]
    assert pks['md'] == [chain['md'].pk] and pks['files'] == [chain['trajectory'].pk]
    assert pks['structures'] == [chain['structure'].pk]
    assert summary['steps'] == {'analyse': 1, 'frames_from': 1}


def test_a_workflow_is_walked_from_its_outputs(chain):
    workflow = orm.WorkflowNode().store()
    chain['number'].base.links.add_incoming(workflow, LinkType.RETURN, 'result')
    from_workflow = upstream(workflow).summary()
    from_number = upstream(chain['number']).summary()
    assert from_workflow['pks']['dft'] == from_number['pks']['dft']
    assert from_workflow['n_nodes'] == from_number['n_nodes'] + 1  # and the number itself


def test_cli_prints_the_chain(chain):
    result = invoke('provenance', chain['number'].pk)
    assert result.exit_code == 0, result.output
    assert 'DFT calculations: 2 (1 ph.x, 1 pw.x)' in result.output
    assert f'ModelData<{chain["model"].pk}> seed 7' in result.output
    assert 'analysis and bookkeeping steps (calcfunctions): 2 (analyse x1, frames_from x1)' in result.output
    as_json = json.loads(invoke('provenance', chain['number'].pk, '--json').output)
    assert as_json['counts']['dft'] == 2
    assert invoke('provenance', '999999999').exit_code == 2
