"""``taylor_barrier``: the second-order prediction of the barrier from curvature along Delta.

Singh et al. (2024), "Landscaping linear mode connectivity": with Delta = theta_B - theta_A and
H the Hessian of the loss, a quadratic loss gives exactly
B(t) = L(theta_t) - ((1 - t) L(theta_A) + t L(theta_B)) = -(t (1 - t) / 2) Delta^T H Delta,
so B(1/2) = -(1/8) Delta^T H Delta: a positive barrier needs negative curvature along Delta.
The layer-wise predictor restricts Delta to layer l (Delta_l: layer l's part of Delta, zero
elsewhere), which predicts the barrier of the line theta_A -> theta_A + Delta_l (layer l moved
from A to B, the others held at A).

Point 0 is the whole network, point l >= 1 layer l. Each record holds the measured chord
barrier at the midpoint of that line, and the prediction with H taken at the path's midpoint
(``predicted_mid``), at theta_A (``predicted_a``) and at theta_B (``predicted_b``): one
Hessian-vector product each. Loss and Hessian use the same data (``split``, first ``examples``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ridgeline.core import Metric, Path, PathProbe, Record
from ridgeline.core.numerics import LossSurface, blend_layers, lerp, module_groups, restrict, subtract

HESSIAN_AT = {"predicted_a": 0.0, "predicted_mid": 0.5, "predicted_b": 1.0}


def correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; NaN with fewer than two points or a constant series."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or x.std() == 0.0 or y.std() == 0.0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


class TaylorBarrier(Metric):
    """Measured versus second-order predicted midpoint barrier, whole network and per layer.
    Options: ``split`` (default test), ``examples`` (cap on the inputs used)."""

    name = "taylor_barrier"
    supports_corrections = False  # the Hessian and the measured barrier are of the raw states
    columns = ("measured", "predicted_a", "predicted_mid", "predicted_b", "curvature_mid",
               "delta_norm")

    def __init__(self, *, split: str = "test", examples: int | None = None) -> None:
        super().__init__(split=split, examples=examples)
        self.split, self.examples = split, examples

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
        middle = lerp(a, end, 0.5)
        delta = subtract(end, a)
        if keys is not None:
            delta = restrict(delta, keys)
        delta = restrict(delta, surface.keys)
        measured = surface.value(middle) - (surface.value(a) + surface.value(end)) / 2.0
        record = {"measured": measured}
        for column, t in HESSIAN_AT.items():
            record[column] = -surface.quadratic_form(lerp(a, b, t), delta) / 8.0
        norm2 = sum(float((v.double() ** 2).sum()) for v in delta.values())
        record["curvature_mid"] = -8.0 * record["predicted_mid"] / norm2 if norm2 > 0 else 0.0
        record["delta_norm"] = norm2 ** 0.5
        return record

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        if not records:
            return {}
        whole, layers = records[0], records[1:]
        out = {f"{k}_all": whole[k] for k in ("measured", *HESSIAN_AT)}
        for column in HESSIAN_AT:
            out[f"corr_{column}"] = correlation([r["measured"] for r in layers],
                                                [r[column] for r in layers])
            out[f"sum_layers_{column}"] = float(sum(r[column] for r in layers))
        out["sum_layers_measured"] = float(sum(r["measured"] for r in layers))
        return out
