"""Protocol files and ``get_builder_from_protocol`` of the QE engine and ``LabelWorkChain`` (no code is run)."""

from __future__ import annotations

import pytest
from aiida import orm

from ionfield.workflows.label.protocols import ProtocolFile, recursive_merge
from ionfield.workflows.label.qe import QeFrameWorkChain, next_dfpt_mixing
from ionfield.workflows.label.workchain import LabelWorkChain

QE = ProtocolFile('qe.yaml')


def test_recursive_merge_merges_nested_and_copies():
    left = {'a': {'b': 1, 'c': 2}, 'd': 3}
    merged = recursive_merge(left, {'a': {'b': 10}, 'e': 4})
    assert merged == {'a': {'b': 10, 'c': 2}, 'd': 3, 'e': 4}
    assert left == {'a': {'b': 1, 'c': 2}, 'd': 3}


def test_protocols_get_denser_k_and_tighter_thresholds():
    fast, balanced, precise = (QE.get_inputs(name) for name in ('fast', 'balanced', 'precise'))
    assert QE.default == 'fast' and set(QE.names) == {'fast', 'balanced', 'precise'}
    assert fast['kpoints_distance'] > balanced['kpoints_distance'] > precise['kpoints_distance']
    assert fast['conv_thr_per_atom'] > balanced['conv_thr_per_atom'] > precise['conv_thr_per_atom']
    tr2 = [p['ph']['parameters']['INPUTPH']['tr2_ph'] for p in (fast, balanced, precise)]
    assert tr2 == sorted(tr2, reverse=True)
    for values in (fast, balanced, precise):
        assert values['ph']['parameters']['INPUTPH']['epsil'] is True
        assert values['ph']['parameters']['INPUTPH']['trans'] is False
        assert 'nmix_ph' not in values['ph']['parameters']['INPUTPH']  # ph.x 6.7 refuses > 5


def test_overrides_are_merged_and_misspelt_keys_refused():
    values = QE.get_inputs('fast', {'kpoints_distance': 0.2, 'pw': {'parameters': {'ELECTRONS': {'mixing_beta': 0.1}}}})
    assert values['kpoints_distance'] == 0.2
    assert values['pw']['parameters']['ELECTRONS'] == {'electron_maxstep': 100, 'mixing_beta': 0.1}
    with pytest.raises(ValueError, match='`kpoint_distance` is not a key'):
        QE.get_inputs('fast', {'kpoint_distance': 0.2})
    with pytest.raises(ValueError, match='unknown protocol `quick`'):
        QE.get_inputs('quick')


@pytest.fixture
def codes(aiida_profile):
    found = orm.Computer.collection.find({'label': 'protocol-test'})
    computer = found[0] if found else orm.Computer('protocol-test', 'localhost', transport_type='core.local')
    if not found:
        computer.scheduler_type = 'core.direct'
        computer.store().configure()
    pw = orm.InstalledCode(
        computer=computer, filepath_executable='/bin/true', default_calc_job_plugin='quantumespresso.pw'
    )
    ph = orm.InstalledCode(
        computer=computer, filepath_executable='/bin/true', default_calc_job_plugin='quantumespresso.ph'
    )
    return pw.store(), ph.store()


def test_qe_inputs_from_protocol(codes):
    pw, ph = codes
    inputs = QeFrameWorkChain.get_inputs_from_protocol(pw, ph, protocol='balanced', options={'queue_name': 'gpu'})
    assert inputs['kpoints_distance'].value == 0.25
    assert inputs['cutoffs'].get_list() == [60.0, 480.0]
    assert inputs['ph_options']['queue_name'] == 'gpu' and inputs['pw_options']['queue_name'] == 'gpu'
    assert inputs['pw_options']['withmpi'] is True
    fast = QeFrameWorkChain.get_inputs_from_protocol(pw, None, bec=False)
    assert 'cutoffs' not in fast and 'ph_code' not in fast  # the family's recommended cutoffs are used
    with pytest.raises(ValueError, match='need a `quantumespresso.ph` code'):
        QeFrameWorkChain.get_inputs_from_protocol(pw, None, bec=True)
    with pytest.raises(ValueError, match='both `ecutwfc` and `ecutrho`'):
        QeFrameWorkChain.get_inputs_from_protocol(pw, ph, overrides={'ecutwfc': 40})


def test_label_builder_from_protocol(codes):
    pw, ph = codes
    structure = orm.StructureData(cell=[[3, 0, 0], [0, 3, 0], [0, 0, 3]])
    structure.append_atom(position=(0, 0, 0), symbols='Li')
    builder = LabelWorkChain.get_builder_from_protocol({'li': structure}, pw_code=pw, ph_code=ph, protocol='precise')
    assert builder.engine.value == 'qe' and builder.bec.value is True
    assert builder.qe.kpoints_distance.value == 0.18 and builder.qe.ph_code.uuid == ph.uuid
    assert 'bec' not in builder.qe
    with pytest.raises(ValueError, match='unknown engine `castep`'):
        LabelWorkChain.get_builder_from_protocol({'li': structure}, engine='castep')


def test_dfpt_retry_halves_alpha_mix_until_the_floor():
    parameters, action = next_dfpt_mixing({'tr2_ph': 1e-16, 'alpha_mix(1)': 0.5})
    assert parameters == {'tr2_ph': 1e-16, 'alpha_mix(1)': 0.25} and '0.5 to 0.25' in action
    assert next_dfpt_mixing({})[0]['alpha_mix(1)'] == 0.35  # from ph.x's default 0.7
    assert next_dfpt_mixing({'alpha_mix(1)': 0.15})[0]['alpha_mix(1)'] == 0.1
    assert next_dfpt_mixing({'alpha_mix(1)': 0.1}) is None
