"""``mlp``: a fully connected ReLU network without normalisation.

Its spec is derived from the traced graph like any model's; :meth:`MLPModel.hand_written_spec`
keeps the hand-written one (same groups, same names) as a reference for the tracer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from ridgeline.core import AxisRef, ConfigError, Model, PermutationSpec


class MLP(nn.Module):
    """Flatten -> (Linear -> ReLU) x depth -> Linear head."""

    def __init__(self, in_features: int, widths: Sequence[int], num_classes: int) -> None:
        super().__init__()
        sizes = [in_features, *widths]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.head = nn.Linear(sizes[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.head(x)


class MLPModel(Model):
    """Fully connected ReLU network; ``widths`` (default 3 x 512) or ``width`` and ``depth``."""

    name = "mlp"

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *,
                 widths: Sequence[int] | None = None, width: int = 512, depth: int = 3) -> None:
        if widths is not None:
            if not widths or any(int(w) < 1 for w in widths):
                raise ConfigError(f"model 'mlp': option widths = {list(widths)} must be positive integers "
                                  "(units per hidden layer, at least one layer)")
            widths = [int(w) for w in widths]
        else:
            for name, value in (("width", width), ("depth", depth)):
                if int(value) < 1:
                    raise ConfigError(f"model 'mlp': option {name} = {value} must be >= 1")
            widths = [int(width)] * int(depth)
        super().__init__(input_shape, num_classes, widths=widths)
        self.widths = widths

    def build(self) -> MLP:
        return MLP(math.prod(self.input_shape), self.widths, self.num_classes)

    def hand_written_spec(self) -> PermutationSpec:
        """One group per hidden layer: its output rows, its bias, the next layer's columns."""
        names = [f"hidden.{i}" for i in range(len(self.widths))] + ["head"]
        groups, axes = {}, {}
        for i, width in enumerate(self.widths):
            group = f"hidden.{i}"
            groups[group] = width
            axes[group] = (AxisRef(f"{names[i]}.weight", 0), AxisRef(f"{names[i]}.bias", 0),
                           AxisRef(f"{names[i + 1]}.weight", 1))
        return PermutationSpec(groups, axes)
