"""The driver's side of the cells: every write a run makes to its results file, in one place.

Cells (:mod:`ridgeline.core.run.cells`) return values; the :class:`Recorder` turns them into
writes through the one :class:`~ridgeline.core.results.store.ResultsStore` of the run, in
whatever order they arrive, and reads back what a resumed cell needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ridgeline.core.results.store import ResultsStore, Series
from ridgeline.core.results.writer import Writer
from ridgeline.core.run.cells import (
    AlignCell,
    AlignOutcome,
    Cell,
    FitWrite,
    MeasureCell,
    PathFinish,
    PathProgress,
    RecordWrite,
    SeriesFinish,
    SeriesFollow,
    SeriesOpen,
    SeriesProgress,
    TrainCell,
    Write,
)
from ridgeline.core.run.config import ModelSetConfig
from ridgeline.core.state import State, fingerprint


class Recorder:
    """Writes cells' results through one store (and its writer); the only writer of the file."""

    def __init__(self, store: ResultsStore, writer: Writer) -> None:
        self.store = store
        self.writer = writer
        self._series: dict[tuple[str, tuple[str, ...]], Series] = {}
        self.failures: dict[tuple[str, str], str] = {}

    # -- reading back what is done -----------------------------------------------------
    def check_endpoints(self, model_set: ModelSetConfig, states: Sequence[State],
                        models: Sequence[Mapping[str, Any]] = ()) -> None:
        """Record the set's fingerprint, or refuse states that differ from the recorded ones,
        and record where its ``models`` come from (source, seed, threads); the set's models
        exist now, so no training of theirs stays recorded as failed."""
        self.store.check_endpoints(model_set.name, fingerprint(list(states)))
        if models:
            self.store.record_models(model_set.name, models)
        for seed in model_set.seeds:
            self.store.clear_failure(model_set.name, TrainCell(seed).label)

    def stored_alignment(self, cell: AlignCell) -> AlignOutcome | None:
        stored = self.store.read_alignment(cell.model_set, cell.aligner.key)
        return None if stored is None else AlignOutcome(stored["perms"])

    def path_complete(self, cell: MeasureCell) -> bool:
        return self.store.path_complete(cell.model_set, cell.levels)

    def progress(self, cell: MeasureCell) -> PathProgress:
        fit, series = self.store.read_path_progress(cell.model_set, cell.levels)
        return PathProgress(fit, {key: SeriesProgress(*value) for key, value in series.items()})

    # -- writing -----------------------------------------------------------------------
    def alignment(self, cell: AlignCell, outcome: AlignOutcome) -> None:
        self.store.write_alignment(cell.model_set, cell.aligner.key, outcome.alignments, outcome.merged,
                                   outcome.merged_eval)
        self.store.clear_failure(cell.model_set, cell.label)

    def write(self, cell: MeasureCell, write: Write) -> None:
        """Make one write the measure ``cell`` asked for (records go through the writer)."""
        model_set = cell.model_set
        if isinstance(write, FitWrite):
            self.store.write_fit(model_set, write.levels, write.report, write.states)
        elif isinstance(write, SeriesOpen):
            self._series[(model_set, write.levels)] = self.store.series(
                model_set, write.levels, write.columns, write.labels, shares=write.shares)
        elif isinstance(write, SeriesFollow):
            series = self._series[(model_set, write.levels)]
            self.writer.drain()
            source = self.store.series(model_set, write.source, series.columns)
            if series.shares is not None:
                self.writer.submit(series.follow, source)
            else:  # a series an earlier version stored with its own datasets: copy the rows
                for record in source.records()[series.n_done:]:
                    self.writer.append(series, record)
        elif isinstance(write, RecordWrite):
            self.writer.append(self._series[(model_set, write.levels)], write.record)
        elif isinstance(write, SeriesFinish):
            self.writer.drain()
            self.writer.finish(self._series.pop((model_set, write.levels)), write.summary)
        elif isinstance(write, PathFinish):
            self.writer.submit(self.store.mark_path_complete, model_set, write.levels)
            self.store.clear_failure(model_set, cell.label)
        else:
            raise TypeError(f"not a write: {write!r}")

    def failure(self, model_set: str, cell: Cell, error: str) -> None:
        """Record that ``cell`` failed for good (the run goes on with the other cells)."""
        levels: tuple[str, ...] = ()
        if isinstance(cell, AlignCell):
            levels = (cell.aligner.key,)
        elif isinstance(cell, MeasureCell):
            levels = cell.levels
        self.failures[(model_set, cell.label)] = error
        self.store.write_failure(model_set, cell.label, error, levels)
