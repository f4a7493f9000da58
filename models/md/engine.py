"""The field-MD loop (ASE backend): integrate, monitor, stop with a reason, write as it goes.

``run_field_md(atoms, model, settings, workdir)`` runs ``settings.steps`` steps of the chosen
ensemble with :class:`~.calculator.FieldCalculator` forces and writes, in ``workdir``:

* the trajectory (:mod:`.trajectory`, every ``trajectory_every`` steps, step 0 included);
* ``thermo.csv`` (every ``log_every`` steps) and, with a committee, ``uncertainty.csv`` (every
  ``monitor_every`` steps), see :mod:`.logs`;
* ``state.npz`` (every ``checkpoint_every`` steps and at the end): what ``restart=`` continues from.

The model that drives the dynamics is ``model``; ``committee`` (other members, same species) is
evaluated on the driver's frames every ``monitor_every`` steps, so a committee costs (M - 1) model
calls per monitored step, not per step.

A run ends ``completed`` or with the first stop condition met (:mod:`.stops`). The frame at which
the condition was detected is written before stopping, so the data show what went wrong.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from ionfield.models.keys import BORN_CHARGES, FIELD_FORCES
from ionfield.models.potential.disagreement import combine

from .field_calculator import FieldCalculator, FieldMDInputError
from .logs import THERMO_COLUMNS, THERMO_FILE, UNCERTAINTY_COLUMNS, UNCERTAINTY_FILE, CsvLog
from .settings import MDInputError, MDSettings
from .stops import (
    COMPLETED,
    FAILED,
    NOT_FINITE,
    Stop,
    StopMD,
    check_contacts,
    check_finite,
    check_temperature,
    check_uncertainty,
)
from .trajectory import FILE_NAMES, WRITERS

STATE_FILE = 'state.npz'


@dataclasses.dataclass
class MDResult:
    """How a run ended and what it cost."""

    stop_reason: str
    message: str
    step: int
    time_fs: float
    frames_written: int
    wall_time_s: float
    model_time_s: float
    model_calls: int
    monitor_time_s: float
    trajectory_file: str
    max_force_deviation: float | None = None
    max_bec_deviation: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def record_uncertainty(prediction, log: CsvLog, worst: dict, settings: MDSettings, step: int, time_fs: float):
    """Log a committee prediction (both backends), keep the run's worst deviations; the stop it calls for."""
    log.write(
        step=step,
        time_fs=time_fs,
        energy_std_per_atom_eV=prediction.energy_std_per_atom,
        max_force_deviation_eV_A=prediction.max_force_deviation,
        max_bec_deviation_e=prediction.max_bec_deviation,
    )
    for key, value in (('force', prediction.max_force_deviation), ('bec', prediction.max_bec_deviation)):
        if value is not None and (worst[key] is None or value > worst[key]):
            worst[key] = value
    return check_uncertainty(prediction, settings, step)


def make_dynamics(atoms: Atoms, settings: MDSettings, rng: np.random.Generator):
    """The ASE integrator for ``settings.ensemble`` (time constants converted from fs)."""
    dt = settings.timestep_fs * units.fs
    if settings.ensemble == 'nve':
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=dt)
    if settings.ensemble == 'langevin':
        from ase.constraints import FixCom
        from ase.md.langevin import Langevin

        # with the sum rule the net field force is zero: the random kicks alone must not move the centre of mass
        atoms.set_constraint(FixCom())
        return Langevin(
            atoms,
            timestep=dt,
            temperature_K=settings.temperature_K,
            friction=settings.friction_per_fs / units.fs,
            fixcm=False,
            rng=rng,
        )
    if settings.ensemble == 'bussi':
        from ase.md.bussi import Bussi

        return Bussi(
            atoms, timestep=dt, temperature_K=settings.temperature_K, taut=settings.taut_fs * units.fs, rng=rng
        )
    if settings.ensemble == 'nose_hoover':
        from ase.md.nose_hoover_chain import NoseHooverChainNVT

        return NoseHooverChainNVT(
            atoms, timestep=dt, temperature_K=settings.temperature_K, tdamp=settings.taut_fs * units.fs
        )
    from ase.md.nose_hoover_chain import IsotropicMTKNPT

    return IsotropicMTKNPT(
        atoms,
        timestep=dt,
        temperature_K=settings.temperature_K,
        pressure_au=settings.pressure_GPa * units.GPa,
        tdamp=settings.taut_fs * units.fs,
        pdamp=settings.taup_fs * units.fs,
    )


def save_state(path: Path, atoms: Atoms, step: int, time_fs: float, field_work: float, rng) -> None:
    """Positions, momenta, cell, counters and the thermostat's random state, written atomically."""
    tmp = path.with_suffix('.tmp.npz')
    np.savez(
        tmp,
        numbers=atoms.numbers,
        positions=atoms.positions,
        momenta=atoms.get_momenta(),
        cell=atoms.cell.array,
        pbc=atoms.pbc,
        step=step,
        time_fs=time_fs,
        field_work=field_work,
        rng_state=json.dumps(rng.bit_generator.state),
    )
    tmp.replace(path)


def load_state(path: Path, atoms: Atoms) -> dict:
    """The saved state, checked against the structure (same species, same order)."""
    try:
        with np.load(path) as data:
            state = {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError) as exc:
        raise MDInputError(f'{path}: not a readable MD state file ({exc})') from exc
    if not np.array_equal(state['numbers'], atoms.numbers):
        raise MDInputError(f'{path}: the state is of a different structure (species or order differ)')
    return state


class FieldMD:
    """One run; see the module docstring. ``run()`` returns an :class:`MDResult`."""

    def __init__(
        self,
        atoms: Atoms,
        model,
        settings: MDSettings,
        workdir: str | Path,
        committee: Sequence = (),
        restart: str | Path | None = None,
    ):
        settings.validate()
        if settings.max_force_deviation is not None or settings.max_bec_deviation is not None:
            if not committee:
                raise MDInputError('uncertainty bounds were set but there is no committee to measure uncertainty')
        self.settings = settings
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.committee = list(committee)
        self.atoms = atoms.copy()
        self.atoms.calc = self.calc = FieldCalculator(model, settings.field, settings.bec_mode)
        self.step0, self.time0, self.field_work = 0, 0.0, 0.0
        self.rng = np.random.default_rng([settings.seed, 1])
        self.restart = restart
        if restart is not None:
            state = load_state(Path(restart), self.atoms)
            self.atoms.set_cell(state['cell'])
            self.atoms.positions = state['positions']
            self.atoms.set_momenta(state['momenta'])
            self.step0, self.time0 = int(state['step']), float(state['time_fs'])
            self.field_work = float(state['field_work'])
            self.rng.bit_generator.state = json.loads(str(state['rng_state']))
        elif settings.initial_velocities and settings.temperature_K > 0:
            MaxwellBoltzmannDistribution(
                self.atoms, temperature_K=settings.temperature_K, rng=np.random.default_rng([settings.seed, 0])
            )
            Stationary(self.atoms)
        self.monitor_time = 0.0
        self.frames = 0
        self.worst = {'force': None, 'bec': None}

    # --- per-step work --------------------------------------------------------------------------

    def _time_fs(self, step: int) -> float:
        return self.time0 + (step - self.step0) * self.settings.timestep_fs

    def _thermo(self, step: int) -> None:
        atoms = self.atoms
        volume = atoms.get_volume() if all(atoms.pbc) else float('nan')
        pressure = float('nan')
        if 'stress' in self.calc.results:
            ideal = atoms.get_kinetic_energy() * 2 / 3 / volume
            stress = np.asarray(self.calc.results['stress'])
            normal = stress[:3] if stress.shape == (6,) else np.diag(stress)  # ASE's Voigt order starts xx, yy, zz
            pressure = (-normal.sum() / 3 + ideal) / units.GPa
        e_pot, e_kin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        self.thermo.write(
            step=step,
            time_fs=self._time_fs(step),
            temperature_K=atoms.get_temperature(),
            potential_energy_eV=e_pot,
            kinetic_energy_eV=e_kin,
            field_work_eV=self.field_work,
            conserved_eV=e_pot + e_kin - self.field_work,
            pressure_GPa=pressure,
            volume_A3=volume,
        )

    def _monitor(self, step: int) -> Stop | None:
        started = time.perf_counter()
        driver = self.calc.model.results
        energies, forces, borns = [driver['energy']], [driver['forces']], [driver.get(BORN_CHARGES)]
        for member in self.committee:
            work = Atoms(
                numbers=self.atoms.numbers, positions=self.atoms.positions, cell=self.atoms.cell, pbc=self.atoms.pbc
            )
            member.calculate(work, ['energy', 'forces'])
            energies.append(member.results['energy'])
            forces.append(member.results['forces'])
            borns.append(member.results.get(BORN_CHARGES))
        prediction = combine(energies, forces, borns)
        self.monitor_time += time.perf_counter() - started
        return record_uncertainty(prediction, self.uncertainty, self.worst, self.settings, step, self._time_fs(step))

    def _write_frame(self, step: int) -> None:
        self.trajectory.append(step, self._time_fs(step), self.atoms)
        self.frames += 1

    def _accumulate_field_work(self) -> None:
        """W += sum_i 0.5 (F_field_i(t) + F_field_i(t + dt)) . (r_i(t + dt) - r_i(t)) (trapezoid rule)."""
        if not self.calc.field_on:
            return
        positions, field_now = self.atoms.positions.copy(), self.calc.results[FIELD_FORCES].copy()
        if self.previous is not None:
            old_positions, old_field = self.previous
            self.field_work += float(np.sum(0.5 * (old_field + field_now) * (positions - old_positions)))
        self.previous = (positions, field_now)

    def _observe(self, step: int) -> None:
        """Everything after a step (or at the start); raises :class:`StopMD` to end the run."""
        s = self.settings
        self._accumulate_field_work()
        first_of_restart = self.restart is not None and step == self.step0  # its rows and frame already exist
        stop = check_finite(self.atoms, self.calc.results['forces'], step)
        if stop is None and step % s.log_every == 0:
            stop = check_temperature(self.atoms.get_temperature(), s.temperature_limit, step) or check_contacts(
                self.atoms, s.min_distance, step
            )
        if stop is None and self.committee and step % s.monitor_every == 0 and not first_of_restart:
            stop = self._monitor(step)
        if stop is not None and stop.reason == NOT_FINITE:
            raise StopMD(stop)  # nothing finite to write; the frames before are kept
        if (stop is not None or step % s.log_every == 0) and not first_of_restart:
            self._thermo(step)
        if (stop is not None or step % s.trajectory_every == 0) and not first_of_restart:
            self._write_frame(step)
        if stop is not None:
            raise StopMD(stop)
        if step % s.checkpoint_every == 0 and step != self.step0:
            save_state(self.workdir / STATE_FILE, self.atoms, step, self._time_fs(step), self.field_work, self.rng)

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> MDResult:
        s = self.settings
        keep = self.step0 if self.restart is not None else None
        trajectory_file = FILE_NAMES[s.trajectory_format]
        self.trajectory = WRITERS[s.trajectory_format](
            self.workdir / trajectory_file, self.atoms, velocities=s.save_velocities, keep_until_step=keep
        )
        self.thermo = CsvLog(self.workdir / THERMO_FILE, THERMO_COLUMNS, keep_until_step=keep)
        self.uncertainty = (
            CsvLog(self.workdir / UNCERTAINTY_FILE, UNCERTAINTY_COLUMNS, keep_until_step=keep)
            if self.committee
            else None
        )
        self.previous = None
        dynamics = make_dynamics(self.atoms, s, self.rng)
        step_of = lambda: self.step0 + dynamics.nsteps  # noqa: E731
        started = time.perf_counter()
        stop = Stop(COMPLETED, self.step0 if s.steps <= self.step0 else s.steps, 'all steps done')
        try:
            self.atoms.get_forces()  # the first model call: refuses a model without Z* under a field
            # ASE calls observers once before the first step (our step0) and after every step
            dynamics.attach(lambda: self._observe(step_of()), interval=1)
            dynamics.run(max(0, s.steps - self.step0))
        except StopMD as stopped:
            stop = stopped.stop
        except FieldMDInputError as exc:
            raise MDInputError(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - a model or integrator failure ends the run, frames kept
            reason = NOT_FINITE if not np.isfinite(self.atoms.positions).all() else FAILED
            stop = Stop(reason, step_of(), f'{type(exc).__name__}: {exc}')
        finally:
            self.trajectory.close()
            self.thermo.close()
            if self.uncertainty is not None:
                self.uncertainty.close()
        if stop.reason == COMPLETED:
            save_state(
                self.workdir / STATE_FILE, self.atoms, stop.step, self._time_fs(stop.step), self.field_work, self.rng
            )
        return MDResult(
            stop_reason=stop.reason,
            message=stop.message,
            step=stop.step,
            time_fs=self._time_fs(stop.step),
            frames_written=self.frames,
            wall_time_s=round(time.perf_counter() - started, 3),
            model_time_s=round(self.calc.model_time, 3),
            model_calls=self.calc.model_calls,
            monitor_time_s=round(self.monitor_time, 3),
            trajectory_file=trajectory_file,
            max_force_deviation=self.worst['force'],
            max_bec_deviation=self.worst['bec'],
        )


def run_field_md(
    atoms: Atoms, model, settings: MDSettings, workdir, committee: Sequence = (), restart=None
) -> MDResult:
    """Run one field-MD simulation; see :class:`FieldMD`."""
    return FieldMD(atoms, model, settings, workdir, committee=committee, restart=restart).run()
