"""From a :class:`~ionfield.models.dataset.Dataset` and a few validated settings to a nequip run.

Plain Python, used by ``ionfield-train`` on the compute node (and by tests and notebooks):

* :class:`TrainingSettings` holds the hyperparameters, with ``small``/``medium``/``large`` model
  sizes as defaults, and refuses bad values before anything is written;
* :func:`check_dataset` refuses data a model cannot be trained on (no energies, NaN forces,
  species the parent model does not know, a Born-charge head without a Born-charge label);
* :func:`write_training_inputs` splits the data (seeded), writes extxyz files with ASR-corrected
  Z* and the nequip Hydra config, so ``nequip-train -cp DIR -cn config.yaml`` trains.

The loss is a weighted sum of per-atom energy, force, stress and Z* mean squared errors
(nequip normalises the weights to sum to one). Frames without stress or Z* carry NaN labels
and contribute to E/F only (``ignore_nan`` with :mod:`.nequip_bec.metrics`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .dataset import Dataset

#: Model sizes. ``small`` trains in minutes on 2 CPU cores; ``large`` wants a GPU.
SIZES: dict[str, dict[str, Any]] = {
    'small': {'num_layers': 2, 'l_max': 1, 'num_features': 16, 'radial_mlp_width': 32, 'bec_head_features': 4},
    'medium': {'num_layers': 3, 'l_max': 1, 'num_features': 32, 'radial_mlp_width': 64, 'bec_head_features': 6},
    'large': {'num_layers': 4, 'l_max': 2, 'num_features': 64, 'radial_mlp_width': 128, 'bec_head_features': 8},
}
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


class TrainingInputError(ValueError):
    """Inputs a model cannot be trained from; the message says what to change."""


@dataclasses.dataclass
class TrainingSettings:
    """Hyperparameters of one training run (one committee member)."""

    size: str = 'small'
    seed: int = 0
    r_max: float = 4.5
    max_epochs: int = 200
    patience: int = 40
    batch_size: int = 4
    learning_rate: float = 0.01
    energy_weight: float = 1.0
    forces_weight: float = 5.0
    stress_weight: float = 1.0
    bec_weight: float = 5.0
    bec: bool = True
    model_dtype: str = 'float32'
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    bec_nominal_charges: dict[str, float] | None = None
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingSettings:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TrainingInputError(f'unknown training setting(s) {unknown}; known: {sorted(known)}')
        settings = cls(**values)
        settings.validate()
        return settings

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        problems = []
        if self.size not in SIZES:
            problems.append(f'size must be one of {sorted(SIZES)}, got {self.size!r}')
        if not (isinstance(self.r_max, (int, float)) and 1.0 <= self.r_max <= 12.0):
            problems.append(f'r_max must be between 1 and 12 Å, got {self.r_max!r}')
        for name in ('max_epochs', 'batch_size'):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                problems.append(f'{name} must be a positive integer, got {getattr(self, name)!r}')
        if not (isinstance(self.patience, int) and self.patience >= 1):
            problems.append(f'patience must be a positive integer, got {self.patience!r}')
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            problems.append(f'learning_rate must be positive, got {self.learning_rate!r}')
        for name in ('energy_weight', 'forces_weight', 'stress_weight', 'bec_weight'):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                problems.append(f'{name} must be >= 0, got {value!r}')
        if self.energy_weight == 0 and self.forces_weight == 0:
            problems.append('energy_weight and forces_weight cannot both be 0')
        if self.model_dtype not in ('float32', 'float64'):
            problems.append(f'model_dtype must be float32 or float64, got {self.model_dtype!r}')
        for name in ('val_fraction', 'test_fraction'):
            if not 0 < getattr(self, name) < 0.5:
                problems.append(f'{name} must be in (0, 0.5), got {getattr(self, name)!r}')
        if not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f'seed must be a non-negative integer, got {self.seed!r}')
        if problems:
            raise TrainingInputError('; '.join(problems))


def check_dataset(dataset: Dataset, settings: TrainingSettings, type_names: list[str] | None = None) -> None:
    """Refuse a dataset that cannot train the requested model, naming the offending frames."""
    if len(dataset) < 3:
        raise TrainingInputError(f'need at least 3 frames (train/val/test), the dataset has {len(dataset)}')
    no_energy = [i for i, frame in enumerate(dataset) if not frame.has_energy]
    if no_energy:
        raise TrainingInputError(f'frames without energy: {_first(no_energy)}')
    bad_forces = [i for i, frame in enumerate(dataset) if not np.isfinite(frame.forces).all()]
    if bad_forces:
        raise TrainingInputError(f'frames with NaN or missing forces: {_first(bad_forces)}')
    if settings.bec and not any(frame.has_born_charges for frame in dataset):
        raise TrainingInputError('a Born-charge head was asked for but no frame has Born charges (set bec=False)')
    if type_names is not None:
        unknown = sorted(set(dataset.species_counts()) - set(type_names))
        if unknown:
            raise TrainingInputError(f'species {unknown} are not known to the parent model (it has {type_names})')


def _first(indices: list[int], limit: int = 10) -> str:
    shown = ', '.join(map(str, indices[:limit]))
    return f'{shown} (and {len(indices) - limit} more)' if len(indices) > limit else shown


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
            entries.append(
                ('bec_mse', 'born_effective_charges', masked + 'MaskedMeanSquaredError', settings.bec_weight, True)
            )
    else:
        entries = [
            ('per_atom_energy_mae', per_atom_energy, masked + 'MaskedMeanAbsoluteError', settings.energy_weight, False),
            ('forces_mae', 'forces', masked + 'MaskedMeanAbsoluteError', settings.forces_weight, False),
            ('forces_rmse', 'forces', masked + 'MaskedRootMeanSquaredError', None, False),
            ('stress_mae', 'stress', masked + 'MaskedMeanAbsoluteError', settings.stress_weight, True),
        ]
        if settings.bec:
            entries += [
                ('bec_mae', 'born_effective_charges', masked + 'MaskedMeanAbsoluteError', settings.bec_weight, True),
                ('bec_rmse', 'born_effective_charges', masked + 'MaskedRootMeanSquaredError', None, True),
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


def build_config(
    settings: TrainingSettings, workdir: Path, type_names: list[str], parent_model: str | None = None
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
    config = build_config(settings, workdir, type_names, parent_model)
    path = workdir / CONFIG_NAME
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
