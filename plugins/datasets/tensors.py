"""``tensors``: a dataset saved as one .npz or .safetensors file.

The file holds ``x_train``, ``y_train``, ``x_test`` and ``y_test`` (and any other ``x_<split>`` /
``y_<split>`` pairs, e.g. ``x_val``): inputs of any shape (N x features, N x C x H x W ...) and
integer labels. uint8 inputs are images: scaled to [0, 1] per batch (and resized with
``image_size``, normalised per channel with ``normalize = "dataset"``); float inputs are used as
they are unless ``normalize`` asks otherwise (default ``"none"``). ``num_classes`` defaults to the
largest label plus one. Shapes are read from the file's headers when the dataset is created; the
arrays themselves on first use. Loading .npz uses ``allow_pickle=False``.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ridgeline.core import ConfigError, DataError
from ridgeline.plugins.datasets.files import FileDataset, Normalize, positive_int

SUFFIXES = (".npz", ".safetensors")


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array of an .npz file, from the .npy headers alone."""
    out = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as f:
                version = np.lib.format.read_magic(f)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _, dtype = reader(f)
            out[member[:-4]] = (tuple(shape), dtype)
    return out


def _safetensors_headers(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {key: (tuple(f.get_slice(key).get_shape()), f.get_slice(key).get_dtype()) for key in f.keys()}


class TensorsDataset(FileDataset):
    """Arrays in one .npz or .safetensors file (``path``): x_train, y_train, x_test, y_test."""

    name = "tensors"

    def __init__(self, *, path: str, num_classes: int | None = None,
                 image_size: int | list[int] | None = None, normalize: Normalize = "none",
                 max_examples: int | dict[str, int] | None = None, augment: bool = False) -> None:
        if num_classes is not None and not positive_int(num_classes):
            raise ConfigError(f"dataset 'tensors': num_classes is a positive integer, got {num_classes!r}")
        super().__init__(path=str(path), num_classes=num_classes, image_size=image_size, normalize=normalize,
                         max_examples=max_examples, augment=augment,
                         cache=False)  # already tensors: nothing to decode, nothing to cache
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"tensors file {self.path} does not exist")
        if self.path.suffix not in SUFFIXES:
            raise DataError(f"tensors file {self.path} must end in .npz or .safetensors")
        headers = self._headers()
        found = {m.group(1) for key in headers if (m := re.fullmatch(r"x_(\w+)", key))}
        self._splits = ("train", "test", *sorted(found - {"train", "test"}))
        missing = [k for split in self._splits for k in (f"x_{split}", f"y_{split}") if k not in headers]
        if missing:
            raise DataError(f"tensors file {self.path} has no {', '.join(missing)}; it holds "
                            f"{', '.join(sorted(headers)) or 'nothing'} (it needs x_train, y_train, x_test, "
                            "y_test)")
        shape, _ = headers["x_train"]
        if len(shape) < 2:
            raise DataError(f"tensors file {self.path}: x_train has shape {shape}, not a row per example")
        self._stored_shape = tuple(int(s) for s in shape[1:])
        self.input_shape = self._stored_shape
        if self.image_size is not None:
            if len(self._stored_shape) != 3:
                raise ConfigError(f"dataset 'tensors': image_size resizes C x H x W images, but x_train "
                                  f"holds examples of shape {self._stored_shape}")
            self.input_shape = (self._stored_shape[0], *self.image_size)
        if num_classes is None:  # the largest label, plus one
            num_classes = 1 + max(int(y.max()) if len(y := self._array(f"y_{split}")) else 0
                                  for split in self._splits)
        self.num_classes = int(num_classes)

    def _headers(self) -> dict[str, tuple[tuple[int, ...], Any]]:
        try:
            if self.path.suffix == ".npz":
                return _npz_headers(self.path)
            return _safetensors_headers(self.path)
        except Exception as error:
            raise DataError(f"cannot read {self.path} as {self.path.suffix[1:]}: {error}") from None

    @property
    def splits(self) -> tuple[str, ...]:
        return self._splits

    @property
    def stored_shape(self) -> tuple[int, ...]:
        return self._stored_shape

    def source(self, split: str) -> str:
        return f"tensors file {self.path} (x_{split}, y_{split})"

    def _array(self, key: str) -> torch.Tensor:
        if self.path.suffix == ".npz":
            with np.load(self.path, allow_pickle=False) as archive:
                return torch.from_numpy(np.ascontiguousarray(archive[key]))
        from safetensors import safe_open

        with safe_open(str(self.path), framework="pt") as f:
            return f.get_tensor(key)

    def read(self, split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self._array(f"x_{split}")[:limit], self._array(f"y_{split}")[:limit]
        # a split whose examples differ from x_train's is refused by Dataset.stored, naming the file
        return (x if x.dtype == torch.uint8 else x.float()), y
