"""Trust-level calibration: how does the committee deviation compare with the true error?

After each labelling we know, for every newly labelled frame, the committee's deviation (what the
selection used) and the true error of the committee mean against DFT. Both are per-frame maxima
over atoms (eV/Å for forces, e for Z*), so their ratio tells how far the deviation under- or
over-states the error. DP-GEN-style committees usually *under*-state it by a factor 1-3.

:func:`calibrate` reports the median ratio, the rank correlation and the levels rescaled by the
ratio (clipped to ``[1/max_step, max_step]`` per iteration so one noisy batch cannot swing them);
the workflow adopts the rescaled levels only when asked (``adapt_trust``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .trust import TrustLevels


def frame_max_error(predicted: np.ndarray, reference: np.ndarray) -> float:
    """max_i ||pred_i - ref_i|| over atoms (vectors: Euclidean, 3x3 tensors: Frobenius)."""
    difference = np.asarray(predicted, dtype=float) - np.asarray(reference, dtype=float)
    axes = tuple(range(1, difference.ndim))
    return float(np.sqrt(np.sum(difference**2, axis=axes)).max())


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Rank correlation (None for fewer than 3 points or a constant input)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclasses.dataclass
class QuantityCalibration:
    n: int
    error_rmse: float | None
    error_max: float | None
    ratio: float | None  # median true error / deviation
    rank_correlation: float | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def calibrate_quantity(deviation: Sequence[float], error: Sequence[float]) -> QuantityCalibration:
    pairs = [(d, e) for d, e in zip(deviation, error, strict=False) if d is not None and e is not None]
    deviation = np.asarray([d for d, _ in pairs], dtype=float)
    error = np.asarray([e for _, e in pairs], dtype=float)
    ok = np.isfinite(deviation) & np.isfinite(error)
    deviation, error = deviation[ok], error[ok]
    if not len(error):
        return QuantityCalibration(0, None, None, None, None)
    positive = deviation > 0
    ratio = float(np.median(error[positive] / deviation[positive])) if positive.any() else None
    return QuantityCalibration(
        n=int(len(error)),
        error_rmse=float(np.sqrt(np.mean(error**2))),
        error_max=float(error.max()),
        ratio=ratio,
        rank_correlation=spearman(deviation, error),
    )


@dataclasses.dataclass
class Calibration:
    force: QuantityCalibration
    bec: QuantityCalibration
    suggested: TrustLevels

    def to_dict(self) -> dict:
        return {'force': self.force.to_dict(), 'bec': self.bec.to_dict(), 'suggested': self.suggested.to_dict()}


def calibrate(
    trust: TrustLevels,
    force_deviation: Sequence[float],
    force_error: Sequence[float],
    bec_deviation: Sequence[float | None] = (),
    bec_error: Sequence[float | None] = (),
    max_step: float = 2.0,
) -> Calibration:
    """Compare deviations with true errors and suggest levels that would make them agree.

    A frame counts as accurate when its *error* is below the lower level; with error ≈ ratio x
    deviation, the deviation levels that say the same are the levels divided by the ratio.
    """
    force = calibrate_quantity(force_deviation, force_error)
    bec = calibrate_quantity(bec_deviation, bec_error)

    def factor(result: QuantityCalibration) -> float:
        if result.ratio is None or result.ratio <= 0 or result.n < 3:
            return 1.0
        return float(np.clip(1.0 / result.ratio, 1.0 / max_step, max_step))

    return Calibration(force, bec, trust.scaled(factor(force), factor(bec)))
