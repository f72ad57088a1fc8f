"""Path plugins: ``linear``, ``bezier``, ``polychain``, ``layerwise``, ``star``, ``plane``."""

from ridgeline.core import hookimpl
from ridgeline.plugins.paths.bezier import BezierPath
from ridgeline.plugins.paths.layerwise import LayerwisePath
from ridgeline.plugins.paths.linear import LinearPath
from ridgeline.plugins.paths.plane import PlanePath
from ridgeline.plugins.paths.polychain import PolychainPath
from ridgeline.plugins.paths.star import StarPath


@hookimpl
def register_paths(register):
    register("linear", LinearPath)
    register("bezier", BezierPath)
    register("polychain", PolychainPath)
    register("layerwise", LayerwisePath)
    register("star", StarPath)
    register("plane", PlanePath)
