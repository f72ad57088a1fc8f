"""Model: a named factory for an ``nn.Module``, the input it expects, its PermutationSpec and its
symmetries.

Parameters travel as states (``dict[str, Tensor]``) and are evaluated functionally
(``torch.func.functional_call``): a user's module is never mutated in place.
"""

from __future__ import annotations

import abc
import json
from typing import Any, ClassVar

import torch
from torch import nn

from ridgeline.core.state import State, Ties
from ridgeline.core.symmetry.spec import PermutationSpec
from ridgeline.core.symmetry.symmetry import Symmetry

_SPECS: dict[str, PermutationSpec] = {}


class Model(abc.ABC):
    """An architecture with a fixed configuration.

    Subclasses take ``input_shape`` (one example, no batch axis) and ``num_classes`` plus their
    own keyword options, and implement :meth:`build`. :meth:`spec` is derived from the traced
    graph by default; a plugin may override it with a hand-written spec. :meth:`symmetries` is
    the spec unless the model declares more (tree flips, experts).
    """

    name: ClassVar[str] = ""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, **options: Any) -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.options = options

    @classmethod
    def native_input(cls, **options: Any) -> tuple[tuple[int, ...], int] | None:
        """The input shape (one example) and number of classes the architecture that
        ``options`` select is built for, if it has them (a timm architecture's pretrained
        config), else None. ``ridgeline spec`` without ``--dataset`` builds the model for them."""
        return None

    @classmethod
    def resolve(cls, name: str) -> dict[str, Any] | None:
        """The options under which this factory builds ``name``, a name that is not a registry
        entry (``ridgeline spec resnet26d`` is the ``timm`` model with ``arch='resnet26d'``), or
        None if it does not know the name."""
        return None

    @classmethod
    def architectures(cls, pattern: str) -> list[str]:
        """The names :meth:`resolve` knows that match the fnmatch ``pattern`` (for
        ``ridgeline spec --all PATTERN``); none by default."""
        return []

    @property
    def config(self) -> dict[str, Any]:
        """Everything that determines the architecture (stored with results and checkpoints)."""
        return {"name": self.name, "input_shape": list(self.input_shape),
                "num_classes": self.num_classes, **self.options}

    @abc.abstractmethod
    def build(self) -> nn.Module:
        """A freshly initialised module (seed the global RNG first for reproducibility)."""

    def spec(self) -> PermutationSpec:
        """The permutation symmetries of :meth:`build`'s state dict, derived from its traced
        graph and checked (:func:`ridgeline.core.symmetry.derive.derive_spec`); cached per model class
        and :attr:`config`. Raises :class:`~ridgeline.core.errors.SpecError` if the module cannot
        be traced or the derived spec fails its check."""
        key = json.dumps([type(self).__module__, type(self).__qualname__, self.config],
                         sort_keys=True, default=str)
        if key not in _SPECS:
            from ridgeline.core.symmetry.derive import derive_spec

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                module = self.build()
            _SPECS[key] = derive_spec(module, self.example_input())
        return _SPECS[key]

    def symmetries(self) -> Symmetry:
        """Every symmetry of :meth:`build`'s state: by default the permutation spec. A model with
        other kinds (subtree flips and level orders of trees, experts moved with their router rows)
        overrides this and returns them explicitly (a :class:`~ridgeline.core.TreeSymmetry`, an
        :class:`~ridgeline.core.ExpertSymmetry`, or a :class:`~ridgeline.core.SymmetryProduct` of
        commuting parts); its :meth:`spec` should then be ``self.symmetries().permutations()``,
        so permutation aligners search the permutation part of the same symmetry."""
        return self.spec()

    def data_config(self) -> dict[str, Any] | None:
        """The input preprocessing the architecture expects, or None: ``mean`` and ``std`` per
        channel (inputs scaled to [0, 1]) and ``input_size`` (C, H, W), e.g. timm's pretrained
        data config. A dataset with ``normalize = "model"`` uses it."""
        return None

    def ties(self) -> Ties:
        """The tied names of :meth:`build`'s state: parameters or buffers that are one tensor (a
        block registered under two names, tied embeddings). States keep every name; operations keep
        them equal (see :class:`~ridgeline.core.state.Ties`)."""
        with torch.random.fork_rng(devices=[]):
            module = self.build()
        return Ties.of(module)

    def example_input(self, batch_size: int = 2, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn((batch_size, *self.input_shape), generator=generator)

    def init_state(self, seed: int) -> State:
        """The state of a module initialised from ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self.build()
        return {k: v.detach() for k, v in module.state_dict().items()}
