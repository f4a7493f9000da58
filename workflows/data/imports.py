"""``import_dataset``: labelled frames from another group's file, as a calcfunction: the graph shows their origin.

The file is an input node (``SinglefileData``) and the mapping (keys, units, stress sign, Born-charge
index order) a ``Dict``: the ``DatasetData`` it returns can be traced to both and made again. Every frame's
``source_uuid`` is the file node's UUID. The conversion is :func:`ionfield.models.data.imports.read_frames`.

A file or mapping that cannot be imported does not raise: the calcfunction is stored as failed with
307 ``EXIT_DATASET_NOT_IMPORTABLE`` and the reason (structure stage range, next to the sampling steps'
305/306), so ``verdi process show`` says what to change.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ExitCode, calcfunction

from ionfield.models.data.dataset import Dataset
from ionfield.models.data.imports import DatasetImportError, ImportSettings, read_frames
from ionfield.plugins.data.dataset import DatasetData

__all__ = ('EXIT_DATASET_NOT_IMPORTABLE', 'import_dataset')

EXIT_DATASET_NOT_IMPORTABLE = ExitCode(307, 'The file could not be imported as labelled frames: {detail}.')


@calcfunction
def import_dataset(file: orm.SinglefileData, settings: orm.Dict):
    """``dataset`` (``DatasetData``) and ``report`` (``Dict``: counts, Born-charge checks, conversions)."""
    try:
        mapping = ImportSettings.from_dict(settings.get_dict())
        with file.as_path() as path:
            dataset, report = read_frames(path, mapping)
    except DatasetImportError as exception:
        return EXIT_DATASET_NOT_IMPORTABLE.format(detail=str(exception))
    dataset = Dataset(frame.replace(source_uuid=file.uuid) for frame in dataset)
    return {'dataset': DatasetData(dataset), 'report': orm.Dict(report.to_dict())}
