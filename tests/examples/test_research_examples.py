"""The research examples of issue 13 run end to end on shrunken settings, and what they write
holds the quantities their docs/methods.md sections report (the full runs are in the docs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_landscaping_toy_shows_a_ridge_and_the_unit_swap_barrier(tmp_path):
    run("landscaping.py", "--skip-mnist", "--toy-seeds", "2", "--out", str(tmp_path))
    toy = json.loads((tmp_path / "landscaping.json").read_text())["toy"]
    ridge = toy["ridge"]
    # the network and its own unit swap: a positive barrier, predicted positive from the curvature
    assert ridge["loss_barrier"]["summary"]["barrier"] > 1.0
    assert ridge["taylor_barrier"]["summary"]["predicted_all"] > 0
    assert (tmp_path / "landscaping_toy.png").stat().st_size > 10_000
    assert toy["pairs"] and {"naive_barrier", "matched_barrier"} <= set(toy["pairs"][0])


def test_input_connectivity_runs_the_trained_and_the_untrained_network(tmp_path):
    run("input_connectivity.py", "--pairs", "2", "--fit-steps", "5", "--train-steps", "20",
        "--checkpoint-dir", str(tmp_path / "checkpoints"), "--out", str(tmp_path))
    table = json.loads((tmp_path / "summary.json").read_text())
    assert set(table) == {f"{network}/{curve}" for network in ("trained", "untrained")
                          for curve in ("input_connectivity", "input_connectivity_bezier")}
    assert all(row["linear_barrier_max"] >= 0 and 0 <= row["fitted_connected"] <= 1 for row in table.values())
    # the untrained network is the initialisation (train steps = 0), not the trained pair again
    assert table["untrained/input_connectivity"] != table["trained/input_connectivity"]
    assert (tmp_path / "input_connectivity.png").stat().st_size > 10_000


def test_tree_connectivity_reports_every_invariance_set(tmp_path):
    out = tmp_path / "trees.json"
    run("tree_connectivity.py", "--datasets", "iris", "--structures", "oblivious", "--pairs", "1",
        "--trees", "4", "--depth", "2", "--steps", "30", "--grid", "3", "--out", str(out))
    table = json.loads(out.read_text())["iris/oblivious"]
    assert {"none", "permutation", "permutation + flips", "all"} <= set(table)
    none, everything = table["none"]["train_loss"][0], table["all"]["train_loss"][0]
    assert everything < none  # using every invariance lowers the barrier of the pair


@pytest.mark.slow
def test_smoe_merging_compares_msmoe_with_its_ablations(tmp_path):
    out = tmp_path / "smoe.json"
    run("smoe_merging.py", "--seeds", "1", "--epochs", "1", "--grid", "3", "--out", str(out),
        "--save", str(tmp_path))
    result = json.loads(out.read_text())
    assert {"original", "msmoe", "plain averaging", "no alignment"} <= set(result["merging"])
    # the compressed networks: parameters counted from the smaller module, outputs the merged ones'
    counts = result["parameters"]
    assert counts["after"] == counts["computed_after"] < counts["before"]
    assert result["compression"]["accuracy_equal"] and result["compression"]["max_logit_difference"] < 1e-5
    from ridgeline.core import load_metadata

    assert load_metadata(tmp_path / "smoe_msmoe_seed0.safetensors")["model"]["experts"] == 4
