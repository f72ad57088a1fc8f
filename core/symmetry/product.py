"""SymmetryProduct: several symmetries of one network that commute, acting together.

A model with more than one kind of symmetry declares them as a product: the permutations of a
residual stream together with the experts of each mixture-of-experts layer, or the hidden units of
a feature extractor together with the tree ensemble it feeds. A transform of the product is the
union of its parts' transforms (component names must differ); ``apply`` applies the parts in
order. The parts must commute — act on different tensors, or on different axes of a tensor
without depending on each other's index (a residual permutation on a weight's input axis and an
expert permutation on its output axis) — so a transform inverts part by part and aligners may
search the parts one after another. :meth:`SymmetryProduct.check` verifies that on the network:
parts that do not commute fail it with a note naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import torch
from torch import nn

from ridgeline.core.errors import SpecError
from ridgeline.core.state import State
from ridgeline.core.symmetry.spec import PermutationSpec
from ridgeline.core.symmetry.symmetry import SpecCheck, Symmetry, Transform, require_components


def merge_specs(specs: Sequence[PermutationSpec]) -> PermutationSpec:
    """One :class:`PermutationSpec` holding the groups of several (group names must differ)."""
    groups: dict[str, int] = {}
    fields: dict[str, dict[str, Any]] = {f: {} for f in ("axes", "frozen", "frozen_sizes", "unit_sizes",
                                                         "nested")}
    for spec in specs:
        clash = sorted(set(groups) & set(spec.groups))
        if clash:
            raise SpecError(f"permutation groups {clash} appear in two parts of a symmetry product")
        groups.update(spec.groups)
        for name, values in fields.items():
            values.update(getattr(spec, name))
    return PermutationSpec(groups, fields["axes"], frozen=fields["frozen"],
                           frozen_sizes=fields["frozen_sizes"], unit_sizes=fields["unit_sizes"],
                           nested=fields["nested"])


def _parts(value: Sequence[Symmetry]) -> tuple[Symmetry, ...]:
    parts = tuple(value)
    if not parts:
        raise SpecError("a symmetry product needs at least one part")
    seen: dict[str, int] = {}
    for index, part in enumerate(parts):
        if not isinstance(part, Symmetry):
            raise SpecError(f"part {index} of a symmetry product is a {type(part).__name__}, not a Symmetry")
        for name in part.components:
            if name in seen:
                raise SpecError(f"component {name!r} appears in parts {seen[name]} and {index} of a "
                                "symmetry product; name them apart")
            seen[name] = index
    return parts


@attrs.frozen
class SymmetryProduct(Symmetry):
    """Commuting symmetries acting together (see the module docstring); ``parts`` in order."""

    parts: tuple[Symmetry, ...] = attrs.field(converter=_parts)

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(name for part in self.parts for name in part.components)

    @property
    def keys(self) -> set[str]:
        return set().union(*(part.keys for part in self.parts))

    def _split(self, transform: Mapping[str, torch.Tensor]) -> list[Transform]:
        require_components(self, transform)
        return [{n: transform[n] for n in part.components if n in transform} for part in self.parts]

    def identity(self, device: torch.device | str = "cpu") -> Transform:
        return {k: v for part in self.parts for k, v in part.identity(device).items()}

    def random(self, generator: torch.Generator | None = None) -> Transform:
        return {k: v for part in self.parts for k, v in part.random(generator).items()}

    def invert(self, transform: Mapping[str, torch.Tensor]) -> Transform:
        """Part by part (the parts commute)."""
        return {k: v for part, own in zip(self.parts, self._split(transform))
                for k, v in part.invert(own).items()}

    def apply(self, state: Mapping[str, torch.Tensor], transform: Mapping[str, torch.Tensor]) -> State:
        out = dict(state)
        for part, own in zip(self.parts, self._split(transform)):
            if own:
                out = part.apply(out, own)
        return out

    def validate(self, state: Mapping[str, torch.Tensor]) -> None:
        for part in self.parts:
            part.validate(state)

    def kinds(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in self.parts:
            for kind, summary in part.kinds().items():
                out[kind] = f"{out[kind]}; {summary}" if kind in out else summary
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [row for part in self.parts for row in part.describe()]

    def permutations(self) -> PermutationSpec:
        """Every part's permutations in one spec."""
        return merge_specs([part.permutations() for part in self.parts])

    def part(self, kind: type[Symmetry]) -> list[Symmetry]:
        """The parts that are instances of ``kind``."""
        return [p for p in self.parts if isinstance(p, kind)]

    # -- verification -----------------------------------------------------------------
    def noncommuting(self, state: Mapping[str, torch.Tensor], *, seeds: int = 2) -> str:
        """A sentence naming two parts whose random transforms give different states when applied
        in the two orders ('' if every pair commutes on ``state``)."""
        for seed in range(seeds):
            generator = torch.Generator().manual_seed(seed)
            transforms = [part.random(generator) for part in self.parts]
            for i in range(len(self.parts)):
                for j in range(i + 1, len(self.parts)):
                    pi, pj = self.parts[i], self.parts[j]
                    one = pj.apply(pi.apply(state, transforms[i]), transforms[j])
                    two = pi.apply(pj.apply(state, transforms[j]), transforms[i])
                    for key in one:
                        if not torch.equal(one[key], two[key]):
                            return (f"parts {i} ({'/'.join(pi.kinds())}) and {j} ({'/'.join(pj.kinds())}) "
                                    f"of the product do not commute on tensor {key!r}")
        return ""

    def check(self, module: nn.Module, example_input: torch.Tensor, *, seeds: int = 3,
              atol: float = 1e-4, rtol: float = 1e-4,
              state: Mapping[str, torch.Tensor] | None = None) -> SpecCheck:
        """:meth:`Symmetry.check`, and the parts must commute on the state."""
        result = super().check(module, example_input, seeds=seeds, atol=atol, rtol=rtol, state=state)
        note = self.noncommuting({k: v.detach() for k, v in (state or module.state_dict()).items()})
        return attrs.evolve(result, passed=False, note=note) if note else result
