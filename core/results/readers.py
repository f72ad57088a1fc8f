"""Reading a results file back: metadata and tidy rows (one per curve, or one per point).

Readers open the file read-only and say clearly why a file cannot be read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py

from ridgeline.core.errors import ResultsReadError
from ridgeline.core.results.store import CURVE_LEVELS


def _open(path: str | Path) -> h5py.File:
    """Open a results file for reading, or say clearly why it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise ResultsReadError(f"results file {path} does not exist")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ResultsReadError(f"{path} is not a readable HDF5 file ({error})") from None
    if "config" not in file.attrs:
        file.close()
        raise ResultsReadError(f"{path} is an HDF5 file but not a ridgeline results file")
    return file


def _curve_groups(file: h5py.File) -> Iterator[tuple[dict[str, str], h5py.Group]]:
    for pair, pair_group in file.get("pairs", {}).items():
        if "curves" not in pair_group:
            continue
        stack = [((), pair_group["curves"])]
        while stack:
            levels, group = stack.pop()
            if len(levels) == len(CURVE_LEVELS):
                yield {"pair": pair, **dict(zip(CURVE_LEVELS, levels))}, group
                continue
            for name in sorted(group, reverse=True):
                stack.append(((*levels, name), group[name]))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The file's top-level attributes (config decoded from JSON)."""
    with _open(path) as file:
        meta = {k: (v.item() if hasattr(v, "item") else v) for k, v in file.attrs.items()}
    for key in ("config", "timings", "plugin_versions"):
        if isinstance(meta.get(key), str):
            meta[key] = json.loads(meta[key])
    return meta


def read_summaries(path: str | Path) -> list[dict[str, Any]]:
    """Tidy rows, one per (pair, aligner, correction, path, segment, metric): the metric's
    summary numbers, ``complete``, and the alignment's objective and seconds."""
    rows = []
    with _open(path) as file:
        for keys, group in _curve_groups(file):
            row: dict[str, Any] = dict(keys)
            row["complete"] = bool(group.attrs.get("complete", False))
            row["points"] = int(group.attrs.get("n_done", 0))
            row.update(json.loads(group.attrs.get("summary", "{}")))
            alignment = file.get(f"pairs/{keys['pair']}/alignments/{keys['aligner']}")
            if alignment is not None:
                objectives = json.loads(alignment.attrs.get("objective", "[]"))
                finite = [o for o in objectives if math.isfinite(o)]
                row["align_objective"] = float(sum(finite)) if finite else math.nan
                row["align_seconds"] = float(alignment.attrs.get("seconds", math.nan))
                for key, value in alignment.attrs.items():
                    if key.startswith("merged_"):
                        row[key] = float(value)
            rows.append(row)
    return rows


def read_curves(path: str | Path) -> list[dict[str, Any]]:
    """Tidy rows, one per measured point: the curve's keys, ``index``, ``label`` and columns."""
    rows = []
    with _open(path) as file:
        for keys, group in _curve_groups(file):
            columns = json.loads(group.attrs["columns"])
            n = int(group.attrs.get("n_done", 0))
            data = {c: group[c][:n] for c in columns}
            labels = None
            if "labels" in group:
                labels = [s.decode() if isinstance(s, bytes) else s for s in group["labels"][()]]
            for i in range(n):
                row = {**keys, "index": i, "label": labels[i] if labels and i < len(labels) else ""}
                row.update({c: float(data[c][i]) for c in columns})
                rows.append(row)
    return rows


def read_failures(path: str | Path) -> list[dict[str, Any]]:
    """One row per cell that failed for good and has not been redone since: ``pair``,
    ``cell`` (its label), ``levels`` (aligner, correction, path as far as they apply),
    ``error`` and ``at``."""
    rows = []
    with _open(path) as file:
        for pair, pair_group in file.get("pairs", {}).items():
            for group in pair_group.get("failed", {}).values():
                rows.append({"pair": pair, "cell": str(group.attrs["cell"]),
                             "levels": json.loads(group.attrs.get("levels", "[]")),
                             "error": str(group.attrs["error"]), "at": str(group.attrs.get("at", ""))})
    return rows
