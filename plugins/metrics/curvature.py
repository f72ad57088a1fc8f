"""``curvature``: the Hessian's top eigenvalue and the curvature along Delta at path points.

At chosen t, with theta_t the path point: lambda_max, the largest-magnitude eigenvalue of H(theta_t)
by power iteration on Hessian-vector products, and the normalised curvature along the chord
Delta = theta_B - theta_A, Delta^T H(theta_t) Delta / |Delta|^2 (negative where the line crosses
a ridge; Singh et al. 2024, "Landscaping linear mode connectivity").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ridgeline.core import ConfigError, Metric, Path, PathProbe, Record
from ridgeline.core.numerics import LossSurface, norm, restrict, subtract, t_grid


class Curvature(Metric):
    """Top Hessian eigenvalue and curvature along the path direction at chosen t.

    Options: ``grid`` (t values or a count; default 0, 0.5, 1), ``split``, ``examples``,
    ``iters`` and ``tol`` (power iteration), ``seed``."""

    name = "curvature"
    columns = ("t", "top_eigenvalue", "iterations", "delta_curvature")

    def __init__(self, *, grid: int | Sequence[float] = (0.0, 0.5, 1.0), split: str = "test",
                 examples: int | None = None, iters: int = 20, tol: float = 1e-3, seed: int = 0) -> None:
        if iters < 1 or tol <= 0 or (examples is not None and examples < 1):
            raise ConfigError(f"curvature needs iters >= 1, tol > 0 and examples >= 1 (or none: all), got "
                              f"iters={iters}, tol={tol}, examples={examples}")
        super().__init__(grid=grid, split=split, examples=examples, iters=iters, tol=tol, seed=seed)
        self.grid = t_grid(list(grid) if not isinstance(grid, int) else grid)
        self.split, self.examples, self.iters, self.tol, self.seed = split, examples, iters, tol, seed

    def points(self, path: Path) -> list[float]:
        return self.grid

    def measure(self, point: float, probe: PathProbe) -> Mapping[str, float]:
        surface = LossSurface(probe.evaluator, self.split, self.examples)
        state = probe.state_at(point)
        eigenvalue, iterations = surface.top_eigenvalue(state, iters=self.iters, tol=self.tol, seed=self.seed)
        delta = restrict(subtract(probe.path.at(1.0), probe.path.at(0.0)), surface.keys)
        size = norm(delta)
        along = surface.quadratic_form(state, delta) / size ** 2 if size > 0 else 0.0
        return {"t": point, "top_eigenvalue": eigenvalue, "iterations": float(iterations),
                "delta_curvature": along}

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        if not records:
            return {}
        return {"max_top_eigenvalue": max(r["top_eigenvalue"] for r in records),
                "min_delta_curvature": min(r["delta_curvature"] for r in records),
                "max_delta_curvature": max(r["delta_curvature"] for r in records)}
