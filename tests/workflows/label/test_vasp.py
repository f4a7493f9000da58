"""``VaspFrameWorkChain`` end to end with aiida-vasp's ``mock-vasp`` serving real VASP outputs.

``mock-vasp`` finds the outputs of a calculation by a hash of its parsed INCAR, KPOINTS and POSCAR in a registry
(``$MOCK_VASP_REG_BASE/<name>/{inp,out}``). The LEPSILON entry's ``inp`` is the real input of the shared
``bec_full`` run, so the workchain has to write an equivalent INCAR, k-point mesh and POSCAR to be served at all;
its ``out`` is that run's output. The SCF entry has the same structure and mesh, the INCAR without LEPSILON, and
the same output with the Born charges and dielectric tensors cut out (an SCF writes none), so Z* and eps_inf can
only come from the LEPSILON run. The POTCARs are fakes (``mock-vasp`` only checks that the file exists).
Expected values are read from the OUTCAR text independently of the code under test.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import sys

import ase.io
import numpy as np
import pytest
from aiida import orm
from aiida.common.exceptions import NotExistent
from aiida.common.links import LinkType
from aiida.engine import run_get_node

from ionfield.workflows.label.vasp import VaspFrameWorkChain

from ...conftest import SHARED

SHARED_VASP = SHARED / 'data' / 'vasp-dfpt'
BEC = SHARED_VASP / 'bec_full'
MOCK_VASP = shutil.which('mock-vasp') or str(pathlib.Path(sys.executable).with_name('mock-vasp'))
FAMILY = 'ionfield-test-fake-potcars'
NATOMS = 26
SCF_EDIFF_PER_ATOM = 5e-10
KPOINTS_DISTANCE = 0.36  # 1/Å: gives the reference run's Gamma-centred 3x3x2 mesh for its 7.71 x 7.71 x 9.04 Å cell
KBAR_PER_EV_PER_A3 = 1602.1766208

requires_mock = pytest.mark.skipif(
    not (BEC / 'vasprun.xml').is_file() or not pathlib.Path(MOCK_VASP).is_file(),
    reason='needs the real VASP outputs ../shared/data/vasp-dfpt/bec_full and the mock-vasp executable of aiida-vasp',
)

FAKE_POTCAR = """  PAW_PBE {symbol} 01Jan2000
   {zval:.1f}
 parameters from PSCTR are:
   VRHFIN ={symbol}: fake
   LEXCH  = PE
   TITEL  = PAW_PBE {symbol} 01Jan2000
   POMASS =   {mass:.3f}; ZVAL   =    {zval:.3f}    mass and valenz
   ENMAX  =  300.000; ENMIN  =  200.000 eV
END of PSCTR-controll parameters
 Fake POTCAR for ionfield's tests: no pseudopotential data.
 End of Dataset
"""


# --- independent readers of the reference OUTCAR -------------------------------------------------------------


def _floats(line: str) -> list[float]:
    return [float(value) for value in re.findall(r'[-+]?\d*\.\d+(?:[eE][-+]?\d+)?', line)]


def _after(lines: list[str], header: str, skip: int, count: int) -> list[str]:
    start = max(index for index, line in enumerate(lines) if header in line) + skip
    return lines[start : start + count]


def reference_labels() -> dict:
    lines = (BEC / 'OUTCAR').read_text().splitlines()
    xx, yy, zz, xy, yz, zx = _floats(_after(lines, '  in kB  ', 0, 1)[0])
    raw = []
    for direction in (1, 2, 3):
        block = _after(lines, f'DIRECTION {direction}           BORN EFFECTIVE CHARGE', 2, NATOMS)
        raw.append([_floats(line.split('(')[0])[3:6] for line in block])
    return {
        'energy': _floats(_after(lines, 'FREE ENERGIE OF THE ION-ELECTRON SYSTEM', 2, 1)[0])[0],
        'forces': np.array([_floats(line)[3:6] for line in _after(lines, 'TOTAL-FORCE (eV/Angst)', 2, NATOMS)]),
        'stress': -np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]]) / KBAR_PER_EV_PER_A3,
        'born_charges': np.array(raw).transpose(1, 0, 2),
        'eps_inf': np.array(
            [_floats(line) for line in _after(lines, 'MACROSCOPIC STATIC DIELECTRIC TENSOR (including local', 2, 3)]
        ),
    }


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture
def potcar_family(tmp_path):
    """A POTCAR family of fake P, S and Zn POTCARs (as aiida-vasp's own tests do)."""
    from aiida_vasp.data.potcar import PotcarData

    if PotcarData.get_potcar_group(FAMILY) is None:
        root = tmp_path / 'fake_potcars'
        for symbol, zval, mass in (('P', 5, 30.974), ('S', 6, 32.06), ('Zn', 12, 65.38)):
            (root / symbol).mkdir(parents=True)
            (root / symbol / 'POTCAR').write_text(FAKE_POTCAR.format(symbol=symbol, zval=zval, mass=mass))
        PotcarData.upload_potcar_family(str(root), FAMILY, 'Fake POTCARs for tests (no data).', stop_if_existing=False)
    return FAMILY


@pytest.fixture
def mock_vasp_code(aiida_computer_local):
    computer = aiida_computer_local(label='ionfield-test-localhost')
    try:
        return orm.load_code('mock-vasp@ionfield-test-localhost')
    except NotExistent:
        code = orm.InstalledCode(computer=computer, filepath_executable=MOCK_VASP, default_calc_job_plugin='vasp.vasp')
        code.label = 'mock-vasp'
        return code.store()


@pytest.fixture
def structure():
    return orm.StructureData(ase=ase.io.read(BEC / 'POSCAR', format='vasp'))


def reference_incar() -> dict:
    from aiida_vasp.parsers.content_parsers.incar import IncarParser

    with open(BEC / 'INCAR', encoding='utf8') as handle:
        return dict(IncarParser(handler=handle, validate_tags=False).incar)


def scf_incar() -> dict:
    """The SCF the workchain should write: the reference INCAR without LEPSILON and with EDIFF per atom."""
    incar = {key: value for key, value in reference_incar().items() if key not in ('lepsilon', 'ediff')}
    return incar


def _write_incar(path: pathlib.Path, incar: dict) -> None:
    from aiida_vasp.parsers.content_parsers.incar import IncarParser

    IncarParser(data=orm.Dict(incar), validate_tags=False).write(str(path))


def _strip_dfpt(vasprun: str) -> str:
    vasprun = re.sub(r'\s*<array name="born_charges" >.*?</array>', '', vasprun, flags=re.DOTALL)
    return re.sub(r'\s*<varray name="epsilon(_rpa)?" >.*?</varray>', '', vasprun, flags=re.DOTALL)


def _entry(root: pathlib.Path, name: str, incar: dict | None, outputs: dict[str, str]) -> None:
    inp, out = root / name / 'inp', root / name / 'out'
    inp.mkdir(parents=True)
    out.mkdir(parents=True)
    for filename in ('KPOINTS', 'POSCAR'):
        shutil.copy(BEC / filename, inp / filename)
    if incar is None:
        shutil.copy(BEC / 'INCAR', inp / 'INCAR')
    else:
        _write_incar(inp / 'INCAR', incar)
    for filename, content in outputs.items():
        (out / filename).write_text(content)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """Build a mock-vasp registry: ``registry(dfpt='ok' | 'crashed')``; the SCF entry is always there."""

    def build(dfpt: str = 'ok') -> pathlib.Path:
        root = tmp_path / f'registry-{dfpt}'
        outcar, vasprun, contcar = ((BEC / name).read_text() for name in ('OUTCAR', 'vasprun.xml', 'CONTCAR'))
        incar = {**scf_incar(), 'ediff': SCF_EDIFF_PER_ATOM * NATOMS}
        _entry(root, 'scf', incar, {'OUTCAR': outcar, 'vasprun.xml': _strip_dfpt(vasprun), 'CONTCAR': contcar})
        if dfpt == 'ok':
            outputs = {'OUTCAR': outcar, 'vasprun.xml': vasprun, 'CONTCAR': contcar}
        else:  # VASP killed during the linear response: both files end before the Born charges
            cut_outcar = outcar[: outcar.index('      POSITION         DIRECTION 1')]
            cut_vasprun = vasprun[: vasprun.index('<array name="born_charges"')]
            outputs = {'OUTCAR': cut_outcar, 'vasprun.xml': cut_vasprun, 'CONTCAR': contcar}
        _entry(root, 'dfpt', None, outputs)
        monkeypatch.setenv('MOCK_VASP_REG_BASE', str(root))
        return root

    return build


def builder_for(code, structure, **kwargs):
    """The protocol builder, with the reference run's INCAR and mesh (so that mock-vasp recognises the inputs)."""
    builder = VaspFrameWorkChain.get_builder_from_protocol(
        code,
        structure,
        potential_family=FAMILY,
        options={'withmpi': False, 'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}},
        **kwargs,
    )
    builder.kpoints_distance = orm.Float(KPOINTS_DISTANCE)
    builder.scf.parameters = orm.Dict({'incar': scf_incar()})
    builder.scf_ediff_per_atom = orm.Float(SCF_EDIFF_PER_ATOM)
    builder.scf.max_iterations = orm.Int(2)
    if builder.bec.value:
        builder.dfpt.parameters = orm.Dict({'incar': reference_incar()})
        builder.dfpt.max_iterations = orm.Int(2)
    return builder


def vasp_calcs(node, label: str) -> list[orm.CalcJobNode]:
    """The VASP CalcJobs run by the child VaspWorkChain called ``label``."""
    child = node.base.links.get_outgoing(link_label_filter=label).one().node
    return [descendant for descendant in child.called if isinstance(descendant, orm.CalcJobNode)]


def call_labels(node) -> list[str]:
    """Link labels of the processes ``node`` called, in order."""
    links = node.base.links.get_outgoing(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).all()
    return [link.link_label for link in sorted(links, key=lambda link: link.node.ctime)]


# --- end to end --------------------------------------------------------------------------------------------


@requires_mock
@pytest.mark.slow
def test_frame_has_scf_labels_and_lepsilon_born_charges(potcar_family, mock_vasp_code, structure, registry):
    registry('ok')
    results, node = run_get_node(builder_for(mock_vasp_code, structure))
    assert node.is_finished_ok, node.exit_message
    frame = results['frame']
    expected = reference_labels()

    (scf_calc,) = vasp_calcs(node, 'scf')
    (dfpt_calc,) = vasp_calcs(node, 'dfpt')
    assert frame.base.attributes.get('source_uuid') == scf_calc.uuid
    assert scf_calc.inputs.parameters['ediff'] == pytest.approx(SCF_EDIFF_PER_ATOM * NATOMS)
    assert 'lepsilon' not in scf_calc.inputs.parameters.get_dict()
    assert 'born_charges' not in scf_calc.outputs  # the SCF output carries no Z*: the frame's came from LEPSILON
    assert dfpt_calc.inputs.parameters['lepsilon'] is True
    assert scf_calc.inputs.kpoints.get_kpoints_mesh()[0] == [3, 3, 2]

    assert frame.get_array('energy') == pytest.approx(expected['energy'], abs=1e-8)
    assert np.allclose(frame.get_array('forces'), expected['forces'], atol=2e-6)
    assert np.allclose(frame.get_array('stress'), expected['stress'], atol=1e-8)
    assert np.allclose(frame.get_array('born_charges'), expected['born_charges'], atol=1e-6)
    assert np.allclose(frame.get_array('eps_inf'), expected['eps_inf'], atol=1e-6)
    assert frame.base.attributes.get('born_charges_source') == 'outcar-raw'
    # Provenance: the conversion calcfunction read the SCF's misc and the LEPSILON run's Z*.
    converter = frame.creator
    assert converter.inputs.scf_misc.creator.uuid == scf_calc.uuid
    assert converter.inputs.dfpt_born_charges.creator.uuid == dfpt_calc.uuid


@requires_mock
@pytest.mark.slow
def test_crashed_lepsilon_keeps_the_scf_labels(potcar_family, mock_vasp_code, structure, registry):
    registry('crashed')
    builder = builder_for(mock_vasp_code, structure)
    # Without LEPSILON in the parameters: the workchain must add it, or mock-vasp would not recognise the run.
    builder.dfpt.parameters = orm.Dict({'incar': {k: v for k, v in reference_incar().items() if k != 'lepsilon'}})
    results, node = run_get_node(builder)
    assert node.exit_status == VaspFrameWorkChain.exit_codes.ERROR_DFPT_FAILED.status
    assert 'Energy, forces and stress were kept' in node.exit_message
    assert {calc.exit_status for calc in vasp_calcs(node, 'dfpt')} == {700}  # ERROR_DID_NOT_FINISH, then a restart
    frame = results['frame']
    expected = reference_labels()
    assert frame.get_array('energy') == pytest.approx(expected['energy'], abs=1e-8)
    assert np.allclose(frame.get_array('forces'), expected['forces'], atol=2e-6)
    assert np.isnan(frame.get_array('born_charges')).all()
    assert np.isnan(frame.get_array('eps_inf')).all()
    assert frame.base.attributes.get('source_uuid') == vasp_calcs(node, 'scf')[0].uuid


@requires_mock
@pytest.mark.slow  # 4-13 s, depending on the machine's load
def test_no_gap_skips_lepsilon_and_keeps_the_scf_labels(potcar_family, mock_vasp_code, structure, registry):
    registry('ok')
    builder = builder_for(mock_vasp_code, structure)
    builder.min_gap = orm.Float(3.0)  # the reference insulator's gap is 2.23 eV
    results, node = run_get_node(builder)
    assert node.exit_status == VaspFrameWorkChain.exit_codes.ERROR_NO_GAP.status
    assert re.search(r'gap 2\.23\d eV, below min_gap = 3\.0 eV', node.exit_message)
    assert call_labels(node) == ['create_kpoints_from_distance', 'scf', 'frame']
    frame = results['frame']
    assert frame.get_array('energy') == pytest.approx(reference_labels()['energy'], abs=1e-8)
    assert np.isnan(frame.get_array('born_charges')).all()


@requires_mock
@pytest.mark.slow  # 4-13 s, depending on the machine's load
def test_without_bec_only_the_scf_runs(potcar_family, mock_vasp_code, structure, registry):
    registry('ok')
    results, node = run_get_node(builder_for(mock_vasp_code, structure, bec=False))
    assert node.is_finished_ok, node.exit_message
    assert np.isfinite(results['frame'].get_array('stress')).all()
    assert np.isnan(results['frame'].get_array('eps_inf')).all()
    (scf_calc,) = vasp_calcs(node, 'scf')
    assert 'bands' not in scf_calc.outputs  # occupations are only parsed when the gap must be checked


# --- validation ----------------------------------------------------------------------------------------------


@requires_mock
def test_unsupported_elements_exit_320_before_any_vasp_run(potcar_family, mock_vasp_code):
    atoms = ase.io.read(BEC / 'POSCAR', format='vasp')
    atoms.symbols[[0, 4]] = ['Li', 'Ag']  # Li: mapped (Li_sv) but not in the family; Ag: mapped away below
    builder = VaspFrameWorkChain.get_builder_from_protocol(
        mock_vasp_code, orm.StructureData(ase=atoms), potential_family=FAMILY
    )
    mapping = builder.scf.potential_mapping.get_dict()
    del mapping['Ag']
    builder.scf.potential_mapping = orm.Dict(mapping)
    _, node = run_get_node(builder)
    assert node.exit_status == VaspFrameWorkChain.exit_codes.ERROR_UNSUPPORTED_ELEMENT.status
    assert 'Ag, Li' in node.exit_message
    assert 'Ag is not in the `scf.potential_mapping`' in node.exit_message
    assert '`Li_sv` (Li) is not in the family' in node.exit_message
    assert [child.process_label for child in node.called] == []


@requires_mock
def test_inputs_are_validated(potcar_family, mock_vasp_code, structure):
    builder = VaspFrameWorkChain.get_builder_from_protocol(mock_vasp_code, structure, potential_family=FAMILY)
    del builder['dfpt']
    with pytest.raises(ValueError, match='need the `dfpt` inputs'):
        run_get_node(builder)
    builder = VaspFrameWorkChain.get_builder_from_protocol(
        mock_vasp_code, structure, potential_family=FAMILY, overrides={'scf': {'parameters': {'incar': {'pstress': 5}}}}
    )
    with pytest.raises(ValueError, match='PSTRESS'):
        run_get_node(builder)


# --- protocols -----------------------------------------------------------------------------------------------


@pytest.fixture
def any_code(aiida_computer_local):
    computer = aiida_computer_local(label='ionfield-test-localhost')
    try:
        return orm.load_code('fake-vasp@ionfield-test-localhost')
    except NotExistent:
        code = orm.InstalledCode(
            computer=computer, filepath_executable='/bin/true', default_calc_job_plugin='vasp.vasp'
        )
        code.label = 'fake-vasp'
        return code.store()


@pytest.mark.parametrize(
    ('protocol', 'encut', 'distance', 'scf_ediff', 'dfpt_ediff'),
    [
        (None, 520, 0.30, 1e-7, 1e-9),
        ('fast', 520, 0.30, 1e-7, 1e-9),
        ('balanced', 650, 0.22, 1e-8, 4e-10),
        ('precise', 800, 0.15, 1e-9, 1e-10),
    ],
)
def test_protocol_values(any_code, protocol, encut, distance, scf_ediff, dfpt_ediff):
    inputs = VaspFrameWorkChain.get_inputs_from_protocol(any_code, protocol=protocol)
    assert inputs['kpoints_distance'].value == distance
    assert inputs['scf_ediff_per_atom'].value == scf_ediff
    assert inputs['dfpt_ediff_per_atom'].value == dfpt_ediff
    for namespace, lepsilon in (('scf', None), ('dfpt', True)):
        incar = inputs[namespace]['parameters']['incar']
        assert incar['encut'] == encut
        assert incar.get('lepsilon') is lepsilon
        assert inputs[namespace]['code'].uuid == any_code.uuid
        assert inputs[namespace]['potential_family'].value == 'PBE.54'
        assert inputs[namespace]['potential_mapping']['Li'] == 'Li_sv'  # aiida-vasp's recommended mapping


def test_protocol_overrides_mapping_and_options(any_code, potcar_family):
    builder = VaspFrameWorkChain.get_builder_from_protocol(
        any_code,
        protocol='balanced',
        potential_family=potcar_family,
        overrides={'kpoints_distance': 0.1, 'dfpt': {'parameters': {'incar': {'encut': 700}}}},
        potential_mapping={'Li': 'Li', 'Xx': 'Xx_pv'},
        options={'queue_name': 'gpu', 'max_wallclock_seconds': 60},
    )
    assert builder.kpoints_distance.value == 0.1
    assert builder.dfpt.parameters['incar']['encut'] == 700
    assert builder.dfpt.parameters['incar']['lepsilon'] is True  # merged, not replaced
    assert builder.scf.parameters['incar']['encut'] == 650
    mapping = builder.scf.potential_mapping.get_dict()
    assert (mapping['Li'], mapping['Xx'], mapping['O'], mapping['Zn']) == ('Li', 'Xx_pv', 'O', 'Zn')
    options = builder.dfpt.calc.metadata.options
    assert (options.queue_name, options.max_wallclock_seconds, options.withmpi) == ('gpu', 60, True)
    with pytest.raises(ValueError, match='unknown protocol'):
        VaspFrameWorkChain.get_inputs_from_protocol(any_code, protocol='sloppy')
    with pytest.raises(ValueError, match='kpoint_distance'):
        VaspFrameWorkChain.get_inputs_from_protocol(any_code, overrides={'kpoint_distance': 0.2})


def test_protocol_without_bec_has_no_dfpt_inputs(any_code, potcar_family):
    builder = VaspFrameWorkChain.get_builder_from_protocol(any_code, bec=False, potential_family=potcar_family)
    assert builder.bec.value is False
    assert 'dfpt_ediff_per_atom' not in builder
    assert 'code' not in builder.dfpt and 'parameters' not in builder.dfpt
