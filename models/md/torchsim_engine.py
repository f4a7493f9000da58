"""The field-MD loop, TorchSim backend: many runs in one process, batched on one device.

``BatchedFieldMD(runs, model, committee, device).run()`` (``ionfield-md --batch``, :func:`.runner.run_batch`)
runs every :class:`BatchRun` (its own structure, :class:`~.settings.MDSettings` and workdir) with TorchSim's
integrators and writes, per run, the files of the ASE backend (:mod:`.engine`): the trajectory,
``thermo.csv``, ``uncertainty.csv`` with a committee, ``state.npz``; so the analysis and ``MDCalculation``
do not know which backend ran.

What is batched: the model call (one graph of all systems, nequip's TorchSim integration with our Born-charge
head, :class:`FieldTorchSimModel`) and the integrator step, with each system's temperature, friction, field
and Z* mode. A run that ends (its steps done, or a stop condition of :mod:`.stops`) writes its last frame and
leaves the batch; the others go on.

Ensembles (TorchSim 0.6):

* ``langevin``: BAOAB Langevin (``nvt_langevin``), centre of mass fixed (``FixCom``, as the ASE backend);
* ``nve``: velocity Verlet (``nve``);
* ``bussi``: stochastic velocity rescaling (``nvt_vrescale``, Bussi, Donadio & Parrinello 2007), ``taut_fs``;
* ``nose_hoover``: Nosé-Hoover chain (``nvt_nose_hoover``, Martyna et al. 1996), ``taut_fs``.

``npt`` is refused: the ASE backend's is isotropic MTK, and no TorchSim barostat has been checked against it.

What differs from the ASE backend, by construction: the thermostat noise is one stream for the batch (a torch
generator seeded from the runs' seeds), so a run is reproducible with the same batch, not alone; a restart
continues positions, momenta, step and field work, and a fresh noise stream seeded from (seed, step). The
initial velocities are the ASE backend's (the same Maxwell-Boltzmann draw from ``seed``), so both backends
start a run from the same phase-space point.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from ionfield.models.keys import BORN_CHARGES, FIELD_FORCES
from ionfield.models.potential.disagreement import combine

from .engine import STATE_FILE, MDResult, load_state, record_uncertainty, save_state
from .field_torch import MODE_INDEX, field_work_increment
from .logs import THERMO_COLUMNS, THERMO_FILE, UNCERTAINTY_COLUMNS, UNCERTAINTY_FILE, CsvLog
from .settings import MDInputError, MDSettings
from .stops import COMPLETED, FAILED, NOT_FINITE, Stop, check_contacts, check_temperature
from .trajectory import FILE_NAMES, WRITERS

#: Our ensembles and the TorchSim integrators that run them.
ENSEMBLES = {'langevin': 'nvt_langevin', 'nve': 'nve', 'bussi': 'nvt_vrescale', 'nose_hoover': 'nvt_nose_hoover'}
#: Settings every run of one batch must share (one integrator step for all).
SHARED = ('ensemble', 'timestep_fs')


def torchsim_problem() -> str | None:
    """Why the TorchSim backend cannot run here (``None`` when it can)."""
    try:
        import torch_sim  # noqa: F401
        from nequip.integrations.torchsim import NequIPTorchSimCalc  # noqa: F401
    except ImportError as exc:
        return (
            f'the torchsim backend needs torch-sim-atomistic (the `gpu` extra, Python >= 3.12): {exc}; '
            'use backend "ase"'
        )
    return None


@dataclasses.dataclass
class BatchRun:
    """One run of a batch: its start structure, settings, output folder and optional ``state.npz``."""

    atoms: Atoms
    settings: MDSettings
    workdir: Path
    restart: Path | None = None


def batch_problems(runs: Sequence[BatchRun]) -> list[str]:
    """What makes ``runs`` unfit for one batch: an ensemble TorchSim cannot do, settings that differ."""
    problems = []
    if not runs:
        return ['no runs to batch']
    for index, run in enumerate(runs):
        if run.settings.ensemble not in ENSEMBLES:
            problems.append(
                f'run {index}: the torchsim backend offers {sorted(ENSEMBLES)}, not {run.settings.ensemble!r} '
                '(npt runs on backend "ase")'
            )
    for name in SHARED:
        values = {getattr(run.settings, name) for run in runs}
        if len(values) > 1:
            problems.append(f'one batch needs one {name}, got {sorted(values)}: batch them apart')
    workdirs = [Path(run.workdir).resolve() for run in runs]
    if len(set(workdirs)) != len(workdirs):
        problems.append('every run of a batch needs its own workdir')
    return problems


def load_batch_model(path: str | Path, device: str = 'cpu', field: bool = True):
    """A :class:`FieldTorchSimModel` (``field``) or plain nequip TorchSim model of a saved or compiled model."""
    from ionfield.models.potential.calculator import ModelFileError, model_kind

    from .field_torch_model import FieldTorchSimModel, PlainTorchSimModel

    path = Path(path)
    kind = model_kind(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise ModelFileError(f'{path}: model file is missing or empty')
    cls = FieldTorchSimModel if field else PlainTorchSimModel
    try:
        if kind == 'compiled':
            return cls.from_compiled_model(str(path), device=device, chemical_species_to_atom_type_map=True)
        return cls._from_saved_model(str(path), device=device, chemical_species_to_atom_type_map=True)
    except Exception as exc:  # torch/zipfile raise many kinds for a damaged file
        raise ModelFileError(f'{path}: cannot load the model ({type(exc).__name__}: {exc})') from exc


class _Run:
    """Per-run bookkeeping: the ASE view of its system, writers, counters; the batch holds the dynamics."""

    def __init__(self, run: BatchRun):
        self.settings = s = run.settings
        self.workdir = Path(run.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.atoms = run.atoms.copy()
        self.atoms.calc = None
        self.step0, self.time0, self.field_work = 0, 0.0, 0.0
        self.restart = run.restart
        if run.restart is not None:
            state = load_state(Path(run.restart), self.atoms)
            self.atoms.set_cell(state['cell'])
            self.atoms.positions = state['positions']
            self.atoms.set_momenta(state['momenta'])
            self.step0, self.time0 = int(state['step']), float(state['time_fs'])
            self.field_work = float(state['field_work'])
        elif s.initial_velocities and s.temperature_K > 0:
            MaxwellBoltzmannDistribution(
                self.atoms, temperature_K=s.temperature_K, rng=np.random.default_rng([s.seed, 0])
            )
            Stationary(self.atoms)
        keep = self.step0 if run.restart is not None else None
        self.trajectory_file = FILE_NAMES[s.trajectory_format]
        self.trajectory = WRITERS[s.trajectory_format](
            self.workdir / self.trajectory_file, self.atoms, velocities=s.save_velocities, keep_until_step=keep
        )
        self.thermo = CsvLog(self.workdir / THERMO_FILE, THERMO_COLUMNS, keep_until_step=keep)
        self.uncertainty = None
        self.frames, self.monitor_time = 0, 0.0
        self.worst = {'force': None, 'bec': None}
        self.stop: Stop | None = None
        self.rng_state = np.random.default_rng([s.seed, 1])  # state.npz keeps a generator state, as ASE's does

    def open_uncertainty(self) -> None:
        keep = self.step0 if self.restart is not None else None
        self.uncertainty = CsvLog(self.workdir / UNCERTAINTY_FILE, UNCERTAINTY_COLUMNS, keep_until_step=keep)

    def time_fs(self, step: int) -> float:
        return self.time0 + (step - self.step0) * self.settings.timestep_fs

    def close(self) -> None:
        self.trajectory.close()
        self.thermo.close()
        if self.uncertainty is not None:
            self.uncertainty.close()


class BatchedFieldMD:
    """A batch of runs; see the module docstring. ``run()`` returns one :class:`MDResult` per run, in order."""

    def __init__(self, runs: Sequence[BatchRun], model, committee: Sequence = (), device: str = 'cpu'):
        problems = batch_problems(runs)
        if problems:
            raise MDInputError('; '.join(problems))
        for index, run in enumerate(runs):
            s = run.settings
            if (s.max_force_deviation is not None or s.max_bec_deviation is not None) and not committee:
                raise MDInputError(f'run {index}: uncertainty bounds were set but there is no committee')
        self.model, self.committee, self.device = model, list(committee), device
        self.runs = [_Run(run) for run in runs]
        if self.committee:
            for run in self.runs:
                run.open_uncertainty()
        self.ensemble = runs[0].settings.ensemble
        self.dt = runs[0].settings.timestep_fs * units.fs  # TorchSim's metal time unit is ASE's
        self.model_time, self.model_calls = 0.0, 0

    # --- batch state ------------------------------------------------------------------------------

    def _per_system(self, active: list[int]) -> dict:
        """Per-system tensors of the active runs: kT, friction, fields and Z* modes (per atom for the model)."""
        import torch

        kw = {'dtype': torch.float64, 'device': self.device}
        settings = [self.runs[i].settings for i in active]
        sizes = torch.tensor([len(self.runs[i].atoms) for i in active], device=self.device)
        fields = torch.tensor([list(s.field) for s in settings], **kw)
        modes = torch.tensor([MODE_INDEX[s.bec_mode] for s in settings], device=self.device)
        self.model.set_field(fields.repeat_interleave(sizes, dim=0), modes.repeat_interleave(sizes))
        values = {'kT': torch.tensor([s.temperature_K for s in settings], **kw) * units.kB}
        if self.ensemble == 'langevin':
            values['gamma'] = torch.tensor([s.friction_per_fs / units.fs for s in settings], **kw)
        if self.ensemble in ('bussi', 'nose_hoover'):
            values['tau'] = torch.tensor([s.taut_fs * units.fs for s in settings], **kw)
        return values

    def _initial_state(self, active: list[int]):
        import torch
        import torch_sim as ts

        state = ts.initialize_state([self.runs[i].atoms for i in active], self.device, torch.float64)
        seeds = [self.runs[i].settings.seed * 1_000_003 + self.runs[i].step0 for i in active]
        state.rng = int(np.random.SeedSequence(seeds).generate_state(1)[0])
        if self.ensemble == 'langevin':
            from torch_sim.constraints import FixCom

            state.constraints = [FixCom(system_idx=list(range(len(active))))]
        return state

    def _momenta(self, active: list[int]):
        import torch

        values = np.concatenate([self.runs[i].atoms.get_momenta() for i in active])
        return torch.tensor(values, dtype=torch.float64, device=self.device)

    # --- observation ------------------------------------------------------------------------------

    def _sync(self, position: int, index: int, state, field_work) -> _Run:
        """Copy system ``position`` of the batch into run ``index``'s ASE view (positions, momenta, results)."""
        run = self.runs[index]
        mask = (state.system_idx == position).nonzero().flatten()
        run.atoms.positions = state.positions[mask].detach().cpu().numpy()
        run.atoms.set_momenta(state.momenta[mask].detach().cpu().numpy(), apply_constraint=False)
        run.forces = state.forces[mask].detach().cpu().numpy()
        run.energy = float(state.energy[position])
        born = getattr(state, BORN_CHARGES, None)
        run.born = None if born is None else born[mask].detach().cpu().numpy()
        extra = getattr(state, FIELD_FORCES, None)
        run.field_forces = np.zeros_like(run.forces) if extra is None else extra[mask].detach().cpu().numpy()
        run.field_work = float(field_work[position])
        return run

    def _thermo(self, run: _Run, step: int, dof: int) -> None:
        e_kin = float(run.atoms.get_kinetic_energy())
        volume = run.atoms.get_volume() if all(run.atoms.pbc) else float('nan')
        run.thermo.write(
            step=step,
            time_fs=run.time_fs(step),
            temperature_K=2 * e_kin / (dof * units.kB),
            potential_energy_eV=run.energy,
            kinetic_energy_eV=e_kin,
            field_work_eV=run.field_work,
            conserved_eV=run.energy + e_kin - run.field_work,
            pressure_GPa=float('nan'),
            volume_A3=volume,
        )

    def _monitor(self, state, positions: list[int], steps: list[int]) -> dict[int, Stop]:
        """Committee disagreement on the driver's frames of the systems due for monitoring (one batched call
        per member); the stops it calls for, by batch position."""
        started = time.perf_counter()
        members = [member(state) for member in self.committee]
        stops = {}
        for position, step in zip(positions, steps, strict=True):
            run = self.runs[self.active[position]]
            mask = (state.system_idx == position).nonzero().flatten()
            energies, forces, borns = [run.energy], [run.forces - run.field_forces], [run.born]
            for out in members:
                energies.append(float(out['energy'][position]))
                forces.append(out['forces'][mask].detach().cpu().numpy())
                born = out.get(BORN_CHARGES)
                borns.append(None if born is None else born[mask].detach().cpu().numpy())
            prediction = combine(energies, forces, borns)
            stop = record_uncertainty(prediction, run.uncertainty, run.worst, run.settings, step, run.time_fs(step))
            if stop is not None:
                stops[position] = stop
        elapsed = time.perf_counter() - started
        for position in positions:
            self.runs[self.active[position]].monitor_time += elapsed / len(positions)
        return stops

    def _observe(self, state, k: int, field_work, finite) -> list[int]:
        """Everything after step ``k`` of the batch (or at its start): logs, frames, checkpoints, stops.
        Returns the batch positions of the runs that ended."""
        ended, due_monitor, due_steps = [], [], []
        stops: dict[int, Stop] = {}
        dofs = state.get_number_of_degrees_of_freedom().tolist()
        for position, index in enumerate(self.active):
            run = self.runs[index]
            s, step = run.settings, run.step0 + k
            first_of_restart = run.restart is not None and k == 0
            due = step % s.log_every == 0 or step % s.trajectory_every == 0 or step % s.checkpoint_every == 0
            due = due or step >= s.steps or not finite[position] or (self.committee and step % s.monitor_every == 0)
            if not due:
                continue
            self._sync(position, index, state, field_work)
            if not finite[position]:
                stops[position] = Stop(NOT_FINITE, step, f'non-finite forces or positions at step {step}')
                continue
            stop = None
            if step % s.log_every == 0:
                temperature = 2 * run.atoms.get_kinetic_energy() / (dofs[position] * units.kB)
                stop = check_temperature(temperature, s.temperature_limit, step) or check_contacts(
                    run.atoms, s.min_distance, step
                )
            if stop is not None:
                stops[position] = stop
            elif self.committee and step % s.monitor_every == 0 and not first_of_restart:
                due_monitor.append(position)
                due_steps.append(step)
        if due_monitor:
            stops.update(self._monitor(state, due_monitor, due_steps))
        for position, index in enumerate(self.active):
            run = self.runs[index]
            s, step = run.settings, run.step0 + k
            first_of_restart = run.restart is not None and k == 0
            stop = stops.get(position)
            if stop is None and step >= s.steps:
                stop = Stop(COMPLETED, step, 'all steps done')
            if stop is not None and stop.reason == NOT_FINITE:
                run.stop = stop  # nothing finite to write; the frames before are kept
                ended.append(position)
                continue
            if (stop is not None or step % s.log_every == 0) and not first_of_restart:
                self._thermo(run, step, dofs[position])
            if (stop is not None or step % s.trajectory_every == 0) and not first_of_restart:
                run.trajectory.append(step, run.time_fs(step), run.atoms)
                run.frames += 1
            if stop is not None:
                run.stop = stop
                if stop.reason == COMPLETED:
                    save_state(
                        run.workdir / STATE_FILE, run.atoms, step, run.time_fs(step), run.field_work, run.rng_state
                    )
                ended.append(position)
            elif step % s.checkpoint_every == 0 and step != run.step0:
                save_state(run.workdir / STATE_FILE, run.atoms, step, run.time_fs(step), run.field_work, run.rng_state)
        return ended

    # --- the run ----------------------------------------------------------------------------------

    def _integrator(self):
        from torch_sim.integrators import INTEGRATOR_REGISTRY, Integrator

        return INTEGRATOR_REGISTRY[Integrator(ENSEMBLES[self.ensemble])]

    def _model_call_timer(self):
        model, engine = self.model, self

        def timed(state):
            started = time.perf_counter()
            out = model(state)
            engine.model_time += time.perf_counter() - started
            engine.model_calls += 1
            return out

        timed.device, timed.dtype = model.device, model.dtype
        return timed

    def run(self) -> list[MDResult]:
        import torch

        init_fn, step_fn = self._integrator()
        started = time.perf_counter()
        self.active = list(range(len(self.runs)))
        model = self._model_call_timer()
        try:
            values = self._per_system(self.active)
            init_kwargs = {'kT': values['kT'], 'dt': torch.as_tensor(self.dt, dtype=torch.float64)}
            if 'tau' in values:
                init_kwargs['tau'] = values['tau']
            state = init_fn(state=self._initial_state(self.active), model=model, **init_kwargs)
            state.momenta = self._momenta(self.active)
            if self.ensemble == 'langevin':
                state.set_constrained_momenta(state.momenta)
            field_work = torch.tensor([self.runs[i].field_work for i in self.active], dtype=torch.float64)
            field_work = field_work.to(self.device)
            k = 0
            while self.active:
                finite = self._finite(state)
                ended = self._observe(state, k, field_work, finite)
                if ended:
                    keep = [p for p in range(len(self.active)) if p not in ended]
                    self.active = [self.active[p] for p in keep]
                    if not self.active:
                        break
                    state.pop(ended)
                    field_work = field_work[keep]
                    values = self._per_system(self.active)
                old_positions = state.positions.clone()
                old_field = self._field_tensor(state)
                step_kwargs = {'dt': torch.as_tensor(self.dt, dtype=torch.float64), 'kT': values['kT']}
                if 'gamma' in values:
                    step_kwargs['gamma'] = values['gamma']
                if self.ensemble == 'bussi':
                    step_kwargs['tau'] = values['tau']
                state = step_fn(state=state, model=model, **step_kwargs)
                new_field = self._field_tensor(state)
                if new_field is not None:
                    field_work = field_work + field_work_increment(
                        old_field, new_field, old_positions, state.positions, state.system_idx, len(self.active)
                    )
                k += 1
        except Exception as exc:  # noqa: BLE001 - a model or integrator failure ends the runs still going
            for index in getattr(self, 'active', []):
                run = self.runs[index]
                if run.stop is None:
                    run.stop = Stop(FAILED, run.step0, f'{type(exc).__name__}: {exc}')
            if isinstance(exc, MDInputError):
                raise
        finally:
            for run in self.runs:
                run.close()
        wall = round(time.perf_counter() - started, 3)
        share = 1 / len(self.runs)
        return [
            MDResult(
                stop_reason=run.stop.reason,
                message=run.stop.message,
                step=run.stop.step,
                time_fs=run.time_fs(run.stop.step),
                frames_written=run.frames,
                wall_time_s=wall,
                model_time_s=round(self.model_time * share, 3),
                model_calls=self.model_calls,
                monitor_time_s=round(run.monitor_time, 3),
                trajectory_file=run.trajectory_file,
                max_force_deviation=run.worst['force'],
                max_bec_deviation=run.worst['bec'],
            )
            for run in self.runs
        ]

    def _field_tensor(self, state):
        return getattr(state, FIELD_FORCES, None)

    def _finite(self, state) -> list[bool]:
        import torch

        bad = ~(torch.isfinite(state.forces).all(dim=1) & torch.isfinite(state.positions).all(dim=1))
        per_system = torch.zeros(state.n_systems, dtype=torch.long, device=bad.device)
        per_system.index_add_(0, state.system_idx, bad.long())
        return (per_system == 0).tolist()
