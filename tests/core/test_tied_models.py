"""Models that use one tensor under several names (issue 14): a Linear shared by two blocks and
called from both, and tied input and output embeddings. Specs, alignment, paths, corrections,
checkpoints and the pipeline keep every name of a tied tensor equal and count it once."""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ridgeline.core import Model, Ties
from ridgeline.core.checkpoint import save_state
from ridgeline.core.errors import ConfigError, SpecError, StateMismatchError
from ridgeline.core.interfaces.aligner import AlignContext
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.interfaces.metric import PathProbe
from ridgeline.core.numerics.curve_fitting import FitSettings, fit_free_states
from ridgeline.core.plugin_host.host import hookimpl, load_plugins, registries
from ridgeline.core.results.readers import read_curves, read_metadata, read_summaries
from ridgeline.core.run.bench import bench_pipeline
from ridgeline.core.run.config import PipelineConfig
from ridgeline.core.run.pipeline import Pipeline, run_pipeline
from ridgeline.core.state import combine
from ridgeline.core.symmetry.spec import PermutationSpec
from ridgeline.plugins.aligners.weight_matching import matching_objective


# -- the models ------------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, mix: nn.Linear, inner: int, width: int) -> None:
        super().__init__()
        self.mix = mix  # the shared Linear, registered again under this block's name
        self.out = nn.Linear(inner, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(self.out(F.relu(self.mix(h))))


class SharedNet(nn.Module):
    """One Linear (``mix``) registered three times and called by both blocks, as timm's CoaT shares
    its convolutional position encodings: fx traces it as ``mix`` only, and its input axis joins
    the stream entering both blocks while its output axis joins both blocks' ``out`` inputs."""

    def __init__(self, features: int, classes: int, width: int = 16, inner: int = 12) -> None:
        super().__init__()
        self.inp = nn.Linear(features, width)
        self.mix = nn.Linear(width, inner)
        self.blocks = nn.ModuleList([Block(self.mix, inner, width) for _ in range(2)])
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.inp(x))
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class TiedEmbeddingNet(nn.Module):
    """A classifier over a vocabulary whose output layer is its input embedding (tied weights, as
    language models tie them). The input is a bag of tokens (counts over the vocabulary), so the
    embedding is ``x @ E``; ``head.weight`` is ``embed.weight``. The embedding's columns enter
    ``fc1`` and ``fc2``'s outputs leave through the head: tying makes them one permutation group."""

    def __init__(self, vocab: int, dim: int = 12, hidden: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = x @ self.embed.weight
        return self.head(self.fc2(F.relu(self.fc1(e))))


class SharedModel(Model):
    name = "shared_linear"

    def build(self) -> nn.Module:
        return SharedNet(self.input_shape[0], self.num_classes)


class TiedModel(Model):
    name = "tied_embeddings"

    def build(self) -> nn.Module:
        return TiedEmbeddingNet(self.num_classes)


MODELS = {"shared_linear": SharedModel, "tied_embeddings": TiedModel}
ALIASES = {"shared_linear": {"blocks.0.mix.weight": "mix.weight", "blocks.1.mix.weight": "mix.weight",
                             "blocks.0.mix.bias": "mix.bias", "blocks.1.mix.bias": "mix.bias"},
           "tied_embeddings": {"head.weight": "embed.weight"}}


class Plugin:
    @hookimpl
    def register_models(self, register):
        for name, factory in MODELS.items():
            register(name, factory)


def host(*extra):
    return load_plugins([("tied", Plugin()), *extra], autoload=False)


@pytest.fixture(scope="module")
def data():
    return registries().datasets.create("synthetic", features=8, num_classes=8, train_size=256,
                                        test_size=128)


def build(name, data):
    return MODELS[name](data.input_shape, data.num_classes)


def disagreeing(model, state):
    return model.ties().disagreements(state)


# -- detection and the spec --------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_tied_names_are_detected_and_states_keep_every_name(name, data):
    model = build(name, data)
    ties = model.ties()
    assert ties.aliases == ALIASES[name]
    state = model.init_state(0)
    assert set(ALIASES[name]) <= set(state)  # every name, as the user's checkpoints hold
    assert not ties.disagreements(state)


@pytest.mark.parametrize("name", MODELS)
def test_the_derived_spec_passes_its_check_acts_on_canonical_names_and_keeps_aliases_equal(name, data):
    model = build(name, data)
    spec = model.spec()
    assert spec.ties == model.ties()
    assert not set(spec.keys) & set(ALIASES[name])
    module = model.build()
    x = model.example_input(4)
    assert spec.check(module, x).passed
    state = model.init_state(1)
    moved = spec.apply(state, spec.random(torch.Generator().manual_seed(3)))
    assert not disagreeing(model, moved)
    assert any(not torch.equal(moved[k], state[k]) for k in ALIASES[name])  # aliases moved too
    evaluator = Evaluator(module, data)
    assert torch.allclose(evaluator.logits(moved, x), evaluator.logits(state, x), atol=1e-5)


def test_a_tied_tensor_unifies_the_groups_of_every_use(data):
    shared = build("shared_linear", data).spec()
    of = {ref.key + f"[{ref.axis}]": group for group, refs in shared.axes.items() for ref in refs}
    # the shared Linear's output axis feeds both blocks' ``out``: one group
    assert of["mix.weight[0]"] == of["blocks.0.out.weight[1]"] == of["blocks.1.out.weight[1]"]
    # its input axis reads the stream from ``inp`` and from block 0: one group
    assert of["mix.weight[1]"] == of["inp.weight[0]"] == of["blocks.0.out.weight[0]"]
    tied = build("tied_embeddings", data).spec()
    of = {ref.key + f"[{ref.axis}]": group for group, refs in tied.axes.items() for ref in refs}
    # the embedding's columns (input side) and the head's inputs (output side) are one axis
    assert of["embed.weight[1]"] == of["fc1.weight[1]"] == of["fc2.weight[0]"] == of["fc2.bias[0]"]


def test_a_spec_that_splits_a_tied_tensor_fails_its_check_or_is_refused(data):
    model = build("tied_embeddings", data)
    module, x = model.build(), model.example_input(4)
    spec = model.spec()
    without_ties = PermutationSpec(spec.groups, spec.axes)  # a hand-written spec that forgot the ties
    result = without_ties.check(module, x)
    assert not result.passed and "'head.weight'" in result.note and "tied" in result.note
    with pytest.raises(SpecError, match=r"'head.weight', another name of the tied tensor 'embed.weight'"):
        PermutationSpec({"d": 12}, {"d": [("head.weight", 1)]}, ties=model.ties())


def test_the_spec_report_lists_the_tied_tensors(data):
    from ridgeline.core.symmetry.report import format_spec_report

    report = format_spec_report(build("shared_linear", data))
    assert "tied tensors (2; one tensor under several names" in report
    assert "  mix.weight = blocks.0.mix.weight, blocks.1.mix.weight" in report
    assert "check: passed" in report


def test_the_spec_report_keeps_the_word_tied_for_tied_tensors(data):
    from ridgeline.core.symmetry.report import format_spec_report

    # the vocabulary axis is frozen: the embedding's rows meet the input's fixed features. Its
    # reason says "joined at", so "tied" in the report means one tensor under several names
    frozen, _, tied = format_spec_report(build("tied_embeddings", data)).partition("\ntied tensors (1;")
    assert "head (8 units): joined at matmul to an axis that cannot be permuted" in frozen
    assert "tied" not in frozen.split("frozen groups (1;")[1] and "embed.weight = head.weight" in tied


# -- alignment ---------------------------------------------------------------------------------
ALIGNERS = registries().aligners.list()
# Pre-activations for activation matching: these untrained models have ReLU units that never fire
# on the data, and after the nonlinearity such units are indistinguishable (docs/methods.md).
FAST = {"ste": {"steps": 8}, "sinkhorn": {"steps": 200, "lr": 0.2, "window": 10},
        "activation_matching": {"features": "pre"}}
# ot_fusion on weights is left out: it visits each group once, input to output, and a tied tensor
# makes a group's incoming weights depend on a later group (docs/methods.md).
RECOVERS = ["weight_matching", "activation_matching", "ste", "sinkhorn", "ot_fusion:activations",
            "zipit", "merge_many"]


def aligner(name):
    name, _, on = name.partition(":")
    return registries().aligners.create(name, **FAST.get(name, {}), **({"on": on} if on else {}))


@pytest.fixture(scope="module", params=list(MODELS))
def setup(request, data):
    model = build(request.param, data)
    evaluator = Evaluator(model.build(), data)
    return {"name": request.param, "model": model, "spec": model.spec(), "a": model.init_state(0),
            "b": model.init_state(1), "evaluator": evaluator,
            "context": AlignContext(evaluator=evaluator)}


@pytest.mark.parametrize("name", RECOVERS)
def test_a_planted_permutation_is_recovered_exactly_at_every_name(setup, name):
    spec, a = setup["spec"], setup["a"]
    other = spec.apply(a, spec.random(torch.Generator().manual_seed(7)))
    alignment = aligner(name).align(a, other, spec, setup["context"])
    aligned = alignment.apply(spec, other)
    for key in a:
        assert torch.equal(aligned[key], a[key]), key


PERMUTATION_ALIGNERS = [n for n in ALIGNERS if not registries().aligners.get(n).uses_symmetries]


@pytest.mark.parametrize("name", PERMUTATION_ALIGNERS)
def test_every_aligner_keeps_tied_names_equal_and_the_function(setup, name):
    spec, b, evaluator = setup["spec"], setup["b"], setup["evaluator"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        alignment = aligner(name).align(setup["a"], b, spec, setup["context"])
    aligned = alignment.apply(spec, b)
    assert not disagreeing(setup["model"], aligned)
    if alignment.merged is not None:
        assert not disagreeing(setup["model"], alignment.merged)
        assert math.isfinite(evaluator.evaluate(alignment.merged, "test").loss)
    x, _ = evaluator.data("test")
    assert torch.allclose(evaluator.logits(aligned, x), evaluator.logits(b, x), atol=1e-5)


def test_the_weight_matching_objective_counts_a_tied_tensor_once(setup):
    spec, a, b = setup["spec"], setup["a"], setup["b"]
    ties = setup["model"].ties()
    identity = spec.identity()
    once = matching_objective(spec, ties.drop(a), ties.drop(b), identity)
    assert matching_objective(spec, a, b, identity) == pytest.approx(once, rel=1e-12)
    expected = sum(float((a[k].double() * b[k].double()).sum()) for k in spec.keys)
    assert once == pytest.approx(expected, rel=1e-6)  # float32 products, float64 sums (issue 9)


# -- paths, fitting and corrections --------------------------------------------------------------
def test_curve_fitting_trains_a_tied_tensor_once_and_every_name_follows(setup):
    evaluator, a, b = setup["evaluator"], setup["a"], setup["b"]
    middle = combine([a, b], [0.5, 0.5])
    settings = FitSettings(steps=5, lr=0.05, batch_size=32)

    def sample_point(free, generator):
        t = float(torch.rand((), generator=generator))
        return combine([a, free[0], b], [(1 - t) ** 2, 2 * t * (1 - t), t * t])

    (fitted,), report = fit_free_states(evaluator, [middle], sample_point, settings)
    assert not disagreeing(setup["model"], fitted)
    for alias, canonical in ALIASES[setup["name"]].items():
        assert not torch.equal(fitted[canonical], middle[canonical])  # trained, through every use
        assert fitted[alias] is fitted[canonical]
    assert math.isfinite(report["last_loss"])


@pytest.mark.parametrize("every_name", [False, True])
def test_repair_acts_on_the_shared_tensor(setup, every_name):
    evaluator = setup["evaluator"]
    ties = setup["model"].ties()
    endpoints = [s if every_name else ties.drop(s) for s in (setup["a"], setup["b"])]
    path = registries().paths.create("linear", endpoints=endpoints)
    probe = PathProbe(path, evaluator, [registries().corrections.create("repair", examples=128)])
    corrected = probe.state_at(0.5)
    assert set(corrected) == set(endpoints[0])
    assert not disagreeing(setup["model"], ties.expand(corrected))
    midpoint = path.at(0.5)
    if setup["name"] == "shared_linear":  # the shared Linear is a corrected producer, once
        assert not torch.equal(corrected["mix.weight"], midpoint["mix.weight"])
    assert math.isfinite(probe.evaluate(0.5, "test").loss)


# -- checkpoints and the pipeline ------------------------------------------------------------------
def config(tmp_path, name, **overrides):
    data = {
        "output": str(tmp_path / "results.h5"),
        "dataset": {"name": "synthetic", "features": 8, "num_classes": 8, "train_size": 256,
                    "test_size": 128},
        "model": {"name": name},
        "train": {"steps": 30, "batch_size": 32, "lr": 0.01},
        "pairs": [{"name": "ab", "seeds": [0, 1]}],
        "aligners": ["identity", "weight_matching"],
        "metrics": [{"name": "loss_barrier", "grid": 4}],
    }
    data.update(overrides)
    return PipelineConfig.from_dict(data)


@pytest.mark.parametrize("name", MODELS)
def test_identical_endpoints_have_no_barrier(tmp_path, name, data):
    path = str(save_state(tmp_path / "a.safetensors", build(name, data).init_state(0)))
    run = config(tmp_path, name, pairs=[{"name": "aa", "checkpoints": [path, path]}],
                 metrics=[{"name": "loss_barrier", "grid": 4}, "geometry", "layerwise_barrier"])
    output = run_pipeline(run, progress=False, host=host())
    rows = read_summaries(output)
    barriers = [r["barrier"] for r in rows if r["metric"] == "loss_barrier"]
    assert len(barriers) == 2 and all(b == pytest.approx(0.0, abs=1e-6) for b in barriers)
    geometry = [r for r in read_curves(output) if r["metric"] == "geometry"]
    layers = {r["label"] for r in geometry}
    assert "all" in layers and ALIASES[name][next(iter(ALIASES[name]))].rpartition(".")[0] in layers
    assert not layers & {k.rpartition(".")[0] for k in ALIASES[name]}  # an alias is no layer of its own
    assert all(r["distance"] == 0.0 for r in geometry)
    layerwise = [r for r in read_curves(output) if r["metric"] == "layerwise_barrier"]
    assert {r["label"] for r in layerwise} == layers - {"all"}
    assert all(r["barrier_a"] == pytest.approx(0.0, abs=1e-6) for r in layerwise)


def test_barriers_over_training_time_see_a_tied_tensor_once(setup, data):
    from ridgeline.core.run.trajectory import measure_trajectory
    from ridgeline.plugins.metrics.geometry import Geometry

    a, b = setup["a"], setup["b"]
    trajectory = measure_trajectory({0: a, 1: a}, {0: a, 1: b}, setup["evaluator"], {"geometry": Geometry()})
    whole = {r["step"]: r["distance"] for r in trajectory.rows if r["label"] == "all"}
    ties = setup["model"].ties()
    keys = set(ties.drop(a))
    expected = float(sum(((b[k] - a[k]).double() ** 2).sum() for k in keys if "weight" in k or "bias" in k))
    assert whole[0] == 0.0 and whole[1] == pytest.approx(expected ** 0.5, rel=1e-6)


# the layer a user names in a layerwise path: (another name of a tied tensor, the layer to use)
ALIAS_LAYERS = {"shared_linear": ("blocks.0.mix", "mix"), "tied_embeddings": ("head", "embed")}


@pytest.mark.parametrize("name", MODELS)
def test_a_layerwise_path_given_another_name_of_a_tied_tensor_names_the_layer_to_use(tmp_path, name):
    alias, canonical = ALIAS_LAYERS[name]
    run = config(tmp_path, name, paths=[{"name": "layerwise", "layers": [alias]}])
    with pytest.raises(ConfigError, match=rf"no layer matches '{re.escape(alias)}': '{re.escape(alias)}' "
                       rf"is another name of the tied tensor '{canonical}' \(.*\); use '{canonical}'"):
        Pipeline(run, progress=False, host=host())  # refused before any training
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "results.h5").exists()


def test_a_layerwise_path_on_a_tied_layer_interpolates_every_name_of_it(tmp_path):
    run = config(tmp_path, "shared_linear", aligners=["identity"], paths=[
        {"name": "layerwise", "layers": ["mix"]}], metrics=[{"name": "loss_barrier", "grid": 3}])
    output = run_pipeline(run, progress=False, host=host())
    assert [r["path"] for r in read_summaries(output) if r["metric"] == "loss_barrier"] == ["layerwise"]
    model = MODELS["shared_linear"]((8,), 8)
    ties, a, b = model.ties(), model.init_state(0), model.init_state(1)
    path = registries().paths.create("layerwise", endpoints=[ties.drop(a), ties.drop(b)], layers=["mix"],
                                     ties=ties)
    middle = ties.expand(path.at(0.5))
    for key in ("mix.weight", "blocks.0.mix.weight", "blocks.1.mix.weight"):
        torch.testing.assert_close(middle[key], (a["mix.weight"] + b["mix.weight"]) / 2)
    assert torch.equal(middle["inp.weight"], a["inp.weight"])


def test_only_a_path_that_asks_for_the_ties_gets_them():
    from ridgeline.core.interfaces.path import path_arguments

    ties = MODELS["shared_linear"]((8,), 8).ties()
    paths = registries().paths
    assert path_arguments(paths.get("layerwise"), [{}, {}], ties) == {"endpoints": [{}, {}], "ties": ties}
    assert path_arguments(paths.get("linear"), [{}, {}], ties) == {"endpoints": [{}, {}]}


@pytest.mark.parametrize("name", MODELS)
def test_an_interrupted_run_resumes_to_the_same_numbers(tmp_path, name, flaky):
    overrides = {"metrics": [{"name": "flaky", "grid": 4}],
                 "paths": ["linear", {"name": "bezier", "steps": 5, "batch_size": 32}],
                 "corrections": [[], ["repair"]]}
    reference = run_pipeline(config(tmp_path / "whole", name, **overrides), progress=False,
                             host=host(flaky.plugin(10**6)))
    cut = config(tmp_path / "cut", name, **overrides)
    with pytest.raises(flaky.Interrupt):
        Pipeline(cut, progress=False, host=host(flaky.plugin(11))).run()
    assert not read_metadata(cut.output)["complete"]
    Pipeline(cut, progress=False, host=host(flaky.plugin(10**6))).run()

    def key(rows):
        return sorted(((r["aligner"], r["correction"], r["path"], r["index"]), r["loss"]) for r in rows)

    assert key(read_curves(cut.output)) == key(read_curves(reference))
    assert len(read_curves(reference)) == 2 * 2 * 2 * 5


@pytest.mark.parametrize("name", MODELS)
def test_bench_measures_a_model_with_tied_tensors(tmp_path, name):
    report = bench_pipeline(config(tmp_path, name, corrections=[[], ["repair"]]), points=3, repeats=1,
                            startup=False, host=host())
    rows = {row.what: row for row in report.rows}
    assert {"aligner identity", "aligner weight_matching",
            "path evaluation per point with repair"} <= set(rows)
    assert all(row.seconds > 0 and (row.ratio is None or math.isfinite(row.ratio)) for row in report.rows)
    assert not (tmp_path / "results.h5").exists()  # nothing written


def test_a_checkpoint_whose_tied_names_disagree_is_refused_naming_them(tmp_path, data):
    model = build("tied_embeddings", data)
    a = model.init_state(0)
    edited = dict(a, **{"head.weight": a["head.weight"] + 1.0})
    paths = [str(save_state(tmp_path / "a.safetensors", a)), str(save_state(tmp_path / "b.pt", edited))]
    run = config(tmp_path, "tied_embeddings", pairs=[{"name": "ab", "checkpoints": paths}])
    refused = (r"^checkpoint .*b\.pt: 'embed\.weight' and 'head\.weight' are one tensor in the model "
               r"\(tied\) but hold different values")
    with pytest.raises(StateMismatchError, match=refused):
        run_pipeline(run, progress=False, host=host())
    with pytest.raises(StateMismatchError, match="'embed.weight' and 'head.weight'"):
        Evaluator(model.build(), data).evaluate(edited, "test")


def test_a_checkpoint_that_stores_a_tied_tensor_once_is_completed(tmp_path, data):
    model = build("tied_embeddings", data)
    a, b = model.init_state(0), model.init_state(1)
    del b["head.weight"]  # as Hugging Face's save_pretrained stores tied embeddings
    paths = [str(save_state(tmp_path / "a.safetensors", a)), str(save_state(tmp_path / "b.safetensors", b))]
    output = run_pipeline(config(tmp_path, "tied_embeddings", pairs=[{"name": "ab", "checkpoints": paths}]),
                          progress=False, host=host())
    assert read_metadata(output)["complete"]


def test_ties_of_a_module_without_shared_tensors_change_nothing(data):
    module = registries().models.create("mlp", input_shape=data.input_shape, num_classes=8,
                                        widths=[8]).build()
    ties = Ties.of(module)
    state = module.state_dict()
    assert not ties and ties.drop(state) == state and ties.retie(state) == state
