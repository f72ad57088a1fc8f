"""What the datasets read from local files share: options, per-batch preparation, the cache.

Images are stored as uint8 N x C x H x W tensors and prepared one batch at a time, on the batch's
device (:meth:`FileDataset.prepare`): scaled to [0, 1], resized to ``image_size`` (bilinear,
antialiased), augmented when the batch is a training batch and ``augment`` is on (a random crop
after zero padding of H/8 pixels, 4 for CIFAR, and a horizontal flip with probability 1/2, the
standard CIFAR recipe of He et al. 2016, Sec. 4.2), then normalised per channel.

``normalize`` is ``"dataset"`` (the mean and standard deviation per channel of the stored training
images), ``"none"``, ``"model"`` (the model's data config, e.g. a timm architecture's pretrained
mean and std: :meth:`ridgeline.core.Model.data_config`) or a table ``{mean = [...], std = [...]}``
in [0, 1] units, one value per channel or one for all.

**The cache.** Decoding image files is slow (50 000 PNGs take minutes on two cores), so a decoded
split is written once as a safetensors file of uint8 images and int64 labels in the folder the
pipeline gives (``<results folder>/data-cache``; the ``cache`` option names another folder, or
``false`` turns it off) and read back on the next load. The file name holds a hash of the dataset's
options and source path; its metadata holds a fingerprint of every source file (relative path, size,
modification time), so changing, adding or removing a source file rebuilds it. Files are written
to a temporary name and renamed, so an interrupted write never leaves a partial cache. A cache
that cannot be written (a read-only or full disk, a folder the process cannot create) is a
warning naming it; the decoded split is used uncached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch.nn import functional as F

from ridgeline.core import ConfigError, Dataset, Model

Normalize = Literal["dataset", "none", "model"] | Mapping[str, float | Sequence[float]]
"""The ``normalize`` option: a named setting, or a table ``{mean = [...], std = [...]}`` (one value
per channel, or one for all; checked further when the dataset is built)."""

CACHE_FORMAT = "ridgeline decoded split 1"
PREPARE_OPTIONS = ("normalize", "augment")  # applied per batch: not part of the decoded data


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _image_size(value: Any, entry: str) -> tuple[int, int] | None:
    if value is None:
        return None
    size = [value, value] if positive_int(value) else value
    if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(map(positive_int, size)):
        raise ConfigError(f"dataset {entry!r}: image_size is a positive integer or [height, width], "
                          f"got {value!r}")
    return int(size[0]), int(size[1])


def _check_normalize(value: Any, entry: str) -> None:
    if value in ("dataset", "none", "model"):
        return
    if isinstance(value, Mapping) and set(value) == {"mean", "std"}:
        for key in ("mean", "std"):
            numbers = value[key] if isinstance(value[key], (list, tuple)) else [value[key]]
            if not numbers or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
                raise ConfigError(f"dataset {entry!r}: normalize.{key} must be numbers, got {value[key]!r}")
        if any(v <= 0 for v in (value["std"] if isinstance(value["std"], (list, tuple)) else [value["std"]])):
            raise ConfigError(f"dataset {entry!r}: normalize.std must be positive, got {value['std']!r}")
        return
    raise ConfigError(f"dataset {entry!r}: normalize is 'dataset', 'none', 'model' or "
                      f"{{mean = [...], std = [...]}}, got {value!r}")


def _check_max_examples(value: Any, entry: str) -> None:
    counts = value.values() if isinstance(value, Mapping) else [value]
    if value is not None and not all(map(positive_int, counts)):
        raise ConfigError(f"dataset {entry!r}: max_examples is a positive integer or a table of them by "
                          f"split, got {value!r}")


def fingerprint_files(files: Sequence[Path], base: Path) -> str:
    """A hash of every file's path relative to ``base``, size and modification time."""
    digest = hashlib.sha1()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(base).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class FileDataset(Dataset):
    """A dataset read from local files (never downloaded). Subclasses set ``input_shape``,
    ``num_classes`` and the split names, and implement :meth:`read` and :meth:`sources`."""

    def __init__(self, *, normalize: Normalize, image_size: Any, max_examples: Any, augment: bool,
                 cache: bool | str, **options: Any) -> None:
        """The shared options (module docstring); ``options`` are the subclass's own."""
        _check_normalize(normalize, self.name)
        self.image_size = _image_size(image_size, self.name)
        _check_max_examples(max_examples, self.name)
        if not isinstance(augment, bool):
            raise ConfigError(f"dataset {self.name!r}: augment is true or false, got {augment!r}")
        if not isinstance(cache, (bool, str)):
            raise ConfigError(f"dataset {self.name!r}: cache is true, false or a folder, got {cache!r}")
        super().__init__(**options, normalize=normalize, image_size=image_size,
                         max_examples=max_examples, augment=augment)
        self.caching = cache is not False
        self.cache_folder = Path(cache) if isinstance(cache, str) else None
        self.cache_dir = self.cache_folder
        self._normalisation: tuple[torch.Tensor, torch.Tensor] | None = None
        self._model_config: dict[str, Any] | None = None

    # -- what a subclass provides -------------------------------------------------------
    def read(self, split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``limit`` examples of ``split`` (all if None), decoded: inputs (uint8
        images N x C x H x W, or floats) and integer labels."""
        raise NotImplementedError

    def sources(self, split: str) -> tuple[Path, list[Path]]:
        """A base folder and the files ``split`` is decoded from (they fingerprint the cache)."""
        raise NotImplementedError

    # -- loading ------------------------------------------------------------------------
    def use_cache(self, folder: str | Path) -> None:
        """The pipeline's folder for decoded splits, unless the ``cache`` option named one."""
        self.cache_dir = self.cache_folder or Path(folder)

    def limit(self, split: str) -> int | None:
        """``max_examples`` for ``split``."""
        value = self.options["max_examples"]
        return value.get(split) if isinstance(value, Mapping) else value

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if not (self.caching and self.cache_dir is not None):
            return self.read(split, self.limit(split))
        base, files = self.sources(split)
        identity = {k: v for k, v in self.config.items() if k not in PREPARE_OPTIONS}
        identity["split"], identity["source"] = split, str(base.resolve())
        key = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
        path = self.cache_dir / f"{self.name}-{split}-{key}.safetensors"
        fingerprint = fingerprint_files(files, base)
        cached = self._read_cache(path, fingerprint)
        if cached is not None:
            return cached
        x, y = self.read(split, self.limit(split))
        self._write_cache(path, x, y, {"format": CACHE_FORMAT, "fingerprint": fingerprint,
                                       "source": str(base.resolve()), "split": split,
                                       "options": json.dumps(identity, sort_keys=True, default=str)})
        return x, y

    @staticmethod
    def _read_cache(path: Path, fingerprint: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not path.exists():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                if metadata.get("format") != CACHE_FORMAT or metadata.get("fingerprint") != fingerprint:
                    return None  # the source files changed: decode them again
                return f.get_tensor("x"), f.get_tensor("y")
        except Exception as error:  # a damaged cache is rebuilt, not fatal
            warnings.warn(f"ignoring the unreadable data cache {path}: {error}", stacklevel=3)
            return None

    @staticmethod
    def _write_cache(path: Path, x: torch.Tensor, y: torch.Tensor, metadata: dict[str, str]) -> None:
        """Write the decoded split; a folder that cannot be made or written (read-only, full, a
        path a Ray node cannot create) is a warning naming it, and the decoded data is used."""
        from safetensors import SafetensorError  # its I/O errors (a full disk) are not OSErrors
        from safetensors.torch import save_file

        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({"x": x.contiguous(), "y": y.contiguous()}, str(partial), metadata=metadata)
            os.replace(partial, path)
        except (OSError, SafetensorError) as error:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            warnings.warn(f"cannot write the data cache {path} ({error}); using the decoded split "
                          "without caching it (set the dataset's cache option to a writable folder, or "
                          "to false)", stacklevel=3)

    # -- preparing batches --------------------------------------------------------------
    def bind_model(self, model: Model) -> None:
        if self.options["normalize"] != "model":
            return
        config = model.data_config()
        if not config or "mean" not in config or "std" not in config:
            raise ConfigError(f"dataset {self.name!r} has normalize = 'model', but model {model.name!r} has "
                              "no data config (timm models do); use 'dataset' or {mean = [...], std = [...]}")
        self._model_config = config
        self._normalisation = None

    def normalisation(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per-channel (mean, std) in [0, 1] units, or None for ``normalize = "none"``."""
        if self._normalisation is None:
            self._normalisation = self._resolve_normalisation()
        return None if self.options["normalize"] == "none" else self._normalisation

    def _resolve_normalisation(self) -> tuple[torch.Tensor, torch.Tensor]:
        setting = self.options["normalize"]
        channels = self.input_shape[0] if len(self.input_shape) == 3 else 1
        if setting == "none":
            return torch.zeros(channels), torch.ones(channels)
        if setting == "dataset":
            return self._training_statistics()
        if setting == "model":
            if self._model_config is None:
                raise ConfigError(f"dataset {self.name!r} has normalize = 'model' but no model was bound "
                                  "(the pipeline binds it; in a script call dataset.bind_model(model))")
            setting = self._model_config
        mean, std = (torch.tensor(setting[k], dtype=torch.float32).reshape(-1) for k in ("mean", "std"))
        for name, values in (("mean", mean), ("std", std)):
            if len(values) not in (1, channels):
                raise ConfigError(f"dataset {self.name!r}: normalize {name} has {len(values)} values but "
                                  f"the images have {channels} channels")
        return mean.expand(channels).clone(), std.expand(channels).clone()

    def _training_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std per channel (axis 1; every feature for 2-D inputs) of the stored
        training split in [0, 1] units, accumulated in float64 a chunk at a time; a channel
        constant in training (std below 1e-6) is only centred."""
        split = "train" if "train" in self.splits else self.splits[0]
        x, _ = self.stored(split)
        scale = 255.0 if x.dtype == torch.uint8 else 1.0
        dims = [0, *range(2, x.dim())]
        total = torch.zeros(x.shape[1], dtype=torch.float64)
        squares = torch.zeros(x.shape[1], dtype=torch.float64)
        for start in range(0, len(x), 4096):
            chunk = x[start:start + 4096].double() / scale
            total += chunk.sum(dims)
            squares += (chunk * chunk).sum(dims)
        count = x.numel() / x.shape[1]
        mean = total / count
        std = (squares / count - mean * mean).clamp_min(0).sqrt()
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
        return mean.float(), std.float()

    def prepare(self, inputs: torch.Tensor, *, augment: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Scale (uint8 / 255), resize, augment (training batches, ``augment`` on), normalise."""
        x = inputs.float() / 255.0 if inputs.dtype == torch.uint8 else inputs.float()
        if x.dim() == 4 and tuple(x.shape[-2:]) != tuple(self.input_shape[-2:]):
            x = F.interpolate(x, size=tuple(self.input_shape[-2:]), mode="bilinear", align_corners=False,
                              antialias=True)
        if augment and self.options["augment"] and x.dim() == 4:
            x = random_crop_and_flip(x, generator)
        normalisation = self.normalisation()
        if normalisation is not None:
            mean, std = (v.to(x.device).reshape(1, -1, *[1] * (x.dim() - 2)) for v in normalisation)
            x = (x - mean) / std
        return x


def random_crop_and_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image of an N x C x H x W batch cropped back to H x W at a random offset after zero
    padding of max(1, H // 8) pixels on every side, then flipped left-right with probability 1/2;
    the random choices are drawn on the CPU from ``generator``."""
    n, _, height, width = x.shape
    pad = max(1, height // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    rows = dy[:, None] + torch.arange(height, device=x.device)
    cols = dx[:, None] + torch.arange(width, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = padded.permute(0, 2, 3, 1)[torch.arange(n, device=x.device)[:, None, None], rows[:, :, None],
                                     cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()
