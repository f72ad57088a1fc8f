from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from ridgeline.core.errors import ConfigError, StateMismatchError
from ridgeline.core.interfaces.aligner import AlignContext
from ridgeline.core.state import distance
from ridgeline.plugins.aligners.weight_matching import ORDERS, matching_objective, weight_matching


@pytest.mark.parametrize("order", ORDERS)
def test_recovers_a_planted_permutation_exactly(regs, order):
    model = regs.models.create("mlp", input_shape=(20,), num_classes=5, widths=[64, 48, 32])
    spec = model.spec()
    a = model.init_state(0)
    planted = spec.random(torch.Generator().manual_seed(11))
    b = spec.apply(a, planted)
    alignment = regs.aligners.create("weight_matching", order=order).align(a, b, spec, AlignContext())
    assert distance(a, alignment.apply(spec, b)) == 0.0
    assert alignment.history == tuple(sorted(alignment.history))  # coordinate ascent never decreases
    assert alignment.objective == pytest.approx(matching_objective(spec, a, a, spec.identity()))


def test_alignment_preserves_the_function_and_raises_the_objective(regs, small_mlp):
    spec = small_mlp.spec()
    a, b = small_mlp.init_state(0), small_mlp.init_state(1)
    alignment = regs.aligners.create("weight_matching", seed=3).align(a, b, spec, AlignContext())
    aligned = alignment.apply(spec, b)
    module = small_mlp.build()
    x = small_mlp.example_input(32)
    torch.testing.assert_close(torch.func.functional_call(module, aligned, (x,)),
                               torch.func.functional_call(module, b, (x,)), rtol=1e-5, atol=1e-5)
    assert alignment.objective > matching_objective(spec, a, b, spec.identity())
    assert distance(a, aligned) < distance(a, b)


def test_iteration_cap_is_respected(regs, small_mlp):
    spec = small_mlp.spec()
    a, b = small_mlp.init_state(0), small_mlp.init_state(1)
    alignment = regs.aligners.create("weight_matching", max_iter=1).align(a, b, spec, AlignContext())
    assert len(alignment.history) == 1


def test_bad_options_and_mismatched_states_are_explained(regs, small_mlp):
    with pytest.raises(ConfigError, match="order = 'sideways' must be one of 'random', 'forward'"):
        regs.aligners.create("weight_matching", order="sideways")
    a = small_mlp.init_state(0)
    b = dict(a, **{"hidden.0.weight": torch.zeros(8, 12)})
    with pytest.raises(StateMismatchError, match="hidden.0.weight"):
        regs.aligners.create("weight_matching").align(a, b, small_mlp.spec(), AlignContext())


def test_best_order_recovers_a_resnet18_where_forward_sweeps_stop_early(regs):
    model = regs.models.create("timm", input_shape=(3, 32, 32), num_classes=3, arch="resnet18")
    spec = model.spec()
    a = model.init_state(0)
    b = spec.apply(a, spec.random(torch.Generator().manual_seed(1)))
    context = AlignContext()
    forward = regs.aligners.create("weight_matching", order="forward", seed=0).align(a, b, spec, context)
    best = regs.aligners.create("weight_matching", order="best", seed=0).align(a, b, spec, context)
    assert distance(a, forward.apply(spec, b)) > 0  # a local optimum of coordinate ascent
    assert distance(a, best.apply(spec, b)) == 0.0
    assert best.objective == max(best.diagnostics["objectives"].values())


def test_the_default_keeps_the_best_of_several_orders_and_reports_their_spread(regs):
    model = regs.models.create("mlp", input_shape=(20,), num_classes=5, widths=[32, 32, 32])
    spec, a, b = model.spec(), model.init_state(0), model.init_state(1)
    default = regs.aligners.create("weight_matching").align(a, b, spec, AlignContext(seed=0))
    runs = [("forward", 0), ("backward", 0), ("random", 0), ("random", 1), ("random", 2)]
    objectives = [weight_matching(spec, a, b, order=o, seed=s)[1][-1] for o, s in runs]
    assert len(set(objectives)) > 1  # the sweep order decides which local optimum is reached
    assert default.objective == max(objectives) > objectives[2]  # better than one random order
    assert [(r["order"], r["seed"], r["objective"]) for r in default.diagnostics["runs"]] == [
        (o, s, v) for (o, s), v in zip(runs, objectives)]
    spread = default.diagnostics["objective_spread"]
    assert (spread["min"], spread["max"]) == (min(objectives), max(objectives)) and spread["std"] > 0
    chosen = runs[objectives.index(max(objectives))]
    assert (default.diagnostics["order"], default.diagnostics["seed"]) == chosen


def test_restarts_run_that_many_random_orders(regs, small_mlp):
    spec, a, b = small_mlp.spec(), small_mlp.init_state(0), small_mlp.init_state(1)
    alignment = regs.aligners.create("weight_matching", order="random", restarts=4, seed=7).align(
        a, b, spec, AlignContext())
    runs = [(r["order"], r["seed"]) for r in alignment.diagnostics["runs"]]
    assert runs == [("random", s) for s in range(7, 11)]
    with pytest.raises(ConfigError, match="restarts >= 1"):
        regs.aligners.create("weight_matching", restarts=0)


@pytest.mark.parametrize("name", ["weight_matching", "msmoe", "tree_matching"])
def test_every_aligner_that_weight_matches_refuses_bad_sweep_options_when_built_directly(regs, name):
    factory = regs.aligners.get(name)  # the class itself: no registry option check in front of it
    with pytest.raises(ConfigError, match=rf"^{name} order must be one of .*'best'.*got 'sideways'$"):
        factory(order="sideways")
    with pytest.raises(ConfigError, match=rf"^{name} needs restarts >= 1 and max_iter >= 1"):
        factory(max_iter=0)


# -- the fast implementation against the pre-issue-9 one (benchmarks/weight_matching_reference.py) --
REFERENCE = Path(__file__).resolve().parents[3] / "benchmarks" / "weight_matching_reference.py"


def _reference():
    spec = importlib.util.spec_from_file_location("weight_matching_reference", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pair(regs, name):
    if name == "mlp":
        model = regs.models.create("mlp", input_shape=(20,), num_classes=5, widths=[96, 64, 48])
    elif name == "convnet":
        model = regs.models.create("convnet", input_shape=(3, 8, 8), num_classes=4, widths=[16, 24, 24])
    elif name == "test_resnet":
        model = regs.models.create("timm", input_shape=(3, 16, 16), num_classes=4, arch="test_resnet")
    else:  # attention: nested within-head groups
        model = regs.models.create("timm", input_shape=(3, 16, 16), num_classes=4, arch="test_vit",
                                   img_size=16, patch_size=4)
    return model.spec(), model.init_state(0), model.init_state(1)


@pytest.mark.parametrize("name", ["mlp", "convnet", "test_resnet", "test_vit"])
@pytest.mark.parametrize("order", ORDERS)
def test_the_fast_implementation_gives_the_reference_permutations(regs, name, order):
    spec, a, b = _pair(regs, name)
    old_perms, old_history = _reference().weight_matching(spec, a, b, order=order, seed=5)
    perms, history = weight_matching(spec, a, b, order=order, seed=5)
    assert len(history) == len(old_history) > 1
    for group in spec.groups:
        assert torch.equal(perms[group], old_perms[group]), f"{name} {order}: group {group} differs"
    assert history == pytest.approx(old_history, rel=1e-6)


def test_a_warm_start_and_float64_states_give_the_reference_permutations(regs):
    spec, a, b = _pair(regs, "mlp")
    init = spec.random(torch.Generator().manual_seed(3))
    a64, b64 = ({k: v.double() for k, v in s.items()} for s in (a, b))
    old_perms, old_history = _reference().weight_matching(spec, a64, b64, order="forward", init=init)
    perms, history = weight_matching(spec, a64, b64, order="forward", init=init)
    assert all(torch.equal(perms[g], old_perms[g]) for g in spec.groups)
    assert history == pytest.approx(old_history, rel=1e-12)  # float64 states are matched in float64


@pytest.mark.cuda
def test_weight_matching_on_cuda_gives_the_cpu_permutations(regs):
    spec, a, b = _pair(regs, "test_resnet")
    cpu_perms, cpu_history = weight_matching(spec, a, b, seed=2)
    on_gpu = [{k: v.cuda() for k, v in s.items()} for s in (a, b)]
    gpu_perms, gpu_history = weight_matching(spec, *on_gpu, seed=2)
    assert all(torch.equal(gpu_perms[g], cpu_perms[g]) for g in spec.groups)
    assert gpu_history == pytest.approx(cpu_history, rel=1e-6)
    context = AlignContext(evaluator=_cuda_evaluator(regs))
    alignment = regs.aligners.create("weight_matching", order="random", restarts=1, seed=2).align(
        a, b, spec, context)
    assert all(torch.equal(alignment.perms[g], cpu_perms[g]) for g in spec.groups)


def _cuda_evaluator(regs):
    from ridgeline.core.interfaces.evaluator import Evaluator

    data = regs.datasets.create("synthetic", image_size=(3, 16, 16), num_classes=4, train_size=8, test_size=8)
    model = regs.models.create("timm", input_shape=data.input_shape, num_classes=4, arch="test_resnet")
    return Evaluator(model.build(), data, device="cuda")
