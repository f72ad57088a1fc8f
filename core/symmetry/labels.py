"""Axis labels and the union-find behind spec derivation (see :mod:`ridgeline.core.symmetry.derive`).

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

Three refinements (:mod:`ridgeline.core.symmetry.assemble` resolves them into groups):

- *pieces*: a cut through a variable (split, chunk, a slice, an axis tied to a concatenation)
  makes new variables for its parts (:meth:`Unions.piece`); each part permutes on its own;
- *nesting*: a reshape of units into ``(heads, head_dim)`` gives the heads a variable of their
  own, the *parent* of the dimensions' class; on the head_dim axis the segment
  ``(var, head_dim, 1)`` is *within* (``var`` is larger than ``n``): the dimensions of whichever
  head the head axis selects. Freezing such a segment fixes only the order inside each head;
- *stacks* (:class:`Stacked`): a leading factor of a reshape (``(3, heads, head_dim)``) whose
  slices carry labels of their own (q, k, v), taken apart by ``unbind`` or indexing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import attrs
import torch

Segment = tuple[int | None, int, int]
Label = tuple[Segment, ...] | None


MAX_SEGMENTS = 64
"""The most segments the walker follows on one axis (copies of a label, pieces made at once);
past it the axis is treated as one it cannot follow."""


@attrs.frozen
class Labels:
    """The labels of one tensor, one per axis."""

    axes: tuple[Label, ...]

    @classmethod
    def fixed(cls, ndim: int) -> Labels:
        return cls((None,) * ndim)


@attrs.frozen
class Stacked:
    """The labels of a tensor whose axis ``axis`` indexes parts with labels of their own: a fused
    projection reshaped to ``(3, heads, head_dim)`` holds q, k and v, whose units differ.
    ``parts[i]`` labels the slice ``i`` along ``axis`` (one axis fewer). Rules that do not know
    stacks see it collapsed (:func:`collapse`)."""

    axis: int
    parts: tuple[Labels, ...]


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


@attrs.frozen
class Piece:
    """Variable ``part`` is the entries ``start:stop`` of variable ``whole`` (``within``: of each
    block of ``whole`` that one unit of its parent owns, e.g. the same dimensions of every head)."""

    whole: int
    start: int
    stop: int
    part: int
    within: bool


class Unions:
    """Union-find over variables, with per-class block counts, freezing, nesting (a class whose
    entries come in blocks that a parent class permutes: the dimensions inside attention heads),
    pieces (a variable cut into consecutive parts) and tensor references."""

    def __init__(self) -> None:
        self.vars: list[Var] = []
        self.up: list[int] = []
        self.units: dict[int, int] = {}
        self.frozen: dict[int, str] = {}
        self.frozen_within: dict[int, str] = {}  # only the dimensions inside each head are fixed
        self.parent: dict[int, int] = {}  # class root -> a variable of its parent class
        self.refs: list[Ref] = []
        self.pieces: list[Piece] = []
        self._piece_memo: dict[tuple[int, int, int, bool], int] = {}
        self._uses: dict[tuple[str, int], list[tuple[int, int, int, int]]] = {}

    def new(self, size: int, *, unit: bool, origin: str, parent: int | None = None) -> int:
        self.vars.append(Var(size, unit, origin, parent))
        self.up.append(len(self.up))
        self.units[len(self.up) - 1] = size
        if parent is not None:
            self.parent[len(self.up) - 1] = parent
        return len(self.up) - 1

    def find(self, v: int) -> int:
        while self.up[v] != v:
            self.up[v] = self.up[self.up[v]]
            v = self.up[v]
        return v

    def union(self, a: int, b: int) -> None:
        """Tie two variables entry for entry (and their parents, if both are nested)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if rb < ra:
            ra, rb = rb, ra
        self.up[rb] = ra
        self.units[ra] = math.gcd(self.units.pop(ra), self.units.pop(rb))
        for frozen in (self.frozen, self.frozen_within):
            reason = frozen.get(ra) or frozen.get(rb)
            frozen.pop(rb, None)
            if reason:
                frozen[ra] = reason
        pa, pb = self.parent.pop(ra, None), self.parent.pop(rb, None)
        if pa is not None or pb is not None:
            self.parent[ra] = pa if pa is not None else pb
        if pa is not None and pb is not None:
            if self.vars[pa].size == self.vars[pb].size:
                self.union(pa, pb)
            else:
                self.freeze(ra, "joined to heads of another size")

    def coarsen(self, v: int, blocks: int) -> None:
        """Let ``v``'s class permute only ``blocks`` contiguous blocks of its entries."""
        root = self.find(v)
        self.units[root] = math.gcd(self.units[root], blocks)

    def freeze(self, v: int, reason: str, *, within: bool = False) -> None:
        """Fix ``v``'s class; ``within``: only the order inside each block its parent moves (the
        dimensions of every head stay in place, the heads may still move)."""
        (self.frozen_within if within else self.frozen).setdefault(self.find(v), reason)

    def parent_of(self, v: int) -> int | None:
        """A variable of the class that permutes ``v``'s blocks (its heads), or None."""
        return self.parent.get(self.find(v))

    def block(self, v: int) -> int:
        """Entries of ``v`` per unit of its parent (all of ``v`` if it is not nested)."""
        parent = self.parent_of(v)
        return self.vars[v].size // self.vars[parent].size if parent is not None else self.vars[v].size

    def piece(self, v: int, start: int, stop: int, *, within: bool = False) -> int:
        """The variable of entries ``start:stop`` of ``v`` (``within``: of each of its blocks)."""
        whole = self.block(v) if within else self.vars[v].size
        if start == 0 and stop == whole:
            return v
        key = (v, start, stop, within)
        if key not in self._piece_memo:
            size = (self.vars[v].size // whole) * (stop - start)
            parent = self.parent_of(v) if within else None
            part = self.new(size, unit=False, origin=self.vars[v].origin, parent=parent)
            self.pieces.append(Piece(v, start, stop, part, within))
            self._piece_memo[key] = part
        return self._piece_memo[key]

    def is_within(self, segment: Segment) -> bool:
        """Whether a segment holds one block of a nested variable (the dimensions of one head,
        whichever head the tensor's head axis selects)."""
        var, n, _ = segment
        return var is not None and self.vars[var].size != n

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


def free_like(unions: Unions, tensor: torch.Tensor) -> Labels:
    """Labels of a constant whose entries are all equal (a zero bias kept out of the state):
    every axis is invariant under any permutation, so each gets a variable of its own that ties
    to whatever it meets and acts on no tensor."""
    return Labels(tuple(None if n == 1 else ((unions.new(n, unit=False, origin=""), n, 1),)
                        for n in tensor.shape))


def is_uniform(tensor: torch.Tensor) -> bool:
    return tensor.numel() > 1 and bool((tensor == tensor.reshape(-1)[0]).all())


def _labels_in(value: Any) -> Iterator[Labels]:
    """Every :class:`Labels` in a value's labels (a :class:`Labels`, a :class:`Stacked`, or
    tuples, lists and dicts of them)."""
    if isinstance(value, Labels):
        yield value
    elif isinstance(value, Stacked):
        yield from value.parts
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _labels_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _labels_in(item)


def label_vars(value: Any) -> Iterator[int]:
    """Every variable in a value's labels (a :class:`Labels`, a :class:`Stacked` or nested
    tuples of them)."""
    for labels in _labels_in(value):
        for label in labels.axes:
            for var, _, _ in label or ():
                if var is not None:
                    yield var


def freeze_all(unions: Unions, value: Any, reason: str) -> None:
    """Freeze every variable a value's labels carry. A within-head segment freezes only the
    order inside each head: its head axis is in the same tensor, and freezing that (when the
    whole tensor is at stake) is what stops the heads."""
    for labels in _labels_in(value):
        _freeze_labels(unions, list(labels.axes), reason)


def segments_or_fixed(label: Label, size: int) -> tuple[Segment, ...]:
    return label if label is not None else ((None, size, 1),)


def normalise(segments: tuple[Segment, ...]) -> Label:
    return None if all(var is None for var, _, _ in segments) else tuple(segments)


def collapse(unions: Unions, value: Any, where: str) -> Any:
    """A :class:`Stacked` value as plain :class:`Labels`: its parts are tied axis by axis (one
    permutation for q, k and v alike: fewer symmetries, all of them exact); the stacking axis is
    fixed. Other values are returned as they are."""
    if not isinstance(value, Stacked):
        return value
    ndim = len(value.parts[0].axes)
    axes = [merge(unions, [part.axes[i] for part in value.parts], where) for i in range(ndim)]
    axes.insert(value.axis, None)
    return Labels(tuple(axes))


def _bounds(label: tuple[Segment, ...]) -> list[int]:
    out, at = [], 0
    for _, n, s in label:
        at += n * s
        out.append(at)
    return out[:-1]


def refine(unions: Unions, label: tuple[Segment, ...], bounds: set[int]) -> tuple[Segment, ...] | None:
    """``label`` cut at the entry positions ``bounds``: a cut inside a variable's segment makes
    pieces of it (:meth:`Unions.piece`); fixed runs become runs of single entries. None if a cut
    falls inside one unit (a channel flattened over positions)."""
    out: list[Segment] = []
    start = 0
    for var, n, s in label:
        end = start + n * s
        edges = [start, *sorted(b for b in bounds if start < b < end), end]
        if var is None:
            out.extend((None, b - a, 1) for a, b in itertools.pairwise(edges))
        elif len(edges) == 2:
            out.append((var, n, s))
        else:
            within = unions.is_within((var, n, s))
            if any((e - start) % s for e in edges) or (within and unions.parent_of(var) is None):
                return None
            for a, b in itertools.pairwise(edges):
                lo, hi = (a - start) // s, (b - start) // s
                out.append((unions.piece(var, lo, hi, within=within), hi - lo, s))
        start = end
    return tuple(out)


def _freeze_labels(unions: Unions, labels: list[Label], reason: str) -> None:
    """Freeze every variable of these axis labels; a within-head segment freezes only the order
    inside each head (the heads still move)."""
    for label in labels:
        for segment in label or ():
            if segment[0] is not None:
                unions.freeze(segment[0], reason, within=unions.is_within(segment))


def merge(unions: Unions, labels: list[Label], where: str) -> Label:
    """Tie axes that must be permuted together. Axes cut differently (a concatenation against
    one layer's output) are cut into common pieces first; a mismatch freezes what it touches."""
    present = [label for label in labels if label is not None]
    if not present:
        return None
    fixed_reason = (f"joined at {where} to an axis that cannot be permuted (input features, token or "
                    "spatial positions, an untracked tensor)")
    if len(present) < len(labels):
        _freeze_labels(unions, present, fixed_reason)
        return None
    first = present[0]
    if all(other == first for other in present[1:]):
        return first
    layout_reason = f"joined at {where} to an axis with a different layout (concatenation or stride)"
    if any(sum(n * s for _, n, s in label) != sum(n * s for _, n, s in first) for label in present):
        _freeze_labels(unions, present, layout_reason)
        return None
    bounds = {b for label in present for b in _bounds(label)}
    refined = [refine(unions, label, bounds) for label in present]
    if any(label is None for label in refined):
        _freeze_labels(unions, present, layout_reason)
        return None
    out: list[Segment] = []
    for column in zip(*refined):
        vars_ = [var for var, _, _ in column]
        entries = column[0][1] * column[0][2]
        if all(var is None for var in vars_):
            out.append((None, entries, 1))
        elif any(var is None for var in vars_):
            _freeze_labels(unions, [column], fixed_reason)
            out.append((None, entries, 1))
        elif any((n, s, unions.vars[v].size) != (column[0][1], column[0][2], unions.vars[column[0][0]].size)
                 for v, n, s in column):
            members = _group_broadcast(unions, column)
            if members is None:
                _freeze_labels(unions, [column], layout_reason)
                out.append((None, entries, 1))
            else:
                out.append(members)
        else:
            for var in vars_[1:]:
                unions.union(vars_[0], var)
            out.append(column[0])
    return normalise(tuple(out))


def _group_broadcast(unions: Unions, column: tuple[Segment, ...]) -> Segment | None:
    """A value per group broadcast over the group's members, tied to the members: the segment of
    the members if ``column`` holds whole variables (stride 1) nested in one parent class, and
    segments ``(group, n, block)`` of that parent, one entry per block of its children (a group
    statistic expanded back over its group: EvoNorm's ``group_std``, a GroupNorm written out).
    Only permutations that keep each group together (the parent moves whole groups, the nested
    class permutes inside each) leave such a statistic in step with its members. None if the
    column is anything else."""
    members = [seg for seg in column if seg[2] == 1 and not unions.is_within(seg)]
    if not members or any(n != members[0][1] for _, n, _ in members):
        return None
    parents = {unions.parent_of(var) for var, _, _ in members}
    if None in parents:
        return None
    groups = {unions.find(p) for p in parents if p is not None}
    block = unions.block(members[0][0])
    for var, n, s in column:
        if (var, n, s) in members:
            continue
        if (len(groups) != 1 or unions.find(var) not in groups or s != block or n * s != members[0][1]
                or unions.vars[var].size != n):
            return None
    for var, _, _ in members[1:]:
        unions.union(members[0][0], var)
    return members[0]


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
                _freeze_labels(unions, [label], f"broadcast against a larger axis at {where}")
        out.append(merge(unions, labels, where))
    return Labels(tuple(out))


def reshape(unions: Unions, labs: Labels, src: tuple[int, ...], dst: tuple[int, ...],
            where: str) -> Labels | Stacked:
    """Labels after a reshape: merging axes multiplies strides (flatten after a conv); splitting
    an axis keeps the variable on the leading part, splits units into heads and within-head
    dimensions (``(B, N, C) -> (B, N, heads, head_dim)``: the heads become a parent variable,
    the dimensions a nested one) or, for a leading factor (``(B, N, 3C) -> (B, N, 3, heads,
    head_dim)``), stacks pieces of the axis; merging heads with their dimensions undoes the
    split. Anything else freezes."""
    reason = f"reshaped in a way the walker cannot follow at {where}"
    keep_src = [i for i, n in enumerate(src) if n != 1]
    keep_dst = [j for j, n in enumerate(dst) if n != 1]
    for i, n in enumerate(src):
        if n == 1 and labs.axes[i] is not None:
            freeze_all(unions, Labels((labs.axes[i],)), reason)
    out: list[Label] = [None] * len(dst)
    stacked: tuple[list[int], list[list[Label]]] | None = None
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
        targets = [dst[k] for k in jj]
        placed = _place(unions, labels, [src[k] for k in ii], targets)
        if placed is None:
            placed = _place_by_entries(unions, labels, [src[k] for k in ii], targets)
        if placed is None and stacked is None and len(ii) == 1 and len(jj) > 1:
            parts = _stack(unions, labels[0], src[ii[0]], targets)
            if parts is not None:
                stacked = (jj, parts)
                continue
        if placed is None:
            freeze_all(unions, Labels(tuple(labels)), reason)
            continue
        for k, label in zip(jj, placed):
            out[k] = label
    if stacked is None:
        return Labels(tuple(out))
    jj, parts = stacked
    labelled = []
    for part in parts:
        axes = list(out)
        for k, label in zip(jj[1:], part):
            axes[k] = label
        del axes[jj[0]]
        labelled.append(Labels(tuple(axes)))
    return Stacked(jj[0], tuple(labelled))


def _place(unions: Unions, labels: list[Label], sizes: list[int],
           targets: list[int]) -> list[Label] | None:
    labelled = [k for k, label in enumerate(labels) if label is not None]
    if len(labelled) == 2 and len(labels) == 2 and len(targets) == 1:
        return _merge_heads(unions, labels[0], labels[1], sizes[1])
    if len(labelled) != 1:
        return None
    k = labelled[0]
    label = labels[k]
    assert label is not None
    repeat, stride = math.prod(sizes[:k]), math.prod(sizes[k + 1:])
    if len(targets) == 1:
        if repeat * len(label) > MAX_SEGMENTS:
            return None
        return [tuple((v, n, s * stride) for v, n, s in label) * repeat]
    if len(sizes) != 1:
        return None
    if len(label) == 1 and label[0][0] is not None:
        var, n, s = label[0]
        if targets[0] == n and math.prod(targets[1:]) == s:
            return [((var, n, 1),)] + [None] * (len(targets) - 1)
    if len(targets) == 2:
        return _split_heads(unions, label, targets[1])
    return None


_MAX_ENTRIES = 1 << 22


def _place_by_entries(unions: Unions, labels: list[Label], sizes: list[int],
                      targets: list[int]) -> list[Label] | None:
    """The general case of one labelled axis among fixed ones (an unfold into patches, channels
    merged with positions and split again): follow every entry. The units must land on one
    target axis, the same way for every index of the others; runs of equal units become
    segments (pieces where a run covers part of a variable)."""
    labelled = [k for k, label in enumerate(labels) if label is not None]
    if len(labelled) != 1 or math.prod(sizes) > _MAX_ENTRIES:
        return None
    k = labelled[0]
    label = labels[k]
    assert label is not None
    codes: list[int] = []  # entry of axis k -> segment index * 2**24 + unit, or -1 if fixed
    for index, (var, n, s) in enumerate(label):
        codes.extend(-1 if var is None else index * (1 << 24) + unit for unit in range(n) for _ in range(s))
    shape = [1] * len(sizes)
    shape[k] = sizes[k]
    grid = torch.tensor(codes, dtype=torch.int64).reshape(shape).expand(sizes).reshape(targets)
    for j, size in enumerate(targets):
        rows = grid.movedim(j, 0).reshape(size, -1)
        if size > 1 and bool((rows == rows[:, :1]).all()) and bool((rows != rows[:1]).any()):
            break
    else:
        return None
    along = rows[:, 0].tolist()
    runs: list[list[int]] = []  # [code, length]
    for code in along:
        if runs and runs[-1][0] == code:
            runs[-1][1] += 1
        else:
            runs.append([code, 1])
    segments: list[Segment] = []
    r = 0
    while r < len(runs):
        code, length = runs[r]
        if code < 0:
            segments.append((None, length, 1))
            r += 1
            continue
        index, unit = divmod(code, 1 << 24)
        count = 1
        while (r + count < len(runs) and runs[r + count][1] == length
               and runs[r + count][0] == code + count):
            count += 1
        var, n, _ = label[index]
        segments.append((unions.piece(var, unit, unit + count, within=unions.is_within((var, n, 1))),
                         count, length))
        r += count
    out: list[Label] = [None] * len(targets)
    out[j] = normalise(tuple(segments))
    return out


def _split_heads(unions: Unions, label: tuple[Segment, ...], dim: int) -> list[Label] | None:
    """``(heads * dim) -> (heads, dim)``: each segment's units become a parent variable (its
    heads) and a nested variable tied to them (the dimensions inside each head). The dimension
    axis is one label for every head, so all segments must be the same size."""
    sizes = {n for _, n, _ in label}
    if (len(sizes) != 1 or any(var is None or s != 1 or n % dim or unions.is_within((var, n, s))
                               for var, n, s in label)):
        return None
    heads: list[Segment] = []
    within = None
    for var, n, _ in label:
        parent = unions.parent_of(var)
        if parent is not None and unions.vars[parent].size != n // dim:
            return None
        head = unions.new(n // dim, unit=True, origin=f"{unions.vars[var].origin}.heads")
        nested = unions.new(n, unit=False, origin=unions.vars[var].origin, parent=head)
        unions.union(nested, var)
        if within is not None:
            unions.union(within, nested)
        within = nested
        heads.append((head, n // dim, 1))
    return [tuple(heads), ((within, dim, 1),)]


def _merge_heads(unions: Unions, heads: Label, within: Label, dim: int) -> list[Label] | None:
    """``(heads, dim) -> (heads * dim)``: undo :func:`_split_heads` when the dimension axis holds
    the nested variable of the head axis's class."""
    assert heads is not None and within is not None
    if len(within) != 1 or not unions.is_within(within[0]) or within[0][2] != 1:
        return None
    var = within[0][0]
    parent = unions.parent_of(var)
    if parent is None or any(h is None or s != 1 or unions.find(h) != unions.find(parent)
                             or unions.vars[var].size != n * dim for h, n, s in heads):
        return None
    return [tuple((var, n * dim, 1) for _, n, _ in heads)]


def _stack(unions: Unions, label: Label, entries: int, targets: list[int]) -> list[list[Label]] | None:
    """A leading factor of a split axis as a stack of parts, each placed on the other targets."""
    count = targets[0]
    cut = split(unions, label, [entries // count] * count)
    if cut is None:
        return None
    parts = []
    for part in cut:
        if part is None:
            parts.append([None] * (len(targets) - 1))
            continue
        placed = [part] if len(targets) == 2 else _place(unions, [part], [entries // count], targets[1:])
        if placed is None:
            return None
        parts.append(placed)
    return parts


def split(unions: Unions, label: Label, sizes: list[int]) -> list[Label] | None:
    """Cut an axis label into consecutive parts of ``sizes`` entries; a cut through a variable's
    segment makes pieces of it. None if a cut falls inside one unit."""
    if label is None:
        return [None] * len(sizes)
    bounds, at = set(), 0
    for size in sizes[:-1]:
        at += size
        bounds.add(at)
    refined = refine(unions, label, bounds)
    if refined is None:
        return None
    parts: list[Label] = []
    segments = list(refined)
    for size in sizes:
        taken: list[Segment] = []
        while size > 0 and segments:
            var, n, s = segments.pop(0)
            taken.append((var, n, s))
            size -= n * s
        if size:
            return None
        parts.append(normalise(tuple(taken)))
    return parts


def check_nesting(unions: Unions, value: Any, where: str) -> None:
    """A within-head segment means "the dimensions of whichever head the head axis selects": in a
    tensor without an axis of its heads (a head picked by index, heads summed away) it has no
    meaning, so it freezes."""
    if isinstance(value, Stacked):
        for part in value.parts:
            check_nesting(unions, part, where)
        return
    if isinstance(value, (tuple, list)):
        for item in value:
            check_nesting(unions, item, where)
        return
    if not isinstance(value, Labels):
        return
    within = [seg[0] for label in value.axes for seg in label or () if unions.is_within(seg)]
    if not within:
        return
    present = {unions.find(var) for var in label_vars(value)}
    for var in within:
        parent = unions.parent_of(var)
        if parent is None or unions.find(parent) not in present:
            unions.freeze(var, f"within-head dimensions separated from their heads at {where}", within=True)
