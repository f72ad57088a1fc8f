"""Pictures of a results file: loss and error along every path (one figure per model set and
split), and the landscape pictures of :mod:`ridgeline.core.plots.landscape` for the metrics that
have one (layer-wise barrier heatmaps, plane contours with the paths drawn on them, measured
versus predicted barriers).

Curves are told apart by three channels, the same in every curve figure: colour = aligner,
line style = path (a multi-line path's segments get a style each), marker = correction. The
legend explains all three; the title names the model set, the split and the metrics; the
metadata name the results file and its pipeline config (:mod:`ridgeline.core.plots.saving`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from ridgeline.core.plots.saving import config_order, metric_splits, provenance, save_figure
from ridgeline.core.plots.sweeps import plot_sweeps
from ridgeline.core.results.readers import read_curves, read_summaries

CURVE_METRICS = {"loss_barrier": ("loss", "loss"), "error_barrier": ("error", "error (%)")}
"""metric -> (the column drawn, its axis label); errors are drawn in percent."""

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")
LINE_STYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)),
                                (0, (1, 3)), (0, (8, 3, 2, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _assign(values: Sequence[str], known: Sequence[str], options: Sequence[Any]) -> dict[str, Any]:
    ordered = [v for v in known if v in values] + sorted(v for v in set(values) if v not in known)
    return {v: options[i % len(options)] for i, v in enumerate(ordered)}


def _path_key(curve: Mapping[str, Any]) -> str:
    return curve["path"] if curve["segment"] == "line" else f"{curve['path']} {curve['segment']}"


def curve_figure(curves: Sequence[Mapping[str, Any]], *, pair: str, split: str,
                 order: Mapping[str, Sequence[str]] | None = None, over_training: bool = False) -> Any:
    """One figure of ``curves`` (mappings with ``aligner``, ``correction``, ``path``,
    ``segment``, ``metric`` (``loss_barrier`` or ``error_barrier``), ``t`` and ``value``): an
    axis per metric present, colour = aligner, line style = path, marker = correction, a legend
    saying all three and a title naming ``pair``, ``split`` and the metrics. ``order`` (as
    :func:`config_order`) fixes which style each name gets. ``over_training``: ``t`` is the
    training step and ``value`` the barrier. Returns the open figure."""
    order = order or {}
    metrics = [m for m in CURVE_METRICS if any(c["metric"] == m for c in curves)]
    colour = _assign([c["aligner"] for c in curves], order.get("aligner", ()), COLOURS)
    style = _assign([_path_key(c) for c in curves], order.get("path", ()), LINE_STYLES)
    marker = _assign([c["correction"] for c in curves], order.get("correction", ()), MARKERS)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics) + 2.4, 4.5),
                             constrained_layout=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        scale = 100.0 if metric == "error_barrier" else 1.0
        for curve in (c for c in curves if c["metric"] == metric):
            points = sorted(zip(curve["t"], curve["value"]))
            ax.plot([p[0] for p in points], [scale * p[1] for p in points],
                    color=colour[curve["aligner"]], linestyle=style[_path_key(curve)],
                    marker=marker[curve["correction"]], markersize=4, linewidth=1.5,
                    label=f"{curve['aligner']} / {_path_key(curve)} / {curve['correction']}")
        quantity = CURVE_METRICS[metric][1]
        if over_training:
            quantity = f"{CURVE_METRICS[metric][0]} barrier" + (" (pp)" if scale != 1.0 else "")
        ax.set_title(f"{metric}: {split} {quantity}", fontsize=10)
        ax.set_xlabel("training step" if over_training else "t (0 = model A, 1 = model B)")
        ax.set_ylabel(f"{split} {quantity}")
        ax.grid(alpha=0.3)
    headers = ("colour = aligner", "line style = path", "marker = correction")
    handles = [Line2D([], [], linestyle="none", label=headers[0])]
    handles += [Line2D([], [], color=c, linewidth=2, label=name) for name, c in colour.items()]
    handles.append(Line2D([], [], linestyle="none", label=headers[1]))
    handles += [Line2D([], [], color="0.25", linestyle=s, label=name) for name, s in style.items()]
    handles.append(Line2D([], [], linestyle="none", label=headers[2]))
    handles += [Line2D([], [], color="0.25", linestyle="none", marker=m, label=name)
                for name, m in marker.items()]
    legend = axes[0][-1].legend(handles=handles, fontsize=8, loc="upper left",
                                bbox_to_anchor=(1.02, 1.0), frameon=False)
    for text in legend.get_texts():
        if text.get_text() in headers:
            text.set_fontweight("bold")
    where = "over training" if over_training else "along the paths"
    fig.suptitle(f"{pair}: {' and '.join(metrics)} {where}, {split} split")
    return fig


def _add_point(curves: dict[tuple, dict[str, Any]], row: Mapping[str, Any], metric: str, t: float,
               value: float) -> None:
    """Append ``(t, value)`` to the curve of ``row`` (its aligner, correction, path, segment and
    metric label) in ``curves``, made if new in the form :func:`curve_figure` takes (``metric``:
    the registry name, a key of :data:`CURVE_METRICS`)."""
    key = (row["aligner"], row["correction"], row["path"], row["segment"], row["metric"])
    curve = curves.setdefault(key, {
        "aligner": row["aligner"], "correction": row["correction"], "path": row["path"],
        "segment": row["segment"], "metric": metric, "t": [], "value": []})
    curve["t"].append(t)
    curve["value"].append(value)


def plot_curves(results: str | Path, out_dir: str | Path, *, fmt: str = "png") -> list[Path]:
    """One figure per model set and split (:func:`curve_figure`): loss and error against t.

    Returns the files written: ``<pair>_curves.<fmt>``, or ``<pair>_<split>_curves.<fmt>``
    when the file has curves on several splits.
    """
    splits = metric_splits(results)
    groups: dict[tuple[str, str], dict[tuple, dict[str, Any]]] = defaultdict(dict)
    for row in read_curves(results):
        name, split = splits.get(row["metric"], (row["metric"], "test"))
        if name not in CURVE_METRICS:
            continue
        _add_point(groups[(row["pair"], split)], row, name, row["t"], row[CURVE_METRICS[name][0]])
    if not groups:
        return []
    out_dir = Path(out_dir)
    source, order = provenance(results), config_order(results)
    several = len({split for _, split in groups}) > 1
    written = []
    for (pair, split), curves in groups.items():
        fig = curve_figure(list(curves.values()), pair=pair, split=split, order=order)
        name = f"{pair}_{split}" if several else pair
        written.append(save_figure(fig, out_dir / f"{name.replace('/', '_')}_curves.{fmt}",
                                   title=fig.get_suptitle(), source=source))
    return written


# metric -> (picture, keyword options); one figure per curve that carries the metric
LANDSCAPE_PICTURES = {
    "layerwise_barrier": ("layer_heatmap", {}),
    "landscape": ("landscape_contour", {"curve": "path"}),
    "taylor_barrier": ("barrier_scatter",
                       {"predicted": ["predicted", "predicted_mid", "predicted_a", "predicted_b"]}),
}


def plot_results(results: str | Path, out_dir: str | Path, *, fmt: str = "png") -> list[Path]:
    """Every picture the file's metrics support: :func:`plot_curves`, then one landscape
    picture per (pair, aligner, correction, path, segment) for each metric in
    :data:`LANDSCAPE_PICTURES`, the barrier distributions of every sweep
    (:func:`ridgeline.core.plots.sweeps.plot_sweeps`) and the barriers over training time.
    Returns the files written."""
    from ridgeline.core.plots import landscape as landscape_plots

    written = plot_curves(results, out_dir, fmt=fmt)
    splits, source = metric_splits(results), provenance(results)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in read_curves(results):
        if row["metric"] in LANDSCAPE_PICTURES and not STEP_PAIR.match(row["pair"]):
            key = (row["metric"], row["pair"], row["aligner"], row["correction"], row["path"], row["segment"])
            groups[key].append(row)
    for (metric, pair, *where), rows in groups.items():
        function, options = LANDSCAPE_PICTURES[metric]
        shown = [w for w in where if w not in ("none", "line")]
        name = "_".join([pair, *shown]).replace("/", "_")
        split = splits.get(metric, (metric, "default"))[1]
        title = f"{pair}: {metric}, {split} split ({' / '.join(shown)})"
        out = Path(out_dir) / f"{name}_{metric}.{fmt}"
        written.append(getattr(landscape_plots, function)(rows, out, title=title, source=source, **options))
    written += plot_sweeps(results, out_dir, fmt=fmt)
    return written + plot_training_time(results, out_dir, fmt=fmt)


STEP_PAIR = re.compile(r"^(?P<base>.+)@step(?P<step>\d+)$")


def plot_training_time(results: str | Path, out_dir: str | Path, *, fmt: str = "png") -> list[Path]:
    """For model sets expanded from checkpoint series (``<name>@step<N>``): the loss and error
    barriers against the training step (styled as :func:`curve_figure`: colour = aligner, line
    style = path, marker = correction), and the single-layer barriers as a layers x step heatmap."""
    from ridgeline.core.plots import landscape as landscape_plots

    splits, source, order = metric_splits(results), provenance(results), config_order(results)
    groups: dict[tuple[str, str], dict[tuple, dict[str, Any]]] = defaultdict(dict)
    for row in read_summaries(results):
        match = STEP_PAIR.match(row["pair"])
        name, split = splits.get(row["metric"], (row["metric"], "test"))
        if match and name in CURVE_METRICS:
            _add_point(groups[(match["base"], split)], row, name, int(match["step"]), row["barrier"])
    written = []
    several = len({split for _, split in groups}) > 1
    for (base, split), curves in groups.items():
        fig = curve_figure(list(curves.values()), pair=base, split=split, order=order, over_training=True)
        name = f"{base}_{split}" if several else base
        written.append(save_figure(fig, Path(out_dir) / f"{name}_barrier_vs_step.{fmt}",
                                   title=fig.get_suptitle(), source=source))
    layers: dict[tuple, list[dict]] = defaultdict(list)
    for row in read_curves(results):
        match = STEP_PAIR.match(row["pair"])
        if match and row["metric"] == "layerwise_barrier":
            key = (match["base"], row["aligner"], row["correction"], row["path"], row["segment"])
            layers[key].append({**row, "step": int(match["step"])})
    for key, rows in layers.items():
        name = "_".join(k for k in key if k not in ("none", "line"))
        split = splits.get("layerwise_barrier", ("layerwise_barrier", "default"))[1]
        written.append(landscape_plots.layer_heatmap(
            sorted(rows, key=lambda r: r["step"]), Path(out_dir) / f"{name}_layers_vs_step.{fmt}",
            x="step", value="barrier_a", source=source,
            title=f"{key[0]}: layerwise_barrier over training, {split} split ({' / '.join(key[1:])})"))
    return written
