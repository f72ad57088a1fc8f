"""``loss_barrier`` and ``error_barrier``: the height of the landscape along a path.

With theta_t on the path and L the loss (or classification error) on a split:

* chord form (Frankle et al. 2020; Entezari et al. 2022):
  B = max_t [ L(theta_t) - ((1 - t) L(theta_0) + t L(theta_1)) ]
* mean form (Ainsworth et al. 2023, Git Re-Basin Def. 2.2):
  B_mean = max_t L(theta_t) - (L(theta_0) + L(theta_1)) / 2

B_mean >= |L_0 - L_1| / 2 even when there is no barrier; report both, and the midpoint.
Two networks are "linearly mode connected" when the error barrier is below 2 percentage points
(Frankle et al. 2020). The t grid is a parameter (Frankle uses 30 points, Git Re-Basin 25).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from ridgeline.core.errors import ConfigError
from ridgeline.core.metric import Metric, PathProbe, Record
from ridgeline.core.path import Path


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


class _CurveBarrier(Metric):
    """Shared by the loss and error barriers: evaluate the path on a t grid of one split."""

    quantity: ClassVar[str] = ""
    columns = ("t", "loss", "accuracy", "error")

    def __init__(self, *, split: str = "test", grid: int | Sequence[float] = 25) -> None:
        super().__init__(split=split, grid=grid)
        self.split = split
        self.grid = t_grid(grid)

    def points(self, path: Path) -> list[float]:
        return self.grid

    def measure(self, point: float, probe: PathProbe) -> Mapping[str, float]:
        evaluation = probe.evaluate(point, self.split)
        return {"t": point, "loss": evaluation.loss, "accuracy": evaluation.accuracy,
                "error": evaluation.error}

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        return barrier_summary([r["t"] for r in records], [r[self.quantity] for r in records])


class LossBarrier(_CurveBarrier):
    """Loss barrier (chord and mean forms, midpoint) of cross-entropy along the path."""

    name = "loss_barrier"
    quantity = "loss"


class ErrorBarrier(_CurveBarrier):
    """Error barrier (chord and mean forms, midpoint) of classification error (a fraction)."""

    name = "error_barrier"
    quantity = "error"
