"""Correction plugins: ``bn_reset``."""

from ridgeline.core.plugins import hookimpl
from ridgeline.plugins.corrections.bn_reset import BatchNormReset


@hookimpl
def register_corrections(register):
    register("bn_reset", BatchNormReset)
