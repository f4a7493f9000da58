"""``TrainParser`` on what real ``ionfield-train`` runs retrieved (``fixtures/train/``, made by ``make_fixtures.py``).

A model package is too large to keep (see ``make_fixtures.py``), so ``ok`` has none: parsed as it is, it tests
the missing-model path; given a stand-in package (``tests.fakes.DUMMY_PACKAGE``), the model output.
"""

from __future__ import annotations

import json
import shutil

import pytest
from aiida.plugins import CalculationFactory, ParserFactory

from ionfield.models.train.runner import LOG_FILE, MODEL_FILE, RESULT_FILE
from ionfield.plugins.data.dataset import DatasetData

from ...fakes import DUMMY_PACKAGE
from ...models.synthetic import synthetic_dataset
from .make_fixtures import FIXTURES, SETTINGS, TRAIN_CASES, retrieve

TrainCalculation = CalculationFactory('ionfield.train')
TrainParser = ParserFactory('ionfield.train')
EXIT_CODES = TrainCalculation.exit_codes


@pytest.fixture
def dataset(aiida_profile):
    """The dataset of the ``ok`` run (synthetic frames are the same for the same count and seed)."""
    return DatasetData(synthetic_dataset(TRAIN_CASES['ok'][0], bec_share=0.5)).store()


def fixture_result(case: str) -> dict:
    return json.loads((FIXTURES / 'train' / case / RESULT_FILE).read_text())


def parse(generate_calc_job_node, case: str, dataset, files=None):
    node = generate_calc_job_node('ionfield.train', case, {'dataset': dataset}, files)
    results, calcfunction = TrainParser.parse_from_node(node, store_provenance=False)
    return results, calcfunction, node


def test_ok_run_gives_the_model_with_the_run_s_metrics_and_settings(generate_calc_job_node, dataset):
    results, calcfunction, node = parse(generate_calc_job_node, 'ok', dataset, {MODEL_FILE: DUMMY_PACKAGE})
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    result = fixture_result('ok')
    model = results['model']
    assert model.get_package_bytes() == DUMMY_PACKAGE

    metrics = {**result['metrics'], **{key: result[key] for key in ('epochs', 'split_sizes', 'wall_time_s')}}
    assert results['metrics'].get_dict() == model.metrics == metrics
    assert sum(result['split_sizes'].values()) == len(dataset.get_dataset())
    # the settings the run used, every default filled in, not only the keys that were given
    given = node.inputs.settings.get_dict()
    assert model.base.attributes.get('settings') == result['settings'] and len(result['settings']) > len(given)
    assert given.items() <= result['settings'].items() and model.seed == given['seed']
    assert model.species == result['type_names'] == ['Li', 'N'] and model.r_max == result['r_max'] and model.has_bec
    assert model.dataset_uuid == dataset.uuid

    # one row per epoch, and the training loss fell epoch by epoch
    curve = results['training_curve']['epochs']
    assert [row['epoch'] for row in curve] == list(range(result['epochs'] + 1))
    losses = [row['train_weighted_sum'] for row in curve]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:], strict=False))
    assert 'nequip-package build' in results['log'].get_content()


def test_ok_run_without_its_package_is_a_model_file_error(generate_calc_job_node, dataset):
    """The fixture as retrieved minus the package: no model, but the log and the curve are kept."""
    results, calcfunction, _ = parse(generate_calc_job_node, 'ok', dataset)
    assert calcfunction.exit_status == EXIT_CODES.ERROR_MODEL_FILE.status
    assert f'{MODEL_FILE} was not retrieved' in calcfunction.exit_message
    assert 'model' not in results and {'log', 'training_curve'} <= set(results)


def test_unreadable_package_is_a_model_file_error(generate_calc_job_node, dataset):
    results, calcfunction, _ = parse(generate_calc_job_node, 'ok', dataset, {MODEL_FILE: b'garbage'})
    assert calcfunction.exit_status == EXIT_CODES.ERROR_MODEL_FILE.status
    assert 'not a nequip package' in calcfunction.exit_message and 'model' not in results


def test_run_killed_before_its_result(generate_calc_job_node, dataset):
    results, calcfunction, _ = parse(generate_calc_job_node, 'ok', dataset, {RESULT_FILE: None})
    assert calcfunction.exit_status == EXIT_CODES.ERROR_NO_RESULT.status
    assert {'log', 'training_curve'} <= set(results) and 'model' not in results


def test_nan_loss(generate_calc_job_node, dataset):
    """A learning rate of 1e9: the loss is NaN from the second step, and nequip-train still exits 0."""
    results, calcfunction, _ = parse(generate_calc_job_node, 'nan_loss', dataset)
    assert calcfunction.exit_status == EXIT_CODES.ERROR_NAN_LOSS.status
    assert calcfunction.exit_message == EXIT_CODES.ERROR_NAN_LOSS.message
    assert 'NaN at epoch 0' in fixture_result('nan_loss')['message']
    # the curve of the diverged run is kept, its NaN stored as None (JSON has no NaN)
    (row,) = results['training_curve']['epochs']
    assert row['train_weighted_sum'] is None and row['val_weighted_sum'] is None
    assert 'model' not in results and 'log' in results


def test_input_error(generate_calc_job_node, dataset):
    """A dataset of 2 frames: refused before any training, with the reason."""
    results, calcfunction, _ = parse(generate_calc_job_node, 'input_error', dataset)
    assert calcfunction.exit_status == EXIT_CODES.ERROR_INPUT.status
    message = fixture_result('input_error')['message']
    assert 'need at least 3 frames' in message and message in calcfunction.exit_message
    assert not {'model', 'log', 'training_curve'} & set(results)


@pytest.mark.parametrize(
    ('status', 'exit_code', 'message'),
    [('out_of_memory', 'ERROR_OUT_OF_MEMORY', None), ('failed', 'ERROR_TRAINING_FAILED', 'nequip-train exited with 1')],
)
def test_statuses_without_a_fixture(generate_calc_job_node, dataset, status, exit_code, message):
    """Statuses no cheap real run produces: the ``ok`` run's result with the status (and message) the runner writes."""
    result = {**fixture_result('ok'), 'status': status, 'message': message or ''}
    files = {RESULT_FILE: json.dumps(result).encode(), MODEL_FILE: DUMMY_PACKAGE}
    results, calcfunction, _ = parse(generate_calc_job_node, 'ok', dataset, files)
    assert calcfunction.exit_status == EXIT_CODES[exit_code].status and 'model' not in results
    if message:
        assert message in calcfunction.exit_message


@pytest.mark.parametrize('case', sorted(TRAIN_CASES))
def test_fixture_holds_what_the_calcjob_retrieves(case, tmp_path):
    """Retrieving a copy of the fixture with ``TrainCalculation``'s retrieve list gives the fixture back, file for
    file: the CSV log too, at the path the parser reads it from."""
    fixture = FIXTURES / 'train' / case
    shutil.copytree(fixture, tmp_path / 'job')
    retrieve(tmp_path / 'job', tmp_path / 'retrieved', 'train')
    assert files(tmp_path / 'retrieved') == files(fixture) - {SETTINGS}
    assert (LOG_FILE in files(fixture)) == (case != 'input_error')


def files(folder) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob('*') if path.is_file()}
