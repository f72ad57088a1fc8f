"""Shared fixtures: small models and datasets so the suite stays fast on two cores."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core.plugin_host.host import registries


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip where no CUDA device is visible (benchmarks/gpu.sh runs them)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)
    yield


@pytest.fixture
def regs():
    return registries()


@pytest.fixture
def synthetic(regs):
    return regs.datasets.create("synthetic", features=12, num_classes=3, train_size=256, test_size=128)


@pytest.fixture
def small_mlp(regs, synthetic):
    return regs.models.create("mlp", input_shape=synthetic.input_shape,
                              num_classes=synthetic.num_classes, widths=[16, 16])
