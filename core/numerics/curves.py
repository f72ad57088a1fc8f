"""Curves sampled on a t grid: the grid itself, the barrier of a sampled curve, a path's tangent,
and the coefficients of the Bezier and polygonal-chain curves (Garipov et al., NeurIPS 2018),
shared by the parameter-space paths and the input-space curves.

The barrier forms (written once here, used by every barrier metric and by scripts):

* chord form (Frankle et al. 2020; Entezari et al. 2022):
  B = max_t [ L(theta_t) - ((1 - t) L(theta_0) + t L(theta_1)) ]
* mean form (Ainsworth et al. 2023, Git Re-Basin Def. 2.2):
  B_mean = max_t L(theta_t) - (L(theta_0) + L(theta_1)) / 2
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.path import Path
from ridgeline.core.state import State, combine


def t_grid(grid: int | Sequence[float]) -> list[float]:
    """An even grid of ``grid`` points on [0, 1], or the given points, always with 0, 0.5, 1."""
    if isinstance(grid, int):
        if grid < 2:
            raise ConfigError(f"a t grid needs at least 2 points, got {grid}")
        points = np.linspace(0.0, 1.0, grid).tolist()
    else:
        points = [float(p) for p in grid]
        if any(not 0.0 <= p <= 1.0 for p in points):
            raise ConfigError(f"t grid points must lie in [0, 1], got {points}")
    return sorted({round(p, 12) for p in [*points, 0.0, 0.5, 1.0]})


def barrier_summary(ts: Sequence[float], values: Sequence[float]) -> dict[str, float]:
    """Both barrier forms, the midpoint value and the endpoints of a curve sampled at ``ts``.

    ``ts`` must contain 0 and 1 (and 0.5 for a midpoint; otherwise it is interpolated).
    Non-finite values make every summary NaN except ``finite`` (0.0), so a divergent point is
    flagged rather than hidden.
    """
    t = np.asarray(ts, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(t)
    t, v = t[order], v[order]
    if t[0] != 0.0 or t[-1] != 1.0:
        raise ValueError("a barrier needs the curve at t = 0 and t = 1")
    start, end = float(v[0]), float(v[-1])
    finite = bool(np.all(np.isfinite(v)))
    if not finite:
        nan = math.nan
        return {"barrier": nan, "barrier_mean": nan, "midpoint": float(np.interp(0.5, t, v)),
                "start": start, "end": end, "max": nan, "t_max": nan, "finite": 0.0}
    chord = v - ((1.0 - t) * start + t * end)
    i = int(np.argmax(chord))
    return {
        "barrier": float(chord[i]),
        "barrier_mean": float(v.max() - (start + end) / 2.0),
        "midpoint": float(np.interp(0.5, t, v)),
        "start": start,
        "end": end,
        "max": float(v.max()),
        "t_max": float(t[i]),
        "finite": 1.0,
    }


def bernstein(t: float, degree: int) -> torch.Tensor:
    """The Bernstein coefficients C(d, i) t^i (1 - t)^(d - i), i = 0..d (they sum to 1): a Bezier
    curve of degree d is sum_i c_i(t) w_i (Garipov et al. 2018, Eq. 3 for d = 2)."""
    return torch.tensor([math.comb(degree, i) * t ** i * (1.0 - t) ** (degree - i)
                         for i in range(degree + 1)], dtype=torch.float64)


def chain_coefficients(t: float, count: int) -> torch.Tensor:
    """Coefficients of a polygonal chain through ``count`` controls at t = 0, 1/(count-1), ..., 1
    (Garipov et al. 2018, Eq. 2 for one bend): each segment takes an equal share of t."""
    c = torch.zeros(count, dtype=torch.float64)
    position = t * (count - 1)
    i = min(int(position), count - 2)
    s = position - i
    c[i], c[i + 1] = 1.0 - s, s
    return c


def tangent(path: Path, t: float, h: float = 1e-3) -> State:
    """d theta / dt at ``t``: the controls weighted by the derivative of the coefficients
    (a central difference, one-sided at the ends; exact for polynomials of degree <= 2)."""
    lo, hi = max(0.0, t - h), min(1.0, t + h)
    weights = (path.coefficients(hi) - path.coefficients(lo)) / (hi - lo)
    return {k: v for k, v in combine(path.controls, weights.tolist()).items() if v.is_floating_point()}
