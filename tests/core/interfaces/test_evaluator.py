from __future__ import annotations

import pytest
import torch
from torch import nn

from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.evaluator import Evaluator


def test_evaluation_is_functional_and_matches_the_module(small_mlp, synthetic):
    module = small_mlp.build()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    other = small_mlp.init_state(5)
    evaluator = Evaluator(module, synthetic)
    result = evaluator.evaluate(other, "test")
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key])  # the user's module is untouched
    reference = small_mlp.build()
    reference.load_state_dict(other)
    x, y = synthetic.split("test")
    logits = reference(x)
    expected_loss = nn.functional.cross_entropy(logits, y).item()
    expected_acc = (logits.argmax(1) == y).float().mean().item()
    assert abs(result.loss - expected_loss) < 1e-5
    assert abs(result.accuracy - expected_acc) < 1e-9
    assert result.n == len(y)


def test_nan_losses_are_returned_not_raised(small_mlp, synthetic):
    state = small_mlp.init_state(0)
    state = {k: torch.full_like(v, float("nan")) for k, v in state.items()}
    result = Evaluator(small_mlp.build(), synthetic).evaluate(state, "test")
    assert not result.finite


class TinyBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 8)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.fc(x))))


def test_batchnorm_reset_recomputes_running_statistics(synthetic):
    module = TinyBN()
    evaluator = Evaluator(module, synthetic, bn_examples=10_000)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    reset = evaluator.reset_batchnorm(state, "train")
    x, _ = synthetic.split("train")
    with torch.no_grad():
        features = module.fc(x)
    torch.testing.assert_close(reset["bn.running_mean"], features.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(reset["bn.running_var"], features.var(0), rtol=1e-3, atol=1e-5)
    assert torch.equal(state["bn.running_mean"], torch.zeros(8))  # input not mutated


# -- evaluation options: points_per_batch, precision (issue 9) ----------------------------------
def _line(a, b, ts):
    return [{k: (1 - t) * a[k] + t * b[k] if a[k].is_floating_point() else a[k] for k in a} for t in ts]


@pytest.mark.parametrize("points_per_batch", [2, 4, 7])
def test_stacked_points_give_the_numbers_of_one_point_at_a_time(small_mlp, synthetic, points_per_batch):
    states = _line(small_mlp.init_state(0), small_mlp.init_state(1), [i / 6 for i in range(7)])
    one = Evaluator(small_mlp.build(), synthetic, batch_size=50)
    stacked = Evaluator(small_mlp.build(), synthetic, batch_size=50, points_per_batch=points_per_batch)
    expected = [one.evaluate(s, "test") for s in states]
    got = stacked.evaluate_many(states, "test")
    assert [e.n for e in got] == [e.n for e in expected]
    assert [e.accuracy for e in got] == [e.accuracy for e in expected]
    torch.testing.assert_close([e.loss for e in got], [e.loss for e in expected], rtol=1e-6, atol=0)


def test_stacked_points_work_for_batchnorm_networks_with_and_without_reset(regs):
    data = regs.datasets.create("synthetic", image_size=(1, 8, 8), num_classes=3, train_size=64,
                                test_size=48)
    model = regs.models.create("convnet", input_shape=data.input_shape, num_classes=3, widths=[4, 6])
    states = _line(model.init_state(0), model.init_state(1), [0.0, 0.3, 1.0])
    for bn_split in (None, "train"):
        one = Evaluator(model.build(), data, batch_size=20, bn_split=bn_split)
        stacked = Evaluator(model.build(), data, batch_size=20, bn_split=bn_split, points_per_batch=3)
        expected, got = [one.evaluate(s, "test") for s in states], stacked.evaluate_many(states, "test")
        assert [e.accuracy for e in got] == [e.accuracy for e in expected]
        torch.testing.assert_close([e.loss for e in got], [e.loss for e in expected], rtol=1e-5, atol=0)


def test_bad_evaluation_options_are_refused_by_name(small_mlp, synthetic):
    with pytest.raises(ConfigError, match="precision 'bf16' is CUDA autocast.*'cpu'"):
        Evaluator(small_mlp.build(), synthetic, precision="bf16")
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, fp16, got 'fp8'"):
        Evaluator(small_mlp.build(), synthetic, precision="fp8")
    for bad in (0, 2.5, "4"):
        with pytest.raises(ConfigError, match="points_per_batch must be a whole number"):
            Evaluator(small_mlp.build(), synthetic, points_per_batch=bad)
    assert Evaluator(small_mlp.build(), synthetic).points_per_batch == 1  # the measured CPU default


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.cuda
def test_cuda_evaluation_matches_the_cpu_within_its_precision(small_mlp, synthetic, precision):
    states = _line(small_mlp.init_state(0), small_mlp.init_state(1), [0.0, 0.5, 1.0])
    cpu = [Evaluator(small_mlp.build(), synthetic).evaluate(s, "test") for s in states]
    gpu = Evaluator(small_mlp.build(), synthetic, device="cuda", precision=precision, points_per_batch=2)
    got = gpu.evaluate_many(states, "test")
    tolerance = {"fp32": 1e-5, "bf16": 3e-2, "fp16": 5e-3}[precision]
    torch.testing.assert_close([e.loss for e in got], [e.loss for e in cpu], rtol=tolerance, atol=0)
    assert gpu.evaluate(states[1], "test").loss == pytest.approx(got[1].loss, rel=tolerance)


def test_in_memory_splits_are_held_without_a_copy(small_mlp, synthetic):
    evaluator = Evaluator(small_mlp.build(), synthetic, batch_size=7)
    evaluator.evaluate(small_mlp.init_state(0), "test")
    x, y = evaluator.stored("test")
    assert torch.equal(y, synthetic.stored("test")[1])
    assert x is synthetic.stored("test")[0]  # float inputs need no preparation: nothing copied
    assert evaluator.data("test")[0] is x
    batches = list(evaluator.batches("test", limit=10, batch_size=4))
    assert [len(b) for b, _ in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b for b, _ in batches]), x[:10])
