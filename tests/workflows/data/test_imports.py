"""``import_dataset`` and ``ionfield dataset import``: provenance of an imported dataset, and bad files refused.

The physics of the conversions is tested in ``tests/models/data/test_imports.py``; here: the dataset
node traces back to the file and the mapping, a bad file or mapping is an error before anything is
stored (CLI) or a failed calcfunction with its reason (307), and the dataset starts active learning.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from ionfield.models.data.imports import ImportSettings
from ionfield.plugins.data.dataset import DatasetData
from ionfield.workflows.data.imports import EXIT_DATASET_NOT_IMPORTABLE, import_dataset

from ...plugins.test_cli_train import invoke, n_processes


@pytest.fixture
def vasp_style_file(tmp_path):
    """Two LiF frames as a VASP user writes them: stress in kbar with the pressure sign, Born charges `becs`."""
    frames = []
    for index in range(2):
        atoms = bulk('LiF', 'rocksalt', a=4.03 + 0.02 * index)
        atoms.calc = SinglePointCalculator(atoms, energy=-9.5 - index, forces=np.full((2, 3), 0.1 * index))
        atoms.info['stress_kb'] = np.array([10.0, 10.0, 10.0, 0.0, 0.0, 0.0]) * (index + 1)
        atoms.arrays['becs'] = np.array([np.eye(3) * 1.04, -np.eye(3) * 1.04]).reshape(2, 9)
        frames.append(atoms)
    path = tmp_path / 'lif.extxyz'
    write(path, frames)
    return path


MAPPING = ('--stress-key', 'stress_kb', '--stress-unit', 'kbar', '--stress-sign', 'compressive', '--born-key', 'becs')


def test_cli_import_stores_a_dataset_that_traces_to_the_file_and_mapping(aiida_profile, vasp_style_file):
    result = invoke('dataset', 'import', vasp_style_file, *MAPPING, '--dielectric-key', 'none', '--label', 'LiF')
    assert result.exit_code == 0, result.output
    assert '2 frames; labelled: energy 2, forces 2, stress 2, born_charges 2, eps_inf 0' in result.output
    assert 'order symmetric' in result.output
    pk = int(result.output.split('DatasetData<')[1].split('>')[0])
    node = orm.load_node(pk)
    assert isinstance(node, DatasetData) and node.label == 'LiF'
    creator = node.creator
    assert creator.process_label == 'import_dataset' and creator.is_finished_ok
    source = creator.inputs.file
    assert source.filename == 'lif.extxyz'
    assert creator.inputs.settings['stress_unit'] == 'kbar' and creator.inputs.settings['dielectric_key'] is None
    dataset = node.get_dataset()
    assert {frame.source_uuid for frame in dataset} == {source.uuid}
    # 10 kbar of pressure is a compressive stress: -1 GPa in ASE's (tensile-positive) sign
    np.testing.assert_allclose(np.diag(dataset[0].stress) / 0.006241509, [-1.0] * 3, rtol=1e-5)
    assert creator.outputs.report['born_order'] == 'symmetric'
    # `al run --dataset` takes it
    assert f'--dataset {pk}' in result.output


def test_cli_refuses_a_bad_mapping_before_storing_anything(aiida_profile, vasp_style_file):
    before = n_processes()
    result = invoke('dataset', 'import', vasp_style_file, '--energy-key', 'none', '--forces-key', 'none')
    assert result.exit_code == 2
    assert 'no frame has any of the stated labels' in result.output and 'stress_kb' in result.output
    result = invoke('dataset', 'import', vasp_style_file, *MAPPING, '--dry-run')
    assert result.exit_code == 0 and 'dry run: nothing stored' in result.output
    assert n_processes() == before


def test_the_calcfunction_fails_with_its_reason_and_stores_no_dataset(aiida_profile, tmp_path):
    path = tmp_path / 'broken.xyz'
    path.write_text('2\nnot an extxyz comment line\nLi 0 0\n')
    settings = orm.Dict(ImportSettings().to_dict())
    results, node = import_dataset.run_get_node(file=orm.SinglefileData(path), settings=settings)
    assert node.is_failed and node.exit_status == EXIT_DATASET_NOT_IMPORTABLE.status
    assert 'cannot be read by ASE' in node.exit_message
    assert not results
