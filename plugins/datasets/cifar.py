"""``cifar10`` and ``cifar100``: the official "python version" batches in a local folder.

Krizhevsky's CIFAR-10 and CIFAR-100 (2009) as ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``
extract them, and as torchvision leaves them: ``root`` is the batches folder
(``cifar-10-batches-py`` with ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
``batches.meta``; ``cifar-100-python`` with ``train``, ``test`` and ``meta``) or the folder holding
it. Nothing is downloaded. Each batch is a Python 2 pickle of a dict: ``data`` a uint8 array of
N x 3072 (the 1024 red, then green, then blue values of a 32 x 32 image, row by row), ``labels``
(CIFAR-100: ``fine_labels`` and ``coarse_labels``) a list of ints. They are read by a restricted
unpickler that builds only numpy arrays, lists, dicts and strings: a file that asks for anything
else is refused. A file whose MD5 differs from the official one is read with a warning that names
it. :func:`write_cifar` writes a folder in exactly this format (for tests and for converting data).
"""

from __future__ import annotations

import hashlib
import pickle
import struct
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ridgeline.core import ConfigError, DataError
from ridgeline.plugins.datasets.files import FileDataset, Normalize

LAYOUTS = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "archive": "cifar-10-python.tar.gz",
        "train": [("data_batch_1", "c99cafc152244af753f735de768cd75f"),
                  ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
                  ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
                  ("data_batch_4", "634d18415352ddfa80567beed471001a"),
                  ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb")],
        "test": [("test_batch", "40351d587109b95175f43aff81a1287e")],
        "meta": ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "archive": "cifar-100-python.tar.gz",
        "train": [("train", "16019d7e3df5f24257cddd939b257f8d")],
        "test": [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")],
        "meta": ("meta", "7973b15100ade9c7d40fb424638fde48"),
    },
}


class _BatchUnpickler(pickle.Unpickler):
    """Builds what a CIFAR batch holds (numpy arrays, dicts, lists, strings) and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            from numpy._core import multiarray
        except ImportError:  # numpy < 2
            from numpy.core import multiarray

        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy.core.multiarray", "scalar"): multiarray.scalar,
            ("numpy._core.multiarray", "scalar"): multiarray.scalar,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _latin1_encode,  # bytes pickled by Python 3 at protocol 2
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which a CIFAR batch never does")
        return allowed[(module, name)]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    return text.encode(encoding)


def read_batch(path: Path) -> dict[str, Any]:
    """One batch file as a dict with str keys (Python 2 strings decoded as latin-1)."""
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{path} is not a CIFAR python batch: {error}") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path} is not a CIFAR python batch: it holds a {type(batch).__name__}, not a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CifarDataset(FileDataset):
    """Base of ``cifar10`` and ``cifar100``: the official python batches in ``root``."""

    label_key = "labels"

    def __init__(self, *, root: str, image_size: int | list[int] | None = None,
                 normalize: Normalize = "dataset", max_examples: int | dict[str, int] | None = None,
                 augment: bool = False, cache: bool | str = True, **options: Any) -> None:
        super().__init__(root=str(root), image_size=image_size, normalize=normalize,
                         max_examples=max_examples, augment=augment, cache=cache, **options)
        layout = LAYOUTS[self.name]
        given = Path(root)
        if not given.is_dir():
            raise DataError(f"{self.name} root {given} does not exist or is not a folder")
        self.folder = given / layout["folder"] if (given / layout["folder"]).is_dir() else given
        needed = [name for name, _ in layout["train"] + layout["test"]]
        missing = [name for name in needed if not (self.folder / name).is_file()]
        if missing:
            raise DataError(f"{self.name} folder {self.folder} is missing {', '.join(missing)} "
                            f"({self.folder / missing[0]}); it needs {', '.join(needed)} as extracted from "
                            f"the official {layout['archive']}")
        self.input_shape = (3, *(self.image_size or (32, 32)))

    @property
    def stored_shape(self) -> tuple[int, ...]:
        return (3, 32, 32)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def source(self, split: str) -> str:
        return f"{self.name} {self.folder}"

    def sources(self, split: str) -> tuple[Path, list[Path]]:
        return self.folder, [self.folder / name for name, _ in LAYOUTS[self.name][split]]

    def read(self, split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [], []
        for name, official in LAYOUTS[self.name][split]:
            path = self.folder / name
            if md5(path) != official:
                warnings.warn(f"{path} is not the official {self.name} file (its MD5 differs from "
                              f"{official}); reading it anyway", stacklevel=2)
            batch = read_batch(path)
            for key in ("data", self.label_key):
                if key not in batch:
                    raise DataError(f"{path} has no {key!r} entry (it has {', '.join(map(str, batch))})")
            data = np.asarray(batch["data"])
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
                raise DataError(f"{path}: 'data' must be uint8 of shape (N, 3072), got {data.dtype} "
                                f"{data.shape}")
            if len(batch[self.label_key]) != len(data):
                raise DataError(f"{path}: {len(data)} images but {len(batch[self.label_key])} labels")
            images.append(data)
            labels.append(np.asarray(batch[self.label_key], dtype=np.int64))
            if limit is not None and sum(map(len, images)) >= limit:
                break
        x = torch.from_numpy(np.concatenate(images)[:limit].reshape(-1, 3, 32, 32).copy())
        return x, torch.from_numpy(np.concatenate(labels)[:limit])


class Cifar10Dataset(CifarDataset):
    """CIFAR-10 from the official python batches in ``root`` (never downloaded), 10 classes."""

    name = "cifar10"
    num_classes = 10

    def __init__(self, *, root: str, image_size: int | list[int] | None = None,
                 normalize: Normalize = "dataset", max_examples: int | dict[str, int] | None = None,
                 augment: bool = False, cache: bool | str = True) -> None:
        super().__init__(root=root, image_size=image_size, normalize=normalize, max_examples=max_examples,
                         augment=augment, cache=cache)


class Cifar100Dataset(CifarDataset):
    """CIFAR-100 from the official python batches in ``root`` (never downloaded); ``labels``
    ``fine`` (100 classes, default) or ``coarse`` (20 superclasses)."""

    name = "cifar100"

    def __init__(self, *, root: str, labels: Literal["fine", "coarse"] = "fine",
                 image_size: int | list[int] | None = None,
                 normalize: Normalize = "dataset", max_examples: int | dict[str, int] | None = None,
                 augment: bool = False, cache: bool | str = True) -> None:
        if labels not in ("fine", "coarse"):
            raise ConfigError(f"dataset 'cifar100': labels is 'fine' or 'coarse', got {labels!r}")
        super().__init__(root=root, labels=labels, image_size=image_size, normalize=normalize,
                         max_examples=max_examples, augment=augment, cache=cache)
        self.label_key = f"{labels}_labels"
        self.num_classes = 100 if labels == "fine" else 20


# -- writing the format --------------------------------------------------------------------------

def _py2_pickle(obj: Any) -> bytes:
    """``obj`` as Python 2's cPickle wrote it at protocol 2: str and bytes as byte strings, numpy
    arrays through ``numpy.core.multiarray._reconstruct``. Handles what a CIFAR batch holds."""
    out = bytearray(b"\x80\x02")

    def string(value: bytes) -> None:
        out.extend(b"U" + bytes([len(value)]) if len(value) < 256 else b"T" + struct.pack("<I", len(value)))
        out.extend(value)

    def integer(value: int) -> None:
        if 0 <= value < 256:
            out.extend(b"K" + bytes([value]))
        elif 0 <= value < 65536:
            out.extend(b"M" + struct.pack("<H", value))
        else:
            out.extend(b"J" + struct.pack("<i", value))

    def write(value: Any) -> None:
        if value is None:
            out.extend(b"N")
        elif isinstance(value, bool):
            out.extend(b"\x88" if value else b"\x89")
        elif isinstance(value, (int, np.integer)):
            integer(int(value))
        elif isinstance(value, str):
            string(value.encode("latin1"))
        elif isinstance(value, bytes):
            string(value)
        elif isinstance(value, list):
            out.extend(b"]")
            if value:
                out.extend(b"(")
                for item in value:
                    write(item)
                out.extend(b"e")
        elif isinstance(value, dict):
            out.extend(b"}(")
            for key, item in value.items():
                write(key)
                write(item)
            out.extend(b"u")
        elif isinstance(value, np.ndarray):
            array = np.ascontiguousarray(value)
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            out.extend(b"K\x00\x85")  # shape (0,)
            string(b"b")
            out.extend(b"\x87R(K\x01")  # _reconstruct(ndarray, (0,), 'b'); (1, shape, dtype, False, data)
            out.extend(b"(")
            for size in array.shape:
                integer(size)
            out.extend(b"t")
            out.extend(b"cnumpy\ndtype\n")
            string(array.dtype.str[1:].encode())
            out.extend(b"K\x00K\x01\x87R(K\x03")
            string(array.dtype.str[0].encode())
            out.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
            out.extend(b"\x89")
            string(array.tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(f"cannot write a {type(value).__name__} into a CIFAR batch")

    write(obj)
    out.extend(b".")
    return bytes(out)


def write_cifar(folder: str | Path, kind: str, train: tuple[Any, Any], test: tuple[Any, Any], *,
                coarse: Mapping[str, Any] | None = None) -> Path:
    """Write ``train`` and ``test`` (uint8 images N x 3 x 32 x 32, integer labels) as the official
    python batches of ``kind`` (``cifar10``: five training batches, ``test_batch``, ``batches.meta``;
    ``cifar100``: ``train``, ``test``, ``meta``, with ``coarse`` labels by split, default fine // 5)
    under ``folder/<cifar-10-batches-py | cifar-100-python>``; returns that batches folder."""
    layout = LAYOUTS[kind]
    out = Path(folder) / layout["folder"]
    out.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in (("train", train), ("test", test)):
        data = np.asarray(images, dtype=np.uint8).reshape(len(images), 3072)
        fine = [int(v) for v in np.asarray(labels)]
        files = layout[split]
        bounds = np.linspace(0, len(data), len(files) + 1).astype(int)
        for i, (name, _) in enumerate(files):
            part = slice(bounds[i], bounds[i + 1])
            batch: dict[str, Any] = {"data": data[part]}
            if kind == "cifar10":
                batch["labels"] = fine[part]
                batch["batch_label"] = (f"training batch {i + 1} of {len(files)}" if split == "train"
                                        else "testing batch 1 of 1")
            else:
                given = coarse.get(split) if coarse else None
                grouped = [int(v) for v in np.asarray(given)] if given is not None else [f // 5 for f in fine]
                label = "training batch 1 of 1" if split == "train" else "testing batch 1 of 1"
                batch.update(fine_labels=fine[part], coarse_labels=grouped[part], batch_label=label)
            batch["filenames"] = [f"image_{split}_{j:05d}.png" for j in range(bounds[i], bounds[i + 1])]
            (out / name).write_bytes(_py2_pickle(batch))
    meta = ({"label_names": [f"class_{i}" for i in range(10)], "num_cases_per_batch": int(bounds[1]),
             "num_vis": 3072} if kind == "cifar10" else
            {"fine_label_names": [f"fine_{i}" for i in range(100)],
             "coarse_label_names": [f"coarse_{i}" for i in range(20)]})
    (out / layout["meta"][0]).write_bytes(_py2_pickle(meta))
    return out
