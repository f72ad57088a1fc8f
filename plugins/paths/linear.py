"""``linear``: theta(t) = (1 - t) theta_A + t theta_B."""

from __future__ import annotations

import torch

from ridgeline.core.path import Path
from ridgeline.core.state import State, lerp


class LinearPath(Path):
    """The straight line between two states (controls A, B; c(t) = (1 - t, t))."""

    name = "linear"

    @property
    def controls(self) -> list[State]:
        return [self.endpoints[0], self.endpoints[-1]]

    def coefficients(self, t: float) -> torch.Tensor:
        return torch.tensor([1.0 - t, t], dtype=torch.float64)

    def at(self, t: float) -> State:
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"path parameter t must lie in [0, 1], got {t}")
        return lerp(self.endpoints[0], self.endpoints[-1], t)
