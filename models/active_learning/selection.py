"""Which explored frames to label: classify by trust levels, then a diverse, capped, seeded subset.

:class:`FrameSelector` takes the committee deviations of every explored frame (and a descriptor per
frame), classifies them with :class:`~ionfield.models.active_learning.trust.TrustLevels` and picks at most
``cap`` candidates by farthest-point sampling in descriptor space, so a long MD stretch in one basin
does not fill the batch with near-duplicates. The first pick is the candidate with the largest
deviation (the most informative), ties and everything after it broken by a seeded generator, so the
same inputs and seed give the same selection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .trust import ACCURATE, CANDIDATE, CLASSES, FAILED, TrustLevels


def farthest_point_sampling(
    descriptors: np.ndarray, count: int, seed: int = 0, first: int | None = None, reference: np.ndarray | None = None
) -> list[int]:
    """Indices of ``count`` rows of ``descriptors``, each the farthest from those already picked.

    ``first``: the row to start from (default: the row farthest from ``reference`` if given, else a
    seeded random one). ``reference``: rows (e.g. frames already in the dataset) that count as already
    picked, so new picks stay away from known data. Features are standardised first.
    """
    x = np.asarray(descriptors, dtype=float)
    n = len(x)
    count = min(int(count), n)
    if count <= 0:
        return []
    everything = x if reference is None or not len(reference) else np.vstack([x, reference])
    scale = everything.std(axis=0)
    scale[scale == 0] = 1.0
    mean = everything.mean(axis=0)
    x = (x - mean) / scale
    rng = np.random.default_rng(seed)
    distance = np.full(n, np.inf)
    if reference is not None and len(reference):
        ref = (np.asarray(reference, dtype=float) - mean) / scale
        for row in ref:
            distance = np.minimum(distance, np.linalg.norm(x - row, axis=1))
    if first is None:
        first = int(np.argmax(distance)) if np.isfinite(distance).any() else int(rng.integers(n))
    picked = [int(first)]
    distance = np.minimum(distance, np.linalg.norm(x - x[first], axis=1))
    while len(picked) < count:
        distance[picked] = -1.0
        best = np.flatnonzero(distance == distance.max())
        choice = int(best[0] if len(best) == 1 else rng.choice(best))
        picked.append(choice)
        distance = np.minimum(distance, np.linalg.norm(x - x[choice], axis=1))
    return picked


@dataclasses.dataclass
class Selection:
    """The outcome for one iteration's explored frames."""

    classes: list[str]  # per frame: accurate / candidate / failed
    selected: list[int]  # frame indices to label, in pick order

    @property
    def counts(self) -> dict[str, int]:
        return {name: self.classes.count(name) for name in CLASSES}

    @property
    def shares(self) -> dict[str, float]:
        total = len(self.classes)
        return {name: (count / total if total else 0.0) for name, count in self.counts.items()}

    @property
    def accurate_fraction(self) -> float:
        return self.shares[ACCURATE]

    def indices(self, name: str) -> list[int]:
        return [k for k, value in enumerate(self.classes) if value == name]

    def to_dict(self) -> dict:
        return {
            'counts': self.counts,
            'shares': self.shares,
            'selected': list(self.selected),
            'failed': self.indices(FAILED),
        }


@dataclasses.dataclass
class FrameSelector:
    """Trust-level classification plus capped farthest-point selection among the candidates."""

    trust: TrustLevels
    cap: int
    seed: int = 0

    def __post_init__(self) -> None:
        self.trust.validate()
        if not (isinstance(self.cap, int) and self.cap >= 0):
            raise ValueError(f'cap must be a non-negative integer, got {self.cap!r}')

    def classify(self, force_deviation: Sequence[float], bec_deviation: Sequence[float | None] | None = None):
        bec = list(bec_deviation) if bec_deviation is not None else [None] * len(force_deviation)
        if len(bec) != len(force_deviation):
            raise ValueError('force and Born-charge deviations must have one value per frame')
        pairs = zip(force_deviation, bec, strict=True)
        return [self.trust.classify(float(f), None if z is None else float(z)) for f, z in pairs]

    def select(
        self,
        force_deviation: Sequence[float],
        descriptors: np.ndarray,
        bec_deviation: Sequence[float | None] | None = None,
        reference: np.ndarray | None = None,
    ) -> Selection:
        """Classify every frame and pick at most ``cap`` candidates (see the module docstring)."""
        classes = self.classify(force_deviation, bec_deviation)
        descriptors = np.asarray(descriptors, dtype=float)
        if len(descriptors) != len(classes):
            raise ValueError(f'{len(descriptors)} descriptors for {len(classes)} frames')
        candidates = [k for k, name in enumerate(classes) if name == CANDIDATE]
        if not candidates or self.cap == 0:
            return Selection(classes, [])
        force = np.asarray(force_deviation, dtype=float)[candidates]
        first = int(np.argmax(force))
        picks = farthest_point_sampling(
            descriptors[candidates], self.cap, seed=self.seed, first=first, reference=reference
        )
        return Selection(classes, [candidates[k] for k in picks])
