"""Settings of one active-learning run, validated before anything runs.

Units: Å, K, V/Å, fs, eV/Å (force deviation), e (Born-charge deviation).
Every random choice (rattles, strains, which frames get Born charges, the selection) comes from ``seed``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ionfield.models.settings import Settings, SettingsError, is_integer, is_number

from .trust import TrustLevels, TrustLevelsError


class ActiveLearningInputError(SettingsError):
    """Settings a run cannot start from; the message says what to change."""


@dataclasses.dataclass
class ActiveLearningSettings(Settings):
    """The loop's knobs: initial data, exploration grid, trust levels, selection cap, stopping rules."""

    input_error = ActiveLearningInputError
    label = 'active-learning setting'

    seed: int = 0
    # initial data (skipped when a dataset is given)
    initial_rattles: int = 4
    rattle_stdev: float = 0.05
    initial_strains: int = 2
    max_strain: float = 0.02
    initial_bec_fraction: float = 0.25  # share of the initial data with DFPT Born charges (seed structures first)
    bec_fraction: float = 0.25  # share of every selected batch that also gets DFPT Born charges
    # frames with more atoms never get DFPT (its cost grows as N^2-N^3 and a defect cell has no symmetry): the
    # Born charges then come from the small cells; None: no limit
    bec_max_atoms: int | None = None
    # exploration grid: every structure x temperature x field
    temperatures_K: list[float] = dataclasses.field(default_factory=lambda: [300.0, 600.0])  # noqa: N815
    fields: list[list[float]] = dataclasses.field(default_factory=lambda: [[0.0, 0.0, 0.0], [0.0, 0.0, 0.05]])
    md_steps: int = 500
    md_timestep_fs: float = 1.0
    md_sample_every: int = 10  # a trajectory frame and a committee evaluation every this many steps
    md_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # any other MDSettings key
    md_stop_factor: float = 2.0  # an MD run stops when a deviation exceeds this x the upper trust level
    # trust levels (lower, upper) on the committee deviation
    force_trust: list[float] = dataclasses.field(default_factory=lambda: [0.05, 0.25])
    bec_trust: list[float] | None = dataclasses.field(default_factory=lambda: [0.05, 0.25])
    adapt_trust: bool = False  # rescale the levels by the measured error/deviation ratio after each labelling
    # selection and budget
    max_selected: int = 8  # frames labelled per iteration
    max_labels: int | None = None  # DFT labels in all (initial data included); None: no limit
    # stopping
    max_iterations: int = 5
    converged_fraction: float = 0.99
    converged_iterations: int = 2
    # failures
    min_md_success_fraction: float = 0.5
    min_label_success_fraction: float = 0.5
    # training
    warm_start: bool = True
    final_training: bool = True

    @property
    def trust(self) -> TrustLevels:
        bec = self.bec_trust
        return TrustLevels(self.force_trust[0], self.force_trust[1], *(bec if bec is not None else (None, None)))

    @property
    def grid(self) -> list[tuple[float, tuple[float, float, float]]]:
        """(temperature, field) pairs, in a fixed order."""
        return [(float(t), tuple(float(x) for x in field)) for t in self.temperatures_K for field in self.fields]

    def problems(self) -> list[str]:
        problems = []
        for name in ('initial_rattles', 'initial_strains'):
            if not is_integer(getattr(self, name), 0):
                problems.append(f'{name} must be a non-negative integer, got {getattr(self, name)!r}')
        if not is_integer(self.seed, 0):
            problems.append(f'seed must be a non-negative integer, got {self.seed!r}')
        for name in ('md_steps', 'md_sample_every', 'max_iterations', 'converged_iterations'):
            if not is_integer(getattr(self, name), 1):
                problems.append(f'{name} must be a positive integer, got {getattr(self, name)!r}')
        if not is_integer(self.max_selected, 1):
            problems.append(
                f'max_selected must be at least 1 (a budget of zero labels nothing), got {self.max_selected!r}'
            )
        if self.max_labels is not None and not is_integer(self.max_labels, 1):
            problems.append(f'max_labels must be a positive integer or null (no limit), got {self.max_labels!r}')
        if self.bec_max_atoms is not None and not is_integer(self.bec_max_atoms, 1):
            problems.append(f'bec_max_atoms must be a positive integer or null (no limit), got {self.bec_max_atoms!r}')
        for name in ('rattle_stdev', 'max_strain'):
            if not (is_number(getattr(self, name)) and getattr(self, name) >= 0):
                problems.append(f'{name} must be >= 0, got {getattr(self, name)!r}')
        for name in (
            'initial_bec_fraction',
            'bec_fraction',
            'converged_fraction',
            'min_md_success_fraction',
            'min_label_success_fraction',
        ):
            if not (is_number(getattr(self, name)) and 0 <= getattr(self, name) <= 1):
                problems.append(f'{name} must be in [0, 1], got {getattr(self, name)!r}')
        if not (is_number(self.md_timestep_fs) and 0 < self.md_timestep_fs <= 10):
            problems.append(f'md_timestep_fs must be in (0, 10], got {self.md_timestep_fs!r}')
        if not (is_number(self.md_stop_factor) and self.md_stop_factor >= 1):
            problems.append(
                f'md_stop_factor must be >= 1 (runs stop above factor x upper trust level), got {self.md_stop_factor!r}'
            )
        if not isinstance(self.temperatures_K, (list, tuple)) or not self.temperatures_K:
            problems.append('the exploration grid is empty: give at least one temperature in temperatures_K')
        elif not all(is_number(t) and t > 0 for t in self.temperatures_K):
            problems.append(f'temperatures_K must be positive numbers, got {self.temperatures_K!r}')
        if not isinstance(self.fields, (list, tuple)) or not self.fields:
            problems.append('the exploration grid is empty: give at least one field in fields (e.g. [[0, 0, 0]])')
        elif not all(_vector(f) for f in self.fields):
            problems.append(f'fields must be a list of 3-vectors in V/Å, got {self.fields!r}')
        if not isinstance(self.md_overrides, dict):
            problems.append(f'md_overrides must be a dict of MD settings, got {self.md_overrides!r}')
        else:
            owned = {'steps', 'timestep_fs', 'temperature_K', 'field', 'seed', 'trajectory_every', 'monitor_every'}
            clash = sorted(owned & set(self.md_overrides))
            if clash:
                problems.append(
                    f'md_overrides may not set {clash}: active learning sets them (use md_steps, the grid, ...)'
                )
        for name in ('force_trust', 'bec_trust'):
            value = getattr(self, name)
            if value is None and name == 'bec_trust':
                continue
            if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(x) for x in value)):
                problems.append(f'{name} must be [lower, upper], got {value!r}')
        if not problems:
            try:
                self.trust.validate()
            except TrustLevelsError as exc:
                problems.append(str(exc))
        return problems


def _vector(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 3 and all(is_number(x) for x in value)
