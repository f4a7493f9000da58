"""The uniform-field force on a batch of systems, in torch (the TorchSim backend's half of :mod:`.field`).

Same physics and conventions as :func:`.field.field_forces` (``F_ib = e sum_a Z[i, a, b] E_a``, Z in e,
E in V/Å, F in eV/Å; ``full``, ``diagonal`` and ``field_axis`` keep the parts of Z* the ablation asks for),
for many systems at once: each atom carries the field and the Z* mode of its system, so one call serves a
batch whose runs differ in field and mode. A test holds it equal to the NumPy version for every mode.
"""

from __future__ import annotations

from .field import BEC_MODES

#: Z* modes as integers (a tensor per atom), in the order of :data:`.field.BEC_MODES`.
MODE_INDEX = {mode: index for index, mode in enumerate(BEC_MODES)}


def field_forces_batched(born, fields, modes):
    """Forces (N, 3) from Born charges (N, 3, 3), per-atom fields (N, 3) and per-atom mode indices (N,)."""
    import torch

    projected = born.clone()
    diagonal = modes == MODE_INDEX['diagonal']
    if bool(diagonal.any()):
        projected[diagonal] = born[diagonal] * torch.eye(3, dtype=born.dtype, device=born.device)
    axis = modes == MODE_INDEX['field_axis']
    if bool(axis.any()):
        field = fields[axis]
        norm = torch.linalg.norm(field, dim=1, keepdim=True)
        n = torch.where(norm > 0, field / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(field))
        along = torch.einsum('ia,iab,ib->i', n, born[axis], n)
        projected[axis] = along[:, None, None] * n[:, :, None] * n[:, None, :]
    return torch.einsum('iab,ia->ib', projected, fields)


def field_work_increment(old_forces, new_forces, old_positions, new_positions, system_idx, n_systems):
    """Per-system W increment sum_i 0.5 (F_i(t) + F_i(t + dt)) . (r_i(t + dt) - r_i(t)) (trapezoid rule, eV)."""
    import torch

    per_atom = (0.5 * (old_forces + new_forces) * (new_positions - old_positions)).sum(dim=1)
    return torch.zeros(n_systems, dtype=per_atom.dtype, device=per_atom.device).index_add_(0, system_idx, per_atom)
