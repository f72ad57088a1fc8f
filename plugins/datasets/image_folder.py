"""``image_folder``: images in ``root/<split>/<class>/<file>``, the layout torchvision's
``ImageFolder`` reads, one folder per split (``train`` first, then the others sorted).

Classes are the training split's class folders, sorted by name (label 0 is the first); every
other split's class folders must be among them. Files ending in .png, .jpg, .jpeg, .bmp or .webp
are read with Pillow, as RGB, or as one channel when the first training image is grayscale. The
examples of a split are taken class by class in turn (each class's files sorted by name), so a
``max_examples`` prefix is balanced across classes; training shuffles anyway. Every image must
have the size of the first training image unless ``image_size`` resizes them (bilinear) as they
are decoded. Decoded splits are cached (:mod:`ridgeline.plugins.datasets.files`).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ridgeline.core import DataError
from ridgeline.plugins.datasets.files import FileDataset, Normalize

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:  # file types come with the listing: no stat per file
        return sorted(Path(e.path) for e in entries
                      if e.is_file() and os.path.splitext(e.name)[1].lower() in EXTENSIONS)


class ImageFolderDataset(FileDataset):
    """Images on disk in root/<split>/<class>/*.png|jpg; options root, image_size, normalize,
    max_examples, augment, cache."""

    name = "image_folder"

    def __init__(self, *, root: str, image_size: int | list[int] | None = None,
                 normalize: Normalize = "dataset", max_examples: int | dict[str, int] | None = None,
                 augment: bool = False, cache: bool | str = True) -> None:
        super().__init__(root=str(root), image_size=image_size, normalize=normalize,
                         max_examples=max_examples, augment=augment, cache=cache)
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"image_folder root {self.root} does not exist or is not a folder")
        self._split_folders = {p.name: p for p in _subfolders(self.root) if _subfolders(p)}
        if not self._split_folders:
            raise DataError(f"image_folder root {self.root} has no class folders: expected "
                            f"{self.root}/<split>/<class>/*.png|jpg, e.g. {self.root}/train/cat/0001.png")
        first = self.splits[0]
        self.classes = [p.name for p in _subfolders(self._split_folders[first])]
        for folder in self._split_folders.values():
            for class_folder in _subfolders(folder):
                if class_folder.name not in self.classes:
                    raise DataError(f"image_folder: {class_folder} is not a class of the {first!r} split "
                                    f"(its classes: {', '.join(self.classes)})")
        self.num_classes = len(self.classes)
        sample = self._first_image(first)
        from PIL import Image

        with Image.open(sample) as image:
            self.mode = "L" if image.mode in GRAYSCALE_MODES else "RGB"
            width, height = image.size
        self.stored_size = self.image_size or (height, width)
        self._files: dict[str, list[tuple[Path, int]]] = {}
        self.input_shape = (1 if self.mode == "L" else 3, *self.stored_size)
        self._sample = sample

    @property
    def splits(self) -> tuple[str, ...]:
        names = sorted(self._split_folders)
        return tuple(["train", *(n for n in names if n != "train")] if "train" in names else names)

    def source(self, split: str) -> str:
        return f"image_folder {self._split_folders.get(split, self.root / split)}"

    def _first_image(self, split: str) -> Path:
        for class_folder in _subfolders(self._split_folders[split]):
            images = _images(class_folder)
            if images:
                return images[0]
        raise DataError(f"image_folder: {self._split_folders[split]} has class folders but no "
                        f"{'/'.join(EXTENSIONS)} images")

    def files(self, split: str) -> list[tuple[Path, int]]:
        """(image, label) of ``split``, class by class in turn (round robin); listed once."""
        if split not in self._files:
            self._files[split] = self._list(split)
        return self._files[split]

    def _list(self, split: str) -> list[tuple[Path, int]]:
        label = {name: i for i, name in enumerate(self.classes)}
        per_class = [[(path, label[folder.name]) for path in _images(folder)]
                     for folder in _subfolders(self._split_folders[split])]
        order = [item for group in itertools.zip_longest(*per_class) for item in group if item is not None]
        if not order:
            raise DataError(f"image_folder: {self._split_folders[split]} has no "
                            f"{'/'.join(EXTENSIONS)} images in its class folders")
        return order

    def sources(self, split: str) -> tuple[Path, list[Path]]:
        return self.root, [path for path, _ in self.files(split)]

    def _decode(self, path: Path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                image = image.convert(self.mode)
                if self.image_size is not None:
                    height, width = self.image_size
                    if image.size != (width, height):
                        image = image.resize((width, height), Image.Resampling.BILINEAR)
                elif image.size != (self.stored_size[1], self.stored_size[0]):
                    raise DataError(
                        f"image_folder: {path} is {image.size[0]}x{image.size[1]} but {self._sample} is "
                        f"{self.stored_size[1]}x{self.stored_size[0]} (width x height); images of "
                        "different sizes need image_size = [height, width] to resize them")
                array = np.asarray(image, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as error:
            raise DataError(f"image_folder: cannot read {path} as an image: {error}") from None
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)

    def read(self, split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        files = self.files(split)[:limit]
        x = torch.empty((len(files), *self.input_shape), dtype=torch.uint8)

        def decode(i: int) -> None:
            x[i] = torch.from_numpy(self._decode(files[i][0]))

        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(decode, range(len(files))))
        return x, torch.tensor([label for _, label in files], dtype=torch.long)
