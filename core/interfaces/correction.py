"""Correction: a transformation applied to every evaluated path point (e.g. BatchNorm reset).

Corrections are pipeline entries, composed in order, and recorded in the results.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.state import State


class Correction(abc.ABC):
    """Maps a path point ``state`` at parameter ``t`` to a corrected state.

    :meth:`prepare` is called once per path with its endpoints (to gather statistics).
    """

    name: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def prepare(self, endpoints: list[State], evaluator: Evaluator) -> None:  # noqa: B027
        """Gather what the correction needs from the path's endpoints (default: nothing)."""

    @abc.abstractmethod
    def apply(self, state: Mapping[str, torch.Tensor], t: float, evaluator: Evaluator) -> State:
        """The corrected state of the path point at ``t``."""
