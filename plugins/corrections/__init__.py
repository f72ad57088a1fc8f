"""Correction plugins: ``bn_reset`` and ``repair``."""

from ridgeline.core import hookimpl
from ridgeline.plugins.corrections.bn_reset import BatchNormReset
from ridgeline.plugins.corrections.repair import Repair


@hookimpl
def register_corrections(register):
    register("bn_reset", BatchNormReset)
    register("repair", Repair)
