"""Start-up stays instant: listing entries, ``--help`` and validating a pipeline's names import no
implementation (entries are registered lazily by import path), checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "timm", "torchvision", "scipy", "h5py")

LISTING = """
import contextlib, io, json, sys
from ridgeline.core.cli.parser import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    main({argv!r})
implementations = [m for m in sys.modules
                   if m.startswith("ridgeline.plugins.") and m.count(".") > 2]
print(json.dumps({{"heavy": [m for m in {heavy!r} if m in sys.modules],
                  "implementations": implementations, "lines": len(out.getvalue().splitlines())}}))
"""


def run_fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["list"], ["list", "models", "t*"]], ids=" ".join)
def test_ridgeline_list_imports_no_implementation(argv):
    found = run_fresh(LISTING.format(argv=argv, heavy=HEAVY))
    assert found["lines"] > 1
    assert found["heavy"] == [], f"`ridgeline {' '.join(argv)}` imported {found['heavy']}"
    assert found["implementations"] == []


def test_validating_a_pipeline_imports_neither_timm_nor_torchvision():
    code = """
import json, sys
from ridgeline.core.plugin_host.host import registries
from ridgeline.core.run.config import PipelineConfig
config = PipelineConfig.from_dict({
    "dataset": {"name": "synthetic"}, "model": {"name": "timm", "arch": "resnet18"},
    "pairs": [{"seeds": [0, 1]}], "aligners": ["weight_matching", "activation_matching"],
    "corrections": [[], ["bn_reset", "repair"]], "metrics": ["loss_barrier", "curvature"]})
config.check_names(registries())
print(json.dumps({"heavy": [m for m in ("timm", "torchvision") if m in sys.modules]}))
"""
    assert run_fresh(code)["heavy"] == []
