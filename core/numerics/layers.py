"""Layers of a state and hybrids of two states that differ in chosen layers.

A layer is every tensor of one module (Adilova et al., ICLR 2024, "Layer-wise linear mode
connectivity"): :func:`ridgeline.core.state.module_groups`. Shared by the ``layerwise`` path and
the layer-wise metrics.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

import torch

from ridgeline.core.errors import ConfigError
from ridgeline.core.state import State, lerp


def select_layers(groups: Mapping[str, list[str]], layers: Sequence[str]) -> list[str]:
    """The layer names matching ``layers`` (exact names or fnmatch patterns), in model order."""
    chosen = []
    for pattern in layers:
        matched = [name for name in groups if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            raise ConfigError(f"no layer matches {pattern!r}; the layers are {', '.join(groups)}")
        chosen.extend(m for m in matched if m not in chosen)
    return [name for name in groups if name in chosen]


def blend_layers(anchor: Mapping[str, torch.Tensor], a: Mapping[str, torch.Tensor],
                 b: Mapping[str, torch.Tensor], keys: Sequence[str], t: float) -> State:
    """``anchor`` with the tensors ``keys`` replaced by (1 - t) a + t b."""
    out = dict(anchor)
    mixed = lerp({k: a[k] for k in keys}, {k: b[k] for k in keys}, t)
    out.update(mixed)
    return out
