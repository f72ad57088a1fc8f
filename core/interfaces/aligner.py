"""Aligner: find the permutations that bring one network's hidden units into line with another's.

``align(reference, other, spec, context) -> Alignment``. Applying the alignment to ``other``
returns a functionally identical state whose units correspond to ``reference``'s. Aligners
that merge (ZipIt, MergeMany) set ``merges = True`` and return the merged state(s). Aligners
that search more than permutations (tree flips) set ``uses_symmetries = True``: they receive
the model's whole symmetry (``Model.symmetries()``) and return one of its transforms.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import torch

from ridgeline.core.errors import SpecError
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.state import State, check_compatible, check_finite
from ridgeline.core.symmetry.spec import Perms, PermutationSpec
from ridgeline.core.symmetry.symmetry import Symmetry


@attrs.frozen
class AlignContext:
    """What an aligner may use beyond the two states: data, device, seed."""

    evaluator: Evaluator | None = None
    seed: int = 0
    split: str = "train"

    @property
    def device(self) -> torch.device:
        return self.evaluator.device if self.evaluator else torch.device("cpu")

    def place(self, state: Mapping[str, torch.Tensor]) -> State:
        """``state`` detached and on the context's device (for aligners that optimise)."""
        return {k: v.detach().to(self.device) for k, v in state.items()}


@attrs.frozen
class Alignment:
    """The outcome of an aligner.

    ``perms``: group -> permutation (long tensor) to apply to ``other`` (for an aligner with
    ``uses_symmetries``, component -> integer tensor: a transform of the symmetry);
    ``objective``: the final value of the method's objective (higher is better for matching objectives);
    ``history``: the objective per iteration; ``seconds``: wall time; ``transport``: soft
    maps (group -> n x n) where the method has them; ``merged``: the merged state of a
    merging aligner; ``diagnostics``: anything else worth recording (JSON-serialisable).
    """

    perms: Perms
    objective: float = float("nan")
    history: tuple[float, ...] = ()
    seconds: float = 0.0
    transport: Mapping[str, torch.Tensor] = attrs.field(factory=dict)
    merged: State | None = None
    diagnostics: Mapping[str, Any] = attrs.field(factory=dict)

    def apply(self, spec: Symmetry, other: Mapping[str, torch.Tensor]) -> State:
        """``other`` with the alignment's permutations (or transform) applied."""
        return spec.apply(other, self.perms)


class Aligner(abc.ABC):
    """A matching algorithm. Subclasses take keyword options and implement :meth:`align`."""

    name: ClassVar[str] = ""
    merges: ClassVar[bool] = False
    needs_finite: ClassVar[bool] = True
    """True if the method needs finite weights (every matching method does); the pipeline then
    refuses a model holding NaN or inf before any alignment, naming its file and tensors."""
    supports_nested: ClassVar[bool] = False
    """True if the method keeps nested (within-head) groups block-diagonal; the pipeline gives
    other aligners ``spec.without_nested()``, a smaller symmetry group they can solve safely."""
    uses_symmetries: ClassVar[bool] = False
    """True if :meth:`align` takes the model's whole :class:`~ridgeline.core.Symmetry`
    (``Model.symmetries()``) instead of its PermutationSpec, and returns a transform of it."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        """Permutations taking ``other``'s units onto ``reference``'s."""

    def check_inputs(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
                     spec: Symmetry) -> None:
        """Raise a clear error if the states differ (key and both shapes), hold NaN or inf (when
        the method :attr:`needs_finite`), the spec does not fit them, or the spec has nested
        groups this method cannot keep block-diagonal."""
        check_compatible(reference, other, names=("reference", "other"))
        if self.needs_finite:
            for name, state in (("reference", reference), ("other", other)):
                check_finite(state, f"the {name} state", needed_by=self.name or type(self).__name__)
        spec.validate(reference)
        nested = spec.permutations().nested
        if nested and not self.supports_nested:
            pairs = ", ".join(f"{c!r} in {p!r}" for c, p in list(nested.items())[:3])
            if len(nested) > 3:
                pairs += f" and {len(nested) - 3} more"
            raise SpecError(
                f"{self.name} solves one assignment per group and cannot keep nested groups "
                f"({pairs}) block-diagonal; pass spec.without_nested() (the pipeline does), or use "
                "an aligner with supports_nested (weight_matching, ste, merge_many)"
            )
