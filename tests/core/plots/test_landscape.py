"""Landscape pictures: each function writes a readable figure in the format the suffix asks for."""

from __future__ import annotations

import pytest

from ridgeline.core.plots.landscape import barrier_scatter, landscape_contour, layer_heatmap

PNG, PDF = b"\x89PNG", b"%PDF"


def layer_rows():
    return [{"label": name, "barrier_a": a, "barrier_b": b, "step": step}
            for step in (10, 20) for name, a, b in (("hidden.0", 0.4, 0.1), ("head", -0.05, 0.2))]


def test_layer_heatmap_by_anchor_and_by_step(tmp_path):
    rows = layer_rows()[:2]
    assert layer_heatmap(rows, tmp_path / "anchor.png").read_bytes().startswith(PNG)
    out = layer_heatmap(layer_rows(), tmp_path / "steps.pdf", x="step", value="barrier_a")
    assert out.suffix == ".pdf" and out.read_bytes().startswith(PDF)


def test_landscape_contour_draws_lattice_and_curves(tmp_path):
    rows = [{"u": u, "v": v, "on_path": 0.0, "loss": 1.0 + u * u + v * v}
            for u in (-1.0, 0.0, 1.0, 2.0) for v in (-1.0, 0.0, 1.0)]
    rows += [{"u": t, "v": t * (1 - t), "t": t, "on_path": 1.0, "loss": 1.0, "path": "bezier"}
             for t in (0.0, 0.5, 1.0)]
    out = landscape_contour(rows, tmp_path / "plane")
    assert out.name == "plane.png" and out.read_bytes().startswith(PNG)
    with pytest.raises(ValueError, match="lattice"):
        landscape_contour(rows[-3:], tmp_path / "none.png")


def test_barrier_scatter(tmp_path):
    rows = [{"label": "all", "measured": 0.7, "predicted_mid": 4.8, "predicted_a": -2.5},
            {"label": "hidden.0", "measured": -3.0, "predicted_mid": 0.1, "predicted_a": -0.3}]
    out = barrier_scatter(rows, tmp_path / "scatter.pdf", predicted=["predicted_mid", "predicted_a"])
    assert out.read_bytes().startswith(PDF)
    with pytest.raises(ValueError, match="no rows"):
        barrier_scatter([], tmp_path / "empty.png")
