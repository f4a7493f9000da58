"""Born effective charges: the one index convention of the project and the acoustic sum rule.

DFPT codes violate the acoustic sum rule (ASR, ``sum_i Z_i = 0``) by numerical noise; the raw tensors are
stored and the corrected ones are derived (:func:`asr_corrected`), so that the correction can be changed
later without relabelling.
"""

from __future__ import annotations

import math

import numpy as np

BORN_CHARGE_CONVENTION = (
    'Z[i, a, b] = dF_ib / d(e E_a): first index field (polarization) direction a, second index displacement '
    'direction b, units of e; the field force on atom i is F_i = e Z_i^T E, i.e. F_ib = sum_a Z_iab E_a.'
)
"""The Born-charge index convention of every frame, model and MD run in the project."""


def asr_violation(born: np.ndarray, charge: float = 0.0) -> float:
    """Largest ``|sum_i Z_iab - q delta_ab|`` over (a, b) in e for ``born`` (N, 3, 3); NaN without Born charges.

    A cell of net charge ``q`` (a charged defect on a compensating background) moved rigidly carries its charge
    with it, so its sum rule is ``sum_i Z_i = q 1``, not zero; :func:`asr_corrected` (the mean subtracted) gives
    the neutral charges that the field force of a compensated cell needs either way.
    """
    born = np.asarray(born, dtype=float)
    if born.size == 0 or np.isnan(born).all():
        return math.nan
    return float(np.abs(born.sum(axis=0) - charge * np.eye(3)).max())


def asr_corrected(born: np.ndarray) -> np.ndarray:
    """Born charges ``(N, 3, 3)`` with the ASR violation spread equally over the atoms (mean subtracted)."""
    born = np.asarray(born, dtype=float)
    if born.shape[0] == 0:
        return born.copy()
    return born - born.mean(axis=0, keepdims=True)
