"""Barrier distributions over a sweep's seeds: for every sweep (a model set with ``pairs =
"all"`` or ``"first"``), the loss and error barriers of each pair as dots, with their mean and
standard deviation, one column per aligner (and per correction and path beside it)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ridgeline.core.plots.saving import metric_splits, provenance, save_figure
from ridgeline.core.results.tables import report_rows, sweep_names, sweep_of, sweep_rows

PANELS = (("loss_barrier", "loss barrier", 1.0), ("error_barrier", "error barrier (pp)", 100.0))


def plot_sweeps(results: str | Path, out_dir: str | Path, *, fmt: str = "png") -> list[Path]:
    """One figure per sweep (``<sweep>_barriers.<fmt>``): each pair's barrier as a dot, the
    mean over pairs as a bar end with the standard deviation as an error bar; aligners along
    the x axis, one colour per correction/path/segment. Returns the files written."""
    sweeps = sweep_names(results)
    if not sweeps:
        return []
    rows = report_rows(results)
    summary = {(r["sweep"], r["aligner"], r["correction"], r["path"], r["segment"]): r
               for r in sweep_rows(results, rows)}
    values: dict[str, dict[tuple, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        sweep = sweep_of(row["pair"], sweeps)
        if sweep is not None and "error" not in row:
            values[sweep][(row["aligner"], row["correction"], row["path"], row["segment"])].append(row)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    splits = metric_splits(results)
    measured = {splits[q][1] for q, _, _ in PANELS if q in splits}
    split = " and ".join(sorted(measured)) or "test"
    source = provenance(results)
    for sweep, by_key in values.items():
        aligners = list(dict.fromkeys(k[0] for k in by_key))
        variants = list(dict.fromkeys(k[1:] for k in by_key))
        width = 0.8 / len(variants)
        fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.6 * len(aligners) * 2), 4.5),
                                 constrained_layout=True)
        for ax, (quantity, ylabel, scale) in zip(axes, PANELS):
            for v, variant in enumerate(variants):
                name = " / ".join(p for p in variant if p not in ("none", "line")) or "linear"
                colour = palette[v % len(palette)]
                for a, aligner in enumerate(aligners):
                    members = by_key.get((aligner, *variant), [])
                    if not members:
                        continue
                    x = a - 0.4 + width * (v + 0.5)
                    points = [scale * m.get(quantity, float("nan")) for m in members]
                    jitter = [x + width * 0.3 * ((i % 5) - 2) / 2 for i in range(len(points))]
                    ax.scatter(jitter, points, s=12, color=colour, alpha=0.5, linewidths=0)
                    group = summary[(sweep, aligner, *variant)]
                    ax.errorbar([x], [scale * group[f"{quantity}_mean"]],
                                yerr=[scale * group[f"{quantity}_std"]] if group["pairs"] > 1 else None,
                                fmt="o", color=colour, capsize=4, markersize=6,
                                label=name if a == 0 else None)
            ax.set_xticks(range(len(aligners)), aligners, rotation=20, ha="right")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3, axis="y")
        if len(variants) > 1:
            axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        pairs = max(len(m) for m in by_key.values())
        title = (f"{sweep}: loss and error barriers, {split} split, over {pairs} pairs (dots), "
                 "mean ± standard deviation")
        fig.suptitle(title)
        path = out_dir / f"{sweep.replace('/', '_')}_barriers.{fmt}"
        written.append(save_figure(fig, path, title=title, source=source))
    return written
