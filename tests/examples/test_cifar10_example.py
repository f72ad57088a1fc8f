"""examples/cifar10_resnet20.toml, the classic CIFAR-10 study, runs end to end on a tiny folder
generated in the exact CIFAR-10 python-batch format (only the sizes are made small: 64 training and
32 test images, resized to 16 x 16, a 1x-wide ResNet-20, one epoch, a 3-point grid)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from ridgeline.core.results.readers import read_summaries
from ridgeline.core.run.config import PipelineConfig
from ridgeline.core.run.pipeline import Pipeline
from ridgeline.plugins.datasets.cifar import write_cifar

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cifar10_resnet20.toml"


@pytest.mark.filterwarnings("ignore:.*is not the official")
def test_the_cifar10_resnet20_study_runs_on_a_generated_cifar_folder(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 96)
    images = rng.integers(0, 120, (96, 3, 32, 32)) + 12 * labels[:, None, None, None]  # learnable
    write_cifar(tmp_path / "data", "cifar10", (images[:64], labels[:64]), (images[64:], labels[64:]))
    study = tomllib.loads(EXAMPLE.read_text())
    study["dataset"]["image_size"] = 16  # decoded at 32 x 32, resized per batch: 4x less work
    study["model"]["width"] = 1
    study["train"].update(epochs=1, batch_size=32)
    study["metrics"] = [{**m, "grid": 2} for m in study["metrics"]]
    study["device"] = "cpu"
    config = PipelineConfig.from_dict(study, base_dir=tmp_path)  # root = "data", as in the example
    output = Pipeline(config, progress=False).run()
    rows = read_summaries(output)
    assert {(r["aligner"], r["correction"]) for r in rows} == {
        (a, c) for a in ("identity", "weight_matching", "activation_matching")
        for c in ("none", "bn_reset", "repair")}
    assert all(r["complete"] and np.isfinite(r["barrier"]) for r in rows)
    cache = output.parent / "data-cache"
    assert sorted(p.name.split("-")[1] for p in cache.iterdir()) == ["test", "train"]
