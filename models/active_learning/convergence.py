"""When the loop stops: convergence of the accurate share, the iteration cap, the label budget.

:class:`ConvergenceCriterion` looks at the accurate share of explored frames per iteration and says
``converged`` once it has been at or above ``fraction`` for ``patience`` iterations in a row. Stops
that are not convergence are named, so a run always says *why* it ended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

CONTINUE = 'continue'
CONVERGED = 'converged'
MAX_ITERATIONS = 'max_iterations'
BUDGET_SPENT = 'budget_spent'
NO_CANDIDATES = 'no_candidates'
STOP_REASONS = (CONVERGED, MAX_ITERATIONS, BUDGET_SPENT, NO_CANDIDATES)


@dataclasses.dataclass(frozen=True)
class Decision:
    reason: str
    message: str

    @property
    def stop(self) -> bool:
        return self.reason != CONTINUE


@dataclasses.dataclass(frozen=True)
class ConvergenceCriterion:
    """Converged when the accurate share stays >= ``fraction`` for ``patience`` consecutive iterations."""

    fraction: float = 0.99
    patience: int = 2
    max_iterations: int = 5
    max_labels: int | None = None

    def streak(self, accurate_fractions: Sequence[float]) -> int:
        """How many of the last iterations in a row reached ``fraction``."""
        count = 0
        for value in reversed(list(accurate_fractions)):
            if value + 1e-12 < self.fraction:
                break
            count += 1
        return count

    def decide(self, accurate_fractions: Sequence[float], labels_used: int, candidates: int | None = None) -> Decision:
        """What to do after the selection of iteration ``len(accurate_fractions)``."""
        iteration = len(accurate_fractions)
        streak = self.streak(accurate_fractions)
        if streak >= self.patience:
            return Decision(
                CONVERGED,
                f'converged: accurate share >= {self.fraction:g} for the last {streak} iteration(s) '
                f'(last {accurate_fractions[-1]:.3f})',
            )
        if self.max_labels is not None and labels_used >= self.max_labels:
            return Decision(BUDGET_SPENT, f'label budget spent: {labels_used} of {self.max_labels} DFT labels used')
        if candidates == 0:
            return Decision(
                NO_CANDIDATES,
                'no candidate frames: every explored frame is accurate or above the upper trust level; '
                'raise the upper trust level or explore milder conditions',
            )
        if iteration >= self.max_iterations:
            return Decision(
                MAX_ITERATIONS,
                f'not converged after the maximum of {self.max_iterations} iteration(s): accurate share '
                f'{accurate_fractions[-1]:.3f} < {self.fraction:g}',
            )
        return Decision(CONTINUE, f'accurate share {accurate_fractions[-1]:.3f}, streak {streak}/{self.patience}')

    def remaining_labels(self, labels_used: int) -> int | None:
        return None if self.max_labels is None else max(0, self.max_labels - labels_used)
