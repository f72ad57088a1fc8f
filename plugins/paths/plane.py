"""``plane``: a two-dimensional slice of parameter space, for landscape pictures.

Two constructions:

* ``mode = "three"`` (Garipov et al., NeurIPS 2018, Sec. 5 figures): the plane through three
  states theta_0, theta_1, theta_2 with an orthonormal basis from Gram-Schmidt,
  e_1 = (theta_1 - theta_0) / |theta_1 - theta_0|, e_2 the normalised part of theta_2 - theta_0
  orthogonal to e_1; coordinates (u, v) are distances in parameter space. ``mode = "curve"``
  is the same plane through A, B and the fitted middle control of a ``bezier`` or
  ``polychain`` path (a quadratic Bezier curve lies in it exactly).
* ``mode = "random"`` (Li et al., NeurIPS 2018, "Visualizing the loss landscape", Sec. 4):
  theta_0 + alpha d_1 + beta d_2 with Gaussian directions *filter-normalised*: each filter
  (slice along axis 0) of a tensor with >= 2 axes is scaled to the norm of the same filter of
  theta_0; biases and other 1-d tensors get direction 0.

The plane is a Path too: ``at(t)`` is the curve drawn on it (the chain through the endpoints,
or the fitted curve in ``curve`` mode). The ``landscape`` metric evaluates :meth:`point` on the
grid :meth:`grid_points` and the drawn curve's projection (:meth:`project`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import torch

from ridgeline.core import ConfigError, Evaluator, Path, State
from ridgeline.core.numerics import chain_coefficients, combine, flatten, subtract
from ridgeline.plugins.paths.bezier import BezierPath
from ridgeline.plugins.paths.polychain import PolychainPath

CurveName = Literal["bezier", "polychain"]
CURVES = dict(zip(get_args(CurveName), (BezierPath, PolychainPath)))
Mode = Literal["three", "curve", "random"]
MODES = get_args(Mode)


def filter_normalised_direction(state: Mapping[str, torch.Tensor], generator: torch.Generator) -> State:
    """A Gaussian direction with each filter scaled to the state's filter norm (Li et al. 2018)."""
    out = {}
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        if value.dim() < 2:
            out[key] = torch.zeros_like(value)
            continue
        d = torch.randn(value.shape, generator=generator, dtype=value.dtype).to(value.device)
        dims = tuple(range(1, value.dim()))
        scale = value.norm(dim=dims, keepdim=True) / d.norm(dim=dims, keepdim=True).clamp_min(1e-12)
        out[key] = d * scale
    return out


class PlanePath(Path):
    """A plane of states with a ``grid`` x ``grid`` lattice. Options: ``mode`` (three, curve,
    random; default three for 3+ states, curve for a pair), ``grid`` (points per axis, default
    21), ``margin`` (three/curve: extra room around the states as a fraction of their extent,
    default 0.2), ``span`` (random: the lattice
    covers [-span, span]^2, default 1), ``seed`` (random directions), ``curve`` and
    ``curve_options`` (curve mode: the path to fit, e.g. ``bezier`` with its fit settings)."""

    name = "plane"

    def __init__(self, endpoints: Sequence[State], *, mode: Mode | None = None, grid: int = 21,
                 margin: float = 0.2, span: float = 1.0, seed: int = 0, curve: CurveName = "bezier",
                 curve_options: Mapping[str, Any] | None = None, **options: Any) -> None:
        if mode is None:  # the plane of three models, or of a pair and its fitted Bezier curve
            mode = "three" if len(endpoints) >= 3 else "curve"
        super().__init__(endpoints, mode=mode, grid=grid, margin=margin, span=span, seed=seed,
                         curve=curve, curve_options=curve_options, **options)
        if options:
            raise ConfigError(f"path 'plane' has no option(s) {sorted(options)}; allowed: mode, grid, "
                              "margin, span, seed, curve, curve_options")
        if mode not in MODES:
            raise ConfigError(f"path 'plane' mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "three" and len(self.endpoints) < 3:
            raise ConfigError(f"plane mode 'three' needs 3 states, got {len(self.endpoints)}; "
                              "use mode 'curve' or 'random' for a pair")
        if mode == "curve" and len(self.endpoints) != 2:
            raise ConfigError(f"plane mode 'curve' fits a curve between two models, got "
                              f"{len(self.endpoints)}; use mode 'three' for three or more")
        if int(grid) < 2:
            raise ConfigError(f"plane grid must be at least 2 points per axis, got {grid}")
        self.mode, self.grid, self.margin, self.span = mode, int(grid), float(margin), float(span)
        self.curve: Path | None = None
        if mode == "curve":
            if curve not in CURVES:
                raise ConfigError(f"plane curve must be one of {', '.join(CURVES)}, got {curve!r}")
            self.curve = CURVES[curve]([self.endpoints[0], self.endpoints[-1]], **dict(curve_options or {}))
        self.trainable = mode == "curve"  # only the curve mode has something to fit
        self.origin = self.endpoints[0]
        if mode == "random":
            generator = torch.Generator().manual_seed(int(seed))
            self.directions = (filter_normalised_direction(self.origin, generator),
                               filter_normalised_direction(self.origin, generator))
        else:
            self.directions = self._orthonormal_basis()

    def _anchors(self) -> list[State]:
        """The three states the plane passes through (three/curve modes)."""
        if self.curve is not None:
            return [self.endpoints[0], self.endpoints[-1], self.curve.free[0]]
        return list(self.endpoints[:3])

    def _orthonormal_basis(self) -> tuple[State, State]:
        origin, first, second = self._anchors()
        d1, d2 = subtract(first, origin), subtract(second, origin)
        n1 = float(flatten(d1).double().norm())
        if n1 == 0.0:
            raise ConfigError("plane: the first two states are identical, so they span no plane")
        e1 = {k: v / n1 for k, v in d1.items()}
        along = float(torch.dot(flatten(d2).double(), flatten(e1).double()))
        rest = {k: d2[k] - along * e1[k] for k in d2}
        n2 = float(flatten(rest).double().norm())
        if n2 <= 1e-9 * n1:  # the third state lies on the line: any orthogonal direction will do
            generator = torch.Generator().manual_seed(0)
            rest = {k: torch.randn(v.shape, generator=generator, dtype=v.dtype).to(v.device)
                    for k, v in e1.items()}
            along = float(torch.dot(flatten(rest).double(), flatten(e1).double()))
            rest = {k: rest[k] - along * e1[k] for k in rest}
            n2 = float(flatten(rest).double().norm())
        return e1, {k: v / n2 for k, v in rest.items()}

    def fitted(self) -> list[State]:
        return self.curve.fitted() if self.curve is not None else []

    def restore(self, states: list[State]) -> None:
        if self.curve is None:
            raise TypeError(f"plane mode {self.mode!r} has nothing fitted to restore")
        self.curve.restore(states)
        self.directions = self._orthonormal_basis()

    def fit(self, evaluator: Evaluator) -> dict[str, Any]:
        if self.curve is None:
            raise TypeError(f"plane mode {self.mode!r} has nothing to fit")
        report = self.curve.fit(evaluator)
        self.directions = self._orthonormal_basis()
        return report

    # -- the drawn curve -------------------------------------------------------------------
    @property
    def controls(self) -> list[State]:
        return self.curve.controls if self.curve is not None else list(self.endpoints)

    def coefficients(self, t: float) -> torch.Tensor:
        if self.curve is not None:
            return self.curve.coefficients(t)
        return chain_coefficients(t, len(self.endpoints))

    # -- the plane ---------------------------------------------------------------------------
    def point(self, u: float, v: float) -> State:
        """origin + u d_1 + v d_2."""
        return combine([self.origin, self.directions[0], self.directions[1]], [1.0, u, v])

    def project(self, state: Mapping[str, torch.Tensor]) -> tuple[float, float, float]:
        """(u, v) of the state's least-squares projection onto the plane, and its distance
        from the plane (0 for a state in it)."""
        x = flatten(subtract(state, self.origin)).double().cpu()
        d1, d2 = (flatten(d).double().cpu() for d in self.directions)
        gram = torch.tensor([[d1 @ d1, d1 @ d2], [d1 @ d2, d2 @ d2]], dtype=torch.float64)
        u, v = torch.linalg.solve(gram, torch.stack([d1 @ x, d2 @ x])).tolist()
        residual = float((x - u * d1 - v * d2).norm())
        return float(u), float(v), residual

    def axes(self) -> tuple[list[float], list[float]]:
        """The lattice's u values and v values."""
        if self.mode == "random":
            lo_u = lo_v = -self.span
            hi_u = hi_v = self.span
        else:
            coords = [self.project(s)[:2] for s in self._anchors()]
            us, vs = [c[0] for c in coords], [c[1] for c in coords]
            pad_u = self.margin * (max(us) - min(us) or 1.0)
            pad_v = self.margin * (max(vs) - min(vs) or 1.0)
            lo_u, hi_u, lo_v, hi_v = min(us) - pad_u, max(us) + pad_u, min(vs) - pad_v, max(vs) + pad_v
        return torch.linspace(lo_u, hi_u, self.grid).tolist(), torch.linspace(lo_v, hi_v, self.grid).tolist()

    def grid_points(self) -> list[tuple[float, float]]:
        """The lattice, row by row (v outer, u inner): point i is (u[i % grid], v[i // grid])."""
        us, vs = self.axes()
        return [(u, v) for v in vs for u in us]
