"""Proof of the Born-charge convention on the QE path: DFPT Z* against a finite electric field in pw.x.

``Z[i, a, b] = dF_ib / d(e E_a)`` is measured directly: pw.x with ``lelfield`` (Berry-phase finite field,
Umari & Pasquarello) in a field ``E`` along each Cartesian axis ``a``; the change of the forces from zero
field gives ``Z[:, a, :]``. The structure is antifluorite Li2O sheared and rattled, so every atom has a full
tensor with off-diagonal terms; its wide gap makes both methods converge at a k mesh a test can afford
(alpha-Li3N, with a 0.9 eV gap, disagreed by 0.3 e at 3x3x3 because both are far from converged there).
The DFPT tensor comes through the whole product path (``QeFrameWorkChain`` -> ph.x -> parser -> ``qe_frame``)
at the same k-point mesh. pw.x removes the net force, so the finite-field tensors obey the sum rule exactly.

What it proves: sign, unit (pw.x's field is in Rydberg atomic units, 36.3609 V/Å) and every element of
the tensor to 0.01 e. What it cannot: the antisymmetric part of Z* here is 0.002 e, below that error, so
it does not tell Z from its transpose; nor did any structure we could afford (see docs/labelling.md).
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory
from ase.build import bulk

from ionfield.models.data import asr_corrected
from ionfield.workflows.label.qe import QeFrameWorkChain

PwCalculation = CalculationFactory('quantumespresso.pw')

FIELD_RY_AU = 0.002
"""Field strength in pw.x's Rydberg atomic units (1 Ry a.u. = 36.3609 V/Å), small enough to be linear."""
V_PER_A_PER_RY_AU = 36.3609
TOLERANCE = 0.02
"""Largest allowed |Z_DFPT - Z_field| in e at the same k mesh (measured: 0.0075 e at 4x4x4, 0.0096 e at 5x5x5)."""


def low_symmetry_li2o():
    """Antifluorite Li2O (a = 4.61 Å), sheared and rattled: no symmetry left, a wide gap so k converges fast."""
    atoms = bulk('OLi2', 'fluorite', a=4.61)  # O on 4a, Li on 8c
    shear = np.array([[1.0, 0.10, 0.06], [0.0, 1.0, 0.08], [0.0, 0.0, 1.0]])
    atoms.set_cell(atoms.cell.array @ shear, scale_atoms=True)
    atoms.positions += np.random.default_rng(7).normal(0.0, 0.2, atoms.positions.shape)
    return orm.StructureData(ase=atoms)


def finite_field_born_charges(scf_calc, structure) -> np.ndarray:
    """``Z[i, a, b]`` from pw.x forces at ``E e_a`` (lelfield) minus those of the zero-field SCF, same k mesh."""
    parameters = scf_calc.inputs.parameters.get_dict()
    # one Berry-phase iteration per SCF step: the forces differ from nberrycyc 3 by 4e-7 Ry/bohr (1e-4 e of Z*),
    # and each field costs 39 s instead of 64 s (pw.x alone, 2 ranks)
    parameters['CONTROL'].update({'lelfield': True, 'nberrycyc': 1})
    parameters['CONTROL'].pop('tstress', None)  # stress is not implemented with lelfield
    parameters['SYSTEM'].pop('nbnd', None)  # Berry-phase polarisation needs the occupied manifold only
    parameters['SYSTEM'].update({'nosym': True, 'noinv': True})
    natoms = len(structure.sites)
    born = np.zeros((natoms, 3, 3))
    zero_field = scf_calc.outputs.output_trajectory.get_array('forces')[-1]
    for a in range(3):
        field = [0.0, 0.0, 0.0]
        field[a] = FIELD_RY_AU
        parameters['ELECTRONS']['efield_cart'] = field  # an ELECTRONS key, not CONTROL
        inputs = {
            'code': scf_calc.inputs.code,
            'structure': structure,
            'pseudos': {kind: scf_calc.inputs.pseudos[kind] for kind in scf_calc.inputs.pseudos},
            'kpoints': scf_calc.inputs.kpoints,
            'parameters': orm.Dict(parameters),
            'metadata': {'options': scf_calc.get_options()},
        }
        _, node = run_get_node(PwCalculation, **inputs)
        assert node.is_finished_ok, f'lelfield pw.x failed: [{node.exit_status}] {node.exit_message}'
        forces = node.outputs.output_trajectory.get_array('forces')[-1]
        born[:, a, :] = (forces - zero_field) / (FIELD_RY_AU * V_PER_A_PER_RY_AU)
    return born


def asr(born):
    return np.abs(born.sum(axis=0)).max()


@pytest.mark.slow
def test_dfpt_born_charges_equal_finite_field_derivative_of_forces(qe_engine):
    structure = low_symmetry_li2o()
    builder = QeFrameWorkChain.get_builder_from_protocol(
        qe_engine['pw_code'],
        structure,
        ph_code=qe_engine['ph_code'],
        overrides={'kpoints_distance': 0.6, 'pseudo_family': qe_engine['pseudo_family'], 'conv_thr_per_atom': 1e-11},
    )
    _, node = run_get_node(builder)
    assert node.is_finished_ok, f'[{node.exit_status}] {node.exit_message}'
    dfpt = node.outputs.frame.get_array('born_charges')
    scf_calc = next(c for c in node.called_descendants if c.process_type.endswith('quantumespresso.pw'))

    field = finite_field_born_charges(scf_calc, structure)

    error = np.abs(dfpt - field).max()
    error_transposed = np.abs(dfpt.transpose(0, 2, 1) - field).max()
    asymmetry = np.abs(dfpt - dfpt.transpose(0, 2, 1)).max()
    report = f'max|DFPT - field| = {error:.4f} e, transposed {error_transposed:.4f} e, asymmetry {asymmetry:.4f} e'
    corrected = np.abs(asr_corrected(dfpt) - asr_corrected(field)).max()
    print(report, f'ASR-corrected {corrected:.4f} e', f'ASR dfpt {asr(dfpt):.4f} field {asr(field):.4f}')
    print('DFPT', np.array2string(dfpt, precision=3, suppress_small=True))
    print('field', np.array2string(field, precision=3, suppress_small=True))
    off_diagonal = np.abs(field - np.einsum('iaa,ab->iab', field, np.eye(3))).max()
    assert off_diagonal > 0.025, f'the off-diagonal terms are too small to test: {off_diagonal:.4f} e'
    assert error < TOLERANCE, report
