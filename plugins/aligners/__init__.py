"""Aligner plugins: ``identity``, ``weight_matching``, ``activation_matching``, ``ste``,
``sinkhorn``, ``ot_fusion``, ``zipit``, ``merge_many``, ``tree_matching`` and ``msmoe``.

Each entry is registered by import path with its summary (the first sentence of its class
docstring), so listing entries imports none of them.
"""

from ridgeline.core import hookimpl

ENTRIES = (
    ("identity", "identity:IdentityAligner",
     "Leave ``other`` as it is (the naive interpolation baseline)."),
    ("weight_matching", "weight_matching:WeightMatchingAligner",
     "Git Re-Basin weight matching (Alg. 1): coordinate descent of linear assignments."),
    ("activation_matching", "activation_matching:ActivationMatchingAligner",
     "Correlation (or inner-product) matching of activations on ``split`` (default: the "
     "context's split), from up to ``examples`` examples."),
    ("ste", "ste:STEAligner",
     "Straight-through estimator: ``steps`` Adam steps of rate ``lr`` on mini-batches of "
     "``batch_size``; ``t`` is ``midpoint`` or ``random``; each projection runs weight "
     "matching (``max_iter`` sweeps, warm-started from the previous permutation)."),
    ("sinkhorn", "sinkhorn:SinkhornAligner",
     "Sinkhorn re-basin: ``objective`` in {distance, midpoint, random_t}, ``steps`` Adam steps "
     "of rate ``lr`` on the logits, temperature ``tau``, ``iters`` Sinkhorn rounds, "
     "mini-batches of ``batch_size`` from the context's split; ``tol`` and ``window`` define "
     "convergence."),
    ("ot_fusion", "ot_fusion:OTFusionAligner",
     "OT alignment ``on`` weights or activations with the ``emd`` or ``sinkhorn`` solver "
     "(entropic ``reg`` relative to the largest cost, ``iters`` iterations)."),
    ("zipit", "zipit:ZipItAligner",
     "ZipIt! merging on activation correlations over ``split``; ``stop`` for partial zipping, "
     "``within`` to allow within-model merges."),
    ("merge_many", "merge_many:MergeManyAligner",
     "MergeMany for two models (the pipeline's pairwise use); for N models call "
     ":func:`merge_many`."),
    ("tree_matching", "tree_matching:TreeMatchingAligner",
     "Tree ensembles: subtree flips and level orders per tree pair, then trees by assignment."),
    ("msmoe", "msmoe:MSMoEAligner",
     "M-SMoE: merge each MoE layer's experts into groups led by the most used (Li et al. "
     "2024)."),
)
"""(name, "module:Class" inside this package, summary) of every entry."""


@hookimpl
def register_aligners(register):
    for name, target, summary in ENTRIES:
        register(name, f"{__name__}.{target}", summary)
