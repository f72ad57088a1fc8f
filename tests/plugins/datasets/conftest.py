"""Small dataset files written the way users have them: PNG folders, CIFAR python batches, .npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ridgeline.plugins.datasets.cifar import write_cifar

CLASSES = ("cat", "dog", "emu")


def _write_image_folder(root: Path, counts: dict[str, int], *, size=(6, 8), mode="RGB", seed=0,
                       classes=CLASSES, suffix=".png") -> Path:
    """``counts[split]`` images per class in root/<split>/<class>/, ``size`` = (height, width);
    class c's images have mean intensity rising with c, so they are separable."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = 1 if mode == "L" else 3
    for split, count in counts.items():
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 100, (*size, channels)) + 70 * c
                array = pixels.astype(np.uint8)
                image = Image.fromarray(array[..., 0] if mode == "L" else array, mode)
                image.save(folder / f"{i:03d}{suffix}")
    return root


def _random_cifar(seed: int, n: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, classes, n)


@pytest.fixture
def write_image_folder():
    """``write_image_folder(root, {split: images per class}, size=(h, w), mode="RGB" | "L", ...)``."""
    return _write_image_folder


@pytest.fixture
def random_cifar():
    """``random_cifar(seed, n, classes=10)``: uint8 images n x 3 x 32 x 32 and labels."""
    return _random_cifar


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> Path:
    return _write_image_folder(tmp_path_factory.mktemp("images"), {"train": 4, "test": 2})


@pytest.fixture(scope="session")
def cifar10_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar10")
    write_cifar(root, "cifar10", _random_cifar(0, 50), _random_cifar(1, 20))
    return root


@pytest.fixture(scope="session")
def cifar100_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar100")
    write_cifar(root, "cifar100", _random_cifar(2, 40, 100), _random_cifar(3, 10, 100))
    return root


@pytest.fixture(scope="session")
def npz_path(tmp_path_factory) -> Path:
    rng = np.random.default_rng(4)
    path = tmp_path_factory.mktemp("tensors") / "data.npz"
    np.savez(path, x_train=rng.normal(size=(30, 5)).astype(np.float32), y_train=rng.integers(0, 4, 30),
             x_test=rng.normal(size=(10, 5)).astype(np.float32), y_test=np.arange(10) % 4)
    return path


@pytest.fixture(scope="session")
def file_options(image_root, cifar10_root, cifar100_root, npz_path) -> dict[str, dict]:
    """Options that make every file-reading dataset entry load the generated files."""
    return {"image_folder": {"root": str(image_root)}, "cifar10": {"root": str(cifar10_root)},
            "cifar100": {"root": str(cifar100_root)}, "tensors": {"path": str(npz_path)}}
