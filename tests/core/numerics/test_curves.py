"""Curves on a t grid: both barrier forms against hand computations, and the grid itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ridgeline.core.errors import ConfigError
from ridgeline.core.numerics.curves import barrier_summary, t_grid


def test_hand_computed_curve():
    # L_A = 1, L_B = 3; chord at t is 1 + 2t; curve bulges to 4 at t = 0.5
    ts = [0.0, 0.25, 0.5, 0.75, 1.0]
    values = [1.0, 2.0, 4.0, 3.0, 3.0]
    s = barrier_summary(ts, values)
    assert s["barrier"] == pytest.approx(4.0 - 2.0)  # max of [0, 0.5, 2, 0.5, 0]
    assert s["t_max"] == 0.5
    assert s["barrier_mean"] == pytest.approx(4.0 - 2.0)
    assert s["midpoint"] == 4.0 and s["start"] == 1.0 and s["end"] == 3.0


def test_mean_form_is_at_least_half_the_endpoint_gap_without_a_barrier():
    ts = np.linspace(0, 1, 11)
    values = 1.0 + 2.0 * ts  # a straight line: no barrier
    s = barrier_summary(ts, values)
    assert s["barrier"] == pytest.approx(0.0, abs=1e-12)
    assert s["barrier_mean"] == pytest.approx(1.0)  # = |L_A - L_B| / 2


def test_non_finite_values_are_flagged():
    s = barrier_summary([0, 0.5, 1], [1.0, math.inf, 1.0])
    assert s["finite"] == 0.0 and math.isnan(s["barrier"])


def test_grid_always_holds_ends_and_midpoint():
    assert t_grid(4) == pytest.approx([0.0, 1 / 3, 0.5, 2 / 3, 1.0])
    assert 0.5 in t_grid(30) and len(t_grid(25)) == 25
    with pytest.raises(ConfigError):
        t_grid([0.2, 1.5])
