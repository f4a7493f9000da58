"""Conversions of QE outputs to the project's units (the sign and index proofs are in the slow QE tests)."""

from __future__ import annotations

import numpy as np
import pytest

from ionfield.models.labels import qe as qe_labels


def test_stress_changes_sign_and_unit():
    qe = np.diag([-0.5, -0.5, -0.4])  # GPa, pw.x sign: negative pressure = tensile
    ase = qe_labels.stress_from_qe(qe)
    np.testing.assert_allclose(ase, -qe / 160.21766208)
    assert (np.diag(ase) > 0).all()


def test_born_charges_keep_the_ph_row_as_the_field_index():
    raw = np.arange(2 * 9, dtype=float).reshape(2, 3, 3).tolist()
    born = qe_labels.born_charges_from_ph(raw, natoms=2)
    assert born[1, 0, 2] == raw[1][0][2]  # atom 1, field row 0, force column 2
    with pytest.raises(ValueError, match=r'expected \(3, 3, 3\)'):
        qe_labels.born_charges_from_ph(raw, natoms=3)


def test_dielectric_shape_is_checked():
    np.testing.assert_allclose(qe_labels.dielectric_from_ph(np.eye(3) * 5), np.eye(3) * 5)
    with pytest.raises(ValueError):
        qe_labels.dielectric_from_ph([1.0, 2.0, 3.0])


def test_band_gap_is_indirect_and_negative_for_overlapping_bands():
    bands = np.array([[-5.0, 0.0, 2.0, 3.0], [-4.0, 0.5, 1.5, 4.0]])  # 2 k-points, 4 bands
    assert qe_labels.band_gap(bands, n_occupied=2) == pytest.approx(1.0)  # 1.5 (k2) - 0.5 (k2)
    assert qe_labels.band_gap(bands[None], n_occupied=1) == pytest.approx(0.0 - (-4.0))  # spin axis flattened
    metal = np.array([[0.0, 1.0], [1.2, 2.0]])
    assert qe_labels.band_gap(metal, n_occupied=1) < 0
    with pytest.raises(ValueError, match='need occupied and empty bands'):
        qe_labels.band_gap(bands, n_occupied=4)
