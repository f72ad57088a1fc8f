from __future__ import annotations

import torch

from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.run.training import TrainConfig, spawn, train
from ridgeline.core.state import distance


def test_training_learns_and_is_reproducible(small_mlp, synthetic):
    config = TrainConfig(steps=60, batch_size=32, lr=1e-2)
    a = train(small_mlp, synthetic, config, seed=0, progress=False)
    b = train(small_mlp, synthetic, config, seed=0, progress=False)
    assert distance(a, b) == 0.0
    evaluator = Evaluator(small_mlp.build(), synthetic)
    untrained = evaluator.evaluate(small_mlp.init_state(0), "test").accuracy
    assert evaluator.evaluate(a, "test").accuracy > untrained
    assert evaluator.evaluate(a, "test").accuracy > 0.8


def test_spawned_children_share_their_parent_and_differ(small_mlp, synthetic, tmp_path):
    config = TrainConfig(steps=40, batch_size=32, lr=1e-2, checkpoint_every=20)
    result = spawn(small_mlp, synthetic, config, seed=0, spawn_step=20, progress=False)
    parent_again = train(small_mlp, synthetic, config, seed=0, stop_step=20, progress=False)
    assert distance(result.parent, parent_again) == 0.0
    a, b = result.children
    assert distance(a, b) > 0
    assert distance(a, result.parent) > 0 and distance(b, result.parent) > 0
    train(small_mlp, synthetic, config, seed=1, checkpoint_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step20.safetensors", "step40.safetensors"]
    assert isinstance(a["hidden.0.weight"], torch.Tensor)


def test_training_runs_on_the_configured_threads_and_restores_the_callers_settings(small_mlp, synthetic):
    config = TrainConfig(steps=20, batch_size=32, lr=1e-2, threads=1)
    seen = []
    torch.set_num_threads(2)
    try:
        a = train(small_mlp, synthetic, config, seed=0, progress=False,
                  on_step=lambda step, state: seen.append((torch.get_num_threads(),
                                                           torch.are_deterministic_algorithms_enabled())))
        assert torch.get_num_threads() == 2 and not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(1)
    assert set(seen) == {(1, True)}
    assert distance(a, train(small_mlp, synthetic, config, seed=0, progress=False)) == 0.0
    assert TrainConfig(threads=3).resolved_threads() == 3
    assert TrainConfig().resolved_threads() == torch.get_num_threads() == 1
    assert "threads" not in TrainConfig().to_dict() and TrainConfig(threads=2).to_dict()["threads"] == 2
