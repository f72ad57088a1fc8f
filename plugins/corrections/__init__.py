"""Correction plugins: ``bn_reset`` and ``repair``.

Each entry is registered by import path with its summary (the first sentence of its class
docstring), so listing entries imports none of them.
"""

from ridgeline.core import hookimpl

ENTRIES = (
    ("bn_reset", "bn_reset:BatchNormReset",
     "Recompute BatchNorm statistics on ``split`` (default ``train``) at each path point."),
    ("repair", "repair:Repair",
     "REPAIR on ``split`` (default ``train``) from up to ``examples`` examples."),
)
"""(name, "module:Class" inside this package, summary) of every entry."""


@hookimpl
def register_corrections(register):
    for name, target, summary in ENTRIES:
        register(name, f"{__name__}.{target}", summary)
