"""Every registered aligner on a small trained MLP pair: function preservation, planted
permutations, options and bad input."""

from __future__ import annotations

import warnings

import pytest
import torch

from ridgeline.core.errors import ConfigError, DataError, NonFiniteStateError, SpecError, StateMismatchError
from ridgeline.core.interfaces.aligner import AlignContext
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.numerics import producers, stream_moments, unit_samples
from ridgeline.core.numerics.soft_permutation import soft_apply
from ridgeline.core.plugin_host.host import registries
from ridgeline.core.run.training import TrainConfig, train
from ridgeline.core.state import combine
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec
from ridgeline.plugins.aligners.merge_many import merge_many
from ridgeline.plugins.aligners.weight_matching import matching_objective, weight_matching
from ridgeline.plugins.aligners.zipit import zip_models

ALIGNERS = registries().aligners.list()
# Small settings so the whole file runs in seconds on one core.
FAST = {"ste": {"steps": 8}, "sinkhorn": {"steps": 200, "lr": 0.2, "window": 10}}
# Aligners that promise to recover a permutation planted in a copy of the reference.
RECOVERS = ["weight_matching", "activation_matching", "ste", "sinkhorn", "ot_fusion", "zipit",
            "merge_many"]
NEEDS_DATA = ["activation_matching", "ste", "zipit"]


def make(name, **options):
    return registries().aligners.create(name, **{**FAST.get(name, {}), **options})


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    regs = registries()
    data = regs.datasets.create("synthetic", features=12, num_classes=3, train_size=384, test_size=128)
    model = regs.models.create("mlp", input_shape=data.input_shape, num_classes=3, widths=[24, 24])
    config = TrainConfig(epochs=4, batch_size=64)
    a, b = (train(model, data, config, seed=s, progress=False) for s in (0, 1))
    evaluator = Evaluator(model.build(), data)
    return {"model": model, "data": data, "spec": model.spec(), "a": a, "b": b,
            "evaluator": evaluator, "context": AlignContext(evaluator=evaluator)}


@pytest.mark.cuda
@pytest.mark.parametrize("features", ["post", "pre"])
def test_activation_statistics_and_matching_run_on_the_device_and_equal_the_cpu(setup, features):
    spec, a, b = setup["spec"], setup["a"], setup["b"]
    gpu = Evaluator(setup["model"].build(), setup["data"], device="cuda")
    on_cpu = stream_moments(setup["evaluator"], [a, b], spec, features=features)
    for states in ([a, b], [gpu.on_device(a), gpu.on_device(b)]):  # given on the host, or on the device
        on_gpu = stream_moments(gpu, states, spec, features=features)
        for group in spec.groups:
            for got, expected in zip(on_gpu[group], on_cpu[group]):
                assert got.total.device.type == got.outer.device.type == "cuda" and got.n == expected.n
                torch.testing.assert_close(got.mean.cpu(), expected.mean, rtol=1e-5, atol=1e-6)
                torch.testing.assert_close(got.covariance.cpu(), expected.covariance, rtol=1e-4, atol=1e-6)
    aligner = make("activation_matching", features=features)
    cpu_alignment = aligner.align(a, b, spec, setup["context"])
    gpu_alignment = aligner.align(a, b, spec, AlignContext(evaluator=gpu))
    assert all(torch.equal(gpu_alignment.perms[g], cpu_alignment.perms[g]) for g in spec.groups)
    assert gpu_alignment.objective == pytest.approx(cpu_alignment.objective, rel=1e-5)


def planted(setup, seed=7):
    spec = setup["spec"]
    return spec.apply(setup["a"], spec.random(torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("name", ALIGNERS)
def test_aligners_that_need_finite_weights_name_the_non_finite_tensor(setup, name):
    spec, a = setup["spec"], setup["a"]
    broken = dict(setup["b"])
    broken["hidden.1.weight"] = broken["hidden.1.weight"].clone()
    broken["hidden.1.weight"][0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    aligner = make(name)
    if not aligner.needs_finite:  # identity: the naive path is measured and flagged downstream
        aligner.align(a, broken, spec, setup["context"])
        return
    with pytest.raises(NonFiniteStateError, match=rf"other state.*'hidden.1.weight' \(3 of 576\).*{name}"):
        aligner.align(a, broken, spec, setup["context"])


def test_every_issue_aligner_is_registered():
    assert set(ALIGNERS) >= {"identity", "weight_matching", "activation_matching", "ste", "sinkhorn",
                             "ot_fusion", "zipit", "merge_many"}


@pytest.mark.parametrize("name", ALIGNERS)
def test_hard_alignment_preserves_the_function(setup, name):
    spec, b, evaluator = setup["spec"], setup["b"], setup["evaluator"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        alignment = make(name).align(setup["a"], b, spec, setup["context"])
    for group, perm in alignment.perms.items():
        assert torch.equal(torch.sort(perm).values, torch.arange(spec.groups[group]))
    aligned = alignment.apply(spec, b)
    x, _ = setup["data"].split("test")
    assert torch.allclose(evaluator.logits(aligned, x), evaluator.logits(b, x), atol=1e-5)
    assert alignment.seconds >= 0.0


@pytest.mark.parametrize("name", RECOVERS)
def test_planted_permutation_is_recovered(setup, name):
    spec, a = setup["spec"], setup["a"]
    other = planted(setup)
    alignment = make(name).align(a, other, spec, setup["context"])
    aligned = alignment.apply(spec, other)
    for key in a:
        assert torch.equal(aligned[key], a[key]), key


@pytest.mark.parametrize("options", [{"on": "activations"}, {"solver": "sinkhorn", "reg": 0.005},
                                     {"on": "activations", "solver": "sinkhorn", "reg": 0.005}])
def test_ot_fusion_variants_recover_a_planted_permutation(setup, options):
    spec, a = setup["spec"], setup["a"]
    other = planted(setup, seed=3)
    alignment = make("ot_fusion", **options).align(a, other, spec, setup["context"])
    aligned = alignment.apply(spec, other)
    assert all(torch.equal(aligned[k], a[k]) for k in a)


def test_ot_fusion_returns_transport_maps_with_the_hard_permutation(setup):
    spec = setup["spec"]
    alignment = make("ot_fusion").align(setup["a"], setup["b"], spec, setup["context"])
    for group, n in spec.groups.items():
        plan = alignment.transport[group]
        assert plan.shape == (n, n)
        assert torch.allclose(plan.sum(1), torch.ones(n), atol=1e-6)
        assert torch.allclose(plan.sum(0), torch.ones(n), atol=1e-6)
        # exact EMD between uniform marginals of equal size is a permutation matrix
        assert torch.equal(plan.argmax(1), alignment.perms[group])


def test_activation_matching_inner_product_also_recovers(setup):
    other = planted(setup, seed=11)
    alignment = make("activation_matching", kind="inner").align(setup["a"], other, setup["spec"],
                                                                 setup["context"])
    aligned = alignment.apply(setup["spec"], other)
    assert all(torch.equal(aligned[k], setup["a"][k]) for k in aligned)


@pytest.mark.parametrize("name", [n for n in ALIGNERS if n != "identity"])
def test_states_of_different_architectures_are_refused(setup, name):
    narrow = setup["model"].__class__(setup["data"].input_shape, 3, widths=[24, 20]).init_state(0)
    with pytest.raises(StateMismatchError, match=r"hidden\.1\.weight.*\(24, 24\).*\(20, 24\)"):
        make(name).align(setup["a"], narrow, setup["spec"], setup["context"])


@pytest.mark.parametrize("name", [n for n in ALIGNERS if n != "identity"])
def test_a_spec_that_does_not_fit_the_states_is_refused(setup, name):
    wrong = PermutationSpec({"hidden.0": 30}, {"hidden.0": [("hidden.0.weight", 0)]})
    with pytest.raises(SpecError, match="hidden.0"):
        make(name).align(setup["a"], setup["b"], wrong, setup["context"])


@pytest.mark.parametrize("name", [*NEEDS_DATA, "ot_fusion", "sinkhorn"])
def test_data_driven_aligners_without_data_say_so(setup, name):
    options = {"ot_fusion": {"on": "activations"}, "sinkhorn": {"objective": "midpoint"}}.get(name, {})
    with pytest.raises(ConfigError, match="evaluator"):
        make(name, **options).align(setup["a"], setup["b"], setup["spec"], AlignContext())


@pytest.mark.parametrize("name", ["activation_matching", "zipit"])
def test_a_split_too_small_for_the_statistics_is_refused(setup, name):
    with pytest.raises(DataError, match=r"24 units\) need at least 25 samples.*gave 10"):
        make(name, examples=10).align(setup["a"], setup["b"], setup["spec"], setup["context"])


def test_soft_methods_that_do_not_converge_warn_with_the_objective(setup):
    with pytest.warns(RuntimeWarning, match=r"sinkhorn \(distance\) did not converge in 3 steps: objective"):
        make("sinkhorn", steps=3).align(setup["a"], setup["b"], setup["spec"], setup["context"])
    with pytest.warns(RuntimeWarning, match=r"ot_fusion \(sinkhorn.*did not converge.*transport cost"):
        make("ot_fusion", solver="sinkhorn", reg=1e-3, iters=2).align(
            setup["a"], setup["b"], setup["spec"], setup["context"])


@pytest.mark.parametrize("objective", ["midpoint", "random_t"])
def test_sinkhorn_loss_objectives_give_permutations(setup, objective):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        alignment = make("sinkhorn", objective=objective, steps=20).align(
            setup["a"], setup["b"], setup["spec"], setup["context"])
    assert len(alignment.history) == 20
    for group, soft in alignment.transport.items():
        assert torch.allclose(soft.sum(0), torch.ones(len(soft)), atol=1e-5)  # doubly stochastic
        assert alignment.perms[group].numel() == len(soft)


def test_bad_options_are_refused_with_the_allowed_values():
    for name, options, pattern in [("weight_matching", {"order": "sideways"}, "random"),
                                   ("activation_matching", {"kind": "cosine"}, "correlation"),
                                   ("sinkhorn", {"objective": "energy"}, "distance"),
                                   ("ot_fusion", {"solver": "lp"}, "emd"),
                                   ("ot_fusion", {"on": "gradients"}, "activations"),
                                   ("ste", {"t": "end"}, "midpoint")]:
        with pytest.raises(ConfigError, match=pattern):
            make(name, **options)


@pytest.mark.parametrize("order", ["random", "forward", "backward"])
def test_weight_matching_orders_cap_and_objective_per_sweep(setup, order):
    spec, a, b = setup["spec"], setup["a"], setup["b"]
    perms, history = weight_matching(spec, a, b, order=order, seed=1)
    assert history == sorted(history)  # coordinate ascent never lowers the objective
    assert history[-1] == pytest.approx(matching_objective(spec, a, b, perms))
    assert history[-1] > matching_objective(spec, a, b, spec.identity())
    _, capped = weight_matching(spec, a, b, order=order, max_iter=1, seed=1)
    assert len(capped) == 1 and len(history) >= 1
    alignment = make("weight_matching", order=order, restarts=1, max_iter=1, seed=1).align(
        a, b, spec, setup["context"])
    assert alignment.history == tuple(capped)
    assert alignment.diagnostics["order"] == order


def test_merge_many_aligns_n_models_into_the_first_models_frame(setup):
    spec, a = setup["spec"], setup["a"]
    copies = [a, planted(setup, 1), planted(setup, 2)]
    perms, merged, history = merge_many(copies, spec, seed=0)
    assert all(torch.equal(p, torch.arange(len(p))) for p in perms[0].values())
    assert all(torch.allclose(merged[k], a[k]) for k in a)  # three copies of one network merge to it
    assert history
    perms, merged, _ = merge_many([a, setup["b"], planted(setup, 3)], spec)
    expected = combine([spec.apply(s, p) for s, p in zip([a, setup["b"], planted(setup, 3)], perms)],
                       [1 / 3] * 3)
    assert all(torch.allclose(merged[k], expected[k]) for k in a)
    with pytest.raises(ConfigError, match="at least two"):
        merge_many([a], spec)


def test_merge_many_pairwise_returns_the_average_of_the_aligned_pair(setup):
    spec, a, b = setup["spec"], setup["a"], setup["b"]
    alignment = make("merge_many").align(a, b, spec, setup["context"])
    expected = combine([a, alignment.apply(spec, b)], [0.5, 0.5])
    assert all(torch.allclose(alignment.merged[k], expected[k]) for k in a)


def test_zipit_merges_a_planted_copy_back_into_the_original(setup):
    spec, a = setup["spec"], setup["a"]
    alignment = make("zipit").align(a, planted(setup), spec, setup["context"])
    assert all(torch.allclose(alignment.merged[k], a[k], atol=1e-6) for k in a)
    assert all(c["cross"] == spec.groups[g] for g, c in alignment.diagnostics["pairs"].items())


def test_partial_zipping_shares_the_trunk_and_keeps_each_models_head(setup):
    spec, a, b, evaluator = setup["spec"], setup["a"], setup["b"], setup["evaluator"]
    moments = stream_moments(evaluator, [a, b], spec)
    models, counts = zip_models(a, b, spec, moments, stop="hidden.0")
    assert list(counts) == ["hidden.0"]
    assert torch.equal(models[0]["hidden.0.weight"], models[1]["hidden.0.weight"])
    assert not torch.equal(models[0]["hidden.1.weight"], models[1]["hidden.1.weight"])
    assert torch.equal(models[0]["head.bias"], a["head.bias"])
    full, _ = zip_models(a, b, spec, moments)
    assert all(torch.equal(full[0][k], full[1][k]) for k in a)
    assert torch.allclose(full[0]["head.bias"], (a["head.bias"] + b["head.bias"]) / 2)
    # with a planted copy, the partially zipped networks both compute A's function
    other = planted(setup)
    twins, _ = zip_models(a, other, spec, stream_moments(evaluator, [a, other], spec), stop=1)
    x, _ = setup["data"].split("test")
    for twin in twins:
        assert torch.allclose(evaluator.logits(twin, x), evaluator.logits(a, x), atol=1e-5)
    with pytest.raises(ConfigError, match="not a permutation group"):
        make("zipit", stop="hidden.9").align(a, b, spec, setup["context"])


def test_zipit_without_within_model_merges_pairs_across_models(setup):
    alignment = make("zipit", within=False).align(setup["a"], setup["b"], setup["spec"], setup["context"])
    assert all(c["within"] == 0 for c in alignment.diagnostics["pairs"].values())


def test_soft_apply_of_permutation_matrices_is_spec_apply(setup):
    spec, a = setup["spec"], setup["a"]
    perms = spec.random(torch.Generator().manual_seed(5))
    mats = {g: torch.eye(len(p))[p] for g, p in perms.items()}
    expected = spec.apply(a, perms)
    moved = soft_apply(spec, a, mats)
    assert all(torch.allclose(moved[k], expected[k]) for k in a)


def test_streamed_moments_match_a_direct_computation(setup):
    spec, a, b, evaluator = setup["spec"], setup["a"], setup["b"], setup["evaluator"]
    moments = stream_moments(evaluator, [a, b], spec, examples=300, batch_size=70)
    x = evaluator.data("train")[0][:300]
    producer = moments["hidden.1"][0].producer
    outputs = []
    for state in (a, b):
        hidden = torch.relu(x @ state["hidden.0.weight"].T + state["hidden.0.bias"])
        outputs.append(unit_samples(hidden @ state["hidden.1.weight"].T + state["hidden.1.bias"], producer))
    direct = torch.corrcoef(torch.cat(outputs, 1).T.double())
    assert moments["hidden.1"][0].n == 300
    assert torch.allclose(moments["hidden.1"][0].correlation(), direct, atol=1e-6)


def test_a_group_without_a_hookable_producer_is_named(setup):
    spec = PermutationSpec({"hidden.1": 24}, {"hidden.1": [("head.weight", 1)]})
    with pytest.raises(SpecError, match=r"\['hidden.1'\] have no hookable producer"):
        producers(setup["evaluator"].module, spec)


@pytest.mark.parametrize("name", ["activation_matching", "sinkhorn", "ot_fusion", "zipit"])
def test_per_group_assignment_methods_refuse_nested_groups(setup, name):
    spec = PermutationSpec({"heads": 4, "hidden.0": 24},
                           {"heads": [AxisRef("hidden.0.weight", 0, 0, 6)],
                            "hidden.0": [("hidden.0.weight", 0)]},
                           nested={"hidden.0": "heads"})
    with pytest.raises(SpecError, match=r"cannot keep nested groups \('hidden.0' in 'heads'\)"):
        make(name).align(setup["a"], setup["b"], spec, setup["context"])
