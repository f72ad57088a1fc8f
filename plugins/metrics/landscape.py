"""``landscape``: loss and error over the lattice of a ``plane`` path, and the curve drawn on it.

The companion of the ``plane`` path (Garipov et al. 2018, Fig. 1; Li et al. 2018). Points
0 .. G^2 - 1 are the plane's lattice (row by row: v outer, u inner); points G^2 .. G^2 + n - 1
sample the plane's curve at n evenly spaced t. Every record carries the plane coordinates
(u, v), ``on_path`` (0 lattice, 1 curve), ``t`` (NaN on the lattice), ``off_plane`` (distance of a
curve point from the plane; 0 for curves in it) and the loss, accuracy and error there, so a
contour plot and the projected curve come from the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ridgeline.core import ConfigError, Metric, Path, PathProbe, Record


def _plane(path: Path) -> Any:
    if not hasattr(path, "grid_points") or not hasattr(path, "point"):
        raise ConfigError(f"metric 'landscape' needs the 'plane' path, not {path.name!r}")
    return path


class Landscape(Metric):
    """Loss and error over a plane's lattice, with the curve drawn on it (for contour plots).

    Options: ``split`` (default test), ``curve_points`` (samples of the drawn curve, default 25).
    On a path that is not a plane it has no points (an empty series)."""

    name = "landscape"
    columns = ("u", "v", "on_path", "t", "off_plane", "loss", "accuracy", "error")

    def __init__(self, *, split: str = "test", curve_points: int = 25) -> None:
        super().__init__(split=split, curve_points=curve_points)
        self.split, self.curve_points = split, int(curve_points)

    def points(self, path: Path) -> list[float]:
        if not hasattr(path, "grid_points"):
            return []  # a pipeline runs every metric on every path; only planes have a lattice
        lattice = len(_plane(path).grid_points())
        return [float(i) for i in range(lattice + self.curve_points)]

    def measure(self, point: float, probe: PathProbe) -> Mapping[str, float]:
        plane = _plane(probe.path)
        lattice = plane.grid_points()
        i = int(point)
        if i < len(lattice):
            u, v = lattice[i]
            evaluation = probe.evaluate_state(plane.point(u, v), 0.5, self.split)
            t, off = math.nan, 0.0
        else:
            t = (i - len(lattice)) / max(1, self.curve_points - 1)
            u, v, off = plane.project(probe.state_at(t))
            evaluation = probe.evaluate(t, self.split)
        return {"u": u, "v": v, "on_path": float(i >= len(lattice)), "t": t, "off_plane": off,
                "loss": evaluation.loss, "accuracy": evaluation.accuracy, "error": evaluation.error}

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        grid = [r for r in records if r["on_path"] == 0.0]
        curve = [r for r in records if r["on_path"] == 1.0]
        out: dict[str, float] = {}
        if grid:
            losses = np.array([r["loss"] for r in grid])
            out["grid_min_loss"] = float(np.nanmin(losses))
            out["grid_max_loss"] = float(np.nanmax(losses))
        if curve:
            out["curve_max_loss"] = max(r["loss"] for r in curve)
            out["curve_max_off_plane"] = max(r["off_plane"] for r in curve)
        return out
