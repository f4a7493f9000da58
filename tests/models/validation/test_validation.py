"""Validation physics checked against what it must reproduce independently of how it is computed.

A pair potential at zero stress obeys the Cauchy relation C12 = C44 and its bulk modulus is the curvature
of E(V); a wrong shear convention or sign breaks either. The linear zero-stress cell must agree with a
real relaxation to second order in the strain (halving the strain quarters the error). Gamma phonons
from phonopy must be the eigenfrequencies of the finite-difference Hessian of ase.vibrations on the same
periodic cell. The gate's boundaries and refusals are checked on hand-made numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.eos import EquationOfState
from ase.vibrations import Vibrations

from ionfield.models.validation.compare import (
    ValidationRow,
    ValidationTable,
    compare_born_charges,
    compare_elastic,
    compare_forces,
    compare_lattice,
    compare_phonons,
    status,
)
from ionfield.models.validation.properties import (
    ElasticConstants,
    calculated_forces,
    calculated_stresses,
    elastic_constants,
    gamma_frequencies,
    lattice_parameters,
    relax_cell,
    voigt,
    zero_stress_cell,
)
from ionfield.models.validation.settings import ValidationError, ValidationSettings
from ionfield.models.validation.structures import VOIGT, phonon_displacements, strain_matrix, strained_cells

STRAIN = 0.005
#: Hz per eV: a vibrational energy h f as a frequency, from CODATA constants (not phonopy's factor).
EV_TO_THZ = units._e / units._hplanck / 1e12


def _lj() -> LennardJones:
    return LennardJones(sigma=1.0, epsilon=1.0, rc=3.0, smooth=True)


def _constants(atoms: Atoms, calculator) -> ElasticConstants:
    return elastic_constants(calculated_stresses(strained_cells(atoms, STRAIN), calculator), STRAIN)


def test_strained_cells_are_the_twelve_voigt_deformations():
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    atoms.calc = EMT()
    cells = strained_cells(atoms, 0.01)
    assert list(cells) == [f'e{j}{sign}' for j in range(1, 7) for sign in '+-']
    assert all(cell.calc is None for cell in cells.values())
    # engineering shear: e4 (yz) changes the angle between b and c by gamma = 0.01 rad, not 0.02
    alpha = lattice_parameters(cells['e4+'].cell)['alpha']
    assert math.radians(90 - alpha) == pytest.approx(0.01, rel=1e-3)
    # atoms move with the cell: fractional coordinates are kept
    np.testing.assert_allclose(cells['e1-'].get_scaled_positions(), atoms.get_scaled_positions(), atol=1e-12)
    assert cells['e1-'].cell.lengths()[0] == pytest.approx(3.6 * 0.99)
    assert VOIGT[3] == 'yz' and np.array_equal(strain_matrix(3, 0.01)[1:, 1:], [[0, 0.005], [0.005, 0]])


def test_lennard_jones_fcc_obeys_the_cauchy_relation_and_its_eos_bulk_modulus():
    atoms = relax_cell(bulk('Ar', 'fcc', a=1.55, cubic=True), _lj(), fmax=1e-6)
    assert np.abs(atoms.get_stress()).max() < 1e-6
    constants = _constants(atoms, _lj())
    c = constants.matrix
    assert c[0, 0] == pytest.approx(c[1, 1], rel=1e-6) and c[0, 0] == pytest.approx(c[2, 2], rel=1e-6)
    assert c[3, 3] == pytest.approx(c[4, 4], rel=1e-6) and c[3, 3] == pytest.approx(c[5, 5], rel=1e-6)
    assert np.abs(c[:3, 3:]).max() < 1e-6 * c[0, 0]
    # central pair forces at zero pressure
    assert c[0, 1] == pytest.approx(c[3, 3], rel=0.02)
    assert constants.asymmetry < 1e-6 * c[0, 0]

    volumes, energies = [], []
    for scale in np.linspace(0.99, 1.01, 7):
        copy = atoms.copy()
        copy.set_cell(atoms.cell.array * scale, scale_atoms=True)
        copy.calc = _lj()
        volumes.append(copy.get_volume())
        energies.append(copy.get_potential_energy())
    _, _, bulk_modulus = EquationOfState(volumes, energies).fit()
    cubic = (c[0, 0] + 2 * c[0, 1]) / 3
    assert cubic == pytest.approx(bulk_modulus / units.GPa, rel=0.02)
    # cubic: Voigt, Reuss and Hill bulk moduli coincide
    assert constants.bulk_modulus_voigt == pytest.approx(cubic) and constants.bulk_modulus == pytest.approx(cubic)
    assert ElasticConstants.from_dict(constants.to_dict()).matrix == pytest.approx(c)


def test_voigt_and_tensor_stresses_give_the_same_constants():
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    stresses = calculated_stresses(strained_cells(atoms, STRAIN), EMT())
    as_voigt = {key: voigt(value) for key, value in stresses.items()}
    np.testing.assert_allclose(elastic_constants(as_voigt, STRAIN).matrix, elastic_constants(stresses, STRAIN).matrix)
    with pytest.raises(ValueError, match=r"\['e6-'\] are missing"):
        elastic_constants({key: value for key, value in stresses.items() if key != 'e6-'}, STRAIN)


def _strained_copper(deformation: np.ndarray) -> tuple[Atoms, Atoms]:
    """Relaxed EMT Cu and a copy under ``deformation`` (I + eps) with EMT attached."""
    relaxed = relax_cell(bulk('Cu', 'fcc', a=3.6, cubic=True), EMT(), fmax=1e-5)
    strained = relaxed.copy()
    strained.set_cell(relaxed.cell.array @ deformation, scale_atoms=True)
    strained.calc = EMT()
    return relaxed, strained


def test_zero_stress_cell_predicts_the_relaxed_emt_copper_lattice():
    # 1 % along x and a 1 % engineering xy shear: a tensile, sheared cell
    _, strained = _strained_copper(np.eye(3) + strain_matrix(0, 0.01) + strain_matrix(5, 0.01))
    assert strained.get_stress()[0] > 0  # stretched: tensile, ASE sign
    predicted = lattice_parameters(zero_stress_cell(strained.cell, strained.get_stress(), _constants(strained, EMT())))
    found = lattice_parameters(relax_cell(strained, EMT(), fmax=1e-5).cell)
    for name in ('a', 'b', 'c'):
        assert predicted[name] == pytest.approx(found[name], abs=2e-3)
    for name in ('alpha', 'beta', 'gamma'):
        assert predicted[name] == pytest.approx(found[name], abs=0.1)
    assert lattice_parameters(strained.cell)['a'] - found['a'] > 0.03  # the estimate did the work


def test_the_zero_stress_estimate_is_a_newton_step():
    """Its error is second order: halving a hydrostatic strain quarters it (a wrong linear term would halve it)."""
    errors = []
    for strain in (0.01, 0.005):
        relaxed, strained = _strained_copper(np.eye(3) * (1 + strain))
        cell = zero_stress_cell(strained.cell, strained.get_stress(), _constants(strained, EMT()))
        errors.append(abs(lattice_parameters(cell)['a'] - relaxed.cell.lengths()[0]))
    assert errors[0] / errors[1] == pytest.approx(4, rel=0.15)


def _vibration_thz(atoms: Atoms, directory) -> np.ndarray:
    """Gamma frequencies (THz, imaginary negative) of ase.vibrations' central-difference Hessian on the cell."""
    vibrations = Vibrations(atoms, name=str(directory / 'vib'), delta=0.01)
    vibrations.run()
    energies = vibrations.get_energies()
    return np.sort((energies.real - energies.imag) * EV_TO_THZ)


def _cu3au() -> Atoms:
    atoms = bulk('Cu', 'fcc', a=3.75, cubic=True)
    atoms.symbols[0] = 'Au'  # L1_2: every atom at an inversion centre, forces zero by symmetry
    return atoms


def _rattled_copper() -> Atoms:
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    atoms.rattle(0.03, seed=1)  # no symmetry: phonopy displaces every atom both ways
    return atoms


@pytest.mark.parametrize('make', [_cu3au, _rattled_copper], ids=['Cu3Au', 'rattled Cu4'])
def test_gamma_frequencies_are_those_of_ase_vibrations(make, tmp_path):
    atoms = make()
    phonon, images = phonon_displacements(atoms, (1, 1, 1), distance=0.01)
    assert all(image.pbc.all() and len(image) == len(atoms) for image in images)
    frequencies = gamma_frequencies(phonon, calculated_forces(images, EMT()))
    atoms.calc = EMT()
    reference = _vibration_thz(atoms, tmp_path)
    assert frequencies.shape == (3 * len(atoms),)
    np.testing.assert_allclose(frequencies, reference, atol=0.05)
    assert np.abs(frequencies[:3]).max() < 0.01 and frequencies[3] > 3.0  # 3 acoustic modes, then optical ones


def test_a_larger_phonon_supercell_changes_nothing_at_gamma():
    atoms = _cu3au()
    small, big = (phonon_displacements(atoms, supercell) for supercell in ((1, 1, 1), (2, 2, 2)))
    assert len(big[0].supercell) == 8 * len(atoms)
    frequencies = [gamma_frequencies(phonon, calculated_forces(images, EMT())) for phonon, images in (small, big)]
    np.testing.assert_allclose(frequencies[0], frequencies[1], atol=1e-3)


def test_residual_forces_of_the_reference_are_subtracted():
    """One-sided displacements (Cu3Au) see a residual force as a spring; giving it as reference removes it."""
    phonon, images = phonon_displacements(_cu3au())
    forces = calculated_forces(images, EMT())
    residual = np.random.default_rng(0).normal(0, 0.05, (len(images[0]), 3))
    exact = gamma_frequencies(phonon, forces)
    biased = gamma_frequencies(phonon, [f + residual for f in forces])
    assert np.abs(biased - exact).max() > 0.1
    np.testing.assert_allclose(gamma_frequencies(phonon, [f + residual for f in forces], residual), exact, atol=1e-9)


# --- the gate -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('values', 'message'),
    [
        ({'lattice': [0.02, 0.01]}, r'lattice thresholds are out of order: warn 0\.02 > fail 0\.01'),
        ({'phonons': [0, 1.0]}, r'phonons must be \[warn, fail\], two numbers above 0'),
        ({'born_charges': [-0.1, 0.2]}, 'born_charges must be'),
        ({'forces': [0.1]}, 'forces must be'),
        ({'strain': 0.1}, r'strain must be in \(0, 0\.05\]'),
        ({'displacement': 0}, 'displacement must be'),
        ({'phonon_supercell': [1, 1]}, 'phonon_supercell must be 3 positive integers'),
        ({'relax_steps': True}, 'relax_steps must be a positive integer'),
        ({'elastic_threshold': [0.1, 0.2]}, 'unknown validation setting'),
    ],
)
def test_bad_settings_are_refused_naming_the_key(values, message):
    with pytest.raises(ValidationError, match=message):
        ValidationSettings.from_dict(values)


def test_every_problem_is_listed_at_once_and_defaults_pass():
    settings = ValidationSettings.from_dict(None)
    assert settings.thresholds('elastic') == (0.15, 0.30) and settings.phonon_supercell == [1, 1, 1]
    with pytest.raises(ValidationError) as raised:
        ValidationSettings.from_dict({'elastic': [0.3, 0.15], 'forces': [0.3, 0.2], 'strain': -1})
    message = str(raised.value)
    assert 'elastic thresholds are out of order: warn 0.3 > fail 0.15' in message
    assert 'forces thresholds are out of order: warn 0.3 > fail 0.2' in message and 'strain' in message
    assert ValidationSettings.from_dict(settings.to_dict()) == settings


def test_warn_pass_and_fail_boundaries():
    thresholds = [0.1, 0.2]
    assert [status(x, thresholds) for x in (0.0, 0.1, 0.1001, 0.2, 0.2001, math.nan, math.inf)] == [
        'pass', 'pass', 'warn', 'warn', 'fail', 'fail', 'fail',
    ]  # fmt: skip


def test_a_table_with_one_failing_row_has_not_passed_and_names_it():
    table = compare_forces(0.05, [0.1, 0.2]) + compare_forces(0.15, [0.1, 0.2])
    table += ValidationTable([ValidationRow.judged('Born charges (RMSE)', 'e', None, None, 0.5, [0.1, 0.2])])
    assert [row.status for row in table.rows] == ['pass', 'warn', 'fail']
    assert not table.passed and table.failures() == ['Born charges (RMSE)']
    assert table.warnings() == ['forces (RMSE)']
    restored = ValidationTable.from_dict(table.to_dict())
    assert restored == table and table.to_dict()['passed'] is False
    assert 'failed: Born charges (RMSE)' in table.markdown()
    assert table.markdown().count('\n| ') == 4  # a separator and three rows
    assert (compare_forces(0.05, [0.1, 0.2])).passed
    with pytest.raises(ValueError, match='status'):
        ValidationRow('x', 'eV', 1.0, 1.0, 0.0, 0.1, 0.2, 'ok')


def test_lattice_and_elastic_rows_are_relative_errors():
    cell = np.diag([4.0, 5.0, 6.0])
    table = compare_lattice(cell, cell @ np.diag([1.005, 1.015, 1.03]), [0.01, 0.02])
    assert [row.status for row in table.rows] == ['pass', 'warn', 'fail'] and table.failures() == ['c']
    assert table.rows[1].error == pytest.approx(0.015)

    # cubic matrices: B = (C11 + 2 C12) / 3 exactly; the model's is 20 % higher
    def cubic(c11, c12, c44):
        matrix = np.full((3, 3), c12) + np.eye(3) * (c11 - c12)
        return ElasticConstants(np.block([[matrix, np.zeros((3, 3))], [np.zeros((3, 3)), np.eye(3) * c44]]))

    dft, model = cubic(170.0, 120.0, 75.0), cubic(204.0, 144.0, 75.0)
    rows = compare_elastic(dft, model, [0.15, 0.30]).rows
    assert rows[0].dft == pytest.approx((170 + 240) / 3) and rows[0].error == pytest.approx(0.2)
    assert rows[0].status == 'warn'


def test_phonon_rows_drop_the_acoustic_modes():
    dft = np.array([0.02, -0.03, 0.0, 3.0, 4.0, 5.0])
    model = np.array([0.4, -0.5, 0.1, 3.3, 4.3, 5.3])  # noisy acoustic modes, optical ones 0.3 THz high
    (row,) = compare_phonons(dft, model, [0.5, 1.0]).rows
    assert row.error == pytest.approx(0.3) and row.status == 'pass' and row.dft == 5.0
    with pytest.raises(ValueError, match='no optical modes'):
        compare_phonons(dft[:3], model[:3], [0.5, 1.0])


def test_born_charges_are_compared_after_the_sum_rule():
    dft = np.array([np.eye(3) * 1.2, -np.eye(3) * 1.2])
    # a uniform offset only breaks the sum rule: corrected away, no error
    (row,) = compare_born_charges(dft, dft + 0.3, [0.1, 0.2]).rows
    assert row.error == pytest.approx(0.0, abs=1e-12) and row.status == 'pass'
    # +/-0.2 e on the xx element of the two atoms keeps the rule: RMSE over 18 elements is sqrt(2 * 0.04 / 18)
    model = dft.copy()
    model[0, 0, 0] += 0.2
    model[1, 0, 0] -= 0.2
    (row,) = compare_born_charges(dft, model, [0.05, 0.2]).rows
    assert row.error == pytest.approx(math.sqrt(2 * 0.04 / 18)) and row.status == 'warn'
