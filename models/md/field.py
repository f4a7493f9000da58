"""The force a uniform electric field exerts through Born effective charges.

In the Label convention ``Z[i, a, b] = dF_ib / d(e E_a)`` (first index field, second force
direction), so the force on atom i is ``F_ib = e sum_a Z[i, a, b] E_a``, i.e. ``F_i = e Z_i^T E``.
With Z in e and E in V/Å the force comes out in eV/Å, the unit of the model's forces.

``bec_mode`` selects what part of the tensor is kept, for the ablation the seed paper on Li3PO4
reports (off-diagonal terms matter):

* ``full``: the whole tensor;
* ``diagonal``: ``Z[i, a, a]`` only (each field component pushes along its own axis);
* ``field_axis``: only the component along the field direction n, ``(n^T Z_i n) n n^T``, so the
  force is along the field, of size ``e (n^T Z_i n) |E|``.

All three keep the acoustic sum rule: if ``sum_i Z_i = 0`` the net field force is zero.
"""

from __future__ import annotations

import numpy as np

BEC_MODES = ('full', 'diagonal', 'field_axis')

MAX_FIELD = 1.0
"""V/Å. Fields in the seed papers are 0.001-0.2 V/Å (dielectric breakdown is far below 1 V/Å);
a larger value almost always means V/m, mV/Å or atomic units were given."""


class FieldInputError(ValueError):
    """A field or Born-charge mode that cannot be used; the message says what to change."""


def parse_field(value) -> np.ndarray:
    """Return the field as a float array (3,) in V/Å, refusing a wrong shape, NaN or a unit slip."""
    try:
        field = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise FieldInputError(f'the field must be 3 numbers in V/Å, got {value!r}') from None
    if field.shape != (3,):
        raise FieldInputError(f'the field must be 3 numbers (Ex, Ey, Ez) in V/Å, got shape {field.shape}')
    if not np.isfinite(field).all():
        raise FieldInputError(f'the field has non-finite components: {field.tolist()}')
    magnitude = float(np.linalg.norm(field))
    if magnitude > MAX_FIELD:
        raise FieldInputError(
            f'|E| = {magnitude:g} V/Å is above {MAX_FIELD} V/Å: the field is in V/Å '
            '(0.1 V/Å = 1e9 V/m); did you give V/m, mV/Å or atomic units?'
        )
    return field


def check_bec_mode(mode: str) -> str:
    if mode not in BEC_MODES:
        raise FieldInputError(f'bec_mode must be one of {BEC_MODES}, got {mode!r}')
    return mode


def project_born_charges(born: np.ndarray, field: np.ndarray, mode: str = 'full') -> np.ndarray:
    """The part of ``born`` (N, 3, 3) that ``mode`` keeps (see the module docstring)."""
    born = np.asarray(born, dtype=float)
    check_bec_mode(mode)
    if mode == 'full':
        return born
    if mode == 'diagonal':
        return born * np.eye(3)
    norm = np.linalg.norm(field)
    if norm == 0:
        return np.zeros_like(born)
    n = np.asarray(field, dtype=float) / norm
    along = np.einsum('a,iab,b->i', n, born, n)
    return along[:, None, None] * np.outer(n, n)


def field_forces(born: np.ndarray, field: np.ndarray, mode: str = 'full') -> np.ndarray:
    """Forces (N, 3) in eV/Å from Born charges (N, 3, 3) in e and a field (3,) in V/Å."""
    born = np.asarray(born, dtype=float)
    if born.ndim != 3 or born.shape[1:] != (3, 3):
        raise FieldInputError(f'Born charges must have shape (N, 3, 3), got {born.shape}')
    return np.einsum('iab,a->ib', project_born_charges(born, field, mode), np.asarray(field, dtype=float))
