"""Settings of a transport campaign (the grid and the production MD), validated before any run.

The grid is structures x ``temperatures_K`` x ``fields`` x ``bec_modes`` x ``replicas``. A zero
field is run once per temperature (Z* modes do not matter without a field); the ablation modes
(``diagonal``, ``field_axis``) are run next to ``full`` for every non-zero field.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ionfield.models.md.field import BEC_MODES, FieldInputError, parse_field
from ionfield.models.md.settings import MDInputError, MDSettings
from ionfield.models.settings import Settings, SettingsError, is_integer, is_number

from .replicas import AnalysisOptions, TransportInputError

SET_BY_CAMPAIGN = ('temperature_K', 'field', 'bec_mode', 'seed', 'steps', 'timestep_fs', 'trajectory_every')


class CampaignInputError(SettingsError):
    """Campaign settings that cannot run; the message says what to change."""


@dataclasses.dataclass
class CampaignSettings(Settings):
    """One transport campaign: the grid (T x E x Z* mode x replicas), the runs' length and the analysis."""

    input_error = CampaignInputError
    label = 'campaign setting'

    temperatures_K: list[float] = dataclasses.field(default_factory=lambda: [600.0])  # noqa: N815
    fields: list[list[float]] = dataclasses.field(default_factory=lambda: [[0.0, 0.0, 0.0], [0.0, 0.0, 0.1]])
    bec_modes: list[str] = dataclasses.field(default_factory=lambda: ['full'])
    replicas: int = 2
    steps: int = 20000
    timestep_fs: float = 1.0
    trajectory_every: int = 10
    equilibration_fs: float = 1000.0
    seed: int = 0
    md_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    analysis: dict[str, Any] = dataclasses.field(default_factory=dict)
    min_success_fraction: float = 0.5

    @classmethod
    def _normalise(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Fields as lists of floats in V/Å, temperatures as floats (what cannot be read is left to problems())."""
        try:
            values['fields'] = [parse_field(field).tolist() for field in values.get('fields', cls().fields)]
        except FieldInputError:
            pass
        temperatures = values.get('temperatures_K')
        if isinstance(temperatures, (list, tuple)) and all(is_number(t) for t in temperatures):
            values['temperatures_K'] = [float(t) for t in temperatures]
        return values

    @property
    def analysis_options(self) -> AnalysisOptions:
        values = {'equilibration_fs': self.equilibration_fs, 'seed': self.seed, **self.analysis}
        return AnalysisOptions.from_dict(values)

    @property
    def has_zero_field(self) -> bool:
        return any(not np.any(np.asarray(f, dtype=float)) for f in self.fields)

    def runs(self) -> list[tuple[float, list[float], str]]:
        """(T, field, Z* mode) of every condition; E = 0 once per T."""
        conditions = []
        for temperature in self.temperatures_K:
            for field in self.fields:
                field = [float(x) for x in field]
                modes = ['full'] if not any(field) else self.bec_modes
                conditions.extend((float(temperature), field, mode) for mode in modes)
        return conditions

    def md_settings(self, temperature: float, field, mode: str, seed: int) -> dict[str, Any]:
        values = {
            **self.md_overrides,
            'temperature_K': temperature,
            'field': list(field),
            'bec_mode': mode,
            'seed': seed,
            'steps': self.steps,
            'timestep_fs': self.timestep_fs,
            'trajectory_every': self.trajectory_every,
        }
        return MDSettings.from_dict(values).to_dict()

    def problems(self) -> list[str]:
        problems = []
        if not self.temperatures_K or not all(is_number(t) and t > 0 for t in self.temperatures_K):
            problems.append(f'temperatures_K must be a non-empty list of positive numbers, got {self.temperatures_K!r}')
        elif len(set(self.temperatures_K)) != len(self.temperatures_K):
            problems.append(f'temperatures_K has duplicates: {self.temperatures_K}')
        if not self.fields:
            problems.append('fields is empty: give at least [0, 0, 0]')
        for field in self.fields:
            try:
                parse_field(field)
            except FieldInputError as exc:
                problems.append(f'fields: {exc}')
        if not self.bec_modes or any(m not in BEC_MODES for m in self.bec_modes) or 'full' not in self.bec_modes:
            problems.append(f'bec_modes must include "full" and only {BEC_MODES}, got {self.bec_modes!r}')
        for name, low in (('replicas', 1), ('steps', 10), ('trajectory_every', 1)):
            value = getattr(self, name)
            if not is_integer(value, low):
                problems.append(f'{name} must be an integer >= {low}, got {value!r}')
        clash = sorted(set(self.md_overrides) & set(SET_BY_CAMPAIGN))
        if clash:
            problems.append(f'md_overrides {clash} are set by the campaign: use the campaign settings of that name')
        if not (is_number(self.min_success_fraction) and 0 <= self.min_success_fraction <= 1):
            problems.append(f'min_success_fraction must be in [0, 1], got {self.min_success_fraction!r}')
        if not problems:
            try:
                self.md_settings(self.temperatures_K[0], self.fields[0], 'full', self.seed)
            except MDInputError as exc:
                problems.append(f'MD settings: {exc}')
            if self.equilibration_fs >= self.steps * self.timestep_fs:
                problems.append(
                    f'equilibration_fs ({self.equilibration_fs:g}) leaves nothing of a '
                    f'{self.steps * self.timestep_fs:g} fs run to analyse'
                )
            try:
                _ = self.analysis_options
            except TransportInputError as exc:
                problems.append(f'analysis: {exc}')
        return problems
