"""Error metrics that stay finite when a batch holds no label of their kind.

nequip's ``ignore_nan`` masks missing Z* labels, but a batch in which *no* frame has Z* then
gives 0/0 = NaN, and one NaN term turns the whole weighted loss into NaN. In a Label dataset
where only a share of frames carries DFPT charges that happens every few batches. These
metrics return 0 (no gradient, no contribution) for an empty selection instead.
"""

import torch
from nequip.train.metrics import MeanAbsoluteError, MeanSquaredError


def _safe_mean(metric) -> torch.Tensor:
    if int(metric.count) == 0:
        return torch.zeros((), dtype=torch.get_default_dtype())
    return metric.sum.div(metric.count)


class MaskedMeanSquaredError(MeanSquaredError):
    """MSE that is 0 when every target in the batch was NaN (see module docstring)."""

    def compute(self) -> torch.Tensor:
        return _safe_mean(self)


class MaskedMeanAbsoluteError(MeanAbsoluteError):
    """MAE that is 0 when every target in the batch was NaN (see module docstring)."""

    def compute(self) -> torch.Tensor:
        return _safe_mean(self)


class MaskedRootMeanSquaredError(MeanSquaredError):
    """RMSE that is 0 when every target in the batch was NaN (see module docstring)."""

    def compute(self) -> torch.Tensor:
        return torch.sqrt(_safe_mean(self))

    def __str__(self) -> str:
        return 'rmse'
