"""The plugin host: finds plugins, calls their ``register_<kind>`` hooks, fills the registries.

First-party plugins register through the same hooks as third-party ones, listed in
:data:`INTERNAL_PLUGINS`. Third-party plugins are found through the ``ridgeline`` entry-point
group. Nothing loads at import time: call :func:`load_plugins` (the CLI and pipelines do it
for you through :func:`registries`).

Environment variables:

* ``RIDGELINE_DISABLE_PLUGIN_AUTOLOAD=1`` -- skip entry-point plugins (first-party ones still load).
* ``RIDGELINE_BLOCK_PLUGINS=name1,name2`` -- skip the named entry-point plugins.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import pluggy

from ridgeline.core.errors import PluginLoadError
from ridgeline.core.plugin_host import hookspecs
from ridgeline.core.plugin_host.registry import KINDS, Registries, Registry

hookimpl = pluggy.HookimplMarker("ridgeline")
"""Marker for plugin hook implementations: ``@hookimpl def register_aligners(register): ...``"""

ENTRY_POINT_GROUP = "ridgeline"

INTERNAL_PLUGINS: tuple[str, ...] = (
    "ridgeline.plugins.models",
    "ridgeline.plugins.datasets",
    "ridgeline.plugins.aligners",
    "ridgeline.plugins.paths",
    "ridgeline.plugins.metrics",
    "ridgeline.plugins.corrections",
)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


class PluginHost:
    """One pluggy manager and the registries its plugins fill."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("ridgeline")
        self.manager.add_hookspecs(hookspecs)
        self.registries = Registries()
        self.distributions: dict[str, str | None] = {}
        self.versions: dict[str, str] = {}
        self.extra: tuple[tuple[str, object], ...] = ()
        """The in-process plugins :func:`load_plugins` was given (a Ray worker gets them too)."""
        self.autoload: bool | None = None

    def add(self, plugin: ModuleType | object, name: str, distribution: str | None = None) -> None:
        """Register one plugin object (a module or an instance with hook implementations)."""
        try:
            self.manager.register(plugin, name=name)
        except Exception as error:  # pluggy validation errors name no plugin on their own
            raise PluginLoadError(name, distribution, error) from error
        self.distributions[name] = distribution

    def load_internal(self) -> None:
        for module_name in INTERNAL_PLUGINS:
            self.add(importlib.import_module(module_name), module_name)

    def load_entry_points(self, blocked: Iterable[str] = ()) -> None:
        blocked = set(blocked)
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name in blocked:
                continue
            distribution = entry_point.dist.name if entry_point.dist else None
            try:
                plugin = entry_point.load()
            except Exception as error:
                raise PluginLoadError(entry_point.name, distribution, error) from error
            self.add(plugin, entry_point.name, distribution)
            if entry_point.dist is not None:
                self.versions[entry_point.name] = entry_point.dist.version

    def fill_registries(self) -> Registries:
        """Call every plugin's ``register_<kind>`` hooks, naming the plugin on any failure."""
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as error:
            name = self.manager.get_name(error.plugin) or repr(error.plugin)
            raise PluginLoadError(name, self.distributions.get(name), error) from error
        for kind in KINDS:
            registry = self.registries.of(kind)
            caller = getattr(self.manager.hook, f"register_{kind}")
            # Call each implementation on its own so a duplicate or a crash names its plugin.
            for impl in caller.get_hookimpls():
                plugin_name = impl.plugin_name

                def register(name: str, factory: Any, summary: str | None = None, *,
                             _plugin: str = plugin_name, _registry: Registry = registry) -> None:
                    _registry.register(name, factory, plugin=_plugin, summary=summary,
                                       distribution=self.distributions.get(_plugin))

                try:
                    impl.function(register=register)
                except PluginLoadError:
                    raise
                except Exception as error:
                    if isinstance(error, (LookupError,)) or type(error).__module__.startswith(
                        "ridgeline.core"
                    ):
                        raise
                    raise PluginLoadError(
                        plugin_name, self.distributions.get(plugin_name), error
                    ) from error
        return self.registries


def load_plugins(
    extra: Iterable[tuple[str, object]] = (), *, autoload: bool | None = None
) -> PluginHost:
    """Build a fresh host: internal plugins, entry-point plugins (unless disabled), ``extra``.

    ``extra`` is a sequence of ``(name, plugin)`` pairs registered after the others, for
    tests and for scripts that define a plugin inline.
    """
    host = PluginHost()
    host.extra, host.autoload = tuple(extra), autoload
    host.load_internal()
    if autoload is None:
        autoload = not _env_flag("RIDGELINE_DISABLE_PLUGIN_AUTOLOAD")
    if autoload:
        blocked = [n.strip() for n in os.environ.get("RIDGELINE_BLOCK_PLUGINS", "").split(",")]
        host.load_entry_points(blocked=[b for b in blocked if b])
    for name, plugin in host.extra:
        host.add(plugin, name)
    host.fill_registries()
    return host


_default_host: PluginHost | None = None


def registries() -> Registries:
    """The process-wide registries, loading plugins on first use."""
    global _default_host
    if _default_host is None:
        _default_host = load_plugins()
    return _default_host.registries


def default_host() -> PluginHost:
    registries()
    assert _default_host is not None
    return _default_host


def reset() -> None:
    """Forget the process-wide host (tests use this after installing a plugin)."""
    global _default_host
    _default_host = None
