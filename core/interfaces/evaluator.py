"""Evaluator: loss and accuracy of a state on a data split, evaluated functionally.

The evaluator owns a private copy of the module's structure; states are passed to
``torch.func.functional_call`` so the user's module is never touched. BatchNorm statistics
of a path point can be re-estimated on a training split first (a path point of a BN network
is meaningless without it).

Tied tensors (:class:`~ridgeline.core.state.Ties`: one tensor under several names) reach
``functional_call`` once, under their first name present; a state may hold every name (they must
agree: :meth:`Evaluator.evaluate` refuses one whose tied names differ) or only one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import attrs
import torch
from torch import nn
from torch.nn import functional as F

from ridgeline.core.interfaces.dataset import Dataset
from ridgeline.core.state import State, Ties


@attrs.frozen
class Evaluation:
    """Mean loss, accuracy and error (fractions in [0, 1]) over ``n`` examples."""

    loss: float
    accuracy: float
    n: int

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss)


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


class Evaluator:
    """Evaluates states of one architecture on one dataset.

    ``batch_size`` bounds memory; ``bn_split`` (e.g. ``"train"``) makes :meth:`evaluate`
    re-estimate BatchNorm statistics on that split before measuring (``bn_examples`` caps it).
    """

    def __init__(self, module: nn.Module, dataset: Dataset, *, device: torch.device | str = "cpu",
                 batch_size: int = 1000, bn_split: str | None = None, bn_examples: int = 2000) -> None:
        self.device = torch.device(device)
        self.module = copy.deepcopy(module).to(self.device).eval()
        self.ties = Ties.of(self.module)
        """The module's tied names (one tensor, several names)."""
        self.dataset = dataset
        self.batch_size = batch_size
        self.bn_split = bn_split
        self.bn_examples = bn_examples
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def data(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's tensors, moved to the device once."""
        if split not in self._data:
            x, y = self.dataset.split(split)
            self._data[split] = (x.to(self.device), y.to(self.device))
        return self._data[split]

    def on_device(self, state: Mapping[str, torch.Tensor]) -> State:
        """``state`` with every tensor on the evaluator's device (no copy if already there)."""
        return {k: v if v.device == self.device else v.to(self.device) for k, v in state.items()}

    def logits(self, state: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Differentiable forward pass of ``state`` on a batch (eval mode); a tied tensor is read
        from the first of its names present."""
        return torch.func.functional_call(self.module, self.on_device(self.ties.drop(state)), (x,))

    def loss(self, state: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Differentiable mean cross-entropy of ``state`` on a batch."""
        return F.cross_entropy(self.logits(state, x), y)

    def evaluate(self, state: Mapping[str, torch.Tensor], split: str, *,
                 bn_reset: bool | None = None) -> Evaluation:
        """Mean cross-entropy and accuracy on ``split``; NaN/inf losses are returned as is.
        Raises :class:`~ridgeline.core.errors.StateMismatchError` if tied names of ``state`` differ."""
        self.ties.check(state, "the evaluated state")
        if bn_reset if bn_reset is not None else self.bn_split is not None:
            state = self.reset_batchnorm(state, self.bn_split or "train")
        x, y = self.data(split)
        total_loss = torch.zeros((), device=self.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        with torch.no_grad():
            for start in range(0, len(x), self.batch_size):
                xb, yb = x[start:start + self.batch_size], y[start:start + self.batch_size]
                logits = self.logits(state, xb)
                total_loss += F.cross_entropy(logits, yb, reduction="sum").double()
                correct += (logits.argmax(dim=1) == yb).sum()
        n = len(x)
        return Evaluation(loss=float(total_loss) / n, accuracy=int(correct) / n, n=n)

    def reset_batchnorm(self, state: Mapping[str, torch.Tensor], split: str = "train") -> State:
        """``state`` with BatchNorm running statistics re-estimated on ``split``.

        Uses a cumulative average (momentum ``None``) over up to ``bn_examples`` examples in
        train mode; parameters are unchanged. States of networks without BatchNorm pass through.
        """
        if not has_batchnorm(self.module):
            return dict(state)
        work = copy.deepcopy(self.module)
        work.load_state_dict(self.on_device(self.ties.expand(state)))
        for m in work.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        work.train()
        x, _ = self.data(split)
        x = x[: self.bn_examples]
        with torch.no_grad():
            for start in range(0, len(x), self.batch_size):
                work(x[start:start + self.batch_size])
        estimated = work.state_dict()
        return {k: estimated[k].detach() for k in state}  # the names given (a tied tensor's, or one)
