"""The HDF5 results store: one file per run, one writer, records appended point by point.

Layout (documented in docs/results-format.md)::

    /                                   attrs: schema_version, ridgeline_version, plugin_versions,
                                               config (JSON), seed, device, created, complete (last)
    /pairs/<pair>/alignments/<aligner>  attrs: objective, seconds, diagnostics, complete
        perms/<group>                   int64 permutation applied to each non-reference model
        history                         objective after each iteration
        merged/<key>                    merged state (merging aligners only)
    /pairs/<pair>/curves/<aligner>/<correction>/<path>/<segment>/<metric>
        <column>                        float64, shape (n,), resizable, NaN fill
        labels                          point names (optional)
                                        attrs: n_done (commit marker, written after each append),
                                               summary (JSON), complete

Every dataset is created resizable (``maxshape=(None,)``), chunked, NaN-filled and grown by
``resize`` one record at a time, with ``n_done`` written after the data and the file flushed,
so a reader (or a crash) sees a consistent prefix (the pattern of emcee's HDF backend). A
re-run resumes after ``n_done`` and refuses a file whose configuration differs.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from ridgeline.core import __version__
from ridgeline.core.errors import ResultsMismatchError

SCHEMA_VERSION = 1
CURVE_LEVELS = ("aligner", "correction", "path", "segment", "metric")


def _safe(name: str) -> str:
    """An HDF5-safe group name ('/' would nest groups)."""
    return (name or "line").replace("/", "|")


safe_name = _safe
"""The group name the store gives a level (``segment``, ``metric`` ...) in the file."""


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(obj, list) and any(isinstance(v, (Mapping, list)) for v in obj):
        out = {}
        for i, value in enumerate(obj):
            out.update(_flatten(value, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): obj}


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two configurations, by dotted key."""
    a, b = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            old_value, new_value = a.get(key, "<absent>"), b.get(key, "<absent>")
            lines.append(f"{key}: file has {old_value!r}, pipeline has {new_value!r}")
    return lines


def _plain(value: Any) -> Any:
    """A metadata value HDF5 can hold: str subclasses (torch.__version__) become str."""
    return str(value) if isinstance(value, str) else value


def _number(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        value = value.detach().double().cpu().item()
    return float(value)


def _holds_results(file: h5py.File) -> bool:
    """Whether anything beyond the header was written: an alignment, a fit, or a point."""
    def visit(name: str, item: h5py.HLObject) -> bool | None:
        parts = name.split("/")
        if (len(parts) > 3 and parts[2] in ("alignments", "fits")) or int(item.attrs.get("n_done", 0)) > 0:
            return True
        return None

    return bool(file.visititems(visit))


class Series:
    """One metric's records along one curve: a column dataset per number, appended in order."""

    def __init__(self, group: h5py.Group, columns: Sequence[str]) -> None:
        self.group = group
        self.columns = tuple(columns)

    @property
    def n_done(self) -> int:
        return int(self.group.attrs.get("n_done", 0))

    @property
    def complete(self) -> bool:
        return bool(self.group.attrs.get("complete", False))

    def records(self) -> list[dict[str, float]]:
        n = self.n_done
        data = {c: self.group[c][:n] for c in self.columns}
        return [{c: float(data[c][i]) for c in self.columns} for i in range(n)]

    @property
    def shares(self) -> str | None:
        """The HDF5 path of the series whose columns this one shares (hard links), if any."""
        value = self.group.attrs.get("shares")
        return str(value) if value is not None else None

    def follow(self, source: Series) -> None:
        """Take the points of ``source``, whose column datasets this series shares: its records
        are those rows (``n_done`` copied; nothing written twice)."""
        if self.shares != source.group.name:
            raise ResultsMismatchError(f"{self.group.name} does not share the columns of {source.group.name}")
        self.group.attrs["n_done"] = source.n_done

    def append(self, record: Mapping[str, Any]) -> None:
        if self.shares is not None:
            raise ResultsMismatchError(f"{self.group.name} shares the columns of {self.shares}: its "
                                       "points are written there")
        missing = [c for c in self.columns if c not in record]
        extra = [k for k in record if k not in self.columns]
        if missing or extra:
            raise ResultsMismatchError(
                f"a record for {self.group.name} does not match its columns: missing {missing}, "
                f"unexpected {extra} (the metric's measure() and columns disagree)"
            )
        n = self.n_done
        for column in self.columns:
            dataset = self.group[column]
            if dataset.shape[0] <= n:
                dataset.resize((n + 1,))
            dataset[n] = _number(record[column])
        self.group.attrs["n_done"] = n + 1  # the commit marker, written after the data

    def finish(self, summary: Mapping[str, Any]) -> None:
        self.group.attrs["summary"] = json.dumps({k: _number(v) for k, v in summary.items()})
        self.group.attrs["complete"] = True


class ResultsStore:
    """Owns one HDF5 results file. Use as a context manager; every write is flushed."""

    def __init__(self, path: str | Path, config: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.config = json.loads(json.dumps(config))
        self.made_folders = [f for f in (self.path.parent, *self.path.parent.parents) if not f.exists()]
        """The folders this store creates for the file, deepest first (removed again when empty
        and the run leaves nothing, :meth:`discard_if_empty`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        exists = self.path.exists()
        self.created = not exists
        try:
            self.file = h5py.File(self.path, "a")
        except OSError as error:
            raise ResultsMismatchError(
                f"{self.path} exists but is not a readable HDF5 file ({error}); move it away or "
                "choose another output"
            ) from None
        if exists and "config" in self.file.attrs:
            self._check_existing(metadata)
            # the original run's metadata stays; each resume is recorded beside it
            resumes = json.loads(self.file.attrs.get("resumes", "[]"))
            resumes.append({"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                            **{k: _plain(v) for k, v in metadata.items()}})
            self.file.attrs["resumes"] = json.dumps(resumes, default=str)
        elif exists and len(self.file.keys()):
            self.file.close()
            raise ResultsMismatchError(f"{self.path} is an HDF5 file but not a ridgeline results file")
        else:
            self.file.attrs["schema_version"] = SCHEMA_VERSION
            self.file.attrs["ridgeline_version"] = __version__
            self.file.attrs["config"] = json.dumps(self.config, sort_keys=True)
            self.file.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self.file.attrs["complete"] = False
            for key, value in metadata.items():
                value = _plain(value)
                self.file.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)
        self.file.flush()

    def _check_existing(self, metadata: Mapping[str, Any]) -> None:
        version = int(self.file.attrs.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            self.file.close()
            raise ResultsMismatchError(
                f"{self.path} has results schema {version}; this ridgeline writes schema {SCHEMA_VERSION}"
            )
        old = json.loads(self.file.attrs["config"])
        differences = config_differences(old, self.config)
        stored_device = self.file.attrs.get("device")
        if stored_device is not None and "device" in metadata and str(metadata["device"]) != stored_device:
            differences.append(f"device: file was written on {stored_device!r}, this run is on "
                               f"{str(metadata['device'])!r} (numbers would mix devices)")
        if differences:
            self.file.close()
            raise ResultsMismatchError(
                f"{self.path} holds results of a different pipeline; refusing to mix them. "
                "Differences:\n  " + "\n  ".join(differences)
                + "\nChoose another output file, or delete this one to start over."
            )

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close()
        if exc_type is not None:
            self.discard_if_empty()

    def close(self) -> None:
        if self.file.id.valid:
            self.file.flush()
            self.file.close()

    def discard_if_empty(self) -> None:
        """Remove the file if this store created it and it holds no results (no alignment, fit
        or point), so that a run that failed before its first record leaves nothing behind, nor
        a configuration a corrected re-run would be refused by. A file that existed before, or
        that holds any result, stays; so do its folders, unless this store created them and they
        are empty (the run wrote nothing else there)."""
        if not self.created or not self.path.exists():
            return
        with h5py.File(self.path, "r") as file:
            empty = not _holds_results(file)
        if empty:
            self.path.unlink()
            with contextlib.suppress(OSError):  # another process writing there keeps the folder
                for folder in self.made_folders:
                    if not folder.is_dir() or any(folder.iterdir()):
                        break
                    folder.rmdir()

    # -- alignments --------------------------------------------------------------------
    def _alignment_group(self, pair: str, aligner: str) -> str:
        return f"pairs/{_safe(pair)}/alignments/{_safe(aligner)}"

    def read_alignment(self, pair: str, aligner: str) -> dict[str, Any] | None:
        """The stored alignment (perms per model, merged state), or None if not complete."""
        name = self._alignment_group(pair, aligner)
        if name not in self.file or not self.file[name].attrs.get("complete", False):
            return None
        group = self.file[name]
        perms = [
            {g: torch.from_numpy(group[f"perms/{i}/{g}"][()]) for g in group[f"perms/{i}"]}
            for i in sorted(group["perms"], key=int)
        ]
        merged = ({k: torch.from_numpy(group["merged"][k][()]) for k in group["merged"]}
                  if "merged" in group else None)
        return {"perms": perms, "merged": merged}

    def write_alignment(self, pair: str, aligner: str, alignments: Sequence[Any],
                        merged: Mapping[str, torch.Tensor] | None = None,
                        merged_eval: Mapping[str, float] | None = None) -> None:
        """Store the alignment of each non-reference model to the reference (and a merging
        aligner's merged state with its evaluation, ``merged_<split>_<loss|accuracy>``)."""
        name = self._alignment_group(pair, aligner)
        if name in self.file:
            del self.file[name]
        group = self.file.create_group(name)
        for i, alignment in enumerate(alignments):
            for g, perm in alignment.perms.items():
                group.create_dataset(f"perms/{i}/{g}", data=perm.cpu().numpy().astype(np.int64))
            for g, plan in alignment.transport.items():
                group.create_dataset(f"transport/{i}/{g}", data=plan.detach().cpu().numpy())
        group.create_dataset("history", data=np.asarray(
            [h for a in alignments for h in a.history], dtype=np.float64))
        group.attrs["objective"] = json.dumps([float(a.objective) for a in alignments])
        group.attrs["seconds"] = float(sum(a.seconds for a in alignments))
        group.attrs["diagnostics"] = json.dumps([dict(a.diagnostics) for a in alignments], default=str)
        if merged is not None:
            for key, tensor in merged.items():
                group.create_dataset(f"merged/{key}", data=tensor.detach().cpu().numpy())
        for key, value in (merged_eval or {}).items():
            group.attrs[key] = float(value)
        group.attrs["complete"] = True
        self.file.flush()

    def check_endpoints(self, pair: str, fingerprint: str) -> None:
        """Record the model set's state fingerprint, or refuse one that differs from the record
        (a checkpoint replaced, or a cache retrained differently, since the file was begun)."""
        group = self.file.require_group(f"pairs/{_safe(pair)}")
        stored = group.attrs.get("fingerprint")
        if stored is None:
            group.attrs["fingerprint"] = fingerprint
            self.file.flush()
        elif stored != fingerprint:
            raise ResultsMismatchError(
                f"{self.path}: the models of {pair!r} are not the ones its results were measured on "
                f"(fingerprint {fingerprint[:12]} now, {stored[:12]} in the file); a checkpoint changed "
                "or was retrained. Choose another output file, or restore the original checkpoints."
            )

    def record_models(self, pair: str, models: Sequence[Mapping[str, Any]]) -> None:
        """Record where the model set's models come from and what determined them (source file,
        seed, training threads, torch version), once: a resumed run keeps the first record."""
        group = self.file.require_group(f"pairs/{_safe(pair)}")
        if "models" not in group.attrs:
            group.attrs["models"] = json.dumps([dict(m) for m in models], default=str)
            self.file.flush()

    def _path_group(self, pair: str, levels: Sequence[str]) -> str:
        return "/".join([f"pairs/{_safe(pair)}/curves", *(_safe(level) for level in levels)])

    def path_complete(self, pair: str, levels: Sequence[str]) -> bool:
        """Whether every metric along every segment of the path at ``levels`` (aligner,
        correction, path) is finished."""
        name = self._path_group(pair, levels)
        return name in self.file and bool(self.file[name].attrs.get("complete", False))

    def mark_path_complete(self, pair: str, levels: Sequence[str]) -> None:
        self.file.require_group(self._path_group(pair, levels)).attrs["complete"] = True
        self.file.flush()

    # -- curves ------------------------------------------------------------------------
    def series(self, pair: str, levels: Sequence[str], columns: Sequence[str],
               labels: Sequence[str] | None = None, attrs: Mapping[str, Any] | None = None,
               shares: Sequence[str] | None = None) -> Series:
        """The series at ``levels`` (aligner, correction, path, segment, metric), created if new.

        ``shares``: the levels of a series of the same pair whose rows this one's are (the same
        columns and points): the new series' columns (and labels) are hard links to that
        series' datasets, stored once, and its ``shares`` attribute names that series; its
        points are then taken with :meth:`Series.follow`, not appended.
        """
        name = self._path_group(pair, levels)
        if name in self.file:
            group = self.file[name]
            missing = [c for c in columns if c not in group]
            if missing:
                raise ResultsMismatchError(f"{self.path}:{name} lacks columns {missing}")
            return Series(group, columns)
        group = self.file.create_group(name)
        if shares is not None:
            source = self.file[self._path_group(pair, shares)]
            for column in (*columns, *(("labels",) if "labels" in source else ())):
                group[column] = source[column]  # an HDF5 hard link: one dataset, two names
            group.attrs["shares"] = source.name
        else:
            for column in columns:
                group.create_dataset(column, shape=(0,), maxshape=(None,), dtype="f8",
                                     chunks=(64,), fillvalue=np.nan)
        if labels is not None and "labels" not in group:
            group.create_dataset("labels", data=np.asarray(list(labels), dtype=h5py.string_dtype()))
        group.attrs["columns"] = json.dumps(list(columns))
        group.attrs["n_done"] = 0
        group.attrs["complete"] = False
        for key, value in (attrs or {}).items():
            group.attrs[key] = json.dumps(value, default=str)
        self.file.flush()
        return Series(group, columns)

    def _fit_group(self, pair: str, levels: Sequence[str]) -> str:
        return "/".join([f"pairs/{_safe(pair)}/fits", *(_safe(level) for level in levels)])

    def write_fit(self, pair: str, levels: Sequence[str], report: Mapping[str, Any],
                  states: Sequence[Mapping[str, torch.Tensor]]) -> None:
        """Store a trainable path's fit report (JSON) and fitted states under
        ``pairs/<pair>/fits/...``; ``complete`` is written last."""
        name = self._fit_group(pair, levels)
        if name in self.file:
            del self.file[name]
        group = self.file.create_group(name)
        group.attrs["report"] = json.dumps(dict(report), default=str)
        for i, state in enumerate(states):
            for key, tensor in state.items():
                group.create_dataset(f"states/{i}/{key}", data=tensor.detach().cpu().numpy())
        group.attrs["complete"] = True
        self.file.flush()

    def read_fit(self, pair: str, levels: Sequence[str]) -> list[dict[str, torch.Tensor]] | None:
        """The fitted states stored for a path, or None if its fit is not stored complete."""
        name = self._fit_group(pair, levels)
        if name not in self.file or not self.file[name].attrs.get("complete", False):
            return None
        group = self.file[name].get("states", {})
        return [{k: torch.from_numpy(group[i][k][()]) for k in group[i]}
                for i in sorted(group, key=int)]

    def read_path_progress(self, pair: str, levels: Sequence[str]) -> tuple[
            list[dict[str, torch.Tensor]] | None, dict[tuple[str, str], tuple[bool, list[dict[str, float]]]]]:
        """What the file holds of the path at ``levels`` (aligner, correction, path): its
        stored fit (or None) and, per (segment, metric) group name, whether the series is
        complete and its committed records (what a resumed run continues after)."""
        series = {}
        name = self._path_group(pair, levels)
        for segment, segment_group in (self.file[name].items() if name in self.file else ()):
            for metric, group in segment_group.items():
                done = Series(group, json.loads(group.attrs["columns"]))
                series[(segment, metric)] = (done.complete, done.records())
        return self.read_fit(pair, levels), series

    # -- failures ----------------------------------------------------------------------
    def _failure_group(self, pair: str, cell: str) -> str:
        return f"pairs/{_safe(pair)}/failed/{_safe(cell)}"

    def write_failure(self, pair: str, cell: str, error: str, levels: Sequence[str] = ()) -> None:
        """Record that ``cell`` (``align <set>/<aligner>`` ...) of model set ``pair`` failed
        for good with ``error``; ``levels`` are the aligner, correction and path it concerns
        (as far as it has them). A later run that completes the cell removes the record."""
        name = self._failure_group(pair, cell)
        group = self.file.require_group(name)
        group.attrs["cell"] = cell
        group.attrs["levels"] = json.dumps(list(levels))
        group.attrs["error"] = error
        group.attrs["at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.file.flush()

    def clear_failure(self, pair: str, cell: str) -> None:
        name = self._failure_group(pair, cell)
        if name in self.file:
            del self.file[name]
            self.file.flush()

    def flush(self) -> None:
        self.file.flush()

    def write_timings(self, timings: Mapping[str, float]) -> None:
        self.file.attrs["timings"] = json.dumps(dict(timings))
        self.file.flush()

    def mark_complete(self, timings: Mapping[str, float]) -> None:
        self.file.attrs["timings"] = json.dumps(dict(timings))
        self.file.attrs["complete"] = True  # written last: the run's completion marker
        self.file.flush()
