"""Turn the walker's union-find classes into the groups of a :class:`PermutationSpec`.

A class of variables (:mod:`ridgeline.core.symmetry.labels`) is one permutation, unless it was
cut: a split, a chunk or a slice through a variable, or an axis tied to a concatenation, makes
*pieces* (``Unions.pieces``: variable ``part`` is the entries ``start:stop`` of ``whole``). Then:

1. **Cuts.** Each class is cut where any of its variables was; a cut of a piece is a cut of its
   whole at the matching place and back, until nothing changes (a cut must fall between units
   and between the blocks of a grouped layer, else the class freezes).
2. **Atoms.** The stretches between cuts are atoms; the atom of a piece and the stretch of its
   whole that it is are one permutation (a second union-find, over atoms). Each class of atoms
   holding a hidden unit becomes a group: a block structure (CSP's halves, Res2Net's scales,
   q, k and v of a fused projection, the two halves of a gated MLP).
3. **Nesting.** A class whose entries come in blocks that a parent permutes (the dimensions of
   attention heads) becomes a nested group; every tensor axis it acts on also gets the parent's
   block reference. A nested class that is cut (q/k/v inside each head, as in EfficientViT's
   LiteMLA) or whose parent is frozen or cut cannot be nested: its parent freezes and the class
   is cut into one piece per head, each its own group.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from fractions import Fraction

import attrs

from ridgeline.core.symmetry.labels import Unions
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec


@attrs.define
class _Relation:
    """``part[plo:phi] == whole[lo:hi]`` (fractions of each class's entries)."""

    whole: int
    lo: Fraction
    hi: Fraction
    part: int
    plo: Fraction = Fraction(0)
    phi: Fraction = Fraction(1)


class _Classes:
    """The classes of a finished walk with their cuts, nesting and freezing (step 1 and 3)."""

    def __init__(self, unions: Unions, keep: frozenset[int] = frozenset()) -> None:
        self.u = u = unions
        self.root = [u.find(v) for v in range(len(u.vars))]
        self.members: dict[int, list[int]] = defaultdict(list)
        for v, r in enumerate(self.root):
            self.members[r].append(v)
        self.frozen = dict(u.frozen)
        self.frozen_within = {r: reason for r, reason in u.frozen_within.items() if r not in u.frozen}
        self.units = dict(u.units)
        self.parent = {r: u.find(p) for r, p in u.parent.items()}
        self.children: dict[int, list[int]] = defaultdict(list)
        for child, parent in self.parent.items():
            self.children[parent].append(child)
        self.cuts: dict[int, set[Fraction]] = defaultdict(set)
        self.unnested: set[int] = set()
        self.relations: list[_Relation] = []
        within = []
        for piece in u.pieces:
            whole, part = self.root[piece.whole], self.root[piece.part]
            if piece.within and self.parent.get(whole) in keep:
                reason = ("its heads' dimensions are cut into pieces (q, k and v inside each head) "
                          "that cannot move on their own")
                for r in (whole, part):
                    if r not in self.frozen:
                        self.frozen_within.setdefault(r, reason)
                continue
            if piece.within:
                within.append(piece)
                self._unnest(self.parent.get(whole), "the dimensions inside each head are cut into "
                             "pieces (q, k and v): they permute per head, the heads stay in place")
                continue
            size = u.vars[piece.whole].size
            self.relations.append(_Relation(whole, Fraction(piece.start, size), Fraction(piece.stop, size),
                                            part))
        for piece in within:  # one relation per head once unnested
            whole, part = self.root[piece.whole], self.root[piece.part]
            heads = u.vars[piece.whole].size // u.block(piece.whole)
            block = u.block(piece.whole)
            for h in range(heads):
                self.relations.append(_Relation(
                    whole, Fraction(h * block + piece.start, heads * block),
                    Fraction(h * block + piece.stop, heads * block), part, Fraction(h, heads),
                    Fraction(h + 1, heads)))
        self._settle()

    # -- cuts and nesting ---------------------------------------------------------------
    def _unnest(self, parent: int | None, reason: str) -> bool:
        """Freeze ``parent`` (heads) and cut each of its children into one piece per head."""
        if parent is None:
            return False
        changed = parent not in self.frozen
        self.frozen.setdefault(parent, reason)
        heads = self.u.vars[parent].size
        for child in self.children[parent]:
            if child not in self.unnested:
                self.unnested.add(child)
                for h in range(1, heads):
                    self._add_cut(child, Fraction(h, heads))
                changed = True
        return changed

    def _add_cut(self, r: int, at: Fraction) -> bool:
        if at <= 0 or at >= 1 or at in self.cuts[r]:
            return False
        if self.units[r] % at.denominator:
            self.frozen.setdefault(r, "cut inside a unit or a block of grouped channels")
            return False
        self.cuts[r].add(at)
        return True

    def _settle(self) -> None:
        changed = True
        while changed:
            changed = False
            for child, parent in self.parent.items():
                if child in self.unnested:
                    continue
                if self.cuts[child] or self.cuts[parent] or parent in self.frozen or child in self.frozen:
                    reason = ("a head is taken on its own (indexed, unbound or sliced): each head's "
                              "dimensions permute on their own, the heads stay in place"
                              if self.cuts[child] or self.cuts[parent]
                              else self.frozen.get(parent) or self.frozen[child])
                    changed |= self._unnest(parent, reason)
            for rel in self.relations:
                whole_cuts = {rel.lo, rel.hi} | self.cuts[rel.whole]
                part_cuts = {rel.plo, rel.phi} | self.cuts[rel.part]
                for at in whole_cuts:
                    if rel.lo <= at <= rel.hi:
                        changed |= self._add_cut(rel.part, rel.plo + (at - rel.lo) / (rel.hi - rel.lo)
                                                 * (rel.phi - rel.plo))
                for at in part_cuts:
                    if rel.plo <= at <= rel.phi:
                        changed |= self._add_cut(rel.whole, rel.lo + (at - rel.plo) / (rel.phi - rel.plo)
                                                 * (rel.hi - rel.lo))
                if (rel.whole in self.frozen and rel.part not in self.frozen
                        and (rel.plo, rel.phi) == (0, 1)):
                    self.frozen[rel.part] = self.frozen[rel.whole]
                    changed = True

    def edges(self, r: int) -> list[Fraction]:
        return [Fraction(0), *sorted(self.cuts[r]), Fraction(1)]


@attrs.define
class _Group:
    atoms: list[tuple[int, Fraction, Fraction]] = attrs.Factory(list)
    reason: str | None = None
    within: bool = False  # the reason fixes only the order inside each parent block
    units: int = 0
    parent: int | None = None  # index of the parent group
    first: tuple[int, int] | None = None  # (first unit variable, index of its atom)
    refs: dict[AxisRef, None] = attrs.Factory(dict)


def assemble(unions: Unions) -> PermutationSpec:
    """Groups (named after the layer that created their first unit, in forward order), their
    axes, nesting, and frozen groups with reasons and sizes.

    Heads whose dimensions are cut (q, k, v inside each head) are first unnested: each head's
    pieces become groups of their own. Where none of those pieces could move anyway (a grouped
    convolution fixes the order inside each block), the heads are kept instead, moving the
    pieces with them."""
    c = _Classes(unions)
    groups = _atom_groups(unions, c)
    stuck = _parents_with_only_frozen_children(c, groups)
    if stuck:
        c = _Classes(unions, keep=frozenset(stuck))
        groups = _atom_groups(unions, c)
    return _spec(unions, c, groups)


def _parents_with_only_frozen_children(c: _Classes, groups: dict[int, _Group]) -> set[int]:
    frozen_children: dict[int, bool] = {}
    for group in groups.values():
        for r, _, _ in group.atoms:
            if r in c.unnested and r in c.parent:
                parent = c.parent[r]
                stuck = group.reason is not None or group.units <= 1
                frozen_children[parent] = frozen_children.get(parent, True) and stuck
    return {p for p, frozen in frozen_children.items() if frozen and p not in c.u.frozen}


def _atom_groups(u: Unions, c: _Classes) -> dict[int, _Group]:
    """Step 2: the atoms of every class, united along the pieces, as groups."""
    index: dict[tuple[int, int], int] = {}
    atoms: list[tuple[int, Fraction, Fraction]] = []
    for r in c.members:
        edges = c.edges(r)
        for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
            index[(r, i)] = len(atoms)
            atoms.append((r, lo, hi))
    up = list(range(len(atoms)))

    def find(a: int) -> int:
        while up[a] != a:
            up[a] = up[up[a]]
            a = up[a]
        return a

    def atom_at(r: int, at: Fraction) -> int:
        edges = c.edges(r)
        i = max(k for k, e in enumerate(edges[:-1]) if e <= at)
        return index[(r, i)]

    for rel in c.relations:
        edges = c.edges(rel.part)
        for lo in edges[:-1]:
            if rel.plo <= lo < rel.phi:
                mapped = rel.lo + (lo - rel.plo) / (rel.phi - rel.plo) * (rel.hi - rel.lo)
                a, b = find(atom_at(rel.part, lo)), find(atom_at(rel.whole, mapped))
                up[max(a, b)] = min(a, b)
    groups: dict[int, _Group] = {}
    for a, (r, lo, hi) in enumerate(atoms):
        group = groups.setdefault(find(a), _Group())
        group.atoms.append((r, lo, hi))
    for group in groups.values():
        within = True
        for r, lo, hi in group.atoms:
            blocks = c.units[r] * (hi - lo)
            if group.reason is None or within:
                full = c.frozen.get(r) or (None if blocks.denominator == 1 else
                                           "cut inside a block of grouped channels")
                if full:
                    group.reason, within = full, False
                elif group.reason is None and r in c.frozen_within:
                    group.reason = c.frozen_within[r]
            if blocks.denominator == 1:
                group.units = math.gcd(group.units, int(blocks))
            units = [v for v in c.members[r] if u.vars[v].unit]
            if units and (group.first is None or min(units) < group.first[0]):
                group.first = (min(units), 0)
        group.within = within and group.reason is not None
    root_group = {r: find(index[(r, 0)]) for r in c.members if not c.cuts[r]}
    for group in groups.values():
        nested = [c.parent[r] for r, _, _ in group.atoms if r in c.parent and r not in c.unnested]
        parents = {root_group.get(p) for p in nested}
        if len(parents) > 1 or None in parents:
            group.reason, group.within = group.reason or "its heads are joined to other heads", False
        elif parents:
            group.parent = parents.pop()
    return groups


def _spec(u: Unions, c: _Classes, groups: dict[int, _Group]) -> PermutationSpec:
    refs_of: dict[int, list] = defaultdict(list)
    for ref in u.refs:
        refs_of[c.root[ref.var]].append(ref)
    live = {k: g for k, g in groups.items() if g.first is not None}
    parents = {g.parent for g in live.values() if g.parent is not None} | {
        k for k, g in live.items() if any(r in c.children for r, _, _ in g.atoms)}
    ordered: list[int] = []  # forward order, parents before their children
    for k in sorted(live, key=lambda k: live[k].first[0]):
        p = live[k].parent
        if p is not None and p in live and p not in ordered:
            ordered.append(p)
        if k not in ordered:
            ordered.append(k)
    names: dict[int, str] = {}
    spec_groups, axes, frozen, frozen_sizes, unit_sizes, nested = {}, {}, {}, {}, {}, {}
    for k in ordered:
        group = live[k]
        var = group.first[0]
        r = c.root[var]
        spans = sorted((lo, hi) for rr, lo, hi in group.atoms if rr == r)
        size = u.vars[var].size
        channels = int(sum(size * (hi - lo) for lo, hi in spans))  # hidden units the group moves
        name = u.vars[var].origin or "input"
        if spans != [(0, 1)]:
            name += f"[{int(size * spans[0][0])}:{int(size * spans[0][1])}]"
        name = names[k] = _unique(name, names.values())
        reason = group.reason
        if reason is None and group.units == 1:
            reason = "only one block of units is free to move (grouped layers around it)"
        parent = group.parent
        if reason is None and parent is not None and (names.get(parent) not in spec_groups
                                                      or group.units % spec_groups[names[parent]]):
            reason = f"its parent group {names.get(parent)!r} is frozen or does not fit its blocks"
        if parent is not None and names.get(parent) in spec_groups:
            _add_parent_refs(u, refs_of, group, axes, names[parent], spec_groups[names[parent]])
            if reason is not None and group.within:  # its blocks move with the heads
                unit_sizes[names[parent]] = unit_sizes.get(names[parent], 0) + channels
                frozen[name], frozen_sizes[name] = f"moves only with its heads: {reason}", 0
                continue
        if reason is not None:
            if reason.startswith("network output"):
                continue  # the output layers (a head, or heads averaged): not hidden units
            frozen[name] = reason
            frozen_sizes[name] = 0 if k in parents else channels
            continue
        refs: dict[AxisRef, None] = {}
        for rr, alo, ahi in group.atoms:
            for ref in refs_of[rr]:
                n = u.vars[ref.var].size
                block = n * (ahi - alo) / group.units
                if block.denominator != 1 or (n * alo).denominator != 1:
                    continue
                refs[AxisRef(ref.key, ref.axis, ref.offset + int(n * alo) * ref.stride,
                             ref.stride * int(block))] = None
        if not refs and k not in parents:
            continue
        spec_groups[name], axes[name] = group.units, tuple(refs)
        if channels != group.units and k not in parents:
            unit_sizes[name] = channels
        if parent is not None:
            nested[name] = names[parent]
    for group in groups.values():  # pieces without units of their own still move with their heads
        if group.first is None and group.parent is not None and names.get(group.parent) in spec_groups:
            _add_parent_refs(u, refs_of, group, axes, names[group.parent], spec_groups[names[group.parent]])
    for name in [g for g, refs in axes.items() if not refs]:  # a parent no child acts through
        del spec_groups[name], axes[name]
        unit_sizes.pop(name, None)
    return PermutationSpec(spec_groups, axes, frozen=frozen, frozen_sizes=frozen_sizes,
                           unit_sizes=unit_sizes, nested=nested)


def _add_parent_refs(u: Unions, refs_of: dict[int, list], group: _Group, axes: dict,
                     parent: str, heads: int) -> None:
    """The parent (heads) moves whole blocks of every axis its nested child acts on, whether or
    not the order inside the blocks may change."""
    refs = dict.fromkeys(axes[parent])
    for rr, lo, hi in group.atoms:
        for ref in refs_of[rr]:
            n = u.vars[ref.var].size
            block = n * (hi - lo) / heads
            if block.denominator == 1 and (n * lo).denominator == 1:
                refs[AxisRef(ref.key, ref.axis, ref.offset + int(n * lo) * ref.stride,
                             ref.stride * int(block))] = None
    axes[parent] = tuple(refs)


def _unique(name: str, taken) -> str:
    taken = set(taken)
    if name not in taken:
        return name
    i = 2
    while f"{name}#{i}" in taken:
        i += 1
    return f"{name}#{i}"
