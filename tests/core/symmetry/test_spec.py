from __future__ import annotations

import pytest
import torch

from ridgeline.core.errors import SpecError
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec


def test_permuting_the_mlp_with_its_spec_leaves_outputs_unchanged(small_mlp):
    module = small_mlp.build()
    spec = small_mlp.spec()
    state = module.state_dict()
    permuted = spec.apply(state, spec.random(torch.Generator().manual_seed(3)))
    assert any(not torch.equal(state[k], permuted[k]) for k in state)
    x = small_mlp.example_input(16)
    expected = module(x)
    got = torch.func.functional_call(module, permuted, (x,))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert spec.check(module, x).passed


def test_a_wrong_spec_fails_its_check(small_mlp):
    module = small_mlp.build()
    good = small_mlp.spec()
    # forget the next layer's columns: permuting rows alone changes the function
    broken = PermutationSpec(good.groups, {g: refs[:2] for g, refs in good.axes.items()})
    result = broken.check(module, small_mlp.example_input(8))
    assert not result.passed and result.worst_ratio > 1
    with pytest.raises(SpecError, match="changes the network's outputs"):
        broken.verify(module, small_mlp.example_input(8))


def test_apply_then_inverse_is_the_identity(small_mlp):
    spec = small_mlp.spec()
    state = small_mlp.init_state(0)
    perms = spec.random(torch.Generator().manual_seed(1))
    back = spec.apply(spec.apply(state, perms), spec.invert(perms))
    for key in state:
        assert torch.equal(back[key], state[key])


def test_offset_and_stride_act_on_blocks_of_a_slice():
    spec = PermutationSpec({"g": 2}, {"g": [AxisRef("w", 0, offset=1, stride=2)]})
    w = torch.arange(6.0)
    out = spec.apply({"w": w}, {"g": torch.tensor([1, 0])})["w"]
    assert out.tolist() == [0.0, 3.0, 4.0, 1.0, 2.0, 5.0]


def test_compose_matches_sequential_application():
    spec = PermutationSpec({"g": 5}, {"g": [("w", 0)]})
    w = torch.randn(5, 3)
    p, q = spec.random(torch.Generator().manual_seed(0)), spec.random(torch.Generator().manual_seed(1))
    sequential = spec.apply(spec.apply({"w": w}, p), q)["w"]
    assert torch.equal(spec.apply({"w": w}, spec.compose(p, q))["w"], sequential)


def test_validate_names_group_key_and_shape():
    spec = PermutationSpec({"g": 8}, {"g": [("layer.weight", 0)]})
    with pytest.raises(SpecError, match=r"'g'.*'layer.weight'.*\(4, 3\)"):
        spec.validate({"layer.weight": torch.zeros(4, 3)})
    with pytest.raises(SpecError, match="absent"):
        spec.validate({})


def test_groups_and_axes_must_agree():
    with pytest.raises(SpecError, match="disagree"):
        PermutationSpec({"a": 2}, {"b": [("w", 0)]})
