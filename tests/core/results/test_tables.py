"""The report table: the default fits 100 columns (key columns, constant keys said once);
--wide and --columns show the rest; --json stays complete."""

from __future__ import annotations

import json
import math

import pytest

from ridgeline.core.cli import main
from ridgeline.core.errors import ConfigError
from ridgeline.core.results.tables import TABLE_COLUMNS, format_table, to_json

ALIGNERS = ("identity", "activation_matching_inner_with_a_long_label",
            "activation_matching_inner_with_a_longer_label")


def _rows():
    rows = []
    for i, aligner in enumerate(ALIGNERS):
        for correction in ("none", "bn_reset+repair+another_correction"):
            for path in ("linear", "polychain_with_two_bends"):
                rows.append({
                    "pair": "seed0-seed1", "aligner": aligner, "correction": correction, "path": path,
                    "segment": "line", "flags": [], "align_seconds": 0.5, "align_objective": 100.0 + i,
                    "align_objective_spread": 2.5 * i,
                    "loss_barrier": 0.123456 * i, "loss_barrier_mean": 0.2, "loss_midpoint": 1.3,
                    "loss_start": 0.3, "loss_end": 0.31, "error_barrier": 0.0812, "error_barrier_mean": 0.09,
                    "error_midpoint": 0.4, "error_start": 0.31, "error_end": 0.314,
                    "taylor_barrier.measured": 0.7, "taylor_barrier.predicted_mid": 4.8})
    return rows


def test_default_table_fits_100_columns_and_keeps_names_distinct():
    text = format_table(_rows())
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert lines[0] == "pair: seed0-seed1"  # a key with one value is said once, above the table
    header = lines[1]
    for name in ("aligner", "correction", "path", "acc A %", "acc B %", "loss barrier", "err barrier pp"):
        assert name in header
    assert "align objective" not in header and "--wide" in text
    aligner_cells = {line.split("  ")[0].strip() for line in lines[3:15]}
    assert len(aligner_cells) == len(ALIGNERS)  # shortened names stay distinct
    assert any("…" in cell for cell in aligner_cells)
    assert "0.2469" in text  # 0.123456 x 2 as a loss barrier: values are never shortened
    assert "8.1" in text and "69.0" in text  # error barrier in pp, accuracy of A in percent


def test_wide_shows_every_column_at_full_width():
    text = format_table(_rows(), wide=True)
    header = text.splitlines()[0]
    for title, key, _ in TABLE_COLUMNS:
        if key not in ("segment", "merged_test_accuracy"):
            assert title in header
    assert ALIGNERS[2] in text


def test_columns_pick_the_value_columns_by_report_key():
    text = format_table(_rows(), columns=["align_seconds", "taylor_barrier.predicted_mid"])
    header = text.splitlines()[1].split("  ")
    assert [h.strip() for h in header if h.strip()] == ["aligner", "correction", "path", "align s",
                                                        "taylor_barrier.predicted_mid"]
    with pytest.raises(ConfigError, match="did you mean 'align_seconds'"):
        format_table(_rows(), columns=["align_secs"])


def test_report_cli_table_and_complete_json(tiny_results, capsys):
    assert main(["report", str(tiny_results)]) == 0
    table = capsys.readouterr().out
    assert max(len(line) for line in table.splitlines()) <= 100
    assert main(["report", str(tiny_results), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    keys = set().union(*rows)
    for key in ("loss_barrier_mean", "error_barrier_mean", "loss_midpoint", "align_objective",
                "align_seconds", "error_start", "error_end", "loss_start", "loss_end", "flags"):
        assert key in keys  # --json keeps every column the table leaves out
    assert main(["report", str(tiny_results), "--columns", "align_objective"]) == 0
    assert "align objective" in capsys.readouterr().out


def test_warnings_are_wrapped_to_the_width_and_error_barriers_are_in_points():
    from ridgeline.core.results.tables import barriers_above_identity

    rows = _rows()
    for row in rows:
        row["error_barrier"] = 0.0 if row["aligner"] == "identity" else 0.0293
    for row, flag in barriers_above_identity(rows, {"identity"}):
        row["flags"].append(flag)
    flagged = [f for r in rows for f in r["flags"] if f.startswith("error barrier")]
    assert flagged and all(f.startswith("error barrier 2.93 pp is above the unaligned (identity) "
                                        "barrier 0 pp") for f in flagged)
    text = format_table(rows)
    assert max(len(line) for line in text.splitlines()) <= 100
    warnings = [line for line in text.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == len([f for r in rows for f in r["flags"]])
    joined = " ".join(line.strip() for line in text.splitlines()[text.splitlines().index(warnings[0]):])
    assert "error barrier 2.93 pp is above" in joined
    narrow = format_table(rows, width=60).splitlines()
    tail = narrow[next(i for i, line in enumerate(narrow) if line.startswith("WARNING")):]
    assert max(len(line) for line in tail) <= 60  # the warnings follow the width asked for
    assert any(len(line) > 100 for line in format_table(rows, wide=True).splitlines()
               if line.startswith("WARNING"))  # --wide leaves them whole, one per line


def test_json_is_valid_with_nan_inside_lists_and_tables():
    """NaN and inf become null at any depth (``align_objectives`` is a table of run objectives)."""
    row = {"loss": math.nan, "curve": [1.0, math.inf], "align_objectives": {"a": math.nan, "b": 2.0}}
    text = to_json([row])
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON")) == [
        {"loss": None, "curve": [1.0, None], "align_objectives": {"a": None, "b": 2.0}}]
