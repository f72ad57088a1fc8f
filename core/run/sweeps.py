"""Sweeps: model sets paired off from a list of seeds, and option grids for an entry.

``seeds = "0..7"`` with ``pairs = "all"`` becomes one model set per pair of seeds (28 sets
``<name>:seed0-seed1`` ...), with ``pairs = "first"`` one set per seed paired with the first
(7 sets). An entry option given a list of values where the plugin takes one value, as in
``{ name = "weight_matching", order = ["random", "forward", "best"] }``, is a grid: the entry
becomes one keyed entry per combination (``weight_matching[order=random]`` ...). Where the
plugin's option takes a sequence (``grid: int | Sequence[float]``), a list is one value and
a list of lists is a grid.
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ridgeline.core.errors import ConfigError
from ridgeline.core.plugin_host.registry import Registries
from ridgeline.core.results.tables import SWEEP_SEPARATOR
from ridgeline.core.run.config import EntryConfig, ModelSetConfig, PipelineConfig


def pair_sets(model_set: ModelSetConfig) -> list[ModelSetConfig]:
    """The model sets a paired set stands for (itself when it is not paired): every pair
    (``pairs = "all"``) or each model against the first (``pairs = "first"``), named
    ``<name>:<member>-<member>``. The first model of each pair is its reference."""
    if not model_set.pairing:
        return [model_set]
    count = len(model_set.checkpoints or model_set.seeds)
    if model_set.pairing == "all":
        index_pairs = list(itertools.combinations(range(count), 2))
    else:
        index_pairs = [(0, j) for j in range(1, count)]
    members = model_set.members
    out = []
    for i, j in index_pairs:
        name = f"{model_set.name}{SWEEP_SEPARATOR}{members[i]}-{members[j]}"
        if model_set.checkpoints:
            picked = {"checkpoints": (model_set.checkpoints[i], model_set.checkpoints[j])}
        else:
            picked = {"seeds": (model_set.seeds[i], model_set.seeds[j])}
        out.append(ModelSetConfig(name, allow_pickle=model_set.allow_pickle, **picked))
    return out


_SEQUENCE_TYPES = re.compile(r"\b(Sequence|list|tuple|Iterable|Collection)\b")


def _takes_sequence(factory: Callable[..., Any], option: str) -> bool:
    """Whether the factory's parameter ``option`` is annotated to accept a sequence."""
    try:
        parameter = inspect.signature(factory).parameters.get(option)
    except (TypeError, ValueError):
        return False
    if parameter is None or parameter.annotation is inspect.Parameter.empty:
        return False
    annotation = parameter.annotation
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return bool(_SEQUENCE_TYPES.search(text))


def _grid_axes(entry: EntryConfig, factory: Callable[..., Any]) -> dict[str, list[Any]]:
    axes = {}
    for option, value in entry.options.items():
        if not isinstance(value, list) or not value:
            continue
        if _takes_sequence(factory, option) and not all(isinstance(v, list) for v in value):
            continue  # one value of a sequence-valued option
        axes[option] = value
    return axes


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def expand_entry(entry: EntryConfig, factory: Callable[..., Any]) -> list[EntryConfig]:
    """The entry itself, or one keyed entry per combination of its grid options."""
    axes = _grid_axes(entry, factory)
    if not axes:
        return [entry]
    out = []
    for values in itertools.product(*axes.values()):
        chosen = dict(zip(axes, values))
        key = ",".join(f"{k}={_show(v)}" for k, v in chosen.items())
        out.append(EntryConfig(entry.name, {**entry.options, **chosen}, f"{entry.key}[{key}]"))
    return out


def _expand_all(entries: Sequence[EntryConfig], registry: Any) -> tuple[EntryConfig, ...]:
    return tuple(e for entry in entries for e in expand_entry(entry, registry.get(entry.name)))


def expand_grids(config: PipelineConfig, registries: Registries) -> PipelineConfig:
    """``config`` with every grid entry of aligners, paths, metrics and correction sets
    expanded (a correction set with a grid becomes one set per combination)."""
    changes: dict[str, Any] = {
        kind: _expand_all(getattr(config, kind), registries.of(kind))
        for kind in ("aligners", "paths", "metrics")
    }
    changes["corrections"] = tuple(
        tuple(combination)
        for corrections in config.corrections
        for combination in itertools.product(
            *(expand_entry(c, registries.corrections.get(c.name)) for c in corrections)))
    expanded = attrs.evolve(config, **changes)
    for kind in ("aligners", "paths", "metrics"):
        keys = [e.key for e in getattr(expanded, kind)]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"{kind} appear twice with the same key after expanding option grids: "
                              f"{keys}; add label = '...'")
    return expanded
