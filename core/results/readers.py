"""Reading a results file back: metadata and tidy rows (one per curve, one per point, or one
per permuted unit).

Readers open the file read-only and say clearly why a file cannot be read. Rows come as
:class:`Rows`, a list of plain dicts that also converts to a pandas DataFrame (``to_pandas()``,
with the optional extra ``ridgeline[pandas]``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py

from ridgeline.core.errors import MissingExtraError, ResultsReadError
from ridgeline.core.results.store import CURVE_LEVELS

if TYPE_CHECKING:
    import pandas


class Rows(list):
    """Tidy rows: a list of dicts (one per observation, one key per variable)."""

    def to_pandas(self) -> pandas.DataFrame:
        """The rows as a pandas DataFrame, columns in the order they first appear (needs pandas:
        ``pip install 'ridgeline[pandas]'``)."""
        try:
            import pandas
        except ImportError:
            raise MissingExtraError("to_pandas()", "pandas", "pandas") from None
        return pandas.DataFrame.from_records(list(self), columns=self.columns())

    def columns(self) -> list[str]:
        """Every key of every row, in the order they first appear."""
        return list(dict.fromkeys(key for row in self for key in row))


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


def read_summaries(path: str | Path) -> Rows:
    """Tidy rows, one per (pair, aligner, correction, path, segment, metric): the metric's
    summary numbers, ``complete``, and the alignment's objective, its spread over the
    aligner's runs (:func:`_objective_runs`) and seconds."""
    rows = Rows()
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
                row.update(_objective_runs(json.loads(alignment.attrs.get("diagnostics", "[]"))))
                row["align_seconds"] = float(alignment.attrs.get("seconds", math.nan))
                for key, value in alignment.attrs.items():
                    if key.startswith("merged_"):
                        row[key] = float(value)
            rows.append(row)
    return rows


def _objective_runs(diagnostics: list[dict[str, Any]]) -> dict[str, Any]:
    """From an alignment's diagnostics (one dict per aligned model), how much its objective
    depended on the runs the aligner made (weight matching's sweep orders and restarts):
    ``align_objective_spread``, the sum over the aligned models of (highest - lowest) final
    objective of their runs (NaN for an aligner that makes no runs), and, where every model
    reports them, ``align_objectives``, each run's final objective ({"forward": ...,
    "random:0": ...}) summed over the aligned models like ``align_objective``."""
    spreads = [d["objective_spread"] for d in diagnostics if isinstance(d.get("objective_spread"), dict)]
    out: dict[str, Any] = {"align_objective_spread": math.nan}
    if spreads and len(spreads) == len(diagnostics):
        out["align_objective_spread"] = float(sum(s["max"] - s["min"] for s in spreads))
    runs = [d["objectives"] for d in diagnostics if isinstance(d.get("objectives"), dict)]
    if runs and len(runs) == len(diagnostics):
        out["align_objectives"] = {label: float(sum(r.get(label, math.nan) for r in runs))
                                   for label in runs[0]}
    return out


def read_curves(path: str | Path) -> Rows:
    """Tidy rows, one per measured point: the curve's keys, ``index``, ``label`` and columns."""
    rows = Rows()
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


def read_alignments(path: str | Path) -> Rows:
    """Tidy rows, one per permuted unit: ``pair``, ``aligner``, ``model`` (the aligned model's
    index in its model set; 0 is the reference), ``group``, ``unit`` and ``source``: unit
    ``unit`` of the aligned model is unit ``source`` of the model as trained (the permutation
    ``perm`` applied as ``aligned[unit] = original[perm[unit]]``), and is matched to the
    reference's unit ``unit``. Soft aligners' transport maps are not rows (read them with h5py,
    docs/results-format.md)."""
    rows = Rows()
    with _open(path) as file:
        for pair, pair_group in file.get("pairs", {}).items():
            for aligner, group in pair_group.get("alignments", {}).items():
                if not group.attrs.get("complete", False) or "perms" not in group:
                    continue
                for index in sorted(group["perms"], key=int):
                    for name, perm in group["perms"][index].items():
                        for unit, source in enumerate(perm[()].tolist()):
                            rows.append({"pair": pair, "aligner": aligner, "model": int(index) + 1,
                                         "group": name, "unit": unit, "source": int(source)})
    return rows


def read_failures(path: str | Path) -> Rows:
    """One row per cell that failed for good and has not been redone since: ``pair``,
    ``cell`` (its label), ``levels`` (aligner, correction, path as far as they apply),
    ``error`` and ``at``."""
    rows = Rows()
    with _open(path) as file:
        for pair, pair_group in file.get("pairs", {}).items():
            for group in pair_group.get("failed", {}).values():
                rows.append({"pair": pair, "cell": str(group.attrs["cell"]),
                             "levels": json.loads(group.attrs.get("levels", "[]")),
                             "error": str(group.attrs["error"]), "at": str(group.attrs.get("at", ""))})
    return rows
