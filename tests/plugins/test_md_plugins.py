"""MDCalculation and the ``ionfield-md`` runner.

The input validator is tested on hand-made model nodes; the parser in ``tests/plugins/parsers/``, on what
real runs retrieved. Slow tests run ``ionfield-md`` on trained models, and a real MDCalculation (then its
continuation) through the engine on localhost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory
from ase import Atoms

from ionfield.models.md.runner import RESULT_FILE, STATUS_EXIT
from ionfield.models.structures.reference import alpha_li3n
from ionfield.plugins.calculations.md import validate_inputs
from ionfield.plugins.data.model import CommitteeData, ModelData

from ..fakes import dummy_model

MDCalculation = CalculationFactory('ionfield.md')


def test_runner_status_codes_are_distinct():
    assert len(set(STATUS_EXIT.values())) == len(STATUS_EXIT)
    parser_codes = {MDCalculation.exit_codes[name].status for name in ('ERROR_INPUT', 'ERROR_MD_FAILED')}
    assert parser_codes == {501, 502}


# --- input validation (no code runs) ---------------------------------------------------------------


def validate(**inputs):
    builder = MDCalculation.get_builder()
    inputs.setdefault('structure', orm.StructureData(ase=alpha_li3n()))
    for key, value in inputs.items():
        setattr(builder, key, value)
    return validate_inputs(dict(builder))


def test_validator_refuses_bad_combinations(aiida_profile, tmp_path):
    plain = dummy_model(has_bec=False)
    bec = dummy_model()
    assert 'no Born-charge head' in validate(model=plain, settings=orm.Dict({'field': [0.01, 0, 0]}))
    assert validate(model=plain, settings=orm.Dict({'temperature_K': 300})) is None
    assert validate(model=bec, settings=orm.Dict({'field': [0.01, 0, 0]})) is None
    agi = orm.StructureData(ase=Atoms('AgI', positions=[[0, 0, 0], [2, 2, 2]], cell=[4, 4, 4], pbc=True))
    assert 'does not know species' in validate(model=bec, structure=agi)
    assert 'exactly one' in validate()
    committee = CommitteeData([bec, dummy_model(seed=1)]).store()
    assert 'exactly one' in validate(model=bec, committee=committee)
    assert 'need a committee' in validate(model=bec, settings=orm.Dict({'max_force_deviation': 0.2}))
    assert validate(committee=committee, settings=orm.Dict({'max_force_deviation': 0.2})) is None
    from ionfield.plugins.calculations.md import validate_settings

    assert 'V/m' in validate_settings(orm.Dict({'field': [1e8, 0, 0]}))


# --- real runs (slow) ---------------------------------------------------------------------------------


def run_md_cli(workdir, models, settings, structure=None, extra=()):
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / 'settings.json').write_text(json.dumps(settings))
    atoms = structure if structure is not None else alpha_li3n().repeat((2, 2, 2))
    atoms.write(workdir / 'structure.xyz', format='extxyz')
    command = [sys.executable, '-m', 'ionfield.models.md.runner', '--workdir', str(workdir), '--device', 'cpu']
    command += ['--structure', str(workdir / 'structure.xyz'), '--settings', str(workdir / 'settings.json')]
    for model in models:
        command += ['--model', str(model)]
    done = subprocess.run(
        command + list(extra), env={**os.environ, 'OMP_NUM_THREADS': '1'}, capture_output=True, text=True
    )
    result = json.loads((workdir / RESULT_FILE).read_text()) if (workdir / RESULT_FILE).is_file() else None
    return done, result


@pytest.mark.slow
def test_runner_with_a_trained_committee(trained_members, tmp_path):
    _, runs = trained_members
    models = [workdir / 'model.nequip.zip' for _, workdir in runs]
    settings = {'steps': 20, 'temperature_K': 300, 'field': [0.05, 0, 0], 'log_every': 5, 'monitor_every': 5}
    done, result = run_md_cli(tmp_path / 'ok', models, settings)
    assert done.returncode == 0 and result['status'] == 'completed', (done.stderr[-2000:], result)
    assert result['model_calls'] == 21 and result['max_force_deviation'] > 0 and result['max_bec_deviation'] > 0
    # an uncertainty bound below what the committee shows stops the run at the first check that exceeds it
    # (step 0 is the perfect crystal: every force is zero by symmetry for both members, so they agree there)
    done, result = run_md_cli(tmp_path / 'unsure', models, {**settings, 'max_force_deviation': 1e-6})
    assert done.returncode == STATUS_EXIT['uncertainty'] and result['status'] == 'uncertainty'
    assert result['step'] == 5 and result['frames_written'] == 2 and 'force deviation' in result['message']
    # species the models lack, a corrupt model file: input errors with the reason
    agi = Atoms('AgI', positions=[[0, 0, 0], [2, 2, 2]], cell=[4, 4, 4], pbc=True)
    done, result = run_md_cli(tmp_path / 'agi', models[:1], settings, structure=agi)
    assert done.returncode == 2 and "species ['Ag', 'I']" in result['message']
    (tmp_path / 'junk.nequip.zip').write_bytes(b'PK junk')
    done, result = run_md_cli(tmp_path / 'junk', [tmp_path / 'junk.nequip.zip'], settings)
    assert done.returncode == 2 and 'cannot load the model' in result['message']


@pytest.mark.slow
def test_md_calculation_runs_and_continues(aiida_profile, md_code, trained_members):
    _, runs = trained_members
    model = ModelData(runs[0][1] / 'model.nequip.zip', species=['Li', 'N'], r_max=4.5, has_bec=True).store()
    structure = orm.StructureData(ase=alpha_li3n().repeat((2, 2, 1)))
    settings = {'steps': 10, 'temperature_K': 400, 'field': [0.0, 0.0, 0.1], 'log_every': 5, 'trajectory_every': 5}
    inputs = {
        'code': md_code,
        'structure': structure,
        'model': model,
        'settings': orm.Dict(settings),
        'metadata': {'options': {'max_wallclock_seconds': 600}},
    }
    results, node = run_get_node(MDCalculation, **inputs)
    assert node.is_finished_ok, node.exit_message
    assert results['trajectory'].base.attributes.get('last_step') == 10
    assert results['summary']['model_calls'] == 11
    # continue the same run to 20 steps from its remote folder
    more = {**inputs, 'settings': orm.Dict({**settings, 'steps': 20}), 'parent_folder': node.outputs.remote_folder}
    results, node = run_get_node(MDCalculation, **more)
    assert node.is_finished_ok, node.exit_message
    trajectory = results['trajectory'].read()
    assert trajectory.steps.tolist() == [0, 5, 10, 15, 20]
    assert results['thermo'].get_array('step').tolist() == [0, 5, 10, 15, 20]
