"""Metrics as a function of training time: two runs' checkpoint series, step by step.

Given checkpoints of two runs at common training steps (for instance two children spawned from
one parent, Frankle et al. 2020, or two seeds), build a path between the two states of every
step and run metrics along it, exactly as the pipeline does for one pair. The result is tidy
rows (one per step, segment, metric and point) and one summary row per (step, segment,
metric), ready for tables or :mod:`ridgeline.core.plots.landscape` (e.g. the layer-wise barrier
heatmap of layers x training time).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ridgeline.core.checkpoint import load_state
from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.correction import Correction
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.interfaces.metric import Metric, PathProbe
from ridgeline.core.interfaces.path import path_arguments
from ridgeline.core.plugin_host.host import registries
from ridgeline.core.state import State, check_compatible

STEP_FILE = re.compile(r"^step(\d+)\.(safetensors|pt|pth)$")
Series = Mapping[int, State] | str | Path


def checkpoint_series(directory: str | Path) -> dict[int, Path]:
    """The ``step<N>.safetensors`` files in ``directory`` (as written by
    :func:`ridgeline.core.run.training.train`), by step, in step order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"checkpoint series {str(directory)!r} is not a directory")
    found = {int(m.group(1)): p for p in directory.iterdir() if (m := STEP_FILE.match(p.name))}
    if not found:
        raise ConfigError(f"no step<N>.safetensors checkpoints in {str(directory)!r}")
    return dict(sorted(found.items()))


def _load(series: Series) -> Mapping[int, State | Path]:
    return checkpoint_series(series) if isinstance(series, (str, Path)) else series


@attrs.frozen
class Trajectory:
    """``rows``: one dict per measured point (step, segment, metric, index, label, columns);
    ``summaries``: one dict per (step, segment, metric) with the metric's summary numbers;
    ``fits``: the fit report of a trainable path, by step."""

    rows: list[dict[str, Any]]
    summaries: list[dict[str, Any]]
    fits: dict[int, dict[str, Any]] = attrs.Factory(dict)


def measure_along(metric: Metric, probe: PathProbe) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run one metric along the probe's path: its records (each with ``index``, ``point``
    and ``label``) and its summary."""
    points = list(metric.points(probe.path))
    labels = metric.labels(probe.path) or [""] * len(points)
    rows, records = [], []
    for index, (point, label) in enumerate(zip(points, labels, strict=True)):
        record = {k: float(v) for k, v in metric.measure(point, probe).items()}
        records.append(record)
        rows.append({"index": index, "point": float(point), "label": label, **record})
    return rows, metric.summarise(records)


def measure_trajectory(run_a: Series, run_b: Series, evaluator: Evaluator,
                       metrics: Mapping[str, Metric], *, path: str = "linear",
                       path_options: Mapping[str, Any] | None = None,
                       corrections: Sequence[Correction] = (),
                       steps: Sequence[int] | None = None) -> Trajectory:
    """Run ``metrics`` (label -> metric object) along the ``path`` (a registry name) between
    the two runs' states at every common step (or at ``steps``).

    Each series is a mapping step -> state (or checkpoint file), or a directory of
    ``step<N>.safetensors`` files. A trainable path is fitted at every step. ``corrections``
    are applied to every evaluated point, as in the pipeline.
    """
    a, b = _load(run_a), _load(run_b)
    common = sorted(set(a) & set(b))
    if steps is not None:
        missing = sorted(set(steps) - set(common))
        if missing:
            raise ConfigError(f"steps {missing} are not in both checkpoint series; common steps: {common}")
        common = sorted(steps)
    if not common:
        raise ConfigError(f"the two checkpoint series share no step (run A: {sorted(a)}, run B: {sorted(b)})")
    factory = registries().paths.get(path)
    reference = evaluator.module.state_dict()
    rows: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    fits: dict[int, dict[str, Any]] = {}
    ties = evaluator.ties
    for step in common:
        states = [ties.expand(s if isinstance(s, Mapping) else load_state(s)) for s in (a[step], b[step])]
        for run, state in zip("AB", states):
            check_compatible(reference, state, names=("the evaluator's model", f"run {run} at step {step}"))
            ties.check(state, f"run {run} at step {step}")
        # checkpoint files sort their keys; layer-wise metrics need the module's (input-to-output) order;
        # paths see a tied tensor once (as in the pipeline's measure cells)
        states = [ties.drop({k: s[k] for k in reference}) for s in states]
        curve = factory(**path_arguments(factory, states, ties), **dict(path_options or {}))
        if curve.trainable:
            fits[step] = curve.fit(evaluator)
        for segment_label, segment in curve.segments().items():
            probe = PathProbe(segment, evaluator, corrections)
            for metric_label, metric in metrics.items():
                keys = {"step": step, "segment": segment_label, "metric": metric_label}
                measured, summary = measure_along(metric, probe)
                rows += [{**keys, **row} for row in measured]
                summaries.append({**keys, **summary})
    return Trajectory(rows=rows, summaries=summaries, fits=fits)
