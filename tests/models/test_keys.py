"""The key registry agrees with what nequip reads, and no module spells a registered key as a literal."""

from __future__ import annotations

import re

import numpy as np
import pytest
from nequip.data import AtomicDataDict
from nequip.data.ase import from_ase

from ionfield.models import keys
from ionfield.models.data import Frame

from ..conftest import REPO
from .synthetic import synthetic_dataset


def test_label_keys_are_nequips():
    assert keys.FORCES == AtomicDataDict.FORCE_KEY
    assert keys.STRESS == AtomicDataDict.STRESS_KEY
    assert keys.BORN_CHARGES == AtomicDataDict.BORN_CHARGE_KEY
    assert keys.DIELECTRIC == AtomicDataDict.DIELECTRIC_KEY


def test_nequip_reads_every_label_of_a_written_frame():
    """A frame through ``to_ase`` and nequip's own ``from_ase``: every label arrives under nequip's key."""
    frame: Frame = synthetic_dataset(1)[0]
    data = from_ase(frame.to_ase(), include_keys=[keys.BORN_CHARGES, keys.DIELECTRIC])
    # nequip stores float32 by default
    assert float(data[AtomicDataDict.TOTAL_ENERGY_KEY]) == pytest.approx(frame.energy, rel=1e-6)
    np.testing.assert_allclose(data[AtomicDataDict.FORCE_KEY].numpy(), frame.forces, atol=1e-6)
    np.testing.assert_allclose(
        data[AtomicDataDict.BORN_CHARGE_KEY].numpy().reshape(-1, 3, 3), frame.born_charges, atol=1e-6
    )
    np.testing.assert_allclose(data[AtomicDataDict.STRESS_KEY].numpy().reshape(3, 3), frame.stress, atol=1e-6)


def test_no_registered_key_is_spelt_as_a_literal():
    """``'born_effective_charges'`` typed in a module would drift from the registry: import the constant."""
    # the keys whose spelling is ours to keep (energy/forces/stress/weight/flags are also plain English words)
    registered = (keys.BORN_CHARGES, keys.DIELECTRIC, keys.FIELD_FORCES, keys.SOURCE_UUID)
    pattern = re.compile('|'.join(rf"['\"]{re.escape(value)}['\"]" for value in registered))
    found = []
    for folder in ('models', 'plugins', 'workflows'):
        for path in sorted((REPO / folder).rglob('*.py')):
            if path == REPO / 'models' / 'keys.py' or 'nequip_bec' in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and '``' not in line:  # a docstring may show the key
                    found.append(f'{path.relative_to(REPO)}:{number}: {line.strip()}')
    assert found == []


def test_every_frame_field_is_written_under_its_extxyz_key():
    atoms = synthetic_dataset(1)[0].to_ase()
    written = {**atoms.calc.results, **atoms.info, **atoms.arrays}
    assert {field: key in written for field, key in keys.EXTXYZ_KEYS.items()} == dict.fromkeys(keys.EXTXYZ_KEYS, True)
