from __future__ import annotations

import pytest
import torch

from ridgeline.core.errors import StateMismatchError
from ridgeline.core.state import check_compatible, combine, distance, lerp


def test_mismatch_names_the_key_and_both_shapes():
    a = {"fc.weight": torch.zeros(4, 3)}
    b = {"fc.weight": torch.zeros(5, 3)}
    with pytest.raises(StateMismatchError, match=r"'fc.weight'.*\(4, 3\).*\(5, 3\)"):
        check_compatible(a, b)


def test_mismatch_names_missing_keys():
    with pytest.raises(StateMismatchError, match="lacks fc.bias"):
        check_compatible({"fc.bias": torch.zeros(1)}, {})


def test_lerp_interpolates_floats_and_keeps_integer_buffers():
    a = {"w": torch.zeros(3), "n": torch.tensor(5)}
    b = {"w": torch.ones(3), "n": torch.tensor(9)}
    mid = lerp(a, b, 0.25)
    torch.testing.assert_close(mid["w"], torch.full((3,), 0.25))
    assert mid["n"].item() == 5 and mid["n"].dtype == torch.int64


def test_combine_is_a_weighted_sum_and_distance_a_norm():
    a, b = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}
    torch.testing.assert_close(combine([a, b], [2.0, -1.0])["w"], torch.tensor([-1.0, -2.0]))
    assert distance(a, b) == pytest.approx((4 + 16) ** 0.5)


def test_non_finite_counts_nan_and_inf_per_floating_tensor():
    from ridgeline.core.errors import NonFiniteStateError
    from ridgeline.core.state import check_finite, non_finite

    state = {"w": torch.tensor([1.0, float("nan"), float("inf")]), "b": torch.zeros(2),
             "count": torch.tensor(3)}
    assert non_finite(state) == {"w": 2}
    check_finite({"b": torch.zeros(2)}, "fine")
    with pytest.raises(NonFiniteStateError, match=r"m.pt holds non-finite .* 'w' \(2 of 3\); ste needs"):
        check_finite(state, "m.pt", needed_by="ste")
