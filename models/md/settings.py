"""Settings of one field-MD run, validated before anything is simulated.

Units: fs, K, GPa, V/Å, Å, eV/Å, e. Every random choice (initial velocities, the thermostat's noise)
comes from ``seed``, so a run is reproducible on the same machine and software.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ionfield.models.settings import Settings, SettingsError, is_integer, is_number, is_positive

from .field import BEC_MODES, FieldInputError, parse_field

ENSEMBLES = ('nve', 'langevin', 'bussi', 'nose_hoover', 'npt')
TRAJECTORY_FORMATS = ('h5', 'extxyz')
BACKENDS = ('ase', 'torchsim')


class MDInputError(SettingsError):
    """Settings a run cannot start from; the message says what to change."""


@dataclasses.dataclass
class MDSettings(Settings):
    """One field-MD run: integrator, field, output cadence and stop bounds."""

    input_error = MDInputError
    label = 'MD setting'

    ensemble: str = 'langevin'
    backend: str = 'ase'
    steps: int = 1000
    timestep_fs: float = 1.0
    temperature_K: float = 300.0  # noqa: N815 - ASE spells it so
    friction_per_fs: float = 0.01  # langevin
    taut_fs: float = 100.0  # bussi, nose_hoover, npt
    pressure_GPa: float = 0.0  # noqa: N815 - npt
    taup_fs: float = 1000.0  # npt
    field: tuple[float, float, float] = (0.0, 0.0, 0.0)  # V/Å
    bec_mode: str = 'full'
    seed: int = 0
    initial_velocities: bool = True  # Maxwell-Boltzmann at temperature_K; False keeps the structure's
    log_every: int = 10
    trajectory_every: int = 10
    trajectory_format: str = 'h5'
    save_velocities: bool = False
    checkpoint_every: int = 1000
    monitor_every: int = 10  # committee evaluation cadence (steps)
    max_force_deviation: float | None = None  # eV/Å; None: never stop on it
    max_bec_deviation: float | None = None  # e
    min_distance: float = 0.6  # Å; closer atoms stop the run
    max_temperature_K: float | None = None  # noqa: N815 - None: max(3 T, T + 1000 K)

    @classmethod
    def _normalise(cls, values: dict[str, Any]) -> dict[str, Any]:
        if 'field' in values:
            try:
                values['field'] = tuple(parse_field(values['field']).tolist())
            except FieldInputError as exc:
                raise MDInputError(str(exc)) from None
        return values

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        values['field'] = list(self.field)
        return values

    @property
    def temperature_limit(self) -> float:
        if self.max_temperature_K is not None:
            return self.max_temperature_K
        return max(3 * self.temperature_K, self.temperature_K + 1000.0)

    def problems(self) -> list[str]:
        problems = []
        if self.ensemble not in ENSEMBLES:
            problems.append(f'ensemble must be one of {ENSEMBLES}, got {self.ensemble!r}')
        if self.backend not in BACKENDS:
            problems.append(f'backend must be one of {BACKENDS}, got {self.backend!r}')
        elif self.backend == 'torchsim' and self.ensemble == 'npt':
            # the ASE backend's npt is isotropic MTK; no TorchSim barostat has been checked against it
            problems.append(
                'the torchsim backend runs nve, langevin, bussi and nose_hoover, not npt: use backend "ase"'
            )
        if self.trajectory_format not in TRAJECTORY_FORMATS:
            problems.append(f'trajectory_format must be one of {TRAJECTORY_FORMATS}, got {self.trajectory_format!r}')
        if self.bec_mode not in BEC_MODES:
            problems.append(f'bec_mode must be one of {BEC_MODES}, got {self.bec_mode!r}')
        for name in ('steps', 'log_every', 'trajectory_every', 'checkpoint_every', 'monitor_every'):
            value = getattr(self, name)
            if not is_integer(value, 0 if name == 'steps' else 1):
                problems.append(
                    f'{name} must be a {"non-negative" if name == "steps" else "positive"} integer, got {value!r}'
                )
        if not (is_positive(self.timestep_fs) and self.timestep_fs <= 10):
            problems.append(f'timestep_fs must be in (0, 10] fs, got {self.timestep_fs!r}')
        if not (is_number(self.temperature_K) and self.temperature_K >= 0):
            problems.append(f'temperature_K must be >= 0, got {self.temperature_K!r}')
        if self.ensemble != 'nve' and not self.temperature_K > 0:
            problems.append(f'the {self.ensemble} thermostat needs temperature_K > 0')
        for name in ('friction_per_fs', 'taut_fs', 'taup_fs'):
            if not is_positive(getattr(self, name)):
                problems.append(f'{name} must be positive, got {getattr(self, name)!r}')
        if not is_number(self.pressure_GPa):
            problems.append(f'pressure_GPa must be a number, got {self.pressure_GPa!r}')
        for name in ('max_force_deviation', 'max_bec_deviation', 'max_temperature_K'):
            value = getattr(self, name)
            if value is not None and not is_positive(value):
                problems.append(f'{name} must be positive or null, got {value!r}')
        if not (is_number(self.min_distance) and self.min_distance >= 0):
            problems.append(f'min_distance must be >= 0 Å, got {self.min_distance!r}')
        if self.max_temperature_K is not None and is_positive(self.max_temperature_K):
            if self.max_temperature_K <= self.temperature_K:
                problems.append('max_temperature_K must be above temperature_K')
        if not is_integer(self.seed, 0):
            problems.append(f'seed must be a non-negative integer, got {self.seed!r}')
        try:
            parse_field(self.field)
        except FieldInputError as exc:
            problems.append(str(exc))
        return problems
