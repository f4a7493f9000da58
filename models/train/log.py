"""Read the per-epoch training log (lightning's CSV logger) into plain rows."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from .config import OUTPUT_DIR

#: Where lightning's CSVLogger (configured in :func:`~ionfield.models.train.config.build_config`) writes.
LOG_CSV = Path(OUTPUT_DIR) / 'log' / 'version_0' / 'metrics.csv'


def read_training_log(workdir: str | Path) -> list[dict]:
    """One dict per validated epoch: ``epoch`` plus every ``val0_epoch/*`` and ``train_loss_epoch/*`` value."""
    path = Path(workdir) / LOG_CSV
    if not path.is_file():
        return []
    rows: dict[int, dict] = {}
    with open(path, newline='') as handle:
        for record in csv.DictReader(handle):
            if not record.get('epoch'):
                continue
            epoch = int(float(record['epoch']))
            row = rows.setdefault(epoch, {'epoch': epoch})
            for key, value in record.items():
                if value in ('', None) or key in ('epoch', 'step'):
                    continue
                if key.startswith(('val0_epoch/', 'train_loss_epoch/', 'train_metric_epoch/')):
                    number = float(value)
                    row[key] = number if math.isfinite(number) else float('nan')
    return [rows[k] for k in sorted(rows) if len(rows[k]) > 1]
