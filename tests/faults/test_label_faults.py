"""Faults of the labelling stage with real pw.x and ph.x: bad structures, an SCF that never converges, killed jobs.

The user sees an exit code and a message per structure in the ``summary`` output (and in
``ionfield label``'s table); every frame that could be labelled is in ``dataset``; finished work
elsewhere in the profile is untouched.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.manage.caching import enable_caching
from ase import Atoms
from ase.build import bulk

from ionfield.models.structures.reference import get_reference_structure
from ionfield.workflows.label.qe import QeFrameWorkChain

from ..workflows.label.test_qe import label
from .conftest import SignalKiller, assert_nothing_lost, ledger

pytestmark = [pytest.mark.slow, pytest.mark.fault]


def test_pw_that_never_converges_is_reported_with_its_exit_code(qe_engine, finished_work):
    """electron_maxstep 2 and no restart left: the SCF cannot converge, and the user is told which and why."""
    before = ledger()
    overrides = {'pw': {'parameters': {'ELECTRONS': {'electron_maxstep': 2}}}, 'max_iterations': 2}
    node = label(qe_engine, {'li3n': get_reference_structure('alpha-Li3N')}, bec=False, overrides=overrides)
    assert node.exit_status == 312, node.exit_message  # ERROR_NOTHING_LABELLED
    assert 'li3n' in node.exit_message
    outcome = node.outputs.summary['structures']['li3n']
    assert outcome['status'] == 'failed' and outcome['exit_status'] == 321  # ERROR_SCF_FAILED
    assert 'could not be recovered' in outcome['message']
    runs = [n for n in node.called_descendants if n.process_label == 'PwCalculation']
    assert [run.exit_status for run in runs] == [410, 410]  # the handler restarted it once, then gave up
    assert_nothing_lost(before)


def test_overlapping_atoms_unknown_element_metal_and_molecule_in_one_batch(qe_engine, finished_work):
    """Four bad structures beside a good one: each gets its own exit code and message, Li3N is labelled."""
    before = ledger()
    li3n = get_reference_structure('alpha-Li3N')
    overlap = li3n.copy()
    overlap.positions[1] = overlap.positions[0] + [0.2, 0.0, 0.0]
    unknown = li3n.copy()
    unknown.symbols[1] = 'Na'  # no Na in the generated family
    molecule = Atoms('N2', positions=[[0, 0, 0], [0, 0, 1.1]], cell=[8, 8, 8], pbc=False)
    metal = bulk('Li', 'bcc', a=3.44, cubic=True)  # 2 atoms, 6 electrons: even, but no gap

    structures = {'li3n': li3n, 'overlap': overlap, 'unknown': unknown, 'molecule': molecule, 'li_metal': metal}
    node = label(qe_engine, structures, min_success_fraction=orm.Float(0.4))
    assert_nothing_lost(before)
    assert node.is_finished_ok, node.exit_message  # 2 frames of 5
    outcomes = node.outputs.summary['structures']
    assert {key: value['status'] for key, value in outcomes.items()} == {
        'li3n': 'labelled',
        'li_metal': 'partial',
        'molecule': 'rejected',
        'overlap': 'rejected',
        'unknown': 'failed',
    }
    assert outcomes['unknown']['exit_status'] == 320 and 'Na' in outcomes['unknown']['message']
    assert outcomes['li_metal']['exit_status'] == 330 and 'gap' in outcomes['li_metal']['message']
    assert outcomes['overlap']['exit_status'] == 301 and outcomes['molecule']['exit_status'] == 302

    dataset = node.outputs.dataset.get_dataset()
    frame = dataset[outcomes['li3n']['frame_index']]
    born = frame.born_charges
    # N on 1a, Li1 on 1b, Li2 on 2c of P6/mmm: diagonal tensors, in-plane isotropic, the two Li2 equal
    for tensor in born:
        np.testing.assert_allclose(tensor, np.diag(np.diag(tensor)), atol=1e-3)
        assert tensor[0, 0] == pytest.approx(tensor[1, 1], abs=1e-3)
    assert born[0, 0, 0] < -2.0 and born[0, 2, 2] < -1.0  # N is the anion
    assert (np.diagonal(born[1:], axis1=1, axis2=2) > 0).all()
    np.testing.assert_allclose(born[2], born[3], atol=1e-3)
    assert outcomes['li3n']['asr_violation'] < 0.05  # k for Z* (fast: 6x6x5); 0.11 e at 4x4x4
    assert np.diag(frame.eps_inf).min() > 1.0
    assert np.allclose(frame.eps_inf, frame.eps_inf.T, atol=1e-4)
    assert abs(frame.energy - (-73.466 * 13.605693)) < 0.05  # pw.x's total energy in eV
    source = orm.load_node(frame.source_uuid)
    assert source.process_type.endswith('quantumespresso.pw') and source.is_finished_ok

    frame = dataset[outcomes['li_metal']['frame_index']]
    assert frame.has_forces and frame.has_stress and not frame.has_born_charges and frame.flags == {'no_gap'}
    smeared = orm.load_node(frame.source_uuid)
    assert smeared.inputs.parameters['SYSTEM']['occupations'] == 'smearing'  # relabelled after the gap test


PW_STARTED = 'Self-consistent Calculation'  # pw.x's stdout once the SCF cycle runs
PH_STARTED = 'Electric Fields Calculation'  # ph.x's stdout once the DFPT cycle runs
LI2O = bulk('OLi2', 'fluorite', a=4.61)
"""Antifluorite Li2O, primitive: 3 atoms and 48 symmetries, so that the DFPT run that must finish is short."""
KILLED_OVERRIDES = {
    'kpoints_distance': 0.6,  # 4x4x4
    'ecutwfc': 30,
    'ecutrho': 240,
    'ph': {'parameters': {'INPUTPH': {'tr2_ph': 1e-14}}},
}
"""Cheap settings (pw.x about 3 s, ph.x about 15 s on 2 cores): these tests are about reruns, not about Z*."""


def _calculations(node, label: str) -> list:
    return sorted((n for n in node.called_descendants if n.process_label == label), key=lambda n: n.ctime)


def _killer(qe_engine, program: str, started: str, times: int) -> SignalKiller:
    return SignalKiller(program, qe_engine['pw_code'].computer.get_workdir(), started, times=times)


def test_pw_and_ph_killed_once_by_a_signal_are_rerun_and_labelled(qe_engine, finished_work):
    """SIGKILL to a running pw.x, then to a running ph.x (the OOM killer, a node failure): each is rerun once.

    With caching on, as ``ionfield setup`` leaves it: a rerun has the inputs of the killed job, and must run.
    """
    before = ledger()
    pw_kill, ph_kill = _killer(qe_engine, 'pw.x', PW_STARTED, 1), _killer(qe_engine, 'ph.x', PH_STARTED, 1)
    with enable_caching(identifier='aiida.calculations:quantumespresso.*'), pw_kill, ph_kill:
        node = label(qe_engine, {'li2o': LI2O}, bec=True, overrides=KILLED_OVERRIDES)
    assert node.is_finished_ok, node.exit_message
    outcome = node.outputs.summary['structures']['li2o']
    assert outcome['status'] == 'labelled', outcome
    assert len(pw_kill.killed) == 1 and len(ph_kill.killed) == 1, 'a job finished before it could be killed'
    frame = node.outputs.dataset.get_dataset()[outcome['frame_index']]
    assert np.isfinite(frame.energy) and np.isfinite(frame.forces).all() and np.isfinite(frame.stress).all()
    assert frame.has_born_charges and frame.born_charges[0, 2, 2] < -1.0  # O is the anion

    for label_, killed in (('PwCalculation', pw_kill), ('PhCalculation', ph_kill)):
        first, second = _calculations(node, label_)
        assert first.get_remote_workdir() == killed.killed[0] and first.is_failed
        assert second.is_finished_ok and second.base.caching.get_cache_source() is None  # run, not a clone
        parents = [run.inputs.parent_folder.uuid if 'parent_folder' in run.inputs else None for run in (first, second)]
        assert parents[0] == parents[1]  # the rerun starts where the killed job started (ph.x: the SCF's folder)
        reports = ' '.join(log.message for log in orm.Log.collection.get_logs_for(first.caller))
        assert f'{label_}<{first.pk}>' in reports and 'killed by signal 9 (SIGKILL)' in reports
    assert orm.load_node(frame.source_uuid).uuid == _calculations(node, 'PwCalculation')[1].uuid
    assert_nothing_lost(before)


def test_pw_killed_twice_fails_its_structure_naming_the_kill(qe_engine, finished_work):
    """The rerun is killed too: the structure fails with its own exit code and says so.

    With ``bec``, where a fixed-occupation SCF that fails is otherwise taken for a metal and relabelled smeared.
    """
    before = ledger()
    with _killer(qe_engine, 'pw.x', PW_STARTED, 2) as pw_kill:
        node = label(qe_engine, {'li2o': LI2O}, bec=True, overrides=KILLED_OVERRIDES)
    assert node.exit_status == 312, node.exit_message  # ERROR_NOTHING_LABELLED
    outcome = node.outputs.summary['structures']['li2o']
    assert outcome['status'] == 'failed'
    assert outcome['exit_status'] == QeFrameWorkChain.exit_codes.ERROR_SCF_KILLED.status, outcome
    assert len(pw_kill.killed) == 2
    assert 'killed by a signal twice' in outcome['message'] and 'SIGKILL' in outcome['message']
    assert len(_calculations(node, 'PwCalculation')) == 2  # one rerun, no smeared relabel, no DFPT
    assert_nothing_lost(before)


def test_ph_killed_twice_keeps_energy_forces_and_stress(qe_engine, finished_work):
    """ph.x killed on its first run and on the rerun: the frame keeps E, F, S and says why Z* are missing."""
    before = ledger()
    with _killer(qe_engine, 'ph.x', PH_STARTED, 2) as ph_kill:
        node = label(qe_engine, {'li2o': LI2O}, bec=True, overrides=KILLED_OVERRIDES)
    assert node.is_finished_ok, node.exit_message
    outcome = node.outputs.summary['structures']['li2o']
    assert outcome['status'] == 'partial'
    assert outcome['exit_status'] == QeFrameWorkChain.exit_codes.ERROR_DFPT_FAILED.status, outcome
    assert 'ph.x was killed' in outcome['message'] and 'SIGKILL' in outcome['message'], outcome['message']
    assert len(ph_kill.killed) == 2
    frame = node.outputs.dataset.get_dataset()[outcome['frame_index']]
    assert np.isfinite(frame.forces).all() and not frame.has_born_charges and frame.flags == {'dfpt_failed'}
    assert len(_calculations(node, 'PhCalculation')) == 2
    assert_nothing_lost(before)
