"""``msmoe``: expert merging inside a model (groups, weights, alignment, parameter count), its
ablations, the pipeline seam, and bad input."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core import (
    AlignContext,
    DataError,
    Evaluator,
    TrainConfig,
    generic_state,
    read_summaries,
    run_pipeline,
    train,
)
from ridgeline.plugins.aligners.msmoe import group_experts

SIZES = {"width": 16, "blocks": 1, "experts": 4, "expert_width": 8, "top_k": 2}
MOE = "blocks.0.moe"


@pytest.fixture(scope="module")
def setup():
    from ridgeline.core import registries

    torch.set_num_threads(1)
    regs = registries()
    data = regs.datasets.create("synthetic", features=12, num_classes=3, train_size=384, test_size=128)
    model = regs.models.create("smoe_mlp", input_shape=data.input_shape, num_classes=3, **SIZES)
    state = train(model, data, TrainConfig(steps=120, batch_size=64, lr=0.01), seed=0, progress=False)
    evaluator = Evaluator(model.build(), data)
    return {"regs": regs, "model": model, "state": state, "evaluator": evaluator,
            "context": AlignContext(evaluator=evaluator)}


def merge(setup, state=None, **options):
    state = setup["state"] if state is None else state
    aligner = setup["regs"].aligners.create("msmoe", **options)
    return aligner.align(state, state, setup["model"].symmetries(), setup["context"])


def expert_rows(state, expert):
    return torch.cat([state[f"{MOE}.w_in"][8 * expert:8 * expert + 8].flatten(),
                      state[f"{MOE}.b_in"][8 * expert:8 * expert + 8], state[f"{MOE}.b_out"][expert],
                      state[f"{MOE}.w_out"][:, 8 * expert:8 * expert + 8].flatten()])


def test_half_the_experts_remain_each_group_sharing_its_merged_expert(setup):
    alignment = merge(setup)
    merged, report = alignment.merged, alignment.diagnostics
    layer = report["layers"][f"{MOE}.experts"]
    assert layer["experts_after"] == 2 and len(layer["groups"]) == 2
    assert sorted(e for members in layer["groups"].values() for e in members) == [0, 1, 2, 3]
    for leader, members in layer["groups"].items():
        assert members[0] == int(leader)
        assert all(torch.equal(expert_rows(merged, e), expert_rows(merged, members[0])) for e in members)
    assert len({tuple(expert_rows(merged, e).tolist()) for e in range(4)}) == 2
    assert torch.equal(merged[f"{MOE}.router.weight"], setup["state"][f"{MOE}.router.weight"])
    per_expert = 8 * 16 + 8 + 16 + 16 * 8
    assert report["parameters_before"] - report["parameters_after"] == 2 * per_expert
    assert all(torch.equal(p, torch.arange(len(p))) for p in alignment.perms.values())  # align(s, s)
    runs = report["weight_matching_runs"]  # every sweep order of the default "best", as weight_matching's
    assert [run["order"] for run in runs] == ["forward", "backward", "random", "random", "random"]
    assert len(alignment.history) in [run["sweeps"] for run in runs]


def test_the_dominant_experts_are_the_most_used_and_frequencies_count_the_top_k():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0], [3.0, 0.0, 2.0, 1.0], [0.0, 3.0, 2.0, 1.0]])
    frequency, groups = group_experts(logits, top_k=2, keep=2)
    assert frequency.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 0.0])
    assert set(groups) == {0, 1} and sorted(groups[0] + groups[1]) == [0, 1, 2, 3]
    assert float(frequency.sum()) == pytest.approx(2.0)


def test_dominant_weighting_keeps_each_leader_unchanged(setup):
    alignment = merge(setup, weighting="dominant")
    for leader in alignment.diagnostics["layers"][f"{MOE}.experts"]["groups"]:
        kept = expert_rows(alignment.merged, int(leader))
        assert torch.equal(kept, expert_rows(setup["state"], int(leader)))


def test_alignment_makes_merging_permuted_copies_of_one_expert_exact(setup):
    """Every expert a unit-permuted copy of expert 0: aligned merging changes nothing, unaligned
    averaging of the permuted copies does."""
    spec = setup["model"].spec()
    state = generic_state(setup["model"].build())
    for key, axis in ((f"{MOE}.w_in", 0), (f"{MOE}.b_in", 0), (f"{MOE}.w_out", 1)):
        state[key] = torch.cat([state[key].narrow(axis, 0, 8)] * 4, dim=axis)
    state[f"{MOE}.b_out"] = state[f"{MOE}.b_out"][:1].repeat(4, 1)
    within = spec.random(torch.Generator().manual_seed(1))[f"{MOE}.experts.units"]
    state = spec.apply(state, {f"{MOE}.experts.units": within})  # units shuffled inside each expert
    x, _ = setup["evaluator"].data("test")
    original = setup["evaluator"].logits(state, x)
    aligned = setup["evaluator"].logits(merge(setup, state).merged, x)
    unaligned = setup["evaluator"].logits(merge(setup, state, align=False).merged, x)
    assert torch.allclose(aligned, original, atol=1e-5)
    assert (unaligned - original).abs().max() > 1e-2


def test_the_pipeline_records_the_merged_networks_accuracy(tmp_path):
    output = run_pipeline({
        "output": str(tmp_path / "smoe.h5"),
        "dataset": {"name": "synthetic", "features": 12, "num_classes": 3, "train_size": 256,
                    "test_size": 128},
        "model": {"name": "smoe_mlp", **SIZES},
        "train": {"steps": 40, "batch_size": 32, "lr": 0.01},
        "pairs": [{"name": "ab", "seeds": [0, 1]}],
        "aligners": ["identity", "weight_matching", {"name": "msmoe", "samples": 128}],
        "metrics": [{"name": "error_barrier", "grid": 4}],
    }, progress=False)
    rows = {r["aligner"]: r for r in read_summaries(output)}
    assert 0.0 <= rows["msmoe"]["merged_test_accuracy"] <= 1.0
    assert rows["msmoe"]["barrier"] == pytest.approx(rows["weight_matching"]["barrier"], abs=1e-9)


def test_without_experts_it_warns_and_without_data_it_says_so(setup, small_mlp):
    aligner = setup["regs"].aligners.create("msmoe")
    state = small_mlp.init_state(0)
    with pytest.warns(RuntimeWarning, match="declares no mixture-of-experts layer"):
        assert aligner.align(state, state, small_mlp.symmetries(), AlignContext()).merged is None
    with pytest.raises(DataError, match="msmoe needs data"):
        aligner.align(setup["state"], setup["state"], setup["model"].symmetries(), AlignContext())
