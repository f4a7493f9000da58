"""From a :class:`~ionfield.models.data.Dataset` and :class:`~.settings.TrainingSettings` to a nequip run.

:func:`write_training_inputs` splits the data (seeded), writes extxyz files with ASR-corrected Z* and the
nequip Hydra config, so ``nequip-train -cp DIR -cn config.yaml`` trains.

The loss is a weighted sum of per-atom energy, force, stress and Z* mean squared errors (nequip normalises
the weights to sum to one). Frames without stress or Z* carry NaN labels and contribute to E/F only
(``ignore_nan`` with :mod:`ionfield.models.nequip_bec.metrics`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ionfield.models import keys
from ionfield.models.data import Dataset

from .settings import SIZES, TrainingInputError, TrainingSettings, check_dataset

BEC_MODEL_TARGET = 'ionfield.models.nequip_bec.model.NequIPBECModel'
PLAIN_MODEL_TARGET = 'nequip.model.NequIPGNNModel'
CONFIG_NAME = 'config.yaml'
SPLIT_FILES = {'train': 'train.extxyz', 'val': 'val.extxyz', 'test': 'test.extxyz'}
#: nequip's output folder (checkpoints, CSV log) inside the working directory, and the checkpoints in it.
OUTPUT_DIR = 'outputs'
BEST_CHECKPOINT = f'{OUTPUT_DIR}/best.ckpt'
LAST_CHECKPOINT = f'{OUTPUT_DIR}/last.ckpt'
#: The logged validation loss that early stopping, the LR scheduler and the best checkpoint follow.
VAL_MONITOR = 'val0_epoch/weighted_sum'


def training_frames(dataset: Dataset) -> Dataset:
    """Copy with ASR-corrected Z*: the head is exactly neutral, raw labels are not quite."""
    return Dataset(
        frame.replace(born_charges=frame.born_charges_asr) if frame.has_born_charges else frame for frame in dataset
    )


def split_dataset(dataset: Dataset, settings: TrainingSettings) -> dict[str, Dataset]:
    """Seeded train/val/test split; each part has at least one frame."""
    n = len(dataset)
    n_val = max(1, round(settings.val_fraction * n))
    n_test = max(1, round(settings.test_fraction * n))
    order = np.random.default_rng(settings.seed).permutation(n)
    parts = {'val': order[:n_val], 'test': order[n_val : n_val + n_test], 'train': order[n_val + n_test :]}
    return {name: Dataset(dataset[int(i)] for i in sorted(idx)) for name, idx in parts.items()}


def type_names_of(dataset: Dataset) -> list[str]:
    """Species sorted by atomic number (the model's type order)."""
    from ase.data import atomic_numbers

    return sorted(dataset.species_counts(), key=lambda symbol: atomic_numbers[symbol])


def metrics_config(settings: TrainingSettings, loss: bool) -> dict[str, Any]:
    """nequip ``MetricsManager`` config: the loss (MSEs with weights) or the monitored errors."""
    masked = 'ionfield.models.nequip_bec.metrics.'
    per_atom_energy = {'_target_': 'nequip.data.PerAtomModifier', 'field': 'total_energy'}
    if loss:
        entries = [
            ('per_atom_energy_mse', per_atom_energy, masked + 'MaskedMeanSquaredError', settings.energy_weight, False),
            ('forces_mse', 'forces', masked + 'MaskedMeanSquaredError', settings.forces_weight, False),
            ('stress_mse', 'stress', masked + 'MaskedMeanSquaredError', settings.stress_weight, True),
        ]
        if settings.bec:
            entries.append(('bec_mse', keys.BORN_CHARGES, masked + 'MaskedMeanSquaredError', settings.bec_weight, True))
    else:
        entries = [
            ('per_atom_energy_mae', per_atom_energy, masked + 'MaskedMeanAbsoluteError', settings.energy_weight, False),
            ('forces_mae', 'forces', masked + 'MaskedMeanAbsoluteError', settings.forces_weight, False),
            ('forces_rmse', 'forces', masked + 'MaskedRootMeanSquaredError', None, False),
            ('stress_mae', 'stress', masked + 'MaskedMeanAbsoluteError', settings.stress_weight, True),
        ]
        if settings.bec:
            entries += [
                ('bec_mae', keys.BORN_CHARGES, masked + 'MaskedMeanAbsoluteError', settings.bec_weight, True),
                ('bec_rmse', keys.BORN_CHARGES, masked + 'MaskedRootMeanSquaredError', None, True),
            ]
    metrics = []
    for name, field, metric, coeff, ignore_nan in entries:
        if coeff == 0:
            continue
        entry = {'name': name, 'field': field, 'metric': {'_target_': metric}, 'ignore_nan': ignore_nan}
        if coeff is not None:
            entry['coeff'] = coeff
        metrics.append(entry)
    return {'_target_': 'nequip.train.MetricsManager', 'metrics': metrics}


def model_config(settings: TrainingSettings, type_names: list[str], parent_model: str | None) -> dict[str, Any]:
    """The ``training_module.model`` block: a fresh model, or the parent package to warm-start from."""
    if parent_model is not None:
        return {'_target_': 'nequip.model.ModelFromPackage', 'package_path': str(parent_model)}
    model: dict[str, Any] = {
        '_target_': BEC_MODEL_TARGET if settings.bec else PLAIN_MODEL_TARGET,
        'seed': settings.seed,
        'model_dtype': settings.model_dtype,
        'type_names': type_names,
        'r_max': settings.r_max,
        'parity': False,
        'radial_mlp_depth': 1,
        'avg_num_neighbors': '${training_data_stats:num_neighbors_mean}',
        'per_type_energy_shifts': '${training_data_stats:per_atom_energy_mean}',
        'per_type_energy_scales': '${training_data_stats:forces_rms}',
    }
    sizes = dict(SIZES[settings.size])
    head_features = sizes.pop('bec_head_features')
    model.update(sizes)
    if settings.bec:
        model['bec_head_features'] = head_features
        if settings.bec_nominal_charges:
            model['bec_nominal_charges'] = dict(settings.bec_nominal_charges)
    model.update(settings.model_overrides)
    return model


def trainer_devices(device: str) -> dict[str, Any]:
    """Lightning's ``accelerator``/``devices`` for a torch device: ``cpu``, ``cuda`` (one GPU) or ``cuda:K``.

    Without them lightning picks whatever it finds (a GPU on a GPU node even when ``--device cpu`` was asked).
    """
    if device == 'cpu':
        return {'accelerator': 'cpu', 'devices': 1}
    if device == 'cuda':
        return {'accelerator': 'gpu', 'devices': 1}
    match = re.fullmatch(r'cuda:(\d+)', device)
    if match:
        return {'accelerator': 'gpu', 'devices': [int(match.group(1))]}
    raise TrainingInputError(f'device must be cpu, cuda or cuda:K, got {device!r}')


def build_config(
    settings: TrainingSettings,
    workdir: Path,
    type_names: list[str],
    parent_model: str | None = None,
    device: str = 'cpu',
) -> dict[str, Any]:
    """The full nequip-train config (a plain dict, written as YAML)."""
    workdir = Path(workdir).resolve()
    output_dir = workdir / OUTPUT_DIR
    dataloader = {'_target_': 'torch.utils.data.DataLoader', 'batch_size': settings.batch_size}
    transforms = [
        {
            '_target_': 'nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper',
            'model_type_names': type_names,
            'chemical_species_to_atom_type_map': {name: name for name in type_names},
        },
        {'_target_': 'nequip.data.transforms.NeighborListTransform', 'r_max': settings.r_max},
    ]
    return {
        'run': ['train'],
        'seed': settings.seed,
        'hydra': {'run': {'dir': str(output_dir)}},
        'data': {
            '_target_': 'nequip.data.datamodule.ASEDataModule',
            'seed': settings.seed,
            'train_file_path': str(workdir / SPLIT_FILES['train']),
            'val_file_path': str(workdir / SPLIT_FILES['val']),
            'test_file_path': str(workdir / SPLIT_FILES['test']),
            'transforms': transforms,
            'train_dataloader': {**dataloader, 'shuffle': True},
            'val_dataloader': dataloader,
            'test_dataloader': dataloader,
            'stats_manager': {'_target_': 'nequip.data.CommonDataStatisticsManager', 'type_names': type_names},
        },
        'trainer': {
            '_target_': 'lightning.Trainer',
            'max_epochs': settings.max_epochs,
            **trainer_devices(device),
            'check_val_every_n_epoch': 1,
            'log_every_n_steps': 1,
            'enable_progress_bar': False,
            'logger': {
                '_target_': 'lightning.pytorch.loggers.CSVLogger',
                'save_dir': str(output_dir),
                'name': 'log',
                'version': 0,
            },
            'callbacks': [
                {
                    '_target_': 'lightning.pytorch.callbacks.ModelCheckpoint',
                    'monitor': VAL_MONITOR,
                    'dirpath': str(output_dir),
                    'filename': 'best',
                    'save_top_k': 1,
                    'save_last': True,
                },
                {
                    '_target_': 'lightning.pytorch.callbacks.EarlyStopping',
                    'monitor': VAL_MONITOR,
                    'patience': settings.patience,
                    'check_finite': True,
                },
            ],
        },
        'training_module': {
            '_target_': 'nequip.train.EMALightningModule',
            'loss': metrics_config(settings, loss=True),
            'val_metrics': metrics_config(settings, loss=False),
            'test_metrics': metrics_config(settings, loss=False),
            'optimizer': {'_target_': 'torch.optim.Adam', 'lr': settings.learning_rate},
            'lr_scheduler': {
                'scheduler': {
                    '_target_': 'torch.optim.lr_scheduler.ReduceLROnPlateau',
                    'factor': 0.6,
                    'patience': max(2, settings.patience // 4),
                },
                'monitor': VAL_MONITOR,
            },
            'model': model_config(settings, type_names, parent_model),
        },
    }


def write_training_inputs(
    dataset: Dataset,
    settings: TrainingSettings,
    workdir: str | Path,
    parent_type_names: list[str] | None = None,
    parent_model: str | None = None,
    device: str = 'cpu',
) -> Path:
    """Check, split and write everything ``nequip-train`` needs into ``workdir``; return the config path."""
    settings.validate()
    check_dataset(dataset, settings, parent_type_names)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    parts = split_dataset(training_frames(dataset), settings)
    for name, part in parts.items():
        part.to_extxyz(workdir / SPLIT_FILES[name])
    type_names = list(parent_type_names) if parent_type_names else type_names_of(dataset)
    config = build_config(settings, workdir, type_names, parent_model, device)
    path = workdir / CONFIG_NAME
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
