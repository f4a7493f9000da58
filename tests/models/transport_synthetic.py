"""Synthetic trajectories with known transport: Brownian mobile ions (known D per axis, known drift)
in a vibrating framework that wanders as a whole (so drift correction has something to remove)."""

from __future__ import annotations

import numpy as np

from ionfield.models.md.trajectory import MDTrajectory

A2_PER_FS_PER_CM2_PER_S = 10.0
"""1 cm²/s = 1e16 Å² / 1e15 fs."""


def brownian(
    seed: int,
    d_cm2_s=(1e-5, 1e-5, 1e-5),
    drift_A_fs=(0.0, 0.0, 0.0),
    n_mobile: int = 32,
    n_framework: int = 16,
    frames: int = 1000,
    frame_fs: float = 10.0,
    mobile: int = 3,
    framework: int = 7,
    framework_wander_A: float = 0.02,
) -> MDTrajectory:
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * 12.0
    d = np.asarray(d_cm2_s, dtype=float) * A2_PER_FS_PER_CM2_PER_S
    steps = rng.standard_normal((frames, n_mobile, 3)) * np.sqrt(2 * d * frame_fs)
    steps[0] = 0
    time = np.arange(frames) * frame_fs
    wander = np.cumsum(rng.standard_normal((frames, 1, 3)) * framework_wander_A, axis=0)
    mobile_positions = rng.random((n_mobile, 3)) * 12 + np.cumsum(steps, axis=0)
    mobile_positions += time[:, None, None] * np.asarray(drift_A_fs) + wander
    framework_positions = rng.random((n_framework, 3)) * 12 + rng.standard_normal((frames, n_framework, 3)) * 0.05
    framework_positions += wander
    return MDTrajectory(
        numbers=np.array([mobile] * n_mobile + [framework] * n_framework),
        pbc=np.array([True, True, True]),
        steps=np.arange(frames) * 10,
        times_fs=time,
        positions=np.concatenate([mobile_positions, framework_positions], axis=1),
        cells=np.repeat(cell[None], frames, axis=0),
    )


def vibrating(seed: int, frames: int = 400, frame_fs: float = 10.0) -> MDTrajectory:
    """Ions that only rattle about their sites (MSD about 0.03 Å²): nothing diffusive to fit."""
    trajectory = brownian(seed, d_cm2_s=(0, 0, 0), frames=frames, frame_fs=frame_fs, framework_wander_A=0)
    rng = np.random.default_rng(seed + 1)
    trajectory.positions = trajectory.positions + rng.standard_normal(trajectory.positions.shape) * 0.1
    return trajectory
