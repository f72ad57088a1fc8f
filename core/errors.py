"""Every error a ridgeline user can see, in one place.

Messages are plain sentences that name the thing at fault: the plugin, the registry entry
(with close matches), the tensor key and both shapes, the file and what differs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RidgelineError(Exception):
    """Base class of ridgeline's errors."""


class UnknownEntryError(RidgelineError, LookupError):
    """A registry has no entry by that name."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        message = f"no {kind} named {name!r}"
        if close:
            message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
        elif known:
            message += f"; known {kind}: {', '.join(known)}"
        else:
            message += f" (no {kind} are registered)"
        super().__init__(message)
        self.kind, self.name, self.close_matches = kind, name, close


class DuplicateEntryError(RidgelineError):
    """Two plugins registered the same name in one registry."""

    def __init__(self, kind: str, name: str, first: str, second: str) -> None:
        super().__init__(
            f"{kind} {name!r} is registered twice: by plugin {first!r} and by plugin {second!r}; "
            "rename one of them or block a plugin with RIDGELINE_BLOCK_PLUGINS"
        )
        self.kind, self.name, self.plugins = kind, name, (first, second)


class PluginLoadError(RidgelineError):
    """A plugin failed to import or to register its entries."""

    def __init__(self, plugin: str, distribution: str | None, cause: BaseException, *,
                 entry: str = "") -> None:
        where = f" (from distribution {distribution!r})" if distribution else ""
        what = f" {entry}" if entry else ""
        super().__init__(
            f"plugin {plugin!r}{where} failed to load{what}: {type(cause).__name__}: {cause}. "
            "Set RIDGELINE_DISABLE_PLUGIN_AUTOLOAD=1 to skip third-party plugins, or "
            f"RIDGELINE_BLOCK_PLUGINS={plugin} to skip this one."
        )
        self.plugin, self.distribution = plugin, distribution


class StateMismatchError(RidgelineError, ValueError):
    """Two states (state dicts) do not have the same keys or shapes."""


class SpecError(RidgelineError, ValueError):
    """A permutation spec is malformed, does not fit a state, or fails its check."""


class ExampleInputError(SpecError):
    """A model fails on the example input while its spec is derived. ``failure`` says which model,
    where in the graph and why, without the advice the message adds, so that a model plugin that
    knows better advice (timm: the architecture's native input size) can give it."""

    def __init__(self, message: str, failure: str | None = None) -> None:
        super().__init__(message)
        self.failure = failure if failure is not None else message


class CheckpointError(RidgelineError):
    """A checkpoint file cannot be loaded safely as a state dict."""


class ConfigError(RidgelineError, ValueError):
    """A pipeline or plugin configuration is invalid."""


class ResultsMismatchError(RidgelineError):
    """An existing results file was written by a different pipeline configuration."""


class ResultsReadError(RidgelineError, OSError):
    """A file cannot be read as ridgeline results."""


class NonFiniteStateError(RidgelineError, ValueError):
    """A state holds NaN or inf values where a method needs finite ones (weight matching)."""


class DataError(RidgelineError, ValueError):
    """A dataset or split cannot serve what was asked of it."""


class MissingExtraError(RidgelineError, ImportError):
    """A feature needs an optional package that is not installed; the message names the
    package and the extra that installs it."""

    def __init__(self, feature: str, package: str, extra: str) -> None:
        super().__init__(f"{feature} needs {package}, which is not installed: "
                         f"pip install 'ridgeline[{extra}]' (or pip install {package})")
        self.feature, self.package, self.extra = feature, package, extra


class CellError(RidgelineError):
    """A cell of a pipeline (training, aligning, measuring) failed on a worker; the message
    names the cell, the node, and the plugin where one is missing."""
