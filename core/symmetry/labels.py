"""Axis labels and the union-find behind spec derivation (see :mod:`ridgeline.core.tracing`).

Every tensor the traced graph computes gets one *label* per axis: ``None`` for an axis whose
entries are fixed (batch, spatial positions, tokens, the network's input features), or a tuple
of *segments* that tile the axis. A segment ``(var, n, stride)`` covers ``n * stride`` entries:
the ``n`` entries of variable ``var``, each owning ``stride`` consecutive entries (a conv channel
flattened over spatial positions); ``(None, n, 1)`` is a run of ``n`` fixed entries (a
concatenation of a permutable and a fixed tensor).

A *variable* is an index space that one permutation acts on. Linear and conv outputs create
*unit* variables (hidden units); parameter axes create *passive* ones that only matter once they
are tied to a unit. Tying two axes (a residual addition, a bias, a norm's weight) unions their
variables. A class of variables may be *coarsened* to permute only whole blocks (grouped
convolutions, GroupNorm) and may be *frozen* with a reason (an op the walker does not
understand, the network output). Each class that holds a unit becomes one permutation group.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import attrs
import torch

Segment = tuple[int | None, int, int]
Label = tuple[Segment, ...] | None


@attrs.frozen
class Labels:
    """The labels of one tensor, one per axis."""

    axes: tuple[Label, ...]

    @classmethod
    def fixed(cls, ndim: int) -> Labels:
        return cls((None,) * ndim)


@attrs.define
class Var:
    size: int
    unit: bool
    origin: str
    parent: int | None = None


@attrs.define
class Ref:
    var: int
    key: str
    axis: int
    offset: int
    stride: int


class Unions:
    """Union-find over variables, with per-class block counts, freezing and tensor references."""

    def __init__(self) -> None:
        self.vars: list[Var] = []
        self.up: list[int] = []
        self.units: dict[int, int] = {}
        self.frozen: dict[int, str] = {}
        self.refs: list[Ref] = []
        self._uses: dict[tuple[str, int], list[tuple[int, int, int, int]]] = {}

    def new(self, size: int, *, unit: bool, origin: str, parent: int | None = None) -> int:
        self.vars.append(Var(size, unit, origin, parent))
        self.up.append(len(self.up))
        self.units[len(self.up) - 1] = size
        return len(self.up) - 1

    def find(self, v: int) -> int:
        while self.up[v] != v:
            self.up[v] = self.up[self.up[v]]
            v = self.up[v]
        return v

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if rb < ra:
            ra, rb = rb, ra
        self.up[rb] = ra
        self.units[ra] = math.gcd(self.units.pop(ra), self.units.pop(rb))
        reason = self.frozen.get(ra) or self.frozen.get(rb)
        self.frozen.pop(rb, None)
        if reason:
            self.frozen[ra] = reason

    def coarsen(self, v: int, blocks: int) -> None:
        """Let ``v``'s class permute only ``blocks`` contiguous blocks of its entries."""
        root = self.find(v)
        self.units[root] = math.gcd(self.units[root], blocks)

    def freeze(self, v: int, reason: str) -> None:
        self.frozen.setdefault(self.find(v), reason)

    def add_ref(self, var: int | None, key: str, axis: int, offset: int = 0, stride: int = 1,
                *, length: int = 0, nested: bool = False) -> None:
        """Record that ``var`` acts on entries of ``key``'s ``axis`` (``var=None``: ``length``
        entries there must stay fixed). The same entries used twice (shared weights) tie the
        two variables; overlapping uses in another layout, or with a fixed use, freeze them."""
        if var is not None:
            self.refs.append(Ref(var, key, axis, offset, stride))
            if nested:
                return
            length = self.vars[var].size * stride
        end = offset + length
        uses = self._uses.setdefault((key, axis), [])
        for start, stop, other_stride, other in uses:
            if var is not None and other is not None and (start, stop, other_stride) == (offset, end, stride):
                self.union(var, other)
            elif start < end and offset < stop:
                reason = f"axis {axis} of {key!r} is used in two incompatible layouts"
                for v in (var, other):
                    if v is not None:
                        self.freeze(v, reason)
        uses.append((offset, end, stride, var))


def fixed_like(result: Any) -> Any:
    """Labels of a value none of whose axes can be permuted (tensors, or tuples of them)."""
    if isinstance(result, torch.Tensor):
        return Labels.fixed(result.dim())
    if isinstance(result, (tuple, list)):
        return tuple(fixed_like(r) for r in result)
    return None


def label_vars(value: Any) -> Iterator[int]:
    """Every variable in a value's labels (a :class:`Labels` or nested tuples of them)."""
    if isinstance(value, Labels):
        for label in value.axes:
            for var, _, _ in label or ():
                if var is not None:
                    yield var
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from label_vars(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from label_vars(item)


def freeze_all(unions: Unions, value: Any, reason: str) -> None:
    for var in label_vars(value):
        unions.freeze(var, reason)


def segments_or_fixed(label: Label, size: int) -> tuple[Segment, ...]:
    return label if label is not None else ((None, size, 1),)


def normalise(segments: tuple[Segment, ...]) -> Label:
    return None if all(var is None for var, _, _ in segments) else tuple(segments)


def merge(unions: Unions, labels: list[Label], where: str) -> Label:
    """Tie axes that must be permuted together; a mismatch freezes what it touches."""
    present = [label for label in labels if label is not None]
    if not present:
        return None
    if len(present) < len(labels):
        freeze_all(unions, Labels(tuple(present)), f"tied at {where} to an axis that cannot be "
                   "permuted (input features, token or spatial positions, an untracked tensor)")
        return None
    reason = f"tied at {where} to an axis with a different layout (concatenation or stride)"
    first = present[0]
    for other in present[1:]:
        layout_a = [(v is None, n, s) for v, n, s in first]
        layout_b = [(v is None, n, s) for v, n, s in other]
        if layout_a != layout_b or any(
                a is not None and unions.vars[a].size != unions.vars[b].size
                for (a, _, _), (b, _, _) in zip(first, other)):
            freeze_all(unions, Labels(tuple(present)), reason)
            return None
        for (a, _, _), (b, _, _) in zip(first, other):
            if a is not None:
                unions.union(a, b)
    return first


def broadcast(unions: Unions, parts: list[tuple[Labels, tuple[int, ...]]],
              shape: tuple[int, ...], where: str) -> Labels:
    """Labels of an elementwise op's output: axes aligned from the right are tied."""
    out: list[Label] = []
    for axis in range(len(shape)):
        back = len(shape) - axis
        labels = []
        for labs, part_shape in parts:
            if back > len(part_shape):
                continue
            label = labs.axes[len(part_shape) - back]
            if part_shape[len(part_shape) - back] == shape[axis] and shape[axis] > 1:
                labels.append(label)
            elif label is not None:
                freeze_all(unions, Labels((label,)), f"broadcast against a larger axis at {where}")
        out.append(merge(unions, labels, where))
    return Labels(tuple(out))


def reshape(unions: Unions, labs: Labels, src: tuple[int, ...], dst: tuple[int, ...],
            where: str) -> Labels:
    """Labels after a reshape: merging axes multiplies strides (flatten after a conv),
    splitting an axis keeps the variable on the leading part; anything else freezes."""
    reason = f"reshaped in a way the walker cannot follow at {where}"
    keep_src = [i for i, n in enumerate(src) if n != 1]
    keep_dst = [j for j, n in enumerate(dst) if n != 1]
    for i, n in enumerate(src):
        if n == 1 and labs.axes[i] is not None:
            freeze_all(unions, Labels((labs.axes[i],)), reason)
    out: list[Label] = [None] * len(dst)
    i = j = 0
    while i < len(keep_src) and j < len(keep_dst):
        ii, jj = [keep_src[i]], [keep_dst[j]]
        pa, pb = src[keep_src[i]], dst[keep_dst[j]]
        while pa != pb:
            if pa < pb:
                i += 1
                ii.append(keep_src[i])
                pa *= src[keep_src[i]]
            else:
                j += 1
                jj.append(keep_dst[j])
                pb *= dst[keep_dst[j]]
        i, j = i + 1, j + 1
        labels = [labs.axes[k] for k in ii]
        if all(label is None for label in labels):
            continue
        placed = _place(labels, [src[k] for k in ii], [dst[k] for k in jj])
        if placed is None:
            freeze_all(unions, Labels(tuple(labels)), reason)
            continue
        for k, label in zip(jj, placed):
            out[k] = label
    return Labels(tuple(out))


def _place(labels: list[Label], sizes: list[int], targets: list[int]) -> list[Label] | None:
    labelled = [k for k, label in enumerate(labels) if label is not None]
    if len(labelled) != 1:
        return None
    k = labelled[0]
    label = labels[k]
    assert label is not None
    repeat, stride = math.prod(sizes[:k]), math.prod(sizes[k + 1:])
    if len(targets) == 1:
        if repeat * len(label) > 64:
            return None
        return [tuple((v, n, s * stride) for v, n, s in label) * repeat]
    if len(sizes) == 1 and len(label) == 1 and label[0][0] is not None:
        var, n, s = label[0]
        if targets[0] == n and math.prod(targets[1:]) == s:
            return [((var, n, 1),)] + [None] * (len(targets) - 1)
    return None


def split(label: Label, sizes: list[int]) -> list[Label] | None:
    """Cut an axis label into consecutive parts of ``sizes`` entries, or None if a part
    would cut through a segment."""
    if label is None:
        return [None] * len(sizes)
    parts: list[Label] = []
    segments = list(label)
    for size in sizes:
        taken: list[Segment] = []
        while size > 0 and segments:
            var, n, s = segments.pop(0)
            if var is None and n > size:
                segments.insert(0, (None, n - size, 1))
                n = size
            if n * s > size:
                return None
            taken.append((var, n, s))
            size -= n * s
        if size:
            return None
        parts.append(normalise(tuple(taken)))
    return parts
