"""``disagreement``: how often two states predict different classes, along a path.

For each t, the fraction of the split's inputs on which the arg-max prediction of theta_t
differs from that of theta_A (``disagree_a``) and of theta_B (``disagree_b``); at t = 1,
``disagree_a`` is the disagreement of the two endpoints (a functional distance that a barrier
in the loss need not show; e.g. Fort et al. 2019, "Deep ensembles: a loss landscape perspective").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ridgeline.core import Metric, Path, PathProbe, Record
from ridgeline.core.numerics import t_grid


def predictions(evaluator: Any, state: Mapping[str, torch.Tensor], split: str) -> torch.Tensor:
    """Arg-max class of every input of ``split`` (batches prepared one at a time)."""
    state = {k: v.to(evaluator.device) for k, v in state.items()}
    with torch.no_grad():
        return torch.cat([evaluator.logits(state, x).argmax(1) for x, _ in evaluator.batches(split)])


class Disagreement(Metric):
    """Fraction of inputs on which a path point and each endpoint predict differently.

    Options: ``grid`` (default 11 points), ``split`` (default test)."""

    name = "disagreement"
    columns = ("t", "disagree_a", "disagree_b")

    def __init__(self, *, grid: int | Sequence[float] = 11, split: str = "test") -> None:
        super().__init__(grid=grid, split=split)
        self.grid = t_grid(grid if isinstance(grid, int) else list(grid))
        self.split = split
        self._probe: PathProbe | None = None
        self._ends: tuple[torch.Tensor, torch.Tensor] | None = None

    def points(self, path: Path) -> list[float]:
        return self.grid

    def measure(self, point: float, probe: PathProbe) -> Mapping[str, float]:
        if self._probe is not probe:  # the endpoints' predictions, once per path
            self._ends = (predictions(probe.evaluator, probe.state_at(0.0), self.split),
                          predictions(probe.evaluator, probe.state_at(1.0), self.split))
            self._probe = probe
        ends = self._ends
        here = predictions(probe.evaluator, probe.state_at(point), self.split)
        return {"t": point, "disagree_a": float((here != ends[0]).float().mean()),
                "disagree_b": float((here != ends[1]).float().mean())}

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        if not records:
            return {}
        middle = min(records, key=lambda r: abs(r["t"] - 0.5))
        return {"endpoints": records[-1]["disagree_a"], "midpoint_a": middle["disagree_a"],
                "midpoint_b": middle["disagree_b"],
                "max": max(max(r["disagree_a"], r["disagree_b"]) for r in records)}
