"""The cells of a pipeline: each a pure function of the configuration and the states.

A run is a set of cells, executed one after another in the driver (the serial executor) or as
Ray tasks (:mod:`ridgeline.core.run.ray_executor`):

* :class:`TrainCell` -- train one missing checkpoint from its seed;
* :class:`AlignCell` -- align a model set with one aligner (every model to the first);
* :class:`MeasureCell` -- measure one path with one correction set: fit it if trainable, then
  every metric along every segment.

A cell reads nothing from the results file and writes nothing: what it needs of earlier work
(the stored fit, the points already measured) is handed to it as a :class:`PathProgress`, and
what it produces comes back as values (a state, an :class:`AlignOutcome`, a stream of
:data:`Write` events). The driver alone writes the file, so the numbers do not depend on where
or in which order cells ran.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from tqdm.auto import tqdm

from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.aligner import AlignContext, Alignment
from ridgeline.core.interfaces.dataset import Dataset
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.interfaces.metric import PathProbe
from ridgeline.core.interfaces.model import Model
from ridgeline.core.interfaces.path import path_arguments
from ridgeline.core.plugin_host.options import check_not_supplied
from ridgeline.core.plugin_host.registry import Registries
from ridgeline.core.results.store import safe_name
from ridgeline.core.run.config import EntryConfig, PipelineConfig
from ridgeline.core.run.training import provenance, train
from ridgeline.core.state import State
from ridgeline.core.symmetry.spec import Perms, PermutationSpec
from ridgeline.core.symmetry.symmetry import Symmetry


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; a bad name is a ConfigError."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"device {device!r} is not one torch knows (use cpu, cuda, cuda:N or "
                          f"auto): {error}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but no CUDA device is available here")
    return resolved


# -- the cells ---------------------------------------------------------------------------
@attrs.frozen
class TrainCell:
    """Train the configured model from ``seed`` (a checkpoint not yet in the cache)."""

    seed: int

    @property
    def label(self) -> str:
        return f"train seed{self.seed}"


@attrs.frozen
class AlignCell:
    """Align every model of ``model_set`` to its first with ``aligner``."""

    model_set: str
    aligner: EntryConfig

    @property
    def label(self) -> str:
        return f"align {self.model_set}/{self.aligner.key}"


@attrs.frozen
class MeasureCell:
    """Measure the path ``path`` between the ``aligner``-aligned models of ``model_set``
    under ``corrections`` (labelled ``correction``)."""

    model_set: str
    aligner: str
    correction: str
    corrections: tuple[EntryConfig, ...]
    path: EntryConfig

    @property
    def levels(self) -> tuple[str, str, str]:
        """The path's levels in the results file: aligner, correction, path."""
        return (self.aligner, self.correction, self.path.key)

    @property
    def label(self) -> str:
        return f"measure {self.model_set}/{'/'.join(self.levels)}"


Cell = TrainCell | AlignCell | MeasureCell


# -- what cells return -------------------------------------------------------------------
@attrs.frozen
class Trained:
    """A trained state, the seconds it took, and what determined it besides the seed (the
    thread count it was trained with: :func:`ridgeline.core.run.training.provenance`)."""

    state: State
    seconds: float
    provenance: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class AlignOutcome:
    """An alignment of a model set: ``perms`` per non-reference model; ``alignments``,
    ``merged`` and ``merged_eval`` only when it was just computed (not read back)."""

    perms: list[Perms]
    alignments: list[Alignment] = attrs.field(factory=list)
    merged: State | None = None
    merged_eval: Mapping[str, float] = attrs.field(factory=dict)

    @property
    def seconds(self) -> float:
        return float(sum(a.seconds for a in self.alignments))


@attrs.frozen
class SeriesProgress:
    """A series already in the file: whether it is complete and its committed records."""

    complete: bool
    records: list[dict[str, float]]


@attrs.frozen
class PathProgress:
    """What the file already holds of one path: its stored fit (trainable paths) and its
    series, keyed by the file's (segment, metric) group names."""

    fit: list[State] | None = None
    series: Mapping[tuple[str, str], SeriesProgress] = attrs.field(factory=dict)

    def of(self, segment: str, metric: str) -> SeriesProgress:
        return self.series.get((safe_name(segment), safe_name(metric)), SeriesProgress(False, []))


# the writes a measure cell asks of the driver, in order
@attrs.frozen
class FitWrite:
    levels: tuple[str, ...]
    report: Mapping[str, Any]
    states: list[State]


@attrs.frozen
class SeriesOpen:
    levels: tuple[str, ...]
    columns: tuple[str, ...]
    labels: Sequence[str] | None
    shares: tuple[str, ...] | None = None
    """The levels of an earlier series of the path whose rows this one's are (stored once)."""


@attrs.frozen
class SeriesFollow:
    """The series at ``levels`` takes the rows of the one at ``source`` (they record the same)."""

    levels: tuple[str, ...]
    source: tuple[str, ...]


@attrs.frozen
class RecordWrite:
    levels: tuple[str, ...]
    record: Mapping[str, Any]


@attrs.frozen
class SeriesFinish:
    levels: tuple[str, ...]
    summary: Mapping[str, Any]


@attrs.frozen
class PathFinish:
    levels: tuple[str, ...]


Write = FitWrite | SeriesOpen | SeriesFollow | RecordWrite | SeriesFinish | PathFinish


# -- where cells run ---------------------------------------------------------------------
def dataset_supplies(dataset: Dataset) -> dict[str, str]:
    """Where a model's ``num_classes`` and ``input_shape`` come from, for a message refusing
    them as model options (:func:`~ridgeline.core.plugin_host.options.check_not_supplied`)."""
    return {"num_classes": f"dataset {dataset.name!r} ({dataset.num_classes} classes)",
            "input_shape": f"dataset {dataset.name!r} (inputs of shape {tuple(dataset.input_shape)})"}


class CellContext:
    """What every cell of one pipeline shares in one process: the registries, the dataset,
    the model, its permutation spec and an evaluator on ``device``. Built once per process
    (the driver, or each Ray worker)."""

    def __init__(self, config: PipelineConfig, registries: Registries, device: torch.device, *,
                 progress: bool = False, data_cache: Path | None = None) -> None:
        self.config = config
        self.registries = registries
        self.device = device
        self.progress = progress
        self.data_cache = data_cache
        """The folder decoded dataset splits are kept in (None: not kept)."""
        self.dataset: Dataset = registries.datasets.create(config.dataset.name, **config.dataset.options)
        if data_cache is not None:  # decoded splits are kept beside the results
            self.dataset.use_cache(data_cache)
        check_not_supplied(f"model {config.model.name!r}", "models", config.model.options,
                           dataset_supplies(self.dataset))
        self.model: Model = registries.models.create(
            config.model.name, input_shape=self.dataset.input_shape,
            num_classes=self.dataset.num_classes, **config.model.options)
        self.dataset.bind_model(self.model)
        self._spec: PermutationSpec | None = None
        self._symmetries: Symmetry | None = None
        self._evaluator: Evaluator | None = None

    @property
    def spec(self) -> PermutationSpec:
        if self._spec is None:
            self._spec = self.model.spec()
        return self._spec

    @property
    def symmetries(self) -> Symmetry:
        """Every symmetry the model declares (its permutation spec unless it has more)."""
        if self._symmetries is None:
            self._symmetries = self.model.symmetries()
        return self._symmetries

    def searched(self, aligner: str) -> Symmetry:
        """What the aligner keyed ``aligner`` searches, and so what its transforms are applied
        with: the model's symmetries for aligners with ``uses_symmetries``, else the spec."""
        entry = next(e for e in self.config.aligners if e.key == aligner)
        factory = self.registries.aligners.get(entry.name)
        return self.symmetries if getattr(factory, "uses_symmetries", False) else self.spec

    @property
    def points_per_batch(self) -> int:
        """Path points evaluated in one stacked forward (the device's default when unset)."""
        return self.evaluator.points_per_batch

    @property
    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            self._evaluator = Evaluator(self.model.build(), self.dataset, device=self.device,
                                        batch_size=self.config.batch_size,
                                        points_per_batch=self.config.points_per_batch,
                                        precision=self.config.precision)
        return self._evaluator

    def place(self, states: Sequence[State]) -> list[State]:
        """States on this context's device, keys in the module's order."""
        order = self.model.init_state(0)
        return [{key: state[key].to(self.device) for key in order} for state in states]


# -- the cells' functions ----------------------------------------------------------------
def train_cell(context: CellContext, cell: TrainCell) -> Trained:
    """The trained state (on the CPU) and the seconds it took."""
    start = time.perf_counter()
    state = train(context.model, context.dataset, context.config.train, seed=cell.seed,
                  device=context.device, progress=context.progress)
    return Trained(state, time.perf_counter() - start, provenance(context.config.train))


def align_cell(context: CellContext, cell: AlignCell, states: Sequence[State]) -> AlignOutcome:
    """Every model after the first aligned to the first; a merging aligner's merged state is
    evaluated on every split (``merged_<split>_loss``, ``merged_<split>_accuracy``)."""
    entry = cell.aligner
    aligner = context.registries.aligners.create(entry.name, **entry.options)
    evaluator = context.evaluator
    align_context = AlignContext(evaluator=evaluator, seed=context.config.seed)
    searched = context.searched(entry.key)
    if not (aligner.supports_nested or aligner.uses_symmetries):
        searched = context.spec.without_nested()
    alignments = [aligner.align(states[0], other, searched, align_context) for other in states[1:]]
    merged = alignments[0].merged if len(alignments) == 1 else None
    merged_eval = {}
    if merged is not None:  # a merging aligner's product is a network: measure it
        for split in context.dataset.splits:
            evaluation = evaluator.evaluate(merged, split)
            merged_eval[f"merged_{split}_loss"] = evaluation.loss
            merged_eval[f"merged_{split}_accuracy"] = evaluation.accuracy
    return AlignOutcome([a.perms for a in alignments], alignments, merged, merged_eval)


def endpoints_of(context: CellContext, states: Sequence[State], alignment: AlignOutcome,
                 aligner: str) -> list[State]:
    """The reference and every other model with the alignment of the aligner keyed ``aligner``
    applied (with what that aligner searched: :meth:`CellContext.searched`)."""
    searched = context.searched(aligner)
    return [states[0], *(searched.apply(other, perms)
                         for other, perms in zip(states[1:], alignment.perms))]


def measure_cell(context: CellContext, cell: MeasureCell, endpoints: Sequence[State],
                 progress: PathProgress) -> Iterator[Write]:
    """Fit the path if trainable (or restore its stored fit), then measure every metric along
    every segment, continuing each series after the records ``progress`` holds. Yields the
    writes in the order the driver must make them; records are yielded one at a time. Metrics
    recording the same rows as an earlier one on the segment (equal ``records_key`` and
    columns: the loss and error barriers) are not measured again: their series share the
    earlier one's rows.

    Paths and metrics see each tied tensor once (``Ties.drop``: interpolation, fitting, distances
    and layer lists count it once, and no operation can split its names); the fitted states
    written to the file hold every name again."""
    registries, config, evaluator = context.registries, context.config, context.evaluator
    ties = evaluator.ties
    endpoints = [ties.drop(state) for state in endpoints]
    path = registries.paths.create(
        cell.path.name, **path_arguments(registries.paths.get(cell.path.name), endpoints, ties),
        **cell.path.options)
    metrics = [(m, registries.metrics.create(m.name, **m.options)) for m in config.metrics]
    if path.trainable:
        if progress.fit is not None:  # resuming: the curve the earlier points were measured on
            reference = endpoints[0]
            path.restore([{k: s[k].to(reference[k].device) for k in reference if k in s}
                          for s in progress.fit])
        else:
            start = time.perf_counter()
            report = path.fit(evaluator)
            report["seconds"] = time.perf_counter() - start
            yield FitWrite(cell.levels, report, [ties.expand(state) for state in path.fitted()])
    corrections = [registries.corrections.create(c.name, **c.options) for c in cell.corrections]
    for segment_label, segment in path.segments().items():
        probe = PathProbe(segment, evaluator, corrections)
        recorded: dict[tuple, tuple[tuple[str, ...], list[dict[str, float]]]] = {}
        for metric_entry, metric in metrics:
            points = list(metric.points(segment))
            levels = (*cell.levels, segment_label, metric_entry.key)
            done = progress.of(segment_label, metric_entry.key)
            key = metric.records_key(segment)
            shared = recorded.get((key, tuple(metric.columns))) if key is not None else None
            yield SeriesOpen(levels, tuple(metric.columns), metric.labels(segment),
                             shares=shared[0] if shared else None)
            if shared is not None:  # the rows of an earlier metric: stored once
                if not done.complete:
                    yield SeriesFollow(levels, shared[0])
                    yield SeriesFinish(levels, metric.summarise(shared[1]))
                continue
            records = list(done.records)
            if key is not None:
                recorded[(key, tuple(metric.columns))] = (levels, records)  # filled below
            if done.complete:
                continue
            todo = points[len(records):]
            label = "/".join(level for level in levels if level)
            step = evaluator.points_per_batch
            for index, point in enumerate(tqdm(todo, desc=label, disable=not context.progress, leave=False)):
                if step > 1 and index % step == 0:  # stack the next points in one forward
                    metric.prefetch(todo[index:index + step], probe)
                record = dict(metric.measure(point, probe))
                yield RecordWrite(levels, record)
                records.append({k: float(v) for k, v in record.items()})
            yield SeriesFinish(levels, metric.summarise(records))
    yield PathFinish(cell.levels)
