"""Statistics over batches: pooled moments, exact BatchNorm statistics, passes that stream."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.interfaces.statistics import PooledMoments
from ridgeline.core.numerics import collect_moments, module_producers


def test_pooled_moments_of_uneven_batches_are_those_of_one_batch():
    x = torch.randn(1347, 5, dtype=torch.float64) * torch.arange(1, 6) + 3
    x[1000:] += 0.5  # the last batch differs: its mean spread must enter the variance
    pooled = PooledMoments()
    for start in (0, 1000):
        pooled.add(x[start:start + 1000])
    assert pooled.n == 1347
    torch.testing.assert_close(pooled.mean, x.mean(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(pooled.variance(unbiased=True), x.var(0), rtol=1e-12, atol=1e-12)
    images = torch.randn(7, 3, 4, 5)
    channels = PooledMoments()
    channels.add_channels(images[:4])
    channels.add_channels(images[4:])
    flat = images.movedim(1, -1).reshape(-1, 3).double()
    torch.testing.assert_close(channels.std, flat.std(0, correction=0), rtol=1e-6, atol=1e-7)


class TwoBN(nn.Module):
    """Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear."""

    def __init__(self):
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(12, 8), nn.BatchNorm1d(8)
        self.fc2, self.bn2 = nn.Linear(8, 6), nn.BatchNorm1d(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.fc1(x)))
        return self.head(torch.relu(self.bn2(self.fc2(x))))


@pytest.fixture
def uneven(regs):
    """1347 training examples: batches of 1000 and 347 (the case issue 10 measured)."""
    torch.manual_seed(0)
    data = regs.datasets.create("synthetic", features=12, num_classes=3, train_size=1347, test_size=10)
    module = TwoBN()
    with torch.no_grad():
        module.fc1.bias.add_(2.0)  # statistics far from the initial ones
    return data, module, {k: v.clone() for k, v in module.state_dict().items()}


def test_batchnorm_statistics_weigh_batches_by_their_size(uneven):
    data, module, state = uneven
    reset = Evaluator(module, data, batch_size=1000, bn_examples=10_000).reset_batchnorm(state, "train")
    x, _ = data.split("train")
    with torch.no_grad():
        features = module.fc1(x).double()
    # the first BatchNorm's input does not depend on batching: its full-pass statistics are exact
    torch.testing.assert_close(reset["bn1.running_mean"].double(), features.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(reset["bn1.running_var"].double(), features.var(0), rtol=1e-5, atol=1e-6)
    assert int(reset["bn1.num_batches_tracked"]) == 2
    assert torch.equal(state["bn1.running_mean"], torch.zeros(8))  # the input state is not mutated


def test_further_passes_make_deeper_batchnorm_layers_exact(uneven):
    data, module, state = uneven
    one_batch = Evaluator(module, data, batch_size=1347, bn_examples=1347).reset_batchnorm(state)
    streamed = Evaluator(module, data, batch_size=1000, bn_examples=1347)

    def worst(reset):
        return max(float((reset[k] - one_batch[k]).abs().max() / one_batch[k].abs().max())
                   for k in one_batch if "running" in k)

    assert worst(streamed.reset_batchnorm(state, passes=1)) > 1e-4  # bn2 saw batch-normalised inputs
    assert worst(streamed.reset_batchnorm(state, passes=2)) < 1e-5  # two layers, two passes: exact


def test_statistics_passes_stream_batches_and_never_take_a_whole_split(uneven, monkeypatch):
    data, module, state = uneven
    monkeypatch.setattr(data, "split", lambda split: pytest.fail(f"whole split {split!r} requested"))
    sizes = []
    module.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    evaluator = Evaluator(module, data, batch_size=500, bn_examples=1200)
    evaluator.reset_batchnorm(state, "train")
    assert sizes == [500, 500, 200]
    sizes.clear()
    moments = collect_moments(evaluator, [state, state], module_producers(evaluator.module)[:1],
                              examples=1100, batch_size=400)
    assert sizes == [400] * 4 + [300] * 2 and next(iter(moments.values())).n == 1100
