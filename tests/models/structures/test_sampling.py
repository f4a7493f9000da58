"""Supercells, rattling, strains and file reading of ``ionfield.models.structures.sampling`` (no AiiDA)."""

import ase.io
import numpy as np
import pytest
from ase import Atoms

from ionfield.models.structures import sampling
from ionfield.models.structures.checks import analyse_structure
from ionfield.models.structures.reference import alpha_li3n, beta_agi, beta_li3po4

# --- supercells -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('matrix', 'multiple'),
    [(2, 8), ([1, 2, 3], 6), ([[1, 1, 0], [-1, 1, 0], [0, 0, 2]], 4), (np.eye(3, dtype=int), 1)],
)
def test_supercell_multiplies_atoms_and_volume_and_keeps_the_crystal(matrix, multiple):
    atoms = alpha_li3n()
    supercell = sampling.make_supercell(atoms, matrix)
    assert len(supercell) == multiple * len(atoms)
    assert supercell.get_volume() == pytest.approx(multiple * atoms.get_volume())
    assert supercell.get_chemical_symbols().count('N') == multiple
    assert analyse_structure(supercell).min_distance == pytest.approx(3.875 / 2)  # the same crystal
    assert supercell.info['source'] == atoms.info['source']
    assert np.array_equal(supercell.info['supercell'], sampling._integer_matrix(matrix))
    assert 'spacegroup' not in supercell.info


def test_supercell_cell_is_matrix_times_cell():
    atoms = beta_agi()
    matrix = [[2, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert sampling.make_supercell(atoms, matrix).cell.array == pytest.approx(np.array(matrix) @ atoms.cell.array)


@pytest.mark.parametrize(
    ('matrix', 'words'),
    [
        ([[1, 0, 0], [0, 1, 0], [1, 1, 0]], 'singular'),
        ([2, 2, 0], 'singular'),
        ([2, 2.5, 2], 'integers'),
        ([[1, 0, 0], [0, 1, 0], [0, 0, -1]], 'left-handed'),
        ([2, 2], 'shape'),
        (['a', 'b', 'c'], 'numbers'),
    ],
)
def test_supercell_refuses_bad_matrices(matrix, words):
    with pytest.raises(ValueError, match=words):
        sampling.make_supercell(alpha_li3n(), matrix)


# --- rattling ---------------------------------------------------------------------------------------------


def displacements(atoms: Atoms, copies: list[Atoms]) -> np.ndarray:
    return np.array([copy.positions - atoms.positions for copy in copies])


def test_rattle_is_reproducible_and_seeds_differ():
    atoms = alpha_li3n()
    first = displacements(atoms, sampling.rattle(atoms, 0.05, seed=7, count=2))
    again = displacements(atoms, sampling.rattle(atoms, 0.05, seed=7, count=2))
    other = displacements(atoms, sampling.rattle(atoms, 0.05, seed=8, count=2))
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    assert not np.allclose(first[0], first[1])  # copies differ from each other


def test_rattle_copy_does_not_depend_on_count():
    atoms = beta_li3po4()
    three = sampling.rattle(atoms, 0.1, seed=3, count=3)
    two = sampling.rattle(atoms, 0.1, seed=3, count=2)
    assert [copy.positions.tolist() for copy in three[:2]] == [copy.positions.tolist() for copy in two]


def test_rattle_displacements_are_gaussian_with_stdev_and_independent():
    atoms = sampling.make_supercell(alpha_li3n(), 4)  # 256 atoms
    stdev = 0.08
    d = displacements(atoms, sampling.rattle(atoms, stdev, seed=11, count=4))  # 3072 numbers
    assert d.std() == pytest.approx(stdev, rel=0.05)  # 5 % is about four standard errors
    assert abs(d.mean()) < 4 * stdev / np.sqrt(d.size)
    assert abs(np.corrcoef(d[0].ravel(), d[1].ravel())[0, 1]) < 0.1  # independent streams per copy
    assert np.abs(d).max() < 6 * stdev


def test_rattle_keeps_cell_and_original_and_records_itself():
    atoms = alpha_li3n()
    before = atoms.positions.copy()
    copies = sampling.rattle(atoms, 0.02, seed=5, count=2)
    assert np.array_equal(atoms.positions, before)
    assert np.array_equal(copies[1].cell.array, atoms.cell.array)
    assert copies[1].info['rattle'] == {'stdev': 0.02, 'seed': 5, 'index': 1}
    assert copies[1].info['source'] == atoms.info['source']
    assert np.array_equal(sampling.rattle(atoms, 0.0, seed=5)[0].positions, atoms.positions)


@pytest.mark.parametrize(
    ('kwargs', 'words'),
    [
        ({'stdev': -0.1, 'seed': 1, 'count': 1}, 'standard deviation'),
        ({'stdev': float('nan'), 'seed': 1, 'count': 1}, 'standard deviation'),
        ({'stdev': 0.1, 'seed': 1, 'count': 0}, 'number of copies'),
        ({'stdev': 0.1, 'seed': -1, 'count': 1}, 'seed'),
        ({'stdev': 0.1, 'seed': 1.5, 'count': 1}, 'seed'),
        ({'stdev': 0.1, 'seed': True, 'count': 1}, 'seed'),
    ],
)
def test_rattle_refuses_bad_parameters(kwargs, words):
    with pytest.raises(ValueError, match=words):
        sampling.rattle(alpha_li3n(), **kwargs)


# --- strains ----------------------------------------------------------------------------------------------


def test_strain_tensor_from_scalar_voigt_and_matrix():
    assert sampling.strain_tensor(0.01) == pytest.approx(0.01 * np.eye(3))
    voigt = sampling.strain_tensor([0.01, 0.02, 0.03, 0.04, 0.06, 0.08])  # engineering shears
    assert voigt == pytest.approx(np.array([[0.01, 0.04, 0.03], [0.04, 0.02, 0.02], [0.03, 0.02, 0.03]]))
    matrix = [[0.01, 0.002, 0], [0.002, 0, 0], [0, 0, -0.01]]
    assert sampling.strain_tensor(matrix) == pytest.approx(np.array(matrix))


def test_strain_deforms_cell_and_keeps_scaled_positions():
    atoms = beta_li3po4()
    eps = np.array([[0.01, 0.005, 0.0], [0.005, -0.02, 0.001], [0.0, 0.001, 0.0]])
    strained = sampling.strain(atoms, eps)
    assert strained.cell.array == pytest.approx(atoms.cell.array @ (np.eye(3) + eps))
    assert strained.get_scaled_positions() == pytest.approx(atoms.get_scaled_positions())
    assert strained.info['strain'] == pytest.approx(eps)
    assert atoms.cell.cellpar()[0] == pytest.approx(6.176136)  # the original is untouched
    isotropic = sampling.strain(atoms, 0.02)
    assert isotropic.get_volume() == pytest.approx(atoms.get_volume() * 1.02**3)


@pytest.mark.parametrize(
    ('value', 'words'),
    [
        ([[0, 0.01, 0], [0, 0, 0], [0, 0, 0]], 'symmetric'),
        ([0.01, 0.02], 'shape'),
        (-1.0, 'collapses'),
        (float('inf'), 'finite'),
    ],
)
def test_strain_refuses_bad_tensors(value, words):
    with pytest.raises(ValueError, match=words):
        sampling.strain(alpha_li3n(), value)


def test_random_strains_are_symmetric_bounded_reproducible_and_count_independent():
    atoms = alpha_li3n()
    five = sampling.random_strains(atoms, 0.03, seed=2, count=5)
    tensors = np.array([copy.info['strain'] for copy in five])
    assert np.allclose(tensors, tensors.transpose(0, 2, 1))
    assert np.abs(tensors).max() <= 0.03 and np.abs(tensors).max() > 0.01
    assert len({tuple(t.ravel()) for t in tensors}) == 5
    for copy, eps in zip(five, tensors, strict=True):
        assert copy.cell.array == pytest.approx(atoms.cell.array @ (np.eye(3) + eps))
    two = sampling.random_strains(atoms, 0.03, seed=2, count=2)
    assert np.array_equal([copy.cell.array for copy in two], [copy.cell.array for copy in five[:2]])
    other = sampling.random_strains(atoms, 0.03, seed=3, count=1)
    assert not np.allclose(other[0].cell.array, five[0].cell.array)
    assert five[4].info['random_strain'] == {'max_strain': 0.03, 'seed': 2, 'index': 4}


@pytest.mark.parametrize('max_strain', [-0.01, 1 / 3, 0.5])
def test_random_strains_refuse_large_or_negative_amplitudes(max_strain):
    with pytest.raises(ValueError, match='max_strain'):
        sampling.random_strains(alpha_li3n(), max_strain, seed=1, count=1)


# --- reading files ----------------------------------------------------------------------------------------


def assert_same_structure(read: Atoms, written: Atoms) -> None:
    assert read.get_chemical_symbols() == written.get_chemical_symbols()
    assert read.cell.cellpar() == pytest.approx(written.cell.cellpar(), abs=1e-4)
    difference = read.get_scaled_positions() - written.get_scaled_positions()
    assert np.abs(difference - np.round(difference)).max() < 1e-4


@pytest.mark.parametrize(
    ('filename', 'format'),
    [('beta.cif', 'cif'), ('POSCAR', 'vasp'), ('CONTCAR_relaxed', 'vasp'), ('x.vasp', 'vasp'), ('x.xyz', 'extxyz')],
)
def test_round_trip_through_ase_write(tmp_path, filename, format):
    atoms = beta_li3po4()
    path = tmp_path / filename
    ase.io.write(path, atoms, format=format)
    read = sampling.read_structure(path)
    assert_same_structure(read, atoms)
    assert read.info['source'] == f'read from {path} ({format})'
    # the same file as bytes: the format from the name given, else from the content
    assert_same_structure(sampling.read_structure(path.read_bytes(), name=filename), atoms)
    assert_same_structure(sampling.read_structure(path.read_bytes()), atoms)


def test_guess_format():
    assert sampling.guess_format('a/b/CONTCAR') == 'vasp'
    assert sampling.guess_format('X.CIF') == 'cif'
    assert sampling.guess_format('structure.extxyz') == 'extxyz'
    assert sampling.guess_format('structure.dat') is None
    assert sampling.guess_format('structure.dat', 'data_x\n_cell_length_a 3\n') == 'cif'
    assert sampling.guess_format(None, b'2\nLattice="1 0 0 0 1 0 0 0 1"\nH 0 0 0\nH 0 0 1\n') == 'extxyz'


def test_unreadable_files_name_themselves(tmp_path):
    garbage = tmp_path / 'broken.cif'
    garbage.write_text('this is not a CIF\n')
    with pytest.raises(ValueError, match=r'could not read `.*broken\.cif` as cif'):
        sampling.read_structure(garbage)
    with pytest.raises(ValueError, match='cannot tell the format of `notes.txt`'):
        sampling.read_structure(b'hello\nworld\n', name='notes.txt')
    with pytest.raises(ValueError, match='unsupported structure format `pdb`'):
        sampling.read_structure(b'x', format='pdb')
    with pytest.raises(ValueError, match='not a text file'):
        sampling.read_structure(b'\xff\xfe\x00', format='cif', name='binary.cif')
    with pytest.raises(FileNotFoundError, match='missing.cif'):
        sampling.read_structure(tmp_path / 'missing.cif')


def test_trajectories_and_disordered_cifs_are_refused(tmp_path):
    frames = tmp_path / 'two.extxyz'
    ase.io.write(frames, [alpha_li3n(), beta_agi()])
    with pytest.raises(ValueError, match='holds 2 structures'):
        sampling.read_structure(frames)
    disordered = (
        'data_agi\n_cell_length_a 5.07\n_cell_length_b 5.07\n_cell_length_c 5.07\n'
        "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'I m -3 m'\n"
        'loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n'
        '_atom_site_fract_z\n_atom_site_occupancy\nI1 I 0 0 0 1\nAg1 Ag 0.25 0 0.5 0.1667\n'
    )
    with pytest.raises(ValueError, match=r'partial occupancies \(Ag 0.1667\)'):
        sampling.read_structure(disordered.encode(), name='alpha-AgI.cif')
