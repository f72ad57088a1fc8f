"""Tables of results: the rows ``ridgeline report`` prints (and ``--json`` emits)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ridgeline.core.results.readers import read_metadata, read_summaries

CURVE_KEYS = ("pair", "aligner", "correction", "path", "segment")


def report_rows(path: str | Path) -> list[dict[str, Any]]:
    """One row per curve (pair, aligner, correction, path, segment) with the barrier metrics
    spread into columns (``loss_barrier``, ``loss_barrier_mean``, ``loss_midpoint``,
    ``error_barrier``..., endpoint accuracies) and every other metric's summary as
    ``<metric>.<key>``; ``flags`` lists incomplete or non-finite measurements and barriers
    above the unaligned (identity) one."""
    rows: dict[tuple, dict[str, Any]] = {}
    for summary in read_summaries(path):
        key = tuple(summary[k] for k in CURVE_KEYS)
        row = rows.setdefault(key, {**dict(zip(CURVE_KEYS, key)), "flags": []})
        row["align_seconds"] = summary.get("align_seconds", math.nan)
        row["align_objective"] = summary.get("align_objective", math.nan)
        row.update({k: v for k, v in summary.items() if k.startswith("merged_")})
        metric = summary["metric"]
        if not summary["complete"]:
            row["flags"].append(f"{metric} incomplete ({summary['points']} points)")
        if summary.get("finite", 1.0) == 0.0:
            row["flags"].append(f"{metric} has NaN/inf values")
        if metric in ("loss_barrier", "error_barrier"):
            quantity = metric.split("_")[0]
            row[f"{quantity}_barrier"] = summary.get("barrier", math.nan)
            row[f"{quantity}_barrier_mean"] = summary.get("barrier_mean", math.nan)
            row[f"{quantity}_midpoint"] = summary.get("midpoint", math.nan)
            row[f"{quantity}_start"] = summary.get("start", math.nan)
            row[f"{quantity}_end"] = summary.get("end", math.nan)
        else:
            for name, value in summary.items():
                if name not in (*CURVE_KEYS, "metric", "complete", "points", "align_seconds",
                                "align_objective"):
                    row[f"{metric}.{name}"] = value
    identity = identity_labels(read_metadata(path).get("config", {}))
    for row, flag in barriers_above_identity(list(rows.values()), identity):
        row["flags"].append(flag)
    return sorted(rows.values(), key=_config_order(path))


def identity_labels(config: Mapping[str, Any]) -> set[str]:
    """The result labels of the pipeline's ``identity`` aligners (no alignment)."""
    return {e.get("label") or e["name"] for e in config.get("aligners", []) if e["name"] == "identity"}


def barriers_above_identity(rows: Sequence[dict[str, Any]], identity: set[str]) -> list[tuple[dict, str]]:
    """(row, message) for every row whose loss or error barrier is higher than that of an
    ``identity`` aligner (labels ``identity``) on the same pair, correction, path and segment:
    an alignment that made the path worse than no alignment at all (a poor local optimum of
    weight matching, a broken aligner)."""
    def curve(row: dict[str, Any]) -> tuple:
        return tuple(row[k] for k in CURVE_KEYS if k != "aligner")

    unaligned = {curve(r): r for r in rows if r["aligner"] in identity}
    found = []
    for row in rows:
        base = unaligned.get(curve(row))
        if base is None or row is base:
            continue
        for quantity in ("loss", "error"):
            aligned = row.get(f"{quantity}_barrier", math.nan)
            naive = base.get(f"{quantity}_barrier", math.nan)
            # float noise of an equivalent network is no regression; False whenever either is NaN
            if aligned > naive + 1e-6 * max(1.0, abs(naive)):
                found.append((row, f"{quantity} barrier {_fmt(aligned)} is above the unaligned (identity) "
                                   f"barrier {_fmt(naive)}: the alignment made the path worse"))
    return found


def curve_name(row: dict[str, Any]) -> str:
    """pair/aligner/correction/path/segment of a report row."""
    return "/".join(str(row[k]) for k in CURVE_KEYS)


def _config_order(path: str | Path):
    """Sort key putting rows in the order the pipeline config lists its entries."""
    config = read_metadata(path).get("config", {})

    def labels(entries: list) -> list[str]:
        return [e.get("label") or e["name"] for e in entries]

    order = {
        "pair": [p["name"] for p in config.get("pairs", [])],
        "aligner": labels(config.get("aligners", [])),
        "correction": ["+".join(c.get("label") or c["name"] for c in cs) or "none"
                       for cs in config.get("corrections", [])],
        "path": labels(config.get("paths", [])),
    }

    def key(row: dict[str, Any]) -> tuple:
        return (*(order[k].index(row[k]) if row[k] in order[k] else len(order[k]) for k in order),
                row["segment"])

    return key


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan" if isinstance(value, float) and math.isnan(value) else str(value)
    if percent:
        return f"{100 * value:.1f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


TABLE_COLUMNS = (
    ("pair", "pair", False), ("aligner", "aligner", False), ("correction", "correction", False),
    ("path", "path", False), ("segment", "segment", False),
    ("acc A %", "error_start", "acc"), ("acc B %", "error_end", "acc"),
    ("loss barrier", "loss_barrier", False), ("loss barrier (mean)", "loss_barrier_mean", False),
    ("loss mid", "loss_midpoint", False), ("err barrier pp", "error_barrier", True),
    ("err barrier (mean) pp", "error_barrier_mean", True), ("acc mid %", "error_midpoint", "acc"),
    ("merged acc %", "merged_test_accuracy", "merged"),
    ("align objective", "align_objective", False), ("align s", "align_seconds", False),
)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of :func:`report_rows` (accuracies and error barriers in percent)."""
    if not rows:
        return "(no results)"
    present = [c for c in TABLE_COLUMNS if any(c[1] in r for r in rows)]
    present = [c for c in present if c[1] != "segment" or any(r["segment"] != "line" for r in rows)]
    body = []
    for row in rows:
        cells = []
        for _, key, kind in present:
            value = row.get(key, math.nan)
            if kind == "acc":
                cells.append(_fmt(1.0 - value, percent=True) if isinstance(value, float) else "")
            elif kind == "merged":
                cells.append(_fmt(value, percent=True) if key in row else "")
            else:
                cells.append(_fmt(value, percent=bool(kind)))
        body.append(cells)
    header = [c[0] for c in present]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)) for cells in body]
    extra = sorted({k for r in rows for k in r if "." in k})
    for row in rows:
        parts = [f"{k}={_fmt(row[k])}" for k in extra if k in row]
        if parts:
            lines.append(f"{'/'.join(str(row[k]) for k in CURVE_KEYS)}: " + ", ".join(parts))
    for row in rows:
        for flag in row["flags"]:
            lines.append(f"WARNING {'/'.join(str(row[k]) for k in CURVE_KEYS)}: {flag}")
    return "\n".join(lines)


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as JSON; NaN and inf become null."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return json.dumps([{k: clean(v) for k, v in row.items()} for row in rows], indent=2)
