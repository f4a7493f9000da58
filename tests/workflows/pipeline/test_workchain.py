"""``PipelineWorkChain`` with its three big stages swapped for fakes (DP-GEN2 style).

Real: the pipeline, the structure check, the systems it builds (supercells, defects and their charge), the
gate, the restart and the report. Fakes: active learning (a committee of dummy models and a history), the
validation (a table that passes or fails, as the real one's exit code does) and the campaign (a summary with
Arrhenius fits). Each fake records the inputs it was given, so the tests check that the exploration saw the
campaign's own systems and conditions.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from ionfield.models.structures.reference import get_reference_structure
from ionfield.plugins.data.model import CommitteeData
from ionfield.workflows.active_learning import workchain as al
from ionfield.workflows.active_learning.workchain import ActiveLearningWorkChain
from ionfield.workflows.pipeline import workchain as pipeline
from ionfield.workflows.pipeline.restart import RestartError, restart_builder
from ionfield.workflows.transport.workchain import TransportCampaignWorkChain
from ionfield.workflows.validation.workchain import ValidationWorkChain

from ... import fakes
from ..label.test_workchain import fake_engine  # noqa: F401 - the fixture is used by name

SEEN: dict[str, list] = {'active_learning': [], 'validation': [], 'campaign': []}
"""What each fake was given, per run of a test."""
BEHAVIOUR = {'validation_passes': True, 'exploration_fails': False}


class FakeExploration(ActiveLearningWorkChain):
    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.outline(cls.fake)

    def fake(self):
        SEEN['active_learning'].append(
            {
                'structures': {key: s.get_ase() for key, s in self.inputs.structures.items()},
                'settings': self.inputs.settings.get_dict(),
                'oxidation_states': self.inputs.label.qe.get('oxidation_states'),
            }
        )
        history = [
            {
                'iteration': 1,
                'selection': {'shares': {'accurate': 0.6, 'candidate': 0.4, 'failed': 0.0}, 'n_frames': 50},
                'md': {'runs': 12, 'usable': 12},
                'labels': {'done': 4},
                'calibration': {'force': {'error_rmse': 0.12}, 'bec': {'error_rmse': None}},
                'dataset_frames': 14,
                'dataset_bec_frames': 3,
            },
            {'stop_reason': 'max_iterations', 'message': 'fake'},
        ]
        self.out('history', orm.List(history).store())
        if BEHAVIOUR['exploration_fails']:
            return self.exit_codes.ERROR_TRAINING.format(iteration=2, message='fake')
        members = [fakes.dummy_model(seed=k) for k in range(2)]
        self.out('committee', CommitteeData(members).store())
        return None


class FakeValidation(ValidationWorkChain):
    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.outline(cls.fake)

    def fake(self):
        SEEN['validation'].append({'natoms': len(self.inputs.structure.sites), 'model': self.inputs.model.uuid})
        passed = BEHAVIOUR['validation_passes']
        row = {'quantity': 'c', 'dft': 3.865, 'model': 3.99, 'error': 0.03, 'unit': 'Å', 'warn': 0.01, 'fail': 0.02}
        row['status'] = 'pass' if passed else 'fail'
        table = {
            'rows': [row],
            'passed': passed,
            'failures': [] if passed else ['c'],
            'overridden': self.inputs.override.value and not passed,
        }
        self.out('table', orm.Dict(table).store())
        for name in ('dft', 'model_properties'):
            self.out(name, orm.Dict({'fake': True}).store())
        self.out('relaxed', self.inputs.structure)
        self.out('plot', orm.SinglefileData(io.BytesIO(b'not a png'), filename='validation.png').store())
        if not passed and not self.inputs.override.value:
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(failures='c')
        return None


class FakeCampaign(TransportCampaignWorkChain):
    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.outline(cls.fake)

    def fake(self):
        SEEN['campaign'].append(
            {
                'structures': {key: s.get_ase() for key, s in self.inputs.structures.items()},
                'committee': self.inputs.committee.uuid,
            }
        )
        fits = {'x': 0.30, 'y': 0.32, 'z': 0.52, 'xyz': 0.35}
        arrhenius = [
            {
                'structure': key,
                'species': 'Li',
                'direction': axis,
                'fit': {
                    'status': 'ok',
                    'activation_energy_eV': ea,
                    'activation_energy_std_eV': 0.02,
                    'temperatures_K': [500.0, 650.0, 800.0],
                    'D_cm2_per_s': [1e-6, 3e-6, 8e-6],
                },
            }
            for key in self.inputs.structures
            for axis, ea in fits.items()
        ]
        self.out('summary', orm.Dict({'arrhenius': arrhenius, 'anisotropy': [], 'warnings': []}).store())
        self.out('report', orm.SinglefileData(io.BytesIO(b'<html></html>'), filename='report.html').store())


FAKES = {ActiveLearningWorkChain: FakeExploration, ValidationWorkChain: FakeValidation}
FAKES[TransportCampaignWorkChain] = FakeCampaign


class MockedPipeline(pipeline.PipelineWorkChain):
    def submit(self, process, inputs=None, **kwargs):
        return super().submit(FAKES.get(process, process), inputs, **kwargs)


CAMPAIGN = {
    'temperatures_K': [500.0, 650.0, 800.0],
    'fields': [[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]],
    'bec_modes': ['full', 'diagonal'],
    'replicas': 2,
    'steps': 1000,
    'equilibration_fs': 200.0,
}


@pytest.fixture
def inputs(fake_engine, md_code, train_code, monkeypatch):  # noqa: F811
    """Inputs of a mocked pipeline on alpha-Li3N: a 3x3x3 campaign, a 2x2x1 explored cell, a charged Li vacancy."""
    monkeypatch.setattr(al, 'labelling_problem', lambda structure, inputs: None)  # the fake engine has no pseudos
    for seen in SEEN.values():
        seen.clear()
    BEHAVIOUR.update(validation_passes=True, exploration_fails=False)

    def build(settings=None, explore=None, campaign=None, label=None):
        explored = {'temperatures_K': [500.0, 650.0, 800.0], 'fields': CAMPAIGN['fields'], **(explore or {})}
        qe = {**fake_engine, 'oxidation_states': orm.Dict({'Li': 1.0, 'N': -3.0}), **(label or {})}
        return {
            'structures': {'li3n': orm.StructureData(ase=get_reference_structure('alpha-Li3N'))},
            'settings': orm.Dict({'supercell': [3, 3, 3], 'explore_supercell': [2, 2, 1], **(settings or {})}),
            'references': orm.Dict({'li3n': 'alpha-Li3N'}),
            'active_learning': {
                'settings': orm.Dict(explored),
                'label': {'qe': qe},
                'committee': {'member': {'train': {'code': train_code}}, 'size': orm.Int(2)},
                'md': {'code': md_code},
            },
            'validation': {'label': {'qe': qe}},
            'campaign': {'settings': orm.Dict({**CAMPAIGN, **(campaign or {})}), 'md': {'code': md_code}},
        }

    return build


def stages(node) -> list[tuple[str, str]]:
    return [(s['stage'], s['status']) for s in node.outputs.stages.get_list()]


def test_the_pipeline_explores_the_campaign_systems_validates_and_reports(inputs):
    _, node = run_get_node(MockedPipeline, **inputs())
    assert node.is_finished_ok, node.exit_message
    assert stages(node) == [
        ('check', 'finished'),
        ('systems', 'finished'),
        ('active_learning', 'finished'),
        ('validation', 'finished'),
        ('campaign', 'finished'),
    ]
    (explored,) = SEEN['active_learning']
    cells = explored['structures']
    assert sorted(cells) == ['li3n_cell', 'li3n_primitive']
    assert len(cells['li3n_primitive']) == 4
    assert cells['li3n_cell'].get_chemical_formula() == 'Li11N4'  # 2x2x1 less one Li
    assert explored['settings']['temperatures_K'] == CAMPAIGN['temperatures_K']
    (campaign,) = SEEN['campaign']
    assert campaign['structures']['li3n'].get_chemical_formula() == 'Li80N27'  # 3x3x3 less one Li
    assert campaign['committee'] == node.outputs.committee.uuid
    assert SEEN['validation'][0]['natoms'] == 4
    assert SEEN['validation'][0]['model'] == node.outputs.committee.members[0].uuid
    assert node.outputs.defects.li3n_campaign['charge'] == -1.0
    assert node.outputs.defects.li3n_explore['oxidation_states'] == {'Li': 1.0, 'N': -3.0}
    page = node.outputs.report.get_content()
    assert 'Alpen' in page  # the published activation energies of Li3N, beside ours
    assert '0.310 ± 0.014' in page  # in-plane Ea: the mean of the x and y fits, errors combined
    assert '0.520 ± 0.020' in page  # along c


def test_a_failed_gate_stops_before_the_campaign_and_a_restart_with_override_reuses_every_stage(inputs):
    BEHAVIOUR['validation_passes'] = False
    _, node = run_get_node(MockedPipeline, **inputs())
    assert node.exit_status == pipeline.PipelineWorkChain.exit_codes.ERROR_VALIDATION_GATE.status
    assert f'--restart {node.pk} --override-validation' in node.exit_message
    assert not SEEN['campaign']
    assert 'committee' in node.outputs and 'report' in node.outputs
    assert node.outputs.validation.li3n['failures'] == ['c']

    builder, reused = restart_builder(node, settings={'override_validation': True})
    assert any('exploration' in item for item in reused) and any('validation' in item for item in reused)
    builder_inputs = builder._inputs(prune=True)
    _, again = run_get_node(MockedPipeline, **builder_inputs)
    assert again.is_finished_ok, again.exit_message
    assert len(SEEN['active_learning']) == 1 and len(SEEN['validation']) == 1  # nothing of them rerun
    assert again.outputs.committee.uuid == node.outputs.committee.uuid
    assert len(SEEN['campaign']) == 1
    page = again.outputs.report.get_content()
    assert 'FAILED on c and was overridden' in page


def test_a_failed_exploration_stops_with_its_report_and_the_restart_continues_it(inputs):
    BEHAVIOUR['exploration_fails'] = True
    _, node = run_get_node(MockedPipeline, **inputs())
    assert node.exit_status == pipeline.PipelineWorkChain.exit_codes.ERROR_ACTIVE_LEARNING.status
    assert ('active_learning', 'failed') in stages(node)
    assert not SEEN['validation'] and not SEEN['campaign']
    assert 'history' in node.outputs  # what finished is kept
    page = node.outputs.report.get_content()
    assert page.count('Not reached') == 2  # validation and campaign; the exploration shows its partial history
    builder, _ = restart_builder(node)
    assert 'committee' not in builder.restart  # the exploration is continued, not reused


def test_restart_refuses_other_processes(inputs):
    _, node = run_get_node(MockedPipeline, **inputs())
    with pytest.raises(RestartError, match='not a PipelineWorkChain'):
        restart_builder(node.called[0])


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'settings': {'mobile_species': 'Ag'}}, 'has no Ag, the mobile species'),
        ({'settings': {'defect': {'mode': 'frenkel', 'count': 1}, 'explore_supercell': [1, 1, 1]}}, 'Frenkel'),
        ({'settings': {'defect': {'mode': 'vacancy'}}}, 'unknown defect mode'),
        ({'campaign': {'temperatures_K': [500.0, 900.0]}}, 'above the highest explored, 800 K'),
        ({'campaign': {'fields': [[0, 0, 0], [0, 0, 0.1]]}}, 'no field along that direction'),
        ({'campaign': {'fields': [[0, 0, 0], [0.2, 0, 0]]}}, 'at most 0.1 V/Å'),
        ({'explore': {'initial_bec_fraction': 0.0, 'bec_fraction': 0.0}}, 'DFPT budget is zero'),
        ({'label': {'oxidation_states': None}}, 'no `oxidation_states`'),
    ],
)
def test_bad_input_is_refused_before_anything_runs(inputs, change, message):
    values = inputs(**change)
    if change.get('label') == {'oxidation_states': None}:
        for namespace in (values['active_learning'], values['validation']):
            namespace['label']['qe'].pop('oxidation_states', None)
    with pytest.raises(ValueError, match=message):
        run_get_node(MockedPipeline, **values)
    assert not any(SEEN.values())


def test_validation_thresholds_out_of_order_are_refused(inputs):
    values = inputs()
    values['validation']['settings'] = orm.Dict({'lattice': [0.02, 0.01]})
    with pytest.raises(ValueError, match='lattice'):
        run_get_node(MockedPipeline, **values)


def test_the_builder_takes_the_exploration_grid_from_the_campaign(fake_engine, md_code, train_code):  # noqa: F811
    structure = orm.StructureData(ase=get_reference_structure('alpha-Li3N'))
    builder = pipeline.PipelineWorkChain.get_builder_from_protocol(
        {'li3n': structure},
        train_code=train_code,
        md_code=md_code,
        protocol='fast',
        pw_code=fake_engine['pw_code'],
        ph_code=fake_engine['pw_code'],
        label_overrides={'pseudo_family': 'none'},
    )
    explored = builder.active_learning.settings.get_dict()
    campaign = builder.campaign.settings.get_dict()
    assert explored['temperatures_K'] == sorted(campaign['temperatures_K'])
    assert explored['fields'] == campaign['fields']
    assert explored['bec_max_atoms'] == 4
    assert builder.active_learning.label.qe.oxidation_states.get_dict() == {'Li': 1.0, 'N': -3.0}
    assert builder.validation.label.qe.oxidation_states.get_dict() == {'Li': 1.0, 'N': -3.0}
    assert np.array_equal(builder.settings['explore_supercell'], [2, 2, 1])
    # everything but the labelling is consistent: the test profile has no pseudopotential family `none`
    assert 'pseudo family `none` is not installed' in pipeline.validate_inputs(builder._inputs(prune=True))
