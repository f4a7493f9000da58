"""``TrainCalculation`` (``ionfield.train``): one ``ionfield-train`` run on any computer.

The job folder gets the dataset (``dataset.npz``), the validated settings (``settings.json``)
and, when warm-starting, the parent model; ``ionfield-train`` does the rest (config, split,
``nequip-train``, packaging, optional AOTInductor compile, test metrics). To resume an
interrupted run, give the ``parent_folder`` of that run: its ``outputs/`` (checkpoints, log)
are copied in and training continues from ``outputs/last.ckpt``.

Exit codes 400-419 (train stage): see ``spec.exit_code`` below; each message says what to do.
"""

from __future__ import annotations

import json

from aiida import orm

from ionfield.models.train.config import LAST_CHECKPOINT, OUTPUT_DIR
from ionfield.models.train.log import LOG_CSV
from ionfield.models.train.runner import COMPILED_FILE, LOG_FILE, MODEL_FILE, RESULT_FILE
from ionfield.models.train.settings import TrainingSettings
from ionfield.plugins.calculations.runner import RunnerCalculation
from ionfield.plugins.calculations.validation import settings_validator
from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.data.model import ModelData

validate_settings = settings_validator(TrainingSettings, 'training')


class TrainCalculation(RunnerCalculation):
    """Train one nequip model (with a Born-charge head by default) on a Dataset."""

    PARSER = 'ionfield.train'
    STDOUT_FILE = 'ionfield-train.out'
    # the CSV log keeps its path (the parser reads it there); a plain name would be retrieved as `metrics.csv`
    RETRIEVE = (RESULT_FILE, LOG_FILE, (str(LOG_CSV), '.', len(LOG_CSV.parts)), MODEL_FILE, COMPILED_FILE)

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'dataset', valid_type=DatasetData, help='Labelled frames to train on (split train/val/test by seed).'
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            validator=validate_settings,
            help='TrainingSettings as a dict (size, seed, max_epochs, weights, bec, ...); defaults fill the rest.',
        )
        spec.input(
            'parent_model', valid_type=ModelData, required=False, help='Model to warm-start from (same species).'
        )
        spec.input(
            'parent_folder',
            valid_type=orm.RemoteData,
            required=False,
            help='Folder of an interrupted run of this calculation: training resumes from its last checkpoint.',
        )
        spec.input(
            'compile',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help='Also AOTInductor-compile the model (target ase_bec).',
        )

        spec.output('model', valid_type=ModelData, help='The packaged model with its metadata and test metrics.')
        spec.output('metrics', valid_type=orm.Dict, help='Test-split errors (meV/atom, meV/Å, e) and split sizes.')
        spec.output('training_curve', valid_type=orm.Dict, required=False, help='Per-epoch validation metrics.')
        spec.output('log', valid_type=orm.SinglefileData, required=False, help='The training log (stdout of nequip).')

        spec.exit_code(
            400,
            'ERROR_NO_RESULT',
            message='ionfield-train wrote no result (killed, out of walltime?); resume from `remote_folder`.',
            invalidates_cache=True,
        )
        spec.exit_code(401, 'ERROR_INPUT', message='the dataset or settings cannot train a model: {message}')
        spec.exit_code(
            402, 'ERROR_NAN_LOSS', message='the loss became NaN: lower the learning rate or check the labels.'
        )
        spec.exit_code(
            403,
            'ERROR_OUT_OF_MEMORY',
            message='training ran out of memory: lower the batch size or the model size.',
            invalidates_cache=True,
        )
        spec.exit_code(404, 'ERROR_TRAINING_FAILED', message='nequip failed: {message}')
        spec.exit_code(405, 'ERROR_MODEL_FILE', message='the packaged model is missing or unreadable: {message}')

    def prepare_for_submission(self, folder):
        # only the keys that were set: a warm start inherits the rest of the architecture from its parent
        requested = self.inputs.settings.get_dict() if 'settings' in self.inputs else {}
        with folder.open('dataset.npz', 'wb') as handle:
            handle.write(self.inputs.dataset.base.repository.get_object_content(DatasetData.FILENAME, mode='rb'))
        with folder.open('settings.json', 'w') as handle:
            json.dump(requested, handle, indent=1)

        cmdline = ['--dataset', 'dataset.npz', '--settings', 'settings.json']
        if 'parent_model' in self.inputs:
            with folder.open('parent.nequip.zip', 'wb') as handle:
                handle.write(self.inputs.parent_model.get_package_bytes())
            with folder.open('parent_settings.json', 'w') as handle:
                json.dump(self.inputs.parent_model.base.attributes.get('settings', {}), handle, indent=1)
            cmdline += ['--parent', 'parent.nequip.zip', '--parent-settings', 'parent_settings.json']
        remote_copy = []
        if 'parent_folder' in self.inputs:
            parent = self.inputs.parent_folder
            remote_copy.append((parent.computer.uuid, f'{parent.get_remote_path()}/{OUTPUT_DIR}', OUTPUT_DIR))
            cmdline += ['--resume', LAST_CHECKPOINT]
        if self.inputs.compile.value:
            cmdline.append('--compile')

        return self.runner_calcinfo(cmdline, remote_copy)
