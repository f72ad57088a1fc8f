"""Lazy re-exports for the public facades (PEP 562): a name is imported when first used.

``ridgeline.core`` and ``ridgeline.core.numerics`` list many names from many modules; importing
them all eagerly would make every ``import ridgeline.core`` pay for torch.fx, scipy and h5py.
This module is internal.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps each public name to
    the module that defines it."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*exports, *importlib.import_module(package).__dict__})

    return __getattr__, __dir__
