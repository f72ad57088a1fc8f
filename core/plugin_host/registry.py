"""Registries of named factories, one per plugin kind.

A registry stores factories (classes or callables), never built objects. A factory may be
registered *lazily* as an import path ``"package.module:Attribute"`` with a one-line summary:
the module is imported only when the factory is first needed (``get``, ``create``), so
listing entries, ``--help`` and validating a pipeline's names import no implementation (no
timm, no torchvision). Eager factories (the objects themselves) are accepted as well.

Names are short lowercase words; listing takes fnmatch patterns (as ``timm.list_models`` does);
an unknown name raises :class:`~ridgeline.core.errors.UnknownEntryError` with close matches and a
duplicate name raises :class:`~ridgeline.core.errors.DuplicateEntryError` naming both plugins. A
lazy factory that fails to import raises :class:`~ridgeline.core.errors.PluginLoadError` naming
the plugin, its distribution and the entry.
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ridgeline.core.errors import ConfigError, DuplicateEntryError, PluginLoadError, UnknownEntryError
from ridgeline.core.plugin_host.options import check_options

KINDS = ("models", "datasets", "aligners", "paths", "metrics", "corrections")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def summary_of(factory: Callable[..., Any]) -> str:
    """The first sentence of the factory's docstring (what ``ridgeline list`` shows)."""
    doc = (getattr(factory, "__doc__", None) or "").strip()
    paragraph = " ".join(doc.split("\n\n")[0].split())
    return re.split(r"(?<=\.)\s+(?=[A-Z])", paragraph)[0]


def resolve_import_path(path: str) -> Any:
    """The object an import path ``"package.module:Attribute"`` names (importing the module)."""
    module_name, _, attribute = path.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


@attrs.define(eq=False)
class Entry:
    """One registered factory, the plugin (and distribution) that supplied it, and its summary.

    ``target`` is the factory itself or its import path ``"module:Attribute"``; :attr:`factory`
    resolves an import path on first use (and keeps the result). ``kind`` is the registry's kind.
    """

    name: str
    target: Callable[..., Any] | str
    plugin: str
    given_summary: str | None = None
    distribution: str | None = None
    kind: str = ""
    _resolved: Callable[..., Any] | None = attrs.field(default=None, init=False, repr=False)

    @property
    def lazy(self) -> bool:
        """True while the factory is an import path not yet imported."""
        return isinstance(self.target, str) and self._resolved is None

    @property
    def factory(self) -> Callable[..., Any]:
        """The factory (imported now if it was registered as an import path)."""
        if not isinstance(self.target, str):
            return self.target
        if self._resolved is None:
            where = f"{self.kind[:-1] or 'entry'} {self.name!r} from {self.target!r}"
            try:
                value = resolve_import_path(self.target)
            except Exception as error:
                raise PluginLoadError(self.plugin, self.distribution, error, entry=where) from error
            if not callable(value):
                raise PluginLoadError(self.plugin, self.distribution,
                                      TypeError(f"{self.target!r} is {type(value).__name__}, not a "
                                                "class or callable"), entry=where)
            self._resolved = value
        return self._resolved

    @property
    def summary(self) -> str:
        """The one-line summary given at registration, else the factory's first docstring sentence."""
        if self.given_summary is not None:
            return self.given_summary
        return summary_of(self.factory)


class Registry:
    """Named factories of one kind (``models``, ``aligners``, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, factory: Callable[..., Any] | str, *, plugin: str,
                 summary: str | None = None, distribution: str | None = None) -> None:
        """Add ``name``: ``factory`` is a class/callable, or an import path ``"module:Attribute"``
        resolved on first use (give ``summary`` with it, so listing needs no import)."""
        if not _NAME.match(name):
            raise ConfigError(
                f"plugin {plugin!r} tried to register {self.kind[:-1]} {name!r}: names are "
                "lowercase words joined by underscores"
            )
        if isinstance(factory, str):
            if not _IMPORT_PATH.match(factory):
                raise ConfigError(
                    f"plugin {plugin!r} registered {self.kind[:-1]} {name!r} as {factory!r}: a lazy "
                    "factory is an import path 'package.module:Attribute'"
                )
        elif not callable(factory):
            raise ConfigError(
                f"plugin {plugin!r} registered {self.kind[:-1]} {name!r} as a "
                f"{type(factory).__name__}: give a class, a callable or an import path 'module:Attribute'"
            )
        if name in self._entries:
            raise DuplicateEntryError(self.kind, name, self._entries[name].plugin, plugin)
        if summary is None and not isinstance(factory, str):
            summary = summary_of(factory)
        self._entries[name] = Entry(name, factory, plugin, summary, distribution, self.kind)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownEntryError(self.kind, name, self._entries) from None

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name`` (an import path is imported now, once)."""
        return self.entry(name).factory

    def check(self, name: str, options: Mapping[str, Any], *, skip: Iterable[str] = (),
              where: str | None = None) -> None:
        """Refuse, without building anything, options the entry ``name`` does not take or whose
        types its factory's annotations exclude (:func:`~ridgeline.core.plugin_host.options.
        check_options`); the arguments ridgeline supplies (a path's ``endpoints``) and ``skip``
        are not checked."""
        check_options(where or f"{self.kind[:-1]} {name!r}", self.get(name), options, self.kind, skip)

    def create(self, name: str, /, **options: Any) -> Any:
        """Build the entry ``name`` with keyword options; bad options (unknown, missing, or of
        the wrong type) are a :class:`ConfigError` naming the entry and the option."""
        self.check(name, options)
        return self.get(name)(**options)

    def list(self, pattern: str | Sequence[str] = "*", exclude: str | Sequence[str] = ()) -> list[str]:
        """Sorted names matching any of ``pattern`` and none of ``exclude`` (fnmatch)."""
        include = [pattern] if isinstance(pattern, str) else list(pattern)
        excluded = [exclude] if isinstance(exclude, str) else list(exclude)
        return sorted(
            name
            for name in self._entries
            if any(fnmatch.fnmatchcase(name, p) for p in include)
            and not any(fnmatch.fnmatchcase(name, p) for p in excluded)
        )

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[name] for name in sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


@attrs.frozen
class Registries:
    """The registries of every kind, filled by one plugin host."""

    models: Registry = attrs.field(factory=lambda: Registry("models"))
    datasets: Registry = attrs.field(factory=lambda: Registry("datasets"))
    aligners: Registry = attrs.field(factory=lambda: Registry("aligners"))
    paths: Registry = attrs.field(factory=lambda: Registry("paths"))
    metrics: Registry = attrs.field(factory=lambda: Registry("metrics"))
    corrections: Registry = attrs.field(factory=lambda: Registry("corrections"))

    def of(self, kind: str) -> Registry:
        if kind not in KINDS:
            raise UnknownEntryError("registry kinds", kind, KINDS)
        return getattr(self, kind)
