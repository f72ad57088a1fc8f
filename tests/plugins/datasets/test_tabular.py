"""``tabular``: scikit-learn's bundled sets, standardised on the training split, seeded split."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core import ConfigError, DataError


@pytest.mark.parametrize(("name", "features", "classes", "size"),
                         [("breast_cancer", 30, 2, 569), ("wine", 13, 3, 178), ("iris", 4, 3, 150)])
def test_each_set_is_split_stratified_and_standardised(regs, name, features, classes, size):
    data = regs.datasets.create("tabular", table=name)
    (x, _), (xt, yt) = data.split("train"), data.split("test")
    assert data.input_shape == (features,) and data.num_classes == classes
    assert len(x) + len(xt) == size and abs(len(xt) / size - 0.25) < 0.01
    assert torch.allclose(x.mean(0), torch.zeros(features), atol=1e-5)
    assert torch.allclose(x.std(0), torch.ones(features), atol=1e-4)
    assert set(yt.tolist()) == set(range(classes))
    other = regs.datasets.create("tabular", table=name, seed=1)
    assert not torch.equal(other.split("test")[0], xt)


def test_unknown_sets_and_fractions_are_refused(regs):
    with pytest.raises(ConfigError, match=r"table = 'adult' must be one of 'breast_cancer', 'wine', 'iris'"):
        regs.datasets.create("tabular", table="adult")
    with pytest.raises(DataError, match="test_fraction must lie in"):
        regs.datasets.create("tabular", test_fraction=1.5)
