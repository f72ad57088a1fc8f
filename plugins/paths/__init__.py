"""Path plugins: ``linear``, ``bezier``, ``polychain``, ``layerwise``, ``star``, ``plane``.

Each entry is registered by import path with its summary (the first sentence of its class
docstring), so listing entries imports none of them.
"""

from ridgeline.core import hookimpl

ENTRIES = (
    ("linear", "linear:LinearPath",
     "The straight line between two states (controls A, B; c(t) = (1 - t, t))."),
    ("bezier", "bezier:BezierPath",
     "Bezier curve of ``degree`` (default 2: one free control state), fitted by minimising E_t "
     "L(phi(t))."),
    ("polychain", "polychain:PolychainPath",
     "Polygonal chain through ``bends`` free states (default 1), fitted by minimising E_t "
     "L(phi(t)); give the bends as ``controls`` (and ``steps=0``) to draw a chain through fixed "
     "states."),
    ("layerwise", "layerwise:LayerwisePath",
     "Interpolate the layers chosen by exactly one of ``layers`` (names or patterns, e.g. "
     "``[\"hidden.1\"]`` or ``[\"hidden.*\"]``), ``prefix`` (the first k layers, input side) or "
     "``suffix`` (the last k layers); the others stay at ``anchor`` (``\"a\"`` or ``\"b\"``)."),
    ("star", "star:StarPath",
     "A fitted centre and the N lines to the models."),
    ("plane", "plane:PlanePath",
     "A plane of states with a ``grid`` x ``grid`` lattice."),
)
"""(name, "module:Class" inside this package, summary) of every entry."""


@hookimpl
def register_paths(register):
    for name, target, summary in ENTRIES:
        register(name, f"{__name__}.{target}", summary)
