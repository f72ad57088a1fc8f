"""Tables of results: the rows ``ridgeline report`` prints (and ``--json`` emits)."""

from __future__ import annotations

import difflib
import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ridgeline.core.errors import ConfigError
from ridgeline.core.results.readers import Rows, read_failures, read_metadata, read_summaries

CURVE_KEYS = ("pair", "aligner", "correction", "path", "segment")


def report_rows(path: str | Path) -> Rows:
    """One row per curve (pair, aligner, correction, path, segment) with the barrier metrics
    spread into columns (``loss_barrier``, ``loss_barrier_mean``, ``loss_midpoint``,
    ``error_barrier``..., endpoint accuracies) and every other metric's summary as
    ``<metric>.<key>``; ``flags`` lists incomplete or non-finite measurements and barriers
    above the unaligned (identity) one. A cell that failed for good (Ray executor) is a row of
    its own with its ``error`` in ``flags``."""
    rows: dict[tuple, dict[str, Any]] = {}
    for summary in read_summaries(path):
        key = tuple(summary[k] for k in CURVE_KEYS)
        row = rows.setdefault(key, {**dict(zip(CURVE_KEYS, key)), "flags": []})
        row["align_seconds"] = summary.get("align_seconds", math.nan)
        row["align_objective"] = summary.get("align_objective", math.nan)
        row["align_objective_spread"] = summary.get("align_objective_spread", math.nan)
        if "align_objectives" in summary:
            row["align_objectives"] = summary["align_objectives"]
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
                                "align_objective", "align_objective_spread", "align_objectives"):
                    row[f"{metric}.{name}"] = value
    config = read_metadata(path).get("config", {})
    identity = identity_labels(config)
    for row, flag in barriers_above_identity(list(rows.values()), identity):
        row["flags"].append(flag)
    for failure in read_failures(path):
        levels = [*failure["levels"], "", "", ""][:3]
        rows[(failure["pair"], failure["cell"])] = {
            **dict(zip(CURVE_KEYS, (failure["pair"], *levels, ""))),
            "flags": [f"failed: {failure['error']}"], "error": failure["error"]}
    return Rows(sorted(rows.values(), key=_config_order(config)))


def identity_labels(config: Mapping[str, Any]) -> set[str]:
    """The result labels of the pipeline's ``identity`` aligners (no alignment)."""
    return {entry_label(e) for e in config.get("aligners", []) if e["name"] == "identity"}


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
                shown = ((_fmt(aligned), _fmt(naive)) if quantity == "loss"  # error barriers in points
                         else (f"{_fmt(100 * aligned)} pp", f"{_fmt(100 * naive)} pp"))
                found.append((row, f"{quantity} barrier {shown[0]} is above the unaligned (identity) "
                                   f"barrier {shown[1]}: the alignment made the path worse"))
    return found


def curve_name(row: dict[str, Any]) -> str:
    """pair/aligner/correction/path/segment of a report row."""
    return "/".join(str(row[k]) for k in CURVE_KEYS)


def entry_label(entry: Mapping[str, Any]) -> str:
    """The label results carry for a stored config entry: its ``label``, else its name."""
    return str(entry.get("label") or entry["name"])


def entry_order(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The labels of a stored pipeline config's model sets (``pair``), aligners, correction sets
    and paths, in the order the config lists them: tables sort rows by it, figures assign
    styles by it (so the same config draws the same styles)."""
    return {
        "pair": [p["name"] for p in config.get("pairs", [])],
        "aligner": [entry_label(e) for e in config.get("aligners", [])],
        "correction": ["+".join(entry_label(c) for c in cs) or "none"
                       for cs in config.get("corrections", [])],
        "path": [entry_label(e) for e in config.get("paths", [])],
    }


def _config_order(config: Mapping[str, Any]):
    """Sort key putting rows in the order the (stored) pipeline config lists its entries."""
    order = entry_order(config)
    sweeps = _sweeps(config)

    def key(row: dict[str, Any]) -> tuple:
        sweep = sweep_of(row["pair"], sweeps)
        if sweep is not None:  # a sweep's pairs stay together, in the order they were expanded
            return (order["pair"].index(sweep), row["pair"],
                    *(order[k].index(row[k]) if row[k] in order[k] else len(order[k])
                      for k in list(order)[1:]), row["segment"])
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
    ("align objective", "align_objective", False), ("objective spread", "align_objective_spread", False),
    ("align s", "align_seconds", False),
)
"""(header, report key, how to show it) of every column ``--wide`` prints: ``"acc"`` shows
1 - error in percent, ``True`` a fraction in percent (points), ``"merged"`` a merged model's
accuracy in percent, ``False`` the number itself."""

DEFAULT_VALUES = ("error_start", "error_end", "loss_barrier", "error_barrier", "merged_test_accuracy")
"""The value columns of the default table (with the key columns it fits 100 characters)."""

TABLE_WIDTH = 100
_ALWAYS_SHOWN = ("aligner",)
_MIN_KEY_WIDTH = 8


def _column(key: str) -> tuple[str, str, Any]:
    for column in TABLE_COLUMNS:
        if column[1] == key:
            return column
    return (key, key, False)


def _cell(row: dict[str, Any], key: str, kind: Any) -> str:
    value = row.get(key, math.nan)
    if kind == "acc":
        return _fmt(1.0 - value, percent=True) if isinstance(value, float) else ""
    if kind == "merged":
        return _fmt(value, percent=True) if key in row else ""
    if key not in row:
        return ""
    return _fmt(value, percent=kind is True)


def _elide(text: str, width: int) -> str:
    """``text`` cut to ``width`` in its middle, so labels sharing a prefix stay distinct."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2 + (width - 1) % 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def _chosen_columns(rows: Sequence[dict[str, Any]], wide: bool,
                    columns: Sequence[str] | None) -> tuple[list[tuple[str, str, Any]], list[str]]:
    """The columns to print, and the constant key columns moved into the caption."""
    known = {k for r in rows for k in r}
    if columns is not None:
        unknown = [c for c in columns if c not in known and c not in {k for _, k, _ in TABLE_COLUMNS}]
        if unknown:
            keys = sorted(k for k in known if k != "flags")
            close = [m for c in unknown for m in difflib.get_close_matches(c, keys, n=2, cutoff=0.5)]
            raise ConfigError(f"no report column named {', '.join(map(repr, unknown))}"
                              + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else "")
                              + f"; the columns are: {', '.join(keys)}")
    if wide:
        chosen = [c for c in TABLE_COLUMNS if c[1] in known]
        chosen = [c for c in chosen if c[1] != "segment" or any(r["segment"] != "line" for r in rows)]
        return chosen, []
    caption = [k for k in CURVE_KEYS if k not in _ALWAYS_SHOWN and len({r[k] for r in rows}) == 1]
    keys_left = [k for k in CURVE_KEYS if k not in caption]
    caption = [k for k in caption if k != "segment" or rows[0]["segment"] != "line"]  # a single curve
    keys = [_column(k) for k in keys_left]
    values = list(columns) if columns is not None else [k for k in DEFAULT_VALUES if k in known]
    keys = [c for c in keys if c[1] not in values]
    return [*keys, *(_column(k) for k in values)], caption


def format_table(rows: Sequence[dict[str, Any]], *, wide: bool = False,
                 columns: Sequence[str] | None = None, width: int = TABLE_WIDTH) -> str:
    """A plain-text table of :func:`report_rows` (accuracies and error barriers in percent).

    By default the key columns (pair, aligner, correction, path, segment; a key with one value
    in every row is said once above the table instead) and :data:`DEFAULT_VALUES`, fitted to
    ``width`` characters by shortening long names in the key columns. ``columns`` picks the
    value columns by report key (as in ``--json``); ``wide`` prints every column of
    :data:`TABLE_COLUMNS` at full width. Other metrics' summaries and the warnings follow the
    table, wrapped to ``width`` unless ``wide``.
    """
    if not rows:
        return "(no results)"
    chosen, caption = _chosen_columns(rows, wide, columns)
    body = [[_cell(row, key, kind) for _, key, kind in chosen] for row in rows]
    header = [c[0] for c in chosen]
    widths = _widths(header, body)
    if not wide:
        key_index = [i for i, c in enumerate(chosen) if c[1] in CURVE_KEYS]
        while sum(widths) + 2 * (len(widths) - 1) > width:
            widest = max(key_index, key=lambda i: widths[i], default=None)
            if widest is None or widths[widest] <= max(_MIN_KEY_WIDTH, len(header[widest])):
                break
            widths[widest] -= 1
        body = [[_elide(cell, w) for cell, w in zip(cells, widths)] for cells in body]
    lines = []
    if caption:
        lines.append("   ".join(f"{k}: {rows[0][k]}" for k in caption))
    lines += _grid(header, body, widths)
    shown = {key for _, key, _ in chosen}
    hidden = [c[0] for c in TABLE_COLUMNS if c[1] not in shown and any(c[1] in r for r in rows)
              and c[1] not in CURVE_KEYS]
    if hidden and not wide:
        lines.append(textwrap.fill(f"(more: {', '.join(hidden)}; --wide shows every column, "
                                   "--columns KEY,... picks them by their --json key)", width))
    extra = sorted({k for r in rows for k in r if "." in k} - shown)
    for row in rows:
        parts = [f"{k}={_fmt(row[k])}" for k in extra if k in row]
        if parts:
            where = "/".join(str(row[k]) for k in CURVE_KEYS)
            text = f"{where if wide else _elide(where, width - 1)}: " + ", ".join(parts)
            lines.append(text if wide else textwrap.fill(text, width, subsequent_indent="    ",
                                                         break_long_words=False))
    for row in rows:
        for flag in row["flags"]:
            lines.append(_warning(row, flag, None if wide else width))
    return "\n".join(lines)


def _widths(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[int]:
    """Each column's width: its longest cell or header."""
    return [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]


def _grid(header: Sequence[str], body: Sequence[Sequence[str]], widths: Sequence[int]) -> list[str]:
    """The lines of a plain-text table: the header, a rule, a line per row, columns of
    ``widths`` two spaces apart, no trailing spaces."""
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    return lines + ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in body]


def _warning(row: dict[str, Any], flag: str, width: int | None) -> str:
    """``WARNING <curve name>: <flag>``, filled to ``width`` (None: one line) with indented
    continuation lines; a curve name too long for a line breaks after a ``/``."""
    parts = [str(row[k]) for k in CURVE_KEYS]
    if width is None:
        return f"WARNING {'/'.join(parts)}: {flag}"
    tokens = [(f"{p}/", " " if i == 0 else "") for i, p in enumerate(parts[:-1])]
    tokens += [(f"{parts[-1]}:", "" if tokens else " ")] + [(word, " ") for word in flag.split()]
    lines, line = [], "WARNING"
    for text, joiner in tokens:
        if len(line) + len(joiner) + len(text) > width and line.strip():
            lines.append(line)
            line, joiner = "    ", ""
        line += joiner + text
    return "\n".join([*lines, line])


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as JSON; NaN and inf become null, also inside lists and tables (``align_objectives``)."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return json.dumps([{k: clean(v) for k, v in row.items()} for row in rows], indent=2)


SWEEP_SEPARATOR = ":"  # between a sweep's name and its pair (ridgeline.core.run.sweeps)


def sweep_names(path: str | Path) -> list[str]:
    """The names of the file's paired model sets (``pairs = "all"`` or ``"first"``)."""
    return _sweeps(read_metadata(path).get("config", {}))


def _sweeps(config: Mapping[str, Any]) -> list[str]:
    return [p["name"] for p in config.get("pairs", []) if p.get("pairs")]


def sweep_of(pair: str, sweeps: Sequence[str]) -> str | None:
    """The sweep a model set was expanded from, or None."""
    return next((s for s in sweeps if pair.startswith(s + SWEEP_SEPARATOR)), None)


SWEEP_QUANTITIES = ("loss_barrier", "loss_barrier_mean", "error_barrier", "error_barrier_mean")


def sweep_rows(path: str | Path, rows: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The report rows of sweeps grouped over their pairs: one row per (sweep, aligner,
    correction, path, segment) with ``pairs`` (how many were measured), and ``<q>_mean``,
    ``<q>_std`` (sample standard deviation), ``<q>_min``, ``<q>_max`` for the loss and error
    barriers (both forms). Failed and non-finite pairs are left out of the numbers."""
    sweeps = sweep_names(path)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows if rows is not None else report_rows(path):
        sweep = sweep_of(row["pair"], sweeps)
        if sweep is not None and "error" not in row:
            key = (sweep, row["aligner"], row["correction"], row["path"], row["segment"])
            groups.setdefault(key, []).append(row)
    out = []
    for key, members in groups.items():
        row: dict[str, Any] = {**dict(zip(("sweep", *CURVE_KEYS[1:]), key)), "pairs": len(members)}
        for quantity in SWEEP_QUANTITIES:
            values = [m[quantity] for m in members if math.isfinite(m.get(quantity, math.nan))]
            mean = sum(values) / len(values) if values else math.nan
            spread = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
                      if len(values) > 1 else math.nan)
            row.update({f"{quantity}_mean": mean, f"{quantity}_std": spread,
                        f"{quantity}_min": min(values, default=math.nan),
                        f"{quantity}_max": max(values, default=math.nan)})
        out.append(row)
    return out


def format_sweeps(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of :func:`sweep_rows`: mean ± standard deviation over the pairs."""
    if not rows:
        return ""
    header = ["sweep", "aligner", "correction", "path", "segment", "pairs", "loss barrier",
              "err barrier pp"]
    if all(r["segment"] == "line" for r in rows):
        header.remove("segment")
    body = []
    for row in rows:
        cells = [str(row[h]) for h in header[:header.index("pairs") + 1]]
        cells.append(f"{_fmt(row['loss_barrier_mean'])} ± {_fmt(row['loss_barrier_std'])}")
        cells.append(f"{_fmt(100 * row['error_barrier_mean'])} ± {_fmt(100 * row['error_barrier_std'])}")
        body.append(cells)
    return "\n".join(_grid(header, body, _widths(header, body)))
