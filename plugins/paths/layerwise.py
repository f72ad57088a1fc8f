"""``layerwise``: interpolate only chosen layers, the rest held at one endpoint.

Adilova et al. (ICLR 2024), "Layer-wise linear mode connectivity": a layer is every tensor of
one module (``ridgeline.core.state.module_groups``). The path is
theta(t) = anchor with the chosen layers set to (1 - t) theta_A + t theta_B,
i.e. the straight line between the two hybrid states (chosen layers from A, others from the
anchor) and (chosen layers from B, others from the anchor).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from ridgeline.core import ConfigError, Path, State, Ties
from ridgeline.core.numerics import blend_layers, module_groups, select_layers


class LayerwisePath(Path):
    """Interpolate the layers chosen by exactly one of ``layers`` (names or patterns, e.g.
    ``["hidden.1"]`` or ``["hidden.*"]``), ``prefix`` (the first k layers, input side) or
    ``suffix`` (the last k layers); the others stay at ``anchor`` (``"a"`` or ``"b"``).

    A tensor a model uses under several names (tied) is one layer, under its first name (a Linear
    ``mix`` registered again as ``blocks.0.mix`` is layer ``mix``, interpolated for every use at
    once); a layer name that is only another name of a tied tensor is refused naming the layer
    to use. ``ties`` (the model's :class:`~ridgeline.core.Ties`) is given by ridgeline."""

    name = "layerwise"

    def __init__(self, endpoints: Sequence[State], *, layers: Sequence[str] | None = None,
                 prefix: int | None = None, suffix: int | None = None, anchor: Literal["a", "b"] = "a",
                 ties: Ties | None = None, **options: Any) -> None:
        super().__init__(endpoints, layers=layers, prefix=prefix, suffix=suffix, anchor=anchor, **options)
        if options:
            raise ConfigError(f"path 'layerwise' has no option(s) {sorted(options)}; allowed: "
                              "layers, prefix, suffix, anchor")
        if len(self.endpoints) != 2:
            raise ConfigError(f"path 'layerwise' joins two models, got {len(self.endpoints)}")
        if sum(x is not None for x in (layers, prefix, suffix)) != 1:
            raise ConfigError("path 'layerwise' needs exactly one of layers, prefix or suffix")
        if anchor not in ("a", "b"):
            raise ConfigError(f"path 'layerwise' anchor must be 'a' or 'b', got {anchor!r}")
        groups = module_groups(self.endpoints[0])
        names = list(groups)
        if layers is not None:
            self.layers = select_layers(groups, [layers] if isinstance(layers, str) else layers, ties)
        else:
            k = int(prefix if prefix is not None else suffix)
            if not 1 <= k <= len(names):
                raise ConfigError(f"path 'layerwise' prefix/suffix must lie in [1, {len(names)}], got {k}")
            self.layers = names[:k] if prefix is not None else names[-k:]
        self.keys = [key for name in self.layers for key in groups[name]]
        a, b = self.endpoints[0], self.endpoints[-1]
        base = a if anchor == "a" else b
        self._start = blend_layers(base, a, b, self.keys, 0.0)
        self._end = blend_layers(base, a, b, self.keys, 1.0)

    @property
    def controls(self) -> list[State]:
        return [self._start, self._end]

    def coefficients(self, t: float) -> torch.Tensor:
        return torch.tensor([1.0 - t, t], dtype=torch.float64)
