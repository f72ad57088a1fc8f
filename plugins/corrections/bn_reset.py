"""``bn_reset``: re-estimate BatchNorm running statistics at every evaluated path point.

Interpolating running statistics is meaningless (the statistics of the interpolated network
are not the interpolation of the statistics); Jordan et al. (2023) and Frankle et al. (2020)
recompute them on training data before evaluating a path point.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ridgeline.core import Correction, Evaluator, State


class BatchNormReset(Correction):
    """Recompute BatchNorm statistics on ``split`` (default ``train``) at each path point."""

    name = "bn_reset"

    def __init__(self, *, split: str = "train") -> None:
        super().__init__(split=split)
        self.split = split

    def apply(self, state: Mapping[str, torch.Tensor], t: float, evaluator: Evaluator) -> State:
        return evaluator.reset_batchnorm(state, self.split)
