"""``layerwise_barrier``: the barrier when only some layers are averaged.

Adilova et al. (ICLR 2024), "Layer-wise linear mode connectivity": average only layer l (all
tensors of one module), hold the others at theta_A (anchor a) or at theta_B (anchor b):
B_l = L(layer-l midpoint) - (L(theta_A) + L(theta_B)) / 2, for loss and for error.
The cumulative variant grows the averaged set one layer at a time, input to output
(``order="input"``), output to input (``"output"``) or in a seeded random order (``"random"``);
its last point averages every layer, i.e. it is the full network's midpoint barrier.

theta_A and theta_B are the path's points at t = 0 and t = 1 (for a star segment: the centre
and a model). Each record also carries the full-network midpoint barrier for comparison.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

from ridgeline.core import ConfigError, Metric, Path, PathProbe, Record
from ridgeline.core.numerics import blend_layers, lerp, module_groups

Mode = Literal["single", "cumulative"]
Order = Literal["input", "output", "random"]
MODES, ORDERS = get_args(Mode), get_args(Order)


class LayerwiseBarrier(Metric):
    """Per layer (``mode="single"``) or per growing prefix of layers (``"cumulative"``, in
    ``order`` with ``seed``), the loss and error at the layer-averaged midpoint with the
    other layers at A and at B, and the barriers B_l against the endpoints' mean."""

    name = "layerwise_barrier"
    columns = ("loss_a", "loss_b", "error_a", "error_b", "barrier_a", "barrier_b",
               "error_barrier_a", "error_barrier_b", "full_barrier", "full_error_barrier")

    def __init__(self, *, split: str = "test", mode: Mode = "single", order: Order = "input",
                 seed: int = 0) -> None:
        super().__init__(split=split, mode=mode, order=order, seed=seed)
        if mode not in MODES:
            raise ConfigError(f"layerwise_barrier mode must be one of {', '.join(MODES)}, got {mode!r}")
        if order not in ORDERS:
            raise ConfigError(f"layerwise_barrier order must be one of {', '.join(ORDERS)}, got {order!r}")
        self.split, self.mode, self.order, self.seed = split, mode, order, int(seed)

    def layer_sets(self, path: Path) -> list[tuple[str, list[str]]]:
        """(label, layers averaged) per point, in point order."""
        names = list(module_groups(path.at(0.0)))
        if self.mode == "single":
            return [(name, [name]) for name in names]
        if self.order == "output":
            names = names[::-1]
        elif self.order == "random":
            random.Random(self.seed).shuffle(names)
        return [(f"+{name}", names[: i + 1]) for i, name in enumerate(names)]

    def points(self, path: Path) -> list[float]:
        return [float(i) for i in range(len(self.layer_sets(path)))]

    def labels(self, path: Path) -> list[str]:
        return [label for label, _ in self.layer_sets(path)]

    def measure(self, point: float, probe: PathProbe) -> Mapping[str, float]:
        path = probe.path
        a, b = path.at(0.0), path.at(1.0)
        groups = module_groups(a)
        _, layers = self.layer_sets(path)[int(point)]
        keys = [key for layer in layers for key in groups[layer]]
        start, end = probe.evaluate(0.0, self.split), probe.evaluate(1.0, self.split)
        # the straight-line midpoint, whatever the path (every hybrid is a blend of A and B);
        # evaluated once per probe, not once per layer
        if getattr(self, "_middle", (None,))[0] is not probe:
            self._middle = (probe, probe.evaluate_state(lerp(a, b, 0.5), 0.5, self.split))
        middle = self._middle[1]
        mean_loss, mean_error = (start.loss + end.loss) / 2, (start.error + end.error) / 2
        at_a = probe.evaluate_state(blend_layers(a, a, b, keys, 0.5), 0.5, self.split)
        at_b = probe.evaluate_state(blend_layers(b, a, b, keys, 0.5), 0.5, self.split)
        return {
            "loss_a": at_a.loss, "loss_b": at_b.loss, "error_a": at_a.error, "error_b": at_b.error,
            "barrier_a": at_a.loss - mean_loss, "barrier_b": at_b.loss - mean_loss,
            "error_barrier_a": at_a.error - mean_error, "error_barrier_b": at_b.error - mean_error,
            "full_barrier": middle.loss - mean_loss, "full_error_barrier": middle.error - mean_error,
        }

    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        if not records:
            return {}
        out = {"full_barrier": records[0]["full_barrier"],
               "full_error_barrier": records[0]["full_error_barrier"]}
        for column in ("barrier_a", "barrier_b", "error_barrier_a", "error_barrier_b"):
            values = [r[column] for r in records]
            i = max(range(len(values)), key=values.__getitem__)
            out[f"max_{column}"] = values[i]
            out[f"argmax_{column}"] = float(i)
        return out
