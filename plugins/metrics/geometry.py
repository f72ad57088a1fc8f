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

from ridgeline.core import ConfigError, Metric, Path, PathProbe, Record, load_state
from ridgeline.core.numerics import angle, flatten, module_groups, parameter_keys


class Geometry(Metric):
    """Distances, cosines, path length and spawn angle, whole network and per layer.

    Point 0 is the whole network, point l >= 1 layer l. Options: ``origin`` (a state or a
    checkpoint path: the spawn point, for ``spawn_angle``), ``length_points`` (default 65)."""

    name = "geometry"
    columns = ("distance", "norm_a", "norm_b", "cosine", "relative_distance", "path_length",
               "spawn_angle", "displacement_a", "displacement_b")

    def __init__(self, *, origin: Mapping[str, torch.Tensor] | str | None = None,
                 length_points: int = 65) -> None:
        if length_points < 2:
            raise ConfigError(f"geometry length_points must be at least 2 (a path's two ends), got "
                              f"{length_points}")
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
        a, b = (flatten(path.at(t), keys).detach().double().cpu() for t in (0.0, 1.0))
        distance = float((b - a).norm())
        na, nb = float(a.norm()), float(b.norm())
        ts = torch.linspace(0.0, 1.0, self.length_points).tolist()
        samples = [flatten(path.at(t), keys).detach().double().cpu() for t in ts]
        length = float(sum((q - p).norm() for p, q in itertools.pairwise(samples)))
        record = {"distance": distance, "norm_a": na, "norm_b": nb,
                  "cosine": float(a @ b) / (na * nb) if na and nb else math.nan,
                  "relative_distance": 2.0 * distance / (na + nb) if na + nb else math.nan,
                  "path_length": length, "spawn_angle": math.nan,
                  "displacement_a": math.nan, "displacement_b": math.nan}
        if self.origin is not None:
            o = flatten(self.origin, keys).detach().double().cpu()
            record.update(spawn_angle=angle(a - o, b - o), displacement_a=float((a - o).norm()),
                          displacement_b=float((b - o).norm()))
        return record

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        if not records:
            return {}
        whole = records[0]
        return {k: whole[k] for k in ("distance", "cosine", "relative_distance", "path_length",
                                      "spawn_angle")}
