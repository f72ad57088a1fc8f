"""Metric plugins: ``loss_barrier``, ``error_barrier``, ``layerwise_barrier``, ``taylor_barrier``,
``curvature``, ``gradient``, ``geometry``, ``disagreement``, ``landscape``, ``input_connectivity``.

Each entry is registered by import path with its summary (the first sentence of its class
docstring), so listing entries imports none of them.
"""

from ridgeline.core import hookimpl

ENTRIES = (
    ("loss_barrier", "barrier:LossBarrier",
     "Loss barrier (chord and mean forms, midpoint) of cross-entropy along the path."),
    ("error_barrier", "barrier:ErrorBarrier",
     "Error barrier (chord and mean forms, midpoint) of classification error (a fraction)."),
    ("layerwise_barrier", "layerwise:LayerwiseBarrier",
     "Per layer (``mode=\"single\"``) or per growing prefix of layers (``\"cumulative\"``, in "
     "``order`` with ``seed``), the loss and error at the layer-averaged midpoint with the "
     "other layers at A and at B, and the barriers B_l against the endpoints' mean."),
    ("taylor_barrier", "taylor:TaylorBarrier",
     "Measured versus second-order predicted midpoint barrier, whole network and per layer, "
     "with finite-difference estimates that show where the quadratic model fails."),
    ("curvature", "curvature:Curvature",
     "Top Hessian eigenvalue and curvature along the path direction at chosen t."),
    ("gradient", "gradient:Gradient",
     "Gradient norm and its cosine with the path direction (the \"mountainside\") along the "
     "path."),
    ("geometry", "geometry:Geometry",
     "Distances, cosines, path length and spawn angle, whole network and per layer."),
    ("disagreement", "disagreement:Disagreement",
     "Fraction of inputs on which a path point and each endpoint predict differently."),
    ("landscape", "landscape:Landscape",
     "Loss and error over a plane's lattice, with the curve drawn on it (for contour plots)."),
    ("input_connectivity", "input_space:InputConnectivity",
     "Input-space connectivity (Vrabel et al. 2024): loss, confidence and barrier of a class "
     "along the line and a fitted curve between seeded same-class input pairs, for the network "
     "at ``t``."),
)
"""(name, "module:Class" inside this package, summary) of every entry."""


@hookimpl
def register_metrics(register):
    for name, target, summary in ENTRIES:
        register(name, f"{__name__}.{target}", summary)
