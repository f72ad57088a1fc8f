"""ExpertSymmetry: the experts of a sparse mixture-of-experts layer, permuted as whole submodules.

A mixture-of-experts layer routes each input to the top-k of E experts by a router's logits. Two
symmetries leave it unchanged (Li et al., "Merge, Then Compress: Demystify Efficient SMoE with
Hints from Its Routing Policy", ICLR 2024, Sec. 3.2):

* **expert permutation**: reorder the experts together with the router's rows (its logits follow
  their experts, so the top-k picks the same experts);
* **permutation within experts**: reorder each expert's hidden units, a different permutation per
  expert.

Layout: ``router`` lists the router's expert-indexed axes (its weight's rows and its bias);
``expert_params`` the axes holding one entry per expert (an output bias of shape (E, d));
``unit_axes`` the axes holding the experts' hidden units expert-major (E * H entries, expert e owning
entries e*H .. (e+1)*H: the stacked first layer's rows, its bias, the second layer's columns).
The symmetry is a nesting of two permutation groups (``name`` moves whole experts, ``name.units``
permutes inside each expert, see :class:`~ridgeline.core.symmetry.spec.PermutationSpec`), so every
permutation aligner that keeps nested groups block-diagonal searches it; this class adds what
merging methods need to know and permutation specs do not say: which axes are the router and which
are an expert's own parameters, and ``top_k``. The spec tracer cannot follow data-dependent routing,
so models declare this symmetry explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch

from ridgeline.core.errors import SpecError
from ridgeline.core.state import State
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec, axis_refs
from ridgeline.core.symmetry.symmetry import Symmetry, Transform, require_components


@attrs.frozen
class ExpertSymmetry(Symmetry):
    """``experts`` experts of ``units`` hidden units each, routed top-``top_k`` (see the module
    docstring for the axes)."""

    name: str
    experts: int
    units: int
    router: tuple[AxisRef, ...] = attrs.field(converter=axis_refs)
    expert_params: tuple[AxisRef, ...] = attrs.field(converter=axis_refs)
    unit_axes: tuple[AxisRef, ...] = attrs.field(converter=axis_refs)
    top_k: int = 1

    def __attrs_post_init__(self) -> None:
        if self.experts < 1 or self.units < 1:
            raise SpecError(f"expert symmetry {self.name!r} needs at least one expert and one unit, "
                            f"got {self.experts} experts of {self.units} units")
        if not self.router:
            raise SpecError(f"expert symmetry {self.name!r} names no router axis")
        if not self.unit_axes:
            raise SpecError(f"expert symmetry {self.name!r} names no axis of the experts' hidden units")
        if not 1 <= self.top_k <= self.experts:
            raise SpecError(f"expert symmetry {self.name!r}: top_k must lie in [1, {self.experts}], "
                            f"got {self.top_k}")

    @property
    def units_name(self) -> str:
        return f"{self.name}.units"

    @property
    def components(self) -> tuple[str, ...]:
        return (self.name, self.units_name)

    @property
    def keys(self) -> set[str]:
        return {r.key for r in (*self.router, *self.expert_params, *self.unit_axes)}

    def permutations(self) -> PermutationSpec:
        """Experts as whole blocks (router rows, their own parameters, their hidden units in
        blocks of ``units``), and a nested group permuting inside each expert."""
        blocks = tuple(AxisRef(r.key, r.axis, r.offset, r.stride * self.units) for r in self.unit_axes)
        return PermutationSpec(
            {self.name: self.experts, self.units_name: self.experts * self.units},
            {self.name: (*self.router, *self.expert_params, *blocks), self.units_name: self.unit_axes},
            nested={self.units_name: self.name})

    def identity(self, device: torch.device | str = "cpu") -> Transform:
        return self.permutations().identity(device)

    def random(self, generator: torch.Generator | None = None) -> Transform:
        return self.permutations().random(generator)

    def invert(self, transform: Mapping[str, torch.Tensor]) -> Transform:
        require_components(self, transform)
        return self.permutations().invert(transform)

    def apply(self, state: Mapping[str, torch.Tensor], transform: Mapping[str, torch.Tensor]) -> State:
        require_components(self, transform)
        return self.permutations().apply(state, transform)

    def validate(self, state: Mapping[str, torch.Tensor]) -> None:
        self.permutations().validate(state)

    def kinds(self) -> dict[str, str]:
        router = sorted({r.key.rpartition(".")[0] or r.key for r in self.router})
        return {"expert permutation": f"{self.name} ({self.experts} experts, top-{self.top_k}, "
                                      f"router {', '.join(router)})",
                "permutation within experts": f"{self.name} ({self.units} units per expert)"}

    def describe(self) -> list[dict[str, Any]]:
        spec = self.permutations()
        return [{"kind": kind, "component": group, "size": spec.groups[group],
                 "tensors": [f"{r.key}[{r.axis}]" for r in spec.axes[group]]}
                for kind, group in (("expert permutation", self.name),
                                    ("permutation within experts", self.units_name))]
