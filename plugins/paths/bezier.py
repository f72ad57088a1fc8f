"""``bezier``: a Bezier curve between two states with fitted inner control states.

Garipov et al. (NeurIPS 2018), Eq. 3 for degree 2:
phi(t) = (1 - t)^2 theta_A + 2 t (1 - t) theta + t^2 theta_B; in general the Bernstein form
phi(t) = sum_{i=0}^{d} C(d, i) t^i (1 - t)^(d - i) w_i with w_0 = theta_A, w_d = theta_B.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ridgeline.core import ConfigError, FittedCurve, State
from ridgeline.core.numerics import bernstein


class BezierPath(FittedCurve):
    """Bezier curve of ``degree`` (default 2: one free control state), fitted by minimising
    E_t L(phi(t)). Options: ``degree``, ``controls`` (initial inner states), fit settings
    (``steps``, ``lr``, ``batch_size``, ``seed``, ``split``, ``optimizer``, ``weight_decay``)."""

    name = "bezier"
    own_options = ("controls", "degree")

    def __init__(self, endpoints: Sequence[State], *, degree: int = 2, **options: Any) -> None:
        if int(degree) < 2:
            raise ConfigError(f"bezier degree must be at least 2 (degree 1 is the line), got {degree}")
        self.degree = int(degree)
        super().__init__(endpoints, degree=degree, **options)

    def initial_positions(self) -> list[float]:
        # control points evenly spaced on the line make the Bezier curve the line itself
        return [i / self.degree for i in range(1, self.degree)]

    def coefficients(self, t: float) -> torch.Tensor:
        return bernstein(t, self.degree)
