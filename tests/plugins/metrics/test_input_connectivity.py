"""``input_connectivity`` (Vrabel et al. 2024): on a network whose class 0 surrounds a disc of
class 1, the line between two class-0 inputs crosses the disc and the fitted curve goes round it;
through a pipeline the records land in the results file like any curve."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ridgeline.core import Dataset, Evaluator, PathProbe, measure_along
from ridgeline.core.errors import ConfigError
from ridgeline.core.results.readers import read_curves, read_summaries
from ridgeline.core.run.config import PipelineConfig
from ridgeline.core.run.pipeline import run_pipeline


class Ring(nn.Module):
    """Class 1 inside the disc of radius ``radius``, class 0 outside."""

    def __init__(self) -> None:
        super().__init__()
        self.radius = nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        r2 = (x ** 2).sum(dim=1)
        return torch.stack([4.0 * (r2 - self.radius ** 2), torch.zeros_like(r2)], dim=1)


class Circle(Dataset):
    """Twelve points on the circle of radius 2 (class 0) and four near the centre (class 1)."""

    name = "circle"
    input_shape = (2,)
    num_classes = 2
    splits = ("train", "test")

    def load(self, split):
        angles = torch.linspace(0, 2 * math.pi, 13)[:12] + 0.05
        outer = 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
        inner = 0.3 * torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        return torch.cat([outer, inner]), torch.tensor([0] * 12 + [1] * 4)


@pytest.fixture
def ring():
    module = Ring()
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    return Evaluator(module, Circle()), state


def test_fitted_input_paths_go_round_the_other_class(regs, ring):
    evaluator, state = ring
    path = regs.paths.create("linear", endpoints=[state, state])
    metric = regs.metrics.create("input_connectivity", pairs=10, steps=150, grid=21, seed=1)
    rows, summary = measure_along(metric, PathProbe(path, evaluator))
    assert len(rows) == 10 * 21 and rows[0]["label"] == "pair0" and rows[-1]["label"] == "pair9"
    assert summary["pairs"] == 10.0
    assert summary["linear_barrier_max"] > 2.0 and summary["linear_connected"] < 1.0  # some lines cross
    assert summary["fitted_barrier_max"] < 0.05 and summary["fitted_connected"] == 1.0
    assert summary["fitted_barrier_mean"] < summary["linear_barrier_mean"] / 50
    for row in rows:
        assert row["target"] == float(row["index_a"] >= 12) == float(row["index_b"] >= 12)  # one class
        if row["s"] in (0.0, 1.0):  # the curves share their endpoints
            assert row["loss_fitted"] == pytest.approx(row["loss_linear"]) and row["offset"] < 1e-6


def test_label_selection_and_too_few_pairs(regs, ring):
    evaluator, state = ring
    path = regs.paths.create("linear", endpoints=[state, state])
    # label selection pairs correctly predicted inputs of one true label: 12 of class 0 and 4 of
    # class 1, so 66 + 6 pairs exist; more are asked for
    metric = regs.metrics.create("input_connectivity", pairs=80, steps=0, grid=3, select="label")
    rows, summary = measure_along(metric, PathProbe(path, evaluator))
    assert summary["pairs"] == 66 + 6  # C(12, 2) + C(4, 2)
    assert all(math.isnan(r["target"]) for r in rows[72 * 3:])  # the missing pairs are NaN rows
    # steps = 0: the curve is the line
    assert summary["fitted_barrier_mean"] == pytest.approx(summary["linear_barrier_mean"], rel=1e-6)


@pytest.mark.parametrize("options, message", [
    # closed sets and types are checked against the annotations (ridgeline.core.plugin_host.options)
    ({"select": "random"}, "option select = 'random' must be one of 'predicted', 'label'"),
    ({"curve": "spline"}, "option curve = 'spline' must be one of 'polychain', 'bezier'"),
    ({"pairs": 0}, "pairs must be an integer >= 1"),
    ({"steps": "ten"}, "option steps = 'ten' must be int"),
    ({"steps": -1}, "steps must be an integer >= 0"),
    ({"t": 2.0}, r"t must lie in \[0, 1\]"),
    ({"lr": -1.0}, "lr must be a positive number"),
])
def test_bad_options_are_refused_before_any_work(regs, options, message):
    with pytest.raises(ConfigError, match=message):
        regs.metrics.create("input_connectivity", **options)


def test_through_the_pipeline_into_the_results_file(tmp_path):
    config = PipelineConfig.from_dict({
        "output": str(tmp_path / "results.h5"),
        "dataset": {"name": "synthetic", "features": 12, "num_classes": 3, "train_size": 128,
                    "test_size": 64},
        "model": {"name": "mlp", "widths": [16]},
        "train": {"steps": 30, "batch_size": 32, "lr": 0.01},
        "pairs": [{"name": "ab", "seeds": [0, 1]}],
        "aligners": ["identity"],
        "metrics": [{"name": "input_connectivity", "pairs": 2, "steps": 10, "grid": 3}],
    })
    output = run_pipeline(config, progress=False)
    rows = [r for r in read_curves(output) if r["metric"] == "input_connectivity"]
    assert len(rows) == 2 * 3 and {r["label"] for r in rows} == {"pair0", "pair1"}
    summary = next(r for r in read_summaries(output) if r["metric"] == "input_connectivity")
    assert summary["complete"] and summary["pairs"] == 2.0
