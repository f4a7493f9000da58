"""The TorchSim backend: batched field MD with TorchSim's integrators, checked against analytic cases and the
ASE backend.

The field force in torch must equal the NumPy one for every Z* mode (runs wherever torch is). The engine runs
an Einstein crystal (every atom on its own spring, constant Born charges that obey the sum rule) whose answers
are analytic: under a field each atom's mean position moves by ``Z_i^T E / k``, the Langevin temperature is
the bath's, and NVE conserves ``E_pot + E_kin - W``. One batch holds runs at different temperatures, fields
and Z* modes, and each must come out as if it ran alone (tests marked ``torchsim`` need torch-sim, the ``gpu``
extra on Python >= 3.12).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes

from ionfield.models.keys import BORN_CHARGES
from ionfield.models.md.field import BEC_MODES, field_forces
from ionfield.models.md.field_torch import MODE_INDEX, field_forces_batched, field_work_increment
from ionfield.models.md.logs import THERMO_FILE, read_log
from ionfield.models.md.settings import MDInputError, MDSettings
from ionfield.models.md.trajectory import read_trajectory

torch = pytest.importorskip('torch')

SPRING = 2.0  # eV/Å²
LI_BORN = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 1.2]])  # off-diagonal: full and diagonal differ


def einstein_crystal(repeat=3) -> Atoms:
    """A rock-salt cell of 'Li' and 'F', 8 * repeat³ atoms on springs, all of one mass: then fixing the centre
    of mass (the Langevin runs do) leaves the analytic shift Z^T E / k unchanged."""
    atoms = bulk('LiF', 'rocksalt', a=4.0, cubic=True).repeat(repeat)
    atoms.set_masses(np.full(len(atoms), 10.0))
    return atoms


def einstein_born(atoms: Atoms) -> np.ndarray:
    """Li: LI_BORN; the anions: minus the same, so the sum rule holds exactly (equal counts)."""
    sign = np.where(np.array(atoms.get_chemical_symbols()) == 'Li', 1.0, -1.0)
    return sign[:, None, None] * LI_BORN


class EinsteinASE(Calculator):
    """The ASE backend's Einstein crystal: E = k/2 sum |r - r0|², constant Born charges."""

    implemented_properties = ['energy', 'free_energy', 'forces', BORN_CHARGES]

    def __init__(self, reference: Atoms):
        super().__init__()
        self.r0 = reference.positions.copy()
        self.born = einstein_born(reference)

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        u = self.atoms.positions - self.r0
        energy = 0.5 * SPRING * float(np.sum(u**2))
        self.results = {'energy': energy, 'free_energy': energy, 'forces': -SPRING * u, BORN_CHARGES: self.born}


# --- the field force in torch (no torch-sim needed) -------------------------------------------------


def test_batched_field_force_equals_the_numpy_one_for_every_mode():
    rng = np.random.default_rng(3)
    born = rng.normal(size=(9, 3, 3))
    fields = np.repeat(np.array([[0.1, 0.0, 0.0], [0.03, -0.05, 0.08], [0.0, 0.0, 0.0]]), 3, axis=0)
    modes = np.array([MODE_INDEX[m] for m in BEC_MODES for _ in range(3)])  # each system its own mode
    for shift in range(3):  # every mode meets every field
        modes_now = np.roll(modes, 3 * shift)
        got = field_forces_batched(torch.tensor(born), torch.tensor(fields), torch.tensor(modes_now)).numpy()
        for i in range(9):
            want = field_forces(born[i : i + 1], fields[i], BEC_MODES[modes_now[i]])[0]
            np.testing.assert_allclose(got[i], want, atol=1e-12)


def test_field_work_increment_is_the_trapezoid_rule_per_system():
    old_f, new_f = (
        torch.tensor([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]]),
        torch.tensor([[3.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0]]),
    )
    old_r, new_r = torch.zeros(3, 3), torch.tensor([[0.1, 5, 5], [5, 0.2, 5], [5, 5, 0.3]])
    work = field_work_increment(old_f, new_f, old_r, new_r, torch.tensor([0, 1, 1]), 2)
    np.testing.assert_allclose(work.numpy(), [0.2, 0.4 + 0.6])


# --- the engine (torch-sim) ---------------------------------------------------------------------------

torchsim = pytest.mark.torchsim


def _einstein_torchsim_model(reference: Atoms):
    """The Einstein crystal as a TorchSim model with our field force (as :class:`FieldTorchSimModel` adds it)."""
    from torch_sim.models.interface import ModelInterface

    from ionfield.models.keys import FIELD_FORCES

    class EinsteinTorchSim(ModelInterface):
        def __init__(self):
            super().__init__()
            self._device, self._dtype = torch.device('cpu'), torch.float64
            self._compute_forces, self._compute_stress = True, False
            self.r0_one = torch.tensor(reference.positions)
            self.born_one = torch.tensor(einstein_born(reference))
            self.fields = None

        def set_field(self, fields, modes):
            self.fields, self.modes = fields, modes

        def forward(self, state):
            n_systems = state.n_systems
            r0 = self.r0_one.repeat(n_systems, 1)
            born = self.born_one.repeat(n_systems, 1, 1)
            u = state.positions - r0
            energy = torch.zeros(n_systems, dtype=torch.float64).index_add_(
                0, state.system_idx, 0.5 * SPRING * (u**2).sum(dim=1)
            )
            extra = field_forces_batched(born, self.fields, self.modes)
            return {'energy': energy, 'forces': -SPRING * u + extra, BORN_CHARGES: born, FIELD_FORCES: extra}

    return EinsteinTorchSim()


def _settings(**values):
    base = {'backend': 'torchsim', 'steps': 3000, 'timestep_fs': 1.0, 'log_every': 10, 'trajectory_every': 10}
    return MDSettings.from_dict({**base, **values})


def _run_batch(tmp_path, settings_list, atoms=None):
    from ionfield.models.md.torchsim_engine import BatchedFieldMD, BatchRun

    atoms = atoms if atoms is not None else einstein_crystal()
    runs = [BatchRun(atoms, s, tmp_path / f'run{i}') for i, s in enumerate(settings_list)]
    results = BatchedFieldMD(runs, _einstein_torchsim_model(atoms)).run()
    return atoms, runs, results


def _mean_displacement(run, atoms, species='Li', skip=50):
    trajectory = read_trajectory(run.workdir / 'trajectory.h5')
    positions = np.stack([trajectory.atoms(i).positions for i in range(skip, len(trajectory))])
    mask = np.array(atoms.get_chemical_symbols()) == species
    return (positions[:, mask] - atoms.positions[mask]).mean(axis=(0, 1))


@torchsim
def test_one_batch_of_different_temperatures_fields_and_modes_gives_the_analytic_answers(tmp_path):
    pytest.importorskip('torch_sim')
    field = (0.2, 0.0, 0.0)
    settings = [
        _settings(temperature_K=300, seed=1),
        _settings(temperature_K=600, seed=2, field=field, bec_mode='full'),
        _settings(temperature_K=600, seed=3, field=field, bec_mode='diagonal'),
        _settings(temperature_K=600, seed=4, field=field, bec_mode='field_axis', steps=1000),
    ]
    atoms, runs, results = _run_batch(tmp_path, settings)
    assert [r.stop_reason for r in results] == ['completed'] * 4
    assert [r.step for r in results] == [3000, 3000, 3000, 1000]  # the short run left the batch, the rest went on
    # temperatures: the bath's, per run (Langevin, equipartition over 3N - 3 degrees of freedom)
    for run, s in zip(runs, settings, strict=True):
        log = read_log(run.workdir / THERMO_FILE)
        assert log['temperature_K'][20:].mean() == pytest.approx(s.temperature_K, rel=0.08)
    # positions under a field: Z^T E / k for Li (full: the off-diagonal term pushes along y as well); the
    # sampling error of a mean over 108 Li and ~30 independent frames at 600 K is ~0.003 Å
    expected_full = LI_BORN.T @ np.array(field) / SPRING  # (0.1, 0.03, 0) Å
    np.testing.assert_allclose(_mean_displacement(runs[0], atoms), [0, 0, 0], atol=0.01)
    np.testing.assert_allclose(_mean_displacement(runs[1], atoms), expected_full, atol=0.01)
    np.testing.assert_allclose(_mean_displacement(runs[2], atoms), [LI_BORN[0, 0] * 0.2 / SPRING, 0, 0], atol=0.01)
    np.testing.assert_allclose(_mean_displacement(runs[3], atoms, skip=20), [0.1, 0, 0], atol=0.015)
    # every run has the files of the ASE backend, and a readable state to continue from
    for run in runs:
        assert {'trajectory.h5', THERMO_FILE, 'state.npz'} <= {p.name for p in run.workdir.iterdir()}


@torchsim
def test_nve_conserves_the_energy_with_the_field_work(tmp_path):
    pytest.importorskip('torch_sim')
    settings = [_settings(ensemble='nve', temperature_K=300, field=(0.1, 0.05, 0.0), steps=2000, seed=5)]
    _, runs, results = _run_batch(tmp_path, settings)
    assert results[0].stop_reason == 'completed'
    log = read_log(runs[0].workdir / THERMO_FILE)
    total = log['potential_energy_eV'] + log['kinetic_energy_eV']
    assert np.ptp(log['field_work_eV']) > 0.05  # the field does work
    assert np.ptp(log['conserved_eV']) < 0.02 * np.ptp(total) + 1e-3  # and E_pot + E_kin - W stays put


@torchsim
def test_the_two_backends_agree_on_the_statistics(tmp_path):
    """Same Einstein crystal, same settings: the ASE run and the TorchSim run give the same temperature and the
    same field displacement within their sampling errors."""
    pytest.importorskip('torch_sim')
    from ionfield.models.md.engine import run_field_md
    from ionfield.models.md.field_calculator import FieldCalculator  # noqa: F401 - the engine wraps the model

    field = (0.0, 0.15, 0.0)
    settings = _settings(temperature_K=500, seed=7, field=field, steps=3000)
    atoms, runs, _ = _run_batch(tmp_path / 'ts', [settings])
    ase_settings = MDSettings.from_dict({**settings.to_dict(), 'backend': 'ase'})
    run_field_md(atoms, EinsteinASE(atoms), ase_settings, tmp_path / 'ase')

    class AseRun:
        workdir = tmp_path / 'ase'

    for species in ('Li', 'F'):
        torchsim_shift = _mean_displacement(runs[0], atoms, species)
        ase_shift = _mean_displacement(AseRun, atoms, species)
        np.testing.assert_allclose(torchsim_shift, ase_shift, atol=0.012)
    temperatures = [read_log(w / THERMO_FILE)['temperature_K'][20:].mean() for w in (runs[0].workdir, AseRun.workdir)]
    assert temperatures[0] == pytest.approx(temperatures[1], rel=0.08)


@torchsim
def test_a_stop_ends_its_run_only(tmp_path):
    """A run whose temperature bound is crossed stops with its reason and last frame; the others go on."""
    pytest.importorskip('torch_sim')
    settings = [_settings(temperature_K=300, steps=500, seed=1), _settings(temperature_K=900, steps=500, seed=2)]
    settings[1] = MDSettings.from_dict({**settings[1].to_dict(), 'max_temperature_K': 950})
    _, runs, results = _run_batch(tmp_path, settings)
    assert results[0].stop_reason == 'completed' and results[0].step == 500
    assert results[1].stop_reason == 'temperature_runaway' and results[1].step < 500
    stopped = read_trajectory(runs[1].workdir / 'trajectory.h5')
    assert int(stopped.steps[-1]) == results[1].step  # the frame of the stop is written


def test_what_one_batch_cannot_hold_is_refused(tmp_path):
    from ionfield.models.md.torchsim_engine import BatchRun, batch_problems

    atoms = einstein_crystal(1)
    with pytest.raises(MDInputError, match='not npt'):
        _settings(ensemble='npt')
    runs = [
        BatchRun(atoms, _settings(timestep_fs=1.0), tmp_path / 'a'),
        BatchRun(atoms, _settings(timestep_fs=2.0), tmp_path / 'b'),
    ]
    assert any('one timestep_fs' in p for p in batch_problems(runs))
    same = [BatchRun(atoms, _settings(), tmp_path / 'a'), BatchRun(atoms, _settings(), tmp_path / 'a')]
    assert 'every run of a batch needs its own workdir' in batch_problems(same)


def test_the_runner_says_what_is_missing_without_torch_sim(tmp_path, monkeypatch):
    """Without torch-sim a torchsim run is an input error with the way out, not a crash (nothing else lost)."""
    from ionfield.models.md import runner, torchsim_engine

    monkeypatch.setattr(torchsim_engine, 'torchsim_problem', lambda: 'the torchsim backend needs torch-sim-atomistic')
    einstein_crystal(1).write(tmp_path / 'structure.xyz')
    (tmp_path / 'settings.json').write_text(json.dumps(_settings(steps=5).to_dict()))
    (tmp_path / 'model.nequip.zip').write_bytes(b'not read')
    code = runner.run_md(
        tmp_path, tmp_path / 'structure.xyz', [tmp_path / 'model.nequip.zip'], tmp_path / 'settings.json'
    )
    assert code == runner.STATUS_EXIT['input_error']
    result = json.loads((tmp_path / 'result.json').read_text())
    assert result['status'] == 'input_error' and 'torch-sim-atomistic' in result['message']


@torchsim
def test_torchsim_metal_units_are_those_the_engine_passes():
    """The engine gives TorchSim dt = timestep_fs * ase.units.fs and kT = k_B T in eV: TorchSim's metal time unit
    (1 ps = MetalUnits.time) must be ASE's and its temperature unit k_B in eV/K."""
    pytest.importorskip('torch_sim')
    from torch_sim.units import MetalUnits

    assert MetalUnits.time * 1e-3 == pytest.approx(units.fs, rel=1e-4)
    assert MetalUnits.temperature == pytest.approx(units.kB, rel=1e-4)


# --- our nequip models in TorchSim -------------------------------------------------------------------


@torchsim
def test_our_model_in_torchsim_gives_the_ase_backend_forces_and_born_charges(trained_members):
    """One batch of two Li3N frames with different fields and Z* modes: per frame, the forces (with the field
    force) and Z* of the TorchSim model equal those of the ASE backend's FieldCalculator."""
    pytest.importorskip('torch_sim')
    import torch_sim as ts

    from ionfield.models.md.field_calculator import FieldCalculator
    from ionfield.models.md.torchsim_engine import load_batch_model
    from ionfield.models.potential.calculator import load_calculator
    from ionfield.models.structures.reference import alpha_li3n

    _, runs = trained_members
    path = runs[0][1] / 'model.nequip.zip'
    frames = []
    for seed in (1, 2):
        atoms = alpha_li3n().repeat((2, 2, 1))
        atoms.rattle(0.08, seed=seed)
        frames.append(atoms)
    conditions = [((0.1, 0.0, 0.0), 'full'), ((0.0, 0.05, 0.08), 'diagonal')]
    model = load_batch_model(path)
    sizes = torch.tensor([len(a) for a in frames])
    fields = torch.tensor([c[0] for c in conditions], dtype=torch.float64).repeat_interleave(sizes, dim=0)
    modes = torch.tensor([MODE_INDEX[c[1]] for c in conditions]).repeat_interleave(sizes)
    model.set_field(fields, modes)
    out = model(ts.initialize_state(frames, 'cpu', torch.float64))
    start = 0
    for atoms, (field, mode) in zip(frames, conditions, strict=True):
        calc = FieldCalculator(load_calculator(path), field, mode)
        atoms.calc = calc
        stop = start + len(atoms)
        np.testing.assert_allclose(out['forces'][start:stop].numpy(), atoms.get_forces(), atol=1e-5)
        np.testing.assert_allclose(out[BORN_CHARGES][start:stop].numpy(), calc.results[BORN_CHARGES], atol=1e-5)
        start = stop


@torchsim
def test_ionfield_md_batch_writes_each_run_as_a_single_run_would(trained_members, tmp_path):
    """``ionfield-md --batch``: a committee-monitored batch of three runs, each with its own result.json,
    trajectory and uncertainty log; a species the model lacks is refused for the whole batch."""
    pytest.importorskip('torch_sim')
    from ionfield.models.md import runner
    from ionfield.models.structures.reference import alpha_li3n

    _, members = trained_members
    models = [workdir / 'model.nequip.zip' for _, workdir in members]
    structure = tmp_path / 'li3n.xyz'
    alpha_li3n().repeat((2, 2, 2)).write(structure)
    entries = []
    for index, (temperature, field) in enumerate([(300, [0, 0, 0]), (300, [0.05, 0, 0]), (400, [0, 0, 0.05])]):
        settings = _settings(temperature_K=temperature, field=field, steps=40, seed=index, monitor_every=10)
        entries.append(
            {'workdir': str(tmp_path / f'r{index}'), 'structure': str(structure), 'settings': settings.to_dict()}
        )
    batch = tmp_path / 'runs.json'
    batch.write_text(json.dumps(entries))
    assert runner.main(['--batch', str(batch), '--model', str(models[0]), '--model', str(models[1])]) == 0
    for index in range(3):
        workdir = tmp_path / f'r{index}'
        result = json.loads((workdir / 'result.json').read_text())
        assert result['status'] in ('completed', 'close_contact', 'uncertainty'), result
        assert len(read_log(workdir / 'uncertainty.csv')['step']) >= 1
        assert len(read_trajectory(workdir / 'trajectory.h5')) >= 1

    bad = tmp_path / 'agi.xyz'
    Atoms('AgI', positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[3, 3, 3], pbc=True).write(bad)
    entries[0]['structure'] = str(bad)
    batch.write_text(json.dumps(entries))
    assert runner.main(['--batch', str(batch), '--model', str(models[0])]) == runner.STATUS_EXIT['input_error']
    result = json.loads((tmp_path / 'r2' / 'result.json').read_text())
    assert result['status'] == 'input_error' and "species ['Ag', 'I']" in result['message']
