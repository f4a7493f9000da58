"""``LabelWorkChain`` orchestration with the engine mocked (DP-GEN2 style): batches, failures, summary, dataset.

``FakeQe`` has the inputs of ``QeFrameWorkChain`` but, instead of running pw.x/ph.x, emits a frame whose
behaviour is chosen by the structure's ``extras['fake']``: a clean label, a metal (frame without Born
charges, exit 330), a DFPT failure (331), an SCF failure (321, no frame), or Born charges that break the
sum rule. Everything else (checks, parallel launch, collection, assembly, exit codes) is the real code.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import calcfunction, run_get_node
from ase import Atoms

from ionfield.models.structures.reference import get_reference_structure
from ionfield.workflows.label import workchain as label_workchain
from ionfield.workflows.label.frame import frame_node
from ionfield.workflows.label.qe import QeFrameWorkChain
from ionfield.workflows.label.workchain import LabelWorkChain, assemble_dataset


@calcfunction
def fake_frame(structure: orm.StructureData, with_bec: orm.Bool, asr_offset: orm.Float) -> orm.ArrayData:
    natoms = len(structure.sites)
    born = None
    if with_bec.value:
        born = np.tile(np.diag([1.0, 2.0, 3.0]), (natoms, 1, 1))
        born[0] -= born.sum(axis=0)  # sum rule exact ...
        born[0, 0, 1] += asr_offset.value  # ... unless an offset is asked for
    return frame_node(
        natoms,
        structure.uuid,
        energy=-1.5 * natoms,
        forces=np.arange(natoms * 3).reshape(natoms, 3) * 0.01,
        stress=np.eye(3) * 1e-3,
        born_charges=born,
        eps_inf=np.eye(3) * 5.0 if with_bec.value else None,
    )


class FakeQe(QeFrameWorkChain):
    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.outline(cls.fake)

    def fake(self):
        mode = self.inputs.structure.base.extras.get('fake', 'ok')
        if mode == 'scf_fail':
            return self.exit_codes.ERROR_SCF_FAILED.format(detail='PwBaseWorkChain<0> exit 300: fake')
        with_bec = self.inputs.bec.value and mode not in ('metal', 'dfpt_fail')
        offset = 0.3 if mode == 'asr' else 0.0
        self.out('frame', fake_frame(self.inputs.structure, orm.Bool(with_bec), orm.Float(offset)))
        if mode == 'metal' and self.inputs.bec.value:
            return self.exit_codes.ERROR_NO_GAP.format(detail='gap -0.500 eV')
        if mode == 'dfpt_fail':
            return self.exit_codes.ERROR_DFPT_FAILED.format(detail='fake ph.x crash')
        return None


@pytest.fixture
def fake_engine(aiida_profile, monkeypatch):
    monkeypatch.setitem(label_workchain.ENGINES, 'qe', FakeQe)
    computers = orm.Computer.collection.find({'label': 'fake'})
    if computers:
        computer = computers[0]
    else:
        computer = orm.Computer('fake', 'localhost', transport_type='core.local', scheduler_type='core.direct')
        computer.store().configure()
    code = orm.InstalledCode(
        computer=computer, filepath_executable='/bin/true', default_calc_job_plugin='quantumespresso.pw'
    ).store()
    return {
        'pw_code': code,
        'pseudo_family': orm.Str('none'),
        'kpoints_distance': orm.Float(0.5),
        'pw_parameters': orm.Dict({}),
        'conv_thr_per_atom': orm.Float(1e-10),
        'smearing': orm.Dict({}),
        'min_gap': orm.Float(0.1),
        'empty_bands': orm.Int(4),
        'pw_options': orm.Dict({}),
    }


def structure(mode: str = 'ok', atoms: Atoms | None = None) -> orm.StructureData:
    node = orm.StructureData(ase=atoms if atoms is not None else get_reference_structure('alpha-Li3N'))
    node.store()
    node.base.extras.set('fake', mode)
    return node


def overlapping() -> orm.StructureData:
    atoms = get_reference_structure('alpha-Li3N')
    atoms.positions[1] = atoms.positions[0] + [0.1, 0.0, 0.0]
    return structure(atoms=atoms)


def molecule() -> orm.StructureData:
    return structure(atoms=Atoms('N2', positions=[[0, 0, 0], [0, 0, 1.1]], cell=[10, 10, 10], pbc=False))


def run_label(qe_inputs, structures, **inputs):
    return run_get_node(LabelWorkChain, structures=structures, qe=qe_inputs, **inputs)[1]


def test_a_mixed_batch_keeps_every_frame_and_reports_every_failure(fake_engine):
    structures = {
        'ok': structure('ok'),
        'metal': structure('metal'),
        'dfpt_fail': structure('dfpt_fail'),
        'scf_fail': structure('scf_fail'),
        'asr': structure('asr'),
        'overlap': overlapping(),
        'molecule': molecule(),
    }
    node = run_label(fake_engine, structures)
    assert node.is_finished_ok, node.exit_message  # 4 frames of 7 >= 0.5

    summary = node.outputs.summary.get_dict()
    status = {key: value['status'] for key, value in summary['structures'].items()}
    assert status == {
        'asr': 'labelled',
        'dfpt_fail': 'partial',
        'metal': 'partial',
        'molecule': 'rejected',
        'ok': 'labelled',
        'overlap': 'rejected',
        'scf_fail': 'failed',
    }
    assert summary['counts'] == {'labelled': 2, 'partial': 2, 'failed': 1, 'rejected': 2}
    outcomes = summary['structures']
    assert outcomes['overlap']['exit_status'] == 301 and 'overlap' in outcomes['overlap']['message'].lower()
    assert outcomes['molecule']['exit_status'] == 302
    assert outcomes['scf_fail']['exit_status'] == 321 and 'fake' in outcomes['scf_fail']['message']
    assert outcomes['metal']['exit_status'] == 330 and outcomes['metal']['flags'] == ['no_gap']
    assert outcomes['overlap']['process_pk'] is None  # rejected before any process was launched

    dataset = node.outputs.dataset.get_dataset()
    assert len(dataset) == 4
    by_key = {key: dataset[outcome['frame_index']] for key, outcome in outcomes.items() if 'frame_index' in outcome}
    assert sorted(by_key) == ['asr', 'dfpt_fail', 'metal', 'ok']
    assert by_key['ok'].has_born_charges and by_key['ok'].has_eps_inf and not by_key['ok'].flags
    assert not by_key['metal'].has_born_charges and by_key['metal'].has_forces and by_key['metal'].has_stress
    assert by_key['metal'].flags == {'no_gap'} and by_key['dfpt_fail'].flags == {'dfpt_failed'}
    assert by_key['asr'].flags == {'asr_violation'}
    assert outcomes['asr']['asr_violation'] == pytest.approx(0.3)
    assert outcomes['ok']['asr_violation'] == pytest.approx(0.0, abs=1e-12)
    assert outcomes['metal']['asr_violation'] is None
    assert by_key['ok'].source_uuid == structures['ok'].uuid  # what the engine put in the frame
    np.testing.assert_allclose(by_key['ok'].positions, structures['ok'].get_ase().positions)


def test_too_few_frames_fails_but_outputs_the_dataset(fake_engine):
    structures = {'ok': structure('ok'), 'bad': structure('scf_fail'), 'overlap': overlapping()}
    node = run_label(fake_engine, structures, min_success_fraction=orm.Float(0.9))
    assert node.exit_status == LabelWorkChain.exit_codes.ERROR_TOO_FEW_LABELLED.status
    assert 'Only 1 of 3' in node.exit_message and 'bad:' in node.exit_message and 'overlap:' in node.exit_message
    assert node.outputs.dataset.n_frames == 1


def test_nothing_labelled_and_no_structures(fake_engine):
    node = run_label(fake_engine, {'a': overlapping(), 'b': molecule()})
    assert node.exit_status == LabelWorkChain.exit_codes.ERROR_NOTHING_LABELLED.status
    assert 'dataset' not in node.outputs and node.outputs.summary['counts']['rejected'] == 2

    node = run_label(fake_engine, {})
    assert node.exit_status == LabelWorkChain.exit_codes.ERROR_NO_STRUCTURES.status


def test_without_bec_every_frame_is_labelled_without_born_charges(fake_engine):
    node = run_label(fake_engine, {'ok': structure('ok'), 'metal': structure('metal')}, bec=orm.Bool(False))
    assert node.is_finished_ok
    assert node.outputs.summary['counts']['labelled'] == 2
    assert node.outputs.dataset.base.attributes.get('n_born_charges') == 0


def test_unknown_engine_and_missing_engine_inputs_are_refused(fake_engine):
    with pytest.raises(ValueError, match='unknown engine `abinit`'):
        run_label(fake_engine, {'ok': structure()}, engine=orm.Str('abinit'))
    with pytest.raises(ValueError, match='needs its inputs in the `qe` namespace'):
        run_get_node(LabelWorkChain, structures={'ok': structure()})


def test_assemble_dataset_is_a_calcfunction_with_provenance(fake_engine):
    node = run_label(fake_engine, {'ok': structure('ok')})
    creator = node.outputs.dataset.creator
    assert creator.process_label == assemble_dataset.__name__
    assert {link.link_label for link in creator.base.links.get_incoming().all()} >= {'frame_ok', 'structure_ok'}


def test_max_concurrent_labels_in_chunks(fake_engine):
    structures = {f's{index}': structure('ok') for index in range(5)}
    node = run_label(fake_engine, structures, max_concurrent=orm.Int(2))
    assert node.is_finished_ok and node.outputs.dataset.n_frames == 5
    frames = sorted((child for child in node.called if child.process_label == 'FakeQe'), key=lambda child: child.ctime)
    # chunks of 2, 2, 1: a chunk starts only after the previous one has finished
    assert frames[2].ctime > max(frames[0].mtime, frames[1].mtime)
    assert frames[4].ctime > max(frames[2].mtime, frames[3].mtime)
