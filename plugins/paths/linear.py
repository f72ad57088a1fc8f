"""``linear``: theta(t) = (1 - t) theta_A + t theta_B."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ridgeline.core import Path, State


class LinearPath(Path):
    """The straight line between two states (controls A, B; c(t) = (1 - t, t)).

    Given more than two endpoints, ``at`` follows the line from the first to the last and
    :meth:`segments` gives every line from the first endpoint.
    """

    name = "linear"

    def __init__(self, endpoints: Sequence[State]) -> None:
        super().__init__(endpoints)

    @property
    def controls(self) -> list[State]:
        return [self.endpoints[0], self.endpoints[-1]]

    def coefficients(self, t: float) -> torch.Tensor:
        return torch.tensor([1.0 - t, t], dtype=torch.float64)

    def segments(self) -> dict[str, Path]:
        """One line for two endpoints; with N > 2 (a reference and N - 1 models aligned to
        it), the line from the reference to each other model, labelled ``0-i``."""
        if len(self.endpoints) == 2:
            return {"": self}
        return {f"0-{i}": LinearPath([self.endpoints[0], other])
                for i, other in enumerate(self.endpoints[1:], start=1)}
