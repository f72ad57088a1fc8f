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

from collections.abc import Mapping, Sequence
from typing import ClassVar

from ridgeline.core import Metric, Path, PathProbe, Record
from ridgeline.core.numerics import barrier_summary, t_grid


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

    def records_key(self, path: Path) -> tuple:
        """The loss and error barriers on one split and grid record the same rows."""
        return ("curve", self.split, tuple(self.grid))

    def prefetch(self, points: Sequence[float], probe: PathProbe) -> None:
        probe.prefetch(points, self.split)

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
