"""The rule tables the walker consults: a rule registered for a module type is used, and the
tracer keeps modules whole only when their rule asks for it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ridgeline.core.symmetry import rules
from ridgeline.core.symmetry.derive import derive_spec


class Scale(nn.Module):
    """Multiplies every feature by a learned per-feature factor (a channel-wise op)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.linspace(0.5, 1.5, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=0) * 0 + x * self.factor  # cumsum over the batch: no rule


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 6)
        self.scale = Scale(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.scale(self.first(x))))


def scale_rule(w, name, module, args, largs, result):
    w.tie(largs[0].axes[-1], f"{name}.factor", 0, name)
    return largs[0]


@pytest.fixture
def scale_rule_registered(monkeypatch):
    monkeypatch.setattr(rules, "_MODULE_RULES", list(rules._MODULE_RULES))
    from ridgeline.core import add_module_rule  # the public name plugins use

    add_module_rule(lambda m: isinstance(m, Scale), scale_rule, keep_whole=True)


def test_without_a_rule_the_unknown_op_freezes_the_group():
    spec = derive_spec(Net(), torch.randn(3, 4))
    assert "first" in spec.frozen and "cumsum" in spec.frozen["first"]


def test_a_registered_module_rule_is_used_and_keeps_the_module_whole(scale_rule_registered):
    module = Net()
    assert rules.keeps_whole(module.scale) and rules.module_rule(module.scale) is scale_rule
    spec = derive_spec(module, torch.randn(3, 4))
    assert spec.groups == {"first": 6} and not spec.frozen
    assert ("scale.factor", 0) in {(r.key, r.axis) for r in spec.axes["first"]}


def test_known_layers_have_rules():
    assert rules.keeps_whole(nn.Linear(2, 2)) and rules.keeps_whole(nn.Conv2d(2, 2, 3))
    assert not rules.keeps_whole(nn.ReLU()) and rules.module_rule(nn.ReLU()) is not None
    assert rules.module_rule(nn.LSTM(2, 2)) is None
