"""``gradient``: the slope of the landscape along a path (the "mountainside").

At each t: |grad L(theta_t)|, the cosine between the gradient and the path's direction
d theta / dt (for the line, Delta = theta_B - theta_A), and the directional derivative
dL/dt = <grad L, d theta / dt>; per layer too (the gradient and the direction restricted to the
layer's tensors). Singh et al. (2024), "Landscaping linear mode connectivity": on the way out
of a minimum the line climbs a mountainside, the gradient largely aligned with Delta.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ridgeline.core import ConfigError, Metric, Path, PathProbe, Record
from ridgeline.core.numerics import LossSurface, dot, module_groups, norm, restrict, t_grid, tangent

BASE_COLUMNS = ("t", "grad_norm", "cos_tangent", "slope")


def _cosine(x: Mapping, y: Mapping) -> float:
    nx, ny = norm(x), norm(y)
    return dot(x, y) / (nx * ny) if nx and ny else math.nan


class Gradient(Metric):
    """Gradient norm and its cosine with the path direction (the "mountainside") along the path.

    Options: ``grid`` (default 11 points), ``split``, ``examples``. Besides the whole-network
    columns, each layer adds ``grad_norm@<layer>`` and ``cos_tangent@<layer>``."""

    name = "gradient"
    columns = BASE_COLUMNS

    def __init__(self, *, grid: int | Sequence[float] = 11, split: str = "test",
                 examples: int | None = None) -> None:
        if examples is not None and examples < 1:
            raise ConfigError(f"gradient examples must be at least 1 (or none: all), got {examples}")
        super().__init__(grid=grid, split=split, examples=examples)
        self.grid = t_grid(grid if isinstance(grid, int) else list(grid))
        self.split, self.examples = split, examples
        self.layers: dict[str, list[str]] = {}

    def points(self, path: Path) -> list[float]:
        self.layers = module_groups(path.at(0.0))
        self.columns = BASE_COLUMNS + tuple(f"{stat}@{layer}" for layer in self.layers
                                            for stat in ("grad_norm", "cos_tangent"))
        return self.grid

    def measure(self, point: float, probe: PathProbe) -> Mapping[str, float]:
        if not self.layers:
            self.points(probe.path)
        surface = LossSurface(probe.evaluator, self.split, self.examples)
        grad = {k: v.cpu() for k, v in surface.gradient(probe.state_at(point)).items()}
        direction = {k: v.cpu() for k, v in restrict(tangent(probe.path, point), surface.keys).items()}
        record = {"t": point, "grad_norm": norm(grad), "cos_tangent": _cosine(grad, direction),
                  "slope": dot(grad, direction)}
        for layer, keys in self.layers.items():
            g, d = restrict(grad, keys), restrict(direction, keys)
            record[f"grad_norm@{layer}"] = norm(g)
            record[f"cos_tangent@{layer}"] = _cosine(g, d)
        return record

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        if not records:
            return {}
        middle = min(records, key=lambda r: abs(r["t"] - 0.5))
        return {"max_grad_norm": max(r["grad_norm"] for r in records),
                "grad_norm_mid": middle["grad_norm"], "cos_tangent_start": records[0]["cos_tangent"],
                "cos_tangent_end": records[-1]["cos_tangent"]}
