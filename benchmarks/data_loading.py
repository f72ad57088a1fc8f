"""Loading a 50 000-image split: first load (decode) against the second (the cache), one process.

Writes a CIFAR-10 folder in the official python-batch format (50 000 training and 10 000 test
images, random pixels) and, with ``--png``, the same training images as a PNG image folder; then
loads the training split twice through fresh dataset objects sharing one cache folder, and once
with the cache off. Prints seconds and ratios. Run: ``python benchmarks/data_loading.py [--png]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ridgeline.core import registries
from ridgeline.plugins.datasets.cifar import write_cifar


def timed_load(name: str, cache: Path | None, **options) -> float:
    dataset = registries().datasets.create(name, cache=cache is not None, **options)
    if cache is not None:
        dataset.use_cache(cache)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # generated files are not the official ones
        x, _ = dataset.stored("train")
    assert len(x) == 50_000
    return time.perf_counter() - start


def write_pngs(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / "train" / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i:05d}.png")
    (root / "test" / "class0").mkdir(parents=True)
    Image.fromarray(images[0].transpose(1, 2, 0)).save(root / "test" / "class0" / "0.png")


def report(name: str, first: float, second: float, uncached: float) -> None:
    print(f"{name:<14} first load {first:7.2f} s (decode + cache write), second {second:6.3f} s "
          f"(cache): {first / second:6.1f}x; without the cache {uncached:7.2f} s "
          f"({uncached / second:6.1f}x the cached load)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", action="store_true", help="also time a 50 000-PNG image folder")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50_000, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, 50_000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_cifar(root / "cifar", "cifar10", (images, labels), (images[:10_000], labels[:10_000]))
        cache = root / "cache"
        first, second = timed_load("cifar10", cache, root=str(root / "cifar")), timed_load(
            "cifar10", cache, root=str(root / "cifar"))
        report("cifar10", first, second, timed_load("cifar10", None, root=str(root / "cifar")))
        if args.png:
            start = time.perf_counter()
            write_pngs(root / "png", images, labels)
            print(f"(wrote 50 000 PNGs in {time.perf_counter() - start:.1f} s)")
            first, second = timed_load("image_folder", cache, root=str(root / "png")), timed_load(
                "image_folder", cache, root=str(root / "png"))
            report("image_folder", first, second, timed_load("image_folder", None, root=str(root / "png")))


if __name__ == "__main__":
    main()
