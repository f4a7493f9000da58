"""``LabelWorkChain`` with real pw.x (Debian's QE) on alpha-Li3N: stress sign and SCF restarts.

Bad inputs (overlap, unknown element, metal, molecule) are in ``tests/faults/test_label_faults.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from ionfield.models.structures.reference import get_reference_structure
from ionfield.workflows.label.workchain import LabelWorkChain

pytestmark = pytest.mark.slow


def label(qe_engine, structures, bec=True, overrides=None, **inputs):
    overrides = {'pseudo_family': qe_engine['pseudo_family'], **(overrides or {})}
    builder = LabelWorkChain.get_builder_from_protocol(
        {key: orm.StructureData(ase=atoms) for key, atoms in structures.items()},
        protocol='fast',
        bec=bec,
        overrides=overrides,
        pw_code=qe_engine['pw_code'],
        ph_code=qe_engine['ph_code'] if bec else None,
    )
    for name, value in inputs.items():
        builder[name] = value
    return run_get_node(builder)[1]


def test_stress_sign_matches_the_energy_derivative_and_scf_restarts(qe_engine):
    """ASE's sign: V tr(sigma) = dE/d(eps) for a cell scaled by (1 + eps); checked by a central difference.

    The SCF is capped at 4 iterations, so the first pw.x run of each structure stops unconverged and
    aiida-quantumespresso's handler restarts it with a smaller mixing_beta from the last charge density.
    """
    li3n = get_reference_structure('alpha-Li3N')
    eps = 0.005
    structures = {}
    for key, factor in (('minus', 1 - eps), ('zero', 1.0), ('plus', 1 + eps)):
        atoms = li3n.copy()
        atoms.set_cell(li3n.cell.array * factor, scale_atoms=True)
        structures[key] = atoms
    overrides = {'pw': {'parameters': {'ELECTRONS': {'electron_maxstep': 4}}}, 'conv_thr_per_atom': 1e-11}
    node = label(qe_engine, structures, bec=False, overrides=overrides)
    assert node.is_finished_ok, node.exit_message
    outcomes = node.outputs.summary['structures']
    dataset = node.outputs.dataset.get_dataset()
    energy = {key: dataset[outcomes[key]['frame_index']].energy for key in structures}
    zero = dataset[outcomes['zero']['frame_index']]
    derivative = (energy['plus'] - energy['minus']) / (2 * eps)
    volume = abs(np.linalg.det(zero.cell))
    assert volume * np.trace(zero.stress) == pytest.approx(derivative, rel=0.05, abs=2e-3)
    assert np.trace(zero.stress) > 0  # P = -5 kbar at the experimental lattice (PAW PBE): tensile, ASE sign +

    restarted = [
        n
        for n in orm.load_node(outcomes['zero']['process_uuid']).called_descendants
        if n.process_label == 'PwCalculation'
    ]
    assert len(restarted) >= 2, 'the SCF converged in 4 iterations: the restart handler was not exercised'
    assert restarted[0].exit_status == 410  # ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED


def test_a_charged_vacancy_is_labelled_as_an_insulator_and_a_neutral_one_is_a_metal(qe_engine):
    """Li3N without its Li1 (the Li between the Li2N planes): deleted as an atom, it leaves a hole in the N 2p band
    (an odd electron count: a metal, no Born charges); deleted as an ion (formal charges Li +1, N -3, net -1 e on
    a compensating background) the band is full, DFT finds a gap and DFPT gives Born charges whose sum rule is
    that of a charged cell, sum_i Z_i = q 1 (a rigid shift carries the charge). The frame records the charge.

    (Without an in-plane Li2 instead, this 3-atom cell stays metallic even when charged: a vacancy share of 1/3
    closes the gap; the pipeline's defect cells are supercells.)
    """
    atoms = get_reference_structure('alpha-Li3N')
    li1 = next(atom.index for atom in atoms if atom.symbol == 'Li' and abs(atom.scaled_position[2] - 0.5) < 1e-6)
    cell = atoms[[i for i in range(len(atoms)) if i != li1]]
    neutral = label(qe_engine, {'vacancy': cell})
    charged = label(qe_engine, {'vacancy': cell}, overrides={'oxidation_states': {'Li': 1, 'N': -3}})
    assert neutral.outputs.summary['structures']['vacancy']['flags'] == ['no_gap']
    outcome = charged.outputs.summary['structures']['vacancy']
    assert outcome['status'] == 'labelled', outcome['message']
    assert 'tot_charge=-1' in outcome['flags']
    frame = charged.outputs.dataset.get_dataset()[0]
    assert 'tot_charge=-1' in frame.flags
    scf = [n for n in charged.called_descendants if n.process_label == 'PwCalculation'][-1]
    assert scf.inputs.parameters['SYSTEM']['tot_charge'] == -1.0
    sums = frame.born_charges.sum(axis=0)
    assert np.abs(sums - (-1.0) * np.eye(3)).max() < 0.3  # the sum rule of a charged cell (1.0 e off zero)
    assert outcome['asr_violation'] < 0.3  # measured against q, so the frame is not flagged
    diagonal = np.einsum('iaa->ia', frame.born_charges)
    species = np.array(frame.species)
    assert (diagonal[species == 'N'] < -1.5).all() and (diagonal[species == 'Li'] > 0.2).all()  # anion, cations
