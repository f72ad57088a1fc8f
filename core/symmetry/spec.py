"""PermutationSpec: the permutation symmetries of a network's hidden units.

A spec names permutation *groups* (name -> number of units) and, for each, the tensor axes
it acts on. Permuting every axis of a group by the same permutation leaves the network's
function unchanged. An :class:`AxisRef` can act on a slice of an axis (concatenations, fused
``qkv`` projections) and on blocks of consecutive entries (a channel of a conv flattened into
``stride`` features). Hand-written and traced specs are the same type.

Nested groups (attention): a group listed in ``nested`` as ``child -> parent`` has
``size(child) = size(parent) * block`` and only permutes entries inside each parent unit's block
of ``block`` entries (a block-diagonal permutation: within-head query/key or value dimensions);
it is applied after its parent, so block ``h`` of the child acts on whatever the parent moved
into slot ``h``.

Tied tensors (one tensor under several names of the state: a shared block, tied embeddings) are
acted on once: groups refer only to a tensor's canonical name, ``ties`` lists its other names, and
:meth:`apply` copies the permuted tensor to every name, so they stay equal and an aligner's
objective counts the tensor once.

A PermutationSpec is one kind of :class:`~ridgeline.core.symmetry.symmetry.Symmetry`: its
transforms are the groups' permutations, and ``check``/``verify`` come from the interface.

Convention: ``apply(state, perms)`` returns a state whose unit ``i`` of group ``g`` is unit
``perms[g][i]`` of the input, on every axis of the group. To align B to A, an aligner returns
``perms`` such that ``apply(B, perms)`` matches A unit for unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch

from ridgeline.core.errors import SpecError
from ridgeline.core.state import State, Ties
from ridgeline.core.symmetry.symmetry import SpecCheck, Symmetry

__all__ = ["AxisRef", "Perms", "PermutationSpec", "SpecCheck"]

Perms = dict[str, torch.Tensor]


@attrs.frozen
class AxisRef:
    """Where a group acts: axis ``axis`` of tensor ``key``, entries ``offset`` to
    ``offset + size * stride``, each unit owning ``stride`` consecutive entries."""

    key: str
    axis: int
    offset: int = 0
    stride: int = 1


def _as_ref(value: Any) -> AxisRef:
    if isinstance(value, AxisRef):
        return value
    return AxisRef(*value)


def axis_refs(value: Any) -> tuple[AxisRef, ...]:
    """``value``'s entries as :class:`AxisRef` (tuples ``(key, axis[, offset[, stride]])`` converted)."""
    return tuple(_as_ref(v) for v in value)


@attrs.frozen
class PermutationSpec(Symmetry):
    """Permutation groups, the axes each acts on, and groups left frozen (with reasons).

    ``groups``: name -> size; ``axes``: name -> tuple of :class:`AxisRef` (or
    ``(key, axis[, offset, stride])`` tuples); ``frozen``: name -> reason, for units that
    cannot be permuted (reported, never acted on). Groups are applied in the order given.
    ``frozen_sizes``: frozen group -> hidden units it holds (for :meth:`coverage`);
    ``unit_sizes``: group -> hidden units it moves when that differs from its size (a group
    permuting blocks of channels); ``nested``: child group -> parent group (see module doc);
    ``ties``: the module's tied names (:class:`~ridgeline.core.state.Ties`, or canonical name ->
    aliases): groups refer to canonical names only and :meth:`apply` keeps every alias equal.
    """

    groups: Mapping[str, int] = attrs.field(converter=dict)
    axes: Mapping[str, tuple[AxisRef, ...]] = attrs.field(
        converter=lambda d: {g: axis_refs(r) for g, r in d.items()}
    )
    frozen: Mapping[str, str] = attrs.field(factory=dict, converter=dict)
    frozen_sizes: Mapping[str, int] = attrs.field(factory=dict, converter=dict)
    unit_sizes: Mapping[str, int] = attrs.field(factory=dict, converter=dict)
    nested: Mapping[str, str] = attrs.field(factory=dict, converter=dict)
    ties: Ties = attrs.field(factory=Ties, converter=lambda t: t if isinstance(t, Ties) else Ties(t))

    def __attrs_post_init__(self) -> None:
        if set(self.groups) != set(self.axes):
            raise SpecError(
                "spec groups and axes disagree: "
                f"groups without axes {sorted(set(self.groups) - set(self.axes))}, "
                f"axes without a group {sorted(set(self.axes) - set(self.groups))}"
            )
        for group, refs in self.axes.items():
            if not refs:
                raise SpecError(f"permutation group {group!r} acts on no tensor")
        order = list(self.groups)
        for child, parent in self.nested.items():
            if child not in self.groups or parent not in self.groups:
                raise SpecError(f"nested group {child!r} -> {parent!r}: both must be groups of the spec")
            if self.groups[child] % self.groups[parent]:
                raise SpecError(
                    f"nested group {child!r} (size {self.groups[child]}) is not a whole number of "
                    f"blocks of its parent {parent!r} (size {self.groups[parent]})"
                )
            if order.index(parent) > order.index(child):
                raise SpecError(f"nested group {child!r} must come after its parent {parent!r}")
        aliases = self.ties.aliases
        for group, refs in self.axes.items():
            for ref in refs:
                if ref.key in aliases:
                    raise SpecError(f"group {group!r} acts on {ref.key!r}, another name of the tied "
                                    f"tensor {aliases[ref.key]!r}: refer to {aliases[ref.key]!r}")

    # -- structure --------------------------------------------------------------------
    @property
    def keys(self) -> set[str]:
        """Every tensor key some group acts on."""
        return {ref.key for refs in self.axes.values() for ref in refs}

    def refs_of_key(self, key: str) -> list[tuple[str, AxisRef]]:
        return [(g, r) for g, refs in self.axes.items() for r in refs if r.key == key]

    def units(self) -> int:
        """Total number of permutable units (sum of group sizes)."""
        return sum(self.groups.values())

    def block(self, group: str) -> int:
        """Entries of a nested group inside one unit of its parent (1 for other groups)."""
        parent = self.nested.get(group)
        return self.groups[group] // self.groups[parent] if parent else 1

    def without_nested(self) -> PermutationSpec:
        """The same spec with nested (within-head) groups dropped: a smaller symmetry group that
        aligners which solve each group independently can use safely."""
        keep = [g for g in self.groups if g not in self.nested]
        return PermutationSpec({g: self.groups[g] for g in keep}, {g: self.axes[g] for g in keep},
                               frozen=self.frozen, frozen_sizes=self.frozen_sizes,
                               unit_sizes={g: n for g, n in self.unit_sizes.items() if g in keep},
                               ties=self.ties)

    def hidden_units(self) -> int:
        """Hidden units the free groups move. A nesting parent adds only ``unit_sizes[parent]``:
        the units of children whose order inside each block is fixed, which move only in blocks
        with it (as a block group's channels do)."""
        parents = set(self.nested.values())
        return sum(self.unit_sizes.get(g, 0 if g in parents else n) for g, n in self.groups.items())

    def coverage(self, frozen_sizes: Mapping[str, int] | None = None) -> float:
        """Permutable hidden units / all hidden units (permutable + frozen)."""
        free = self.hidden_units()
        frozen = sum((self.frozen_sizes if frozen_sizes is None else frozen_sizes).values())
        total = free + frozen
        return free / total if total else 0.0

    def validate(self, state: Mapping[str, torch.Tensor]) -> None:
        """Raise :class:`SpecError` if a referenced tensor is missing or too small."""
        for group, refs in self.axes.items():
            size = self.groups[group]
            for ref in refs:
                if ref.key not in state:
                    raise SpecError(f"group {group!r} refers to tensor {ref.key!r}, absent from the state")
                shape = tuple(state[ref.key].shape)
                if ref.axis >= len(shape):
                    raise SpecError(
                        f"group {group!r} acts on axis {ref.axis} of {ref.key!r}, shape {shape}"
                    )
                end = ref.offset + size * ref.stride
                if end > shape[ref.axis]:
                    raise SpecError(
                        f"group {group!r} (size {size}, stride {ref.stride}, offset {ref.offset}) "
                        f"needs {end} entries on axis {ref.axis} of {ref.key!r}, shape {shape}"
                    )

    # -- permutations -----------------------------------------------------------------
    def identity(self, device: torch.device | str = "cpu") -> Perms:
        return {g: torch.arange(n, device=device) for g, n in self.groups.items()}

    def random(self, generator: torch.Generator | None = None) -> Perms:
        """A uniformly random permutation per group (block-diagonal for nested groups)."""
        perms = {}
        for g, n in self.groups.items():
            block = self.block(g)
            if block == 1:
                perms[g] = torch.randperm(n, generator=generator)
                continue
            perms[g] = torch.cat([b * block + torch.randperm(block, generator=generator)
                                  for b in range(n // block)])
        return perms

    def invert(self, perms: Mapping[str, torch.Tensor]) -> Perms:
        """The permutations that undo ``perms`` (``apply(apply(s, p), invert(p)) == s``)."""
        out = {g: torch.argsort(p) for g, p in perms.items()}
        for child, parent in self.nested.items():
            if child in perms and parent in perms:
                within, base = self._within(child, perms[child])
                # block h of the inverse undoes the block that the parent moved into slot h
                out[child] = (torch.argsort(within, dim=1)[out[parent]] + base).reshape(-1)
        return out

    def compose(self, first: Mapping[str, torch.Tensor], then: Mapping[str, torch.Tensor]) -> Perms:
        """The permutations equal to applying ``first`` and then ``then``."""
        out = {g: first[g][then[g]] for g in first}
        for child, parent in self.nested.items():
            if child in first and child in then and parent in then:
                t1, base = self._within(child, first[child])
                t2, _ = self._within(child, then[child])
                out[child] = (torch.gather(t1[then[parent]], 1, t2) + base).reshape(-1)
        return out

    def _within(self, child: str, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A nested group's permutation as one row per parent unit (positions inside the block)."""
        block = self.block(child)
        base = (torch.arange(perm.numel() // block, device=perm.device) * block)[:, None]
        return perm.reshape(-1, block) - base, base

    def permute_axis(self, tensor: torch.Tensor, ref: AxisRef, perm: torch.Tensor) -> torch.Tensor:
        """``tensor`` with the group's units along ``ref`` reordered by ``perm``."""
        return torch.index_select(tensor, ref.axis, self.axis_index(ref, perm, tensor.shape[ref.axis],
                                                                    tensor.device))

    @staticmethod
    def axis_index(ref: AxisRef, perm: torch.Tensor, full: int, device: torch.device | str) -> torch.Tensor:
        """The index along ``ref``'s whole axis (``full`` entries) that reorders its units by
        ``perm`` and leaves the other entries in place."""
        n = perm.numel()
        index = (perm.to(device)[:, None] * ref.stride
                 + torch.arange(ref.stride, device=device)[None, :]).reshape(-1) + ref.offset
        if ref.offset or n * ref.stride != full:
            index = torch.cat([torch.arange(ref.offset, device=device), index,
                               torch.arange(ref.offset + n * ref.stride, full, device=device)])
        return index

    def apply(self, state: Mapping[str, torch.Tensor], perms: Mapping[str, torch.Tensor],
              skip: tuple[str, AxisRef] | None = None) -> State:
        """A new state with every group's permutation applied (``skip``: leave one axis). The
        groups act in the order given; those acting on the same axis of a tensor are composed
        into one index first, so each axis of each tensor is copied once; the aliases of a
        permuted tied tensor take its new value."""
        indices: dict[tuple[str, int], torch.Tensor] = {}
        for group, refs in self.axes.items():
            if group not in perms:
                continue
            for ref in refs:
                if skip is not None and skip == (group, ref):
                    continue
                tensor = state[ref.key]
                index = self.axis_index(ref, perms[group], tensor.shape[ref.axis], tensor.device)
                before = indices.get((ref.key, ref.axis))
                indices[(ref.key, ref.axis)] = index if before is None else before[index]
        out = dict(state)
        for (key, axis), index in indices.items():
            out[key] = torch.index_select(out[key], axis, index)
        return self.ties.retie(out, {key for key, _ in indices}) if self.ties else out

    def unit_view(self, tensor: torch.Tensor, ref: AxisRef, size: int) -> torch.Tensor:
        """The units of ``ref`` as rows: shape (size, everything else)."""
        part = tensor.narrow(ref.axis, ref.offset, size * ref.stride)
        part = torch.movedim(part, ref.axis, 0)
        return part.reshape(size, -1)

    def describe(self) -> list[dict[str, Any]]:
        """One row per group: kind, name, size and the tensors it acts on."""
        return [
            {"kind": self._kind(g), "component": g, "group": g, "size": n,
             "tensors": [f"{r.key}[{r.axis}]" for r in self.axes[g]],
             **({"within": self.nested[g]} if g in self.nested else {})}
            for g, n in self.groups.items()
        ]

    # -- the Symmetry interface (ridgeline.core.symmetry.symmetry) ----------------------
    @property
    def components(self) -> tuple[str, ...]:
        """A transform's entries are the groups' permutations."""
        return tuple(self.groups)

    def permutations(self) -> PermutationSpec:
        return self

    def _kind(self, group: str) -> str:
        if group in self.nested:
            return "permutation within blocks"
        return "block permutation" if group in set(self.nested.values()) else "permutation"

    def kinds(self) -> dict[str, str]:
        """``permutation`` (hidden units), ``block permutation`` (whole blocks: attention heads,
        experts) and ``permutation within blocks`` (the units inside each block)."""
        found: dict[str, list[str]] = {}
        for group in self.groups:
            found.setdefault(self._kind(group), []).append(group)
        return {kind: f"{len(groups)} group{'s' * (len(groups) != 1)}, "
                      f"{sum(self.groups[g] for g in groups)} units"
                for kind, groups in found.items()}
