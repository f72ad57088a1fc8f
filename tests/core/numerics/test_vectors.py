"""Vectors over state keys: missing keys count as zero, flattening keeps key order."""

from __future__ import annotations

import torch

from ridgeline.core.numerics.vectors import angle, dot, flatten, norm


def test_dot_treats_missing_keys_as_zero():
    a = {"x": torch.tensor([1.0, 2.0]), "y": torch.tensor([3.0])}
    assert dot(a, {"x": torch.tensor([1.0, 1.0])}) == 3.0


def test_flatten_follows_the_given_key_order_and_skips_integer_buffers():
    state = {"a": torch.tensor([1.0, 2.0]), "n": torch.tensor(3), "b": torch.tensor([[4.0]])}
    assert flatten(state).tolist() == [1.0, 2.0, 4.0]
    assert flatten(state, ["b", "a"]).tolist() == [4.0, 1.0, 2.0]
    assert flatten(state, []).numel() == 0


def test_norm_and_angle():
    assert norm({"x": torch.tensor([3.0, 4.0])}) == 5.0
    assert angle(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == 90.0
    assert angle(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0])) != angle(
        torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))  # NaN for a zero vector
