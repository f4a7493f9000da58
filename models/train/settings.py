"""Hyperparameters of one training run, and the data checks that refuse what no model can be trained on.

:class:`TrainingSettings` holds the hyperparameters, with ``small``/``medium``/``large`` model sizes as
defaults, and refuses bad values before anything is written; :func:`check_dataset` refuses data a model
cannot be trained on (no energies, NaN forces, species the parent model does not know, a Born-charge head
without a Born-charge label).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ionfield.models.data import Dataset
from ionfield.models.settings import Settings, SettingsError

#: Model sizes. ``small`` trains in minutes on 2 CPU cores; ``large`` wants a GPU.
SIZES: dict[str, dict[str, Any]] = {
    'small': {'num_layers': 2, 'l_max': 1, 'num_features': 16, 'radial_mlp_width': 32, 'bec_head_features': 4},
    'medium': {'num_layers': 3, 'l_max': 1, 'num_features': 32, 'radial_mlp_width': 64, 'bec_head_features': 6},
    'large': {'num_layers': 4, 'l_max': 2, 'num_features': 64, 'radial_mlp_width': 128, 'bec_head_features': 8},
}


class TrainingInputError(SettingsError):
    """Inputs a model cannot be trained from; the message says what to change."""


@dataclasses.dataclass
class TrainingSettings(Settings):
    """Hyperparameters of one training run (one committee member)."""

    input_error = TrainingInputError
    label = 'training setting'

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

    def problems(self) -> list[str]:
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
        return problems


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


#: The settings that shape the network and its neighbour list. A warm start loads the parent's network as it
#: is, so it inherits these; asking for other values is refused rather than silently ignored.
ARCHITECTURE = ('size', 'r_max', 'model_dtype', 'bec', 'bec_nominal_charges', 'model_overrides')


def warm_start_settings(requested: dict[str, Any], parent: dict[str, Any]) -> TrainingSettings:
    """Settings of a run that warm-starts from a parent trained with the settings ``parent``.

    ``requested`` holds only the keys the user gave. The :data:`ARCHITECTURE` comes from the parent; a
    requested value that differs is an error naming both values. Everything else (seed, epochs, loss
    weights, learning rate, split) is the run's own, and the returned settings record what was used.
    """
    parent_settings = TrainingSettings.from_dict(parent)
    clashes = [
        f'{name} (the parent has {getattr(parent_settings, name)!r}, asked {requested[name]!r})'
        for name in ARCHITECTURE
        if name in requested and requested[name] != getattr(parent_settings, name)
    ]
    if clashes:
        raise TrainingInputError(
            "a warm start keeps the parent model's architecture, and these settings differ: "
            + '; '.join(clashes)
            + '. Leave them out to inherit them, or train from scratch (no parent model).'
        )
    return TrainingSettings.from_dict({**requested, **{name: getattr(parent_settings, name) for name in ARCHITECTURE}})
