from __future__ import annotations

import json

import pytest

from ridgeline.core.cli.parser import main
from ridgeline.core.interfaces.aligner import Alignment
from ridgeline.core.run import bench
from ridgeline.core.run.bench import aligner_work, bench_pipeline, format_bench, startup_seconds
from ridgeline.core.run.config import PipelineConfig
from ridgeline.core.run.pipeline import run_pipeline

PIPELINE = {
    "dataset": {"name": "synthetic", "features": 12, "num_classes": 3, "train_size": 128, "test_size": 64},
    "model": {"name": "mlp", "widths": [16, 16]},
    "train": {"steps": 10, "batch_size": 32},
    "pairs": [{"name": "ab", "seeds": [0, 1]}],
    "aligners": ["identity", "weight_matching"],
    "metrics": [{"name": "loss_barrier", "grid": 3}],
    "device": "cpu",
}


def config(tmp_path, **overrides):
    return PipelineConfig.from_dict({**PIPELINE, "output": str(tmp_path / "r.h5"), **overrides})


def test_bench_measures_every_part_against_its_baseline_without_training(tmp_path):
    report = bench_pipeline(config(tmp_path), points=3, repeats=1, startup=False)
    rows = {row.what: row for row in report.rows}
    forward = next(r for w, r in rows.items() if w.startswith("bare forward pass, 64 test examples"))
    assert forward.seconds > 0 and forward.ratio is None
    for stacked in (1, 8):
        row = rows[f"path evaluation per point, points_per_batch={stacked}"]
        assert row.ratio == pytest.approx(row.seconds / forward.seconds)
        assert row.against == "bare forward pass"
    assert "% of evaluation" in rows["HDF5 writes of 3 records"].note
    matching = rows["aligner weight_matching"]  # the default order "best": five runs, all timed
    runs = matching.details["diagnostics"]["runs"]
    assert len(runs) == 5 and matching.note == f"5 runs, {sum(run['sweeps'] for run in runs)} sweeps"
    assert sum(run["sweeps"] for run in runs) > matching.details["diagnostics"]["sweeps"]
    assert rows["aligner identity"].note == "0 iterations"
    assert "pipeline set-up (config, dataset, model, spec)" in rows
    assert "freshly initialised" in report.states
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "r.h5").exists()  # nothing written
    text = format_bench(report)
    assert all(row.what in text for row in report.rows) and "machine:" in text


def test_bench_uses_trained_states_and_times_corrections_once_the_pipeline_has_run(tmp_path):
    run_pipeline(config(tmp_path), progress=False)
    report = bench_pipeline(config(tmp_path, corrections=[[], ["repair"]]), points=3, repeats=1,
                            startup=False)
    assert "trained checkpoints" in report.states
    assert any(row.what == "path evaluation per point with repair" for row in report.rows)


def test_bench_command_prints_json_for_scripts(tmp_path, capsys):
    path = tmp_path / "pipeline.toml"
    path.write_text(
        'device = "cpu"\naligners = ["identity"]\nmetrics = [{ name = "loss_barrier", grid = 3 }]\n'
        '[dataset]\nname = "synthetic"\nfeatures = 12\nnum_classes = 3\ntrain_size = 64\n'
        'test_size = 32\n[model]\nname = "mlp"\nwidths = [8]\n[[pairs]]\nseeds = [0, 1]\n')
    assert main(["bench", str(path), "--json", "--no-startup", "--points", "3", "--repeats", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["machine"]["device"] == "cpu" and data["machine"]["cpu_cores"] >= 1
    assert {"what", "seconds", "ratio", "against", "note"} <= set(data["rows"][0])


@pytest.mark.slow
def test_startup_is_measured_in_fresh_interpreters():
    listing, torch_import = startup_seconds(repeats=1)
    assert listing > 0 and torch_import > 0


def test_bench_aligns_as_the_pipeline_does_with_each_aligners_own_symmetry(tmp_path):
    """tree_matching searches the model's whole symmetry (flips, orders), as the pipeline's align
    cell gives it, and reports its own search; weight matching reports its runs."""
    trees = config(tmp_path, dataset={"name": "tabular", "table": "iris"},
                   model={"name": "soft_trees", "trees": 4, "depth": 2},
                   aligners=["identity", "weight_matching", "tree_matching"],
                   metrics=[{"name": "loss_barrier", "grid": 3, "split": "train"}])
    rows = {row.what: row for row in bench_pipeline(trees, points=3, repeats=1, startup=False).rows}
    tree = rows["aligner tree_matching"]
    assert tree.details["diagnostics"]["trees"]["search"] == "exact"
    assert tree.details["components"] == ["trees", "trees.flips", "trees.orders"]
    assert "trees: exact search" in tree.note and "runs" not in tree.details["diagnostics"]
    matching = rows["aligner weight_matching"]
    assert matching.details["components"] == ["trees"] and "runs" in matching.details["diagnostics"]


def test_bench_runs_a_ray_pipeline_serially_in_this_process(tmp_path, monkeypatch):
    import ridgeline.core.run.ray_executor as ray_executor

    def refuse():
        raise AssertionError("bench measures in this process: no Ray")

    monkeypatch.setattr(ray_executor, "require_ray", refuse)
    report = bench_pipeline(config(tmp_path, executor={"name": "ray"}), points=3, repeats=1, startup=False)
    assert report.machine["device"] == "cpu"


def test_the_aligner_note_counts_every_run_and_sweep_the_time_covers():
    runs = [{"order": "forward", "sweeps": 4}, {"order": "backward", "sweeps": 6}]
    kept = Alignment(perms={}, history=(1.0,) * 6, diagnostics={"sweeps": 6, "runs": runs})
    assert aligner_work(kept) == "2 runs, 10 sweeps"
    trees = Alignment(perms={}, history=(1.0,) * 4, diagnostics={
        "weight_matching_sweeps": 4, "weight_matching_runs": runs,
        "trees": {"search": "greedy", "transforms_per_pair": 1}})
    assert aligner_work(trees) == ("2 weight matching runs, 10 sweeps; "
                                   "trees: greedy search, 1 transform per pair")
    assert aligner_work(Alignment(perms={}, history=(1.0, 2.0, 3.0))) == "3 iterations"
    assert aligner_work(Alignment(perms={}, history=(1.0,))) == "1 iteration"


def test_start_up_commands_are_interleaved_so_that_they_see_the_same_load(monkeypatch):
    calls = []
    monkeypatch.setattr(bench.subprocess, "run", lambda command, **kwargs: calls.append(command[-1]))
    times = bench.fresh_interpreter_seconds({"a": "code a", "b": "code b"}, repeats=3)
    assert calls == ["code a", "code b"] * 3 and [len(t) for t in times.values()] == [3, 3]
