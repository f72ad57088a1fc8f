"""The command line on tiny settings: quickstart, report (table and JSON), plot, list, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ridgeline.core.cli import main
from ridgeline.core.cli.quickstart import quickstart_config
from ridgeline.core.run.config import PipelineConfig

ROOT = Path(__file__).resolve().parents[3]
TINY = ["--epochs", "2", "--num-samples", "600", "--width", "32", "--grid", "5", "--quiet", "--device", "cpu"]


def test_quickstart_report_and_plot(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "weight_matching" in printed and "loss barrier" in printed
    results = out / "results.h5"
    assert results.is_file() and (out / "seed0-seed1_curves.png").stat().st_size > 10_000

    assert main(["report", str(results), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["aligner"] for r in rows} == {"identity", "weight_matching"}
    for row in rows:
        assert row["loss_barrier"] >= -1e-9 and 0.0 <= row["error_start"] <= 1.0
    assert main(["report", str(results)]) == 0
    table = capsys.readouterr().out
    assert "identity" in table and "err barrier pp" in table

    assert main(["plot", str(results), "--out", str(tmp_path / "figs"), "--format", "pdf"]) == 0
    assert (tmp_path / "figs" / "seed0-seed1_curves.pdf").is_file()


def test_quickstart_toml_is_the_embedded_default():
    from_file = PipelineConfig.from_toml(ROOT / "examples" / "quickstart.toml")
    embedded = quickstart_config(output_dir=ROOT / "examples" / "ridgeline-quickstart")
    assert from_file.to_dict() == embedded.to_dict()
    assert Path(from_file.output) == Path(embedded.output)


def test_list_filters_by_kind_and_pattern(capsys):
    assert main(["list", "aligners", "weight*"]) == 0
    out = capsys.readouterr().out
    assert "weight_matching" in out and "identity" not in out


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.h5")]) == 2
    assert "missing.h5 does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('aligners = ["wieght_matching"]\n[dataset]\nname = "synthetic"\n[model]\nname = "mlp"\n'
                   '[[pairs]]\nseeds = [0, 1]\n')
    assert main(["run", str(bad), "--output", str(tmp_path / "r.h5")]) == 2
    err = capsys.readouterr().err
    assert "no aligners named 'wieght_matching'; did you mean 'weight_matching'" in err


def test_train_writes_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", "synthetic", "-o", "widths=[8]", "--steps", "20",
                 "--out", str(out), "--device", "cpu"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    from ridgeline.core.checkpoint import load_state

    assert load_state(out)["hidden.0.weight"].shape == (8, 16)


@pytest.mark.parametrize("flag", ["--spawn-step"])
def test_train_can_spawn_children(tmp_path, capsys, flag):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", "synthetic", "-o", "widths=[8]", "--steps", "20", flag, "10",
                 "--out", str(out), "--device", "cpu"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m-child0.safetensors", "m-child1.safetensors", "m-parent.safetensors"]


THREE_TINY_MLPS = """
[dataset]
name = "synthetic"
[model]
name = "mlp"
widths = [8]
[train]
steps = 20
[[pairs]]
seeds = [0, 1, 2]
"""

TINY_TOML = """
output = "r.h5"
metrics = [{ name = "loss_barrier", grid = 3 }, { name = "error_barrier", grid = 3 }]
""" + THREE_TINY_MLPS


def test_compare_runs_every_aligner_and_correction_into_one_file(tmp_path, capsys):
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(TINY_TOML)
    out = tmp_path / "cmp"
    assert main(["compare", str(pipeline), "--aligners", "identity", "weight_matching",
                 "--corrections", "none", "bn_reset", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "align objective" in printed and "bn_reset" in printed
    from ridgeline.core.results.tables import report_rows

    rows = report_rows(out / "results.h5")
    # 2 aligners x 2 correction sets x 2 lines (reference to each of the two other models)
    assert len(rows) == 8
    assert {r["segment"] for r in rows} == {"0-1", "0-2"}
    assert (out / "seed0-seed1-seed2_curves.png").is_file()


@pytest.mark.parametrize("toml", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_example_pipelines_parse_and_name_registered_entries(toml, regs):
    from ridgeline.core.run.sweeps import expand_grids

    config = PipelineConfig.from_toml(toml)
    config.check_names(regs)
    for entry in expand_grids(config, regs).aligners:
        regs.aligners.create(entry.name, **entry.options)  # options are accepted too


LANDSCAPE_TOML = """
output = "r.h5"
aligners = ["identity"]
paths = ["linear", { name = "plane", grid = 3 }, { name = "star", steps = 5, batch_size = 32 }]
metrics = [{ name = "loss_barrier", grid = 3 }, "layerwise_barrier", "taylor_barrier",
           { name = "landscape", curve_points = 3 }]
""" + THREE_TINY_MLPS


def test_plot_draws_the_landscape_pictures_of_a_pipeline(tmp_path, capsys):
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(LANDSCAPE_TOML)
    assert main(["run", str(pipeline), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["plot", str(tmp_path / "r.h5"), "--out", str(tmp_path / "figs")]) == 0
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert "seed0-seed1-seed2_identity_plane_landscape.png" in names
    assert any(n.endswith("_layerwise_barrier.png") for n in names)
    assert any(n.endswith("_taylor_barrier.png") for n in names)
    assert "seed0-seed1-seed2_curves.png" in names
    from PIL import Image

    for name in names:  # every picture's title names the model set, the split and the metric
        title = Image.open(tmp_path / "figs" / name).text["Title"]
        metrics = ("loss_barrier", "layerwise_barrier", "taylor_barrier", "landscape")
        assert title.startswith("seed0-seed1-seed2: ") and "test split" in title, title
        assert any(metric in title for metric in metrics), title


def test_checkpoint_series_are_measured_over_training_time(tmp_path, capsys, regs):
    from ridgeline.core.results.readers import read_summaries
    from ridgeline.core.run.training import TrainConfig, train

    dataset = regs.datasets.create("synthetic")
    model = regs.models.create("mlp", input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                               widths=[8, 8])
    for seed in (0, 1):
        train(model, dataset, TrainConfig(steps=30, checkpoint_every=10), seed=seed,
              checkpoint_dir=tmp_path / f"run{seed}", progress=False)
    (tmp_path / "p.toml").write_text(
        'output = "r.h5"\naligners = ["identity", "weight_matching"]\n'
        'metrics = [{ name = "error_barrier", grid = 3 }, { name = "loss_barrier", grid = 3 }, '
        '"layerwise_barrier"]\n[dataset]\nname = "synthetic"\n[model]\nname = "mlp"\nwidths = [8, 8]\n'
        '[[pairs]]\nname = "runs"\nseries = ["run0", "run1"]\n')
    assert main(["run", str(tmp_path / "p.toml"), "--quiet"]) == 0
    pairs = {r["pair"] for r in read_summaries(tmp_path / "r.h5")}
    assert pairs == {"runs@step10", "runs@step20", "runs@step30"}
    assert main(["plot", str(tmp_path / "r.h5"), "--out", str(tmp_path / "figs")]) == 0
    names = {p.name for p in (tmp_path / "figs").iterdir()}
    assert "runs_barrier_vs_step.png" in names
    assert "runs_identity_linear_layers_vs_step.png" in names
    from PIL import Image

    title = Image.open(tmp_path / "figs" / "runs_barrier_vs_step.png").text["Title"]
    assert title == "runs: loss_barrier and error_barrier over training, test split"
    assert not any(n.startswith("runs@step10_") and "layerwise" in n for n in names)


def test_a_two_model_path_refuses_a_larger_model_set(tmp_path, capsys):
    (tmp_path / "p.toml").write_text(LANDSCAPE_TOML.replace('"linear", { name = "plane", grid = 3 }, '
                                                            '{ name = "star", steps = 5, batch_size = 32 }',
                                                            '{ name = "bezier", steps = 5 }'))
    assert main(["run", str(tmp_path / "p.toml"), "--quiet"]) == 2
    assert "path 'bezier' joins two models, got 3" in capsys.readouterr().err
