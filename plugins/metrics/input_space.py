"""``input_connectivity``: mode connectivity in the input space of one network.

Vrabel, Shem-Ur, Oz & Krueger (2024), "Input Space Mode Connectivity in Deep Neural Networks".
The network is the path's point at ``t`` (default 0: theta_A; the run's corrections applied). From
``split`` the metric draws ``pairs`` seeded pairs of inputs the network assigns the same class c
(``select="predicted"``: the same predicted class; ``"label"``: the same true label, both
predicted correctly), then joins each pair by the straight line and by a fitted curve
(``curve = "polychain"`` with ``bends`` free inputs, or ``"bezier"`` of degree bends + 1,
minimising E_s L_c(x(s)); :mod:`ridgeline.core.numerics.input_paths`), and measures along both,
on an s grid (``grid``): the class loss L_c, the confidence p_c and whether c stays the arg-max.

Points are pair-major: point ``p * len(grid) + j`` is pair p at s = grid[j] (label ``pair<p>``).
Each pair's curve is fitted once (seeded, so a resumed run refits it identically). The summary
gives, over pairs, the chord barrier of L_c along the line and along the fitted curve (mean,
median, max), the fraction of pairs whose fitted barrier is lower, the fraction whose whole
sampled path keeps class c (``*_connected``), and the mean minimum confidence.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import attrs
import torch

from ridgeline.core import ConfigError, Metric, Path, PathProbe, Record
from ridgeline.core.numerics import (
    InputCurve,
    InputFitSettings,
    barrier_summary,
    class_loss,
    fit_input_curve,
    same_class_pairs,
    t_grid,
)

Select = Literal["predicted", "label"]
Curve = Literal["polychain", "bezier"]
SELECT, CURVES = get_args(Select), get_args(Curve)


def _integer_at_least(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"input_connectivity {name} must be an integer >= {minimum}, got {value!r}")
    return value


class InputConnectivity(Metric):
    """Input-space connectivity (Vrabel et al. 2024): loss, confidence and barrier of a class along
    the line and a fitted curve between seeded same-class input pairs, for the network at ``t``.

    Options: ``pairs`` (8), ``seed`` (0), ``split`` (test), ``select`` (predicted | label),
    ``curve`` (polychain | bezier), ``bends`` (1), ``steps`` (300), ``lr`` (0.05), ``samples``
    (16 values of s per step), ``grid`` (25), ``t`` (0.0)."""

    name = "input_connectivity"
    columns = ("pair", "s", "target", "index_a", "index_b", "loss_linear", "confidence_linear",
               "hit_linear", "loss_fitted", "confidence_fitted", "hit_fitted", "offset")

    def __init__(self, *, pairs: int = 8, seed: int = 0, split: str = "test", select: Select = "predicted",
                 curve: Curve = "polychain", bends: int = 1, steps: int = 300, lr: float = 0.05,
                 samples: int = 16, grid: int | Sequence[float] = 25, t: float = 0.0) -> None:
        super().__init__(pairs=pairs, seed=seed, split=split, select=select, curve=curve, bends=bends,
                         steps=steps, lr=lr, samples=samples, grid=grid, t=t)
        if select not in SELECT:
            raise ConfigError(f"input_connectivity select must be one of {', '.join(SELECT)}, got {select!r}")
        if curve not in CURVES:
            raise ConfigError(f"input_connectivity curve must be one of {', '.join(CURVES)}, got {curve!r}")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
            raise ConfigError(f"input_connectivity lr must be a positive number, got {lr!r}")
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0.0 <= t <= 1.0:
            raise ConfigError(f"input_connectivity t must lie in [0, 1], got {t!r}")
        self.pairs = _integer_at_least("pairs", pairs)
        self.bends = _integer_at_least("bends", bends)
        self.seed = _integer_at_least("seed", seed, 0)
        self.settings = InputFitSettings(steps=_integer_at_least("steps", steps, 0), lr=float(lr),
                                         samples=_integer_at_least("samples", samples), seed=self.seed)
        self.grid = t_grid(grid if isinstance(grid, int) else list(grid))
        self.split, self.select, self.curve, self.t = split, select, curve, float(t)
        self._cache: dict[str, Any] = {}

    def points(self, path: Path) -> list[float]:
        return [float(i) for i in range(self.pairs * len(self.grid))]

    def labels(self, path: Path) -> list[str]:
        return [f"pair{p}" for p in range(self.pairs) for _ in self.grid]

    # -- the network, its pairs and their curves (cached per probe) ---------------------------
    def _network(self, probe: PathProbe) -> dict[str, Any]:
        if self._cache.get("probe") is not probe:
            evaluator = probe.evaluator
            state = evaluator.on_device(probe.state_at(self.t))
            x, y = evaluator.stored(self.split)  # prepared a batch (or a pair) at a time
            with torch.no_grad():
                predicted = torch.cat([evaluator.logits(state, xb).argmax(1)
                                       for xb, _ in evaluator.batches(self.split)])
            classes = predicted
            if self.select == "label":  # a misclassified input gets a class of its own: never paired
                alone = -1 - torch.arange(len(y), device=y.device)
                classes = torch.where(predicted == y, y, alone)
            pairs = same_class_pairs(classes, self.pairs, self.seed)
            self._cache = {"probe": probe, "state": state, "x": x, "classes": predicted,
                           "pairs": pairs, "curves": {}}
        return self._cache

    def _curve(self, network: dict[str, Any], probe: PathProbe, p: int) -> tuple[InputCurve, int, int, int]:
        i, j = network["pairs"][p]
        target = int(network["classes"][i])
        if p not in network["curves"]:
            x = probe.evaluator.prepare(network["x"][[i, j]])
            curve = InputCurve(x[0], x[1], self.curve, self.bends)
            state = network["state"]
            fit_input_curve(lambda inputs: probe.evaluator.logits(state, inputs), curve, target,
                            attrs.evolve(self.settings, seed=self.seed + p))
            network["curves"][p] = curve
        return network["curves"][p], i, j, target

    def measure(self, point: float, probe: PathProbe) -> Mapping[str, float]:
        network = self._network(probe)
        p, k = divmod(int(point), len(self.grid))
        nan = float("nan")
        if p >= len(network["pairs"]):  # fewer same-class pairs exist than were asked for
            return {"pair": float(p), "s": self.grid[k], **dict.fromkeys(self.columns[2:], nan)}
        curve, i, j, target = self._curve(network, probe, p)
        s = self.grid[k]
        state = network["state"]
        inputs = torch.cat([curve.line([s]), curve.batch([s])])
        with torch.no_grad():
            loss, confidence, hit = class_loss(lambda v: probe.evaluator.logits(state, v), inputs, target)
        length = float((curve.x_b - curve.x_a).norm())
        offset = float((inputs[1] - inputs[0]).norm()) / length if length > 0 else 0.0
        return {"pair": float(p), "s": s, "target": float(target), "index_a": float(i), "index_b": float(j),
                "loss_linear": float(loss[0]), "confidence_linear": float(confidence[0]),
                "hit_linear": float(hit[0]), "loss_fitted": float(loss[1]),
                "confidence_fitted": float(confidence[1]), "hit_fitted": float(hit[1]), "offset": offset}

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        by_pair: dict[int, list[Record]] = {}
        for record in records:
            if not math.isnan(record["target"]):  # skip the rows of pairs that do not exist
                by_pair.setdefault(int(record["pair"]), []).append(record)
        if not by_pair:
            return {}
        out: dict[str, float] = {"pairs": float(len(by_pair))}
        barriers = {}
        for kind in ("linear", "fitted"):
            values = [barrier_summary([r["s"] for r in rows], [r[f"loss_{kind}"] for r in rows])["barrier"]
                      for rows in by_pair.values()]
            barriers[kind] = values
            out[f"{kind}_barrier_mean"] = statistics.fmean(values)
            out[f"{kind}_barrier_median"] = statistics.median(values)
            out[f"{kind}_barrier_max"] = max(values)
            out[f"{kind}_connected"] = statistics.fmean(
                float(all(r[f"hit_{kind}"] == 1.0 for r in rows)) for rows in by_pair.values())
            out[f"{kind}_min_confidence_mean"] = statistics.fmean(
                min(r[f"confidence_{kind}"] for r in rows) for rows in by_pair.values())
        out["fitted_lower_fraction"] = statistics.fmean(
            float(f < lin) for f, lin in zip(barriers["fitted"], barriers["linear"]))
        out["offset_max_mean"] = statistics.fmean(max(r["offset"] for r in rows) for rows in by_pair.values())
        return out
