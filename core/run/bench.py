"""``ridgeline bench PIPELINE``: where a pipeline's time goes, as ratios a user can act on.

Everything is measured in one process, on the pipeline's device, against a baseline measured
beside it:

* path evaluation per point on the linear path between the first two models (the pipeline's
  ``points_per_batch``, and the other choice) against a bare forward pass of its midpoint on the
  same data (``torch.func.functional_call`` over the metrics' split in ``batch_size`` batches):
  what the path, the loss and the bookkeeping add. Path and midpoint hold each tied tensor once,
  as the pipeline's measure cells build paths (``Ties.drop``);
* each correction set per point against the same bare forward pass (BatchNorm reset and REPAIR
  run statistics passes at every point);
* HDF5 writes of the measured records, as a percentage of their evaluation time;
* each aligner's time on the first two models, in path points' worth of evaluation, aligned as
  the pipeline aligns them (:func:`ridgeline.core.run.cells.align_cell`: the model's symmetries
  for aligners with ``uses_symmetries``, a merging aligner's merged state evaluated), and what
  the time covered (:func:`aligner_work`: every run and sweep, a tree search);
* start-up: ``ridgeline list`` in a fresh interpreter against ``python -c "import torch"``, and
  the pipeline's set-up (config, dataset, model, spec) in this process.

Nothing is trained: the first model set's checkpoints, or its seeds' cached trained models when
the pipeline has run before, else freshly initialised states (timings barely depend on training,
sweep counts do; the report says which it used).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

from ridgeline.core.interfaces.aligner import Alignment
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.interfaces.metric import PathProbe
from ridgeline.core.numerics.curves import t_grid
from ridgeline.core.plugin_host.host import PluginHost
from ridgeline.core.results.store import ResultsStore
from ridgeline.core.results.writer import Writer
from ridgeline.core.run.cells import AlignCell, align_cell
from ridgeline.core.run.config import ExecutorConfig, PipelineConfig
from ridgeline.core.run.pipeline import Pipeline
from ridgeline.core.state import State, lerp


@attrs.frozen
class BenchRow:
    """One measurement: ``seconds`` of ``what``, and ``ratio`` = seconds / the ``against``
    baseline's seconds (None where no baseline applies); ``note`` says what to do about it or
    what was done in that time."""

    what: str
    seconds: float
    ratio: float | None = None
    against: str = ""
    note: str = ""
    details: Mapping[str, Any] = attrs.field(factory=dict)
    """For scripts (``--json``): an aligner's transform components and its whole diagnostics."""


@attrs.frozen
class BenchReport:
    """The rows, the machine they were measured on, and which states were used."""

    rows: tuple[BenchRow, ...]
    machine: dict[str, Any]
    states: str

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "states": self.states,
                "rows": [attrs.asdict(row) for row in self.rows]}


def machine_description(device: torch.device) -> dict[str, Any]:
    """The machine, as docs/performance.md records it."""
    out: dict[str, Any] = {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__, "device": str(device),
    }
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def _timed(function: Callable[[], Any], device: torch.device, repeats: int = 1) -> tuple[float, Any]:
    """The median wall seconds of ``repeats`` calls (the device synchronised), and the last result."""
    times, result = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


STARTUP_COMMANDS = {
    "ridgeline list": "from ridgeline.core.cli import main; main(['list'])",
    "ridgeline --help": "from ridgeline.core.cli import main; main(['--help'])",
    "import torch": "import torch",
}
"""What start-up is measured on: Python code run with ``python -c`` (``--help`` exits through
SystemExit(0), as the command does)."""


def fresh_interpreter_seconds(codes: Mapping[str, str], repeats: int = 3) -> dict[str, list[float]]:
    """Wall seconds of each ``python -c CODE`` in a fresh interpreter, ``repeats`` rounds with the
    commands interleaved, so that every command sees the same machine load (``import torch``
    alone varies 1.5-5 s with the load of a shared machine; docs/performance.md)."""
    times: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(repeats):
        for name, code in codes.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    return times


def startup_seconds(repeats: int = 3) -> tuple[float, float]:
    """Median wall seconds of ``ridgeline list`` and of ``python -c "import torch"``, each in a
    fresh interpreter, interleaved (what a user waits for before anything happens)."""
    times = fresh_interpreter_seconds({name: STARTUP_COMMANDS[name]
                                       for name in ("ridgeline list", "import torch")}, repeats)
    return statistics.median(times["ridgeline list"]), statistics.median(times["import torch"])


def aligner_work(alignment: Alignment) -> str:
    """What an aligner did in its time, read from its diagnostics: every list of runs (``runs``,
    or ``<what>_runs``: one record per run with its ``sweeps``, as weight matching's sweep orders)
    as its run count and total sweeps; else ``sweeps``, else the length of the objective history
    as iterations; and each per-group report with a ``search`` (tree_matching's) as the search
    made and its candidates per pair."""
    diagnostics = alignment.diagnostics
    parts = []
    for key, value in diagnostics.items():
        if (key == "runs" or key.endswith("_runs")) and isinstance(value, list):
            what = key[:-len("runs")].replace("_", " ")
            sweeps = sum(int(run.get("sweeps", 0)) for run in value)
            parts.append(f"{len(value)} {what}runs, {sweeps} sweeps")
    if not parts and "sweeps" in diagnostics:
        parts.append(f"{diagnostics['sweeps']} sweeps")
    elif not parts and alignment.history:
        parts.append(_count(len(alignment.history), "iteration"))
    for key, value in diagnostics.items():
        if isinstance(value, Mapping) and "search" in value:
            candidates = value.get("transforms_per_pair")
            per_pair = f", {_count(candidates, 'transform')} per pair" if candidates is not None else ""
            parts.append(f"{key}: {value['search']} search{per_pair}")
    return "; ".join(parts) or "0 iterations"


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'s' if number != 1 else ''}"


def _bench_states(pipeline: Pipeline) -> tuple[list[State], str]:
    """Two states of the first model set without training (see the module docstring)."""
    model_set = pipeline.model_sets()[0]
    if model_set.checkpoints or all(pipeline.checkpoint_path(s).exists() for s in model_set.seeds):
        states = pipeline.load_models(model_set)[:2]
        return states, f"model set {model_set.name!r}: trained checkpoints"
    states = pipeline.context.place([pipeline.model.init_state(seed) for seed in model_set.seeds[:2]])
    return states, (f"model set {model_set.name!r}: freshly initialised seeds {list(model_set.seeds[:2])} "
                    "(no trained checkpoints yet; run the pipeline first to bench trained states)")


def _split(config: PipelineConfig, dataset_splits: tuple[str, ...]) -> str:
    for entry in config.metrics:
        if "split" in entry.options:
            return str(entry.options["split"])
    return "test" if "test" in dataset_splits else dataset_splits[0]


def bench_pipeline(config: PipelineConfig, *, device: str | None = None, points: int = 9,
                   repeats: int = 3, startup: bool = True, host: PluginHost | None = None) -> BenchReport:
    """Measure ``config``'s pipeline (see the module docstring); ``points`` path points per
    measurement, the median of ``repeats`` for the bare forward pass and start-up."""
    rows: list[BenchRow] = []
    start = time.perf_counter()
    # one process: a Ray pipeline's cells are benched here, as its serial executor would run them
    pipeline = Pipeline(config, device=device, progress=False, host=host, executor=ExecutorConfig())
    context = pipeline.context
    groups = len(context.spec.groups)  # the spec derived now, so that set-up includes it
    base = context.evaluator  # the pipeline's own evaluator (its module, data, ties)
    setup = time.perf_counter() - start
    run_device = pipeline.device
    states, used = _bench_states(pipeline)
    a, b = states[0], states[1]
    split = _split(config, tuple(pipeline.dataset.splits))

    def evaluator(points_per_batch: int | None) -> Evaluator:
        return Evaluator(base.module, pipeline.dataset, device=run_device, batch_size=config.batch_size,
                         points_per_batch=points_per_batch, precision=config.precision)

    x, _ = base.stored(split)  # as evaluation holds it; each batch is prepared in the loop
    # paths see each tied tensor once, as the pipeline's measure cells build them (Ties.drop);
    # functional_call takes one value per tied tensor
    endpoints = [base.ties.drop(a), base.ties.drop(b)]
    midpoint = base.on_device(lerp(endpoints[0], endpoints[1], 0.5))

    def bare_forward() -> None:
        with torch.no_grad():
            for first in range(0, len(x), config.batch_size):
                inputs = base.prepare(x[first:first + config.batch_size])
                torch.func.functional_call(base.module, midpoint, (inputs,))

    _timed(bare_forward, run_device)  # warm-up
    forward, _ = _timed(bare_forward, run_device, repeats)
    rows.append(BenchRow(f"bare forward pass, {len(x)} {split} examples", forward,
                         note=f"batch_size {config.batch_size}"))

    ts = t_grid(points)
    path = pipeline.registries.paths.create("linear", endpoints=endpoints)

    def along(probe_evaluator: Evaluator, corrections: list | None = None) -> tuple[float, list]:
        def measure() -> list:
            probe = PathProbe(path, probe_evaluator, corrections or [])
            probe.prefetch(ts, split)
            return [probe.evaluate(t, split) for t in ts]

        seconds, evaluations = _timed(measure, run_device)
        return seconds / len(ts), evaluations

    chosen = base.points_per_batch
    per_point, evaluations = along(base)
    for stacked in sorted({chosen, 1, 8} - {chosen}):
        along(evaluator(stacked))  # warm-up of this shape
    for stacked in sorted({chosen, 1, 8}):
        seconds = per_point if stacked == chosen else along(evaluator(stacked))[0]
        label = "pipeline's" if stacked == chosen else "alternative"
        rows.append(BenchRow(f"path evaluation per point, points_per_batch={stacked}", seconds,
                             seconds / forward, "bare forward pass",
                             f"{label}; the lower ratio is the faster setting on this device"))

    for corrections in config.corrections:
        if not corrections:
            continue
        objects = [pipeline.registries.corrections.create(c.name, **c.options) for c in corrections]
        seconds, _ = along(base, objects)
        rows.append(BenchRow(f"path evaluation per point with {config.correction_label(corrections)}",
                             seconds, seconds / forward, "bare forward pass",
                             "statistics passes at every point (prepare included)"))

    with tempfile.TemporaryDirectory() as folder:
        store_path = Path(folder) / "bench.h5"
        with ResultsStore(store_path, config.to_dict(), {"device": str(run_device)}) as store, \
                Writer(store, background=pipeline.background_writer) as writer:
            series = store.series("bench", ("bench",), ("t", "loss", "accuracy", "error"))

            def write() -> None:
                for t, evaluation in zip(ts, evaluations):
                    writer.append(series, {"t": t, "loss": evaluation.loss,
                                           "accuracy": evaluation.accuracy, "error": evaluation.error})
                writer.drain()

            written, _ = _timed(write, run_device)
    overhead = written / (per_point * len(ts))
    rows.append(BenchRow(f"HDF5 writes of {len(ts)} records", written, overhead, "their evaluation",
                         f"{100 * overhead:.1f}% of evaluation; each record flushed (the crash-safe "
                         "commit marker)"))

    for entry in config.aligners:  # the pipeline's align cell: each aligner's own symmetry and spec
        cell = AlignCell(pipeline.model_sets()[0].name, entry)
        seconds, outcome = _timed(lambda cell=cell: align_cell(context, cell, [a, b]), run_device)
        alignment = outcome.alignments[0]
        work = aligner_work(alignment)
        if outcome.merged is not None:
            work += "; merged state evaluated on every split"
        rows.append(BenchRow(f"aligner {entry.key}", seconds, seconds / per_point, "path points", work,
                             {"components": sorted(alignment.perms),
                              "diagnostics": dict(alignment.diagnostics)}))

    rows.append(BenchRow("pipeline set-up (config, dataset, model, spec)", setup, setup / per_point,
                         "path points", "in this process, plugins already loaded; a spec of "
                         f"{_count(groups, 'permutation group')}"))
    if startup:
        listing, torch_import = startup_seconds(repeats)
        rows.append(BenchRow("start-up: `ridgeline list`", listing, listing / torch_import,
                             'python -c "import torch"', "a fresh interpreter each"))
    return BenchReport(tuple(rows), machine_description(run_device), used)


def format_bench(report: BenchReport) -> str:
    """The report as a plain-text table."""
    header = f"{'measurement':<58} {'seconds':>10} {'ratio':>8}  against / note"
    lines = [header, "-" * len(header)]
    for row in report.rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        note = "; ".join(part for part in (row.against and f"vs {row.against}", row.note) if part)
        lines.append(f"{row.what:<58} {row.seconds:>10.4f} {ratio:>8}  {note}")
    machine = report.machine
    lines.append("")
    lines.append(f"states: {report.states}")
    gpu = f" ({machine['gpu']})" if "gpu" in machine else ""
    lines.append(f"machine: {machine['processor']}, {machine['cpu_cores']} cores, {machine['torch_threads']} "
                 f"torch threads, device {machine['device']}{gpu}, torch {machine['torch']}, "
                 f"python {machine['python']}")
    return "\n".join(lines)
