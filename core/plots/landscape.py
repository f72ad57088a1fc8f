"""Pictures of the landscape from tidy rows (lists of dicts, as ``read_curves`` or
:func:`ridgeline.core.run.trajectory.measure_trajectory` return them).

* :func:`layer_heatmap` - layer-wise barriers, layers x anchor or layers x training step;
* :func:`landscape_contour` - loss (or error) over a ``plane`` with the curves drawn on it;
* :func:`barrier_scatter` - measured versus predicted (second-order) barrier, one dot per layer.

Each writes one figure to ``out``; its suffix picks the format (``.png``, ``.pdf`` or ``.svg``,
PNG when there is none) and the written path is returned. ``source`` (from
:func:`ridgeline.core.plots.saving.provenance`) names the results file and config in the figure's
metadata.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors

from ridgeline.core.plots.saving import save_figure

Rows = Iterable[Mapping[str, Any]]


def _save(fig: Any, out: str | Path, title: str, source: Mapping[str, str] | None) -> Path:
    return save_figure(fig, out, title=title, source=source, dpi=130)


def layer_heatmap(rows: Rows, out: str | Path, *, value: str = "barrier", x: str = "anchor",
                  layer: str = "label", scale: float = 1.0, title: str = "",
                  source: Mapping[str, str] | None = None) -> Path:
    """A layers x columns heatmap of layer-wise barriers (``layerwise_barrier`` rows).

    ``x="anchor"``: two columns, the others held at A and at B, from ``<value>_a`` and
    ``<value>_b`` (``value`` ``"barrier"`` or ``"error_barrier"``). Any other ``x`` (e.g.
    ``"step"`` for :func:`measure_trajectory` rows): one column per distinct value of ``x``,
    cells from the column ``value`` (e.g. ``"barrier_a"``). ``scale`` multiplies the numbers
    (100 for errors in percent). Layers keep their first-seen (model) order.
    """
    cells: dict[tuple[str, Any], float] = {}
    layers: list[str] = []
    xs: list[Any] = []
    for row in rows:
        name = str(row[layer])
        if name not in layers:
            layers.append(name)
        if x == "anchor":
            for anchor in ("a", "b"):
                cells[(name, anchor.upper())] = float(row[f"{value}_{anchor}"])
        else:
            cells[(name, row[x])] = float(row[value])
            if row[x] not in xs:
                xs.append(row[x])
    xs = ["A", "B"] if x == "anchor" else sorted(xs)
    if not layers:
        raise ValueError("layer_heatmap got no rows")
    matrix = np.array([[cells.get((name, c), math.nan) * scale for c in xs] for name in layers])
    fig, ax = plt.subplots(figsize=(max(4.8, 2.4 + 0.7 * len(xs)), 1.6 + 0.45 * len(layers)),
                           constrained_layout=True)
    bound = float(np.nanmax(np.abs(matrix))) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_yticks(range(len(layers)), layers)
    ax.set_xticks(range(len(xs)), [str(c) for c in xs], rotation=45 if x != "anchor" else 0)
    ax.set_xlabel({"anchor": "other layers held at", "step": "training step"}.get(x, x))
    ax.set_ylabel("layer averaged")
    for i in range(len(layers)):
        for j in range(len(xs)):
            if math.isfinite(matrix[i, j]) and len(xs) * len(layers) <= 120:
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label=value + (f" (x{scale:g})" if scale != 1.0 else ""))
    title = title or f"layer-wise {value}"
    ax.set_title(title, fontsize=10)
    return _save(fig, out, title, source)


def landscape_contour(rows: Rows, out: str | Path, *, value: str = "loss", curve: str = "path",
                      title: str = "", log: bool = True, source: Mapping[str, str] | None = None) -> Path:
    """Filled contours of ``value`` over a plane (``landscape`` rows with ``on_path == 0``),
    and every curve drawn on it (rows with ``on_path == 1``, one line per distinct ``curve``
    key, in ``t`` order, its ends marked). ``log`` spaces the levels logarithmically."""
    grid: list[tuple[float, float, float]] = []
    curves: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for row in rows:
        if float(row.get("on_path", 0.0)) == 0.0:
            grid.append((float(row["u"]), float(row["v"]), float(row[value])))
        else:
            curves[str(row.get(curve, ""))].append((float(row["t"]), float(row["u"]), float(row["v"])))
    if len(grid) < 3:
        raise ValueError("landscape_contour needs the plane's lattice rows (on_path == 0)")
    u, v, z = (np.array(c) for c in zip(*grid))
    finite = np.isfinite(z)
    fig, ax = plt.subplots(figsize=(6.4, 5.2), constrained_layout=True)
    zf = z[finite]
    if log and zf.min() > 0:
        levels = np.geomspace(zf.min(), zf.max(), 24)
        norm = colors.LogNorm(vmin=zf.min(), vmax=zf.max())
    else:
        levels, norm = np.linspace(zf.min(), zf.max(), 24), None
    filled = ax.tricontourf(u[finite], v[finite], zf, levels=levels, norm=norm, cmap="viridis")
    fig.colorbar(filled, ax=ax, label=value, ticks=levels[::3], format="%.3g")
    for name, points in curves.items():
        points.sort()
        cu, cv = [p[1] for p in points], [p[2] for p in points]
        line, = ax.plot(cu, cv, lw=2, label=name or "path")
        ax.plot([cu[0], cu[-1]], [cv[0], cv[-1]], "o", color=line.get_color(), ms=6)
    if curves:
        ax.legend(fontsize=8, loc="best")
    ax.set_xlabel("u (plane coordinate)")
    ax.set_ylabel("v (plane coordinate)")
    title = title or f"{value} over the plane"
    ax.set_title(title)
    return _save(fig, out, title, source)


def barrier_scatter(rows: Rows, out: str | Path, *, measured: str = "measured",
                    predicted: str | Sequence[str] = "predicted", label: str = "label",
                    title: str = "", source: Mapping[str, str] | None = None) -> Path:
    """Measured against predicted barrier (``taylor_barrier`` rows), one dot per row, with
    the line y = x; several ``predicted`` columns give one marker series each."""
    rows = list(rows)
    if not rows:
        raise ValueError("barrier_scatter got no rows")
    columns = [predicted] if isinstance(predicted, str) else list(predicted)
    fig, ax = plt.subplots(figsize=(5.4, 5.0), constrained_layout=True)
    every = []
    for column in columns:
        xs = [float(r[column]) for r in rows]
        ys = [float(r[measured]) for r in rows]
        every += xs + ys
        ax.scatter(xs, ys, label=column, s=28)
        if column == columns[0]:
            for r, xv, yv in zip(rows, xs, ys):
                ax.annotate(str(r.get(label, "")), (xv, yv), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
    finite = [e for e in every if math.isfinite(e)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set_xlabel("predicted barrier, -(1/8) Δᵀ H Δ")
    ax.set_ylabel("measured barrier")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    title = title or "measured vs second-order predicted barrier"
    ax.set_title(title)
    return _save(fig, out, title, source)
