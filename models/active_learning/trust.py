"""Trust levels: where a committee's disagreement says a frame is known, worth labelling, or broken.

For one frame with force deviation ``f`` (eV/Å) and Born-charge deviation ``z`` (e):

* ``accurate``:  f < f_lo and z < z_lo (the committee agrees: nothing to learn);
* ``failed``:    f > f_hi or z > z_hi (so far off that the frame is likely unphysical: kept as a
  record, never labelled, DP-GEN's convention);
* ``candidate``: everything in between, the frames worth a DFT label.

Z* levels are optional: without them (or for a frame without a Z* deviation) only forces decide.
"""

from __future__ import annotations

import dataclasses
import math

ACCURATE, CANDIDATE, FAILED = 'accurate', 'candidate', 'failed'
CLASSES = (ACCURATE, CANDIDATE, FAILED)


class TrustLevelsError(ValueError):
    """Trust levels that cannot classify (wrong order, negative, half given)."""


@dataclasses.dataclass(frozen=True)
class TrustLevels:
    """Lower and upper trust levels on the force deviation and, optionally, the Z* deviation."""

    force_lo: float
    force_hi: float
    bec_lo: float | None = None
    bec_hi: float | None = None

    def validate(self) -> None:
        pairs = [('force', self.force_lo, self.force_hi)]
        if (self.bec_lo is None) != (self.bec_hi is None):
            raise TrustLevelsError('give both Born-charge trust levels or neither')
        if self.bec_lo is not None:
            pairs.append(('bec', self.bec_lo, self.bec_hi))
        for name, lo, hi in pairs:
            if not (math.isfinite(lo) and math.isfinite(hi) and lo > 0):
                raise TrustLevelsError(f'{name} trust levels must be positive numbers, got [{lo}, {hi}]')
            if not lo < hi:
                raise TrustLevelsError(
                    f'{name} trust levels are in the wrong order: lower {lo} must be below upper {hi}'
                )

    @property
    def uses_bec(self) -> bool:
        return self.bec_lo is not None

    def classify(self, force_deviation: float, bec_deviation: float | None = None) -> str:
        """``accurate``, ``candidate`` or ``failed`` for one frame (a NaN deviation counts as failed)."""
        use_bec = self.uses_bec and bec_deviation is not None
        values = [(force_deviation, self.force_lo, self.force_hi)]
        if use_bec:
            values.append((bec_deviation, self.bec_lo, self.bec_hi))
        if any(not math.isfinite(value) or value > hi for value, _, hi in values):
            return FAILED
        if all(value < lo for value, lo, _ in values):
            return ACCURATE
        return CANDIDATE

    def scaled(self, force_factor: float, bec_factor: float | None = None) -> TrustLevels:
        """The levels multiplied by a factor (threshold adaptation), order kept."""
        bec_factor = force_factor if bec_factor is None else bec_factor
        return TrustLevels(
            self.force_lo * force_factor,
            self.force_hi * force_factor,
            None if self.bec_lo is None else self.bec_lo * bec_factor,
            None if self.bec_hi is None else self.bec_hi * bec_factor,
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
