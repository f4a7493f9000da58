"""Drift velocity and mobility under a field, and whether the response is linear in E.

The drift of a species is the slope of its mean displacement relative to the framework. Each
replica's run is cut into ``blocks`` equal pieces; the velocity of each piece is one sample, so the
error bar comes from the spread of independent pieces instead of from correlated frames. The
mobility is μ = v_along / |E|; the linear-response check fits v = μ |E| through the origin over all
fields of a series (weighted by the errors) and asks whether the points scatter about the line
more than their errors allow (χ² test). Under a field, :func:`without_drift` takes the drift out of
the displacements before any D is fitted.
"""

from __future__ import annotations

import dataclasses

import numpy as np

A_PER_FS_TO_CM_PER_S = 1e7
"""1 Å/fs = 1e-8 cm / 1e-15 s."""
MOBILITY_UNIT_FACTOR = 0.1
"""(Å/fs) / (V/Å) = 1e-16 cm² / (V 1e-15 s) = 0.1 cm²/(V s)."""


@dataclasses.dataclass
class Drift:
    """Mean velocity (Å/fs) of a species relative to the framework, in the field frame."""

    velocity: np.ndarray  # (3,) field frame: x, y across, z along
    error: np.ndarray  # (3,) standard error
    n_blocks: int

    @property
    def along(self) -> float:
        return float(self.velocity[2])

    @property
    def along_error(self) -> float:
        return float(self.error[2])

    @property
    def across(self) -> float:
        return float(np.linalg.norm(self.velocity[:2]))

    def to_dict(self, field_magnitude: float) -> dict:
        values = {
            'velocity_along_A_per_fs': self.along,
            'velocity_along_error_A_per_fs': self.along_error,
            'velocity_across_A_per_fs': self.across,
            'velocity_across_error_A_per_fs': float(np.linalg.norm(self.error[:2])),
            'velocity_along_cm_per_s': self.along * A_PER_FS_TO_CM_PER_S,
            'significance_sigma': abs(self.along) / self.along_error if self.along_error > 0 else None,
            'n_blocks': self.n_blocks,
        }
        if field_magnitude > 0:
            values['mobility_cm2_per_Vs'] = self.along / field_magnitude * MOBILITY_UNIT_FACTOR
            values['mobility_error_cm2_per_Vs'] = self.along_error / field_magnitude * MOBILITY_UNIT_FACTOR
        return values


def drift_velocity(displacements: np.ndarray, frame_fs: float, blocks: int = 4) -> Drift:
    """Drift of the mean of ``displacements`` (R, T, n, 3), framework-corrected, in the field frame."""
    mean = displacements.mean(axis=2)  # (R, T, 3)
    n_rep, n_frames, _ = mean.shape
    blocks = max(1, min(blocks, (n_frames - 1) // 2))
    edges = np.linspace(0, n_frames - 1, blocks + 1).round().astype(int)
    samples = []
    for replica in range(n_rep):
        for start, end in zip(edges[:-1], edges[1:], strict=True):
            samples.append((mean[replica, end] - mean[replica, start]) / ((end - start) * frame_fs))
    samples = np.array(samples)
    error = samples.std(axis=0, ddof=1) / np.sqrt(len(samples)) if len(samples) > 1 else np.full(3, np.nan)
    return Drift(samples.mean(axis=0), error, len(samples))


def without_drift(displacements: np.ndarray, velocity: np.ndarray, frame_fs: float) -> np.ndarray:
    """``displacements`` (R, T, n, 3) minus ``velocity`` (Å/fs, same frame) x t: the motion about the mean drift.

    Under a field the MSD is 2Dt + (v t)², and a line fitted to it takes the ballistic term for
    diffusion. One velocity for all ions and replicas (the species' reported drift) removes only the
    drift: each ion keeps its own random motion, which the estimated velocity's noise lowers by a
    share of about lag / (ions x run), under 1 % for 64 ions.
    """
    times = np.arange(displacements.shape[1]) * frame_fs
    return displacements - times[None, :, None, None] * np.asarray(velocity)


def linear_response(fields: np.ndarray, velocities: np.ndarray, errors: np.ndarray) -> dict:
    """Fit v = μ |E| (through the origin, weighted); μ in cm²/(V s); χ² test of linearity.

    ``fields`` (V/Å) > 0, ``velocities`` and ``errors`` along the field (Å/fs).
    """
    from scipy.stats import chi2

    fields, velocities, errors = (np.asarray(a, dtype=float) for a in (fields, velocities, errors))
    if len(fields) == 0:
        return {'status': 'no_field', 'reason': 'no run under a field'}
    errors = np.where(np.isfinite(errors) & (errors > 0), errors, np.nanmax(np.r_[errors, 1e-12]))
    weights = 1.0 / errors**2
    slope = float(np.sum(weights * fields * velocities) / np.sum(weights * fields**2))
    slope_error = float(1.0 / np.sqrt(np.sum(weights * fields**2)))
    per_field = velocities / fields * MOBILITY_UNIT_FACTOR
    result = {
        'status': 'ok',
        'fields_V_per_A': fields.tolist(),
        'mobility_cm2_per_Vs': slope * MOBILITY_UNIT_FACTOR,
        'mobility_error_cm2_per_Vs': slope_error * MOBILITY_UNIT_FACTOR,
        'mobility_per_field_cm2_per_Vs': per_field.tolist(),
    }
    if len(fields) < 2:
        result.update(linear=None, reason='one field only: linearity needs two or more field strengths')
        return result
    chi_squared = float(np.sum(weights * (velocities - slope * fields) ** 2))
    dof = len(fields) - 1
    p_value = float(chi2.sf(chi_squared, dof))
    result.update(chi2_per_dof=chi_squared / dof, p_value=p_value, linear=bool(p_value > 0.05))
    return result
