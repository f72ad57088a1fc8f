"""``smoe_mlp.compress``: an msmoe-merged state (E experts, one copy per group) turned into a smaller
model with one expert per group and the router's E routes dispatched to their groups. Its outputs
equal the merged model's on MNIST-1D, its parameters are counted, its checkpoint loads into a
``smoe_mlp`` with fewer experts (also through the pipeline), and bad input is refused."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core import (
    AlignContext,
    ConfigError,
    Evaluator,
    TrainConfig,
    load_metadata,
    load_state,
    read_summaries,
    run_pipeline,
    save_state,
    train,
)
from ridgeline.core.symmetry.report import format_spec_report

SIZES = {"width": 16, "blocks": 2, "experts": 4, "expert_width": 8, "top_k": 2}


@pytest.fixture(scope="module")
def merged():
    """An smoe_mlp trained briefly on MNIST-1D, merged 4 -> 2 experts per block by msmoe."""
    from ridgeline.core import registries

    torch.set_num_threads(1)
    regs = registries()
    data = regs.datasets.create("mnist1d", num_samples=600)
    model = regs.models.create("smoe_mlp", input_shape=data.input_shape, num_classes=data.num_classes,
                               **SIZES)
    state = train(model, data, TrainConfig(steps=60, batch_size=64, lr=0.01), seed=0, progress=False)
    evaluator = Evaluator(model.build(), data)
    alignment = regs.aligners.create("msmoe", samples=256).align(state, state, model.symmetries(),
                                                                 AlignContext(evaluator=evaluator))
    groups = {name: layer["groups"] for name, layer in alignment.diagnostics["layers"].items()}
    return {"regs": regs, "data": data, "model": model, "state": state, "evaluator": evaluator,
            "merged": alignment.merged, "report": alignment.diagnostics, "groups": groups}


def test_the_compressed_model_computes_the_merged_models_outputs_on_mnist1d(merged):
    smaller, state = merged["model"].compress(merged["merged"], merged["groups"])
    assert smaller.options["experts"] == 2 and smaller.routes == 4
    evaluator = Evaluator(smaller.build(), merged["data"])
    for split in ("train", "test"):
        x, _ = merged["data"].split(split)
        difference = evaluator.logits(state, x) - merged["evaluator"].logits(merged["merged"], x)
        assert difference.abs().max() < 1e-5
        assert evaluator.evaluate(state, split).accuracy == merged["evaluator"].evaluate(
            merged["merged"], split).accuracy
    # the equality is not trivial: some inputs pick two routes of one group, whose gates must add up
    module = merged["model"].build()
    module.load_state_dict(merged["merged"])
    with torch.no_grad():
        gates = module.blocks[0].moe.gates(torch.relu(module.embed(x.flatten(1))))
    groups = merged["groups"]["blocks.0.moe.experts"].values()
    both = sum(gates[:, group].gt(0).sum(dim=1).eq(2) for group in groups)
    assert int(both.sum()) > 0


def test_parameters_are_counted_from_the_smaller_module_and_match_msmoes_figure(merged):
    smaller, state = merged["model"].compress(merged["merged"], merged["groups"])
    module = smaller.build()
    module.load_state_dict(state)  # strict: every key and shape of the smaller module
    counted = sum(p.numel() for p in module.parameters())
    assert counted == merged["report"]["parameters_after"]
    before = sum(p.numel() for p in merged["model"].build().parameters())
    assert before == merged["report"]["parameters_before"]
    for i in range(SIZES["blocks"]):
        table = state[f"blocks.{i}.moe.dispatch"]
        assert table.shape == (2, 4)
        assert torch.equal(table.sum(dim=0), torch.ones(4))  # each route goes to one expert
        groups = sorted(sorted(g) for g in merged["groups"][f"blocks.{i}.moe.experts"].values())
        assert [table[g].nonzero().flatten().tolist() for g in range(2)] == groups
    assert [name for name, _ in module.named_buffers()] == ["blocks.0.moe.dispatch", "blocks.1.moe.dispatch"]


def test_the_saved_checkpoint_loads_into_a_smoe_mlp_with_half_the_experts(merged, tmp_path):
    smaller, state = merged["model"].compress(merged["merged"], merged["groups"])
    path = save_state(tmp_path / "compressed.safetensors", state, {"model": smaller.config})
    config = load_metadata(path)["model"]
    assert config == {**merged["model"].config, "experts": 2, "routes": 4}
    rebuilt = merged["regs"].models.create(config.pop("name"), **config)
    x, _ = merged["data"].split("test")
    logits = Evaluator(rebuilt.build(), merged["data"]).logits(load_state(path), x)
    assert (logits - merged["evaluator"].logits(merged["merged"], x)).abs().max() < 1e-5
    # the pipeline loads it as a model set of a smoe_mlp with experts = 2, routes = 4
    context = AlignContext(evaluator=merged["evaluator"])
    other = merged["regs"].aligners.create("msmoe", samples=256, weighting="uniform").align(
        merged["state"], merged["state"], merged["model"].symmetries(), context)
    _, uniform = merged["model"].compress(other.merged, {n: v["groups"] for n, v in
                                                         other.diagnostics["layers"].items()})
    second = save_state(tmp_path / "uniform.safetensors", uniform)
    output = run_pipeline({
        "output": str(tmp_path / "compressed.h5"),
        "dataset": {"name": "mnist1d", "num_samples": 600},
        "model": {"name": "smoe_mlp", **SIZES, "experts": 2, "routes": 4},
        "pairs": [{"name": "compressed", "checkpoints": [str(path), str(second)]}],
        "aligners": ["identity", "weight_matching"],
        "metrics": [{"name": "error_barrier", "grid": 3}],
    }, progress=False)
    rows = read_summaries(output)
    assert {r["aligner"] for r in rows} == {"identity", "weight_matching"}
    accuracy = merged["evaluator"].evaluate(merged["merged"], "test").accuracy
    assert rows[0]["start"] == pytest.approx(1 - accuracy, abs=1e-9)


def test_a_compressed_models_spec_permutes_routes_experts_and_units(regs):
    """(That each kind preserves the function: test_smoe_mlp, parametrised over plain and compressed.)"""
    model = regs.models.create("smoe_mlp", input_shape=(12,), num_classes=3, **SIZES, routes=6)
    groups = {"blocks.0.moe.routes", "blocks.0.moe.experts", "blocks.0.moe.experts.units"}
    assert groups <= set(model.spec().groups)
    assert "check of every kind: passed" in format_spec_report(model, seeds=2)


def test_singleton_groups_give_the_plain_model_and_compressing_twice_composes(merged):
    model, state = merged["model"], merged["merged"]
    same, kept = model.compress(merged["state"], {f"blocks.{i}.moe.experts": [[3], [1], [0], [2]]
                                                  for i in range(2)})
    assert "routes" not in same.options and list(kept) == list(merged["state"])
    assert all(torch.equal(kept[k], merged["state"][k]) for k in kept)
    smaller, state = model.compress(state, merged["groups"])
    for i in range(2):  # merge the two remaining experts by hand, then compress again: 1 expert, 4 routes
        p = f"blocks.{i}.moe"
        state[f"{p}.w_in"][8:], state[f"{p}.b_in"][8:] = state[f"{p}.w_in"][:8], state[f"{p}.b_in"][:8]
        state[f"{p}.w_out"][:, 8:] = state[f"{p}.w_out"][:, :8]
        state[f"{p}.b_out"][1] = state[f"{p}.b_out"][0]
    smallest, last = smaller.compress(state, {f"blocks.{i}.moe.experts": [[0, 1]] for i in range(2)})
    assert smallest.options["experts"] == 1 and smallest.routes == 4
    assert torch.equal(last["blocks.0.moe.dispatch"], torch.ones(1, 4))
    x, _ = merged["data"].split("test")
    before = Evaluator(smaller.build(), merged["data"]).logits(state, x)
    assert (Evaluator(smallest.build(), merged["data"]).logits(last, x) - before).abs().max() < 1e-5


def test_bad_groups_unmerged_experts_and_bad_routes_are_refused(merged, regs):
    model = merged["model"]
    with pytest.raises(ConfigError, match=r"groups of 'blocks.0.moe.experts' must partition its experts 0..3"
                       ):
        model.compress(merged["merged"], {f"blocks.{i}.moe.experts": [[0, 1], [1, 2]] for i in range(2)})
    with pytest.raises(ConfigError, match="no groups for expert layer 'blocks.1.moe.experts'"):
        model.compress(merged["merged"], {"blocks.0.moe.experts": [[0, 1], [2, 3]]})
    with pytest.raises(ConfigError, match="no expert layer 'blocks.2.moe.experts'"):
        model.compress(merged["merged"], {f"blocks.{i}.moe.experts": [[0, 1, 2, 3]] for i in range(3)})
    with pytest.raises(ConfigError, match="same number of groups, got .2, 1."):
        model.compress(merged["merged"], {"blocks.0.moe.experts": [[0, 1], [2, 3]],
                                          "blocks.1.moe.experts": [[0, 1, 2, 3]]})
    with pytest.raises(ConfigError, match="expert 1 differs from expert 0 of its group.*merge them first"):
        model.compress(merged["state"], {f"blocks.{i}.moe.experts": [[0, 1], [2, 3]] for i in range(2)})
    with pytest.raises(ConfigError, match=r"routes \(3\) cannot be fewer than experts \(4\)"):
        regs.models.create("smoe_mlp", input_shape=(12,), num_classes=3, experts=4, routes=3)
    with pytest.raises(ConfigError, match=r"top_k \(5\) cannot exceed routes \(4\)"):
        regs.models.create("smoe_mlp", input_shape=(12,), num_classes=3, experts=2, routes=4, top_k=5)


def test_msmoe_refuses_a_compressed_model_naming_the_router(merged):
    smaller, state = merged["model"].compress(merged["merged"], merged["groups"])
    context = AlignContext(evaluator=Evaluator(smaller.build(), merged["data"]))
    with pytest.raises(ConfigError, match="one router logit per expert from module 'blocks.0.moe'.*compress"):
        merged["regs"].aligners.create("msmoe", samples=64).align(state, state, smaller.symmetries(), context)
