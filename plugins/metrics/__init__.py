"""Metric plugins: ``loss_barrier`` and ``error_barrier``."""

from ridgeline.core.plugins import hookimpl
from ridgeline.plugins.metrics.barrier import ErrorBarrier, LossBarrier


@hookimpl
def register_metrics(register):
    register("loss_barrier", LossBarrier)
    register("error_barrier", ErrorBarrier)
