from __future__ import annotations

import argparse
import json
import math

import h5py
import pytest
import torch

from ridgeline.core.checkpoint import save_state
from ridgeline.core.errors import (
    ConfigError,
    DataError,
    NonFiniteStateError,
    ResultsMismatchError,
    StateMismatchError,
    UnknownEntryError,
)
from ridgeline.core.plugin_host.host import hookimpl, load_plugins
from ridgeline.core.results.readers import read_curves, read_metadata, read_summaries
from ridgeline.core.run.config import PipelineConfig
from ridgeline.core.run.pipeline import Pipeline, run_pipeline


def test_pipeline_writes_every_curve_and_marks_completion(tmp_path, small_config):
    output = run_pipeline(small_config(tmp_path), progress=False)
    rows = read_summaries(output)
    assert {(r["aligner"], r["metric"]) for r in rows} == {
        (a, m) for a in ("identity", "weight_matching") for m in ("loss_barrier", "error_barrier")}
    assert all(r["complete"] and r["points"] == 7 for r in rows)  # 6-point grid plus t = 0.5
    meta = read_metadata(output)
    assert meta["complete"] and meta["config"]["model"]["widths"] == [16, 16] and meta["device"] == "cpu"
    with h5py.File(output) as f:
        assert "pairs/ab/alignments/weight_matching/perms/0/hidden.0" in f


def test_an_interrupted_run_resumes_to_the_same_numbers(tmp_path, flaky, small_config):
    metrics = [{"name": "flaky", "grid": 6}, {"name": "error_barrier", "grid": 6}]
    reference = run_pipeline(small_config(tmp_path / "whole", metrics=metrics), progress=False,
                             host=flaky.host(10**6))
    config = small_config(tmp_path / "cut", metrics=metrics)
    with pytest.raises(flaky.Interrupt):
        Pipeline(config, progress=False, host=flaky.host(10)).run()
    partial = read_summaries(config.output)
    assert not read_metadata(config.output)["complete"]
    assert any(not r["complete"] for r in partial)
    resumed = Pipeline(config, progress=False, host=flaky.host(10**6))
    resumed.run()
    assert "train_seed0" not in resumed.timings  # checkpoints were reused, not retrained

    def key(rows):
        return sorted(((r["aligner"], r["metric"], r["index"]), r["loss"], r["error"]) for r in rows)

    assert key(read_curves(config.output)) == key(read_curves(reference))
    assert read_metadata(config.output)["complete"]


def test_the_seed_and_training_threads_are_recorded_in_checkpoints_and_results(tmp_path, small_config):
    from ridgeline.core.checkpoint import load_metadata

    config = small_config(tmp_path, train={"steps": 10, "batch_size": 32, "lr": 0.01, "threads": 1})
    output = run_pipeline(config, progress=False)
    checkpoints = sorted((tmp_path / "checkpoints").glob("*.safetensors"))
    assert [(load_metadata(c)["seed"], load_metadata(c)["threads"]) for c in checkpoints] == [(0, 1), (1, 1)]
    with h5py.File(output) as f:
        models = json.loads(f["pairs/ab"].attrs["models"])
        assert f.attrs["threads"] == torch.get_num_threads()
    assert [(m["source"], m["seed"], m["threads"], m["deterministic"]) for m in models] == [
        (str(c), s, 1, True) for c, s in zip(checkpoints, (0, 1))]
    assert read_metadata(output)["config"]["train"]["threads"] == 1


def test_a_foreign_pickled_checkpoint_is_recorded_by_its_source_alone(tmp_path, small_config):
    """A trusted checkpoint holding pickled objects (``allow_pickle``) has no ridgeline metadata to
    read: its models are recorded by their files, and the run goes on."""
    pipeline = Pipeline(small_config(tmp_path), progress=False)
    paths = [str(tmp_path / f"m{seed}.pt") for seed in (0, 1)]
    for seed, path in enumerate(paths):  # a training script's checkpoint: the weights and its arguments
        torch.save({"state_dict": pipeline.model.init_state(seed), "args": argparse.Namespace(lr=0.1)}, path)
    config = small_config(tmp_path, pairs=[{"name": "ab", "checkpoints": paths, "allow_pickle": True}],
                          aligners=["identity"], metrics=[{"name": "loss_barrier", "grid": 2}])
    output = run_pipeline(config, progress=False)
    with h5py.File(output) as f:
        assert json.loads(f["pairs/ab"].attrs["models"]) == [{"source": path} for path in paths]


def test_loss_and_error_barriers_of_one_path_store_their_rows_once(tmp_path, small_config):
    from ridgeline.core.numerics.curves import barrier_summary

    metrics = [{"name": "loss_barrier", "grid": 6}, {"name": "error_barrier", "grid": 6},
               {"name": "error_barrier", "grid": 5, "label": "coarse"}]
    output = run_pipeline(small_config(tmp_path, aligners=["identity"], metrics=metrics), progress=False)
    base = "pairs/ab/curves/identity/none/linear/line"
    with h5py.File(output) as f:
        loss, error, coarse = (f[f"{base}/{m}"] for m in ("loss_barrier", "error_barrier", "coarse"))
        for column in ("t", "loss", "accuracy", "error"):
            assert loss[column] == error[column] and loss[column] != coarse[column]  # one dataset, two names
        assert error.attrs["shares"] == loss.name
        assert "shares" not in loss.attrs and "shares" not in coarse.attrs
    rows = read_curves(output)
    columns = ("index", "t", "loss", "accuracy", "error")
    loss_rows, error_rows = ([tuple(r[c] for c in columns) for r in rows if r["metric"] == m]
                             for m in ("loss_barrier", "error_barrier"))
    assert loss_rows == error_rows and len(error_rows) == 7
    summary = next(r for r in read_summaries(output) if r["metric"] == "error_barrier")
    expected = barrier_summary([r[1] for r in error_rows], [r[4] for r in error_rows])
    assert summary["complete"] and summary["points"] == 7 and summary["barrier"] == expected["barrier"]


def test_a_file_of_an_earlier_version_with_its_own_error_barrier_columns_resumes(tmp_path, small_config):
    from ridgeline.core.results.store import ResultsStore

    config = small_config(tmp_path, aligners=["identity"])
    output = run_pipeline(config, progress=False)
    before = read_curves(output)
    line = "pairs/ab/curves/identity/none/linear/line"
    with h5py.File(output, "a") as f:  # as written before rows were shared: own datasets, 2 points
        del f[f"{line}/error_barrier"]
        f[line.rsplit("/", 1)[0]].attrs["complete"] = False
        f.attrs["complete"] = False
    with ResultsStore(output, config.to_dict(), {"device": "cpu"}) as store:
        series = store.series("ab", ("identity", "none", "linear", "line", "error_barrier"),
                              ("t", "loss", "accuracy", "error"))
        for record in store.series("ab", ("identity", "none", "linear", "line", "loss_barrier"),
                                   ("t", "loss", "accuracy", "error")).records()[:2]:
            series.append(record)
    run_pipeline(config, progress=False)
    with h5py.File(output) as f:
        assert "shares" not in f[f"{line}/error_barrier"].attrs and f.attrs["complete"]
    assert read_curves(output) == before


def test_rerunning_a_finished_pipeline_changes_nothing(tmp_path, small_config):
    config = small_config(tmp_path)
    run_pipeline(config, progress=False)
    before = read_curves(config.output)
    pipeline = Pipeline(config, progress=False)
    pipeline.run()
    assert read_curves(config.output) == before
    assert not any(k.startswith(("train", "align")) for k in pipeline.timings)


def test_a_different_config_on_the_same_file_is_refused(tmp_path, small_config):
    run_pipeline(small_config(tmp_path), progress=False)
    changed = small_config(tmp_path, model={"name": "mlp", "widths": [16, 8]})
    expected = r"model.widths: file has \[16, 16\], pipeline has \[16, 8\]"
    with pytest.raises(ResultsMismatchError, match=expected):
        run_pipeline(changed, progress=False)


def test_nan_losses_are_recorded_and_flagged(tmp_path, small_config):
    config = small_config(tmp_path)
    pipeline = Pipeline(config, progress=False)
    states = [pipeline.model.init_state(s) for s in (0, 1)]
    states[1] = {k: torch.full_like(v, float("inf")) for k, v in states[1].items()}
    paths = []
    for i, state in enumerate(states):
        paths.append(str(save_state(tmp_path / f"m{i}.safetensors", state)))
    config = small_config(tmp_path, pairs=[{"name": "bad", "checkpoints": paths}], aligners=["identity"])
    output = run_pipeline(config, progress=False)
    loss = next(r for r in read_summaries(output) if r["metric"] == "loss_barrier")
    assert loss["finite"] == 0.0 and math.isnan(loss["barrier"])
    from ridgeline.core.results.tables import format_table, report_rows

    assert "NaN/inf" in format_table(report_rows(output))


def test_a_non_finite_checkpoint_is_refused_before_any_alignment_naming_file_and_tensor(
        tmp_path, small_config):
    pipeline = Pipeline(small_config(tmp_path), progress=False)
    good = pipeline.model.init_state(0)
    bad = dict(pipeline.model.init_state(1))
    bad["hidden.0.weight"] = bad["hidden.0.weight"].clone()
    bad["hidden.0.weight"][:2, 0] = float("nan")  # 2 of 16 x 12 = 192 entries
    paths = [str(save_state(tmp_path / name, state)) for name, state in
             (("good.safetensors", good), ("diverged.safetensors", bad))]
    config = small_config(tmp_path, pairs=[{"name": "bad", "checkpoints": paths}],
                          aligners=["identity", "weight_matching"])
    expected = r"diverged.safetensors.*'hidden.0.weight' \(2 of 192\).*weight_matching needs finite weights"
    with pytest.raises(NonFiniteStateError, match=expected):
        run_pipeline(config, progress=False)
    assert not (tmp_path / "results.h5").exists()  # nothing was aligned or measured


def test_a_refused_run_removes_the_empty_output_folders_it_created_and_keeps_others(tmp_path, small_config):
    pipeline = Pipeline(small_config(tmp_path), progress=False)
    bad = {k: torch.full_like(v, float("nan")) for k, v in pipeline.model.init_state(1).items()}
    paths = [str(save_state(tmp_path / "a.safetensors", pipeline.model.init_state(0))),
             str(save_state(tmp_path / "b.safetensors", bad))]
    pairs = [{"name": "bad", "checkpoints": paths}]
    with pytest.raises(NonFiniteStateError):
        run_pipeline(small_config(tmp_path, output=str(tmp_path / "new" / "run1" / "results.h5"),
                                  pairs=pairs), progress=False)
    assert not (tmp_path / "new").exists()  # both folders were made by the run and hold nothing
    kept = tmp_path / "kept"
    (kept / "notes").mkdir(parents=True)
    with pytest.raises(NonFiniteStateError):
        run_pipeline(small_config(tmp_path, output=str(kept / "run2" / "results.h5"), pairs=pairs),
                     progress=False)
    assert sorted(p.name for p in kept.iterdir()) == ["notes"]  # the folder existed: it stays
    (kept / "run3").mkdir()
    with pytest.raises(NonFiniteStateError):
        run_pipeline(small_config(tmp_path, output=str(kept / "run3" / "results.h5"), pairs=pairs),
                     progress=False)
    assert (kept / "run3").is_dir()  # an empty folder the user made stays too


def test_checkpoints_of_another_architecture_name_key_and_shapes(tmp_path, small_config):
    config = small_config(tmp_path)
    state = Pipeline(config, progress=False).model.init_state(0)
    good = save_state(tmp_path / "good.safetensors", state)
    wide = dict(state, **{"hidden.0.weight": torch.zeros(32, 12)})
    bad = save_state(tmp_path / "wide.safetensors", wide)
    config = small_config(tmp_path, pairs=[{"checkpoints": [str(good), str(bad)]}])
    with pytest.raises(StateMismatchError, match=r"'hidden.0.weight'.*\(16, 12\).*\(32, 12\)"):
        run_pipeline(config, progress=False)


def test_unknown_names_fail_before_any_work_with_close_matches(tmp_path, small_config):
    with pytest.raises(UnknownEntryError, match="did you mean 'weight_matching'"):
        Pipeline(small_config(tmp_path, aligners=["weight_matchng"]), progress=False)
    assert not (tmp_path / "results.h5").exists()


@pytest.mark.parametrize("bad, message", [
    ({"pairs": [{"seeds": [0]}]}, "at least two models"),
    ({"pairs": [{"seeds": [0, 1], "checkpoints": ["a", "b"]}]}, "not both"),
    ({"aligners": ["identity", "identity"]}, "same label"),
    ({"bogus": 1}, "unknown pipeline keys"),
    ({"train": {"epoch": 3}}, "unknown training options"),
    ({"train": {"epochs": "ten"}}, "train option epochs = 'ten' must be int"),
    ({"train": {"lr": -1.0}}, "train option lr = -1.0 must be > 0"),
    ({"batch_size": 0}, "pipeline option batch_size = 0 must be >= 1"),
])
def test_bad_configs_are_explained(tmp_path, bad, message, small_config):
    with pytest.raises(ConfigError, match=message):
        small_config(tmp_path, **bad)


@pytest.mark.parametrize("change, message", [
    ({"metrics": [{"name": "loss_barrier", "grid": "ten"}]},
     r"metric 'loss_barrier': option grid = 'ten' must be int \| Sequence\[float\]"),
    ({"metrics": [{"name": "error_barrier", "grid": 1, "label": "coarse"}]},
     r"metric 'coarse' \(error_barrier\).*at least 2 points"),
    ({"metrics": [{"name": "loss_barrier", "grid": 25, "splt": "test"}]}, "loss_barrier.*no option 'splt'"),
    ({"aligners": [{"name": "weight_matching", "max_iter": 0}]}, "weight_matching.*max_iter"),
    ({"aligners": [{"name": "activation_matching", "examples": 2.5}]}, "activation_matching.*examples = 2.5"),
    ({"paths": [{"name": "bezier", "steps": "many"}]}, "path 'bezier'.*steps = 'many' must be int"),
    ({"paths": ["star"]}, "path 'star' needs at least 3 models, got 2"),
    ({"corrections": [[{"name": "repair", "examples": "all"}]]}, "correction 'repair'.*examples = 'all'"),
    ({"model": {"name": "mlp", "widths": "ten"}}, "model 'mlp'.*widths = 'ten'"),
    ({"metrics": [{"name": "loss_barrier", "split": "tset"}]},
     r"metric 'loss_barrier': dataset 'synthetic' has no split 'tset'.*did you mean 'test'"),
    ({"aligners": [{"name": "activation_matching", "split": "tarin"}]},
     r"aligner 'activation_matching': dataset 'synthetic' has no split 'tarin'; it has train, test; "
     r"did you mean 'train'\?"),
    ({"aligners": ["identity", {"name": "zipit", "split": "val", "label": "zip"}]},
     r"aligner 'zip' \(zipit\): dataset 'synthetic' has no split 'val'"),
    ({"corrections": [[], [{"name": "bn_reset", "split": "tarin"}]]},
     r"correction 'bn_reset': dataset 'synthetic' has no split 'tarin'.*did you mean 'train'"),
    ({"corrections": [[{"name": "repair", "split": "Test"}]]},
     r"correction 'repair': dataset 'synthetic' has no split 'Test'.*did you mean 'test'"),
    ({"paths": [{"name": "polychain", "steps": 5, "split": "tarin"}]},
     r"path 'polychain': dataset 'synthetic' has no split 'tarin'.*did you mean 'train'"),
    ({"paths": [{"name": "plane", "curve": "bezier", "curve_options": {"steps": 5, "split": "tarin"}}]},
     r"path 'plane' \(option curve_options.split\): dataset 'synthetic' has no split 'tarin'"),
    ({"model": {"name": "mlp", "widths": [16, 0]}},
     r"model 'mlp': option widths = \[16, 0\] must be positive"),
    ({"model": {"name": "mlp", "width": 8, "depth": 0}}, r"model 'mlp': option depth = 0 must be >= 1"),
    ({"model": {"name": "mlp", "width": -8}}, r"model 'mlp': option width = -8 must be >= 1"),
    ({"model": {"name": "mlp", "num_classes": 2}},
     r"model 'mlp': num_classes is not an option: it comes from dataset 'synthetic' \(3 classes\)"),
    ({"model": {"name": "timm", "arch": "resnet18", "num_classes": 2}},
     r"model 'timm': num_classes is not an option: it comes from dataset 'synthetic' "
     r"\(3 classes\)"),
    ({"model": {"name": "mlp", "input_shape": [4, 3]}},
     r"model 'mlp': input_shape is not an option: it comes from dataset 'synthetic' "
     r"\(inputs of shape \(12,\)\)"),
    ({"paths": [{"name": "linear", "endpoints": []}]},
     r"path 'linear': endpoints is not an option"),
    ({"paths": [{"name": "linear", "ties": []}]},
     r"path 'linear': ties is not an option: it comes from model"),
])
def test_bad_options_fail_before_any_training_or_file(tmp_path, monkeypatch, change, message, small_config):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before the options were checked")

    monkeypatch.setattr("ridgeline.core.run.cells.train", no_training)
    with pytest.raises(ConfigError, match=message):
        run_pipeline(small_config(tmp_path, **change), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_fails_in_training_leaves_no_results_file(tmp_path, monkeypatch, flaky, small_config):
    def interrupted(*args, **kwargs):
        raise flaky.Interrupt

    monkeypatch.setattr("ridgeline.core.run.cells.train", interrupted)
    with pytest.raises(flaky.Interrupt):
        run_pipeline(small_config(tmp_path), progress=False)
    assert not (tmp_path / "results.h5").exists()


def test_an_alignment_that_raises_the_barrier_is_warned_about_and_flagged(tmp_path, small_config):
    from ridgeline.core.interfaces.aligner import Aligner, Alignment
    from ridgeline.core.results.tables import format_table, report_rows

    class Scramble(Aligner):
        """Permutes every group at random: a twin of the reference is no longer aligned."""

        name = "scramble"

        def align(self, reference, other, spec, context):
            return Alignment(perms=spec.random(torch.Generator().manual_seed(0)))

    class Plugin:
        @hookimpl
        def register_aligners(self, register):
            register("scramble", Scramble)

    config = small_config(tmp_path, pairs=[{"name": "twins", "seeds": [0, 0]}],
                          aligners=["identity", "scramble", "weight_matching"])
    host = load_plugins([("scramble", Plugin())], autoload=False)
    expected = (r"twins/scramble/none/linear/line: loss barrier .* is above the unaligned \(identity\) "
                r"barrier [-0-9.e]+: the alignment made the path worse")
    with pytest.warns(UserWarning, match=expected):
        run_pipeline(config, progress=False, host=host)
    flagged = {r["aligner"]: r["flags"] for r in report_rows(config.output)}
    assert flagged["identity"] == [] and flagged["weight_matching"] == []
    assert any("above the unaligned (identity) barrier" in f for f in flagged["scramble"])
    assert "WARNING twins/scramble/none/linear/line: loss barrier" in format_table(report_rows(config.output))


def test_a_merging_aligners_product_is_stored_and_measured(tmp_path, small_config):
    from ridgeline.core.interfaces.aligner import Alignment
    from ridgeline.core.state import lerp
    from ridgeline.plugins.aligners.weight_matching import WeightMatchingAligner

    class AverageAfterMatching(WeightMatchingAligner):
        """Weight matching, then the average of the aligned pair."""

        name = "average"
        merges = True

        def align(self, reference, other, spec, context):
            found = super().align(reference, other, spec, context)
            merged = lerp(reference, found.apply(spec, other), 0.5)
            return Alignment(perms=found.perms, merged=merged, seconds=found.seconds)

    class Plugin:
        @hookimpl
        def register_aligners(self, register):
            register("average", AverageAfterMatching)

    host = load_plugins([("avg", Plugin())], autoload=False)
    config = small_config(tmp_path, aligners=["average"])
    output = Pipeline(config, progress=False, host=host).run()
    row = read_summaries(output)[0]
    curve = {r["t"]: r for r in read_curves(output) if r["metric"] == "loss_barrier"}
    assert row["merged_test_loss"] == pytest.approx(curve[0.5]["loss"], rel=1e-6)
    assert 0.0 <= row["merged_train_accuracy"] <= 1.0
    with h5py.File(output) as f:
        assert "pairs/ab/alignments/average/merged/hidden.0.weight" in f


def test_cached_models_come_back_in_the_modules_key_order(tmp_path, small_config):
    config = small_config(tmp_path)
    pipeline = Pipeline(config, progress=False)
    trained = pipeline.load_models(config.pairs[0])
    reloaded = Pipeline(config, progress=False).load_models(config.pairs[0])  # from safetensors
    order = list(pipeline.model.build().state_dict())
    assert [list(s) for s in trained] == [order, order]
    assert [list(s) for s in reloaded] == [order, order]
    assert all(torch.equal(a[k], b[k]) for a, b in zip(trained, reloaded) for k in order)


def test_aligners_without_nested_support_get_the_flat_spec_on_a_vit(tmp_path):
    config = PipelineConfig.from_dict({
        "output": str(tmp_path / "vit.h5"),
        "dataset": {"name": "synthetic", "image_size": [3, 16, 16], "num_classes": 3,
                    "train_size": 64, "test_size": 32},
        "model": {"name": "timm", "arch": "test_vit", "img_size": 16, "patch_size": 4},
        "train": {"steps": 2, "batch_size": 32},
        "pairs": [{"seeds": [0, 1]}],
        "aligners": ["activation_matching", "weight_matching"],
        "metrics": [{"name": "loss_barrier", "grid": 3}],
    })
    pipeline = Pipeline(config, progress=False)
    spec = pipeline.model.spec()
    assert spec.nested  # the ViT has within-head groups
    output = pipeline.run()
    with h5py.File(output) as f:
        flat = set(f["pairs/seed0-seed1/alignments/activation_matching/perms/0"])
        full = set(f["pairs/seed0-seed1/alignments/weight_matching/perms/0"])
    assert flat == set(spec.without_nested().groups) and full == set(spec.groups)
    assert {r["aligner"] for r in read_summaries(output)} == {"activation_matching", "weight_matching"}


def test_trainable_paths_resume_to_the_same_numbers_and_are_not_refitted_when_done(
        tmp_path, monkeypatch, flaky, small_config):
    from ridgeline.plugins.paths.bezier import BezierPath

    fits = []
    original_fit = BezierPath.fit

    def counting_fit(self, evaluator):
        fits.append(1)
        return original_fit(self, evaluator)

    monkeypatch.setattr(BezierPath, "fit", counting_fit)
    metrics = [{"name": "flaky", "grid": 6}]
    paths = [{"name": "bezier", "steps": 10, "batch_size": 32}]
    reference = run_pipeline(small_config(tmp_path / "whole", metrics=metrics, paths=paths), progress=False,
                             host=flaky.host(10**6))
    config = small_config(tmp_path / "cut", metrics=metrics, paths=paths)
    with pytest.raises(flaky.Interrupt):
        Pipeline(config, progress=False, host=flaky.host(9)).run()
    host = flaky.host(10**6)
    fitted_before_resume = len(fits)
    Pipeline(config, progress=False, host=host).run()
    assert len(fits) == fitted_before_resume  # the stored curves are reused, not refitted

    def key(rows):
        return sorted(((r["aligner"], r["index"]), r["loss"]) for r in rows)

    assert key(read_curves(config.output)) == key(read_curves(reference))
    before = len(fits)
    Pipeline(config, progress=False, host=host).run()  # finished: nothing is fitted again
    assert len(fits) == before


def test_a_replaced_checkpoint_is_refused_on_resume(tmp_path, small_config):
    config = small_config(tmp_path)
    pipeline = Pipeline(config, progress=False)
    paths = [str(save_state(tmp_path / f"m{s}.safetensors", pipeline.model.init_state(s))) for s in (0, 1)]
    config = small_config(tmp_path, pairs=[{"name": "files", "checkpoints": paths}], aligners=["identity"])
    run_pipeline(config, progress=False)
    save_state(paths[1], pipeline.model.init_state(5))
    with pytest.raises(ResultsMismatchError, match="not the ones its results were measured on"):
        run_pipeline(config, progress=False)


def test_bad_devices_splits_and_metric_combinations_fail_before_any_work(tmp_path, small_config):
    with pytest.raises(ConfigError, match="device 'gpu' is not one torch knows"):
        Pipeline(small_config(tmp_path, device="gpu"), progress=False)
    with pytest.raises(ConfigError, match="has no split 'validation'"):
        Pipeline(small_config(tmp_path, metrics=[{"name": "loss_barrier", "split": "validation"}]),
                 progress=False)
    with pytest.raises(ConfigError, match="taylor_barrier.*cannot run under corrections"):
        Pipeline(small_config(tmp_path, metrics=["taylor_barrier"], corrections=[[], ["repair"]]),
                 progress=False)
    assert not (tmp_path / "results.h5").exists()


def test_batchnorm_models_without_statistics_correction_are_warned_about(tmp_path, small_config):
    config = small_config(tmp_path, dataset={"name": "synthetic", "image_size": [1, 8, 8]},
                          model={"name": "convnet", "widths": [4, 4]})
    with pytest.warns(UserWarning, match="BatchNorm but no correction set"):
        Pipeline(config, progress=False)


def test_a_model_that_cannot_take_the_datasets_inputs_is_one_line_naming_both_shapes(
        tmp_path, small_config):
    pytest.importorskip("timm")
    config = small_config(tmp_path, dataset={"name": "synthetic", "image_size": [3, 16, 16]},
                          model={"name": "timm", "arch": "vit_tiny_patch16_224", "img_size": 32})
    with pytest.raises(ConfigError, match=r"^model 'timm' cannot take dataset 'synthetic''s inputs of shape "
                                          r"\(3, 16, 16\) \(it expects \(3, 32, 32\)\): [^\n]+$"):
        Pipeline(config, progress=False)
    assert not (tmp_path / "results.h5").exists()


def test_labels_out_of_range_stop_the_run_before_any_training(tmp_path, small_config):
    import numpy as np

    np.savez(tmp_path / "data.npz", x_train=np.zeros((8, 12), np.float32), y_train=np.arange(8) % 3,
             x_test=np.zeros((4, 12), np.float32), y_test=np.array([0, 1, 2, 5]))
    config = small_config(tmp_path, dataset={"name": "tensors", "path": "data.npz", "num_classes": 3})
    config = PipelineConfig.from_dict({**config.to_dict(), "output": "results.h5"}, base_dir=tmp_path)
    assert config.dataset.options["path"] == str(tmp_path / "data.npz")  # relative to the file
    with pytest.raises(DataError, match=r"data.npz \(x_test, y_test\): labels must lie in 0..2 .* label 5"):
        Pipeline(config, progress=False).run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz"]  # nothing trained or written


def test_points_per_batch_gives_the_records_of_one_point_at_a_time(tmp_path, monkeypatch, small_config):
    from ridgeline.core.interfaces.evaluator import Evaluator

    one = run_pipeline(small_config(tmp_path / "one"), progress=False)
    stacked_calls = []
    original = Evaluator._stacked_logits

    def spy(self, stacked, x):
        stacked_calls.append(next(iter(stacked.values())).shape[0])
        return original(self, stacked, x)

    monkeypatch.setattr(Evaluator, "_stacked_logits", spy)
    config = small_config(tmp_path / "stacked", points_per_batch=4)
    assert config.to_dict() == small_config(tmp_path / "stacked").to_dict()  # a speed knob only
    stacked = run_pipeline(config, progress=False)
    assert stacked_calls and max(stacked_calls) == 4
    assert read_metadata(stacked)["points_per_batch"] == 4

    def key(row):
        return row["aligner"], row["metric"], row["index"]

    expected = {key(r): r for r in read_curves(one)}
    rows = read_curves(stacked)
    assert sorted(map(key, rows)) == sorted(expected)
    for row in rows:
        reference = expected[key(row)]
        assert row["t"] == reference["t"] and row["accuracy"] == reference["accuracy"]
        assert row["loss"] == pytest.approx(reference["loss"], rel=1e-6)


def test_a_reduced_evaluation_precision_without_cuda_is_refused_before_any_work(tmp_path, small_config):
    with pytest.raises(ConfigError, match="precision 'fp16' is CUDA autocast"):
        Pipeline(small_config(tmp_path, precision="fp16", device="cpu"), progress=False)
    with pytest.raises(ConfigError, match="points_per_batch must be a whole number"):
        Pipeline(small_config(tmp_path, points_per_batch=0), progress=False)
    assert not (tmp_path / "results.h5").exists()


@pytest.mark.cuda
def test_a_cuda_run_with_stacked_points_matches_the_cpu_run(tmp_path, small_config):
    shared = str(tmp_path / "checkpoints")  # the GPU run evaluates the models the CPU run trained
    cpu = run_pipeline(small_config(tmp_path / "cpu", device="cpu", checkpoint_dir=shared), progress=False)
    gpu = run_pipeline(small_config(tmp_path / "gpu", device="cuda", points_per_batch=4,
                                    checkpoint_dir=shared), progress=False)
    assert read_metadata(gpu)["device"].startswith("cuda")

    def key(row):
        return row["aligner"], row["metric"], row["index"]

    expected = {key(r): r for r in read_curves(cpu)}
    for row in read_curves(gpu):
        assert row["loss"] == pytest.approx(expected[key(row)]["loss"], rel=1e-4)
