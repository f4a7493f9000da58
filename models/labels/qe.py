"""Quantum ESPRESSO outputs (as parsed by aiida-quantumespresso) in the project's units and conventions.

Plain numpy, so the conversions are tested without running pw.x or ph.x.

- Energy: pw.x's ``!`` total energy, which aiida-quantumespresso reports in eV as ``energy``. With
  smearing it is the free energy, the quantity whose derivative the printed forces are.
- Forces: eV/Å already (``output_trajectory`` array ``forces``).
- Stress: aiida-quantumespresso keeps pw.x's sign (pressure ``P = tr(sigma)/3`` positive under
  compression) in GPa; the project uses ASE's sign (``sigma = (1/V) dE/d(strain)``, positive under
  tension, when the cell would lower its energy by shrinking), in eV/Å^3: ``stress = -sigma_QE / 160.2176634``.
  ``tests/workflows/label/test_qe.py`` checks the sign against a finite difference of the energy under strain.
- Born charges: ph.x writes ``EFFECTIVE_CHARGES_EU`` to ``_ph0/<prefix>.phsave/tensors.xml`` as, for each
  atom, three rows ``d F / d E_a`` (row a = electric-field direction, columns = force direction); the
  parser returns them as ``effective_charges_eu[i][a][b]``. That is already the project's ``Z[i, a, b] =
  dF_ib / d(e E_a)`` (:data:`ionfield.models.data.dataset.BORN_CHARGE_CONVENTION`); the finite-field pw.x
  check in ``tests/workflows/label/test_born_convention_qe.py`` is the proof, not this sentence.
- eps_inf: ``dielectric_constant`` (electronic, clamped-ion, 3x3).
"""

from __future__ import annotations

import numpy as np

__all__ = (
    'GPA_PER_EV_PER_A3',
    'band_gap',
    'born_charges_from_ph',
    'dielectric_from_ph',
    'stress_from_qe',
)

GPA_PER_EV_PER_A3 = 160.21766208
"""1 eV/Å^3 in GPa."""


def stress_from_qe(stress_gpa) -> np.ndarray:
    """pw.x stress (GPa, pw.x sign) -> eV/Å^3 with ASE's sign."""
    return -np.asarray(stress_gpa, dtype=float).reshape(3, 3) / GPA_PER_EV_PER_A3


def born_charges_from_ph(effective_charges_eu, natoms: int) -> np.ndarray:
    """ph.x ``effective_charges_eu`` (natoms x [field row][force column]) -> ``Z[i, a, b]`` in e."""
    born = np.asarray(effective_charges_eu, dtype=float)
    if born.shape != (natoms, 3, 3):
        raise ValueError(f'ph.x effective charges have shape {born.shape}, expected ({natoms}, 3, 3)')
    return born


def dielectric_from_ph(dielectric_constant) -> np.ndarray:
    """ph.x ``dielectric_constant`` (3x3, electronic) as a float array."""
    eps = np.asarray(dielectric_constant, dtype=float)
    if eps.shape != (3, 3):
        raise ValueError(f'ph.x dielectric constant has shape {eps.shape}, expected (3, 3)')
    return eps


def band_gap(eigenvalues, n_occupied: int) -> float:
    """Gap in the eigenvalues' unit between band ``n_occupied`` (0-based: the first empty) and the one below.

    ``eigenvalues`` is (nspin?, nkpoints, nbands); the gap is ``min(empty) - max(occupied)`` over all k-points
    (indirect gap), negative when bands overlap (a metal). Needs at least one empty band.
    """
    bands = np.asarray(eigenvalues, dtype=float)
    bands = bands.reshape(-1, bands.shape[-1])
    if not 0 < n_occupied < bands.shape[-1]:
        raise ValueError(f'need occupied and empty bands: {n_occupied} occupied of {bands.shape[-1]} computed')
    return float(bands[:, n_occupied].min() - bands[:, n_occupied - 1].max())
