"""Path: a curve theta(t), t in [0, 1], through control states.

Following Garipov et al. (2018), a path is a list of control states and coefficients
c_i(t) with theta(t) = sum_i c_i(t) * control_i. The linear path has controls (A, B) and
c = (1 - t, t). Trainable paths (Bezier, polygonal chain, star centre) set ``trainable`` and
implement :meth:`fit`; the pipeline calls ``fit`` once before measuring, then runs every
metric along each of :meth:`segments`.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

from ridgeline.core.state import State, Ties, check_compatible, combine


class Path(abc.ABC):
    """A curve between ``endpoints[0]`` (t = 0) and ``endpoints[-1]`` (t = 1)."""

    name: ClassVar[str] = ""
    trainable: ClassVar[bool] = False

    def __init__(self, endpoints: Sequence[State], **options: Any) -> None:
        if len(endpoints) < 2:
            raise ValueError(f"path {self.name!r} needs at least two endpoint states")
        for i, state in enumerate(endpoints[1:], start=1):
            check_compatible(endpoints[0], state, names=("endpoint 0", f"endpoint {i}"))
        self.endpoints = list(endpoints)
        self.options = options

    @property
    @abc.abstractmethod
    def controls(self) -> list[State]:
        """The control states the coefficients weight."""

    @abc.abstractmethod
    def coefficients(self, t: float) -> torch.Tensor:
        """c(t), one weight per control state."""

    def at(self, t: float) -> State:
        """theta(t)."""
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"path parameter t must lie in [0, 1], got {t}")
        return combine(self.controls, self.coefficients(t).tolist())

    def fit(self, evaluator: Any) -> dict[str, Any]:
        """Fit the free control states (trainable paths only; settings come from the
        constructor's options); returns a JSON-serialisable fit report."""
        raise TypeError(f"path {self.name!r} has nothing to fit")

    def fitted(self) -> list[State]:
        """The states :meth:`fit` produced (stored with the results, so a resumed run reuses
        them instead of fitting again)."""
        return []

    def restore(self, states: list[State]) -> None:
        """Take back the states :meth:`fitted` returned, in place of a fit."""
        raise TypeError(f"path {self.name!r} has nothing fitted to restore")

    def segments(self) -> dict[str, Path]:
        """The curves metrics should run along, by label. Most paths are one curve; a star
        path (one centre, N models) returns its N lines."""
        return {"": self}


def path_arguments(factory: Callable[..., Any], endpoints: Sequence[State], ties: Ties) -> dict[str, Any]:
    """The arguments ridgeline gives a path factory besides the user's options: ``endpoints``
    (each tied tensor once, :meth:`Ties.drop`), and the model's ``ties`` when the factory has a
    parameter of that name (``layerwise`` uses them to name the layer of a tied tensor that a
    user called by another of its names). Used wherever the pipeline builds a path."""
    arguments: dict[str, Any] = {"endpoints": list(endpoints)}
    try:
        if "ties" in inspect.signature(factory).parameters:
            arguments["ties"] = ties
    except (TypeError, ValueError):  # no readable signature: it gets what every path gets
        pass
    return arguments
