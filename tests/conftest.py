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


TINY_RESULTS_TOML = """
output = "results.h5"
aligners = ["identity", "weight_matching"]
paths = ["linear", { name = "polychain", steps = 3, batch_size = 32 }]
metrics = [{ name = "loss_barrier", grid = 5 }, { name = "error_barrier", grid = 5 }]
[dataset]
name = "synthetic"
[model]
name = "mlp"
widths = [8]
[train]
steps = 20
[[pairs]]
name = "seed0-seed1"
seeds = [0, 1]
"""


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory):
    """A finished results file (two tiny MLPs; identity and weight matching; the line and a
    polychain; loss and error barriers at 5 points), run once per session. Read it, never write it."""
    from ridgeline.core.run.config import PipelineConfig
    from ridgeline.core.run.pipeline import Pipeline

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny_results")
    (folder / "pipeline.toml").write_text(TINY_RESULTS_TOML)
    return Pipeline(PipelineConfig.from_toml(folder / "pipeline.toml"), device="cpu", progress=False).run()
