"""Every stage's protocol file and ``get_builder_from_protocol`` (no code is run).

* every named protocol gives settings its settings class accepts;
* ``default_inputs`` equals the dataclass defaults (one set of physics defaults, whichever door is used);
* a misspelt override or an unknown protocol is refused;
* the builder of every protocol equals the expectation stored in ``tests/workflows/protocols/`` (a change of
  a default shows up in review as a change of that file; regenerate with ``IONFIELD_REGENERATE=1``).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import pytest
import yaml
from aiida import orm

from ionfield.models.active_learning.settings import ActiveLearningSettings
from ionfield.models.md.settings import MDSettings
from ionfield.models.pipeline.settings import PipelineSettings
from ionfield.models.structures.reference import get_reference_structure
from ionfield.models.train.settings import TrainingSettings
from ionfield.models.transport.settings import CampaignSettings
from ionfield.models.validation.settings import ValidationSettings
from ionfield.workflows.active_learning.workchain import ActiveLearningWorkChain
from ionfield.workflows.md.workchain import MDWorkChain
from ionfield.workflows.pipeline.workchain import PipelineWorkChain
from ionfield.workflows.train.committee import CommitteeWorkChain
from ionfield.workflows.train.workchain import TrainWorkChain
from ionfield.workflows.transport.workchain import TransportCampaignWorkChain
from ionfield.workflows.validation.workchain import ValidationWorkChain

EXPECTED = pathlib.Path(__file__).parent / 'protocols'

#: workchain -> {protocol key holding a settings dict: its settings class}
SETTINGS = {
    TrainWorkChain: {'training': TrainingSettings},
    CommitteeWorkChain: {'training': TrainingSettings},
    MDWorkChain: {'settings': MDSettings},
    ActiveLearningWorkChain: {'settings': ActiveLearningSettings, 'training': TrainingSettings},
    TransportCampaignWorkChain: {'settings': CampaignSettings},
    ValidationWorkChain: {'settings': ValidationSettings},
    PipelineWorkChain: {'settings': PipelineSettings},
}


def _dataclass_defaults(settings_class) -> dict:
    return settings_class().to_dict()


@pytest.mark.parametrize('workchain', list(SETTINGS), ids=lambda w: w.__name__)
def test_every_protocol_validates_and_defaults_match_the_dataclass(workchain):
    protocols = workchain.get_available_protocols()
    assert workchain.get_default_protocol() in protocols and all(protocols.values()), 'a protocol lacks a description'
    defaults = workchain.protocol_file.content['default_inputs']
    for key, settings_class in SETTINGS[workchain].items():
        reference = _dataclass_defaults(settings_class)
        for name, value in defaults[key].items():
            assert value == reference[name], (
                f'{workchain.__name__} default_inputs.{key}.{name}: {value} != {reference[name]}'
            )
        for protocol in protocols:
            settings_class.from_dict(workchain.get_protocol_inputs(protocol)[key])


def test_overrides_are_checked():
    values = MDWorkChain.get_protocol_inputs('fast', {'settings': {'temperature_K': 600.0}})
    assert values['settings']['temperature_K'] == 600.0 and values['settings']['steps'] == 2000
    with pytest.raises(ValueError, match='`label_protocl` is not a key'):
        ActiveLearningWorkChain.get_protocol_inputs(None, {'label_protocl': 'fast'})
    # a settings dict is checked by its own class, which names the known keys
    with pytest.raises(ValueError, match=r"unknown MD setting\(s\) \['temperature'\]"):
        MDWorkChain.get_builder_from_protocol(None, None, overrides={'settings': {'temperature': 600.0}})
    with pytest.raises(ValueError, match='unknown protocol `quick`'):
        ActiveLearningWorkChain.get_protocol_inputs('quick')


def test_quickstart_is_the_fast_protocol():
    """The README main job is a protocol, not a dict hidden in the CLI."""
    from ionfield.plugins.cli.cmd_quickstart import QUICKSTART_PROTOCOL

    values = ActiveLearningWorkChain.get_protocol_inputs(QUICKSTART_PROTOCOL)
    assert values['committee_size'] == 2 and values['max_concurrent_labels'] == 1
    assert values['settings']['max_iterations'] == 3 and values['settings']['temperatures_K'] == [300.0, 500.0]


# --- builders against stored expectations ---------------------------------------------------------------


def _plain(value):
    """Builder inputs as plain YAML: nodes by their value (codes by label, structures by formula)."""
    if isinstance(value, dict) or hasattr(value, 'items'):
        return {key: _plain(item) for key, item in value.items() if key != 'metadata' or item}
    if isinstance(value, orm.AbstractCode):
        return f'code:{value.label}'
    if isinstance(value, orm.StructureData):
        return f'structure:{value.get_formula()}'
    if isinstance(value, orm.Dict):
        return value.get_dict()
    if isinstance(value, orm.List):
        return value.get_list()
    if isinstance(value, (orm.Int, orm.Float, orm.Bool, orm.Str)):
        return value.value
    if isinstance(value, orm.Node):
        return f'{type(value).__name__}'
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return value


def _check_expected(name: str, builder) -> None:
    actual = _plain(builder._inputs(prune=True))
    path = EXPECTED / f'{name}.yaml'
    if os.environ.get('IONFIELD_REGENERATE') or not path.exists():
        path.write_text(yaml.safe_dump(actual, sort_keys=True))
        if not os.environ.get('IONFIELD_REGENERATE'):
            pytest.fail(f'{path} did not exist: written now, review and commit it')
    assert actual == yaml.safe_load(path.read_text()), f'the {name} builder changed; see {path}'


@pytest.fixture
def stub_codes(aiida_profile):
    found = orm.Computer.collection.find({'label': 'protocol-builders'})
    computer = found[0] if found else orm.Computer('protocol-builders', 'localhost', transport_type='core.local')
    if not found:
        computer.scheduler_type = 'core.direct'
        computer.store().configure()

    def code(label, plugin):
        existing = orm.QueryBuilder().append(orm.InstalledCode, filters={'label': label}).first(flat=True)
        return (
            existing
            or orm.InstalledCode(
                label=label, computer=computer, filepath_executable='/bin/true', default_calc_job_plugin=plugin
            ).store()
        )

    return {
        'train': code('ionfield-train', 'ionfield.train'),
        'md': code('ionfield-md', 'ionfield.md'),
        'pw': code('pw', 'quantumespresso.pw'),
        'ph': code('ph', 'quantumespresso.ph'),
    }


@pytest.mark.parametrize('protocol', ['fast', 'moderate', 'precise'])
def test_builders_match_their_stored_expectations(stub_codes, protocol):
    from ionfield.plugins.data.dataset import DatasetData

    from ..fakes import dummy_model
    from ..models.synthetic import synthetic_dataset

    structure = orm.StructureData(ase=get_reference_structure('alpha-Li3N'))
    dataset = DatasetData(synthetic_dataset(4))
    _check_expected(
        f'train-{protocol}', TrainWorkChain.get_builder_from_protocol(stub_codes['train'], dataset, protocol)
    )
    _check_expected(
        f'committee-{protocol}',
        CommitteeWorkChain.get_builder_from_protocol(stub_codes['train'], dataset, protocol, base_seed=3),
    )
    _check_expected(
        f'md-{protocol}', MDWorkChain.get_builder_from_protocol(stub_codes['md'], structure, protocol=protocol)
    )
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        {'li3n': structure},
        train_code=stub_codes['train'],
        md_code=stub_codes['md'],
        protocol=protocol,
        pw_code=stub_codes['pw'],
        ph_code=stub_codes['ph'],
    )
    _check_expected(f'active_learning-{protocol}', builder)
    campaign = TransportCampaignWorkChain.get_builder_from_protocol(
        stub_codes['md'], {'li3n': structure}, model=dummy_model(), protocol=protocol
    )
    _check_expected(f'campaign-{protocol}', campaign)
    validation = ValidationWorkChain.get_builder_from_protocol(
        structure, dummy_model(), protocol=protocol, pw_code=stub_codes['pw'], ph_code=stub_codes['ph']
    )
    _check_expected(f'validation-{protocol}', validation)
    pipeline = PipelineWorkChain.get_builder_from_protocol(
        {'li3n': structure},
        train_code=stub_codes['train'],
        md_code=stub_codes['md'],
        protocol=protocol,
        pw_code=stub_codes['pw'],
        ph_code=stub_codes['ph'],
    )
    _check_expected(f'pipeline-{protocol}', pipeline)
