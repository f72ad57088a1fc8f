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
from ridgeline.core.state import State, Ties, lerp


def select_layers(groups: Mapping[str, list[str]], layers: Sequence[str],
                  ties: Ties | None = None) -> list[str]:
    """The layer names matching ``layers`` (exact names or fnmatch patterns), in model order.

    ``groups`` come from a state holding each tied tensor once (:meth:`Ties.drop`), so a tied
    tensor is a layer under its canonical (first) name only. A pattern that matches no layer but
    an alias's layer in ``ties`` (``blocks.0.mix`` when that Linear is ``mix`` registered again)
    is refused naming the canonical layer to use instead: one tensor cannot be interpolated for
    one of its uses and not for the others. So is a pattern that matches layers and also an
    alias's layer whose tied tensor's own layer is not chosen (``blocks.0.*`` choosing
    ``blocks.0.norm`` but not ``mix``), rather than leaving the tied tensor out unsaid."""
    chosen = []
    for pattern in layers:
        matched = [name for name in groups if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            raise ConfigError(f"no layer matches {pattern!r}{_alias_hint(pattern, ties)}; "
                              f"the layers are {', '.join(groups)}")
        chosen.extend(m for m in matched if m not in chosen)
    for pattern in layers:
        left_out = _alias_hint(pattern, ties, chosen)
        if left_out:
            raise ConfigError(f"layers {pattern!r} also names a tied tensor's other layer{left_out}, "
                              "or list the layers without it")
    return [name for name in groups if name in chosen]


def _layer(key: str) -> str:
    return key.rpartition(".")[0] or key


def _alias_hint(pattern: str, ties: Ties | None, chosen: Sequence[str] = ()) -> str:
    """Why ``pattern`` names no layer (or not all it seems to) when it names the layer of a tied
    tensor's alias whose canonical layer is not in ``chosen``; "" when it names none."""
    by_layer: dict[str, list[tuple[str, str]]] = {}
    for alias, canonical in (ties.aliases if ties else {}).items():
        if fnmatch.fnmatchcase(_layer(alias), pattern) and _layer(canonical) not in chosen:
            by_layer.setdefault(_layer(alias), []).append((alias, canonical))
    if not by_layer:
        return ""
    parts = []
    for layer, pairs in by_layer.items():
        targets = list(dict.fromkeys(_layer(canonical) for _, canonical in pairs))
        names = " and ".join(repr(t) for t in targets)
        keys = ", ".join(f"{alias} is {canonical}" for alias, canonical in pairs)
        parts.append(f"{layer!r} is another name of the tied tensor {names} ({keys}); use {names}")
    return ": " + "; ".join(parts)


def blend_layers(anchor: Mapping[str, torch.Tensor], a: Mapping[str, torch.Tensor],
                 b: Mapping[str, torch.Tensor], keys: Sequence[str], t: float) -> State:
    """``anchor`` with the tensors ``keys`` replaced by (1 - t) a + t b."""
    out = dict(anchor)
    mixed = lerp({k: a[k] for k in keys}, {k: b[k] for k in keys}, t)
    out.update(mixed)
    return out
