"""Settings of the pipeline (``ionfield run``): which cells it explores and simulates, and how defects are made.

The pipeline explores what its campaign simulates: the active-learning grid is made from the campaign's
settings (:func:`exploration_grid`), its seed structures are the primitive cell (cheap DFPT: the Born
charges) and an explorable cell with the campaign's own defect, and :func:`coverage_problems` refuses a
campaign whose temperatures or fields leave the explored grid. Units: K, V/Å.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ionfield.models.settings import Settings, SettingsError, is_integer
from ionfield.models.structures.defects import DEFECT_MODES, DefectError, DefectSpec


class PipelineInputError(SettingsError):
    """Pipeline settings that cannot run; the message says what to change."""


@dataclasses.dataclass
class PipelineSettings(Settings):
    """The systems of one pipeline run and the gate between validation and the campaign."""

    input_error = PipelineInputError
    label = 'pipeline setting'

    mobile_species: str = 'Li'
    supercell: list[int] = dataclasses.field(default_factory=lambda: [3, 3, 3])  # the campaign's cell
    explore_supercell: list[int] | None = None  # the explored defect cell; None: the campaign's own
    explore_primitive: bool = True  # also explore the primitive cell (cheap DFPT Born charges)
    defect: dict[str, Any] = dataclasses.field(default_factory=lambda: {'mode': 'charged', 'count': 1})
    oxidation_states: dict[str, float] | None = None  # None: pymatgen's guess on the composition
    override_validation: bool = False  # go on to the campaign when validation fails (the report says so)
    seed: int = 0

    @property
    def defect_spec(self) -> DefectSpec:
        values = {'species': self.mobile_species, **self.defect}
        return DefectSpec(**values)

    @property
    def explore_cell(self) -> list[int]:
        return list(self.explore_supercell) if self.explore_supercell is not None else list(self.supercell)

    def problems(self) -> list[str]:
        problems = []
        if not isinstance(self.mobile_species, str) or not self.mobile_species:
            problems.append(f'mobile_species must be an element symbol, got {self.mobile_species!r}')
        for name in ('supercell', 'explore_supercell'):
            value = getattr(self, name)
            if value is None and name == 'explore_supercell':
                continue
            if not (isinstance(value, (list, tuple)) and len(value) == 3 and all(is_integer(n, 1) for n in value)):
                problems.append(f'{name} must be three positive integers (a diagonal supercell), got {value!r}')
        if not isinstance(self.defect, dict) or 'species' in (self.defect or {}):
            problems.append(
                f'defect must be a dict of mode and count (the species is mobile_species), got {self.defect!r}'
            )
        else:
            try:
                _ = self.defect_spec
            except (DefectError, TypeError) as exc:
                problems.append(f'defect: {exc} (modes: {", ".join(DEFECT_MODES)})')
        if self.oxidation_states is not None and not isinstance(self.oxidation_states, dict):
            problems.append(f'oxidation_states must be a dict element -> formal charge, got {self.oxidation_states!r}')
        if not is_integer(self.seed, 0):
            problems.append(f'seed must be a non-negative integer, got {self.seed!r}')
        return problems


def exploration_grid(campaign: dict) -> dict:
    """The active-learning grid that covers a campaign: its temperatures (up to its highest) and its fields."""
    temperatures = sorted({float(t) for t in campaign['temperatures_K']})
    fields = []
    for field in campaign['fields']:
        field = [float(x) for x in field]
        if field not in fields:
            fields.append(field)
    if [0.0, 0.0, 0.0] not in fields:
        fields.insert(0, [0.0, 0.0, 0.0])
    return {'temperatures_K': temperatures, 'fields': fields}


def coverage_problems(explored: dict, campaign: dict, tolerance: float = 1e-9) -> list[str]:
    """Why the campaign leaves the explored grid (empty when it does not).

    A temperature above the highest explored one, or a field that no explored field of the same
    direction reaches in strength, is a condition the committee has not seen: its numbers would be
    extrapolations the validation never checked.
    """
    problems = []
    t_max = max(float(t) for t in explored['temperatures_K'])
    hotter = sorted(float(t) for t in campaign['temperatures_K'] if float(t) > t_max + tolerance)
    if hotter:
        problems.append(f'campaign temperatures {hotter} K lie above the highest explored, {t_max:g} K')
    explored_fields = [np.asarray(f, dtype=float) for f in explored['fields']]
    for field in campaign['fields']:
        field = np.asarray(field, dtype=float)
        strength = np.linalg.norm(field)
        if strength == 0:
            continue
        direction = field / strength
        reached = [
            np.linalg.norm(e)
            for e in explored_fields
            if np.linalg.norm(e) > 0 and np.allclose(e / np.linalg.norm(e), direction, atol=1e-6)
        ]
        if not reached or max(reached) < strength - tolerance:
            best = f'at most {max(reached):g} V/Å' if reached else 'no field'
            problems.append(f'campaign field {field.tolist()} V/Å: the exploration had {best} along that direction')
    return problems
