"""Run a pipeline: model sets x aligners x corrections x paths x metrics, streamed to HDF5.

Work is skipped when the results file already holds it (alignments, finished series and the
points of unfinished ones), so an interrupted run resumes where it stopped and a finished run
re-runs in seconds. Trained models are cached as checkpoints beside the results.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ridgeline.core import __version__
from ridgeline.core.checkpoint import load_metadata, load_state, save_state
from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.aligner import AlignContext, Alignment
from ridgeline.core.interfaces.dataset import Dataset
from ridgeline.core.interfaces.evaluator import Evaluator, has_batchnorm
from ridgeline.core.interfaces.metric import PathProbe
from ridgeline.core.interfaces.model import Model
from ridgeline.core.plugin_host.host import PluginHost, default_host
from ridgeline.core.results.store import ResultsStore, Series
from ridgeline.core.results.tables import barriers_above_identity, curve_name, identity_labels, report_rows
from ridgeline.core.results.writer import Writer
from ridgeline.core.run.config import EntryConfig, ModelSetConfig, PipelineConfig
from ridgeline.core.run.training import provenance, train
from ridgeline.core.run.trajectory import checkpoint_series
from ridgeline.core.state import State, check_compatible, check_finite, fingerprint
from ridgeline.core.symmetry.spec import PermutationSpec


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


class Pipeline:
    """A configured run. ``run()`` writes (or completes) the results file and returns its path."""

    def __init__(self, config: PipelineConfig, *, output: str | Path | None = None,
                 device: str | torch.device | None = None, progress: bool = True,
                 host: PluginHost | None = None, background_writer: bool | None = None) -> None:
        self.config = config
        self.host = host or default_host()
        self.registries = self.host.registries
        config.check_names(self.registries)
        self.output = Path(output or config.output)
        self.device = resolve_device(device or config.device)
        self.progress = progress
        if background_writer is None:
            background_writer = self.device.type == "cuda"
        self.background_writer = background_writer
        self.dataset: Dataset = self.registries.datasets.create(config.dataset.name, **config.dataset.options)
        self.model: Model = self.registries.models.create(
            config.model.name, input_shape=self.dataset.input_shape,
            num_classes=self.dataset.num_classes, **config.model.options)
        self.timings: dict[str, float] = {}
        self._check_entries()
        self._check_combinations()

    def _check_entries(self) -> None:
        """Build every aligner, metric and correction once, and every path on placeholder
        endpoints (one per model of each model set), so that an option of the wrong type or out
        of range fails here, naming the entry and the option, before any training or file."""
        def where(kind: str, entry: EntryConfig) -> str:
            label = f" ({entry.name})" if entry.label and entry.label != entry.name else ""
            return f"{kind} {entry.key!r}{label}"

        for kind in ("aligners", "metrics"):
            for entry in getattr(self.config, kind):
                self._build(where(kind[:-1], entry), kind, entry)
        for corrections in self.config.corrections:
            for entry in corrections:
                self._build(where("correction", entry), "corrections", entry)
        counts = sorted({len(s.checkpoints or s.seeds or s.series) for s in self.config.pairs})
        for entry in self.config.paths:
            self.registries.paths.check(entry.name, entry.options, skip=("endpoints",),
                                        where=where("path", entry))
            for count in counts:
                placeholders = [self.model.init_state(seed) for seed in range(count)]
                self._build(where("path", entry), "paths", entry, endpoints=placeholders)

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
            split = entry.options.get("split")
            if split is not None and split not in self.dataset.splits:
                raise ConfigError(f"metric {entry.key!r}: dataset {self.dataset.name!r} has no split "
                                  f"{split!r}; it has {', '.join(self.dataset.splits)}")
        if has_batchnorm(self.model.build()) and not any(
                c.name in ("bn_reset", "repair") for cs in self.config.corrections for c in cs):
            warnings.warn(
                f"model {self.model.name!r} has BatchNorm but no correction set re-estimates its "
                "statistics: interpolated running statistics make path points unreliable; add "
                "corrections = [[], [\"bn_reset\"]] to compare", stacklevel=3)

    # -- models ------------------------------------------------------------------------
    def checkpoint_dir(self) -> Path:
        if self.config.checkpoint_dir:
            return Path(self.config.checkpoint_dir)
        return self.output.parent / "checkpoints"

    def _model_tag(self) -> str:
        blob = json.dumps({"model": self.model.config, "dataset": self.dataset.config,
                           "train": self.config.to_dict()["train"]}, sort_keys=True)
        return f"{self.model.name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"

    def sources(self, model_set: ModelSetConfig) -> list[Path]:
        """The file each model of the set is read from: its checkpoint, or the cached training
        result of its seed."""
        if model_set.checkpoints:
            return [Path(c) for c in model_set.checkpoints]
        return [self.checkpoint_dir() / f"{self._model_tag()}-seed{seed}.safetensors"
                for seed in model_set.seeds]

    def provenance(self, model_set: ModelSetConfig) -> list[dict[str, Any]]:
        """Where each model of the set comes from and what determined it, from its file's
        metadata: the seed, the training thread count, torch's version (recorded with the
        results; empty for a checkpoint without ridgeline metadata)."""
        records = []
        for source in self.sources(model_set):
            try:
                meta = load_metadata(source)
            except Exception:  # a foreign checkpoint: its provenance is unknown, not an error
                meta = {}
            keys = ("seed", "data_seed", "threads", "deterministic", "torch_version", "step")
            records.append({"source": str(source), **{k: meta[k] for k in keys if k in meta}})
        return records

    def check_finite(self, model_set: ModelSetConfig, states: Sequence[State]) -> None:
        """Refuse, before any alignment, a model holding NaN or inf when an aligner of the run
        needs finite weights: one error naming the file, the tensors and their counts. A run of
        aligners that take any weights (``identity``) measures the path and flags it."""
        needing = [e.key for e in self.config.aligners
                   if getattr(self.registries.aligners.get(e.name), "needs_finite", True)]
        if needing:
            for source, state in zip(self.sources(model_set), states):
                check_finite(state, f"model {str(source)!r} of model set {model_set.name!r}",
                             needed_by=" and ".join(needing))

    def load_models(self, model_set: ModelSetConfig) -> list[State]:
        """The set's states on the run's device, keys in the module's order (safetensors
        sorts them; layer orders depend on it): loaded from checkpoints, or trained from
        seeds (and cached)."""
        reference = self.model.init_state(0)

        def placed(state: State) -> State:
            return {key: state[key].to(self.device) for key in reference}

        states = []
        if model_set.checkpoints:
            for path in model_set.checkpoints:
                state = load_state(path, allow_pickle=model_set.allow_pickle)
                check_compatible(reference, state, names=(f"model {self.model.name!r}", str(path)))
                states.append(placed(state))
            return states
        for seed, path in zip(model_set.seeds, self.sources(model_set)):
            if path.exists():
                states.append(placed(load_state(path)))
                continue
            start = time.perf_counter()
            state = train(self.model, self.dataset, self.config.train, seed=seed, device=self.device,
                          progress=self.progress)
            self.timings[f"train_seed{seed}"] = time.perf_counter() - start
            save_state(path, state, {"model": self.model.config, "dataset": self.dataset.config,
                                     "seed": seed, "train": self.config.to_dict()["train"],
                                     **provenance(self.config.train)})
            states.append(placed(state))
        return states

    def model_sets(self) -> list[ModelSetConfig]:
        """The configured model sets, checkpoint series expanded to one set per shared step."""
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
        return expanded

    # -- alignment ---------------------------------------------------------------------
    def align(self, store: ResultsStore, model_set: ModelSetConfig, entry: EntryConfig,
              states: list[State], spec: PermutationSpec, evaluator: Evaluator) -> list[State]:
        """Endpoints for the paths: the reference and every other model aligned to it."""
        stored = store.read_alignment(model_set.name, entry.key)
        if stored is not None:
            perms_list = stored["perms"]
        else:
            aligner = self.registries.aligners.create(entry.name, **entry.options)
            context = AlignContext(evaluator=evaluator, seed=self.config.seed)
            aligner_spec = spec if aligner.supports_nested else spec.without_nested()
            alignments: list[Alignment] = [aligner.align(states[0], other, aligner_spec, context)
                                           for other in states[1:]]
            merged = alignments[0].merged if len(alignments) == 1 else None
            merged_eval = {}
            if merged is not None:  # a merging aligner's product is a network: measure it
                for split in self.dataset.splits:
                    evaluation = evaluator.evaluate(merged, split)
                    merged_eval[f"merged_{split}_loss"] = evaluation.loss
                    merged_eval[f"merged_{split}_accuracy"] = evaluation.accuracy
            store.write_alignment(model_set.name, entry.key, alignments, merged, merged_eval)
            perms_list = [a.perms for a in alignments]
            self.timings[f"align_{model_set.name}_{entry.key}"] = sum(a.seconds for a in alignments)
        return [states[0], *(spec.apply(other, perms) for other, perms in zip(states[1:], perms_list))]

    # -- measuring ---------------------------------------------------------------------
    def measure(self, store: ResultsStore, writer: Writer, model_set: ModelSetConfig, aligner: str,
                corrections: Sequence[EntryConfig], path_entry: EntryConfig, endpoints: list[State],
                evaluator: Evaluator) -> None:
        correction_label = self.config.correction_label(corrections)
        path_levels = (aligner, correction_label, path_entry.key)
        if store.path_complete(model_set.name, path_levels):
            return  # finished earlier: no fit, no correction statistics, nothing to measure
        path = self.registries.paths.create(path_entry.name, endpoints=endpoints, **path_entry.options)
        metrics = [(m, self.registries.metrics.create(m.name, **m.options)) for m in self.config.metrics]
        if path.trainable:
            stored = store.read_fit(model_set.name, path_levels)
            if stored is not None:  # resuming: the curve the earlier points were measured on
                reference = endpoints[0]
                path.restore([{k: s[k].to(reference[k].device) for k in reference if k in s}
                              for s in stored])
            else:
                start = time.perf_counter()
                report = path.fit(evaluator)
                report["seconds"] = time.perf_counter() - start
                store.write_fit(model_set.name, path_levels, report, path.fitted())
        correction_objects = [self.registries.corrections.create(c.name, **c.options)
                              for c in corrections]
        for segment_label, segment in path.segments().items():
            probe = PathProbe(segment, evaluator, correction_objects)
            recorded: dict[tuple, tuple[Series, tuple[str, ...]]] = {}  # records_key -> first series
            for metric_entry, metric in metrics:
                points = list(metric.points(segment))
                levels = (aligner, correction_label, path_entry.key, segment_label, metric_entry.key)
                key = metric.records_key(segment)
                shared = recorded.get((key, metric.columns)) if key is not None else None
                series = store.series(model_set.name, levels, metric.columns, metric.labels(segment),
                                      shares=shared[1] if shared else None)
                if key is not None and shared is None:
                    recorded[(key, metric.columns)] = (series, levels)
                if series.complete:
                    continue
                if shared is not None and series.shares is not None:  # an earlier metric's rows
                    writer.drain()
                    writer.submit(series.follow, shared[0])
                    writer.finish(series, metric.summarise(shared[0].records()))
                    continue
                records = series.records()
                todo = points[len(records):]
                label = "/".join(level for level in levels if level)
                for point in tqdm(todo, desc=label, disable=not self.progress, leave=False):
                    record = dict(metric.measure(point, probe))
                    writer.append(series, record)
                    records.append({k: float(v) for k, v in record.items()})
                writer.drain()
                writer.finish(series, metric.summarise(records))
        writer.submit(store.mark_path_complete, model_set.name, path_levels)

    def run(self) -> Path:
        start = time.perf_counter()
        spec = self.model.spec()
        module = self.model.build()
        evaluator = Evaluator(module, self.dataset, device=self.device, batch_size=self.config.batch_size)
        metadata = {
            "device": str(self.device),
            "seed": self.config.seed,
            "threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "plugin_versions": {"ridgeline": __version__, **self.host.versions},
        }
        with ResultsStore(self.output, self.config.to_dict(), metadata) as store, \
                Writer(store, background=self.background_writer) as writer:
            for model_set in self.model_sets():
                states = self.load_models(model_set)
                self.check_finite(model_set, states)
                store.check_endpoints(model_set.name, fingerprint(states))
                store.record_models(model_set.name, self.provenance(model_set))
                for aligner_entry in self.config.aligners:
                    endpoints = self.align(store, model_set, aligner_entry, states, spec, evaluator)
                    for corrections in self.config.corrections:
                        for path_entry in self.config.paths:
                            self.measure(store, writer, model_set, aligner_entry.key, corrections,
                                         path_entry, endpoints, evaluator)
            writer.drain()
            self.timings["total"] = time.perf_counter() - start
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
