"""Pipeline configuration: which registry entries to compose, read from Python or TOML.

A pipeline is one dataset and one model architecture, a list of model sets (pairs, or N
models), and the aligners x corrections x paths x metrics to run on each. Every entry is a
registry name plus keyword options; ``label`` names an entry in the results when the same name
appears twice with different options.

Sweeps: ``seeds = "0..7"`` is a range of seeds; with ``pairs = "all"`` (every pair) or
``pairs = "first"`` (each model against the first) a model set becomes one set per pair
(:mod:`ridgeline.core.run.sweeps`); an entry option given a list of values where the plugin
takes one value is a grid, expanded into one keyed entry per value. ``[executor]`` says how
the cells of the run are executed (:class:`ExecutorConfig`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from ridgeline.core.errors import ConfigError
from ridgeline.core.plugin_host.registry import Registries
from ridgeline.core.run.training import TrainConfig
from ridgeline.core.validation import checked


@attrs.frozen
class EntryConfig:
    """A registry entry by name, with keyword options and an optional result label."""

    name: str
    options: Mapping[str, Any] = attrs.field(factory=dict)
    label: str = ""

    @property
    def key(self) -> str:
        return self.label or self.name

    @classmethod
    def from_value(cls, value: str | Mapping[str, Any], where: str) -> EntryConfig:
        if isinstance(value, str):
            return cls(value)
        if not isinstance(value, Mapping) or "name" not in value:
            raise ConfigError(f"{where}: expected a name or a table with a 'name' key, got {value!r}")
        options = {k: v for k, v in value.items() if k not in ("name", "label")}
        return cls(str(value["name"]), options, str(value.get("label", "")))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, **self.options}
        if self.label:
            out["label"] = self.label
        return out


@attrs.frozen
class ModelSetConfig:
    """Models to compare: checkpoint files, seeds to train (cached beside the results), or
    checkpoint series (folders of ``step<N>.safetensors``, one per run: every step the runs
    share becomes a model set named ``<name>@step<N>``, so every metric is measured as a
    function of training time).

    The first model is the reference every other model is aligned to. ``allow_pickle`` lets
    checkpoints that need arbitrary unpickling load (only for files you trust).
    """

    name: str
    checkpoints: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    allow_pickle: bool = False
    series: tuple[str, ...] = ()
    pairing: str = ""
    """``""``: one set of all the models; ``"all"``: one set per pair; ``"first"``: one set
    per model paired with the first (see :func:`ridgeline.core.run.sweeps.pair_sets`)."""

    @classmethod
    def from_value(cls, value: Mapping[str, Any], index: int) -> ModelSetConfig:
        where = f"pairs[{index}]"
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table with 'checkpoints' or 'seeds'")
        unknown = set(value) - {"name", "checkpoints", "seeds", "series", "allow_pickle", "pairs"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; use name, checkpoints, seeds, "
                              "series, pairs or allow_pickle")
        checkpoints = tuple(str(c) for c in value.get("checkpoints", ()))
        seeds = seed_list(value.get("seeds", ()), f"{where}.seeds")
        series = tuple(str(s) for s in value.get("series", ()))
        pairing = str(value.get("pairs", ""))
        if pairing not in ("", "all", "first"):
            raise ConfigError(f"{where}.pairs: expected 'all' (every pair) or 'first' (each model "
                              f"against the first), got {pairing!r}")
        if pairing and series:
            raise ConfigError(f"{where}: pairs = {pairing!r} pairs seeds or checkpoints, not series")
        if sum(map(bool, (checkpoints, seeds, series))) != 1:
            raise ConfigError(f"{where}: give exactly one of 'checkpoints' (files), 'seeds' (to train) "
                              "or 'series' (folders of step checkpoints), not both")
        count = len(checkpoints or seeds or series)
        if count < 2:
            raise ConfigError(f"{where}: a model set needs at least two models, got {count}")
        default = "-".join([Path(c).stem for c in checkpoints] + [f"seed{s}" for s in seeds]
                           + [Path(s).name for s in series])
        if pairing and seeds:
            default = f"seeds{compact_seeds(seeds)}"
        allow_pickle = bool(value.get("allow_pickle", False))
        return cls(str(value.get("name", default)), checkpoints, seeds, allow_pickle, series, pairing)

    @property
    def members(self) -> tuple[str, ...]:
        """A short name per model: ``seed<N>``, or the checkpoint's file stem."""
        return tuple([Path(c).stem for c in self.checkpoints] + [f"seed{s}" for s in self.seeds])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for key in ("checkpoints", "seeds", "series"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        if self.allow_pickle:
            out["allow_pickle"] = True
        if self.pairing:
            out["pairs"] = self.pairing
        return out


def seed_list(value: Any, where: str) -> tuple[int, ...]:
    """Seeds as a list of integers, or a range ``"a..b"`` (both ends included)."""
    if isinstance(value, str):
        first, sep, last = value.partition("..")
        try:
            start, stop = int(first), int(last)
        except ValueError:
            start = stop = -1
        if not sep or start < 0 or stop < start:
            raise ConfigError(f"{where}: expected a list of seeds or a range like \"0..7\" (both ends "
                              f"included), got {value!r}")
        return tuple(range(start, stop + 1))
    try:
        return tuple(int(s) for s in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a list of integer seeds or a range like \"0..7\", "
                          f"got {value!r}") from None


def compact_seeds(seeds: Sequence[int]) -> str:
    """``0..7`` for a contiguous range, else the seeds joined by commas."""
    if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}..{seeds[-1]}"
    return ",".join(map(str, seeds))


EXECUTORS = ("serial", "ray")


@attrs.frozen
class ExecutorConfig:
    """How the cells of a run execute: ``serial`` (one after another in this process, the
    default) or ``ray`` (as Ray tasks on a cluster, docs/cluster.md).

    ``address``: the Ray cluster (``host:port``, ``ray://host:port`` or ``auto``; empty starts
    a local Ray instance); ``num_cpus`` / ``num_gpus``: the resources each cell asks for (a
    cell runs torch with ``num_cpus`` threads); ``max_retries``: how often a cell whose worker
    died is run again; ``timeout_s``: how long to wait for a node that can hold a cell before
    saying so (an address must answer within 5 s, or within ``timeout_s`` if that is shorter).
    """

    name: str = "serial"
    address: str = ""
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_retries: int = 2
    timeout_s: float = 60.0

    @classmethod
    def from_value(cls, value: str | Mapping[str, Any]) -> ExecutorConfig:
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, Mapping):
            raise ConfigError(f"[executor]: expected a table or a name ({' or '.join(EXECUTORS)}), "
                              f"got {value!r}")
        known = [f.name for f in attrs.fields(cls)]
        unknown = set(value) - set(known)
        if unknown:
            raise ConfigError(f"[executor]: unknown keys {sorted(unknown)}; known: {known}")
        name = str(value.get("name", "serial"))
        if name not in EXECUTORS:
            raise ConfigError(f"[executor] name {name!r}: expected one of {', '.join(EXECUTORS)}")
        try:
            config = cls(name=name, address=str(value.get("address", "")),
                         num_cpus=float(value.get("num_cpus", 1.0)),
                         num_gpus=float(value.get("num_gpus", 0.0)),
                         max_retries=int(value.get("max_retries", 2)),
                         timeout_s=float(value.get("timeout_s", 60.0)))
        except (TypeError, ValueError) as error:
            raise ConfigError(f"[executor]: {error}") from None
        if config.num_cpus <= 0 or config.num_gpus < 0 or config.max_retries < 0 or config.timeout_s <= 0:
            raise ConfigError(f"[executor]: num_cpus must be > 0, num_gpus >= 0, max_retries >= 0 and "
                              f"timeout_s > 0; got {attrs.asdict(config)}")
        return config


def entries_of(value: Any, where: str) -> tuple[EntryConfig, ...]:
    if isinstance(value, (str, Mapping)):
        value = [value]
    return tuple(EntryConfig.from_value(v, f"{where}[{i}]") for i, v in enumerate(value))


def correction_sets(value: Any) -> tuple[tuple[EntryConfig, ...], ...]:
    """``corrections``: a list whose items are an entry, or a list of entries applied in order.
    The empty list ``[]`` item means "no correction"."""
    if not value:
        return ((),)
    sets = []
    for i, item in enumerate(value):
        if isinstance(item, (list, tuple)):
            sets.append(tuple(EntryConfig.from_value(v, f"corrections[{i}]") for v in item))
        else:
            sets.append((EntryConfig.from_value(item, f"corrections[{i}]"),))
    return tuple(sets)


DATASET_PATHS = ("root", "path", "cache")  # dataset options that name files or folders
TOP_LEVEL = {"dataset", "model", "pairs", "aligners", "corrections", "paths", "metrics", "train",
             "seed", "batch_size", "points_per_batch", "precision", "output", "checkpoint_dir", "device",
             "executor"}


@attrs.frozen
class PipelineConfig:
    """Everything a run needs. Build with :meth:`from_dict` or :meth:`from_toml`."""

    dataset: EntryConfig
    model: EntryConfig
    pairs: tuple[ModelSetConfig, ...]
    aligners: tuple[EntryConfig, ...] = (EntryConfig("identity"),)
    corrections: tuple[tuple[EntryConfig, ...], ...] = ((),)
    paths: tuple[EntryConfig, ...] = (EntryConfig("linear"),)
    metrics: tuple[EntryConfig, ...] = (EntryConfig("loss_barrier"), EntryConfig("error_barrier"))
    train: TrainConfig = attrs.field(factory=TrainConfig)
    seed: int = attrs.field(default=0, validator=checked(int))
    batch_size: int = attrs.field(default=1000, validator=checked(int, at_least=1))
    points_per_batch: int | None = attrs.field(default=None, validator=checked(int | None))
    precision: str = attrs.field(default="fp32", validator=checked(str))
    output: str = attrs.field(default="results.h5", validator=checked(str))
    checkpoint_dir: str = attrs.field(default="", validator=checked(str))
    device: str = attrs.field(default="auto", validator=checked(str))
    executor: ExecutorConfig = attrs.field(factory=ExecutorConfig)
    """How cells run; not part of :meth:`to_dict`, so a run may resume under another executor."""

    scope: ClassVar[str] = "pipeline"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | Path | None = None) -> PipelineConfig:
        """Parse a config table; relative paths resolve against ``base_dir`` (the TOML's folder)."""
        unknown = set(data) - TOP_LEVEL
        if unknown:
            raise ConfigError(f"unknown pipeline keys {sorted(unknown)}; known: {sorted(TOP_LEVEL)}")
        for required in ("dataset", "model", "pairs"):
            if required not in data:
                raise ConfigError(f"the pipeline needs a [{required}] section")
        base = Path(base_dir) if base_dir else None

        def resolve(p: str) -> str:
            return str(base / p) if base and not Path(p).is_absolute() else p

        pairs = tuple(ModelSetConfig.from_value(v, i) for i, v in enumerate(data["pairs"]))
        if base:
            pairs = tuple(attrs.evolve(p, checkpoints=tuple(resolve(c) for c in p.checkpoints),
                                       series=tuple(resolve(s) for s in p.series))
                          for p in pairs)
        names = [p.name for p in pairs]
        if len(set(names)) != len(names):
            raise ConfigError(f"model sets need distinct names, got {names}")
        dataset = EntryConfig.from_value(data["dataset"], "dataset")
        if base:  # a dataset's files, like every path in a pipeline file, are relative to the file
            located = {k: resolve(v) for k, v in dataset.options.items()
                       if k in DATASET_PATHS and isinstance(v, str)}
            dataset = attrs.evolve(dataset, options={**dataset.options, **located})
        kwargs: dict[str, Any] = {
            "dataset": dataset,
            "model": EntryConfig.from_value(data["model"], "model"),
            "pairs": pairs,
            "train": TrainConfig.from_dict(dict(data.get("train", {}))),
        }
        for kind in ("aligners", "paths", "metrics"):
            if kind in data:
                kwargs[kind] = entries_of(data[kind], kind)
        if "corrections" in data:
            kwargs["corrections"] = correction_sets(data["corrections"])
        for key in ("seed", "batch_size", "device", "points_per_batch", "precision"):
            if key in data:
                kwargs[key] = data[key]
        if "output" in data:
            kwargs["output"] = resolve(str(data["output"]))
        if "checkpoint_dir" in data:
            kwargs["checkpoint_dir"] = resolve(str(data["checkpoint_dir"]))
        if "executor" in data:
            kwargs["executor"] = ExecutorConfig.from_value(data["executor"])
        config = cls(**kwargs)
        for kind in ("aligners", "paths", "metrics"):
            keys = [e.key for e in getattr(config, kind)]
            if len(set(keys)) != len(keys):
                raise ConfigError(f"{kind} appear twice with the same label: {keys}; add label = '...'")
        return config

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"pipeline file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path} is not valid TOML: {error}") from None
        return cls.from_dict(data, base_dir=path.parent)

    def check_names(self, registries: Registries) -> None:
        """Fail before any work if a registry name is unknown (the error lists close matches)."""
        registries.datasets.entry(self.dataset.name)
        registries.models.entry(self.model.name)
        for kind in ("aligners", "paths", "metrics"):
            for entry in getattr(self, kind):
                registries.of(kind).entry(entry.name)
        for corrections in self.corrections:
            for entry in corrections:
                registries.corrections.entry(entry.name)

    def correction_label(self, corrections: Sequence[EntryConfig]) -> str:
        return "+".join(c.key for c in corrections) or "none"

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data (stored as JSON in the results file)."""
        return {
            "dataset": self.dataset.to_dict(),
            "model": self.model.to_dict(),
            "pairs": [p.to_dict() for p in self.pairs],
            "aligners": [a.to_dict() for a in self.aligners],
            "corrections": [[c.to_dict() for c in cs] for cs in self.corrections],
            "paths": [p.to_dict() for p in self.paths],
            "metrics": [m.to_dict() for m in self.metrics],
            "train": self.train.to_dict(),
            "seed": self.seed,
            "batch_size": self.batch_size,
            # a reduced precision changes the numbers: recorded (fp32 is left out, so files written
            # before the option existed still resume); points_per_batch only changes the speed
            **({"precision": self.precision} if self.precision != "fp32" else {}),
        }
