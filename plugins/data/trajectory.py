"""``MDTrajectoryData`` (``ionfield.md_trajectory``): a field-MD trajectory file with queryable metadata.

The file (HDF5 or extxyz, as written by ``ionfield-md``) lives in the node's repository; its size,
species, number of frames, first and last step, time span and the field it was run under are
attributes, so ``QueryBuilder`` can find e.g. every Li3N trajectory longer than 100 ps at
0.1 V/Å without opening a file. ``read()`` gives the arrays (unwrapped positions).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from aiida import orm
from ase.data import chemical_symbols

from ionfield.models.md.trajectory import MDTrajectory, read_trajectory, trajectory_metadata

__all__ = ('MDTrajectoryData',)


class MDTrajectoryData(orm.SinglefileData):
    """A trajectory written by the field-MD engine."""

    def __init__(self, file: str | Path, *, field=None, timestep_fs: float | None = None, **kwargs) -> None:
        file = Path(file)
        meta = trajectory_metadata(file)
        super().__init__(file, filename=file.name, **kwargs)
        symbols = [chemical_symbols[z] for z in meta.pop('numbers')]
        self.base.attributes.set_many(
            {
                'format': 'h5' if file.suffix in ('.h5', '.hdf5') else 'extxyz',
                'natoms': len(symbols),
                'species_counts': dict(sorted(Counter(symbols).items())),
                **meta,
                'field': [float(x) for x in field] if field is not None else None,
                'timestep_fs': timestep_fs,
            }
        )

    natoms = property(lambda self: self.base.attributes.get('natoms'))
    nframes = property(lambda self: self.base.attributes.get('nframes'))
    field = property(lambda self: self.base.attributes.get('field'))

    def read(self) -> MDTrajectory:
        """All frames as arrays (see :class:`~ionfield.models.md.trajectory.MDTrajectory`)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / self.filename
            path.write_bytes(self.get_content(mode='rb'))
            return read_trajectory(path)
