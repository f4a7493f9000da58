"""VASP -> project conversions, proven on real VASP outputs read independently of the code under test.

The reference values are read from the OUTCAR / vasprun.xml text with the small regex readers below (not with
parsevasp, which the conversions use), so a wrong index, sign or unit fails here. Data: ``../shared/data/vasp-dfpt``
(aiida-vasp's test data, VASP 5.4; skipped when absent) and ASE's own DFPT vasprun.xml (VASP 6.3, NaCl).
"""

from __future__ import annotations

import logging
import pathlib
import re

import ase
import ase.io
import numpy as np
import pytest

from ionfield.models.data import asr_corrected
from ionfield.models.labels import vasp as vasp_labels

from ...conftest import SHARED

SHARED_VASP = SHARED / 'data' / 'vasp-dfpt'
ASE_DFPT = pathlib.Path(ase.__file__).parent / 'test' / 'testdata' / 'vasp' / 'vasprun_dfpt.xml'

requires_shared = pytest.mark.skipif(
    not (SHARED_VASP / 'bec_full' / 'OUTCAR').is_file(),
    reason='real VASP outputs ../shared/data/vasp-dfpt are not present (shared data, not shipped with the package)',
)
requires_ase_dfpt = pytest.mark.skipif(
    not ASE_DFPT.is_file(), reason='this ASE install does not ship test/testdata/vasp/vasprun_dfpt.xml'
)

BEC_NATOMS = 26


# --- independent readers of the raw text -----------------------------------------------------------------


def _floats(line: str) -> list[float]:
    return [float(value) for value in re.findall(r'[-+]?\d*\.\d+(?:[eE][-+]?\d+)?', line)]


def _text(run: str, name: str) -> str:
    return (SHARED_VASP / run / name).read_text(errors='replace')


def _lines_after(text: str, header: str, skip: int, count: int, last: bool = True) -> list[str]:
    lines = text.splitlines()
    starts = [index for index, line in enumerate(lines) if header in line]
    assert starts, f'`{header}` not found'
    start = starts[-1 if last else 0] + skip
    return lines[start : start + count]


def outcar_toten(text: str) -> float:
    block = _lines_after(text, 'FREE ENERGIE OF THE ION-ELECTRON SYSTEM', 2, 1)
    return _floats(block[0])[0]


def outcar_forces(text: str, natoms: int) -> np.ndarray:
    return np.array([_floats(line)[3:6] for line in _lines_after(text, 'TOTAL-FORCE (eV/Angst)', 2, natoms)])


def outcar_stress_kbar(text: str) -> np.ndarray:
    """The last ``in kB`` line as a 3x3 matrix (VASP order xx yy zz xy yz zx)."""
    xx, yy, zz, xy, yz, zx = _floats(_lines_after(text, '  in kB  ', 0, 1)[0])
    return np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]])


def outcar_cumulative_born(text: str, natoms: int) -> np.ndarray:
    lines = _lines_after(text, 'BORN EFFECTIVE CHARGES (in e, cummulative output)', 2, 4 * natoms)
    return np.array([[_floats(lines[4 * ion + 1 + row]) for row in range(3)] for ion in range(natoms)])


def outcar_direction_blocks(text: str, natoms: int) -> tuple[np.ndarray, np.ndarray]:
    """Per field direction a: the three numbers per ion, and VASP's ``total drift`` line."""
    blocks, drifts = [], []
    for direction in (1, 2, 3):
        header = f'DIRECTION {direction}           BORN EFFECTIVE CHARGE'
        lines = _lines_after(text, header, 2, natoms + 2)
        blocks.append([_floats(line.split('(')[0])[3:6] for line in lines[:natoms]])
        assert 'total drift' in lines[natoms + 1]
        drifts.append(_floats(lines[natoms + 1].split(':')[1]))
    return np.array(blocks).transpose(1, 0, 2), np.array(drifts)


def outcar_tensor(text: str, header: str) -> np.ndarray:
    return np.array([_floats(line) for line in _lines_after(text, header, 2, 3)])


def vasprun_ionic_energies(text: str) -> dict[str, float]:
    """The ``<energy>`` block of the last ionic step (it follows the ``stress`` array; scsteps have their own)."""
    blocks = re.findall(r'<varray name="stress" >.*?</varray>\s*<energy>(.*?)</energy>', text, flags=re.DOTALL)
    return {name: float(value) for name, value in re.findall(r'name="(\w+)">\s*(\S+)', blocks[-1])}


def vasprun_first_born_rows(text: str) -> np.ndarray:
    block = text[text.index('<array name="born_charges"') :]
    rows = re.findall(r'<v>([^<]*)</v>', block)[:3]
    return np.array([_floats(row) for row in rows])


def aiida_vasp_quantities(run: str, energy_types=('energy_free',)) -> dict:
    """The quantities exactly as aiida-vasp's VaspParser gets them from vasprun.xml."""
    from aiida_vasp.parsers.content_parsers.vasprun import VasprunParser

    with open(SHARED_VASP / run / 'vasprun.xml', 'rb') as handle:
        parser = VasprunParser(handler=handle, settings={'energy_type': list(energy_types)})
        quantities, errored = parser.get_all_quantities()
    assert not errored
    return quantities


# --- energy ----------------------------------------------------------------------------------------------


@requires_shared
def test_energy_is_toten_the_free_energy():
    quantities = aiida_vasp_quantities('bec_full', ('energy_free', 'energy_extrapolated'))
    assert vasp_labels.energy_from_vasp(quantities['total_energies']) == pytest.approx(
        outcar_toten(_text('bec_full', 'OUTCAR')), abs=1e-8
    )
    # A smeared run (SIGMA=0.2) where the energies differ: the label is the free energy e_fr_energy = TOTEN.
    quantities = aiida_vasp_quantities('localfield', ('energy_free', 'energy_extrapolated'))
    reference = vasprun_ionic_energies(_text('localfield', 'vasprun.xml'))
    energy = vasp_labels.energy_from_vasp(quantities['total_energies'])
    assert energy == pytest.approx(reference['e_fr_energy'], abs=1e-8)
    assert quantities['total_energies']['energy_extrapolated'] == pytest.approx(energy + 0.00118411, abs=1e-7)
    # VASP 5 mislabels the other two in the ionic block: "e_0_energy" holds the entropy term, not an energy.
    assert abs(reference['e_0_energy']) < 0.01


def test_energy_needs_the_free_energy_parsed():
    with pytest.raises(ValueError, match='energy_free'):
        vasp_labels.energy_from_vasp({'energy_extrapolated': -1.0})


# --- forces ----------------------------------------------------------------------------------------------


@requires_shared
def test_forces_are_outcar_total_force():
    forces = vasp_labels.forces_from_vasp(aiida_vasp_quantities('bec_full')['forces'], BEC_NATOMS)
    assert np.allclose(forces, outcar_forces(_text('bec_full', 'OUTCAR'), BEC_NATOMS), atol=2e-6)
    with pytest.raises(ValueError, match='shape'):
        vasp_labels.forces_from_vasp(forces, BEC_NATOMS + 1)


@requires_shared
def test_forces_are_minus_the_energy_gradient():
    """IBRION=6 on Si: E(u) - E(0) = -F(u).u / 2 (harmonic) and F.u < 0, so F = -dE/du with no sign change."""
    from parsevasp.vasprun import Xml

    xml = Xml(file_path=str(SHARED_VASP / 'disp_details' / 'vasprun.xml'), logger=logging.getLogger(__name__))
    cells, positions, forces = xml.get_unitcell('all'), xml.get_positions('all'), xml.get_forces('all')
    energies = xml.get_energies('all', etype=['energy_free'], nosc=True)['energy_free_final']
    reference = np.asarray(positions[1]) @ np.asarray(cells[1])
    for step in (14, 15):  # the two displacements of atom 1 along x
        assert np.allclose(cells[step], cells[1])
        displacement = np.asarray(positions[step]) @ np.asarray(cells[step]) - reference
        force = vasp_labels.forces_from_vasp(forces[step], 2)
        assert np.abs(displacement).max() == pytest.approx(0.015, abs=1e-4)
        work = float(np.sum(force * displacement))
        assert work < 0
        assert energies[step - 1] - energies[0] == pytest.approx(-work / 2, rel=2e-3)


# --- stress ----------------------------------------------------------------------------------------------


@requires_shared
def test_stress_sign_from_the_alpha_z_term():
    """E_alphaZ is exactly C/V, so dE/d(strain_aa) = -E: VASP prints +E, i.e. -dE/d(strain), opposite to ASE."""
    outcar = _text('bec_full', 'OUTCAR')
    pscenc = _floats(_lines_after(outcar, 'alpha Z        PSCENC', 0, 1)[0])[0]
    alpha_row = _floats(_lines_after(outcar, '  Alpha Z  ', 0, 1)[0])
    assert alpha_row == pytest.approx([pscenc] * 3, abs=1e-5)
    volume = _floats(_lines_after(outcar, 'volume of cell :', 0, 1)[0])[0]
    # ASE: stress_aa = (1/V) dE/d(strain_aa) = -E_alphaZ / V for this term.
    printed_kbar = np.diag(alpha_row) / volume * vasp_labels.KBAR_PER_EV_PER_A3
    assert np.allclose(vasp_labels.stress_from_vasp(printed_kbar), -np.eye(3) * pscenc / volume)
    # ... and the ``in kB`` line (= vasprun ``stress``) is the same quantity as the eV table: Total / V.
    total = _floats(_lines_after(outcar, '  Total  ', 0, 1)[0])[:3]
    in_kb = outcar_stress_kbar(outcar)
    assert np.diag(in_kb) == pytest.approx(np.array(total) / volume * vasp_labels.KBAR_PER_EV_PER_A3, abs=2e-5)
    assert np.allclose(aiida_vasp_quantities('bec_full')['stress'], in_kb, atol=1e-5)


@requires_shared
def test_stress_matches_a_strain_finite_difference():
    """IBRION=6, ISIF=3 on Si: E(+e) - E(-e) = 2 e V stress_ase of the unstrained cell, for xx, yy and zz."""
    from parsevasp.vasprun import Xml

    xml = Xml(file_path=str(SHARED_VASP / 'disp_details' / 'vasprun.xml'), logger=logging.getLogger(__name__))
    cells, stresses = xml.get_unitcell('all'), xml.get_stress('all')
    energies = xml.get_energies('all', etype=['energy_free'], nosc=True)['energy_free_final']
    cell = np.asarray(cells[1])
    volume = abs(np.linalg.det(cell))
    stress = vasp_labels.stress_from_vasp(stresses[1])
    assert stress[0, 0] < 0 < stresses[1][0][0]  # compressed Si (VASP +42 kbar) lowers its energy by expanding
    for plus, minus in ((2, 3), (4, 5), (6, 7)):
        strain = (np.linalg.solve(cell, cells[plus]) - np.linalg.solve(cell, cells[minus])) / 2
        strain = (strain + strain.T) / 2
        assert np.abs(strain).max() == pytest.approx(0.015, abs=1e-4)
        predicted = 2 * volume * float(np.sum(stress * strain))
        assert energies[plus - 1] - energies[minus - 1] == pytest.approx(predicted, rel=0.01)


def test_stress_voigt_order_and_shape():
    voigt = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # xx yy zz xy yz zx, VASP's order
    full = np.array([[1.0, 4.0, 6.0], [4.0, 2.0, 5.0], [6.0, 5.0, 3.0]])
    assert np.allclose(vasp_labels.stress_from_vasp(voigt), -full / vasp_labels.KBAR_PER_EV_PER_A3)
    with pytest.raises(ValueError, match='shape'):
        vasp_labels.stress_from_vasp([1.0, 2.0])


# --- Born charges ----------------------------------------------------------------------------------------


@requires_shared
def test_born_rows_are_the_field_direction():
    """Row a of VASP's table is the response to a field along a; its columns are force components."""
    outcar = _text('bec_full', 'OUTCAR')
    for direction in (1, 2, 3):  # every Z* block follows the piezoelectric tensor of the same field direction
        lines = outcar.splitlines()
        block = next(i for i, line in enumerate(lines) if f'DIRECTION {direction}           BORN' in line)
        piezo = max(i for i, line in enumerate(lines[:block]) if 'PIEZOELECTRIC TENSOR FIELD DIRECTION' in line)
        assert f'FIELD DIRECTION {direction} ' in lines[piezo]
    raw, drift = outcar_direction_blocks(outcar, BEC_NATOMS)
    assert np.allclose(raw.sum(axis=0), drift, atol=1e-4)  # VASP's "total drift" is the sum over ions: forces
    table = outcar_cumulative_born(outcar, BEC_NATOMS)
    # The final table is the per-direction response with the drift removed (VASP imposes the sum rule) ...
    assert np.abs(table - (raw - drift / BEC_NATOMS)).max() < 2e-5
    assert np.abs(table.sum(axis=0)).max() < 1e-4 < np.abs(raw.sum(axis=0)).max()
    # ... row by row: the transposed reading misses by most of an electron.
    assert np.abs(table - (raw - drift / BEC_NATOMS).transpose(0, 2, 1)).max() > 0.5
    # aiida-vasp's born_charges is that table as printed, no transpose.
    born = np.asarray(aiida_vasp_quantities('bec_full')['born_charges'])
    assert np.abs(born - table).max() < 1e-5
    assert np.abs(born - table.transpose(0, 2, 1)).max() > 0.5


@requires_shared
def test_born_charges_from_vasp_restores_the_raw_tensors():
    outcar = _text('bec_full', 'OUTCAR')
    born = np.asarray(aiida_vasp_quantities('bec_full')['born_charges'])
    raw_table, drift = outcar_direction_blocks(outcar, BEC_NATOMS)
    labels, source = vasp_labels.born_charges_from_vasp(born, BEC_NATOMS, outcar)
    assert source == 'outcar-raw'
    assert np.allclose(labels, raw_table, atol=1e-6)
    assert np.allclose(labels.sum(axis=0), drift, atol=1e-4)  # the frame keeps VASP's sum-rule violation
    assert np.allclose(asr_corrected(labels), born, atol=2e-5)  # and the project's correction gives VASP's tensors
    # No OUTCAR, or one from another run: VASP's corrected tensors, labelled as such.
    assert vasp_labels.born_charges_from_vasp(born, BEC_NATOMS)[1] == 'vasprun-asr'
    other = outcar.replace('  2.80172 -0.26115', '  2.90172 -0.26115')  # one raw number changed
    labels, source = vasp_labels.born_charges_from_vasp(born, BEC_NATOMS, other)
    assert source == 'vasprun-asr'
    assert np.array_equal(labels, born)
    assert vasp_labels.raw_born_charges_from_outcar('no blocks here', BEC_NATOMS) is None
    with pytest.raises(ValueError, match='shape'):
        vasp_labels.born_charges_from_vasp(born[:-1], BEC_NATOMS)


@requires_shared
def test_parser_keeps_the_xml_row_order():
    """aiida-vasp's own test vasprun has deliberately asymmetric Z*: row k of the array is the k-th <v> line."""
    text = _text('lepsilon', 'vasprun.xml')
    first = vasprun_first_born_rows(text)
    assert not np.allclose(first, first.T)
    born = np.asarray(aiida_vasp_quantities('lepsilon')['born_charges'])
    assert np.allclose(born[0], first)


@requires_shared
def test_ase_reads_the_same_born_charges():
    """An independent vasprun reader (ASE) gives the same array, energy and stress conversion."""
    atoms = ase.io.read(SHARED_VASP / 'bec_full' / 'vasprun.xml', format='vasp-xml')
    labels = vasp_labels.labels_from_vasprun(SHARED_VASP / 'bec_full' / 'vasprun.xml')
    assert np.allclose(atoms.calc.results['born_effective_charges'], labels['born_charges'], atol=1e-8)
    assert labels['born_charges_source'] == 'vasprun-asr'
    assert np.allclose(atoms.get_stress(voigt=False), labels['stress'], atol=1e-9)
    assert atoms.get_potential_energy(force_consistent=True) == pytest.approx(labels['energy'])
    assert np.allclose(atoms.get_forces(), labels['forces'])


# --- eps_inf ---------------------------------------------------------------------------------------------


@requires_shared
def test_eps_inf_is_the_macroscopic_tensor_with_local_fields():
    outcar = _text('bec_full', 'OUTCAR')
    dielectrics = aiida_vasp_quantities('bec_full')['dielectrics']
    eps = vasp_labels.eps_inf_from_vasp(dielectrics)
    with_local_fields = outcar_tensor(
        outcar, 'MACROSCOPIC STATIC DIELECTRIC TENSOR (including local field effects in DFT)'
    )
    independent_particle = outcar_tensor(outcar, 'HEAD OF MICROSCOPIC STATIC DIELECTRIC TENSOR (INDEPENDENT PARTICLE')
    assert np.allclose(eps, with_local_fields, atol=1e-6)
    assert not np.allclose(eps, independent_particle, atol=0.1)
    # An IBRION=6 run writes the ionic part separately; eps_inf is still the electronic `epsilon`.
    dielectrics = aiida_vasp_quantities('disp_details')['dielectrics']
    assert 'epsilon_ion' in dielectrics
    assert np.array_equal(vasp_labels.eps_inf_from_vasp(dielectrics), dielectrics['epsilon'])
    with pytest.raises(ValueError, match='LEPSILON'):
        vasp_labels.eps_inf_from_vasp({'epsilon_ion': np.eye(3)})


# --- labels_from_vasprun, band edges ---------------------------------------------------------------------


@requires_shared
def test_labels_from_vasprun_with_outcar():
    labels = vasp_labels.labels_from_vasprun(
        SHARED_VASP / 'bec_full' / 'vasprun.xml', SHARED_VASP / 'bec_full' / 'OUTCAR'
    )
    outcar = _text('bec_full', 'OUTCAR')
    assert labels['energy'] == pytest.approx(outcar_toten(outcar))
    assert np.allclose(labels['stress'], -outcar_stress_kbar(outcar) / 1602.1766208, atol=1e-8)
    assert labels['born_charges_source'] == 'outcar-raw'
    assert np.allclose(labels['born_charges'], outcar_direction_blocks(outcar, BEC_NATOMS)[0], atol=1e-6)
    assert labels['eps_inf'][2, 2] == pytest.approx(6.171821, abs=1e-6)
    # A run without LEPSILON has no Born charges or eps_inf keys.
    assert set(vasp_labels.labels_from_vasprun(SHARED_VASP / 'disp' / 'vasprun.xml')) == {'energy', 'forces', 'stress'}


@requires_ase_dfpt
def test_ase_shipped_dfpt_vasprun():
    """VASP 6.3.2 NaCl LEPSILON run shipped with ASE: Z* = +-1.1467 (diagonal), eps_inf = 2.6958 (`dielectric_dft`)."""
    labels = vasp_labels.labels_from_vasprun(ASE_DFPT)
    text = ASE_DFPT.read_text()
    dft = np.array([_floats(row) for row in re.findall(r'<v>([^<]*)</v>', text[text.index('"dielectric_dft"') :])[:3]])
    assert np.allclose(labels['eps_inf'], dft)
    assert np.allclose(labels['born_charges'], [np.eye(3) * 1.14672091, -np.eye(3) * 1.14672091])
    atoms = ase.io.read(ASE_DFPT, format='vasp-xml')
    assert np.allclose(atoms.get_stress(voigt=False), labels['stress'], atol=1e-9)
    assert atoms.get_potential_energy(force_consistent=True) == pytest.approx(labels['energy'])


@requires_shared
def test_band_edges_tell_insulator_from_smeared_states():
    from parsevasp.vasprun import Xml

    def edges(run):
        xml = Xml(file_path=str(SHARED_VASP / run / 'vasprun.xml'), logger=logging.getLogger(__name__))
        return vasp_labels.band_edges(xml.get_eigenvalues()['total'], xml.get_occupancies()['total'])

    insulator = edges('bec_full')
    assert insulator.gap == pytest.approx(2.2305, abs=1e-4)
    assert not insulator.is_metal(0.1)
    assert insulator.is_metal(3.0)  # a gap below min_gap counts as a metal
    smeared = edges('localfield')  # SIGMA = 0.2: states near the Fermi level partly occupied
    assert smeared.partial_occupations
    assert smeared.is_metal(0.0)


def test_band_edges_spin_and_errors():
    eigenvalues = np.array([[[0.0, 1.0, 3.0]], [[0.2, 1.2, 2.5]]])  # (spin, k, band)
    occupations = np.array([[[1.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]]])
    edges = vasp_labels.band_edges(eigenvalues, occupations)
    assert (edges.vbm, edges.cbm, edges.partial_occupations) == (1.0, 1.2, False)
    assert edges.gap == pytest.approx(0.2)
    assert vasp_labels.band_edges(eigenvalues, occupations * 0.5 + 0.25).partial_occupations
    with pytest.raises(ValueError, match='empty'):
        vasp_labels.band_edges(eigenvalues, np.ones_like(eigenvalues))
    with pytest.raises(ValueError, match='shape'):
        vasp_labels.band_edges(eigenvalues, occupations[0])
