"""Symmetry: a transformation of a network's state that leaves the network's function unchanged.

A symmetry is a group acting on states. One of its elements, a *transform*, is a dict of integer
tensors (component name -> tensor): for a :class:`~ridgeline.core.symmetry.spec.PermutationSpec`
the components are its groups and each tensor is a permutation; a tree ensemble adds subtree flips
and level orders (:mod:`~ridgeline.core.symmetry.trees`); a mixture of experts permutes whole
experts with their router rows and each expert's hidden units
(:mod:`~ridgeline.core.symmetry.experts`). Transforms of every kind are stored alike (the results
store writes each component as an int64 dataset), and a component absent from a transform is the
identity.

Every symmetry can be applied, inverted, drawn at random and checked on a network: applying a
random transform to a perturbed state must leave the outputs unchanged (:meth:`Symmetry.check`).
Aligners search it: permutation aligners search :meth:`Symmetry.permutations`, the part of any
symmetry that is a :class:`PermutationSpec`; aligners with ``uses_symmetries = True`` receive the
whole symmetry (``Model.symmetries()``) and return a transform of it.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch import nn

from ridgeline.core.errors import SpecError
from ridgeline.core.state import State, Ties

if TYPE_CHECKING:
    from ridgeline.core.symmetry.spec import PermutationSpec

Transform = dict[str, torch.Tensor]


@attrs.frozen
class SpecCheck:
    """Result of :meth:`Symmetry.check`: the largest output error relative to tolerance.

    ``note`` says why a check failed for a reason other than the outputs (parts of a product
    that do not commute)."""

    passed: bool
    worst_ratio: float
    seeds: int
    atol: float
    rtol: float
    note: str = ""


class Symmetry(abc.ABC):
    """The contract every kind of symmetry implements (see the module docstring).

    Conventions shared by all kinds: ``apply(state, t)`` returns a new state (the input is never
    mutated); to align B to A an aligner returns ``t`` such that ``apply(B, t)`` matches A;
    ``apply(apply(s, t), invert(t)) == s``.
    """

    @property
    @abc.abstractmethod
    def components(self) -> tuple[str, ...]:
        """The names of a transform's entries."""

    @property
    @abc.abstractmethod
    def keys(self) -> set[str]:
        """Every tensor key the symmetry acts on."""

    @abc.abstractmethod
    def identity(self, device: torch.device | str = "cpu") -> Transform:
        """The transform that changes nothing."""

    @abc.abstractmethod
    def random(self, generator: torch.Generator | None = None) -> Transform:
        """A uniformly random transform."""

    @abc.abstractmethod
    def invert(self, transform: Mapping[str, torch.Tensor]) -> Transform:
        """The transform that undoes ``transform``."""

    @abc.abstractmethod
    def apply(self, state: Mapping[str, torch.Tensor], transform: Mapping[str, torch.Tensor]) -> State:
        """A new state with ``transform`` applied (components it lacks act as the identity)."""

    @abc.abstractmethod
    def validate(self, state: Mapping[str, torch.Tensor]) -> None:
        """Raise :class:`SpecError` naming the tensor if ``state`` does not fit the symmetry."""

    @abc.abstractmethod
    def kinds(self) -> dict[str, str]:
        """Each kind of transformation the symmetry holds -> a one-line summary of where it acts
        (what ``ridgeline spec`` lists)."""

    @abc.abstractmethod
    def describe(self) -> list[dict[str, Any]]:
        """One row per component: at least ``kind``, ``component`` and ``tensors``."""

    @abc.abstractmethod
    def permutations(self) -> PermutationSpec:
        """The part of the symmetry that is a :class:`PermutationSpec`, for permutation aligners:
        its groups are components of this symmetry and ``self.apply(s, perms)`` equals
        ``self.permutations().apply(s, perms)`` for any of its permutations."""

    # -- verification -----------------------------------------------------------------
    def check(self, module: nn.Module, example_input: torch.Tensor, *, seeds: int = 3,
              atol: float = 1e-4, rtol: float = 1e-4,
              state: Mapping[str, torch.Tensor] | None = None) -> SpecCheck:
        """Apply ``seeds`` random transforms and compare the outputs in eval mode.

        An output entry passes if its error is at most ``atol * max|reference| + rtol *
        |reference|``: the absolute tolerance is relative to the output's scale, so a network
        whose random outputs are tiny (a small head) cannot hide a wrong transform under ``atol``.

        The module is not mutated: the transformed state (``state``, default the module's own) is
        evaluated with ``torch.func.functional_call`` on the module's own structure. Pass a
        generic state (:func:`ridgeline.core.generic_state`) when the module's initialisation
        zeroes a layer (a zero-initialised head makes any symmetry pass).

        A module with tied tensors (:class:`~ridgeline.core.state.Ties`) gets one value per tensor;
        a transform that leaves two names of one tensor different fails the check with a note.
        """
        if state is None:
            state = module.state_dict()
        state = {k: v.detach() for k, v in state.items()}
        self.validate(state)
        ties = Ties.of(module)
        ties.check(state, "the state a symmetry is checked on")
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                reference = torch.func.functional_call(module, ties.drop(state), (example_input,))
                worst = 0.0
                for seed in range(seeds):
                    generator = torch.Generator().manual_seed(seed)
                    moved = self.apply(state, self.random(generator))
                    split = ties.disagreements(moved)
                    if split:
                        return SpecCheck(passed=False, worst_ratio=math.inf, seeds=seeds, atol=atol,
                                         rtol=rtol, note=f"it moves {split[0][0]!r} but not {split[0][1]!r}, "
                                         "another name of the same (tied) tensor")
                    output = torch.func.functional_call(module, ties.drop(moved), (example_input,))
                    error = (output - reference).abs()
                    scale = atol * float(reference.abs().max().clamp_min(1e-30)) + rtol * reference.abs()
                    worst = max(worst, float((error / scale).max()))
        finally:
            module.train(was_training)
        return SpecCheck(passed=worst <= 1.0, worst_ratio=worst, seeds=seeds, atol=atol, rtol=rtol)

    def verify(self, module: nn.Module, example_input: torch.Tensor, **kwargs: Any) -> SpecCheck:
        """Like :meth:`check` but raise :class:`SpecError` if the network's function changes."""
        result = self.check(module, example_input, **kwargs)
        if not result.passed:
            if result.note:
                raise SpecError(f"the symmetry is wrong: {result.note}")
            raise SpecError(
                f"applying random transforms of the {'/'.join(self.kinds())} symmetry changes the "
                f"network's outputs (worst error {result.worst_ratio:.3g}x the tolerance): it is wrong"
            )
        return result


def require_components(symmetry: Symmetry, transform: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`SpecError` if ``transform`` names a component ``symmetry`` does not have."""
    unknown = sorted(set(transform) - set(symmetry.components))
    if unknown:
        raise SpecError(f"transform components {unknown} are not in the symmetry "
                        f"(it has {list(symmetry.components)})")
