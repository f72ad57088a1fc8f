"""Trajectory analysis: metrics between two runs' checkpoints, step by step."""

from __future__ import annotations

import pytest

from ridgeline.core.checkpoint import load_state
from ridgeline.core.errors import ConfigError, StateMismatchError
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.run.training import TrainConfig, train
from ridgeline.core.run.trajectory import checkpoint_series, measure_trajectory
from ridgeline.core.state import distance


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of a tiny mlp (different seeds) and a repeat of the first, checkpointed every 10 steps."""
    from ridgeline.core.plugin_host.host import registries

    regs = registries()
    data = regs.datasets.create("synthetic", features=8, num_classes=3, train_size=128, test_size=64)
    model = regs.models.create("mlp", input_shape=data.input_shape, num_classes=data.num_classes, widths=[8])
    config = TrainConfig(steps=30, batch_size=32, lr=1e-2, checkpoint_every=10)
    dirs = {}
    for name, seed in (("a", 0), ("b", 1), ("a_again", 0)):
        dirs[name] = tmp_path_factory.mktemp(name)
        train(model, data, config, seed=seed, checkpoint_dir=dirs[name], progress=False)
    return regs, dirs, Evaluator(model.build(), data)


def test_checkpoint_series_finds_steps_in_order(runs):
    _, dirs, _ = runs
    assert list(checkpoint_series(dirs["a"])) == [10, 20, 30]


def test_metrics_per_step_match_the_checkpoints(runs):
    regs, dirs, evaluator = runs
    metrics = {"loss": regs.metrics.create("loss_barrier", grid=3),
               "layers": regs.metrics.create("layerwise_barrier"),
               "geometry": regs.metrics.create("geometry", length_points=3)}
    result = measure_trajectory(dirs["a"], dirs["b"], evaluator, metrics)
    geometry = {s["step"]: s for s in result.summaries if s["metric"] == "geometry"}
    assert sorted(geometry) == [10, 20, 30]
    for step, summary in geometry.items():
        a, b = (load_state(dirs[r] / f"step{step}.safetensors") for r in ("a", "b"))
        assert summary["distance"] == pytest.approx(distance(a, b), rel=1e-6)
        end = evaluator.evaluate(b, "test").loss
        loss = next(s for s in result.summaries if s["metric"] == "loss" and s["step"] == step)
        assert loss["end"] == pytest.approx(end)
    layer_rows = [r for r in result.rows if r["metric"] == "layers"]
    assert [r["label"] for r in layer_rows[:2]] == ["hidden.0", "head"]  # model order, not the file's
    assert len(layer_rows) == 2 * 3


def test_a_run_against_its_repeat_has_no_barrier(runs):
    regs, dirs, evaluator = runs
    result = measure_trajectory(dirs["a"], dirs["a_again"], evaluator,
                                {"loss": regs.metrics.create("loss_barrier", grid=3)}, steps=[20, 30])
    assert [s["step"] for s in result.summaries] == [20, 30]
    assert all(abs(s["barrier"]) < 1e-6 for s in result.summaries)


def test_trainable_path_is_fitted_at_every_step(runs):
    regs, dirs, evaluator = runs
    result = measure_trajectory(dirs["a"], dirs["b"], evaluator,
                                {"loss": regs.metrics.create("loss_barrier", grid=3)}, path="bezier",
                                path_options={"steps": 3, "batch_size": 16}, steps=[10])
    assert list(result.fits) == [10] and result.fits[10]["steps"] == 3


def test_in_memory_series_and_bad_steps(runs):
    regs, dirs, evaluator = runs
    a = {k: load_state(p) for k, p in checkpoint_series(dirs["a"]).items()}
    metric = {"loss": regs.metrics.create("loss_barrier", grid=3)}
    with pytest.raises(ConfigError, match=r"steps \[15\] are not in both"):
        measure_trajectory(a, dirs["b"], evaluator, metric, steps=[15])
    with pytest.raises(ConfigError, match="share no step"):
        measure_trajectory({5: a[10]}, dirs["b"], evaluator, metric)
    broken = {k: v for k, v in a[10].items() if k != "head.bias"}
    with pytest.raises(StateMismatchError, match="run A at step 10 lacks head.bias"):
        measure_trajectory({10: broken}, dirs["b"], evaluator, metric)
