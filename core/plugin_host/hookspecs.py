"""The hooks a ridgeline plugin implements: one ``register_<kind>`` hook per kind.

Each hook receives ``register(name, factory, summary=None)``; call it once per entry. A factory
is a class (or callable) taking keyword options, or its import path ``"package.module:Class"``
with a one-line ``summary``: then the module is imported only when the entry is first used, so
``ridgeline list`` and config validation stay instant. ridgeline builds entries on demand. Hooks
are always called with keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

_hookspec = pluggy.HookspecMarker("ridgeline")

Register = Callable[..., None]
"""``register(name, factory, summary=None)``: factory is a callable or an import path string."""


@_hookspec
def register_models(register: Register) -> None:
    """Register :class:`~ridgeline.core.Model` subclasses (architectures)."""


@_hookspec
def register_datasets(register: Register) -> None:
    """Register :class:`~ridgeline.core.Dataset` subclasses."""


@_hookspec
def register_aligners(register: Register) -> None:
    """Register :class:`~ridgeline.core.Aligner` subclasses (matching algorithms)."""


@_hookspec
def register_paths(register: Register) -> None:
    """Register :class:`~ridgeline.core.Path` subclasses (curves between states)."""


@_hookspec
def register_metrics(register: Register) -> None:
    """Register :class:`~ridgeline.core.Metric` subclasses (measurements along paths)."""


@_hookspec
def register_corrections(register: Register) -> None:
    """Register :class:`~ridgeline.core.Correction` subclasses (applied to path points)."""
