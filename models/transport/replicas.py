"""Replicas of one MD condition, checked and put in a common frame before any statistics.

Independent replicas (same system, same T and E, different seeds) are pooled: their particles
are treated as more samples of the same process, as kinisi does for "identical" trajectories.
That is only right if they are the same system sampled the same way, so this module refuses
replicas with different species or atom order and different frame spacing, trims them to a
common length (with a warning), drops the equilibration, and rotates Cartesian displacements
into the field frame, so that "along" is the field direction and "across" the plane normal to it.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from ionfield.models.md.trajectory import MDTrajectory
from ionfield.models.settings import Settings, SettingsError, is_integer, is_number

DEFAULT_MOBILE = ('Li', 'Ag', 'Na', 'K', 'Cu', 'Mg', 'Zn')
"""Species analysed as mobile when none are named: the ions of the project's electrolytes."""

FORMAL_CHARGES = {
    'H': 1,
    'Li': 1,
    'Na': 1,
    'K': 1,
    'Ag': 1,
    'Cu': 1,
    'Mg': 2,
    'Zn': 2,
    'Ca': 2,
    'N': -3,
    'P': 5,
    'O': -2,
    'S': -2,
    'F': -1,
    'Cl': -1,
    'Br': -1,
    'I': -1,
}
"""Formal ionic charges (e) for the Nernst-Einstein and collective conductivities."""

MIN_FRAMES = 10


class TransportInputError(SettingsError):
    """Trajectories or options that cannot be analysed; the message says what to change."""


@dataclasses.dataclass
class AnalysisOptions(Settings):
    """How trajectories are analysed. Times in fs, lengths in Å."""

    input_error = TransportInputError
    label = 'analysis option'

    mobile_species: tuple[str, ...] | None = None  # None: the DEFAULT_MOBILE species present
    charges: dict[str, float] = dataclasses.field(default_factory=dict)  # overrides FORMAL_CHARGES
    equilibration_fs: float = 0.0  # dropped from the start of every replica
    max_lag_fraction: float = 0.5  # longest time interval, as a share of the (trimmed) run
    fit_start_fraction: float = 0.2  # the diffusive fit starts at this share of the longest interval
    n_intervals: int = 60  # time intervals at which MSDs are evaluated
    min_msd_A2: float = 1.0  # noqa: N815 - below this at the longest interval: ions only rattle, no fit
    min_loglog_slope: float = 0.6  # below this (d log MSD / d log t in the fit window): caged, no fit
    n_samples: int = 400  # MCMC samples per walker (kinisi)
    seed: int = 0

    @classmethod
    def _normalise(cls, values: dict[str, Any]) -> dict[str, Any]:
        if values.get('mobile_species') is not None:
            values['mobile_species'] = tuple(values['mobile_species'])
        return values

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        values['mobile_species'] = list(self.mobile_species) if self.mobile_species is not None else None
        return values

    def problems(self) -> list[str]:
        problems = []
        for name in ('max_lag_fraction', 'fit_start_fraction'):
            value = getattr(self, name)
            if not (is_number(value) and 0 < value <= 1):
                problems.append(f'{name} must be in (0, 1], got {value!r}')
        for name in ('equilibration_fs', 'min_msd_A2', 'min_loglog_slope'):
            value = getattr(self, name)
            if not (is_number(value) and value >= 0):
                problems.append(f'{name} must be >= 0, got {value!r}')
        for name, low in (('n_intervals', 4), ('n_samples', 50)):
            value = getattr(self, name)
            if not is_integer(value, low):
                problems.append(f'{name} must be an integer >= {low}, got {value!r}')
        if not is_integer(self.seed, 0):
            problems.append(f'seed must be a non-negative integer, got {self.seed!r}')
        for species, charge in self.charges.items():
            if species not in chemical_symbols or not is_number(charge):
                problems.append(f'charges: {species!r}: {charge!r} is not an element and a number')
        return problems

    def charge(self, species: str) -> float:
        if species in self.charges:
            return float(self.charges[species])
        if species in FORMAL_CHARGES:
            return float(FORMAL_CHARGES[species])
        raise TransportInputError(
            f'no formal charge known for {species}: give it, e.g. charges={{"{species}": 1}} (in e)'
        )


def rotation_to_field(field: Sequence[float]) -> np.ndarray:
    """The rotation R (3, 3) with R @ n = z for the field direction n; the identity at E = 0.

    Rotated displacements are ``d @ R.T``: their z component is along E, x and y are across.
    """
    field = np.asarray(field, dtype=float)
    norm = float(np.linalg.norm(field))
    if norm == 0:
        return np.eye(3)
    n = field / norm
    z = np.array([0.0, 0.0, 1.0])
    c = float(n @ z)
    if c > 1 - 1e-12:
        return np.eye(3)
    if c < -1 + 1e-12:
        return np.diag([1.0, -1.0, -1.0])
    v = np.cross(n, z)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


@dataclasses.dataclass
class ReplicaSet:
    """Replicas of one condition on a common time grid: displacements relative to the first frame."""

    numbers: np.ndarray  # (N,)
    frame_fs: float  # time between frames
    displacements: np.ndarray  # (R, T, N, 3) Å, Cartesian, drift NOT removed
    volume_A3: float  # noqa: N815 - mean cell volume
    warnings: list[str]

    @property
    def symbols(self) -> list[str]:
        return [chemical_symbols[z] for z in self.numbers]

    @property
    def n_replicas(self) -> int:
        return self.displacements.shape[0]

    @property
    def n_frames(self) -> int:
        return self.displacements.shape[1]

    @property
    def duration_fs(self) -> float:
        return (self.n_frames - 1) * self.frame_fs

    def indices(self, species: str) -> np.ndarray:
        return np.flatnonzero(self.numbers == chemical_symbols.index(species))

    def mobile_species(self, options: AnalysisOptions) -> list[str]:
        present = set(self.symbols)
        if options.mobile_species is None:
            mobile = [s for s in DEFAULT_MOBILE if s in present]
            if not mobile:
                raise TransportInputError(
                    f'none of the usual mobile ions {DEFAULT_MOBILE} is in {sorted(present)}: name mobile_species'
                )
            return mobile
        missing = sorted(set(options.mobile_species) - present)
        if missing:
            raise TransportInputError(f'mobile species {missing} are not in the trajectory (it has {sorted(present)})')
        return list(options.mobile_species)

    def framework_corrected(self, mobile: Sequence[str]) -> np.ndarray:
        """Displacements minus the mean displacement of the framework (every atom not mobile).

        Under a field the framework moves opposite to the mobile ions (the net force is zero), and a
        thermostat lets the centre of mass wander: transport is measured relative to the lattice.
        """
        mobile_z = {chemical_symbols.index(s) for s in mobile}
        framework = np.array([z not in mobile_z for z in self.numbers])
        if not framework.any():
            return self.displacements
        return self.displacements - self.displacements[:, :, framework].mean(axis=2, keepdims=True)

    @classmethod
    def from_trajectories(cls, trajectories: Sequence[MDTrajectory], equilibration_fs: float = 0.0) -> ReplicaSet:
        if not trajectories:
            raise TransportInputError('no trajectory to analyse')
        warnings = []
        first = trajectories[0]
        reference = Counter(first.numbers.tolist())
        spacings = []
        for index, trajectory in enumerate(trajectories):
            if len(trajectory) < 2:
                raise TransportInputError(f'replica {index} has {len(trajectory)} frame(s): nothing to analyse')
            if not np.array_equal(trajectory.numbers, first.numbers):
                counts = Counter(trajectory.numbers.tolist())
                what = _formula(counts) if counts != reference else 'the same formula in another atom order'
                raise TransportInputError(
                    f'replica {index} is {what} but replica 0 is {_formula(reference)}: replicas must be the same '
                    'system (same species in the same order); analyse different systems as different conditions'
                )
            gaps = np.diff(trajectory.times_fs)
            if not np.allclose(gaps, gaps[0], rtol=1e-6, atol=1e-9) or gaps[0] <= 0:
                raise TransportInputError(
                    f'replica {index}: frames are not evenly spaced in time (a restart with another cadence?)'
                )
            spacings.append(float(gaps[0]))
        if not np.allclose(spacings, spacings[0], rtol=1e-6):
            raise TransportInputError(
                f'replicas are written at different intervals {sorted(set(spacings))} fs: use the same '
                'timestep and trajectory_every for all replicas'
            )
        frame_fs = spacings[0]
        skip = int(math.ceil(equilibration_fs / frame_fs - 1e-9)) if equilibration_fs > 0 else 0
        lengths = [len(t) - skip for t in trajectories]
        n_frames = min(lengths)
        if n_frames < MIN_FRAMES:
            raise TransportInputError(
                f'only {max(n_frames, 0)} frame(s) after {equilibration_fs:g} fs of equilibration '
                f'(need at least {MIN_FRAMES}): run longer or write frames more often'
            )
        if len(set(lengths)) > 1:
            warnings.append(
                f'replicas have {sorted(set(lengths))} frames after equilibration; all are trimmed to {n_frames} '
                f'({(n_frames - 1) * frame_fs / 1000:g} ps), the shortest'
            )
        displacements = np.empty((len(trajectories), n_frames, len(first.numbers), 3))
        volumes = []
        for index, trajectory in enumerate(trajectories):
            positions = trajectory.positions[skip : skip + n_frames]
            displacements[index] = positions - positions[0]
            volumes.append(np.abs(np.linalg.det(trajectory.cells[skip : skip + n_frames])).mean())
        return cls(
            numbers=np.asarray(first.numbers),
            frame_fs=frame_fs,
            displacements=displacements,
            volume_A3=float(np.mean(volumes)),
            warnings=warnings,
        )


def _formula(counts: Counter) -> str:
    return ''.join(f'{chemical_symbols[z]}{n}' for z, n in sorted(counts.items()))
