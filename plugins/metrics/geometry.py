"""``geometry``: where two states lie relative to each other, whole network and per layer.

L2 distance |theta_B - theta_A|, cosine similarity <theta_A, theta_B> / (|theta_A| |theta_B|), the
length of the path (sum of chord lengths over a fine t grid; equal to the distance for the
line), and, given the common ``origin`` of two spawned children (Frankle et al. 2020), the
angle between their displacements theta_A - origin and theta_B - origin, in degrees.
theta_A and theta_B are the path's points at t = 0 and t = 1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import torch

from ridgeline.core.checkpoint import load_state
from ridgeline.core.metric import Metric, PathProbe, Record
from ridgeline.core.path import Path
from ridgeline.core.state import State, combine, module_groups
from ridgeline.plugins.metrics.hessian import parameter_keys


def tangent(path: Path, t: float, h: float = 1e-3) -> State:
    """d theta / dt at ``t``: the controls weighted by the derivative of the coefficients
    (a central difference, one-sided at the ends; exact for polynomials of degree <= 2)."""
    lo, hi = max(0.0, t - h), min(1.0, t + h)
    weights = (path.coefficients(hi) - path.coefficients(lo)) / (hi - lo)
    return {k: v for k, v in combine(path.controls, weights.tolist()).items() if v.is_floating_point()}


def _vector(state: Mapping[str, torch.Tensor], keys: Sequence[str]) -> torch.Tensor:
    parts = [state[k].detach().reshape(-1).double().cpu() for k in keys]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def angle(x: torch.Tensor, y: torch.Tensor) -> float:
    """The angle between two vectors in degrees (NaN if either is zero)."""
    nx, ny = float(x.norm()), float(y.norm())
    if nx == 0.0 or ny == 0.0:
        return math.nan
    return math.degrees(math.acos(max(-1.0, min(1.0, float(x @ y) / (nx * ny)))))


class Geometry(Metric):
    """Distances, cosines, path length and spawn angle, whole network and per layer.

    Point 0 is the whole network, point l >= 1 layer l. Options: ``origin`` (a state or a
    checkpoint path: the spawn point, for ``spawn_angle``), ``length_points`` (default 65)."""

    name = "geometry"
    columns = ("distance", "norm_a", "norm_b", "cosine", "relative_distance", "path_length",
               "spawn_angle", "displacement_a", "displacement_b")

    def __init__(self, *, origin: Mapping[str, torch.Tensor] | str | None = None,
                 length_points: int = 65) -> None:
        super().__init__(origin=origin if not isinstance(origin, Mapping) else "<state>",
                         length_points=length_points)
        self.origin = load_state(origin) if isinstance(origin, str) else origin
        self.length_points = int(length_points)

    def scopes(self, path: Path) -> list[tuple[str, list[str]]]:
        groups = module_groups(path.at(0.0))
        return [("all", [k for keys in groups.values() for k in keys]), *groups.items()]

    def points(self, path: Path) -> list[float]:
        return [float(i) for i in range(len(self.scopes(path)))]

    def labels(self, path: Path) -> list[str]:
        return [label for label, _ in self.scopes(path)]

    def measure(self, point: float, probe: PathProbe) -> Mapping[str, float]:
        path = probe.path
        _, keys = self.scopes(path)[int(point)]
        parameters = set(parameter_keys(probe.evaluator))  # BatchNorm statistics are not weights
        keys = [k for k in keys if k in parameters]
        a, b = _vector(path.at(0.0), keys), _vector(path.at(1.0), keys)
        distance = float((b - a).norm())
        na, nb = float(a.norm()), float(b.norm())
        ts = torch.linspace(0.0, 1.0, self.length_points).tolist()
        samples = [_vector(path.at(t), keys) for t in ts]
        length = float(sum((q - p).norm() for p, q in itertools.pairwise(samples)))
        record = {"distance": distance, "norm_a": na, "norm_b": nb,
                  "cosine": float(a @ b) / (na * nb) if na and nb else math.nan,
                  "relative_distance": 2.0 * distance / (na + nb) if na + nb else math.nan,
                  "path_length": length, "spawn_angle": math.nan,
                  "displacement_a": math.nan, "displacement_b": math.nan}
        if self.origin is not None:
            o = _vector(self.origin, keys)
            record.update(spawn_angle=angle(a - o, b - o), displacement_a=float((a - o).norm()),
                          displacement_b=float((b - o).norm()))
        return record

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        if not records:
            return {}
        whole = records[0]
        return {k: whole[k] for k in ("distance", "cosine", "relative_distance", "path_length",
                                      "spawn_angle")}
