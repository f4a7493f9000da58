"""The plain-Python dataset: validation, ASR handling, splitting, one-file and extxyz round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ionfield.models.data import BORN_CHARGE_CONVENTION, Dataset, Frame, asr_corrected, asr_violation
from ionfield.models.keys import ASR_FLAG
from ionfield.models.md.field import field_forces

from ...conftest import SHARED

VASPRUN = SHARED / 'data' / 'vasp-dfpt' / 'bec_full' / 'vasprun.xml'


def make_frame(seed: int, natoms: int = 4, labels: bool = True, born: bool = True, **changes) -> Frame:
    rng = np.random.default_rng(seed)
    stress = rng.normal(size=(3, 3)) * 1e-3
    frame = Frame(
        numbers=rng.choice([3, 7, 47], size=natoms),
        positions=rng.uniform(0, 4, size=(natoms, 3)),
        cell=np.diag([4.0, 4.5, 5.0]),
        pbc=True,
        energy=-3.0 * natoms + rng.normal() if labels else math.nan,
        forces=rng.normal(size=(natoms, 3)) if labels else None,
        stress=stress + stress.T if labels else None,
        born_charges=rng.normal(size=(natoms, 3, 3)) if born else None,
        eps_inf=np.diag([5.0, 5.5, 6.0]) if born else None,
        source_uuid=f'00000000-0000-4000-8000-{seed:012d}',
    )
    return frame.replace(**changes) if changes else frame


def make_dataset(n: int = 6) -> Dataset:
    return Dataset(make_frame(seed, natoms=2 + seed % 3, born=seed % 2 == 0) for seed in range(n))


def assert_same(first: Dataset, second: Dataset, atol: float = 0.0) -> None:
    """Equal frame by frame (NaN equals NaN); ``atol`` for text formats that print 8 decimals."""
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        for name in ('numbers', 'pbc'):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        for name in ('positions', 'cell', 'forces', 'stress', 'born_charges', 'eps_inf', 'energy'):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=atol, err_msg=name)
        assert (a.weight, a.flags, a.source_uuid) == (b.weight, b.flags, b.source_uuid)


def test_missing_labels_are_nan_with_the_right_shapes():
    frame = make_frame(1, natoms=3, labels=False, born=False)
    assert math.isnan(frame.energy)
    assert frame.forces.shape == (3, 3) and np.isnan(frame.forces).all()
    assert frame.born_charges.shape == (3, 3, 3) and np.isnan(frame.born_charges).all()
    assert not (frame.has_energy or frame.has_forces or frame.has_stress or frame.has_born_charges)
    assert make_frame(1).has_born_charges and make_frame(1).species == [
        {3: 'Li', 7: 'N', 47: 'Ag'}[n] for n in make_frame(1).numbers
    ]


@pytest.mark.parametrize(
    ('changes', 'message'),
    [
        ({'positions': np.zeros((3, 3))}, 'positions has shape'),
        ({'forces': np.zeros((4, 2))}, 'forces has shape'),
        ({'born_charges': np.zeros((4, 3))}, 'born_charges has shape'),
        ({'positions': np.full((4, 3), np.nan)}, 'positions contain NaN'),
        ({'forces': np.array([[np.nan, 0, 0]] + [[0, 0, 0]] * 3)}, 'forces is partly NaN'),
        ({'stress': np.array([[np.inf, 0, 0], [0, 0, 0], [0, 0, 0]])}, 'stress contains inf'),
        ({'flags': {'a,b'}}, 'flags'),
    ],
)
def test_inconsistent_frames_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        make_frame(0, **changes)


def test_errors_name_the_frame_index():
    good = make_frame(0).to_ase()
    bad = make_frame(1).to_ase()
    bad.calc.results['forces'][0, 0] = np.nan
    with pytest.raises(ValueError, match=r'frame 1: forces is partly NaN'):
        Dataset.from_ase([good, bad])


def test_born_charge_convention_and_field_force():
    assert 'first index field' in BORN_CHARGE_CONVENTION and 'F_i = e Z_i^T E' in BORN_CHARGE_CONVENTION
    born = np.zeros((1, 3, 3))
    born[0, 0, 1] = 2.0  # a field along x pushes the atom along y
    np.testing.assert_allclose(field_forces(born, [0.1, 0.0, 0.0]), [[0.0, 0.2, 0.0]])
    np.testing.assert_allclose(field_forces(born, [0.0, 0.1, 0.0]), [[0.0, 0.0, 0.0]])


def test_asr_violation_correction_and_flag():
    born = np.array([np.eye(3) * 1.0, -np.eye(3) * 0.7])  # sum = 0.3 on the diagonal
    frame = make_frame(0, natoms=2, born_charges=born)
    assert asr_violation(frame.born_charges) == pytest.approx(0.3)
    corrected = frame.born_charges_asr
    np.testing.assert_allclose(corrected.sum(axis=0), 0.0, atol=1e-14)
    np.testing.assert_allclose(corrected[0], np.eye(3) * 0.85)
    np.testing.assert_array_equal(frame.born_charges, born)  # the raw tensors are kept
    np.testing.assert_allclose(asr_corrected(born), corrected)
    assert math.isnan(asr_violation(make_frame(0, born=False).born_charges))

    dataset = Dataset([frame, make_frame(1, natoms=2, born_charges=born * 0.0), make_frame(2, born=False)])
    flagged = dataset.flag_asr(0.1)
    assert [ASR_FLAG in f.flags for f in flagged] == [True, False, False]
    assert not any(f.flags for f in dataset)  # the original is not mutated


def test_split_is_reproducible_disjoint_and_complete():
    dataset = Dataset(make_frame(seed, natoms=2) for seed in range(20))
    train, valid, test = dataset.split((0.8, 0.1, 0.1), seed=7)
    assert (len(train), len(valid), len(test)) == (16, 2, 2)
    uuids = [set(part.source_uuids) for part in (train, valid, test)]
    assert set.union(*uuids) == set(dataset.source_uuids) and sum(map(len, uuids)) == 20
    again = dataset.split((0.8, 0.1, 0.1), seed=7)
    assert [p.source_uuids for p in again] == [p.source_uuids for p in (train, valid, test)]
    other = dataset.split((0.8, 0.1, 0.1), seed=8)
    assert [p.source_uuids for p in other] != [p.source_uuids for p in (train, valid, test)]
    with pytest.raises(ValueError, match='sum to 1'):
        dataset.split((0.5, 0.1))


def test_merge_filter_getitem():
    first, second = make_dataset(3), Dataset([make_frame(10)])
    merged = first.merge(second)
    assert len(merged) == 4 and merged[3] is second[0]
    assert Dataset.concatenate([first, second]).source_uuids == merged.source_uuids
    assert len(merged.filter(lambda f: f.has_born_charges)) == 3
    assert isinstance(merged[1:3], Dataset) and len(merged[1:3]) == 2


def test_statistics_values():
    frames = [make_frame(0, natoms=2, born=False), make_frame(1, natoms=3, labels=False)]
    stats = Dataset(frames).statistics()
    assert (stats['n_frames'], stats['n_atoms']) == (2, 5)
    assert sum(stats['species_counts'].values()) == 5
    assert (stats['n_energy'], stats['n_forces'], stats['n_stress'], stats['n_born_charges']) == (1, 1, 1, 1)
    assert stats['energy_per_atom_mean'] == pytest.approx(frames[0].energy / 2)
    assert stats['energy_per_atom_std'] == 0.0
    assert stats['max_abs_force'] == pytest.approx(np.linalg.norm(frames[0].forces, axis=1).max())
    assert stats['asr_violation_max'] == pytest.approx(asr_violation(frames[1].born_charges))


def test_npz_round_trip_is_exact_including_nan(tmp_path):
    dataset = make_dataset().flag_asr(0.0)
    dataset = Dataset([*dataset, make_frame(99, natoms=1, labels=False, born=False, weight=0.5, source_uuid='')])
    path = tmp_path / 'frames.data'  # no .npz suffix: the file is written exactly where asked
    dataset.save(path)
    assert path.exists()
    assert_same(Dataset.load(path), dataset)
    empty = tmp_path / 'empty.npz'
    Dataset().save(empty)
    assert len(Dataset.load(empty)) == 0


def test_extxyz_round_trip(tmp_path):
    dataset = make_dataset().flag_asr(0.0)
    path = tmp_path / 'frames.extxyz'
    dataset.to_extxyz(path)
    back = Dataset.from_extxyz(path)
    assert_same(back, dataset, atol=1e-7)
    assert [ASR_FLAG in frame.flags for frame in back] == [frame.has_born_charges for frame in dataset]


def test_nequip_reads_our_extxyz(tmp_path):
    """NequIP's own reader recovers every label under its keys, (N, 3, 3) Born charges, and NaN where absent."""
    pytest.importorskip('torch')
    from nequip.data.dataset import ASEDataset

    dataset = make_dataset(4)
    path = tmp_path / 'frames.extxyz'
    dataset.to_extxyz(path)
    data = ASEDataset(file_path=str(path)).data_list
    for frame, item in zip(dataset, data, strict=True):
        np.testing.assert_allclose(item['pos'].numpy(), frame.positions, atol=1e-7)
        np.testing.assert_allclose(item['total_energy'].numpy(), [[frame.energy]])
        np.testing.assert_allclose(item['forces'].numpy(), frame.forces, atol=1e-7)
        np.testing.assert_allclose(item['stress'].numpy(), frame.stress[None])
        assert item['born_effective_charges'].shape == (frame.natoms, 3, 3)
        np.testing.assert_allclose(item['born_effective_charges'].numpy(), frame.born_charges, atol=1e-7)
        np.testing.assert_allclose(item['dielectric_tensor'].numpy(), frame.eps_inf[None])
    assert np.isnan(data[1]['born_effective_charges'].numpy()).all()


def test_from_ase_reads_calculator_and_arrays():
    atoms = Atoms('Li2', positions=[[0, 0, 0], [1.5, 0, 0]], cell=np.eye(3) * 3, pbc=True)
    forces = [[0.1, 0, 0], [-0.1, 0, 0]]
    atoms.calc = SinglePointCalculator(atoms, energy=-4.0, forces=forces, stress=[1, 2, 3, 4, 5, 6])
    born = np.arange(18, dtype=float).reshape(2, 3, 3)
    atoms.arrays['born_effective_charges'] = born.reshape(2, 9)
    frame = Dataset.from_ase([atoms])[0]
    assert frame.energy == -4.0 and frame.forces[0, 0] == 0.1
    np.testing.assert_array_equal(frame.stress, [[1, 6, 5], [6, 2, 4], [5, 4, 3]])
    np.testing.assert_array_equal(frame.born_charges, born)
    assert not frame.has_eps_inf and frame.source_uuid == ''


def test_from_pymatgen():
    from pymatgen.core import Lattice, Structure

    structure = Structure(Lattice.cubic(3.0), ['Li', 'N'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    structure.add_site_property('forces', [[0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]])
    structure.properties['energy'] = -7.5
    frame = Dataset.from_pymatgen([structure])[0]
    assert frame.species == ['Li', 'N'] and frame.energy == -7.5
    np.testing.assert_allclose(frame.positions[1], [1.5, 1.5, 1.5])
    np.testing.assert_allclose(frame.forces[1], [-0.1, 0, 0])
    assert not frame.has_born_charges and not frame.has_stress


@pytest.mark.skipif(not VASPRUN.exists(), reason=f'shared VASP DFPT data not present at {VASPRUN}')
def test_real_vasprun_energies_and_forces(tmp_path):
    import ase.io

    images = ase.io.read(VASPRUN, index=':')
    dataset = Dataset.from_ase(images)
    assert len(dataset) == len(images) and dataset[-1].has_energy and dataset[-1].has_forces
    assert dataset[-1].energy == pytest.approx(images[-1].get_potential_energy())
    dataset.save(tmp_path / 'vasp.npz')
    assert_same(Dataset.load(tmp_path / 'vasp.npz'), dataset)
