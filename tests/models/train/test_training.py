"""Training inputs, the runner, metrics, calculators and the committee evaluator (no AiiDA)."""

import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from ionfield.models.data.dataset import Dataset
from ionfield.models.nequip_bec.metrics import MaskedMeanSquaredError, MaskedRootMeanSquaredError
from ionfield.models.potential.calculator import ModelFileError, load_calculator
from ionfield.models.potential.disagreement import (
    CommitteeError,
    CommitteeEvaluator,
    bec_deviation,
    combine,
    force_deviation,
)
from ionfield.models.train.config import build_config, split_dataset, trainer_devices, write_training_inputs
from ionfield.models.train.runner import RESULT_FILE, classify_failure, first_nan_epoch, run_training
from ionfield.models.train.settings import TrainingInputError, TrainingSettings, check_dataset, warm_start_settings

from ...plugins.parsers.make_fixtures import FIXTURES
from ..synthetic import synthetic_dataset

NOIONFIELD = """
import importlib.abc, importlib.metadata as md, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == 'ionfield' or name.startswith('ionfield.'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
_eps = md.entry_points
def _filtered(**kw):
    eps = _eps(**kw)
    if kw.get('group') == 'nequip.extension':
        return md.EntryPoints([e for e in eps if not e.value.startswith('ionfield')])
    return eps
md.entry_points = _filtered
import json
from ase.io import read
from nequip.integrations.ase import NequIPCalculator
calc = NequIPCalculator._from_saved_model(sys.argv[1], device='cpu', chemical_species_to_atom_type_map=True)
atoms = read(sys.argv[2], 0)
data = calc.atoms_to_data(atoms)
out = calc.call_model(data)
assert not [m for m in sys.modules if m.startswith('ionfield.')]
born = out['born_effective_charges'].detach().double().tolist()
print(json.dumps({'energy': float(out['total_energy'].sum()), 'born': born}))
"""


# --- settings and data checks -------------------------------------------------------------


def test_settings_defaults_and_refusals():
    assert TrainingSettings.from_dict({}).size == 'small'
    with pytest.raises(TrainingInputError, match='unknown training setting'):
        TrainingSettings.from_dict({'epochs': 3})
    with pytest.raises(TrainingInputError, match='size must be one of') as info:
        TrainingSettings.from_dict({'size': 'huge', 'learning_rate': -1, 'batch_size': 0})
    assert 'learning_rate must be positive' in str(info.value) and 'batch_size' in str(info.value)
    with pytest.raises(TrainingInputError, match='cannot both be 0'):
        TrainingSettings.from_dict({'energy_weight': 0, 'forces_weight': 0})


def test_dataset_refusals():
    settings = TrainingSettings()
    data = synthetic_dataset(6)
    check_dataset(data, settings, ['Li', 'N'])
    with pytest.raises(TrainingInputError, match='at least 3 frames'):
        check_dataset(data[:2], settings)
    bad = list(data)
    forces = bad[3].forces.copy()
    forces[0, 0] = np.nan
    with pytest.raises(ValueError, match='forces is partly NaN'):  # refused by the Dataset itself
        bad[3].replace(forces=forces)
    bad[3] = bad[3].replace(forces=None)
    with pytest.raises(TrainingInputError, match='NaN or missing forces: 3'):
        check_dataset(Dataset(bad), settings)
    with pytest.raises(TrainingInputError, match=r"species \['N'\] are not known"):
        check_dataset(data, settings, ['Li'])
    no_bec = Dataset(f.replace(born_charges=None) for f in data)
    with pytest.raises(TrainingInputError, match='no frame has Born charges'):
        check_dataset(no_bec, settings)
    check_dataset(no_bec, TrainingSettings(bec=False))


def test_split_is_seeded_and_disjoint():
    data = synthetic_dataset(20)
    a = split_dataset(data, TrainingSettings(seed=3))
    b = split_dataset(data, TrainingSettings(seed=3))
    c = split_dataset(data, TrainingSettings(seed=4))
    assert [len(a[k]) for k in ('train', 'val', 'test')] == [16, 2, 2]
    key = lambda d: [f.positions[0, 0] for f in d]  # noqa: E731
    assert key(a['test']) == key(b['test']) != key(c['test'])
    assert not set(key(a['train'])) & set(key(a['test']))


def test_config_loss_has_masked_bec_term(tmp_path):
    config = build_config(TrainingSettings(bec_weight=2.0), tmp_path, ['Li', 'N'])
    loss = {m['name']: m for m in config['training_module']['loss']['metrics']}
    assert loss['bec_mse']['ignore_nan'] and loss['bec_mse']['coeff'] == 2.0
    assert loss['stress_mse']['ignore_nan'] and not loss['forces_mse']['ignore_nan']
    assert config['training_module']['model']['_target_'].endswith('NequIPBECModel')
    plain = build_config(TrainingSettings(bec=False), tmp_path, ['Li', 'N'])
    assert 'bec_mse' not in {m['name'] for m in plain['training_module']['loss']['metrics']}
    warm = build_config(TrainingSettings(), tmp_path, ['Li', 'N'], parent_model='/x/p.nequip.zip')
    assert warm['training_module']['model'] == {
        '_target_': 'nequip.model.ModelFromPackage',
        'package_path': '/x/p.nequip.zip',
    }


def test_written_inputs_have_asr_corrected_born_charges(tmp_path):
    data = synthetic_dataset(10)
    frames = list(data)
    born = frames[0].born_charges + 0.05  # breaks the sum rule by 0.05 e per atom
    frames[0] = frames[0].replace(born_charges=born)
    write_training_inputs(Dataset(frames), TrainingSettings(), tmp_path)
    assert yaml.safe_load((tmp_path / 'config.yaml').read_text())['run'] == ['train']
    written = Dataset.concatenate(Dataset.from_extxyz(tmp_path / f'{k}.extxyz') for k in ('train', 'val', 'test'))
    for frame in written:
        if frame.has_born_charges:
            assert np.abs(frame.born_charges.sum(axis=0)).max() < 1e-6  # extxyz keeps 8 decimals


def test_masked_metrics_are_zero_without_labels():
    mse = MaskedMeanSquaredError()
    assert mse(torch.zeros(0), torch.zeros(0)).item() == 0.0
    assert mse(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])).item() == pytest.approx(5.0)
    rmse = MaskedRootMeanSquaredError()
    assert rmse(torch.tensor([3.0]), torch.tensor([0.0])).item() == pytest.approx(3.0)


def test_classify_failure():
    assert classify_failure('RuntimeError: CUDA out of memory. Tried to allocate') == 'out_of_memory'
    assert classify_failure('Monitored metric val0_epoch/weighted_sum = nan is not finite') == 'nan_loss'
    assert classify_failure('KeyError: foo') == 'failed'


def test_a_nan_loss_is_read_from_the_csv_log():
    """nequip-train exits 0 after a NaN loss, and lightning's EarlyStopping writes nothing that
    ``classify_failure`` finds: the CSV log of such a real run (the parser fixture ``train/nan_loss``, laid out
    as the job folder) shows it, and that of a sound run (``train/ok``) does not."""
    assert classify_failure((FIXTURES / 'train' / 'nan_loss' / 'train.log').read_text()) == 'failed'
    assert first_nan_epoch(FIXTURES / 'train' / 'nan_loss') == 0
    assert first_nan_epoch(FIXTURES / 'train' / 'ok') is None


def test_runner_refuses_bad_input_without_training(tmp_path):
    data = list(synthetic_dataset(5))
    data[1] = data[1].replace(forces=None)
    Dataset(data).save(tmp_path / 'dataset.npz')
    (tmp_path / 'settings.json').write_text(json.dumps({'max_epochs': 1}))
    code = run_training(tmp_path, tmp_path / 'dataset.npz', tmp_path / 'settings.json')
    result = json.loads((tmp_path / RESULT_FILE).read_text())
    assert code == 2 and result['status'] == 'input_error'
    assert 'frames with NaN or missing forces: 1' in result['message']
    assert not (tmp_path / 'outputs').exists()


def test_device_reaches_the_trainer(tmp_path):
    """``--device`` becomes lightning's accelerator/devices (before, lightning chose by itself)."""
    assert trainer_devices('cpu') == {'accelerator': 'cpu', 'devices': 1}
    assert trainer_devices('cuda') == {'accelerator': 'gpu', 'devices': 1}
    assert trainer_devices('cuda:1') == {'accelerator': 'gpu', 'devices': [1]}
    with pytest.raises(TrainingInputError, match='cpu, cuda or cuda:K'):
        trainer_devices('tpu')
    trainer = build_config(TrainingSettings(), tmp_path, ['Li', 'N'], device='cuda:1')['trainer']
    assert trainer['accelerator'] == 'gpu' and trainer['devices'] == [1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine where torch sees no GPU')
def test_runner_refuses_a_gpu_torch_cannot_see(tmp_path):
    synthetic_dataset(5).save(tmp_path / 'dataset.npz')
    (tmp_path / 'settings.json').write_text(json.dumps({'max_epochs': 1}))
    code = run_training(tmp_path, tmp_path / 'dataset.npz', tmp_path / 'settings.json', device='cuda')
    result = json.loads((tmp_path / RESULT_FILE).read_text())
    assert code == 2 and 'sees no GPU' in result['message']
    assert not (tmp_path / 'config.yaml').exists()


def test_warm_start_inherits_the_architecture_and_refuses_changes():
    parent = TrainingSettings(size='medium', r_max=5.0, bec=True, seed=3).to_dict()
    child = warm_start_settings({'seed': 7, 'max_epochs': 5, 'r_max': 5.0}, parent)
    assert (child.size, child.r_max, child.bec, child.seed, child.max_epochs) == ('medium', 5.0, True, 7, 5)
    for change in ({'r_max': 4.5}, {'size': 'small'}, {'bec': False}, {'model_dtype': 'float64'}):
        (name,) = change
        with pytest.raises(TrainingInputError, match=rf'{name} \(the parent has'):
            warm_start_settings(change, parent)
    with pytest.raises(TrainingInputError, match=r'model_overrides'):
        warm_start_settings({'model_overrides': {'num_layers': 5}}, parent)


# --- committee maths ----------------------------------------------------------------------


def test_force_and_bec_deviation_formulas():
    forces = np.zeros((2, 3, 3))
    forces[0, 1] = [1.0, 0.0, 0.0]
    forces[1, 1] = [-1.0, 0.0, 0.0]
    assert force_deviation(forces).tolist() == [0.0, 1.0, 0.0]
    born = np.zeros((2, 2, 3, 3))
    born[0, 0] = np.eye(3) * 0.1
    born[1, 0] = -np.eye(3) * 0.1
    np.testing.assert_allclose(bec_deviation(born), [math.sqrt(3) * 0.1, 0.0])
    prediction = combine([1.0, 3.0], forces, list(born))
    assert prediction.energy == 2.0 and prediction.energy_std_per_atom == pytest.approx(1 / 3)
    assert prediction.max_force_deviation == 1.0


def test_committee_of_one_and_bad_files(tmp_path):
    with pytest.raises(CommitteeError, match='at least 2 members'):
        CommitteeEvaluator([tmp_path / 'a.nequip.zip'])
    (tmp_path / 'empty.nequip.zip').write_bytes(b'')
    with pytest.raises(ModelFileError, match='missing or empty'):
        load_calculator(tmp_path / 'empty.nequip.zip')
    (tmp_path / 'junk.nequip.zip').write_bytes(b'not a zip at all')
    with pytest.raises(ModelFileError, match='cannot load the model'):
        load_calculator(tmp_path / 'junk.nequip.zip')
    with pytest.raises(ModelFileError, match='unknown model file kind'):
        load_calculator(tmp_path / 'model.pt')


# --- real training (slow) -----------------------------------------------------------------


@pytest.fixture
def trained(trained_members):
    return trained_members


@pytest.mark.slow
def test_runner_trains_packages_and_evaluates(trained):
    _, runs = trained
    for code, workdir in runs:
        result = json.loads((workdir / RESULT_FILE).read_text())
        assert code == 0, result
        assert result['status'] == 'ok' and result['has_bec'] and result['type_names'] == ['Li', 'N']
        assert result['split_sizes'] == {'train': 20, 'val': 2, 'test': 2}
        metrics = result['metrics']
        assert metrics['forces_rmse_mev_per_a'] > 0 and metrics['energy_mae_mev_per_atom'] >= 0
        # the synthetic Z* deviates from nominal by ~0.1 e: the head must beat nominal charges
        assert metrics['n_bec_frames'] == 0 or metrics['bec_rmse_e'] < 0.05


@pytest.mark.slow
def test_package_runs_without_ionfield_and_matches(trained, tmp_path):
    _, runs = trained
    workdir = runs[0][1]
    script = tmp_path / 'noionfield.py'
    script.write_text(NOIONFIELD)
    out = subprocess.run(
        [sys.executable, str(script), str(workdir / 'model.nequip.zip'), str(workdir / 'test.extxyz')],
        capture_output=True,
        text=True,
        env={**__import__('os').environ, 'OMP_NUM_THREADS': '1'},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    bare = json.loads(out.stdout.strip().splitlines()[-1])
    calc = load_calculator(workdir / 'model.nequip.zip')
    atoms = Dataset.from_extxyz(workdir / 'test.extxyz')[0].to_ase()
    atoms.calc = calc
    assert atoms.get_potential_energy() == pytest.approx(bare['energy'], rel=1e-6)
    born = calc.results['born_effective_charges']
    np.testing.assert_allclose(born, bare['born'], atol=1e-5)
    assert np.abs(born.sum(axis=0)).max() < 1e-5


@pytest.mark.slow
def test_committee_evaluator_disagrees_between_seeds(trained):
    data, runs = trained
    evaluator = CommitteeEvaluator([w / 'model.nequip.zip' for _, w in runs])
    assert len(evaluator) == 2 and evaluator.type_names == ['Li', 'N']
    predictions = evaluator.evaluate(f.to_ase() for f in data[:3])
    for p in predictions:
        assert p.max_force_deviation > 0 and p.max_bec_deviation > 0
        assert p.born_charges.shape == (8, 3, 3)
    from ase.build import bulk

    with pytest.raises(CommitteeError, match=r"species \['Cu'\]"):
        evaluator.evaluate([bulk('Cu')])


@pytest.mark.slow
def test_aotinductor_ase_bec_target_returns_born_charges(trained, tmp_path):
    """``nequip-compile --target ase_bec``: the compiled model gives the package's E, F and Z*."""
    _, runs = trained
    workdir = runs[0][1]
    compiled = tmp_path / 'model.nequip.pt2'
    done = subprocess.run(
        [
            str(pathlib.Path(sys.executable).parent / 'nequip-compile'),
            str(workdir / 'model.nequip.zip'),
            str(compiled),
            '--mode',
            'aotinductor',
            '--device',
            'cpu',
            '--target',
            'ase_bec',
        ],
        capture_output=True,
        text=True,
        env={**__import__('os').environ, 'OMP_NUM_THREADS': '1'},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    frame = Dataset.from_extxyz(workdir / 'test.extxyz')[0]
    results = []
    for path in (workdir / 'model.nequip.zip', compiled):
        atoms = frame.to_ase()
        atoms.calc = load_calculator(path)
        results.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.calc.results['born_effective_charges']))
    (e0, f0, z0), (e1, f1, z1) = results
    assert e1 == pytest.approx(e0, abs=1e-4)
    np.testing.assert_allclose(f1, f0, atol=1e-4)
    np.testing.assert_allclose(z1, z0, atol=1e-5)


@pytest.mark.slow
def test_warm_start_loads_the_parents_weights(trained, tmp_path):
    """A warm start at a vanishing learning rate predicts what its parent predicts (a fresh model would not)."""
    data, runs = trained
    parent = runs[0][1] / 'model.nequip.zip'
    data.save(tmp_path / 'dataset.npz')
    (tmp_path / 'settings.json').write_text(json.dumps({'seed': 5, 'max_epochs': 1, 'learning_rate': 1e-12}))
    code = run_training(tmp_path, tmp_path / 'dataset.npz', tmp_path / 'settings.json', parent=parent)
    result = json.loads((tmp_path / RESULT_FILE).read_text())
    assert code == 0, result
    parent_result = json.loads((runs[0][1] / RESULT_FILE).read_text())
    assert result['settings']['r_max'] == parent_result['settings']['r_max'] and result['settings']['seed'] == 5
    frames = [frame.to_ase() for frame in data[:3]]
    for path in (parent, tmp_path / 'model.nequip.zip'):
        calc = load_calculator(path)
        predictions = []
        for atoms in frames:
            atoms.calc = calc
            predictions.append((atoms.get_forces().copy(), calc.results['born_effective_charges'].copy()))
        if path == parent:
            expected = predictions
    for (forces, born), (parent_forces, parent_born) in zip(predictions, expected, strict=True):
        np.testing.assert_allclose(forces, parent_forces, atol=1e-5)
        np.testing.assert_allclose(born, parent_born, atol=1e-5)

    # asking for another cutoff is refused, nothing is trained
    refused = tmp_path / 'refused'
    refused.mkdir()
    (refused / 'settings.json').write_text(json.dumps({'r_max': 3.0}))
    code = run_training(refused, tmp_path / 'dataset.npz', refused / 'settings.json', parent=parent)
    assert code == 2 and 'r_max (the parent has 4.5' in json.loads((refused / RESULT_FILE).read_text())['message']
