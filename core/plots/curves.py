"""Pictures of a results file: loss and error along every path (one figure per model set),
and the landscape pictures of :mod:`ridgeline.core.landscape_plots` for the metrics that have
one (layer-wise barrier heatmaps, plane contours with the paths drawn on them, measured versus
predicted barriers)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ridgeline.core.results.readers import read_curves, read_summaries

CURVE_METRICS = {"loss_barrier": ("loss", "test loss"), "error_barrier": ("error", "test error (%)")}


def plot_curves(results: str | Path, out_dir: str | Path, *, fmt: str = "png") -> list[Path]:
    """One figure per model set: loss and error against t, a line per aligner/correction/path.

    Returns the files written (``<pair>_curves.<fmt>``).
    """
    rows = read_curves(results)
    curves: dict[str, dict[tuple, dict]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        if row["metric"] not in CURVE_METRICS:
            continue
        column, _ = CURVE_METRICS[row["metric"]]
        label = (row["aligner"], row["correction"], row["path"], row["segment"])
        curves[row["pair"]][label].setdefault(row["metric"], []).append((row["t"], row[column]))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for pair, by_label in curves.items():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
        # one colour per aligner, one line style per correction, so overlays stay readable
        aligners = list(dict.fromkeys(label[0] for label in by_label))
        corrections = sorted({label[1] for label in by_label}, key=lambda c: (c != "none", c))
        palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        styles = ["-", "--", ":", "-."]
        for label, series in by_label.items():
            name = " / ".join(p for p in label if p not in ("none", "line", "linear"))
            style = {"color": palette[aligners.index(label[0]) % len(palette)],
                     "linestyle": styles[corrections.index(label[1]) % len(styles)]}
            for ax, metric in zip(axes, CURVE_METRICS):
                if metric not in series:
                    continue
                points = sorted(series[metric])
                scale = 100.0 if metric == "error_barrier" else 1.0
                ax.plot([p[0] for p in points], [scale * p[1] for p in points], marker=".",
                        label=name or label[0], **style)
        for ax, (_, ylabel) in zip(axes, CURVE_METRICS.values()):
            ax.set_xlabel("t (0 = model A, 1 = model B)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
        drawn = [ax for ax in axes if ax.lines]
        if drawn:
            drawn[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        fig.suptitle(f"{pair}: along the path")
        path = out_dir / f"{pair.replace('/', '_')}_curves.{fmt}"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
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
    :data:`LANDSCAPE_PICTURES`. Returns the files written."""
    from ridgeline.core.plots import landscape as landscape_plots

    written = plot_curves(results, out_dir, fmt=fmt)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in read_curves(results):
        if row["metric"] in LANDSCAPE_PICTURES and not STEP_PAIR.match(row["pair"]):
            key = (row["metric"], row["pair"], row["aligner"], row["correction"], row["path"], row["segment"])
            groups[key].append(row)
    for (metric, *where), rows in groups.items():
        function, options = LANDSCAPE_PICTURES[metric]
        name = "_".join(w for w in where if w not in ("none", "line")).replace("/", "_")
        title = f"{metric}: " + " / ".join(w for w in where if w not in ("none", "line"))
        out = Path(out_dir) / f"{name}_{metric}.{fmt}"
        written.append(getattr(landscape_plots, function)(rows, out, title=title, **options))
    return written + plot_training_time(results, out_dir, fmt=fmt)


STEP_PAIR = re.compile(r"^(?P<base>.+)@step(?P<step>\d+)$")


def plot_training_time(results: str | Path, out_dir: str | Path, *, fmt: str = "png") -> list[Path]:
    """For model sets expanded from checkpoint series (``<name>@step<N>``): the loss and error
    barriers against the training step (one line per aligner/correction/path), and the
    single-layer barriers as a layers x step heatmap."""
    from ridgeline.core.plots import landscape as landscape_plots

    summaries: dict[str, dict[tuple, list[tuple[int, str, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in read_summaries(results):
        match = STEP_PAIR.match(row["pair"])
        if match and row["metric"] in CURVE_METRICS:
            label = (row["aligner"], row["correction"], row["path"], row["segment"])
            summaries[match["base"]][label].append((int(match["step"]), row["metric"], row["barrier"]))
    written = []
    for base, by_label in summaries.items():
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        for label, points in by_label.items():
            name = " / ".join(p for p in label if p not in ("none", "line", "linear")) or label[0]
            for ax, metric in zip(axes, CURVE_METRICS):
                series = sorted((s, b) for s, m, b in points if m == metric)
                scale = 100.0 if metric == "error_barrier" else 1.0
                ax.plot([s for s, _ in series], [scale * b for _, b in series], marker="o", label=name)
        for ax, ylabel in zip(axes, ("loss barrier", "error barrier (pp)")):
            ax.set_xlabel("training step")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
        fig.suptitle(f"{base}: barriers over training")
        path = Path(out_dir) / f"{base}_barrier_vs_step.{fmt}"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    layers: dict[tuple, list[dict]] = defaultdict(list)
    for row in read_curves(results):
        match = STEP_PAIR.match(row["pair"])
        if match and row["metric"] == "layerwise_barrier":
            key = (match["base"], row["aligner"], row["correction"], row["path"], row["segment"])
            layers[key].append({**row, "step": int(match["step"])})
    for key, rows in layers.items():
        name = "_".join(k for k in key if k not in ("none", "line"))
        written.append(landscape_plots.layer_heatmap(
            sorted(rows, key=lambda r: r["step"]), Path(out_dir) / f"{name}_layers_vs_step.{fmt}",
            x="step", value="barrier_a", title=f"single-layer barriers over training: {name}"))
    return written
