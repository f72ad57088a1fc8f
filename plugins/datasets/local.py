"""Datasets that never touch the network: generated (MNIST-1D, synthetic) or bundled (digits)."""

from __future__ import annotations

import torch

from ridgeline.core import DataError, Dataset


def _standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Scale every split with the training split's mean and standard deviation.

    Features constant on the training split (std 0, e.g. border pixels of digits) are only
    centred: dividing by a tiny std would blow up the test values that are not constant.
    """
    mean, std = train.mean(0, keepdim=True), train.std(0, keepdim=True)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return [(x - mean) / std for x in (train, *others)]


def check_test_fraction(entry: str, test_fraction: float) -> None:
    """The held-out fraction of a bundled set lies strictly between 0 and 1."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"{entry} test_fraction must lie in (0, 1), got {test_fraction}")


def held_out_split(x: torch.Tensor, y: torch.Tensor, split: str, *, test_fraction: float,
                   seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``split`` (train or test) of a stratified split of (x, y), seeded, that holds out
    ``test_fraction``; every feature standardised with the training split's statistics."""
    from sklearn.model_selection import train_test_split

    train_idx, test_idx = train_test_split(
        torch.arange(len(y)).numpy(), test_size=test_fraction, random_state=seed, stratify=y.numpy())
    x_train, x_test = _standardise(x[train_idx], x[test_idx])
    return (x_train, y[train_idx]) if split == "train" else (x_test, y[test_idx])


class MNIST1DDataset(Dataset):
    """MNIST-1D (Greydanus 2020): 40-sample 1-D digit signals, 10 classes, generated offline.

    Built with ``mnist1d.data.make_dataset`` (``get_dataset`` would download and write files).
    ``num_samples`` examples in all, ``train_split`` of them for training; ``seed`` fixes them.
    """

    name = "mnist1d"
    input_shape = (40,)
    num_classes = 10

    def __init__(self, *, num_samples: int = 5000, train_split: float = 0.8, seed: int = 42) -> None:
        super().__init__(num_samples=num_samples, train_split=train_split, seed=seed)
        self._arrays: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self._arrays is None:
            from mnist1d.data import get_dataset_args, make_dataset

            args = get_dataset_args()
            args.num_samples = int(self.options["num_samples"])
            args.train_split = float(self.options["train_split"])
            args.seed = int(self.options["seed"])
            data = make_dataset(args)
            x_train = torch.as_tensor(data["x"], dtype=torch.float32)
            x_test = torch.as_tensor(data["x_test"], dtype=torch.float32)
            x_train, x_test = _standardise(x_train, x_test)
            self._arrays = {
                "train": (x_train, torch.as_tensor(data["y"], dtype=torch.long)),
                "test": (x_test, torch.as_tensor(data["y_test"], dtype=torch.long)),
            }
        return self._arrays[split]


class DigitsDataset(Dataset):
    """scikit-learn's bundled 8x8 handwritten digits (1797 images), as 1x8x8 images.

    A seeded stratified split holds out ``test_fraction`` for testing.
    """

    name = "digits"
    input_shape = (1, 8, 8)
    num_classes = 10

    def __init__(self, *, test_fraction: float = 0.25, seed: int = 0) -> None:
        check_test_fraction("digits", test_fraction)
        super().__init__(test_fraction=test_fraction, seed=seed)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.as_tensor(digits.target, dtype=torch.long)
        return held_out_split(x, y, split, test_fraction=self.options["test_fraction"],
                              seed=self.options["seed"])


class SyntheticDataset(Dataset):
    """Seeded Gaussian classes: ``num_classes`` means on a sphere of radius ``separation``,
    unit-variance noise, ``features`` dimensions (or ``image_size`` for C x H x W inputs)."""

    name = "synthetic"

    def __init__(self, *, features: int = 16, num_classes: int = 4, train_size: int = 512,
                 test_size: int = 256, separation: float = 3.0, seed: int = 0,
                 image_size: list[int] | None = None) -> None:
        super().__init__(features=features, num_classes=num_classes, train_size=train_size,
                         test_size=test_size, separation=separation, seed=seed, image_size=image_size)
        self.input_shape = tuple(image_size) if image_size else (int(features),)
        self.num_classes = int(num_classes)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(int(self.options["seed"]))
        dim = int(torch.tensor(self.input_shape).prod())
        means = torch.randn(self.num_classes, dim, generator=generator)
        means = means / means.norm(dim=1, keepdim=True) * float(self.options["separation"])
        out = {}
        for name in ("train", "test"):  # both drawn in a fixed order: each split is reproducible
            n = int(self.options[f"{name}_size"])
            y = torch.randint(self.num_classes, (n,), generator=generator)
            x = means[y] + torch.randn(n, dim, generator=generator)
            out[name] = (x.reshape(n, *self.input_shape), y)
        return out[split]
