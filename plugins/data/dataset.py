"""``DatasetData``: a :class:`~ionfield.models.data.dataset.Dataset` as one AiiDA node.

The frames live in one ``.npz`` file in the node's repository (the format of
:meth:`Dataset.save <ionfield.models.data.dataset.Dataset.save>`), so a dataset of any size costs one
file, not one node per frame. What one wants to *query* (numbers of frames and atoms, species,
how many frames carry each label, a sha256 of the content) is copied into attributes, so QueryBuilder
can select datasets without opening them. The node is immutable once stored (AiiDA enforces it).
"""

from __future__ import annotations

import io

from aiida import orm

from ionfield.models.data.dataset import FORMAT_VERSION, Dataset

__all__ = ('DatasetData',)


class DatasetData(orm.Data):
    """Labelled DFT frames (energies, forces, stress, Born charges, dielectric tensors) with provenance UUIDs."""

    FILENAME = 'dataset.npz'
    LABEL_COUNTS = ('n_energy', 'n_forces', 'n_stress', 'n_born_charges', 'n_eps_inf')

    def __init__(self, dataset: Dataset, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(dataset, Dataset):
            raise TypeError(f'dataset must be an ionfield.models.data.dataset.Dataset, got {type(dataset).__name__}')
        self._store_dataset(dataset)

    def _store_dataset(self, dataset: Dataset) -> None:
        buffer = io.BytesIO()
        dataset.save(buffer)
        buffer.seek(0)
        self.base.repository.put_object_from_filelike(buffer, self.FILENAME)
        statistics = dataset.statistics()
        species_counts = statistics['species_counts']
        self.base.attributes.set_many(
            {
                'format_version': FORMAT_VERSION,
                'n_frames': statistics['n_frames'],
                'n_atoms': statistics['n_atoms'],
                'species': sorted(species_counts),
                'species_counts': species_counts,
                **{key: statistics[key] for key in self.LABEL_COUNTS},
                'sha256': dataset.content_hash(),
            }
        )

    def get_dataset(self) -> Dataset:
        """The frames, read back from the repository file and checked against the content hash."""
        content = self.base.repository.get_object_content(self.FILENAME, mode='rb')
        dataset = Dataset.load(io.BytesIO(content))
        digest = dataset.content_hash()
        if digest != self.sha256:
            raise ValueError(
                f'{self.FILENAME} of node {self.pk} has content sha256 {digest}, attribute says {self.sha256}'
            )
        return dataset

    @property
    def n_frames(self) -> int:
        return self.base.attributes.get('n_frames')

    @property
    def n_atoms(self) -> int:
        return self.base.attributes.get('n_atoms')

    @property
    def species(self) -> list[str]:
        return self.base.attributes.get('species')

    @property
    def sha256(self) -> str:
        return self.base.attributes.get('sha256')

    @property
    def source_uuids(self) -> list[str]:
        """UUID of the calculation behind each frame ('' where unknown), in frame order."""
        return self.get_dataset().source_uuids
