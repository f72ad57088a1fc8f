"""Exporting a results file's tidy tables for tools without ridgeline (R, spreadsheets, notebooks).

Four tables, one file each, named after the results file (``results_report.csv`` ...):

* ``report``: :func:`~ridgeline.core.results.tables.report_rows`, one row per curve, the
  numbers ``ridgeline report`` prints (every column, as ``--json``); ``flags`` joined by ``; ``,
  ``align_objectives`` (weight matching's objective per run) as ``forward=463.9; ...``;
* ``summaries``: :func:`~ridgeline.core.results.readers.read_summaries`, one row per series;
* ``curves``: :func:`~ridgeline.core.results.readers.read_curves`, one row per measured point;
* ``alignments``: :func:`~ridgeline.core.results.readers.read_alignments`, one row per unit.

CSV needs nothing beyond the standard library: numbers are written in their shortest exact
form (``repr``), so they read back to the same double; NaN and infinities as ``NaN``, ``Inf``
and ``-Inf`` (what pandas' ``read_csv`` and R's ``read.csv`` read as such); a key a row lacks is an
empty cell. Parquet needs pandas and pyarrow (``pip install 'ridgeline[pandas]'``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ridgeline.core.errors import ConfigError, MissingExtraError
from ridgeline.core.results.readers import Rows, read_alignments, read_curves, read_summaries
from ridgeline.core.results.tables import report_rows

TABLES: dict[str, Callable[[str | Path], list[dict[str, Any]]]] = {
    "report": report_rows,
    "summaries": read_summaries,
    "curves": read_curves,
    "alignments": read_alignments,
}
FORMATS = ("csv", "parquet")


def _cell(value: Any) -> Any:
    """A list (``flags``) as ``a; b``, a mapping (``align_objectives``) as ``key=value; ...``."""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={_csv_text(v)}" for k, v in value.items())
    return value


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(value)


def _write_csv(rows: Rows, path: Path) -> None:
    columns = rows.columns()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_text(_cell(row.get(c))) for c in columns])


def _write_parquet(rows: Rows, path: Path) -> None:
    try:
        import pyarrow  # noqa: F401  (pandas' parquet engine)
    except ImportError:
        raise MissingExtraError("export --format parquet", "pyarrow", "pandas") from None
    frame = Rows([{k: _cell(v) for k, v in row.items()} for row in rows]).to_pandas()
    frame.to_parquet(path, index=False)


def export_tables(results: str | Path, out_dir: str | Path, *, fmt: str = "csv") -> list[Path]:
    """Write every table of :data:`TABLES` for ``results`` into ``out_dir`` as ``fmt`` (csv or
    parquet); returns the files written, ``<stem>_<table>.<fmt>``."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    results, out_dir = Path(results), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write = _write_csv if fmt == "csv" else _write_parquet
    written = []
    for name, reader in TABLES.items():
        path = out_dir / f"{results.stem}_{name}.{fmt}"
        write(Rows(reader(results)), path)
        written.append(path)
    return written
