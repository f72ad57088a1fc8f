"""Aligner plugins: ``identity``, ``weight_matching``, ``activation_matching``, ``ste``,
``sinkhorn``, ``ot_fusion``, ``zipit``, ``merge_many``, ``tree_matching`` and ``msmoe``."""

from ridgeline.core import hookimpl
from ridgeline.plugins.aligners.activation_matching import ActivationMatchingAligner
from ridgeline.plugins.aligners.identity import IdentityAligner
from ridgeline.plugins.aligners.merge_many import MergeManyAligner
from ridgeline.plugins.aligners.msmoe import MSMoEAligner
from ridgeline.plugins.aligners.ot_fusion import OTFusionAligner
from ridgeline.plugins.aligners.sinkhorn import SinkhornAligner
from ridgeline.plugins.aligners.ste import STEAligner
from ridgeline.plugins.aligners.tree_matching import TreeMatchingAligner
from ridgeline.plugins.aligners.weight_matching import WeightMatchingAligner
from ridgeline.plugins.aligners.zipit import ZipItAligner


@hookimpl
def register_aligners(register):
    register("identity", IdentityAligner)
    register("weight_matching", WeightMatchingAligner)
    register("activation_matching", ActivationMatchingAligner)
    register("ste", STEAligner)
    register("sinkhorn", SinkhornAligner)
    register("ot_fusion", OTFusionAligner)
    register("zipit", ZipItAligner)
    register("merge_many", MergeManyAligner)
    register("tree_matching", TreeMatchingAligner)
    register("msmoe", MSMoEAligner)
