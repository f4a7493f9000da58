"""Stop conditions of field MD, each with its own reason (and, in ``ionfield-md``, its own status).

* ``uncertainty``: the committee's max force deviation or max Z* deviation is above its bound,
  the model is extrapolating (in active learning these frames are what gets labelled next);
* ``close_contact``: two atoms closer than ``min_distance`` (a hole in the potential);
* ``temperature_runaway``: the temperature is above its limit (energy is not conserved, or the
  field heats the system faster than the thermostat can remove it);
* ``nan``: non-finite positions or forces (a timestep that blows up, a broken model);
* ``failed``: the model or the integrator raised an error.

The checks are plain functions of arrays so they are tested without running dynamics.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import Atoms

COMPLETED = 'completed'
UNCERTAINTY = 'uncertainty'
CLOSE_CONTACT = 'close_contact'
TEMPERATURE_RUNAWAY = 'temperature_runaway'
NOT_FINITE = 'nan'
FAILED = 'failed'
STOP_REASONS = (COMPLETED, UNCERTAINTY, CLOSE_CONTACT, TEMPERATURE_RUNAWAY, NOT_FINITE, FAILED)


@dataclasses.dataclass(frozen=True)
class Stop:
    reason: str
    step: int
    message: str


class StopMD(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside the dynamics loop to end it with a :class:`Stop`."""

    def __init__(self, stop: Stop):
        super().__init__(stop.message)
        self.stop = stop


def check_finite(atoms: Atoms, forces: np.ndarray, step: int) -> Stop | None:
    if not np.isfinite(atoms.positions).all():
        return Stop(
            NOT_FINITE, step, f'non-finite positions at step {step}: the timestep is too large or the model broke'
        )
    if not np.isfinite(forces).all():
        bad = np.flatnonzero(~np.isfinite(forces).all(axis=1))
        return Stop(NOT_FINITE, step, f'non-finite forces at step {step} on atoms {bad[:10].tolist()}')
    return None


def check_temperature(temperature: float, limit: float, step: int) -> Stop | None:
    if temperature > limit:
        return Stop(
            TEMPERATURE_RUNAWAY,
            step,
            f'temperature {temperature:.0f} K above the limit {limit:.0f} K at step {step}: '
            'reduce the timestep or the field, or raise max_temperature_K',
        )
    return None


def check_contacts(atoms: Atoms, min_distance: float, step: int) -> Stop | None:
    if min_distance <= 0:
        return None
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list('ijd', atoms, min_distance)
    if len(d) == 0:
        return None
    k = int(np.argmin(d))
    return Stop(
        CLOSE_CONTACT,
        step,
        f'atoms {int(i[k])} and {int(j[k])} are {d[k]:.3f} Å apart (< {min_distance} Å) at step {step}',
    )


def check_uncertainty(prediction, settings, step: int) -> Stop | None:
    """``prediction``: a :class:`~ionfield.models.potential.disagreement.FramePrediction`; bounds from the settings."""
    checks = (
        ('max force deviation', prediction.max_force_deviation, settings.max_force_deviation, 'eV/Å'),
        ('max Z* deviation', prediction.max_bec_deviation, settings.max_bec_deviation, 'e'),
    )
    for name, value, bound, unit in checks:
        if bound is not None and value is not None and value > bound:
            return Stop(UNCERTAINTY, step, f'committee {name} {value:.4g} {unit} above {bound} {unit} at step {step}')
    return None
