"""``taylor_barrier``: the second-order prediction of the barrier from curvature along Delta.

Singh et al. (2024), "Landscaping linear mode connectivity": with Delta = theta_B - theta_A,
theta_mid = theta_A + Delta / 2 and H the Hessian of the loss, expanding L(theta_A) and
L(theta_B) about theta_mid, the odd terms cancel in their mean:
B(1/2) = L(theta_mid) - (L(theta_A) + L(theta_B)) / 2 = -(1/8) Delta^T H(theta_mid) Delta + O(|Delta|^4),
exact for a quadratic loss (then B(t) = -(t (1 - t) / 2) Delta^T H Delta for every t): a positive
barrier needs negative curvature along Delta, the line crosses a ridge.

The layer-wise predictor applies the same expansion to the line that moves layer l alone,
theta_A -> theta_A + Delta_l (Delta_l: layer l's part of Delta, zero elsewhere; the other layers
held at A): ``predicted`` = -(1/8) Delta_l^T H(theta_A + Delta_l / 2) Delta_l, with H at *that
line's own* midpoint. Where to take H for a layer is not stated in the abstract of Singh et al.
(the text available to ridgeline) nor in the design notes, which only restrict Delta to layer l;
H at the layer line's own midpoint is issue 10's (item 2) and ridgeline's reading of Singh et
al.: the point of the line that moves layer l alone where the odd terms cancel (docs/methods.md
gives the correlations that decided it). It is the default in the summaries. For comparison
each record also holds the prediction with H at the whole path's midpoint (``predicted_mid``,
which is not on layer l's line), at theta_A (``predicted_a``) and at theta_B (``predicted_b``);
point 0 (the whole network) has ``predicted`` = ``predicted_mid``.

The quadratic model can fail: on a ReLU network autograd's H ignores the kinks (units switching
on or off along the line). Beside it, each record holds the finite-difference estimate
-(1/8) [L(m + h Delta) - 2 L(m) + L(m - h Delta)] / h^2 at the line's midpoint m for each step h
(``steps``, fractions of Delta; default 1e-1 .. 1e-4), in float64, as ``fd_h<h>``, and their spread
(max - min, ``fd_spread``; and relative to the largest |estimate|, ``fd_relative_spread``). For a
smooth loss the estimates converge to ``predicted`` as h -> 0; an estimate that keeps moving with h
says the loss along Delta is not quadratic at any scale the steps probe. At h = 1/2 the estimate
is the measured barrier itself. Loss, Hessian and differences use the same data (``split``, the
first ``examples`` inputs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ridgeline.core import ConfigError, Metric, Path, PathProbe, Record
from ridgeline.core.numerics import LossSurface, blend_layers, lerp, module_groups, restrict, subtract

HESSIAN_AT = {"predicted_a": 0.0, "predicted_mid": 0.5, "predicted_b": 1.0}
PREDICTORS = ("predicted", *HESSIAN_AT)
BASE_COLUMNS = ("measured", *PREDICTORS, "curvature", "curvature_mid", "delta_norm")
DEFAULT_STEPS = (1e-1, 1e-2, 1e-3, 1e-4)


def correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; NaN with fewer than two points or a constant series."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or x.std() == 0.0 or y.std() == 0.0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def fd_column(h: float) -> str:
    """The column of the finite-difference estimate at step ``h`` (``fd_h0.01``)."""
    return f"fd_h{h:g}"


class TaylorBarrier(Metric):
    """Measured versus second-order predicted midpoint barrier, whole network and per layer,
    with finite-difference estimates that show where the quadratic model fails.
    Options: ``split`` (default test), ``examples`` (cap on the inputs used), ``steps`` (finite-
    difference steps as fractions of Delta, default 1e-1 .. 1e-4; ``[]`` for none)."""

    name = "taylor_barrier"
    supports_corrections = False  # the Hessian and the measured barrier are of the raw states
    columns = (*BASE_COLUMNS, *(fd_column(h) for h in DEFAULT_STEPS), "fd_spread", "fd_relative_spread")

    def __init__(self, *, split: str = "test", examples: int | None = None,
                 steps: Sequence[float] = DEFAULT_STEPS) -> None:
        try:
            steps = [float(h) for h in steps]
        except (TypeError, ValueError):
            raise ConfigError(f"taylor_barrier steps must be a list of numbers, got {steps!r}") from None
        bad = [h for h in steps if not 0.0 < h <= 0.5]
        if bad:
            raise ConfigError(f"taylor_barrier steps are fractions of Delta in (0, 0.5], got {bad}")
        if examples is not None and examples < 1:
            raise ConfigError(f"taylor_barrier examples must be at least 1 (or none: all), got {examples}")
        super().__init__(split=split, examples=examples, steps=steps)
        self.split, self.examples, self.steps = split, examples, steps
        spread = ("fd_spread", "fd_relative_spread") if steps else ()
        self.columns = (*BASE_COLUMNS, *(fd_column(h) for h in steps), *spread)

    def scopes(self, path: Path) -> list[tuple[str, list[str] | None]]:
        groups = module_groups(path.at(0.0))
        return [("all", None), *((name, keys) for name, keys in groups.items())]

    def points(self, path: Path) -> list[float]:
        return [float(i) for i in range(len(self.scopes(path)))]

    def labels(self, path: Path) -> list[str]:
        return [label for label, _ in self.scopes(path)]

    def measure(self, point: float, probe: PathProbe) -> Mapping[str, float]:
        surface = LossSurface(probe.evaluator, self.split, self.examples)
        a, b = probe.path.at(0.0), probe.path.at(1.0)
        _, keys = self.scopes(probe.path)[int(point)]
        end = b if keys is None else blend_layers(a, a, b, keys, 1.0)
        middle = lerp(a, end, 0.5)  # the midpoint of the line being predicted
        delta = subtract(end, a)
        if keys is not None:
            delta = restrict(delta, keys)
        delta = restrict(delta, surface.keys)
        record = {"measured": surface.value(middle) - (surface.value(a) + surface.value(end)) / 2.0}
        for column, t in HESSIAN_AT.items():
            record[column] = -surface.quadratic_form(lerp(a, b, t), delta) / 8.0
        record["predicted"] = (record["predicted_mid"] if keys is None
                               else -surface.quadratic_form(middle, delta) / 8.0)
        norm2 = sum(float((v.double() ** 2).sum()) for v in delta.values())
        for column, source in (("curvature", "predicted"), ("curvature_mid", "predicted_mid")):
            record[column] = -8.0 * record[source] / norm2 if norm2 > 0 else 0.0
        record["delta_norm"] = norm2 ** 0.5
        if self.steps:
            estimates = [-d2 / 8.0 for d2 in surface.second_differences(middle, delta, self.steps)]
            record.update({fd_column(h): e for h, e in zip(self.steps, estimates)})
            spread = max(estimates) - min(estimates)
            scale = max(abs(e) for e in estimates)
            record["fd_spread"] = spread
            record["fd_relative_spread"] = spread / scale if scale > 0 else 0.0
        return {column: record[column] for column in self.columns}

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        if not records:
            return {}
        whole, layers = records[0], records[1:]
        out = {f"{k}_all": whole[k] for k in ("measured", *PREDICTORS)}
        for column in PREDICTORS:
            out[f"corr_{column}"] = correlation([r["measured"] for r in layers],
                                                [r[column] for r in layers])
            out[f"sum_layers_{column}"] = float(sum(r[column] for r in layers))
        out["sum_layers_measured"] = float(sum(r["measured"] for r in layers))
        for column in self.columns[len(BASE_COLUMNS):]:
            out[f"{column}_all"] = whole[column]
        return out
