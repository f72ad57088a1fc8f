"""``tree_matching``: planted transforms recovered exactly (exact and greedy search), the dynamic
programme equals enumeration, options restrict the invariances, barriers fall as invariances are
added (Kanoh & Sugiyama's ordering), and the pipeline applies and resumes the stored transforms."""

from __future__ import annotations

import h5py
import pytest
import torch

from ridgeline.core import (
    AlignContext,
    Evaluator,
    PermutationSpec,
    PipelineConfig,
    SymmetryProduct,
    TrainConfig,
    read_summaries,
    run_pipeline,
    train,
)
from ridgeline.core.numerics import assignment, barrier_summary, lerp, t_grid
from ridgeline.plugins.aligners.tree_matching import (
    TreeMatchingAligner,
    _node_params,
    _pattern_scores,
    match_trees,
)


def trees(regs, structure, depth=3, count=6):
    return regs.models.create("soft_trees", input_shape=(5,), num_classes=3, trees=count, depth=depth,
                              structure=structure)


@pytest.mark.parametrize(("structure", "depth"), [("oblivious", 3), ("tree", 3), ("decision_list", 3),
                                                  ("oblivious", 6), ("tree", 5)])
@pytest.mark.parametrize("exact_limit", [4096, 1])
def test_a_planted_transform_is_recovered_exactly(regs, structure, depth, exact_limit):
    model = trees(regs, structure, depth)
    symmetry, a = model.symmetries(), model.init_state(0)
    b = symmetry.apply(a, symmetry.random(torch.Generator().manual_seed(3)))
    alignment = regs.aligners.create("tree_matching", exact_limit=exact_limit).align(
        a, b, symmetry, AlignContext())
    aligned = alignment.apply(symmetry, b)
    assert all(torch.equal(aligned[k], a[k]) for k in a)
    search = alignment.diagnostics["trees"]["search"]
    greedy = (exact_limit == 1 and structure != "decision_list") or depth == 6
    assert search == ("greedy" if greedy else "exact")


@pytest.mark.parametrize("depth", [2, 3])
def test_the_dynamic_programme_for_plain_trees_equals_enumerating_every_flip_pattern(regs, depth):
    model = trees(regs, "tree", depth)
    symmetry, a, b = model.symmetries(), model.init_state(0), model.init_state(1)
    _, objective, _ = match_trees(symmetry, a, b)
    (na, la), (nb, lb) = _node_params(symmetry, a), _node_params(symmetry, b)
    g, h = torch.einsum("isf,jtf->ijst", na, nb), torch.einsum("ilc,jkc->ijlk", la, lb)
    flips, _ = symmetry.patterns()
    best = _pattern_scores(symmetry, g, h, flips, None).max(dim=-1).values
    assert objective == pytest.approx(assignment(best)[1], rel=1e-12)
    assert match_trees(symmetry, a, b, exact_limit=1)[1] <= objective + 1e-9  # greedy: a lower bound


def test_options_choose_the_invariances(regs):
    model = trees(regs, "oblivious")
    symmetry, a, b = model.symmetries(), model.init_state(0), model.init_state(1)
    none = regs.aligners.create("tree_matching", permutation=False, flips=False, orders=False)
    assert none.align(a, b, symmetry, AlignContext()).perms["trees"].tolist() == list(range(6))
    only = regs.aligners.create("tree_matching", flips=False, orders=False).align(
        a, b, symmetry, AlignContext())
    assert only.perms["trees.flips"].eq(0).all() and only.perms["trees.orders"].eq(torch.arange(3)).all()
    full = regs.aligners.create("tree_matching").align(a, b, symmetry, AlignContext())
    assert full.objective > only.objective
    spec_only = regs.aligners.create("weight_matching").align(a, b, model.spec(), AlignContext())
    assert torch.equal(spec_only.perms["trees"], only.perms["trees"])  # the same assignment


def test_a_product_aligns_the_other_groups_by_weight_matching_then_the_trees(regs):
    model = trees(regs, "tree", depth=2)
    extra = PermutationSpec({"scale": 4}, {"scale": [("scale", 0)]})
    product = SymmetryProduct([extra, model.symmetries()])
    a = {**model.init_state(0), "scale": torch.randn(4)}
    b = product.apply(a, product.random(torch.Generator().manual_seed(5)))
    alignment = regs.aligners.create("tree_matching").align(a, b, product, AlignContext())
    aligned = alignment.apply(product, b)
    assert all(torch.equal(aligned[k], a[k]) for k in a)
    assert set(alignment.perms) == set(product.components)
    runs = alignment.diagnostics["weight_matching_runs"]  # every sweep order, as weight_matching's
    assert [run["order"] for run in runs] == ["forward", "backward", "random", "random", "random"]
    assert alignment.diagnostics["weight_matching_sweeps"] in [run["sweeps"] for run in runs]


def _train_loss_barrier(evaluator, a, b):
    grid = t_grid(11)
    return barrier_summary(grid, [evaluator.evaluate(lerp(a, b, t), "train").loss for t in grid])["barrier"]


def test_barriers_fall_as_invariances_are_added_for_oblivious_trees(regs):
    data = regs.datasets.create("tabular", table="iris")
    model = regs.models.create("soft_trees", input_shape=data.input_shape, num_classes=3, trees=8, depth=3)
    config = TrainConfig(steps=300, batch_size=64, lr=0.01)
    a, b = (train(model, data, config, seed=s, progress=False) for s in (0, 1))
    evaluator, symmetry = Evaluator(model.build(), data), model.symmetries()
    barriers = {"none": _train_loss_barrier(evaluator, a, b)}
    for name, options in (("permutation", {"flips": False, "orders": False}), ("all", {})):
        alignment = regs.aligners.create("tree_matching", **options).align(a, b, symmetry, AlignContext())
        barriers[name] = _train_loss_barrier(evaluator, a, alignment.apply(symmetry, b))
    assert barriers["none"] > 2 * barriers["permutation"] > 4 * barriers["all"], barriers


def test_the_pipeline_searches_the_whole_symmetry_and_resumes_from_the_stored_transform(
        tmp_path, monkeypatch):
    config = PipelineConfig.from_dict({
        "output": str(tmp_path / "trees.h5"),
        "dataset": {"name": "tabular", "table": "iris"},
        "model": {"name": "soft_trees", "trees": 4, "depth": 2},
        "train": {"steps": 30, "batch_size": 64, "lr": 0.01},
        "pairs": [{"name": "ab", "seeds": [0, 1]}],
        "aligners": ["identity", "weight_matching", "tree_matching"],
        "metrics": [{"name": "loss_barrier", "grid": 5, "split": "train"}],
    })
    output = run_pipeline(config, progress=False)
    rows = {r["aligner"]: r for r in read_summaries(output)}
    assert rows["tree_matching"]["barrier"] <= rows["identity"]["barrier"]
    with h5py.File(output) as f:
        group = f["pairs/ab/alignments/tree_matching/perms/0"]
        assert set(group) == {"trees", "trees.flips", "trees.orders"}
        assert group["trees.flips"].shape == (4, 2) and group["trees.orders"].shape == (4, 2)
        assert set(f["pairs/ab/alignments/weight_matching/perms/0"]) == {"trees"}
    with h5py.File(output, "a") as f:  # forget the measured curves: a re-run must use the stored transform
        del f["pairs/ab/curves/tree_matching"]

    def refuse(*args, **kwargs):
        raise AssertionError("the stored alignment must be reused")

    monkeypatch.setattr(TreeMatchingAligner, "align", refuse)
    again = {r["aligner"]: r for r in read_summaries(run_pipeline(config, progress=False))}
    assert again["tree_matching"]["barrier"] == pytest.approx(rows["tree_matching"]["barrier"], rel=1e-12)
