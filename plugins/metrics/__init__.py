"""Metric plugins: ``loss_barrier``, ``error_barrier``, ``layerwise_barrier``, ``taylor_barrier``,
``curvature``, ``gradient``, ``geometry``, ``disagreement``, ``landscape``, ``input_connectivity``."""

from ridgeline.core import hookimpl
from ridgeline.plugins.metrics.barrier import ErrorBarrier, LossBarrier
from ridgeline.plugins.metrics.curvature import Curvature
from ridgeline.plugins.metrics.disagreement import Disagreement
from ridgeline.plugins.metrics.geometry import Geometry
from ridgeline.plugins.metrics.gradient import Gradient
from ridgeline.plugins.metrics.input_space import InputConnectivity
from ridgeline.plugins.metrics.landscape import Landscape
from ridgeline.plugins.metrics.layerwise import LayerwiseBarrier
from ridgeline.plugins.metrics.taylor import TaylorBarrier


@hookimpl
def register_metrics(register):
    register("loss_barrier", LossBarrier)
    register("error_barrier", ErrorBarrier)
    register("layerwise_barrier", LayerwiseBarrier)
    register("taylor_barrier", TaylorBarrier)
    register("curvature", Curvature)
    register("gradient", Gradient)
    register("geometry", Geometry)
    register("disagreement", Disagreement)
    register("landscape", Landscape)
    register("input_connectivity", InputConnectivity)
