"""examples/plugin-template is an installable third-party plugin: it is found through the
``ridgeline`` entry point (a dist-info folder, as pip would write) and runs in a pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from ridgeline.core.interfaces.aligner import AlignContext
from ridgeline.core.plugin_host.host import load_plugins
from ridgeline.core.results.readers import read_summaries
from ridgeline.core.run.config import PipelineConfig
from ridgeline.core.run.pipeline import Pipeline
from ridgeline.core.state import distance

TEMPLATE = Path(__file__).resolve().parents[2] / "examples" / "plugin-template"


def install_template(tmp_path, monkeypatch):
    import tomllib

    project = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())["project"]
    info = tmp_path / "ridgeline_template-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = [f"{k} = {v}" for k, v in project["entry-points"]["ridgeline"].items()]
    (info / "entry_points.txt").write_text("[ridgeline]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(TEMPLATE / "src"))
    monkeypatch.delitem(sys.modules, "ridgeline_template", raising=False)


def test_template_plugin_registers_through_the_entry_point_and_runs(tmp_path, monkeypatch):
    install_template(tmp_path, monkeypatch)
    host = load_plugins(autoload=True)
    entry = host.registries.aligners.entry("norm_matching")
    assert entry.plugin == "template" and host.versions["template"] == "0.1.0"

    model = host.registries.models.create("mlp", input_shape=(10,), num_classes=3, widths=[12, 12])
    spec = model.spec()
    a = model.init_state(0)
    b = spec.apply(a, spec.random(torch.Generator().manual_seed(0)))
    alignment = host.registries.aligners.create("norm_matching").align(a, b, spec, AlignContext())
    assert distance(a, alignment.apply(spec, b)) == 0.0

    config = PipelineConfig.from_dict({
        "output": str(tmp_path / "r.h5"),
        "dataset": {"name": "synthetic", "features": 10, "num_classes": 3},
        "model": {"name": "mlp", "widths": [12, 12]},
        "train": {"steps": 20},
        "pairs": [{"seeds": [0, 1]}],
        "aligners": ["identity", "norm_matching"],
        "metrics": [{"name": "loss_barrier", "grid": 3}],
    })
    output = Pipeline(config, progress=False, host=host).run()
    assert {r["aligner"] for r in read_summaries(output)} == {"identity", "norm_matching"}
    from ridgeline.core.results.readers import read_metadata

    assert read_metadata(output)["plugin_versions"]["template"] == "0.1.0"


def test_describe_names_a_third_party_entry_s_plugin_and_distribution(tmp_path, monkeypatch):
    from ridgeline.core.cli.describe import describe

    install_template(tmp_path, monkeypatch)
    text = describe(load_plugins(autoload=True), "aligners", "norm_matching")
    assert "plugin template, distribution ridgeline-template 0.1.0" in text
    assert "Match units by the rank of their weight norm" in text
    assert "Options\n  (none)" in text
