"""Sweep syntax (seed ranges, pairings, option grids), the executor setting, and how a sweep
is reported and plotted. Runs serially; the Ray executor has its own tests."""

from __future__ import annotations

import functools
import math
import sys

import pytest

from ridgeline.core.cli import main
from ridgeline.core.errors import ConfigError
from ridgeline.core.plugin_host.host import registries
from ridgeline.core.results.readers import read_summaries
from ridgeline.core.results.tables import report_rows, sweep_rows
from ridgeline.core.run.config import EntryConfig, ExecutorConfig
from ridgeline.core.run.pipeline import Pipeline, run_pipeline
from ridgeline.core.run.sweeps import expand_entry, pair_sets


@pytest.fixture
def config(sweep_config):
    """The run tests' sweep (seeds 0..2 paired with the first), loss and error barriers at 3 points."""
    return functools.partial(sweep_config, metrics=[{"name": "loss_barrier", "grid": 3},
                                                    {"name": "error_barrier", "grid": 3}])


@pytest.mark.parametrize("pairing, names", [
    ("all", ["s:seed3-seed4", "s:seed3-seed5", "s:seed3-seed6", "s:seed4-seed5", "s:seed4-seed6",
             "s:seed5-seed6"]),
    ("first", ["s:seed3-seed4", "s:seed3-seed5", "s:seed3-seed6"]),
])
def test_seed_ranges_pair_off_into_model_sets(tmp_path, pairing, names, config):
    model_set = config(tmp_path, pairs=[{"name": "s", "seeds": "3..6", "pairs": pairing}]).pairs[0]
    assert model_set.seeds == (3, 4, 5, 6)
    sets = pair_sets(model_set)
    assert [s.name for s in sets] == names
    assert all(len(s.seeds) == 2 and s.seeds[0] < s.seeds[1] for s in sets)
    assert config(tmp_path, pairs=[{"seeds": "0..7", "pairs": pairing}]).pairs[0].name == "seeds0..7"


def test_a_two_model_path_is_checked_on_the_pairs_a_sweep_makes(tmp_path, config):
    # three seeds paired with the first are two pairs: a curve joining two models must be accepted
    sweep = config(tmp_path, paths=["linear", {"name": "bezier", "steps": 2}])
    Pipeline(sweep, progress=False)  # options checked on placeholder pairs, nothing run
    with pytest.raises(ConfigError, match="joins two models, got 3"):
        Pipeline(config(tmp_path, paths=[{"name": "bezier", "steps": 2}],
                        pairs=[{"name": "three", "seeds": [0, 1, 2]}]), progress=False)


def test_checkpoints_pair_off_too(tmp_path, config):
    files = [str(tmp_path / f"{n}.safetensors") for n in ("a", "b", "c")]
    model_set = config(tmp_path, pairs=[{"name": "ck", "checkpoints": files, "pairs": "all"}]).pairs[0]
    assert [(s.name, len(s.checkpoints)) for s in pair_sets(model_set)] == [
        ("ck:a-b", 2), ("ck:a-c", 2), ("ck:b-c", 2)]


def test_an_option_grid_becomes_keyed_entries_but_a_sequence_option_stays_one_value():
    regs = registries()
    entry = EntryConfig("weight_matching", {"order": ["random", "forward", "best"], "max_iter": 5})
    expanded = expand_entry(entry, regs.aligners.get("weight_matching"))
    assert [e.key for e in expanded] == ["weight_matching[order=random]", "weight_matching[order=forward]",
                                         "weight_matching[order=best]"]
    assert [e.options for e in expanded][1] == {"order": "forward", "max_iter": 5}
    barrier = regs.metrics.get("loss_barrier")  # grid: int | Sequence[float]
    assert expand_entry(EntryConfig("loss_barrier", {"grid": [0.0, 0.5, 1.0]}), barrier) == [
        EntryConfig("loss_barrier", {"grid": [0.0, 0.5, 1.0]})]
    two = expand_entry(EntryConfig("loss_barrier", {"grid": [[0.0, 1.0], [0.0, 0.5, 1.0]]}, "lb"), barrier)
    assert [e.key for e in two] == ["lb[grid=[0.0,1.0]]", "lb[grid=[0.0,0.5,1.0]]"]


def test_grids_expand_in_the_pipeline_and_in_correction_sets(tmp_path, config):
    pipeline = Pipeline(config(tmp_path, aligners=[{"name": "weight_matching", "order": ["random", "best"]}],
                               corrections=[[], [{"name": "repair", "examples": [64, 128]}]]), progress=False)
    assert [a.key for a in pipeline.config.aligners] == ["weight_matching[order=random]",
                                                         "weight_matching[order=best]"]
    assert [pipeline.config.correction_label(c) for c in pipeline.config.corrections] == [
        "none", "repair[examples=64]", "repair[examples=128]"]


@pytest.mark.parametrize("bad, message", [
    ({"pairs": [{"seeds": "7..0"}]}, r"range like \"0..7\""),
    ({"pairs": [{"seeds": "a..b"}]}, "range like"),
    ({"pairs": [{"seeds": [0, 1], "pairs": "each"}]}, "expected 'all'"),
    ({"executor": {"name": "dask"}}, "expected one of serial, ray"),
    ({"executor": {"name": "ray", "gpus": 1}}, r"unknown keys \['gpus'\]"),
    ({"executor": {"name": "ray", "num_cpus": 0}}, "num_cpus must be > 0"),
])
def test_bad_sweeps_and_executors_are_explained(tmp_path, bad, message, config):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, **bad)


def test_the_executor_table_is_read_but_not_part_of_the_stored_config(tmp_path, config):
    parsed = config(tmp_path, executor={"name": "ray", "address": "head:6379", "num_cpus": 2,
                                        "num_gpus": 0.5, "max_retries": 3})
    assert parsed.executor == ExecutorConfig("ray", "head:6379", 2.0, 0.5, 3)
    assert "executor" not in parsed.to_dict()  # a run may resume under another executor


def test_asking_for_ray_without_ray_says_how_to_install_it(tmp_path, monkeypatch, config):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ConfigError, match=r"not installed: pip install 'ridgeline\[ray\]"):
        Pipeline(config(tmp_path), progress=False, executor="ray")
    assert not (tmp_path / "results.h5").exists()


def test_a_sweep_is_reported_grouped_and_plotted(tmp_path, capsys, config):
    output = run_pipeline(config(tmp_path), progress=False)
    assert {r["pair"] for r in read_summaries(output)} == {"sw:seed0-seed1", "sw:seed0-seed2"}
    rows = report_rows(output)
    groups = sweep_rows(output, rows)
    assert [(g["sweep"], g["aligner"], g["pairs"]) for g in groups] == [
        ("sw", "identity", 2), ("sw", "weight_matching", 2)]
    for group in groups:
        values = [r["loss_barrier"] for r in rows if r["aligner"] == group["aligner"]]
        assert group["loss_barrier_mean"] == pytest.approx(sum(values) / 2)
        assert group["loss_barrier_std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))
    assert main(["report", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "sweeps (mean ± standard deviation over pairs)" in printed
    assert f"{groups[1]['loss_barrier_mean']:.4g} ± {groups[1]['loss_barrier_std']:.4g}" in printed
    assert main(["plot", str(output), "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "sw_barriers.png").stat().st_size > 10_000


def test_a_cluster_address_without_the_ray_executor_is_refused(tmp_path, config):
    with pytest.raises(ConfigError, match="cluster address .* is for the ray executor"):
        Pipeline(config(tmp_path), address="127.0.0.1:6379", progress=False)
    assert not (tmp_path / "results.h5").exists()


def test_an_address_that_answers_but_is_not_ray_is_refused_quickly():
    import socket
    import threading

    from ridgeline.core.run.ray_executor import _reachable

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    with pytest.raises(ConfigError, match="answers, but not as a Ray cluster"):
        _reachable(f"127.0.0.1:{server.getsockname()[1]}", 1.0)  # silent: no HTTP/2 SETTINGS frame
    server.close()
