"""Frames from another group's file: units, stress sign, virial and Born-charge order, checked by physics.

The conversions are checked the way a wrong one would show: energies, forces and stresses written in a
foreign unit system by an analytic potential must still obey F = -dE/dx and V tr(sigma) = dE/d(eps)
after the import, which holds only if every factor and sign is right. The index order of the Born charges
cannot be read from symmetric tensors, and must be stated for others. The Materials Project DFPT file in
``../shared`` is imported for real.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write

from ionfield.models import keys
from ionfield.models.data.imports import DatasetImportError, ImportSettings, read_frames

from ...conftest import SHARED

MP_BEC = SHARED / 'data' / 'bec' / 'mp-dfpt-bec.xyz'
RY_BOHR = units.Ry / units.Bohr
KBAR = 0.1 * units.GPa


def _copper(strain: float = 0.0, shift: float = 0.0) -> Atoms:
    """fcc Cu (EMT, an analytic potential) with a uniform strain and atom 0 moved along x."""
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    atoms.rattle(0.05, seed=3)
    atoms.set_cell(atoms.cell.array * (1 + strain), scale_atoms=True)
    atoms.positions[0, 0] += shift
    atoms.calc = EMT()
    return atoms


def _foreign(atoms: Atoms, with_virial: bool = False) -> Atoms:
    """What a QE-style file holds: energy in Ry, forces in Ry/bohr, stress in kbar with the pressure sign."""
    out = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
    stress = atoms.get_stress(voigt=False)
    out.info['E_ry'] = atoms.get_potential_energy() / units.Ry
    out.arrays['F_ry_bohr'] = atoms.get_forces() / RY_BOHR
    if with_virial:
        out.info['W_ry'] = (-atoms.get_volume() * stress / units.Ry).reshape(9)
    else:
        out.info['sigma_kbar'] = (-stress / KBAR).reshape(9)
    return out


QE_STYLE = {
    'energy_key': 'E_ry',
    'forces_key': 'F_ry_bohr',
    'stress_key': 'sigma_kbar',
    'energy_unit': 'Ry',
    'forces_unit': 'Ry/bohr',
    'stress_unit': 'kbar',
    'stress_sign': 'compressive',
}


def test_foreign_units_obey_force_and_stress_derivatives_of_the_energy(tmp_path):
    h, eps = 1e-4, 1e-4
    images = [_copper(), _copper(shift=h), _copper(shift=-h), _copper(strain=eps), _copper(strain=-eps)]
    path = tmp_path / 'qe_style.xyz'
    write(path, [_foreign(atoms) for atoms in images])
    dataset, report = read_frames(path, ImportSettings.from_dict(QE_STYLE))
    zero, plus, minus, stretched, squeezed = dataset
    assert report.label_counts == {'energy': 5, 'forces': 5, 'stress': 5, 'born_charges': 0, 'eps_inf': 0}
    assert report.absent_labels == ['born_charges', 'dielectric']

    force_x = -(plus.energy - minus.energy) / (2 * h)
    assert zero.forces[0, 0] == pytest.approx(force_x, rel=1e-4)
    derivative = (stretched.energy - squeezed.energy) / (2 * eps)
    volume = abs(np.linalg.det(zero.cell))
    assert volume * np.trace(zero.stress) == pytest.approx(derivative, rel=1e-3)
    np.testing.assert_allclose(zero.stress, images[0].get_stress(voigt=False), atol=1e-10)


def test_a_virial_becomes_the_same_stress(tmp_path):
    atoms = _copper(strain=0.01)
    path = tmp_path / 'virial.xyz'
    write(path, [_foreign(atoms, with_virial=True)])
    settings = ImportSettings.from_dict({**QE_STYLE, 'stress_key': None, 'virial_key': 'W_ry'})
    (frame,), report = read_frames(path, settings)
    np.testing.assert_allclose(frame.stress, atoms.get_stress(voigt=False), atol=1e-10)
    assert 'virial' in report.conversions['stress']
    # a virial alone replaces the default stress key; stated together they are refused
    assert ImportSettings.from_dict({'virial_key': 'W_ry'}).stress_key is None
    with pytest.raises(DatasetImportError, match='both set'):
        ImportSettings.from_dict({'virial_key': 'W_ry', 'stress_key': 'sigma'})


def _with_born(born: np.ndarray) -> Atoms:
    atoms = bulk('LiF', 'rocksalt', a=4.03)
    atoms.arrays['zstar'] = born.reshape(len(atoms), 9)
    return atoms


def test_born_order_must_be_stated_when_it_matters(tmp_path):
    rng = np.random.default_rng(0)
    born = rng.normal(0.0, 0.3, (2, 3, 3)) + np.diag([1.1, 1.0, 0.9])
    born -= born.mean(axis=0)  # the sum rule holds: order is the only question
    path = tmp_path / 'zstar.xyz'
    write(path, [_with_born(born)])
    with pytest.raises(DatasetImportError, match=r'frame 0 \(atom \d\) are not symmetric.*born_order'):
        read_frames(path, ImportSettings.from_dict({'born_charges_key': 'zstar'}))
    (frame,), report = read_frames(
        path, ImportSettings.from_dict({'born_charges_key': 'zstar', 'born_order': 'displacement_field'})
    )
    np.testing.assert_allclose(frame.born_charges, born.transpose(0, 2, 1))
    assert report.born_order == 'displacement_field' and report.conversions['born_charges'] == 'transposed'
    assert report.max_antisymmetry == pytest.approx(np.abs(born - born.transpose(0, 2, 1)).max() / 2)
    (frame,), _ = read_frames(
        path, ImportSettings.from_dict({'born_charges_key': 'zstar', 'born_order': 'field_displacement'})
    )
    np.testing.assert_allclose(frame.born_charges, born)


def test_symmetric_born_charges_need_no_order_and_the_sum_rule_is_flagged(tmp_path):
    good = np.array([np.eye(3) * 1.05, -np.eye(3) * 1.05])
    off = np.array([np.eye(3) * 1.05, -np.eye(3) * 0.95])  # the sum rule broken by 0.1 e
    path = tmp_path / 'sym.xyz'
    write(path, [_with_born(good), _with_born(off)])
    dataset, report = read_frames(path, ImportSettings.from_dict({'born_charges_key': 'zstar'}))
    assert report.born_order == 'symmetric' and report.max_antisymmetry == 0.0
    assert report.max_asr_violation == pytest.approx(0.1)
    assert [keys.ASR_FLAG in frame.flags for frame in dataset] == [False, True]
    assert report.n_asr_flagged == 1


@pytest.mark.parametrize(
    ('settings', 'message'),
    [
        ({'energy_unit': 'hartree'}, "energy_unit 'hartree' is not one of eV, meV, Ry, Ha"),
        ({'stress_sign': 'positive'}, 'stress_sign'),
        ({'born_order': 'row'}, 'born_order'),
        ({'asr_threshold': 0}, 'asr_threshold must be a number above 0'),
        ({'energy_kye': 'E'}, 'unknown import setting'),
    ],
)
def test_bad_mappings_are_refused_naming_what_to_change(settings, message):
    with pytest.raises(DatasetImportError, match=message):
        ImportSettings.from_dict(settings)


def test_a_file_without_any_stated_label_or_with_wrong_shapes_is_refused(tmp_path):
    path = tmp_path / 'bare.xyz'
    atoms = bulk('LiF', 'rocksalt', a=4.03)
    atoms.arrays['zstar'] = np.zeros((2, 6))
    write(path, [atoms])
    with pytest.raises(DatasetImportError, match=r'no frame has any of the stated labels.*arrays \[.*zstar'):
        read_frames(path)
    with pytest.raises(DatasetImportError, match='12 numbers for 2 atoms; Born charges need 9 per atom'):
        read_frames(path, ImportSettings.from_dict({'born_charges_key': 'zstar'}))
    with pytest.raises(DatasetImportError, match='does not exist'):
        read_frames(tmp_path / 'nowhere.xyz')


@pytest.mark.skipif(not MP_BEC.exists(), reason='../shared/data/bec is not here')
def test_materials_project_dfpt_born_charges():
    """614 structures, 10,546 atoms; about 4 % break the sum rule by more than 0.1 e (shared/README.md)."""
    settings = {'born_charges_key': 'REF_becs', 'born_order': 'field_displacement', 'asr_threshold': 0.1}
    dataset, report = read_frames(MP_BEC, ImportSettings.from_dict(settings))
    assert (len(dataset), dataset.natoms) == (614, 10546)
    assert report.label_counts['born_charges'] == 614 and report.label_counts['energy'] == 0
    assert report.n_asr_flagged == 26  # 4.2 %
    # zincblende gamma-AgI (entry 54): isotropic tensors, Ag +1.17 e and I -1.17 e
    agi = dataset[54]
    assert agi.to_ase().get_chemical_formula() == 'AgI'
    np.testing.assert_allclose(np.diagonal(agi.born_charges, axis1=1, axis2=2), [[1.171] * 3, [-1.174] * 3], atol=1e-3)
    # a file with antisymmetric tensors is refused without a stated order
    with pytest.raises(DatasetImportError, match='frame 265'):
        read_frames(MP_BEC, ImportSettings.from_dict({'born_charges_key': 'REF_becs'}))
