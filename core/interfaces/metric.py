"""Metric: measurements along a path, yielded point by point so they can be streamed.

A metric lists its *points* (for instance a t grid), measures one point at a time into a
flat record of numbers, and summarises the finished records. The pipeline writes each record
as soon as it exists and, on a re-run, skips points already written, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from ridgeline.core.interfaces.correction import Correction
from ridgeline.core.interfaces.evaluator import Evaluation, Evaluator
from ridgeline.core.interfaces.path import Path
from ridgeline.core.state import State

Record = dict[str, float]


class PathProbe:
    """What a metric sees of one path: its points after the run's corrections, and their
    evaluations, cached by (t, split) so several metrics share them.

    ``corrections`` (e.g. BatchNorm reset, REPAIR) are prepared once with the path's endpoints
    and applied, in order, to every state the probe evaluates.
    """

    def __init__(self, path: Path, evaluator: Evaluator, corrections: Sequence[Correction] = ()) -> None:
        self.path = path
        self.evaluator = evaluator
        self.corrections = list(corrections)
        for correction in self.corrections:
            correction.prepare(list(path.endpoints), evaluator)
        self._cache: dict[tuple[float, str, bool], Evaluation] = {}

    def correct(self, state: Mapping[str, torch.Tensor], t: float) -> State:
        """``state`` after every correction, as if it were the path point at ``t``. Corrections act
        on modules (their canonical names); a tied tensor's other names then take its value."""
        state = dict(state)
        for correction in self.corrections:
            state = self.evaluator.ties.retie(correction.apply(state, t, self.evaluator))
        return state

    def state_at(self, t: float) -> State:
        """The corrected path point at ``t``."""
        return self.correct(self.path.at(t), t)

    def evaluate_state(self, state: Mapping[str, torch.Tensor], t: float, split: str) -> Evaluation:
        """Evaluate a state off the path (a hybrid of the endpoints, a plane point) with the
        corrections applied as if at ``t``; not cached."""
        return self.evaluator.evaluate(self.correct(state, t), split)

    def _key(self, t: float, split: str, bn_reset: bool | None) -> tuple[float, str, bool]:
        if bn_reset is None:
            bn_reset = self.evaluator.bn_split is not None
        return round(float(t), 12), split, bn_reset

    def evaluate(self, t: float, split: str, *, bn_reset: bool | None = None) -> Evaluation:
        """The corrected path point at ``t`` evaluated on ``split`` (cached)."""
        key = self._key(t, split, bn_reset)
        if key not in self._cache:
            self._cache[key] = self.evaluator.evaluate(self.state_at(t), split, bn_reset=key[2])
        return self._cache[key]

    def prefetch(self, ts: Sequence[float], split: str, *, bn_reset: bool | None = None) -> None:
        """Evaluate the points at ``ts`` not cached yet in stacked forwards of the evaluator's
        ``points_per_batch`` (:meth:`Evaluator.evaluate_many`) and cache them, so the
        :meth:`evaluate` calls that follow cost nothing."""
        keys = list(dict.fromkeys(self._key(t, split, bn_reset) for t in ts))
        missing = [key for key in keys if key not in self._cache]
        if not missing:
            return
        states = [self.state_at(t) for t, _, _ in missing]
        for key, evaluation in zip(missing, self.evaluator.evaluate_many(states, split,
                                                                          bn_reset=missing[0][2])):
            self._cache[key] = evaluation


class Metric(abc.ABC):
    """A measurement along a path.

    ``columns`` names the numbers in each record (in order); :meth:`points` lists the points
    to measure; :meth:`measure` computes one record; :meth:`summarise` reduces the records of
    all points to named numbers (for instance a barrier).
    """

    name: ClassVar[str] = ""
    columns: ClassVar[tuple[str, ...]] = ()
    supports_corrections: ClassVar[bool] = True
    """False for metrics that read the raw loss surface (Hessians of uncorrected states): the
    pipeline refuses to run them under corrections rather than mislabel their numbers."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    def points(self, path: Path) -> Sequence[float]:
        """The points to measure, e.g. the t grid."""

    def labels(self, path: Path) -> list[str] | None:
        """Optional names of the points (e.g. layer names), stored beside the records."""
        return None

    def records_key(self, path: Path) -> Hashable | None:
        """A key naming what the records along ``path`` are, for metrics that record the very
        same rows as others (``loss_barrier`` and ``error_barrier`` both record t, loss,
        accuracy and error on one split and grid; only their summaries differ). Metrics with
        equal keys and columns on one path are measured once and their columns stored once
        (docs/results-format.md); None (the default): records of this metric alone."""
        return None

    @abc.abstractmethod
    def measure(self, point: float, probe: PathProbe) -> Mapping[str, float | torch.Tensor]:
        """The record at one point: a number (or 0-d tensor) for each of ``columns``."""

    def prefetch(self, points: Sequence[float], probe: PathProbe) -> None:  # noqa: B027
        """Optional: evaluate what the next ``points`` will need in one go (for instance
        ``probe.prefetch(points, split)``), so the evaluator can stack several path points per
        forward pass. The pipeline calls it before measuring each run of ``points_per_batch``
        points; :meth:`measure` must give the same record with or without it."""

    @abc.abstractmethod
    def summarise(self, records: Sequence[Record]) -> dict[str, float]:
        """Summary numbers from the records of every point, in point order."""
