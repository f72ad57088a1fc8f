"""Views of results as figures (public, for scripts): curves along paths, barriers over training
time, barrier distributions over a sweep's seeds, and the landscape pictures (layer heatmaps,
plane contours, measured versus predicted barriers). Names load lazily, so importing this
package does not import matplotlib."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ridgeline.core._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("plot_results", "plot_curves", "plot_training_time"), "ridgeline.core.plots.curves"),
    **dict.fromkeys(("layer_heatmap", "landscape_contour", "barrier_scatter"),
                    "ridgeline.core.plots.landscape"),
    "plot_sweeps": "ridgeline.core.plots.sweeps",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ridgeline.core.plots.curves import plot_curves, plot_results, plot_training_time
    from ridgeline.core.plots.landscape import barrier_scatter, landscape_contour, layer_heatmap
    from ridgeline.core.plots.sweeps import plot_sweeps
