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
from ridgeline.plugins.datasets.local import check_test_fraction, held_out_split

SETS = {"breast_cancer": (30, 2), "wine": (13, 3), "iris": (4, 3)}


class TabularDataset(Dataset):
    """scikit-learn's bundled tabular sets (breast_cancer, wine, iris), standardised, seeded split."""

    name = "tabular"

    def __init__(self, *, table: Literal["breast_cancer", "wine", "iris"] = "breast_cancer",
                 test_fraction: float = 0.25, seed: int = 0) -> None:
        if table not in SETS:
            raise DataError(f"tabular table must be one of {sorted(SETS)}, got {table!r}")
        check_test_fraction("tabular", test_fraction)
        super().__init__(table=table, test_fraction=test_fraction, seed=seed)
        features, self.num_classes = SETS[table]
        self.input_shape = (features,)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{self.options['table']}")()
        x = torch.as_tensor(bunch.data, dtype=torch.float32)
        y = torch.as_tensor(bunch.target, dtype=torch.long)
        return held_out_split(x, y, split, test_fraction=self.options["test_fraction"],
                              seed=self.options["seed"])
