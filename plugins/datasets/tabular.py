"""``tabular``: scikit-learn's bundled tabular classification sets (no download).

``table`` picks the set: ``breast_cancer`` (569 examples, 30 features, 2 classes), ``wine`` (178,
13, 3) or ``iris`` (150, 4, 3). (The option is not called ``name``: in a pipeline's ``[dataset]``
table ``name`` is the registry entry, ``tabular``.) A seeded stratified split holds out
``test_fraction`` for testing; every feature is standardised with the training split's mean and
standard deviation.
"""

from __future__ import annotations

from typing import Literal

import torch

from ridgeline.core import DataError, Dataset
from ridgeline.plugins.datasets.local import _standardise

SETS = {"breast_cancer": (30, 2), "wine": (13, 3), "iris": (4, 3)}


class TabularDataset(Dataset):
    """scikit-learn's bundled tabular sets (breast_cancer, wine, iris), standardised, seeded split."""

    name = "tabular"

    def __init__(self, *, table: Literal["breast_cancer", "wine", "iris"] = "breast_cancer",
                 test_fraction: float = 0.25, seed: int = 0) -> None:
        if table not in SETS:
            raise DataError(f"tabular table must be one of {sorted(SETS)}, got {table!r}")
        if not 0.0 < test_fraction < 1.0:
            raise DataError(f"tabular test_fraction must lie in (0, 1), got {test_fraction}")
        super().__init__(table=table, test_fraction=test_fraction, seed=seed)
        features, self.num_classes = SETS[table]
        self.input_shape = (features,)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        from sklearn import datasets
        from sklearn.model_selection import train_test_split

        bunch = getattr(datasets, f"load_{self.options['table']}")()
        x = torch.as_tensor(bunch.data, dtype=torch.float32)
        y = torch.as_tensor(bunch.target, dtype=torch.long)
        train_idx, test_idx = train_test_split(
            torch.arange(len(y)).numpy(), test_size=self.options["test_fraction"],
            random_state=self.options["seed"], stratify=y.numpy())
        x_train, x_test = _standardise(x[train_idx], x[test_idx])
        return (x_train, y[train_idx]) if split == "train" else (x_test, y[test_idx])
