"""Run a pipeline: model sets x aligners x corrections x paths x metrics, streamed to HDF5.

The work is split into cells (:mod:`ridgeline.core.run.cells`): train a missing checkpoint,
align a model set with an aligner, measure one path with one correction set. The executor
(``[executor] name``) runs them: ``serial`` one after another in this process (the default),
``ray`` as tasks on a Ray cluster (:mod:`ridgeline.core.run.ray_executor`). Either way this
process is the only writer of the results file (:mod:`ridgeline.core.run.recorder`).

Work is skipped when the results file already holds it (alignments, finished series and the
points of unfinished ones), so an interrupted run resumes where it stopped and a finished run
re-runs in seconds. Trained models are cached as checkpoints beside the results.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import pickle
import platform
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

from ridgeline.core import __version__
from ridgeline.core.checkpoint import load_metadata, load_state, save_state
from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.evaluator import check_evaluation_options, has_batchnorm
from ridgeline.core.interfaces.path import path_arguments
from ridgeline.core.plugin_host.host import PluginHost, default_host
from ridgeline.core.plugin_host.options import check_not_supplied
from ridgeline.core.results.store import ResultsStore
from ridgeline.core.results.tables import barriers_above_identity, curve_name, identity_labels, report_rows
from ridgeline.core.results.writer import Writer
from ridgeline.core.run.cells import (
    AlignCell,
    AlignOutcome,
    CellContext,
    MeasureCell,
    TrainCell,
    Trained,
    align_cell,
    endpoints_of,
    measure_cell,
    resolve_device,
    train_cell,
)
from ridgeline.core.run.config import EntryConfig, ExecutorConfig, ModelSetConfig, PipelineConfig
from ridgeline.core.run.recorder import Recorder
from ridgeline.core.run.sweeps import expand_grids, pair_sets
from ridgeline.core.run.trajectory import checkpoint_series
from ridgeline.core.state import State, check_compatible, check_finite

__all__ = ["Pipeline", "resolve_device", "run_pipeline"]


class Pipeline:
    """A configured run. ``run()`` writes (or completes) the results file and returns its path."""

    def __init__(self, config: PipelineConfig, *, output: str | Path | None = None,
                 device: str | torch.device | None = None, progress: bool = True,
                 host: PluginHost | None = None, background_writer: bool | None = None,
                 executor: ExecutorConfig | str | None = None, address: str | None = None) -> None:
        self.host = host or default_host()
        self.registries = self.host.registries
        config.check_names(self.registries)
        config = expand_grids(config, self.registries)
        if isinstance(executor, str):
            executor = ExecutorConfig.from_value({**attrs.asdict(config.executor), "name": executor})
        executor = executor or config.executor
        if address is not None:
            executor = attrs.evolve(executor, address=address)
        if executor.address and executor.name != "ray":
            raise ConfigError(f"a cluster address ({executor.address!r}) is for the ray executor, but this "
                              "run is serial: add --executor ray (or name = \"ray\" in [executor]), or "
                              "drop the address")
        self.config = config = attrs.evolve(config, executor=executor)
        self.output = Path(output or config.output)
        self.progress = progress
        if executor.name == "ray":
            from ridgeline.core.run.ray_executor import cell_device, require_ray

            require_ray()
            self.device = cell_device(device or config.device, executor)  # where the workers run cells
            driver_device = torch.device("cpu")
        else:
            self.device = driver_device = resolve_device(device or config.device)
        check_evaluation_options(self.device, config.points_per_batch, config.precision)
        if background_writer is None:
            background_writer = self.device.type == "cuda" and executor.name == "serial"
        self.background_writer = background_writer
        self.context = CellContext(config, self.registries, driver_device, progress=progress,
                                   data_cache=self.output.parent / "data-cache")
        self.dataset = self.context.dataset
        self.model = self.context.model
        self.timings: dict[str, float] = {}
        self.failures: dict[tuple[str, str], str] = {}
        """(model set, cell) -> error of every cell that failed for good (Ray executor)."""
        self._check_entries()
        self._check_combinations()

    def _entries(self) -> Iterator[tuple[str, str, EntryConfig]]:
        """(registry kind, where, entry) for every aligner, metric, correction and path of the
        run; ``where`` names the entry in messages (``aligner 'zip' (zipit)``)."""
        def where(kind: str, entry: EntryConfig) -> str:
            label = f" ({entry.name})" if entry.label and entry.label != entry.name else ""
            return f"{kind} {entry.key!r}{label}"

        for kind in ("aligners", "metrics"):
            for entry in getattr(self.config, kind):
                yield kind, where(kind[:-1], entry), entry
        for corrections in self.config.corrections:
            for entry in corrections:
                yield "corrections", where("correction", entry), entry
        for entry in self.config.paths:
            yield "paths", where("path", entry), entry

    def _check_entries(self) -> None:
        """Build every aligner, metric and correction once, and every path on placeholder
        endpoints (one per model of each model set), so that an option of the wrong type or out
        of range fails here, naming the entry and the option, before any training or file."""
        counts = sorted({len(s.checkpoints or s.seeds or s.series)  # a sweep's sets are pairs
                         for paired in self.config.pairs for s in pair_sets(paired)})
        ties = self.model.ties()
        for kind, where, entry in self._entries():
            if kind != "paths":
                self._build(where, kind, entry)
                continue
            check_not_supplied(where, "paths", entry.options,
                               {"endpoints": "the model set", "ties": f"model {self.model.name!r}"})
            self.registries.paths.check(entry.name, entry.options, skip=("endpoints",), where=where)
            for count in counts:  # as a measure cell builds it: each tied tensor once, with the ties
                placeholders = [ties.drop(self.model.init_state(seed)) for seed in range(count)]
                self._build(where, "paths", entry,
                            **path_arguments(self.registries.paths.get(entry.name), placeholders, ties))
        self._check_splits()

    def _check_splits(self) -> None:
        """Refuse a ``split`` option (of any entry: a metric, an aligner, a correction, a path's
        fit settings) that the dataset does not have, naming the entry and close matches."""
        def found(options: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
            for key, value in options.items():  # nested: a plane's curve_options
                if key == "split":
                    yield prefix + key, value
                elif isinstance(value, Mapping):
                    yield from found(value, f"{prefix}{key}.")

        splits = tuple(self.dataset.splits)
        for _, where, entry in self._entries():
            for option, split in found(entry.options):
                if split is None or split in splits:
                    continue
                close = difflib.get_close_matches(str(split), splits, n=2, cutoff=0.5)
                hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                nested = f" (option {option})" if option != "split" else ""
                raise ConfigError(f"{where}{nested}: dataset {self.dataset.name!r} has no split {split!r}; "
                                  f"it has {', '.join(splits)}{hint}")

    def _build(self, where: str, kind: str, entry: EntryConfig, **arguments: Any) -> Any:
        registry = self.registries.of(kind)
        registry.check(entry.name, entry.options, skip=arguments, where=where)
        try:
            return registry.get(entry.name)(**arguments, **entry.options)
        except ConfigError as error:
            message = str(error)
            raise ConfigError(message if entry.name in message or entry.key in message
                              else f"{where}: {message}") from None

    def _check_combinations(self) -> None:
        """Refuse, before any work, entries that cannot run together or on this data."""
        corrected = [self.config.correction_label(cs) for cs in self.config.corrections if cs]
        for entry in self.config.metrics:
            factory = self.registries.metrics.get(entry.name)
            if corrected and not factory.supports_corrections:
                raise ConfigError(
                    f"metric {entry.key!r} reads the uncorrected loss surface and cannot run under "
                    f"corrections ({', '.join(corrected)}); run it in a pipeline without corrections")
        module = self.model.build()
        self._check_input(module)
        if has_batchnorm(module) and not any(
                c.name in ("bn_reset", "repair") for cs in self.config.corrections for c in cs):
            warnings.warn(
                f"model {self.model.name!r} has BatchNorm but no correction set re-estimates its "
                "statistics: interpolated running statistics make path points unreliable; add "
                "corrections = [[], [\"bn_reset\"]] to compare", stacklevel=3)

    def _check_input(self, module: torch.nn.Module) -> None:
        """One forward pass on two examples of the dataset's shape: a model that cannot take the
        dataset's inputs is one line naming both shapes, before any data is read or trained on."""
        shape = tuple(self.dataset.input_shape)
        try:
            with torch.no_grad():
                module.eval()(self.model.example_input(2))
        except Exception as error:
            native = (self.model.data_config() or {}).get("input_size")
            expects = f" (it expects {tuple(native)})" if native and tuple(native) != shape else ""
            cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"model {self.model.name!r} cannot take dataset {self.dataset.name!r}'s inputs "
                              f"of shape {shape}{expects}: {cause}") from None

    # -- models ------------------------------------------------------------------------
    def checkpoint_dir(self) -> Path:
        if self.config.checkpoint_dir:
            return Path(self.config.checkpoint_dir)
        return self.output.parent / "checkpoints"

    def _model_tag(self) -> str:
        blob = json.dumps({"model": self.model.config, "dataset": self.dataset.config,
                           "train": self.config.to_dict()["train"]}, sort_keys=True)
        return f"{self.model.name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"

    def checkpoint_path(self, seed: int) -> Path:
        """Where the model trained from ``seed`` is cached."""
        return self.checkpoint_dir() / f"{self._model_tag()}-seed{seed}.safetensors"

    def save_trained(self, seed: int, trained: Trained) -> State:
        """Cache a trained model (checkpoint and timing, and what determined it: the thread
        count it was trained with); returns its state."""
        self.timings[f"train_seed{seed}"] = trained.seconds
        save_state(self.checkpoint_path(seed), trained.state, {
            "model": self.model.config, "dataset": self.dataset.config, "seed": seed,
            "train": self.config.to_dict()["train"], **trained.provenance})
        return trained.state

    def sources(self, model_set: ModelSetConfig) -> list[Path]:
        """The file each model of the set is read from: its checkpoint, or the cached training
        result of its seed."""
        if model_set.checkpoints:
            return [Path(c) for c in model_set.checkpoints]
        return [self.checkpoint_path(seed) for seed in model_set.seeds]

    def provenance(self, model_set: ModelSetConfig) -> list[dict[str, Any]]:
        """Where each model of the set comes from and what determined it, from its file's
        metadata: the seed, the training thread count, torch's version (recorded with the
        results; only the source for a checkpoint without ridgeline metadata)."""
        records = []
        for source in self.sources(model_set):
            try:
                meta = load_metadata(source)
            except (pickle.UnpicklingError, json.JSONDecodeError):
                meta = {}  # a foreign checkpoint (pickled objects, other metadata): provenance unknown
            keys = ("seed", "data_seed", "threads", "deterministic", "torch_version", "step")
            records.append({"source": str(source), **{k: meta[k] for k in keys if k in meta}})
        return records

    def check_finite(self, model_set: ModelSetConfig, states: list[State | None]) -> None:
        """Refuse, before any alignment, a model holding NaN or inf when an aligner of the run
        needs finite weights: one error naming the file, the tensors and their counts. A run of
        aligners that take any weights (``identity``) measures the path and flags it."""
        needing = [e.key for e in self.config.aligners
                   if getattr(self.registries.aligners.get(e.name), "needs_finite", True)]
        if needing:
            for source, state in zip(self.sources(model_set), states):
                if state is not None:
                    check_finite(state, f"model {str(source)!r} of model set {model_set.name!r}",
                                 needed_by=" and ".join(needing))

    def load_models(self, model_set: ModelSetConfig, *, train_missing: bool = True) -> list[State | None]:
        """The set's states on the driver's device, keys in the module's order (safetensors
        sorts them; layer orders depend on it): loaded from checkpoints, or trained from
        seeds (and cached). With ``train_missing=False`` a seed not yet trained is None."""
        reference = self.model.init_state(0)
        states: list[State | None] = []
        if model_set.checkpoints:
            ties = self.model.ties()
            for path in model_set.checkpoints:  # a tied tensor may be stored under one of its names
                state = ties.expand(load_state(path, allow_pickle=model_set.allow_pickle))
                check_compatible(reference, state, names=(f"model {self.model.name!r}", str(path)))
                ties.check(state, f"checkpoint {path}")
                states.append(state)
            states = self.context.place(states)
            self.check_finite(model_set, states)
            return states
        for seed in model_set.seeds:
            path = self.checkpoint_path(seed)
            if path.exists():
                states.append(self.context.place([load_state(path)])[0])
            elif train_missing:
                state = self.save_trained(seed, train_cell(self.context, TrainCell(seed)))
                states.append(self.context.place([state])[0])
            else:
                states.append(None)
        self.check_finite(model_set, states)
        return states

    def model_sets(self) -> list[ModelSetConfig]:
        """The configured model sets, checkpoint series expanded to one set per shared step
        and paired sets (``pairs = "all" | "first"``) to one set per pair."""
        expanded = []
        for model_set in self.config.pairs:
            if not model_set.series:
                expanded.append(model_set)
                continue
            runs = [checkpoint_series(folder) for folder in model_set.series]
            steps = sorted(set.intersection(*(set(run) for run in runs)))
            if not steps:
                found = ", ".join(f"{f}: {sorted(r)}" for f, r in zip(model_set.series, runs))
                raise ConfigError(f"model set {model_set.name!r}: the checkpoint series share no step "
                                  f"({found})")
            expanded += [ModelSetConfig(f"{model_set.name}@step{step}",
                                        tuple(str(run[step]) for run in runs),
                                        allow_pickle=model_set.allow_pickle) for step in steps]
        return [pair for model_set in expanded for pair in pair_sets(model_set)]

    def align_cells(self, model_set: ModelSetConfig) -> list[AlignCell]:
        return [AlignCell(model_set.name, entry) for entry in self.config.aligners]

    def measure_cells(self, model_set: ModelSetConfig, aligner: str) -> Iterator[MeasureCell]:
        """The set's paths after ``aligner``: correction sets x paths, in config order."""
        for corrections in self.config.corrections:
            for path in self.config.paths:
                yield MeasureCell(model_set.name, aligner, self.config.correction_label(corrections),
                                  tuple(corrections), path)

    def record_alignment(self, recorder: Recorder, cell: AlignCell, outcome: AlignOutcome) -> None:
        recorder.alignment(cell, outcome)
        self.timings[f"align_{cell.model_set}_{cell.aligner.key}"] = outcome.seconds

    # -- running -----------------------------------------------------------------------
    def run_serial(self, recorder: Recorder) -> None:
        """Every cell in this process, one after another, each record written as measured."""
        for model_set in self.model_sets():
            states = self.load_models(model_set)
            recorder.check_endpoints(model_set, states, self.provenance(model_set))
            for cell in self.align_cells(model_set):
                alignment = recorder.stored_alignment(cell)
                if alignment is None:
                    alignment = align_cell(self.context, cell, states)
                    self.record_alignment(recorder, cell, alignment)
                endpoints = endpoints_of(self.context, states, alignment, cell.aligner.key)
                for measure in self.measure_cells(model_set, cell.aligner.key):
                    if recorder.path_complete(measure):
                        continue  # finished earlier: no fit, no correction statistics, nothing to measure
                    for write in measure_cell(self.context, measure, endpoints, recorder.progress(measure)):
                        recorder.write(measure, write)

    def run(self) -> Path:
        start = time.perf_counter()
        self.dataset.check()  # every split read and its labels checked before any training
        metadata = {
            "device": str(self.device),
            "points_per_batch": self.context.points_per_batch,
            "seed": self.config.seed,
            "threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "plugin_versions": {"ridgeline": __version__, **self.host.versions},
        }
        executor = None
        if self.config.executor.name == "ray":  # joined before the file is touched
            from ridgeline.core.run.ray_executor import RayExecutor

            executor = RayExecutor(self.config.executor)
        with executor or contextlib.nullcontext(), \
                ResultsStore(self.output, self.config.to_dict(), metadata) as store, \
                Writer(store, background=self.background_writer) as writer:
            recorder = Recorder(store, writer)
            if executor is not None:
                executor.run(self, recorder)
            else:
                self.run_serial(recorder)
            writer.drain()
            self.failures = dict(recorder.failures)
            self.timings["total"] = time.perf_counter() - start
            if self.failures:  # the file stays incomplete: a re-run retries the failed cells
                store.write_timings(self.timings)
            else:
                store.mark_complete(self.timings)
        self._warn_about_regressions()
        return self.output

    def _warn_about_regressions(self) -> None:
        """Warn (at the run's end) about every aligned barrier above the identity barrier of the
        same curve; ``ridgeline report`` flags them too."""
        rows = report_rows(self.output)
        for row, message in barriers_above_identity(rows, identity_labels(self.config.to_dict())):
            warnings.warn(f"{curve_name(row)}: {message}", stacklevel=3)


def run_pipeline(config: PipelineConfig | Mapping[str, Any] | str | Path, **kwargs: Any) -> Path:
    """Run a pipeline from a config object, a dict, or a TOML file path; returns the results path."""
    if isinstance(config, (str, Path)):
        config = PipelineConfig.from_toml(config)
    elif not isinstance(config, PipelineConfig):
        config = PipelineConfig.from_dict(config)
    return Pipeline(config, **kwargs).run()
