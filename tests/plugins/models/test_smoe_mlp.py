"""``smoe_mlp``: top-k routing, its declared symmetries (each kind preserves the function), and
expert-aware weight matching recovering a planted transform."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core import ConfigError, ExpertSymmetry, SymmetryProduct, generic_state
from ridgeline.core.symmetry.report import format_spec_report
from ridgeline.plugins.aligners.weight_matching import weight_matching


@pytest.fixture
def model(regs):
    return regs.models.create("smoe_mlp", input_shape=(12,), num_classes=3, width=16, blocks=2, experts=4,
                              expert_width=8, top_k=2)


def test_each_input_goes_to_its_top_k_experts_with_softmax_weights(model):
    moe = model.build().blocks[0].moe
    gates = moe.gates(torch.randn(32, 16))
    assert gates.gt(0).sum(dim=1).eq(2).all()
    assert torch.allclose(gates.sum(dim=1), torch.ones(32))


@pytest.mark.parametrize("routes", [4, 6], ids=["plain", "compressed"])
def test_each_kind_of_symmetry_preserves_the_function_to_1e_6(regs, routes):
    """Plain (one route per expert) and compressed (6 routes dispatched to 4 experts, whose route
    permutation moves the router's rows with the dispatch table's columns)."""
    model = regs.models.create("smoe_mlp", input_shape=(12,), num_classes=3, width=16, blocks=2, experts=4,
                               expert_width=8, top_k=2, routes=routes)
    symmetry = model.symmetries()
    assert isinstance(symmetry, SymmetryProduct) and len(symmetry.part(ExpertSymmetry)) == 2
    module = model.build().double()
    state = {k: v.double() for k, v in generic_state(module).items()}
    x = model.example_input(64).double()
    reference = torch.func.functional_call(module, state, (x,))
    transform = symmetry.random(torch.Generator().manual_seed(0))
    for component in (*symmetry.components, None):
        part = transform if component is None else {component: transform[component]}
        moved = symmetry.apply(state, part)
        assert (torch.func.functional_call(module, moved, (x,)) - reference).abs().max() < 1e-6
    check = symmetry.verify(model.build(), model.example_input(16), state=generic_state(model.build()))
    assert check.passed and check.note == ""


def test_the_spec_nests_units_in_experts_and_the_report_lists_every_kind(model):
    spec = model.spec()
    assert spec.groups == {"residual": 16, "blocks.0.moe.experts": 4, "blocks.0.moe.experts.units": 32,
                           "blocks.1.moe.experts": 4, "blocks.1.moe.experts.units": 32}
    assert spec.nested["blocks.1.moe.experts.units"] == "blocks.1.moe.experts"
    report = format_spec_report(model, seeds=2)
    assert "expert permutation: blocks.0.moe.experts (4 experts, top-2, router blocks.0.moe.router)" in report
    assert "permutation within experts: blocks.0.moe.experts (8 units per expert)" in report
    assert "check of every kind: passed" in report


def test_expert_aware_weight_matching_recovers_a_planted_transform(model):
    spec = model.spec()
    a = generic_state(model.build())
    b = spec.apply(a, spec.random(torch.Generator().manual_seed(4)))
    perms, _ = weight_matching(spec, a, b, order="forward")
    aligned = spec.apply(b, perms)
    assert all(torch.equal(aligned[k], a[k]) for k in a)


def test_bad_sizes_are_refused(regs):
    with pytest.raises(ConfigError, match="top_k .3. cannot exceed the number of experts .2."):
        regs.models.create("smoe_mlp", input_shape=(12,), num_classes=3, experts=2, top_k=3)
    with pytest.raises(ConfigError, match="sizes must be positive"):
        regs.models.create("smoe_mlp", input_shape=(12,), num_classes=3, width=0)


def test_experts_that_differ_only_in_their_router_rows_are_matched_by_them(model):
    spec = model.spec()
    a = generic_state(model.build())
    for block in ("blocks.0.moe", "blocks.1.moe"):  # every expert's units equal expert 0's
        a[f"{block}.w_in"] = a[f"{block}.w_in"][:8].repeat(4, 1)
        a[f"{block}.b_in"] = a[f"{block}.b_in"][:8].repeat(4)
        a[f"{block}.w_out"] = a[f"{block}.w_out"][:, :8].repeat(1, 4)
    transform = spec.random(torch.Generator().manual_seed(2))
    b = spec.apply(a, transform)
    perms, _ = weight_matching(spec, a, b, order="forward")
    assert all(torch.equal(spec.apply(b, perms)[k], a[k]) for k in a)
    assert torch.equal(perms["blocks.0.moe.experts"], spec.invert(transform)["blocks.0.moe.experts"])
