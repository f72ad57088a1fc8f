"""Fixtures shared by the run tests: small pipeline configurations (two 16-16 MLPs on synthetic
data, identity and weight matching), so that the pipeline, sweep and Ray tests differ only where
they mean to."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from ridgeline.core.run.config import PipelineConfig

SMALL_PIPELINE = {
    "dataset": {"name": "synthetic", "features": 12, "num_classes": 3, "train_size": 256, "test_size": 128},
    "model": {"name": "mlp", "widths": [16, 16]},
    "train": {"steps": 40, "batch_size": 32, "lr": 0.01},
    "pairs": [{"name": "ab", "seeds": [0, 1]}],
    "aligners": ["identity", "weight_matching"],
    "metrics": [{"name": "loss_barrier", "grid": 6}, {"name": "error_barrier", "grid": 6}],
}
"""The pair ``ab`` (seeds 0 and 1, 40 steps), loss and error barriers on a 6-point grid."""


@pytest.fixture(scope="session")
def small_config() -> Callable[..., PipelineConfig]:
    """``small_config(folder, **keys)``: :data:`SMALL_PIPELINE` writing ``folder/results.h5``,
    with ``keys`` replacing its top-level keys."""
    def make(folder: Path, **overrides: object) -> PipelineConfig:
        return PipelineConfig.from_dict({"output": str(folder / "results.h5"), **SMALL_PIPELINE, **overrides})

    return make


@pytest.fixture(scope="session")
def sweep_config(small_config) -> Callable[..., PipelineConfig]:
    """``small_config`` of a sweep: seeds 0..2 paired with the first (two pairs, ``sw:...``),
    trained 30 steps; keys passed to it still replace any of these."""
    return functools.partial(small_config, train={"steps": 30, "batch_size": 32, "lr": 0.01},
                             pairs=[{"name": "sw", "seeds": "0..2", "pairs": "first"}])
