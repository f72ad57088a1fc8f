"""Aligner plugins: ``identity`` and ``weight_matching``."""

from ridgeline.core.plugins import hookimpl
from ridgeline.plugins.aligners.identity import IdentityAligner
from ridgeline.plugins.aligners.weight_matching import WeightMatchingAligner


@hookimpl
def register_aligners(register):
    register("identity", IdentityAligner)
    register("weight_matching", WeightMatchingAligner)
