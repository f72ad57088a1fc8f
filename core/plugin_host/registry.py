"""Registries of named factories, one per plugin kind.

A registry stores factories (classes or callables), never built objects. Names are short
lowercase words; listing takes fnmatch patterns (as ``timm.list_models`` does); an unknown
name raises :class:`~ridgeline.core.errors.UnknownEntryError` with close matches and a duplicate
name raises :class:`~ridgeline.core.errors.DuplicateEntryError` naming both plugins.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ridgeline.core.errors import ConfigError, DuplicateEntryError, UnknownEntryError
from ridgeline.core.options import check_options

KINDS = ("models", "datasets", "aligners", "paths", "metrics", "corrections")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _summary(factory: Callable[..., Any]) -> str:
    """The first sentence of the factory's docstring (what ``ridgeline list`` shows)."""
    doc = (getattr(factory, "__doc__", None) or "").strip()
    paragraph = " ".join(doc.split("\n\n")[0].split())
    return re.split(r"(?<=\.)\s+(?=[A-Z])", paragraph)[0]


@attrs.frozen
class Entry:
    """One registered factory and the plugin that supplied it."""

    name: str
    factory: Callable[..., Any]
    plugin: str
    summary: str = ""


class Registry:
    """Named factories of one kind (``models``, ``aligners``, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, factory: Callable[..., Any], *, plugin: str) -> None:
        if not _NAME.match(name):
            raise ConfigError(
                f"plugin {plugin!r} tried to register {self.kind[:-1]} {name!r}: names are "
                "lowercase words joined by underscores"
            )
        if name in self._entries:
            raise DuplicateEntryError(self.kind, name, self._entries[name].plugin, plugin)
        self._entries[name] = Entry(name, factory, plugin, _summary(factory))

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownEntryError(self.kind, name, self._entries) from None

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``."""
        return self.entry(name).factory

    def check(self, name: str, options: Mapping[str, Any], *, skip: Iterable[str] = (),
              where: str | None = None) -> None:
        """Refuse, without building anything, options the entry ``name`` does not take or whose
        types its factory's annotations exclude (:func:`~ridgeline.core.options.
        check_options`); ``skip`` names arguments the caller supplies (``endpoints``)."""
        check_options(where or f"{self.kind[:-1]} {name!r}", self.get(name), options, skip)

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
