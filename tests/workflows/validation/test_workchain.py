"""``ValidationWorkChain`` end to end with an analytic potential in place of DFT (and of the model).

EMT (an analytic many-body potential) labels the structures, and the "model" is EMT too: the two sides are
then the same physics computed through the two paths (labels -> DatasetData -> numbers, and the model's
calcfunction), so every error must vanish; a path that used another geometry, unit or sign would show.
A model whose lattice is 3 % too small must fail the gate on the lattice (and go on with ``override``).
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import WorkChain, calcfunction, run_get_node
from aiida.orm.utils.serialize import serialize
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS

from ionfield.models import keys
from ionfield.models.data.dataset import Dataset
from ionfield.models.data.frame import Frame
from ionfield.models.validation.settings import ValidationSettings
from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.data.model import ModelData
from ionfield.workflows.validation.workchain import ValidationWorkChain

from ...fakes import dummy_model

NOMINAL = {'Ni': 1.2, 'Al': -1.2}
FAIL = set()
"""Keys of structures the analytic labeller reports as failed (a test fills it)."""
"""Born charges of the analytic stand-in (isotropic, neutral): what both sides give."""


class ScaledEMT(Calculator):
    """EMT of the structure scaled by ``scale``: its equilibrium lattice is ``1/scale`` of EMT's.

    With ``bec``, isotropic nominal Born charges. E(x) = E_EMT(s x): F = s F_EMT and sigma = s^3 sigma_EMT.
    """

    implemented_properties = ('energy', 'forces', 'stress', keys.BORN_CHARGES)

    def __init__(self, scale: float = 1.0, bec: bool = False):
        super().__init__()
        self.scale, self.bec = scale, bec

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        scaled = self.atoms.copy()
        scaled.set_cell(self.atoms.cell.array * self.scale, scale_atoms=True)
        scaled.calc = EMT()
        self.results = {
            'energy': scaled.get_potential_energy(),
            'forces': scaled.get_forces() * self.scale,
            'stress': scaled.get_stress() * self.scale**3,
        }
        if self.bec:
            self.results[keys.BORN_CHARGES] = np.array(
                [np.eye(3) * NOMINAL[s] for s in self.atoms.get_chemical_symbols()]
            )


@calcfunction
def analytic_labels(bec: orm.Bool, **structures):
    """E/F/S (and, with ``bec``, the nominal Born charges) of EMT, in LabelWorkChain's outputs."""
    frames, outcomes = [], {}
    for key in sorted(structures):
        if key in FAIL:
            outcomes[key] = {'status': 'failed', 'message': 'SCF did not converge (injected)', 'frame_index': None}
            continue
        atoms = structures[key].get_ase()
        atoms.calc = ScaledEMT(bec=bec.value)
        born = atoms.calc.get_property(keys.BORN_CHARGES, atoms) if bec.value else None
        frames.append(
            Frame(
                numbers=atoms.numbers,
                positions=atoms.positions,
                cell=atoms.cell.array,
                pbc=True,
                energy=atoms.get_potential_energy(),
                forces=atoms.get_forces(),
                stress=atoms.get_stress(voigt=False),
                born_charges=born,
            )
        )
        outcomes[key] = {'status': 'labelled', 'frame_index': len(frames) - 1}
    return {'dataset': DatasetData(Dataset(frames)), 'summary': orm.Dict({'structures': outcomes})}


class AnalyticLabelWorkChain(WorkChain):
    """Stands in for ``LabelWorkChain``: takes its inputs, labels with EMT."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True)
        spec.input('bec', valid_type=orm.Bool)
        spec.inputs.dynamic = True  # the engine's namespace and concurrency of the real one
        spec.outline(cls.label)
        spec.output('dataset', valid_type=DatasetData)
        spec.output('summary', valid_type=orm.Dict)

    def label(self):
        outputs = analytic_labels(bec=self.inputs.bec, **self.inputs.structures)
        self.out('summary', outputs['summary'])
        if outputs['dataset'].n_frames:
            self.out('dataset', outputs['dataset'])


class AnalyticValidationWorkChain(ValidationWorkChain):
    label_process = AnalyticLabelWorkChain

    def _do_step(self):
        result = super()._do_step()
        serialize(self.ctx)  # what the daemon's checkpoint after every step does: refuses an unstored node
        return result

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs['label'].validator = None  # no DFT engine's inputs are needed


def emt_nial() -> orm.StructureData:
    """B2 NiAl at EMT's zero stress, with a small shear so that not every strain is equivalent."""
    atoms = bulk('NiAl', 'cesiumchloride', a=2.88)
    atoms.calc = EMT()
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-4, steps=200)
    return orm.StructureData(ase=atoms)


@pytest.fixture
def model_calculator(monkeypatch):
    """``ModelData.get_calculator`` returns this (scale, bec) ScaledEMT instead of loading a package."""
    chosen = {'scale': 1.0}

    def get_calculator(self, device='cpu'):
        return ScaledEMT(scale=chosen['scale'], bec=self.has_bec)

    monkeypatch.setattr(ModelData, 'get_calculator', get_calculator)
    return chosen


def _inputs(structure, has_bec=True, settings=None, **extra):
    return {
        'structure': structure,
        'model': dummy_model(species=('Al', 'Ni'), has_bec=has_bec),
        'settings': orm.Dict(ValidationSettings.from_dict(settings).to_dict()),
        **extra,
    }


def _samples() -> DatasetData:
    frames = []
    for seed in (1, 2):
        atoms = bulk('NiAl', 'cesiumchloride', a=2.88).repeat((2, 1, 1))
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        frames.append(Frame(atoms.numbers, atoms.positions, atoms.cell.array, True, forces=atoms.get_forces()))
    return DatasetData(Dataset(frames)).store()


def test_the_same_physics_on_both_paths_gives_no_error(aiida_profile, model_calculator):
    structure = emt_nial()
    # a 2x1x1 phonon supercell: its undisplaced supercell is labelled too (the [1, 1, 1] default reuses the cell)
    inputs = _inputs(structure, settings={'phonon_supercell': [2, 1, 1]}, samples=_samples())
    results, node = run_get_node(AnalyticValidationWorkChain, **inputs)
    assert node.is_finished_ok, node.exit_message
    table = results['table'].get_dict()
    assert table['passed'] and not table['overridden']
    assert results['plot'].get_content(mode='rb').startswith(b'\x89PNG')
    quantities = [row['quantity'] for row in table['rows']]
    assert {'a', 'b', 'c', 'Born charges (RMSE)', 'forces (RMSE)'} <= set(quantities)
    assert any('bulk' in q for q in quantities) and 'Gamma optical frequencies (RMS)' in quantities
    assert max(row['error'] for row in table['rows']) < 1e-6
    dft = results['dft'].get_dict()
    # B2 NiAl has 3 optical modes at Gamma (triply degenerate), above the 3 acoustic zeros
    gamma = np.array(dft['gamma_thz'])
    assert np.abs(gamma[:3]).max() < 0.05 and gamma[3:].min() > 1.0
    np.testing.assert_allclose(gamma[3:], gamma[3], rtol=1e-3)
    # the zero-stress cell of a structure already at zero stress is the structure
    np.testing.assert_allclose(dft['zero_stress_cell'], structure.cell, atol=1e-4)
    # the zero-stress cell was labelled with DFPT (the model has a head), and its stress is ~0
    relaxed = next(link.node for link in node.base.links.get_outgoing().all() if link.link_label == 'label_relaxed')
    assert relaxed.inputs.bec.value is True
    assert np.abs(table['dft_residual_stress_gpa']).max() < 1e-3


def test_a_model_with_the_wrong_lattice_fails_the_gate_unless_overridden(aiida_profile, model_calculator):
    model_calculator['scale'] = 1.03
    structure = emt_nial()
    _, node = run_get_node(AnalyticValidationWorkChain, **_inputs(structure, has_bec=False))
    assert node.exit_status == ValidationWorkChain.exit_codes.ERROR_VALIDATION_FAILED.status
    assert 'a, b, c' in node.exit_message
    rows = {row['quantity']: row for row in node.outputs.table['rows']}
    assert rows['a']['status'] == 'fail' and rows['a']['error'] == pytest.approx(0.03 / 1.03, rel=0.05)
    assert rows['a']['model'] == pytest.approx(rows['a']['dft'] / 1.03, rel=1e-3)
    assert 'Born charges (RMSE)' not in rows  # no head: the zero-stress cell was labelled without DFPT
    relaxed = next(link.node for link in node.base.links.get_outgoing().all() if link.link_label == 'label_relaxed')
    assert relaxed.inputs.bec.value is False

    results, node = run_get_node(
        AnalyticValidationWorkChain, **_inputs(structure, has_bec=False, override=orm.Bool(True))
    )
    assert node.is_finished_ok
    assert results['table']['overridden'] and not results['table']['passed']


def test_a_structure_that_dft_could_not_label_stops_it_with_the_reason(aiida_profile, model_calculator, monkeypatch):
    structure = emt_nial()
    monkeypatch.setattr(f'{__name__}.FAIL', {'strain_e1_plus'})
    _, node = run_get_node(AnalyticValidationWorkChain, **_inputs(structure))
    assert node.exit_status == ValidationWorkChain.exit_codes.ERROR_LABELS.status
    assert 'strain_e1_plus: SCF did not converge (injected)' in node.exit_message


def test_species_the_model_does_not_know_are_refused(aiida_profile):
    inputs = _inputs(emt_nial())
    inputs['model'] = dummy_model(species=('Li', 'N'))
    with pytest.raises(ValueError, match=r"species \['Al', 'Ni'\] that the model"):
        run_get_node(AnalyticValidationWorkChain, **inputs)
