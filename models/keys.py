"""Every array, info and column key the project writes, in one place (nequip's ``data/_keys.py`` style).

A key is written in many places (extxyz files read by nequip, ASE calculator results, HDF5
trajectories, CSV logs, AiiDA attributes) and read back in many others; a typo in one of them is a
silent NaN column. So no module spells a key as a string literal: it imports the constant from here.
The per-frame label keys equal NequIP's ``AtomicDataDict`` keys (checked by ``tests/models/test_keys.py``),
because nequip reads our extxyz files with them.
"""

from __future__ import annotations

from typing import Final

# --- labels of a frame (extxyz, ASE calculator results, nequip) ------------------------------------------
#: Total energy, eV (per frame).
ENERGY: Final = 'energy'
#: Forces, eV/Å, (N, 3).
FORCES: Final = 'forces'
#: Stress, eV/Å^3 in ASE's sign, (3, 3) (per frame; 9 values in extxyz).
STRESS: Final = 'stress'
#: Born effective charges, e, (N, 3, 3), Z[i, a, b] = dF_ib / d(e E_a); 9 columns per atom in extxyz (row-major).
BORN_CHARGES: Final = 'born_effective_charges'
#: High-frequency dielectric tensor eps_inf, (3, 3) (per frame; 9 values in extxyz).
DIELECTRIC: Final = 'dielectric_tensor'

# --- frame metadata (extxyz info, the dataset .npz) --------------------------------------------------
#: Loss weight of a frame (float >= 0).
WEIGHT: Final = 'weight'
#: Comma-separated flags of a frame (e.g. :data:`ASR_FLAG`).
FLAGS: Final = 'flags'
#: UUID of the AiiDA node the frame was labelled by ('' outside AiiDA).
SOURCE_UUID: Final = 'source_uuid'
#: Flag of a frame whose Born charges break the acoustic sum rule by more than the label threshold.
ASR_FLAG: Final = 'asr_violation'
#: Prefix of the flag of a frame labelled as a charged cell with a compensating background: ``tot_charge=-1``
#: (the net charge in e, QE's ``tot_charge``); frames of neutral cells labelled with formal charges get ``=0``.
TOT_CHARGE_FLAG: Final = 'tot_charge'

#: Frame field name -> key in extended XYZ / nequip.
EXTXYZ_KEYS: Final = {
    'energy': ENERGY,
    'forces': FORCES,
    'stress': STRESS,
    'born_charges': BORN_CHARGES,
    'eps_inf': DIELECTRIC,
}

# --- field MD ---------------------------------------------------------------------------------------
#: Field forces e Z_i^T E, eV/Å, (N, 3), in the field calculator's results.
FIELD_FORCES: Final = 'field_forces'
