"""``ActiveLearningWorkChain`` with its expensive steps mocked (DP-GEN2 style).

Real: the workchain, ``LabelWorkChain`` (with the fake QE engine of ``test_label_workchain``), the
selection, merging and restart code. Mocked: training (``FakeCommittee`` makes a committee of dummy
model files), field MD (``FakeMD`` writes a trajectory whose committee deviations shrink as the
committee's dataset grows, so the loop has something to converge to) and the calibration (which
would evaluate the models).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from aiida.engine import calcfunction, run_get_node
from aiida.plugins import CalculationFactory, WorkflowFactory

from ionfield.models.md.trajectory import H5TrajectoryWriter
from ionfield.models.structures.reference import get_reference_structure
from ionfield.models.structures.sampling import rattle
from ionfield.plugins.data.model import CommitteeData, ModelData
from ionfield.plugins.data.trajectory import MDTrajectoryData
from ionfield.workflows.active_learning import workchain as al
from ionfield.workflows.active_learning.restart import RestartError, finished_history, restart_builder
from ionfield.workflows.label import workchain as label_workchain
from ionfield.workflows.train.committee import CommitteeWorkChain

from ... import fakes
from ..label.test_workchain import FakeQe, fake_engine, structure  # noqa: F401 - the fixture is used by name

MDCalculation = CalculationFactory('ionfield.md')
MDWorkChain = WorkflowFactory('ionfield.md.base')

REAL_LABELLING_PROBLEM = al.labelling_problem  # the campaign fixture replaces it

FAIL_MD_TASKS: set[str] = set()
"""Tasks (``<key>_T<T>_E<k>``) whose fake MD fails; set by a test."""


@calcfunction
def fake_committee(dataset, size: orm.Int) -> dict:
    members = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'model.nequip.zip'
        path.write_bytes(fakes.DUMMY_PACKAGE)
        for k in range(size.value):
            members[f'member_{k:02d}'] = ModelData(
                path, species=dataset.species, r_max=4.0, has_bec=True, dataset_uuid=dataset.uuid, seed=k
            ).store()
    return {'committee': CommitteeData([members[key] for key in sorted(members)])}


class FakeCommittee(CommitteeWorkChain):
    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.outline(cls.fake)

    def fake(self):
        result = fake_committee(self.inputs.member.train.dataset, self.inputs.size)
        self.out('committee', result['committee'])
        self.out('summary', orm.Dict({'finished': self.inputs.size.value}).store())


@calcfunction
def fake_md(structure, committee, settings) -> dict:
    """Frames every ``trajectory_every`` steps; deviations = scale(dataset size) x seeded factors in [0.1, 1.5]."""
    values = settings.get_dict()
    trained_on = orm.load_node(committee.members[0].dataset_uuid).n_frames
    scale = 0.3 / 2 ** ((trained_on - 3) / 3)
    every = values['trajectory_every']
    steps = np.arange(0, values['steps'] + 1, every)
    rng = np.random.default_rng(values['seed'])
    frames = rattle(structure.get_ase(), 0.05, seed=values['seed'], count=len(steps))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'trajectory.h5'
        writer = H5TrajectoryWriter(path, frames[0])
        for step, atoms in zip(steps, frames, strict=True):
            writer.append(int(step), float(step), atoms)
        writer.close()
        trajectory = MDTrajectoryData(path, field=values['field'], timestep_fs=1.0)
    factors = rng.uniform(0.1, 1.5, size=len(steps))
    uncertainty = orm.ArrayData()
    uncertainty.set_array('step', steps)
    uncertainty.set_array('max_force_deviation_eV_A', scale * factors)
    uncertainty.set_array('max_bec_deviation_e', 0.5 * scale * factors)
    return {'trajectory': trajectory, 'uncertainty': uncertainty, 'summary': orm.Dict({'scale': scale})}


class FakeMD(fakes.FakeMD):
    failing = FAIL_MD_TASKS

    def make_outputs(self, md):
        return fake_md(md.structure, md.committee, md.settings)


@calcfunction
def fake_calibration(committee, dataset, deviations, trust) -> orm.Dict:
    n = dataset.n_frames
    return orm.Dict(
        {
            'force': {'n': n, 'error_rmse': 0.1, 'error_max': 0.2, 'ratio': 2.0, 'rank_correlation': 0.5},
            'bec': {'n': 0, 'error_rmse': None, 'error_max': None, 'ratio': None, 'rank_correlation': None},
            'suggested': {**trust.get_dict(), 'force_lo': trust['force_lo'] / 2, 'force_hi': trust['force_hi'] / 2},
        }
    )


class FailSelectedQe(FakeQe):
    """The fake engine, but the SCF of every frame selected from MD (label ``<task> step ...``) fails."""

    def fake(self):
        if self.inputs.structure.label.startswith('li3n_T'):
            return self.exit_codes.ERROR_SCF_FAILED.format(detail='PwBaseWorkChain<0> exit 300: fake')
        return super().fake()


FAKES = {CommitteeWorkChain: FakeCommittee}


class MockedActiveLearningWorkChain(al.ActiveLearningWorkChain):
    """The real workchain; training and MD are swapped for the fakes at submission."""

    def submit(self, process, inputs=None, **kwargs):
        return fakes.submit_md_as(FakeMD, super().submit, FAKES.get(process, process), inputs, kwargs)


@pytest.fixture
def campaign(fake_engine, md_code, train_code, monkeypatch):  # noqa: F811
    """Inputs of a mocked campaign: one Li3N seed, 2 rattles, grid 1 T x 2 fields, cap 3."""
    monkeypatch.setattr(al, 'calibrate_committee', fake_calibration)
    monkeypatch.setattr(al, 'labelling_problem', lambda structure, inputs: None)  # the fake engine has no pseudos
    FAIL_MD_TASKS.clear()

    def build(**settings):
        values = {
            'initial_rattles': 2,
            'initial_strains': 0,
            'initial_bec_fraction': 0.34,
            'bec_fraction': 0.34,
            'temperatures_K': [300],
            'fields': [[0, 0, 0], [0, 0, 0.05]],
            'md_steps': 50,
            'md_sample_every': 10,
            'max_selected': 3,
            'max_iterations': 6,
            'converged_fraction': 1.0,
            'converged_iterations': 1,
            'final_training': True,
            **settings,
        }
        return {
            'structures': {'li3n': structure('ok')},
            'settings': orm.Dict(values),
            'label': {'qe': fake_engine, 'max_concurrent': orm.Int(1)},
            'committee': {'member': {'train': {'code': train_code}}, 'size': orm.Int(2)},
            'md': {'code': md_code},
        }

    return build


def outputs(node, namespace):
    return {key: value for key, value in node.outputs[namespace].items()}


def test_the_loop_converges_and_records_every_iteration(campaign):
    _, node = run_get_node(MockedActiveLearningWorkChain, **campaign())
    assert node.is_finished_ok, node.exit_message
    history = node.outputs.history.get_list()
    end = history[-1]
    assert end['stop_reason'] == 'converged', end
    iterations = [entry for entry in history if 'iteration' in entry]
    # deviations halve every 3 new frames: the accurate share reaches 1 after a few iterations
    assert 3 <= len(iterations) <= 6
    assert iterations[-1]['selection']['shares']['accurate'] == 1.0
    assert iterations[0]['selection']['shares']['accurate'] < 1.0
    sizes = [entry['dataset_frames'] for entry in iterations]
    assert sizes[0] == 6  # 3 initial frames + 3 selected in iteration 1
    assert all(b - a <= 3 for a, b in zip(sizes, sizes[1:], strict=False))  # capped
    for entry in iterations[:-1]:
        assert entry['labels']['done'] == min(3, entry['selection']['counts']['candidate'])
        assert entry['labels']['failed'] == []
        assert entry['calibration']['force']['ratio'] == 2.0
        assert entry['selection']['n_frames'] == 12  # 2 MD runs x 6 frames
        assert {'label_s', 'train_s', 'explore_s', 'select_s'} <= set(entry)
    assert 'labels' not in iterations[-1]  # converged: nothing labelled in the last iteration
    # every finished step is an output: datasets after each labelling, a committee per iteration
    assert set(outputs(node, 'datasets')) == {'initial', *(f'iter_{e["iteration"]:02d}' for e in iterations[:-1])}
    assert len(outputs(node, 'committees')) == len(iterations)
    assert node.outputs.dataset.n_frames == sizes[-1]
    assert node.outputs.committee.uuid == iterations[-1]['committee_uuid']
    assert finished_history(node) == iterations
    # Z* share: 1 of 3 initial frames (the seed structure first), 1 of every 3 selected frames
    assert node.outputs.datasets.initial.base.attributes.get('n_born_charges') == 1
    assert node.outputs.dataset.base.attributes.get('n_born_charges') == len(iterations)
    # the selection record keeps the failed frames (never labelled) with their task and step
    select = orm.load_node(iterations[0]['selection_pk'])
    record = select.outputs.record.get_dict()
    assert len(record['failed_frames']) == record['counts']['failed']
    selected = [key for key in select.outputs if key.startswith('iter_01_')]
    assert len(selected) == 3


def test_max_iterations_labels_the_last_selection_and_trains_once_more(campaign):
    inputs = campaign(max_iterations=1, adapt_trust=True)
    inputs['md']['max_concurrent'] = orm.Int(1)  # a laptop: the two exploration runs one after the other
    _, node = run_get_node(MockedActiveLearningWorkChain, **inputs)
    assert node.is_finished_ok, node.exit_message
    history = node.outputs.history.get_list()
    assert history[-1]['stop_reason'] == 'max_iterations'
    assert history[0]['trust_next']['force_lo'] == pytest.approx(0.025)  # adapted from the calibration
    assert node.outputs.dataset.n_frames == 6
    first, second = sorted((n for n in node.called_descendants if n.label.startswith('md_')), key=lambda n: n.ctime)
    assert first.mtime < second.ctime
    # the final committee was trained on the final dataset (a training after the loop)
    final = node.outputs.committee
    assert orm.load_node(final.members[0].dataset_uuid).uuid == node.outputs.dataset.uuid
    assert final.uuid != history[0]['committee_uuid']


def test_restart_continues_after_a_finished_iteration_with_every_label(campaign):
    _, first = run_get_node(MockedActiveLearningWorkChain, **campaign(max_iterations=1))
    assert first.is_finished_ok
    builder, after = restart_builder(first, settings={'max_iterations': 2})
    assert after == 1
    assert builder.dataset.uuid == first.outputs.dataset.uuid or builder.dataset.n_frames == 6
    assert len(builder.previous_history.get_list()) == 1
    _, second = run_get_node(builder)
    assert second.is_finished_ok, second.exit_message
    history = [entry for entry in second.outputs.history.get_list() if 'iteration' in entry]
    assert [entry['iteration'] for entry in history] == [1, 2]
    assert history[1]['dataset_frames'] == 9
    assert 'committees' in second.outputs and set(outputs(second, 'committees')) == {'iter_02'}
    # from the initial data, but keeping the labels made after it
    builder, after = restart_builder(first, iteration=0)
    assert after == 0 and builder.dataset.n_frames == 6 and 'previous_history' not in builder
    builder, _ = restart_builder(first, iteration=0, later_labels=False)
    assert builder.dataset.n_frames == 3
    with pytest.raises(RestartError, match='did not finish'):
        restart_builder(first, iteration=5)
    with pytest.raises(RestartError, match='not an ActiveLearningWorkChain'):
        restart_builder(first.outputs.dataset.creator)


@calcfunction
def broken_calibration(committee, dataset, deviations, trust) -> orm.Dict:
    raise ValueError('the models cannot be loaded')


def test_a_failed_calibration_is_reported_and_the_campaign_goes_on(campaign, monkeypatch):
    inputs = campaign(max_iterations=1)
    monkeypatch.setattr(al, 'calibrate_committee', broken_calibration)
    _, node = run_get_node(MockedActiveLearningWorkChain, **inputs)
    assert node.is_finished_ok, node.exit_message
    entry = node.outputs.history.get_list()[0]
    assert 'the models cannot be loaded' in entry['calibration']['error']
    assert node.outputs.dataset.n_frames == 6  # the labels of the iteration are kept


def test_a_failed_md_run_is_recorded_and_the_iteration_goes_on(campaign):
    FAIL_MD_TASKS.add('li3n_T300_E1')
    _, node = run_get_node(MockedActiveLearningWorkChain, **campaign(max_iterations=1))
    assert node.is_finished_ok, node.exit_message
    entry = node.outputs.history.get_list()[0]
    assert entry['md']['usable'] == 1 and len(entry['md']['failed']) == 1
    assert 'li3n_T300_E1' in entry['md']['failed'][0]
    assert entry['selection']['n_frames'] == 6


def test_too_many_failed_md_runs_stop_with_an_exit_code_and_keep_the_data(campaign):
    FAIL_MD_TASKS.update({'li3n_T300_E0', 'li3n_T300_E1'})
    _, node = run_get_node(MockedActiveLearningWorkChain, **campaign())
    assert node.exit_status == al.ActiveLearningWorkChain.exit_codes.ERROR_EXPLORATION.status
    assert 'only 0 of 2 MD runs' in node.exit_message
    assert node.outputs.datasets.initial.n_frames == 3  # the labels made so far are outputs


def test_failed_labels_are_recorded_and_too_many_stop_the_campaign(campaign, monkeypatch):
    monkeypatch.setitem(label_workchain.ENGINES, 'qe', FailSelectedQe)
    _, node = run_get_node(MockedActiveLearningWorkChain, **campaign())
    assert node.exit_status == al.ActiveLearningWorkChain.exit_codes.ERROR_LABELLING.status
    assert 'iteration 1: only 0 of 3 frames were labelled' in node.exit_message
    assert node.outputs.datasets.initial.n_frames == 3


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'force_trust': [0.3, 0.1]}, 'wrong order'),
        ({'temperatures_K': []}, 'exploration grid is empty'),
        ({'max_selected': 0}, 'budget of zero'),
        ({'max_labels': 0}, 'max_labels'),
    ],
)
def test_bad_input_is_refused_before_anything_runs(campaign, change, message):
    inputs = campaign(**change)
    assert message in (al.validate_inputs(inputs) or '')
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=message):
        run_get_node(MockedActiveLearningWorkChain, **inputs)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_a_seed_the_engine_cannot_label_is_refused(campaign, monkeypatch):
    monkeypatch.setattr(al, 'labelling_problem', REAL_LABELLING_PROBLEM)
    inputs = campaign()
    atoms = get_reference_structure('alpha-Li3N')
    atoms.positions[1] = atoms.positions[0] + [0.1, 0.0, 0.0]
    inputs['structures'] = {'bad': orm.StructureData(ase=atoms)}
    assert 'seed structure `bad` cannot be labelled' in al.validate_inputs(inputs)
    inputs['structures'] = {'li3n': structure('ok')}
    inputs['label']['qe'] = {**inputs['label']['qe'], 'pseudo_family': orm.Str('no-such-family')}
    assert 'pseudo family `no-such-family` is not installed' in al.validate_inputs(inputs)
    inputs['structures'] = {}
    assert 'no seed structures' in al.validate_inputs(inputs)


def test_born_charges_go_only_to_cells_dft_can_afford(campaign):
    """``bec_max_atoms``: a 16-atom seed and its rattles get E/F/S; the 4-atom cells get the DFPT share."""
    from ionfield.models.structures.sampling import make_supercell

    values = campaign(initial_bec_fraction=1.0, bec_max_atoms=4, max_iterations=1, final_training=False)
    values['structures']['big'] = structure('ok', make_supercell(get_reference_structure('alpha-Li3N'), [2, 2, 1]))
    _, node = run_get_node(MockedActiveLearningWorkChain, **values)
    assert node.is_finished_ok, node.exit_message
    labelled = {
        link.link_label: link.node
        for link in node.base.links.get_outgoing().all()
        if link.link_label.startswith('label_initial_')
    }
    with_bec = labelled['label_initial_bec'].inputs.structures
    without = labelled['label_initial_plain'].inputs.structures
    assert {len(s.sites) for s in with_bec.values()} == {4}
    assert {len(s.sites) for s in without.values()} == {16}
    assert len(with_bec) == 3 and len(without) == 3  # each seed with its 2 rattles
