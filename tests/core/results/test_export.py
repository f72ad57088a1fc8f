"""Tidy tables out of a results file: to_pandas() and `ridgeline export` (CSV and Parquet)
round-trip the report's numbers exactly."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys

import pytest

from ridgeline.core.cli import main
from ridgeline.core.errors import MissingExtraError
from ridgeline.core.results.export import _csv_text, export_tables
from ridgeline.core.results.readers import Rows, read_alignments, read_curves, read_summaries
from ridgeline.core.results.tables import report_rows

HAS_PANDAS = importlib.util.find_spec("pandas") is not None
HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
NUMBERS = ("loss_barrier", "loss_barrier_mean", "error_barrier", "error_start", "error_end", "loss_midpoint")


def _read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_export_round_trips_the_report_numbers(tiny_results, tmp_path, capsys):
    assert main(["export", str(tiny_results), "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["results_alignments.csv", "results_curves.csv", "results_report.csv",
                     "results_summaries.csv"]
    report = report_rows(tiny_results)
    exported = _read_csv(tmp_path / "results_report.csv")
    assert len(exported) == len(report) == 4
    for row, back in zip(report, exported):
        assert (back["aligner"], back["path"]) == (row["aligner"], row["path"])
        for key in NUMBERS:
            assert float(back[key]) == row[key]  # exact: the shortest repr reads back to the double
        assert math.isnan(row["align_objective"]) == (back["align_objective"] == "NaN")
    curves = _read_csv(tmp_path / "results_curves.csv")
    assert len(curves) == len(read_curves(tiny_results))
    assert [float(r["loss"]) for r in curves] == [r["loss"] for r in read_curves(tiny_results)]


def test_alignment_rows_are_permutations(tiny_results):
    rows = read_alignments(tiny_results)
    groups = {(r["aligner"], r["model"], r["group"]) for r in rows}
    assert {aligner for aligner, _, _ in groups} == {"identity", "weight_matching"}
    for key in groups:
        sources = [r["source"] for r in rows if (r["aligner"], r["model"], r["group"]) == key]
        assert sorted(sources) == list(range(len(sources)))
        if key[0] == "identity":
            assert sources == list(range(len(sources)))


def test_csv_text_of_special_values():
    assert [_csv_text(v) for v in (math.nan, math.inf, -math.inf, None, 0.1, True)] == [
        "NaN", "Inf", "-Inf", "", "0.1", "True"]


@pytest.mark.skipif(not HAS_PANDAS, reason="pandas is not installed (pip install 'ridgeline[pandas]')")
def test_readers_convert_to_pandas(tiny_results):
    for reader in (read_curves, read_summaries, read_alignments, report_rows):
        rows = reader(tiny_results)
        frame = rows.to_pandas()
        assert len(frame) == len(rows) and list(frame.columns) == rows.columns()
    frame = report_rows(tiny_results).to_pandas()
    assert frame["loss_barrier"].tolist() == [r["loss_barrier"] for r in report_rows(tiny_results)]


@pytest.mark.skipif(not (HAS_PANDAS and HAS_PYARROW), reason="pandas and pyarrow are not installed")
def test_parquet_export_round_trips_the_report_numbers(tiny_results, tmp_path):
    import pandas

    written = export_tables(tiny_results, tmp_path, fmt="parquet")
    assert [p.suffix for p in written] == [".parquet"] * 4
    back = pandas.read_parquet(tmp_path / "results_report.parquet")
    report = report_rows(tiny_results)
    for key in NUMBERS:
        assert back[key].tolist() == [r[key] for r in report]
    assert back["flags"].tolist() == ["; ".join(r["flags"]) for r in report]


def test_without_pandas_the_error_names_the_extra(tiny_results, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingExtraError, match=r"ridgeline\[pandas\]"):
        Rows([{"a": 1}]).to_pandas()
    assert main(["export", str(tiny_results), "--format", "parquet", "--out", str(tmp_path)]) == 2
    assert "pip install 'ridgeline[pandas]'" in capsys.readouterr().err


def test_weight_matchings_per_run_objectives_and_their_spread_are_columns(tiny_results, tmp_path, capsys):
    import json

    import h5py

    with h5py.File(tiny_results) as f:
        stored = json.loads(f["pairs/seed0-seed1/alignments/weight_matching"].attrs["diagnostics"])[0]
    rows = {r["aligner"]: r for r in report_rows(tiny_results)}
    matched, identity = rows["weight_matching"], rows["identity"]
    assert matched["align_objectives"] == stored["objectives"]  # forward, backward, random:0, ...
    assert set(matched["align_objectives"]) >= {"forward", "backward", "random:0"}
    spread = stored["objective_spread"]["max"] - stored["objective_spread"]["min"]
    assert matched["align_objective_spread"] == pytest.approx(spread) and spread >= 0
    assert max(matched["align_objectives"].values()) == pytest.approx(matched["align_objective"])
    assert math.isnan(identity["align_objective_spread"]) and "align_objectives" not in identity
    assert all("align_objective_spread" in r for r in read_summaries(tiny_results))

    assert main(["report", str(tiny_results), "--json"]) == 0
    emitted = {r["aligner"]: r for r in json.loads(capsys.readouterr().out)}
    assert emitted["weight_matching"]["align_objectives"] == stored["objectives"]
    assert emitted["identity"]["align_objective_spread"] is None
    assert main(["report", str(tiny_results), "--wide"]) == 0
    assert "objective spread" in capsys.readouterr().out.splitlines()[0]

    export_tables(tiny_results, tmp_path)
    back = {r["aligner"]: r for r in _read_csv(tmp_path / "results_report.csv")}
    assert float(back["weight_matching"]["align_objective_spread"]) == matched["align_objective_spread"]
    assert back["weight_matching"]["align_objectives"].startswith("forward=")
    assert back["identity"]["align_objectives"] == ""
