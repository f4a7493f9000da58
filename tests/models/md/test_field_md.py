"""Field MD engine: field-force physics, integrator checks, stop conditions, restart, bad input.

Most tests use analytic models (no torch): zero or Lennard-Jones forces with prescribed Born
charges, so the expected motion is known exactly. One test runs the real Born-charge head.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.lj import LennardJones
from scipy.spatial.transform import Rotation

from ionfield.models.keys import BORN_CHARGES, FIELD_FORCES
from ionfield.models.md.engine import STATE_FILE, run_field_md
from ionfield.models.md.field import FieldInputError, field_forces, parse_field, project_born_charges
from ionfield.models.md.field_calculator import FieldCalculator
from ionfield.models.md.logs import THERMO_FILE, UNCERTAINTY_FILE, read_log
from ionfield.models.md.settings import MDInputError, MDSettings
from ionfield.models.md.trajectory import read_trajectory


class ChargedModel(Calculator):
    """Forces from an optional base calculator (none: zero) and fixed Born charges."""

    implemented_properties = ['energy', 'free_energy', 'forces', 'stress', BORN_CHARGES]

    def __init__(self, born, base=None, nan_after=None):
        super().__init__()
        self.born = np.asarray(born, dtype=float)
        self.base = base
        self.nan_after = nan_after
        self.calls = 0

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.base is None:
            energy, forces, stress = 0.0, np.zeros((len(self.atoms), 3)), np.zeros(6)
        else:
            self.base.calculate(self.atoms, ['energy', 'forces', 'stress'], system_changes)
            energy, forces, stress = (self.base.results[k] for k in ('energy', 'forces', 'stress'))
        self.calls += 1
        if self.nan_after is not None and self.calls > self.nan_after:
            forces = np.full_like(forces, np.nan)
        self.results = {
            'energy': energy,
            'free_energy': energy,
            'forces': np.array(forces),
            'stress': np.array(stress),
            BORN_CHARGES: self.born.copy(),
        }


def isotropic(charges):
    return np.asarray(charges, dtype=float)[:, None, None] * np.eye(3)


def random_neutral_tensors(n, seed=0):
    born = np.random.default_rng(seed).normal(size=(n, 3, 3))
    return born - born.mean(axis=0)


def lj_crystal(repeat=2, a=5.26):
    """fcc argon-like LJ crystal, two 'species' so charges can be +/- (masses of Ar)."""
    from ase.build import bulk

    atoms = bulk('Ar', 'fcc', a=a, cubic=True).repeat(repeat)
    atoms.set_masses(np.full(len(atoms), 39.948))
    return atoms


def lj():
    return LennardJones(sigma=3.4, epsilon=0.0104, rc=8.0, smooth=True)


# --- the field force ------------------------------------------------------------------------------


def test_field_force_uses_the_transpose_of_the_label_convention():
    born = np.zeros((1, 3, 3))
    born[0, 0, 1] = 2.0  # dF_y / d(e E_x) = 2
    forces = field_forces(born, np.array([0.1, 0.0, 0.0]))
    np.testing.assert_allclose(forces, [[0.0, 0.2, 0.0]])
    assert not field_forces(born, np.array([0.0, 0.1, 0.0])).any()


def test_modes_and_sum_rule():
    born = random_neutral_tensors(6)
    field = np.array([0.02, -0.05, 0.03])
    full = field_forces(born, field, 'full')
    np.testing.assert_allclose(full, np.einsum('iab,a->ib', born, field))
    diagonal = field_forces(born, field, 'diagonal')
    np.testing.assert_allclose(diagonal, np.diagonal(born, axis1=1, axis2=2) * field)
    along = field_forces(born, field, 'field_axis')
    n = field / np.linalg.norm(field)
    np.testing.assert_allclose(np.cross(along, n), 0, atol=1e-15)  # parallel to the field
    np.testing.assert_allclose(along @ n, np.einsum('a,iab,b->i', n, born, n) * np.linalg.norm(field))
    for forces in (full, diagonal, along):
        np.testing.assert_allclose(forces.sum(axis=0), 0, atol=1e-14)
    assert not project_born_charges(born, np.zeros(3), 'field_axis').any()


def test_field_forces_rotate_with_cell_and_field():
    born = random_neutral_tensors(5, seed=3)
    field = np.array([0.05, 0.01, -0.02])
    R = Rotation.random(random_state=4).as_matrix()
    rotated_born = np.einsum('ab,ibc,dc->iad', R, born, R)  # Z -> R Z R^T
    for mode in ('full', 'diagonal', 'field_axis'):
        if mode == 'diagonal':
            continue  # 'diagonal' keeps the lab-frame diagonal: it is not rotation-covariant, by design
        np.testing.assert_allclose(
            field_forces(rotated_born, R @ field, mode), field_forces(born, field, mode) @ R.T, atol=1e-14
        )


@pytest.mark.parametrize(
    ('value', 'match'),
    [
        ([0.1, 0.0], 'shape'),
        ('x', '3 numbers'),
        ([np.nan, 0, 0], 'non-finite'),
        ([1e8, 0, 0], 'V/m'),
    ],
)
def test_bad_fields_are_refused(value, match):
    with pytest.raises(FieldInputError, match=match):
        parse_field(value)


# --- the engine: physics --------------------------------------------------------------------------


def test_free_charges_drift_as_q_field_over_mass(tmp_path):
    """Constant Z* = qI, no model forces, NVE from rest: x(t) = x0 + qE t^2 / (2m), exactly (Verlet)."""
    atoms = Atoms('LiN', positions=[[0, 0, 0], [2.5, 2.5, 2.5]], cell=[5, 5, 5], pbc=True)
    charges = np.array([1.0, -1.0])
    field = np.array([0.01, 0.0, -0.02])
    settings = MDSettings(
        ensemble='nve',
        steps=50,
        timestep_fs=1.0,
        field=tuple(field),
        initial_velocities=False,
        min_distance=0.0,
        log_every=10,
        trajectory_every=10,
    )
    result = run_field_md(atoms, ChargedModel(isotropic(charges)), settings, tmp_path)
    assert result.stop_reason == 'completed'
    trajectory = read_trajectory(tmp_path / result.trajectory_file)
    t = trajectory.times_fs * units.fs
    masses = atoms.get_masses()
    expected = atoms.positions[None] + 0.5 * (charges / masses)[None, :, None] * field * t[:, None, None] ** 2
    np.testing.assert_allclose(trajectory.positions, expected, atol=1e-10)
    # field work = kinetic energy gained, and the conserved quantity stays put
    log = read_log(tmp_path / THERMO_FILE)
    np.testing.assert_allclose(log['field_work_eV'], log['kinetic_energy_eV'], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(log['conserved_eV'], 0, atol=1e-12)


def test_nve_without_field_conserves_energy(tmp_path):
    atoms = lj_crystal()
    charges = np.where(np.arange(len(atoms)) % 2, 1.0, -1.0)
    settings = MDSettings(ensemble='nve', steps=400, timestep_fs=2.0, temperature_K=60, seed=1, log_every=20)
    result = run_field_md(atoms, ChargedModel(isotropic(charges), base=lj()), settings, tmp_path)
    assert result.stop_reason == 'completed'
    log = read_log(tmp_path / THERMO_FILE)
    total = log['potential_energy_eV'] + log['kinetic_energy_eV']
    assert np.ptp(log['kinetic_energy_eV']) > 0.02  # it moves
    assert np.ptp(total) < 2e-3 * np.ptp(log['kinetic_energy_eV'])
    assert not log['field_work_eV'].any()


def test_nve_with_field_conserves_energy_minus_field_work(tmp_path):
    atoms = lj_crystal()
    charges = np.where(np.arange(len(atoms)) % 2, 0.5, -0.5)
    settings = MDSettings(
        ensemble='nve', steps=400, timestep_fs=2.0, temperature_K=60, seed=1, log_every=20, field=(0.01, 0.0, 0.0)
    )
    result = run_field_md(atoms, ChargedModel(isotropic(charges), base=lj()), settings, tmp_path)
    assert result.stop_reason == 'completed'
    log = read_log(tmp_path / THERMO_FILE)
    total = log['potential_energy_eV'] + log['kinetic_energy_eV']
    assert np.ptp(log['field_work_eV']) > 0.01  # the field does real work
    assert np.ptp(log['conserved_eV']) < 0.1 * np.ptp(log['field_work_eV'])
    assert np.ptp(log['conserved_eV']) < 0.2 * np.ptp(total)


def test_net_field_force_is_zero_with_the_sum_rule(tmp_path):
    atoms = lj_crystal()
    born = random_neutral_tensors(len(atoms), seed=7) * 0.5
    calc = FieldCalculator(ChargedModel(born, base=lj()), field=(0.03, -0.01, 0.02))
    atoms.calc = calc
    atoms.get_forces()
    np.testing.assert_allclose(calc.results[FIELD_FORCES].sum(axis=0), 0, atol=1e-13)
    # and the centre of mass does not move under NVE with a field
    settings = MDSettings(ensemble='nve', steps=100, timestep_fs=2.0, temperature_K=30, field=(0.03, -0.01, 0.02))
    result = run_field_md(lj_crystal(), ChargedModel(born, base=lj()), settings, tmp_path)
    trajectory = read_trajectory(tmp_path / result.trajectory_file)
    masses = atoms.get_masses()
    com = np.einsum('i,tia->ta', masses, trajectory.positions) / masses.sum()
    np.testing.assert_allclose(com - com[0], 0, atol=1e-10)


def test_field_md_with_the_born_charge_head_is_rotation_covariant():
    """The real head: forces under a field, rotated structure and field, are the rotated forces."""
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    from ionfield.models.potential.calculator import BornChargeCalculator
    from ionfield.models.structures.reference import alpha_li3n

    from ..nequip_bec.test_bec_model import li3n_model

    def calculator():
        model = li3n_model(dtype='float64')
        model.eval()
        transforms = [ChemicalSpeciesToAtomTypeMapper(['Li', 'N']), NeighborListTransform(r_max=4.0)]
        return FieldCalculator(BornChargeCalculator(model=model, device='cpu', transforms=transforms), field=field)

    atoms = alpha_li3n().repeat((2, 1, 1))
    atoms.rattle(0.1, seed=1)
    field = np.array([0.05, -0.02, 0.03])
    calc = calculator()
    atoms.calc = calc
    forces, field_part = atoms.get_forces(), calc.results[FIELD_FORCES].copy()
    assert np.abs(field_part).max() > 1e-3
    np.testing.assert_allclose(field_part.sum(axis=0), 0, atol=1e-10)
    R = Rotation.random(random_state=2).as_matrix()
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell.array @ R.T, scale_atoms=False)
    rotated.positions = atoms.positions @ R.T
    field = R @ field
    rotated.calc = calculator()
    np.testing.assert_allclose(rotated.get_forces(), forces @ R.T, atol=1e-8)


@pytest.mark.parametrize('ensemble', ['nve', 'langevin', 'bussi', 'nose_hoover', 'npt'])
def test_every_ensemble_runs_with_a_field(tmp_path, ensemble):
    atoms = lj_crystal()
    charges = np.where(np.arange(len(atoms)) % 2, 0.5, -0.5)
    settings = MDSettings(
        ensemble=ensemble,
        steps=40,
        timestep_fs=2.0,
        temperature_K=80,
        field=(0.0, 0.0, 0.01),
        log_every=5,
        taut_fs=50,
        taup_fs=200,
        pressure_GPa=0.5,
    )
    result = run_field_md(atoms, ChargedModel(isotropic(charges), base=lj()), settings, tmp_path)
    assert result.stop_reason == 'completed', result.message
    log = read_log(tmp_path / THERMO_FILE)
    assert np.isfinite(log['pressure_GPa']).all() and np.isfinite(log['temperature_K']).all()
    if ensemble == 'npt':
        assert np.ptp(log['volume_A3']) > 0.1  # 0.5 GPa compresses the LJ crystal


def test_same_seed_same_trajectory_and_positions_are_unwrapped(tmp_path):
    atoms = Atoms('LiN', positions=[[4.9, 0, 0], [2.5, 2.5, 2.5]], cell=[5, 5, 5], pbc=True)
    settings = MDSettings(ensemble='langevin', steps=60, temperature_K=300, field=(0.2, 0, 0), seed=3, min_distance=0)
    a = run_field_md(atoms, ChargedModel(isotropic([1.0, -1.0])), settings, tmp_path / 'a')
    b = run_field_md(atoms, ChargedModel(isotropic([1.0, -1.0])), settings, tmp_path / 'b')
    ta, tb = read_trajectory(tmp_path / 'a' / a.trajectory_file), read_trajectory(tmp_path / 'b' / b.trajectory_file)
    np.testing.assert_array_equal(ta.positions, tb.positions)
    assert ta.positions[:, 0, 0].max() > 5.0  # Li crossed the cell face and was not wrapped back


# --- restart, stops, bad input -------------------------------------------------------------------


@pytest.mark.parametrize(('trajectory_format', 'ensemble'), [('h5', 'langevin'), ('extxyz', 'bussi'), ('h5', 'nve')])
def test_restart_continues_exactly(tmp_path, trajectory_format, ensemble):
    atoms = lj_crystal()
    charges = np.where(np.arange(len(atoms)) % 2, 0.5, -0.5)
    common = dict(
        ensemble=ensemble,
        timestep_fs=2.0,
        temperature_K=80,
        field=(0.01, 0, 0),
        seed=5,
        log_every=5,
        trajectory_every=5,
        checkpoint_every=10,
        save_velocities=True,
        trajectory_format=trajectory_format,
    )
    model = ChargedModel(isotropic(charges), base=lj())
    straight = run_field_md(atoms, model, MDSettings(steps=30, **common), tmp_path / 'straight')
    first = run_field_md(atoms, model, MDSettings(steps=20, **common), tmp_path / 'restarted')
    assert first.step == 20
    second = run_field_md(
        atoms,
        model,
        MDSettings(steps=30, **common),
        tmp_path / 'restarted',
        restart=tmp_path / 'restarted' / STATE_FILE,
    )
    assert second.stop_reason == 'completed' and second.step == 30
    a = read_trajectory(tmp_path / 'straight' / straight.trajectory_file)
    b = read_trajectory(tmp_path / 'restarted' / second.trajectory_file)
    np.testing.assert_array_equal(a.steps, b.steps)  # no duplicated or missing frames
    np.testing.assert_allclose(b.positions, a.positions, atol=1e-12)
    np.testing.assert_allclose(b.velocities, a.velocities, atol=1e-12)
    la, lb = read_log(tmp_path / 'straight' / THERMO_FILE), read_log(tmp_path / 'restarted' / THERMO_FILE)
    np.testing.assert_array_equal(la['step'], lb['step'])
    np.testing.assert_allclose(lb['field_work_eV'], la['field_work_eV'], atol=1e-12)


def test_nan_forces_stop_and_keep_earlier_frames(tmp_path):
    atoms = lj_crystal()
    settings = MDSettings(ensemble='nve', steps=50, temperature_K=50, trajectory_every=5, log_every=5)
    model = ChargedModel(isotropic(np.zeros(len(atoms))), base=lj(), nan_after=23)
    result = run_field_md(atoms, model, settings, tmp_path)
    assert result.stop_reason == 'nan' and result.step == 23
    trajectory = read_trajectory(tmp_path / result.trajectory_file)
    assert trajectory.steps.tolist() == [0, 5, 10, 15, 20]
    assert np.isfinite(trajectory.positions).all()


def test_close_contact_stops_and_writes_the_offending_frame(tmp_path):
    # opposite charges pulled together by nothing but the field: Li moves +x, N moves -x
    atoms = Atoms('LiN', positions=[[1.0, 0, 0], [2.5, 0, 0]], cell=[10, 10, 10], pbc=True)
    settings = MDSettings(
        ensemble='nve',
        steps=500,
        field=(0.5, 0, 0),
        initial_velocities=False,
        log_every=1,
        trajectory_every=50,
        min_distance=0.8,
        max_temperature_K=1e7,
    )
    result = run_field_md(atoms, ChargedModel(isotropic([1.0, -1.0])), settings, tmp_path)
    assert result.stop_reason == 'close_contact'
    assert 'atoms 0 and 1' in result.message
    trajectory = read_trajectory(tmp_path / result.trajectory_file)
    assert trajectory.steps[-1] == result.step and trajectory.steps[0] == 0
    gap = np.linalg.norm(trajectory.positions[-1, 1] - trajectory.positions[-1, 0])
    assert gap < 0.8


def test_temperature_runaway_stops(tmp_path):
    atoms = lj_crystal()
    charges = np.ones(len(atoms))  # no sum rule: the whole crystal accelerates, and its temperature with it
    settings = MDSettings(
        ensemble='nve',
        steps=400,
        timestep_fs=2.0,
        temperature_K=50,
        field=(0.2, 0, 0),
        log_every=5,
        max_temperature_K=400,
    )
    result = run_field_md(atoms, ChargedModel(isotropic(charges), base=lj()), settings, tmp_path)
    assert result.stop_reason == 'temperature_runaway', result.message
    log = read_log(tmp_path / THERMO_FILE)
    assert log['temperature_K'][-1] > 400 and (log['temperature_K'][:-1] <= 400).all()


def test_committee_uncertainty_stops_and_is_logged(tmp_path):
    atoms = lj_crystal()
    charges = isotropic(np.where(np.arange(len(atoms)) % 2, 0.5, -0.5))
    driver = ChargedModel(charges, base=lj())
    other = ChargedModel(charges * 1.2, base=LennardJones(sigma=3.4, epsilon=0.0114, rc=8.0, smooth=True))
    settings = MDSettings(
        ensemble='langevin',
        steps=400,
        temperature_K=300,
        field=(0.01, 0, 0),
        monitor_every=5,
        max_force_deviation=0.01,
        max_bec_deviation=1.0,
    )
    result = run_field_md(atoms, driver, settings, tmp_path, committee=[other])
    assert result.stop_reason == 'uncertainty' and 'force deviation' in result.message
    log = read_log(tmp_path / UNCERTAINTY_FILE)
    # members agree on the perfect lattice (all forces zero) and drift apart as it heats up
    assert log['max_force_deviation_eV_A'][0] < 1e-10 and result.step > 0
    assert log['step'][-1] == result.step and log['max_force_deviation_eV_A'][-1] > 0.01
    assert (log['max_force_deviation_eV_A'][:-1] <= 0.01).all()
    # Z* members are 0.5 I and 0.6 I: deviation sqrt(3) * 0.05 per atom
    np.testing.assert_allclose(log['max_bec_deviation_e'], np.sqrt(3) * 0.05)
    trajectory = read_trajectory(tmp_path / result.trajectory_file)
    assert trajectory.steps[-1] == result.step


def test_model_without_born_charges_under_a_field_is_refused(tmp_path):
    atoms = lj_crystal()
    with pytest.raises(MDInputError, match='Born-charge head'):
        run_field_md(atoms, lj(), MDSettings(steps=5, field=(0.01, 0, 0)), tmp_path)
    # no field: a plain model is fine
    assert (
        run_field_md(atoms, lj(), MDSettings(steps=5, temperature_K=20), tmp_path / 'plain').stop_reason == 'completed'
    )


@pytest.mark.parametrize(
    ('values', 'match'),
    [
        ({'field': [1e9, 0, 0]}, 'V/m'),
        ({'field': [0.1, 0]}, 'shape'),
        ({'timestep_fs': 50}, 'timestep_fs'),
        ({'ensemble': 'nvt'}, 'ensemble'),
        ({'bec_mode': 'trace'}, 'bec_mode'),
        ({'ensemble': 'langevin', 'temperature_K': 0}, 'temperature_K > 0'),
        ({'temperature_K': 300, 'max_temperature_K': 200}, 'max_temperature_K'),
        ({'steps': -1}, 'steps'),
        ({'stepz': 10}, 'unknown'),
        ({'backend': 'torchsim', 'ensemble': 'npt'}, 'not npt'),
    ],
)
def test_bad_settings_are_refused(values, match):
    with pytest.raises(MDInputError, match=match):
        MDSettings.from_dict(values)


def test_uncertainty_bound_without_committee_is_refused(tmp_path):
    with pytest.raises(MDInputError, match='no committee'):
        run_field_md(lj_crystal(), lj(), MDSettings(max_force_deviation=0.2), tmp_path)
