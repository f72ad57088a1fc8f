"""``bn_reset``: re-estimate BatchNorm running statistics at every evaluated path point.

Interpolating running statistics is meaningless (the statistics of the interpolated network
are not the interpolation of the statistics); Jordan et al. (2023) and Frankle et al. (2020)
recompute them on training data before evaluating a path point.

The statistics are those of one pass over the examples (up to the evaluator's ``bn_examples``),
every batch weighing by its size; ``passes`` > 1 adds eval-mode passes that make the deeper layers
exact too (:mod:`ridgeline.core.interfaces.statistics`, docs/methods.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ridgeline.core import ConfigError, Correction, Evaluator, State


class BatchNormReset(Correction):
    """Recompute BatchNorm statistics on ``split`` (default ``train``) at each path point."""

    name = "bn_reset"

    def __init__(self, *, split: str = "train", passes: int = 1) -> None:
        if not isinstance(passes, int) or isinstance(passes, bool) or passes < 1:
            raise ConfigError(f"bn_reset passes must be a positive integer, got {passes!r}")
        super().__init__(split=split, passes=passes)
        self.split, self.passes = split, passes

    def apply(self, state: Mapping[str, torch.Tensor], t: float, evaluator: Evaluator) -> State:
        return evaluator.reset_batchnorm(state, self.split, passes=self.passes)
