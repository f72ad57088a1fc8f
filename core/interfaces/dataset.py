"""Dataset: named splits of (inputs, integer labels), stored compactly and prepared per batch.

A dataset plugin implements :meth:`Dataset.load`, which returns a split *as stored*: float
inputs (MNIST-1D, digits, synthetic), or a compact form such as uint8 images that
:meth:`Dataset.prepare` turns into the model's float inputs one batch at a time, on the batch's
device (scaling, normalisation, resizing, training-time augmentation). :meth:`Dataset.batches`
streams a split that way, so a 50 000-image split is never held as floats, nor moved to a GPU
whole; :meth:`Dataset.split` still gives a whole split prepared, for small data and scripts (made
on each call, never kept: the evaluator prepares its batches itself).

Every loaded split is checked once (:meth:`Dataset.stored`): inputs of ``stored_shape``, one
integer label per example, labels in ``0 .. num_classes - 1``; a failure is a
:class:`~ridgeline.core.errors.DataError` naming where the split came from (:meth:`source`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ridgeline.core.errors import DataError

if TYPE_CHECKING:
    from ridgeline.core.interfaces.model import Model


class Dataset(abc.ABC):
    """Splits of a classification dataset. ``input_shape`` excludes the batch axis."""

    name: ClassVar[str] = ""
    input_shape: tuple[int, ...]
    num_classes: int

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.cache_dir: Path | None = None
        self._stored: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def config(self) -> dict[str, Any]:
        """What determines the data (stored with results and checkpoints)."""
        return {"name": self.name, **self.options}

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """One example's shape as :meth:`load` stores it (default ``input_shape``; e.g. 3 x 32 x 32
        CIFAR images that :meth:`prepare` resizes)."""
        return tuple(self.input_shape)

    @property
    @abc.abstractmethod
    def splits(self) -> tuple[str, ...]:
        """The split names, e.g. ``("train", "test")``."""

    @abc.abstractmethod
    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``split`` as stored: inputs (float, or a compact form :meth:`prepare` converts, e.g.
        uint8 images) and integer labels; called once per split."""

    def prepare(self, inputs: torch.Tensor, *, augment: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The model's float inputs from a batch of stored inputs, on the batch's device.
        ``augment`` marks a training batch (a dataset configured to augment does so then;
        ``generator`` draws the random choices). Default: the stored inputs unchanged."""
        return inputs

    def source(self, split: str) -> str:
        """Where ``split`` comes from, for error messages (a file or folder where there is one)."""
        return f"dataset {self.name!r}, split {split!r}"

    def use_cache(self, folder: str | Path) -> None:
        """Where a dataset that decodes files may keep its decoded splits (the pipeline passes
        a folder beside the results). Datasets that decode nothing ignore it."""
        self.cache_dir = Path(folder)

    def bind_model(self, model: Model) -> None:  # noqa: B027
        """Called by the pipeline once the model exists (e.g. to take its input normalisation,
        :meth:`Model.data_config`). Default: nothing."""

    def _known(self, split: str) -> None:
        if split not in self.splits:
            raise DataError(f"dataset {self.name!r} has no split {split!r}; it has {', '.join(self.splits)}")

    def stored(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``split`` as stored (:meth:`load`), checked and cached; unknown splits name the known ones."""
        self._known(split)
        if split not in self._stored:
            x, y = self.load(split)
            self._stored[split] = (x, self._checked_labels(split, x, y))
        return self._stored[split]

    def _checked_labels(self, split: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        where = self.source(split)
        if tuple(x.shape[1:]) != tuple(self.stored_shape):
            raise DataError(f"{where}: inputs have shape {tuple(x.shape[1:])} per example but the "
                            f"dataset stores {tuple(self.stored_shape)}")
        if y.dim() != 1 or len(y) != len(x) or y.is_floating_point() or y.is_complex():
            raise DataError(f"{where}: needs one integer label per example; got labels of shape "
                            f"{tuple(y.shape)} and dtype {y.dtype} for {len(x)} examples")
        if len(y) == 0:
            raise DataError(f"{where}: the split is empty")
        y = y.long()
        bad = (y < 0) | (y >= self.num_classes)
        if bool(bad.any()):
            index = int(bad.nonzero()[0])
            raise DataError(f"{where}: labels must lie in 0..{self.num_classes - 1} for {self.num_classes} "
                            f"classes, but example {index} has label {int(y[index])} (labels range "
                            f"{int(y.min())}..{int(y.max())})")
        return y

    def check(self) -> None:
        """Load and check every split now (the pipeline calls this before any training)."""
        for split in self.splits:
            self.stored(split)

    def size(self, split: str) -> int:
        """The number of examples in ``split``."""
        return len(self.stored(split)[1])

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole of ``split`` prepared (float inputs, long labels), on the CPU. Prepared on
        every call and not kept (for uint8 images it is a float copy of the whole split)."""
        x, y = self.stored(split)
        return self.prepare(x), y

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False,
                generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                limit: int | None = None,
                augment: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Prepared mini-batches of ``split`` on ``device`` (the last may be smaller); ``limit``
        caps the examples. Stored inputs are moved batch by batch and prepared there, so a split
        is never on the device whole. ``augment`` marks training batches (see :meth:`prepare`)."""
        x, y = self.stored(split)
        n = len(x) if limit is None else min(limit, len(x))
        order = torch.randperm(len(x), generator=generator)[:n] if shuffle else None
        for start in range(0, n, batch_size):
            end = min(start + batch_size, n)
            if order is None:
                xb, yb = x[start:end], y[start:end]
            else:
                index = order[start:end]
                xb, yb = x[index], y[index]
            xb = self.prepare(xb.to(device, non_blocking=True), augment=augment, generator=generator)
            yield xb, yb.to(device, non_blocking=True)
