"""The Symmetry interface: permutation specs as one kind, tree and expert symmetries, products."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from ridgeline.core import (
    AxisRef,
    ExpertSymmetry,
    PermutationSpec,
    SpecError,
    Symmetry,
    SymmetryProduct,
    TreeSymmetry,
    tree_leaf_paths,
)

STRUCTURES = ("tree", "oblivious", "decision_list")


class Trees(nn.Module):
    """A bare soft tree ensemble in the layout TreeSymmetry documents (float64)."""

    def __init__(self, structure: str, depth: int, trees: int = 5, features: int = 4, classes: int = 3):
        super().__init__()
        splits, right, used = tree_leaf_paths(structure, depth)
        n = int(splits.max()) + 1
        self.weight = nn.Parameter(torch.randn(trees, n, features, dtype=torch.float64))
        self.bias = nn.Parameter(torch.randn(trees, n, dtype=torch.float64))
        self.leaf = nn.Parameter(torch.randn(trees, len(splits), classes, dtype=torch.float64))
        self.paths = (splits, right, used)

    def forward(self, x):
        splits, right, used = self.paths
        z = (torch.einsum("bf,msf->bms", x, self.weight) + self.bias)[:, :, splits]
        p = torch.where(used, torch.sigmoid(torch.where(right, -z, z)), torch.ones_like(z)).prod(-1)
        return torch.einsum("bml,mlc->bc", p, self.leaf)


def tree_case(structure, depth, **kwargs):
    module = Trees(structure, depth, **kwargs)
    symmetry = TreeSymmetry(module.weight.shape[0], depth, structure, "weight", "bias", "leaf")
    return module, symmetry


def test_a_permutation_spec_is_a_symmetry_whose_components_are_its_groups():
    axes = {"h": [("a.weight", 0)], "heads": [("b.weight", 0, 0, 2)], "dims": [("b.weight", 0)]}
    spec = PermutationSpec({"h": 4, "heads": 2, "dims": 4}, axes, nested={"dims": "heads"})
    assert isinstance(spec, Symmetry)
    assert spec.components == ("h", "heads", "dims") and spec.permutations() is spec
    assert spec.kinds() == {"permutation": "1 group, 4 units", "block permutation": "1 group, 2 units",
                            "permutation within blocks": "1 group, 4 units"}
    assert [row["kind"] for row in spec.describe()] == ["permutation", "block permutation",
                                                       "permutation within blocks"]


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_each_tree_transformation_alone_preserves_the_function_to_1e_6(structure, depth):
    torch.manual_seed(depth)
    module, symmetry = tree_case(structure, depth)
    state = {k: v.detach() for k, v in module.state_dict().items()}
    x = torch.randn(16, 4, dtype=torch.float64)
    reference = torch.func.functional_call(module, state, (x,))
    for seed in range(4):
        transform = symmetry.random(torch.Generator().manual_seed(seed))
        for component in (*symmetry.components, None):
            part = transform if component is None else {component: transform[component]}
            moved = symmetry.apply(state, part)
            assert (torch.func.functional_call(module, moved, (x,)) - reference).abs().max() < 1e-6
            back = symmetry.apply(moved, symmetry.invert(part))
            assert all(torch.equal(back[k], state[k]) for k in state)
    assert symmetry.check(module, x).passed


@pytest.mark.parametrize(("structure", "depth"),
                         [("tree", 2), ("tree", 3), ("oblivious", 3), ("decision_list", 3)])
def test_the_enumerated_patterns_are_distinct_transforms(structure, depth):
    symmetry = TreeSymmetry(1, depth, structure, "w", "b", "l")
    flips, orders = symmetry.patterns()
    nodes, signs, leaves = symmetry.within_maps(flips, orders)
    distinct = {tuple(torch.cat([n, s, lv]).tolist()) for n, s, lv in zip(nodes, signs, leaves)}
    assert len(flips) == len(distinct) == symmetry.pattern_count()
    assert symmetry.pattern_count(flips=False, orders=False) == 1


def test_a_flip_of_a_plain_trees_root_swaps_its_subtrees():
    symmetry = TreeSymmetry(1, 2, "tree", "w", "b", "l")
    nodes, signs, leaves = symmetry.within_maps(torch.tensor([[1, 0, 0]]))
    assert nodes.tolist() == [[0, 2, 1]] and signs.tolist() == [[-1, 1, 1]]
    assert leaves.tolist() == [[2, 3, 0, 1]]


def test_a_stored_transform_comes_back_as_int64_and_still_applies():
    module, symmetry = tree_case("oblivious", 3)
    state = {k: v.detach() for k, v in module.state_dict().items()}
    transform = symmetry.random(torch.Generator().manual_seed(0))
    stored = {k: torch.from_numpy(v.numpy().astype("int64")) for k, v in transform.items()}
    moved, again = symmetry.apply(state, transform), symmetry.apply(state, stored)
    assert all(torch.equal(moved[k], again[k]) for k in state)


def test_a_tree_symmetry_that_does_not_fit_names_the_tensor_and_both_shapes():
    module, _ = tree_case("tree", 2)
    wrong = TreeSymmetry(5, 3, "tree", "weight", "bias", "leaf")
    with pytest.raises(SpecError, match=r"'weight' of shape \(5, 7\) \+ \(n,\), got \(5, 3, 4\)"):
        wrong.validate(module.state_dict())
    with pytest.raises(SpecError, match="structure must be one of"):
        TreeSymmetry(5, 3, "forest", "weight", "bias", "leaf")
    with pytest.raises(SpecError, match=r"components \['trees.orders'\] are not in the symmetry"):
        TreeSymmetry(5, 2, "tree", "weight", "bias", "leaf").apply(
            module.state_dict(), {"trees.orders": torch.zeros(5, 2)})


class FeaturesThenTrees(nn.Module):
    """A ReLU feature layer feeding a tree ensemble: two commuting symmetries."""

    def __init__(self):
        super().__init__()
        self.features = nn.Linear(4, 6).double()
        self.trees = Trees("oblivious", 2, features=6)

    def forward(self, x):
        return self.trees(torch.relu(self.features(x)))


def features_and_trees():
    module = FeaturesThenTrees()
    features = PermutationSpec({"features": 6}, {"features": [
        ("features.weight", 0), ("features.bias", 0), ("trees.weight", 2)]})
    trees = TreeSymmetry(5, 2, "oblivious", "trees.weight", "trees.bias", "trees.leaf")
    return module, SymmetryProduct([features, trees])


def test_a_product_of_commuting_symmetries_applies_inverts_and_checks():
    torch.manual_seed(0)
    module, product = features_and_trees()
    x = torch.randn(8, 4, dtype=torch.float64)
    assert product.components == ("features", "trees", "trees.flips", "trees.orders")
    assert set(product.kinds()) == {"permutation", "tree permutation", "subtree flip", "splitting order"}
    check = product.verify(module, x)
    assert check.passed and check.note == ""
    state = {k: v.detach() for k, v in module.state_dict().items()}
    transform = product.random(torch.Generator().manual_seed(3))
    back = product.apply(product.apply(state, transform), product.invert(transform))
    assert all(torch.equal(back[k], state[k]) for k in state)
    spec = product.permutations()
    assert spec.groups == {"features": 6, "trees": 5}
    moved = product.apply(state, {"features": transform["features"], "trees": transform["trees"]})
    assert all(torch.equal(moved[k], spec.apply(state, transform)[k]) for k in state)


def test_parts_that_do_not_commute_fail_the_check_with_a_note_naming_them():
    module = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    one = PermutationSpec({"a": 5}, {"a": [("0.weight", 0), ("0.bias", 0), ("2.weight", 1)]})
    two = PermutationSpec({"b": 5}, {"b": [("0.weight", 0), ("0.bias", 0), ("2.weight", 1)]})
    check = SymmetryProduct([one, two]).check(module, torch.randn(4, 3))
    assert not check.passed and "parts 0 (permutation) and 1 (permutation)" in check.note
    with pytest.raises(SpecError, match="do not commute on tensor '0.weight'"):
        SymmetryProduct([one, two]).verify(module, torch.randn(4, 3))
    with pytest.raises(SpecError, match="component 'a' appears in parts 0 and 1"):
        SymmetryProduct([one, one])


def test_an_expert_symmetry_is_a_nesting_of_experts_and_their_units():
    experts = ExpertSymmetry("moe", experts=3, units=4, router=[("router.weight", 0), ("router.bias", 0)],
                             expert_params=[("b_out", 0)], unit_axes=[("w_in", 0), ("w_out", 1)], top_k=2)
    spec = experts.permutations()
    assert spec.groups == {"moe": 3, "moe.units": 12} and spec.nested == {"moe.units": "moe"}
    assert AxisRef("w_in", 0, 0, 4) in spec.axes["moe"] and AxisRef("router.weight", 0) in spec.axes["moe"]
    assert set(experts.kinds()) == {"expert permutation", "permutation within experts"}
    state = {"router.weight": torch.randn(3, 5), "router.bias": torch.randn(3), "b_out": torch.randn(3, 5),
             "w_in": torch.randn(12, 5), "w_out": torch.randn(5, 12)}
    transform = experts.random(torch.Generator().manual_seed(0))
    moved = experts.apply(state, transform)
    expert = int(transform["moe"][0])  # slot 0 now holds that expert, its units permuted within
    within = transform["moe.units"][:4]
    assert sorted(within.tolist()) == [0, 1, 2, 3]
    assert torch.equal(moved["w_in"][:4], state["w_in"][4 * expert + within])
    assert torch.equal(moved["router.weight"][0], state["router.weight"][expert])
    back = experts.apply(moved, experts.invert(transform))
    assert all(torch.equal(back[k], state[k]) for k in state)
    with pytest.raises(SpecError, match="top_k must lie in"):
        ExpertSymmetry("moe", 3, 4, [("r", 0)], [], [("w", 0)], top_k=4)


def test_permutation_groups_of_products_must_not_clash():
    a = PermutationSpec({"g": 2}, {"g": [("x", 0)]})
    tree = TreeSymmetry(2, 1, "tree", "w", "b", "l", name="g")
    with pytest.raises(SpecError, match="component 'g' appears in parts 0 and 1"):
        SymmetryProduct([a, tree])
    assert list(itertools.chain(*[r["tensors"] for r in tree.describe()]))[:3] == ["w[0]", "b[0]", "l[0]"]
