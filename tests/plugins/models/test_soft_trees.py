"""``soft_trees``: every structure keeps its function under each declared symmetry; the spec is the
tree permutation; the spec report lists every kind."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core import ConfigError, TreeSymmetry, generic_state
from ridgeline.core.symmetry.report import format_spec_report

STRUCTURES = ("oblivious", "tree", "decision_list")


def make(regs, structure, **options):
    return regs.models.create("soft_trees", input_shape=(6,), num_classes=3, structure=structure,
                              **{"trees": 5, "depth": 3, **options})


@pytest.mark.parametrize("structure", STRUCTURES)
def test_each_kind_of_symmetry_preserves_the_function_to_1e_6(regs, structure):
    model = make(regs, structure)
    module = model.build().double()
    state = {k: v.double() for k, v in generic_state(module).items()}
    symmetry = model.symmetries()
    assert isinstance(symmetry, TreeSymmetry)
    x = model.example_input(32).double()
    reference = torch.func.functional_call(module, state, (x,))
    for seed in range(3):
        transform = symmetry.random(torch.Generator().manual_seed(seed))
        for component in symmetry.components:
            moved = symmetry.apply(state, {component: transform[component]})
            assert any(not torch.equal(moved[k], state[k]) for k in state)  # it did move something
            assert (torch.func.functional_call(module, moved, (x,)) - reference).abs().max() < 1e-6
    assert symmetry.verify(model.build(), model.example_input(8), state=generic_state(model.build())).passed


@pytest.mark.parametrize("structure", STRUCTURES)
def test_the_spec_is_the_tree_permutation_and_the_output_depends_on_every_tensor(regs, structure):
    model = make(regs, structure)
    spec = model.spec()
    assert spec.groups == {"trees": 5} and spec.keys == {"weight", "bias", "leaf"}
    module = model.build()
    state = generic_state(module)
    x = model.example_input(8)
    base = torch.func.functional_call(module, state, (x,))
    for key in state:
        nudged = {**state, key: state[key] + 0.1}
        assert not torch.allclose(torch.func.functional_call(module, nudged, (x,)), base)


def test_the_spec_report_lists_every_kind_of_tree_symmetry(regs):
    report = format_spec_report(make(regs, "oblivious"), seeds=2)
    assert "kinds of symmetry (3):" in report
    assert "tree permutation: 5 trees (oblivious, depth 3; weight, bias, leaf)" in report
    assert "splitting order: the 3 levels of each tree (6 orders)" in report
    assert "check of every kind: passed" in report
    assert "subtree flip: the last split" in format_spec_report(make(regs, "decision_list"), seeds=1)


def test_bad_options_are_refused(regs):
    with pytest.raises(ConfigError, match="structure = .forest. must be one of"):
        make(regs, "forest")
    with pytest.raises(ConfigError, match="trees >= 1 and depth >= 1"):
        make(regs, "tree", depth=0)
