"""Dataset: named splits of (inputs, integer labels) held in memory.

ridgeline's datasets are small enough to hold as tensors (MNIST-1D, digits, synthetic).
Plugins for larger data can override :meth:`Dataset.batches`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, ClassVar

import torch

from ridgeline.core.errors import DataError


class Dataset(abc.ABC):
    """Splits of a classification dataset. ``input_shape`` excludes the batch axis."""

    name: ClassVar[str] = ""
    input_shape: tuple[int, ...]
    num_classes: int

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def config(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}

    @property
    @abc.abstractmethod
    def splits(self) -> tuple[str, ...]:
        """The split names, e.g. ``("train", "test")``."""

    @abc.abstractmethod
    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (float) and labels (long) of ``split``; called once per split."""

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of ``split``, cached; unknown splits name the known ones."""
        if split not in self.splits:
            raise DataError(f"dataset {self.name!r} has no split {split!r}; it has {', '.join(self.splits)}")
        if split not in self._cache:
            self._cache[split] = self.load(split)
        return self._cache[split]

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False,
                generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                limit: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches of ``split`` (the last may be smaller); ``limit`` caps the examples."""
        x, y = self.split(split)
        n = len(x) if limit is None else min(limit, len(x))
        order = torch.randperm(len(x), generator=generator)[:n] if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            yield x[index].to(device, non_blocking=True), y[index].to(device, non_blocking=True)
