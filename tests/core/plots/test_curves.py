"""Curve figures tell aligners, paths and corrections apart (colour, line style, marker), say so
in the legend, name pair, split and metric in the title, and carry their provenance."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from ridgeline.core.cli import main
from ridgeline.core.plots.curves import curve_figure, plot_curves
from ridgeline.core.results.readers import read_metadata


def _curves():
    out = []
    for aligner in ("identity", "weight_matching"):
        for path in ("linear", "polychain"):
            for correction in ("none", "repair"):
                for metric in ("loss_barrier", "error_barrier"):
                    out.append({"aligner": aligner, "path": path, "correction": correction,
                                "segment": "line", "metric": metric, "t": [0.0, 0.5, 1.0],
                                "value": [0.1, 0.4, 0.2]})
    return out


def test_curves_differ_by_colour_per_aligner_style_per_path_marker_per_correction():
    fig = curve_figure(_curves(), pair="seed0-seed1", split="test")
    assert len(fig.axes) == 2
    for ax in fig.axes:
        lines = ax.get_lines()
        assert len(lines) == 8
        by = {}
        for line in lines:
            aligner, path, correction = line.get_label().split(" / ")
            by.setdefault(("colour", aligner), set()).add(line.get_color())
            by.setdefault(("style", path), set()).add(str(line.get_linestyle()))
            by.setdefault(("marker", correction), set()).add(line.get_marker())
        for channel in ("colour", "style", "marker"):
            values = [v for (c, _), v in by.items() if c == channel]
            assert all(len(v) == 1 for v in values), f"one {channel} per name"
            assert len(set().union(*values)) == len(values), f"a different {channel} for each name"
        assert by[("style", "linear")] != by[("style", "polychain")]  # paths are told apart


def test_legend_says_all_three_and_title_names_pair_split_metric():
    fig = curve_figure(_curves(), pair="seed0-seed1", split="train")
    legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    for entry in ("colour = aligner", "line style = path", "marker = correction", "identity",
                  "weight_matching", "linear", "polychain", "none", "repair"):
        assert entry in legend
    assert fig.get_suptitle() == "seed0-seed1: loss_barrier and error_barrier along the paths, train split"
    assert [ax.get_title() for ax in fig.axes] == ["loss_barrier: train loss",
                                                   "error_barrier: train error (%)"]


def test_a_star_path_gives_each_segment_its_own_style():
    curves = [{"aligner": "identity", "path": "star", "correction": "none", "segment": segment,
               "metric": "loss_barrier", "t": [0.0, 1.0], "value": [0.0, 0.0]}
              for segment in ("centre-0", "centre-1")]
    figure = curve_figure(curves, pair="p", split="test")
    styles = {str(line.get_linestyle()) for line in figure.axes[0].lines}
    assert len(styles) == 2


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_plot_metadata_name_the_results_file_and_config(fmt, tiny_results, tmp_path, capsys):
    assert main(["plot", str(tiny_results), "--out", str(tmp_path), "--format", fmt]) == 0
    figure = tmp_path / f"seed0-seed1_curves.{fmt}"
    assert figure.is_file()
    config = json.dumps(read_metadata(tiny_results)["config"], sort_keys=True)
    source = str(tiny_results.resolve())
    if fmt == "png":
        text = Image.open(figure).text
        assert text["Source"] == source and text["Description"] == f"pipeline config {config}"
        assert "test split" in text["Title"]
    elif fmt == "svg":
        svg = figure.read_text()
        assert f"<dc:source>{source}</dc:source>" in svg
        assert re.search(r"<dc:description>pipeline config \{.*\}</dc:description>", svg)
    else:
        assert f"ridgeline results file {source}".encode() in figure.read_bytes()


def test_plot_curves_returns_nothing_without_curves(tmp_path, tiny_results, monkeypatch):
    import ridgeline.core.plots.curves as curves

    monkeypatch.setattr(curves, "read_curves", lambda results: [])
    assert plot_curves(tiny_results, tmp_path) == []
