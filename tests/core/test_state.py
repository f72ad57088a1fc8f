from __future__ import annotations

import pytest
import torch
from torch import nn

from ridgeline.core.errors import StateMismatchError
from ridgeline.core.state import Ties, check_compatible, combine, distance, lerp


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


def _tied_module():
    module = nn.Module()
    module.embed = nn.Embedding(5, 3)
    module.shared = nn.Linear(3, 3)
    module.block = nn.Module()
    module.block.shared = module.shared  # one submodule under two names
    module.head = nn.Linear(3, 5, bias=False)
    module.head.weight = module.embed.weight  # one parameter under two names
    return module


def test_ties_name_every_tensor_with_several_names_canonical_first_in_state_dict_order():
    ties = Ties.of(_tied_module())
    assert ties.groups == {"embed.weight": ("head.weight",), "shared.weight": ("block.shared.weight",),
                           "shared.bias": ("block.shared.bias",)}
    assert ties.canonical("head.weight") == "embed.weight" and ties.canonical("shared.bias") == "shared.bias"


def test_ties_drop_expand_retie_and_refuse_disagreeing_names():
    module = _tied_module()
    ties = Ties.of(module)
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    once = ties.drop(state)
    assert set(once) == {"embed.weight", "shared.weight", "shared.bias"}
    assert set(ties.drop({k: v for k, v in state.items() if k != "embed.weight"})) >= {"head.weight"}
    assert ties.expand(once).keys() == state.keys()
    moved = dict(state, **{"embed.weight": state["embed.weight"] * 2})
    assert ties.disagreements(moved) == [("embed.weight", "head.weight")]
    with pytest.raises(StateMismatchError, match=r"^my file: 'embed.weight' and 'head.weight' are one"):
        ties.check(moved, "my file")
    assert ties.retie(moved, keys=["shared.weight"])["head.weight"] is state["head.weight"]  # not chosen
    fixed = ties.retie(moved)
    assert fixed["head.weight"] is moved["embed.weight"] and not ties.disagreements(fixed)


def test_non_finite_counts_nan_and_inf_per_floating_tensor():
    from ridgeline.core.errors import NonFiniteStateError
    from ridgeline.core.state import check_finite, non_finite

    state = {"w": torch.tensor([1.0, float("nan"), float("inf")]), "b": torch.zeros(2),
             "count": torch.tensor(3)}
    assert non_finite(state) == {"w": 2}
    check_finite({"b": torch.zeros(2)}, "fine")
    with pytest.raises(NonFiniteStateError, match=r"m.pt holds non-finite .* 'w' \(2 of 3\); ste needs"):
        check_finite(state, "m.pt", needed_by="ste")
