"""The hooks a ridgeline plugin implements: one ``register_<kind>`` hook per kind.

Each hook receives ``register(name, factory)``; call it once per entry. Factories are
classes (or callables) taking keyword options; ridgeline builds them on demand. Hooks are
always called with keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

_hookspec = pluggy.HookspecMarker("ridgeline")

Register = Callable[[str, Callable[..., Any]], None]


@_hookspec
def register_models(register: Register) -> None:
    """Register :class:`~ridgeline.core.model.Model` subclasses (architectures)."""


@_hookspec
def register_datasets(register: Register) -> None:
    """Register :class:`~ridgeline.core.data.Dataset` subclasses."""


@_hookspec
def register_aligners(register: Register) -> None:
    """Register :class:`~ridgeline.core.aligner.Aligner` subclasses (matching algorithms)."""


@_hookspec
def register_paths(register: Register) -> None:
    """Register :class:`~ridgeline.core.path.Path` subclasses (curves between states)."""


@_hookspec
def register_metrics(register: Register) -> None:
    """Register :class:`~ridgeline.core.metric.Metric` subclasses (measurements along paths)."""


@_hookspec
def register_corrections(register: Register) -> None:
    """Register :class:`~ridgeline.core.correction.Correction` subclasses (applied to path points)."""
