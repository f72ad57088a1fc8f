"""``polychain``: a polygonal chain from theta_A through bends to theta_B.

Garipov et al. (NeurIPS 2018), Eq. 2 for one bend: phi(t) = 2 (t theta + (0.5 - t) theta_A) for
t in [0, 0.5] and 2 ((t - 0.5) theta_B + (1 - t) theta) for t in [0.5, 1]. With k bends the
k + 1 segments each take an equal share of t.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ridgeline.core import ConfigError, FittedCurve, State
from ridgeline.core.numerics import chain_coefficients


class PolychainPath(FittedCurve):
    """Polygonal chain through ``bends`` free states (default 1), fitted by minimising
    E_t L(phi(t)); give the bends as ``controls`` (and ``steps=0``) to draw a chain through
    fixed states. Fit settings as for ``bezier``."""

    name = "polychain"
    own_options = ("controls", "bends")

    def __init__(self, endpoints: Sequence[State], *, bends: int = 1, **options: Any) -> None:
        if int(bends) < 1:
            raise ConfigError(f"polychain needs at least one bend, got bends={bends}")
        self.bends = int(bends)
        super().__init__(endpoints, bends=bends, **options)

    def initial_positions(self) -> list[float]:
        return [i / (self.bends + 1) for i in range(1, self.bends + 1)]

    def coefficients(self, t: float) -> torch.Tensor:
        return chain_coefficients(t, self.bends + 2)
