"""Parser of ``TrainCalculation``: ``result.json`` -> model, metrics, training curve, log."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from aiida import orm
from aiida.parsers import Parser

from ionfield.models.train.log import LOG_CSV, read_training_log
from ionfield.models.train.runner import COMPILED_FILE, LOG_FILE, MODEL_FILE, RESULT_FILE
from ionfield.plugins.data.model import ModelData

STATUS_EXIT = {
    'input_error': 'ERROR_INPUT',
    'nan_loss': 'ERROR_NAN_LOSS',
    'out_of_memory': 'ERROR_OUT_OF_MEMORY',
    'failed': 'ERROR_TRAINING_FAILED',
}


class TrainParser(Parser):
    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = set(retrieved.base.repository.list_object_names())
        if LOG_FILE in names:
            with retrieved.base.repository.open(LOG_FILE, 'rb') as handle:
                self.out('log', orm.SinglefileData(handle, filename=LOG_FILE))
        curve = self._training_curve(retrieved)
        if curve:
            self.out('training_curve', orm.Dict({'epochs': curve}))

        if RESULT_FILE not in names:
            return self.exit_codes.ERROR_NO_RESULT
        result = json.loads(retrieved.base.repository.get_object_content(RESULT_FILE))
        status = result.get('status')
        if status != 'ok':
            exit_code = self.exit_codes[STATUS_EXIT.get(status, 'ERROR_TRAINING_FAILED')]
            if status in ('input_error', 'failed'):
                return exit_code.format(message=result.get('message', ''))
            return exit_code

        if MODEL_FILE not in names:
            return self.exit_codes.ERROR_MODEL_FILE.format(message=f'{MODEL_FILE} was not retrieved')
        # the settings that were used (a warm start's architecture is its parent's), not only those that were given
        given = self.node.inputs.settings.get_dict() if 'settings' in self.node.inputs else {}
        settings = result.get('settings', given)
        metrics = dict(result.get('metrics', {}))
        metrics.update(
            {
                'epochs': result.get('epochs'),
                'split_sizes': result.get('split_sizes'),
                'wall_time_s': result.get('wall_time_s'),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            package = Path(tmp) / MODEL_FILE
            package.write_bytes(retrieved.base.repository.get_object_content(MODEL_FILE, mode='rb'))
            compiled = None
            if result.get('compiled') and COMPILED_FILE in names:
                compiled = Path(tmp) / COMPILED_FILE
                compiled.write_bytes(retrieved.base.repository.get_object_content(COMPILED_FILE, mode='rb'))
            try:
                model = ModelData(
                    package,
                    species=result['type_names'],
                    r_max=result['r_max'],
                    has_bec=result['has_bec'],
                    metrics=metrics,
                    dataset_uuid=self.node.inputs.dataset.uuid,
                    seed=settings.get('seed', 0),
                    settings=settings,
                    compiled=compiled,
                )
            except (ValueError, KeyError) as exc:
                return self.exit_codes.ERROR_MODEL_FILE.format(message=str(exc))
        self.out('model', model)
        self.out('metrics', orm.Dict(metrics))
        return None

    @staticmethod
    def _training_curve(retrieved) -> list[dict]:
        """Per-epoch metrics from the retrieved CSV log, keys ``val_*`` and ``train_*``."""
        try:
            content = retrieved.base.repository.get_object_content(str(LOG_CSV), mode='rb')
        except (FileNotFoundError, OSError):
            return []
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / LOG_CSV
            target.parent.mkdir(parents=True)
            target.write_bytes(content)
            rows = read_training_log(tmp)
        prefixes = {'val0_epoch/': 'val_', 'train_loss_epoch/': 'train_', 'train_metric_epoch/': 'train_metric_'}
        curve = []
        for row in rows:
            clean = {}
            for key, value in row.items():
                for prefix, short in prefixes.items():
                    if key.startswith(prefix):
                        key = short + key[len(prefix) :]
                clean[key] = None if value != value else value  # NaN is not JSON
            curve.append(clean)
        return curve
