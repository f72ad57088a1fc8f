from __future__ import annotations

import torch
from torch import nn

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
