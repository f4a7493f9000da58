"""TrainCalculation, TrainWorkChain handlers and CommitteeWorkChain.

Handlers are tested on hand-made nodes (no code runs), the parser in ``tests/plugins/parsers/`` on what real
runs retrieved; one slow test trains a real two-member committee through the engine on localhost.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.common import LinkType
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory, WorkflowFactory

from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.data.model import CommitteeData, ModelData

from ..models.synthetic import synthetic_dataset

TrainCalculation = CalculationFactory('ionfield.train')
TrainWorkChain = WorkflowFactory('ionfield.train.base')
CommitteeWorkChain = WorkflowFactory('ionfield.committee')
ZIP = b'PK\x03\x04' + b'\x00' * 64


@pytest.fixture
def dataset_node():
    return DatasetData(synthetic_dataset(6)).store()


def test_invalid_settings_are_refused_before_submission(aiida_profile, train_code, dataset_node):
    builder = TrainCalculation.get_builder()
    builder.code = train_code
    builder.dataset = dataset_node
    with pytest.raises(ValueError, match='invalid training settings: size must be one of'):
        builder.settings = orm.Dict({'size': 'huge'})


def test_committee_of_one_is_refused(aiida_profile, train_code, dataset_node):
    builder = CommitteeWorkChain.get_builder()
    builder.member.train.code = train_code
    builder.member.train.dataset = dataset_node
    with pytest.raises(ValueError, match='at least 2 members'):
        builder.size = orm.Int(1)


# --- handlers, without running anything --------------------------------------------------


@pytest.fixture
def train_workchain(aiida_profile, train_code, dataset_node):
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    inputs = {
        'train': {
            'code': train_code,
            'dataset': dataset_node,
            'settings': orm.Dict({'batch_size': 2, 'learning_rate': 0.01}),
        }
    }
    process = instantiate_process(get_manager().get_runner(), TrainWorkChain, **inputs)
    process.setup()
    return process


def failed_calc(exit_code) -> orm.CalcJobNode:
    node = orm.CalcJobNode(process_type='aiida.calculations:ionfield.train')
    node.set_process_state('finished')
    node.set_exit_status(exit_code.status)
    node.set_exit_message(exit_code.message)
    remote = orm.RemoteData(remote_path='/tmp/x', computer=orm.load_computer('localhost'))
    node.store()
    remote.base.links.add_incoming(node, LinkType.CREATE, 'remote_folder')
    remote.store()
    return node


def test_handler_resumes_after_kill(train_workchain):
    calc = failed_calc(TrainCalculation.exit_codes.ERROR_NO_RESULT)
    report = train_workchain.handle_no_result(calc)
    assert report.do_break and report.exit_code.status == 0
    assert train_workchain.ctx.inputs.parent_folder.uuid == calc.outputs.remote_folder.uuid


def test_handler_halves_learning_rate_on_nan(train_workchain):
    train_workchain.handle_nan_loss(failed_calc(TrainCalculation.exit_codes.ERROR_NAN_LOSS))
    assert train_workchain.ctx.settings['learning_rate'] == 0.005


def test_handler_halves_batch_then_gives_up(train_workchain):
    oom = TrainCalculation.exit_codes.ERROR_OUT_OF_MEMORY
    train_workchain.handle_out_of_memory(failed_calc(oom))
    assert train_workchain.ctx.settings['batch_size'] == 1
    report = train_workchain.handle_out_of_memory(failed_calc(oom))
    assert report.exit_code.status == TrainWorkChain.exit_codes.ERROR_UNRECOVERABLE.status


def test_unrecoverable_errors_are_not_retried(train_workchain):
    report = train_workchain.handle_unrecoverable(failed_calc(TrainCalculation.exit_codes.ERROR_INPUT))
    assert report.exit_code.status == 410


# --- data nodes ----------------------------------------------------------------------------


def test_model_and_committee_nodes(aiida_profile, tmp_path):
    package = tmp_path / 'm.nequip.zip'
    package.write_bytes(ZIP)
    models = [ModelData(package, species=['N', 'Li'], r_max=4.5, has_bec=True, seed=s).store() for s in (0, 1)]
    assert models[0].species == ['Li', 'N']
    with pytest.raises(ValueError, match='at least 2 members'):
        CommitteeData(models[:1])
    other = ModelData(package, species=['Ag', 'I'], r_max=4.5, has_bec=True).store()
    with pytest.raises(ValueError, match='different species'):
        CommitteeData([models[0], other])
    committee = CommitteeData(models).store()
    assert committee.size == 2 and [m.uuid for m in committee.members] == [m.uuid for m in models]
    (tmp_path / 'bad.zip').write_bytes(b'garbage')
    with pytest.raises(ValueError, match='not a nequip package'):
        ModelData(tmp_path / 'bad.zip', species=['Li'], r_max=4.0, has_bec=False)


# --- real training through the engine (slow) ---------------------------------------------


@pytest.mark.slow
def test_committee_workchain_trains_two_members(aiida_profile, train_code):
    dataset = DatasetData(synthetic_dataset(16, bec_share=0.5)).store()
    builder = CommitteeWorkChain.get_builder()
    builder.member.train.code = train_code
    builder.member.train.dataset = dataset
    builder.member.train.metadata.options.max_wallclock_seconds = 600
    builder.settings = orm.Dict({'max_epochs': 4, 'patience': 4})
    builder.size = orm.Int(2)
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    committee = results['committee']
    assert committee.size == 2 and committee.species == ['Li', 'N'] and committee.has_bec
    seeds = sorted(m.seed for m in committee.members)
    assert seeds == [0, 1]
    assert all(m.dataset_uuid == dataset.uuid for m in committee.members)
    assert committee.creator.process_label == 'make_committee'
    with committee.evaluator() as evaluator:
        (prediction,) = evaluator.evaluate([dataset.get_dataset()[0].to_ase()])
    assert prediction.max_force_deviation > 0 and prediction.max_bec_deviation > 0
    assert np.abs(prediction.born_charges.sum(axis=0)).max() < 1e-4
    assert results['summary']['finished'] == 2
    # each member's log was retrieved where the parser reads it: its per-epoch curve is an output
    members = [n for n in node.called_descendants if n.process_type == 'aiida.calculations:ionfield.train']
    assert len(members) == 2 and all(len(m.outputs.training_curve['epochs']) == 4 for m in members)
