"""Faults of the labelling stage with real pw.x and ph.x: bad structures, an SCF that never converges.

The user sees an exit code and a message per structure in the ``summary`` output (and in
``ionfield label``'s table); every frame that could be labelled is in ``dataset``; finished work
elsewhere in the profile is untouched.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from ase import Atoms
from ase.build import bulk

from ionfield.models.reference_structures import get_reference_structure

from ..workflows.test_label_qe import label
from .conftest import assert_nothing_lost, ledger

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
