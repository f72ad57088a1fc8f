from __future__ import annotations

import os

import pytest
import torch

from ridgeline.core.errors import DataError
from ridgeline.core.plugin_host.host import registries

OPTIONS = {"mnist1d": {"num_samples": 600}, "digits": {}, "synthetic": {}}


@pytest.mark.filterwarnings("ignore:.*is not the official")
@pytest.mark.parametrize("name", registries().datasets.list())
def test_every_dataset_gives_well_formed_reproducible_splits(name, tmp_path, monkeypatch, file_options):
    monkeypatch.chdir(tmp_path)  # nothing may be written to the working directory
    options = {**OPTIONS, **file_options}.get(name, {})
    dataset = registries().datasets.create(name, **options)
    for split in dataset.splits:
        x, y = dataset.split(split)
        assert x.dtype == torch.float32 and y.dtype == torch.long
        assert tuple(x.shape[1:]) == tuple(dataset.input_shape)
        assert len(x) == len(y) > 0
        assert int(y.min()) >= 0 and int(y.max()) < dataset.num_classes
        assert torch.isfinite(x).all()
        streamed = torch.cat([xb for xb, _ in dataset.batches(split, 7)])
        assert torch.equal(streamed, x)  # batches are the split, prepared the same way
    again = registries().datasets.create(name, **options)
    assert torch.equal(again.split("test")[0], dataset.split("test")[0])
    assert os.listdir(tmp_path) == []


def test_unknown_split_names_the_known_ones(synthetic):
    with pytest.raises(DataError, match="has no split 'validation'; it has train, test"):
        synthetic.split("validation")


def test_constant_training_features_are_not_blown_up(regs):
    x, _ = regs.datasets.create("digits").split("test")
    assert float(x.abs().max()) < 100.0  # digits has border pixels that are 0 in training
