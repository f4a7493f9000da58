"""``DatasetData`` stores a dataset as one repository file plus queryable attributes, and gives it back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.plugins import DataFactory

from ionfield.models.data.dataset import Dataset
from ionfield.plugins.data.dataset import DatasetData

from ..models.data.test_dataset import assert_same, make_frame


def make_dataset() -> Dataset:
    """Three frames: Li/N/Ag with labels, the middle one without Born charges or any label at all."""
    return Dataset(
        [
            make_frame(0, natoms=3),
            make_frame(1, natoms=2, labels=False, born=False),
            make_frame(2, natoms=4),
        ]
    )


def test_entry_point_loads_the_class():
    assert DataFactory('ionfield.dataset') is DatasetData


def test_store_reload_round_trip_and_attributes():
    dataset = make_dataset()
    node = DatasetData(dataset=dataset).store()
    loaded = orm.load_node(node.pk)
    assert isinstance(loaded, DatasetData)
    assert loaded.base.repository.list_object_names() == [DatasetData.FILENAME]
    assert loaded.sha256 == dataset.content_hash()
    # the hash is of the content, so the same frames stored again give the same hash (a file hash would not)
    assert DatasetData(dataset=make_dataset()).sha256 == loaded.sha256
    changed = make_dataset().filter(lambda frame: frame.natoms > 0)[:2]
    assert DatasetData(dataset=changed).sha256 != loaded.sha256
    attributes = loaded.base.attributes.all
    assert (attributes['n_frames'], attributes['n_atoms']) == (3, 9)
    assert attributes['species'] == sorted(dataset.species_counts())
    assert attributes['species_counts'] == dataset.species_counts()
    assert [attributes[key] for key in DatasetData.LABEL_COUNTS] == [2, 2, 2, 2, 2]
    back = loaded.get_dataset()
    assert_same(back, dataset)
    assert loaded.source_uuids == dataset.source_uuids and loaded.source_uuids[1].endswith('000000000001')


def test_frames_without_born_charges_stay_nan():
    node = orm.load_node(DatasetData(dataset=make_dataset()).store().pk)
    middle = node.get_dataset()[1]
    assert middle.born_charges.shape == (2, 3, 3) and np.isnan(middle.born_charges).all()
    assert np.isnan(middle.energy) and np.isnan(middle.forces).all()
    assert np.isfinite(node.get_dataset()[0].born_charges).all()


def test_querybuilder_filters_on_attributes():
    small = DatasetData(dataset=Dataset([make_frame(5, natoms=2)])).store()
    large = DatasetData(dataset=make_dataset()).store()
    query = orm.QueryBuilder().append(
        DatasetData, filters={'attributes.n_frames': {'>=': 3}, 'attributes.n_born_charges': {'>': 1}}, project='id'
    )
    found = set(query.all(flat=True))
    assert large.pk in found and small.pk not in found


def test_stored_node_is_immutable_and_tampering_is_detected():
    node = DatasetData(dataset=make_dataset()).store()
    with pytest.raises(Exception, match='immutable|stored'):
        node.base.attributes.set('n_frames', 0)
    unstored = DatasetData(dataset=make_dataset())
    unstored.base.attributes.set('sha256', '0' * 64)
    with pytest.raises(ValueError, match='sha256'):
        unstored.get_dataset()


def test_constructor_requires_a_dataset():
    with pytest.raises(TypeError, match='Dataset'):
        DatasetData(dataset=[make_frame(0)])
