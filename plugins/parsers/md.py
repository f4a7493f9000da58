"""Parser of ``MDCalculation``: trajectory, logs, state and summary, then the stop reason as exit code.

Outputs are attached before the exit code is returned, so a run that stopped early (or was killed
and wrote no result) still has every frame and log row it produced.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from ionfield.models.md.engine import STATE_FILE
from ionfield.models.md.logs import THERMO_FILE, UNCERTAINTY_FILE, read_log
from ionfield.models.md.runner import RESULT_FILE
from ionfield.models.md.stops import CLOSE_CONTACT, COMPLETED, FAILED, NOT_FINITE, TEMPERATURE_RUNAWAY, UNCERTAINTY
from ionfield.models.md.trajectory import FILE_NAMES, TrajectoryFileError
from ionfield.plugins.data.trajectory import MDTrajectoryData

STATUS_EXIT = {
    'input_error': 'ERROR_INPUT',
    FAILED: 'ERROR_MD_FAILED',
    UNCERTAINTY: 'STOPPED_UNCERTAINTY',
    CLOSE_CONTACT: 'STOPPED_CLOSE_CONTACT',
    TEMPERATURE_RUNAWAY: 'STOPPED_TEMPERATURE_RUNAWAY',
    NOT_FINITE: 'STOPPED_NAN',
}


def log_array(path: Path) -> orm.ArrayData | None:
    """A CSV log as an ``ArrayData`` with one array per column (units in the names)."""
    columns = read_log(path)
    if not columns or not len(columns.get('step', [])):
        return None
    array = orm.ArrayData()
    for name, values in columns.items():
        array.set_array(re.sub(r'\W', '_', name), np.asarray(values))
    return array


class MDParser(Parser):
    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = set(retrieved.base.repository.list_object_names())
        settings = self.node.inputs.settings.get_dict() if 'settings' in self.node.inputs else {}
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for name in names:
                (tmp / name).write_bytes(retrieved.base.repository.get_object_content(name, mode='rb'))
            for name in FILE_NAMES.values():
                if name in names:
                    try:
                        self.out(
                            'trajectory',
                            MDTrajectoryData(
                                tmp / name, field=settings.get('field'), timestep_fs=settings.get('timestep_fs')
                            ),
                        )
                    except TrajectoryFileError as exc:
                        self.logger.warning(f'the trajectory could not be read: {exc}')
            for name, port in ((THERMO_FILE, 'thermo'), (UNCERTAINTY_FILE, 'uncertainty')):
                if name in names:
                    array = log_array(tmp / name)
                    if array is not None:
                        self.out(port, array)
            if STATE_FILE in names:
                self.out('state', orm.SinglefileData(tmp / STATE_FILE))

        if RESULT_FILE not in names:
            return self.exit_codes.ERROR_NO_RESULT
        result = json.loads(retrieved.base.repository.get_object_content(RESULT_FILE))
        self.out('summary', orm.Dict(result))
        status = result.get('status')
        if status == COMPLETED:
            return None
        return self.exit_codes[STATUS_EXIT.get(status, 'ERROR_MD_FAILED')].format(message=result.get('message', ''))
