"""CSV logs of field MD: thermodynamics and committee uncertainty, one row per logged step.

Rows are flushed as they are written, so a run that dies keeps its log up to that point; a restart
drops the rows after the restart step before appending.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

THERMO_FILE = 'thermo.csv'
UNCERTAINTY_FILE = 'uncertainty.csv'
THERMO_COLUMNS = (
    'step',
    'time_fs',
    'temperature_K',
    'potential_energy_eV',
    'kinetic_energy_eV',
    'field_work_eV',
    'conserved_eV',
    'pressure_GPa',
    'volume_A3',
)
"""``conserved_eV`` = E_pot + E_kin - W: constant in NVE (with or without field) up to integration error."""
UNCERTAINTY_COLUMNS = ('step', 'time_fs', 'energy_std_per_atom_eV', 'max_force_deviation_eV_A', 'max_bec_deviation_e')


class CsvLog:
    """Append rows with fixed columns to a CSV file (header written once)."""

    def __init__(self, path: Path, columns: tuple[str, ...], keep_until_step: int | None = None):
        self.path = Path(path)
        self.columns = columns
        rows = read_log(self.path) if keep_until_step is not None and self.path.is_file() else None
        self.handle = open(self.path, 'w', newline='')
        self.writer = csv.writer(self.handle)
        self.writer.writerow(columns)
        if rows is not None:
            for index in np.flatnonzero(rows['step'] <= keep_until_step):
                self.writer.writerow([_format(rows[c][index]) for c in columns])
        self.handle.flush()

    def write(self, **values) -> None:
        self.writer.writerow([_format(values.get(c)) for c in self.columns])
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _format(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ''
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))


def read_log(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a log as arrays (empty cells are NaN; ``step`` is integer)."""
    with open(path, newline='') as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return {}
        rows = [row for row in reader if len(row) == len(header)]
    columns = {}
    for index, name in enumerate(header):
        values = np.array([float(row[index]) if row[index] else np.nan for row in rows], dtype=float)
        columns[name] = values.astype(int) if name == 'step' else values
    return columns
