"""Input-space paths (Vrabel et al. 2024): seeded same-class pairs, curves between two inputs,
and fitting a curve round a region of another class."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core.errors import ConfigError, DataError
from ridgeline.core.numerics import (
    InputCurve,
    InputFitSettings,
    barrier_summary,
    class_loss,
    fit_input_curve,
    same_class_pairs,
)


def ring(x: torch.Tensor) -> torch.Tensor:
    """Logits of a 2-D classifier: class 1 inside the unit disc, class 0 outside."""
    r2 = (x ** 2).sum(dim=1)
    return torch.stack([4.0 * (r2 - 1.0), torch.zeros_like(r2)], dim=1)


def test_same_class_pairs_are_seeded_distinct_and_of_one_class():
    classes = torch.tensor([0, 1, 0, 2, 1, 0, 3, 1])
    pairs = same_class_pairs(classes, 5, seed=3)
    assert pairs == same_class_pairs(classes, 5, seed=3)
    assert len(pairs) == 5 and len({tuple(sorted(p)) for p in pairs}) == 5
    assert all(i != j and classes[i] == classes[j] for i, j in pairs)
    assert pairs != same_class_pairs(classes, 5, seed=4)
    assert len(same_class_pairs(classes, 50, seed=0)) == 3 + 3  # every pair of classes 0 and 1
    with pytest.raises(DataError, match="no two inputs share a class"):
        same_class_pairs(torch.tensor([0, 1, 2]), 1, seed=0)


@pytest.mark.parametrize("kind", ["linear", "polychain", "bezier"])
def test_an_unfitted_curve_is_the_line_and_joins_the_endpoints(kind):
    x_a, x_b = torch.tensor([[-2.0, 0.5]]), torch.tensor([[2.0, -0.5]])
    curve = InputCurve(x_a, x_b, kind, bends=2)
    ss = [0.0, 0.2, 0.5, 0.9, 1.0]
    torch.testing.assert_close(curve.batch(ss), curve.line(ss))
    torch.testing.assert_close(curve.batch([0.0])[0], x_a)
    torch.testing.assert_close(curve.batch([1.0])[0], x_b)


def test_a_fitted_curve_goes_round_the_other_class():
    # both outside the disc (class 0), the line through it just above the centre (a line through the
    # centre would start the bend at a saddle of the symmetric loss, where its gradient is zero)
    x_a, x_b = torch.tensor([-2.0, 0.1]), torch.tensor([2.0, 0.1])
    ss = torch.linspace(0, 1, 41).tolist()
    line_loss = class_loss(ring, InputCurve(x_a, x_b, "linear").line(ss), 0)[0]
    for kind in ("polychain", "bezier"):
        curve = InputCurve(x_a, x_b, kind, bends=1)
        report = fit_input_curve(ring, curve, 0, InputFitSettings(steps=200, lr=0.05, samples=16, seed=0))
        assert report["last_loss"] < report["first_loss"]
        loss, confidence, hit = class_loss(ring, curve.batch(ss), 0)
        assert barrier_summary(ss, loss.tolist())["barrier"] < 0.01
        assert barrier_summary(ss, line_loss.tolist())["barrier"] > 3.0  # the line crosses the disc
        assert bool(hit.all()) and float(confidence.min()) > 0.5
        torch.testing.assert_close(curve.batch([0.0, 1.0]), torch.stack([x_a, x_b]))  # ends stay


def test_bad_curves_are_refused():
    with pytest.raises(ConfigError, match="'linear', 'polychain' or 'bezier'"):
        InputCurve(torch.zeros(2), torch.ones(2), "spline")
    with pytest.raises(ConfigError, match=r"differ in shape: \(2,\) and \(3,\)"):
        InputCurve(torch.zeros(2), torch.ones(3))
