"""docs/results-format.md's reading snippets run as written: ridgeline's readers, pandas, the
exported CSV, plain h5py and R with hdf5r (each skipped only where its tool is not installed)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ridgeline.core.results.export import export_tables
from ridgeline.core.results.readers import read_summaries

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "results-format.md").read_text()
PYTHON = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)
R_SNIPPETS = re.findall(r"```r\n(.*?)```", DOC, flags=re.DOTALL)
HAS_PANDAS = importlib.util.find_spec("pandas") is not None


@pytest.fixture
def results_dir(tiny_results, tmp_path, monkeypatch):
    shutil.copy(tiny_results, tmp_path / "results.h5")
    export_tables(tmp_path / "results.h5", tmp_path, fmt="csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _barrier(path: Path) -> float:
    return next(r["barrier"] for r in read_summaries(path) if r["aligner"] == "weight_matching"
                and r["path"] == "linear" and r["metric"] == "loss_barrier")


def test_the_doc_has_the_snippets_it_promises():
    assert len(PYTHON) == 4 and len(R_SNIPPETS) == 1
    assert any("import h5py" in s and "ridgeline" not in s for s in PYTHON)
    assert any("hdf5r" in s for s in R_SNIPPETS)


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_snippet_runs(index, results_dir):
    snippet = PYTHON[index]
    if "pandas" in snippet and not HAS_PANDAS:
        pytest.skip("pandas is not installed (pip install 'ridgeline[pandas]')")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet, f"results-format.md python snippet {index}", "exec"), {})
    out = printed.getvalue()
    assert out.strip()
    if "import h5py" in snippet:  # the summary's barrier and the one computed from the points agree
        line = next(line for line in out.splitlines() if line.startswith("seed0-seed1"))
        _, stored, computed = line.split()
        assert float(stored) == pytest.approx(float(computed), abs=1e-12)
        assert float(stored) == pytest.approx(_barrier(results_dir / "results.h5"), abs=1e-12)


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
def test_r_snippet_reads_the_same_barrier(results_dir):
    check = subprocess.run(["Rscript", "-e", "library(hdf5r)"], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip("the R package hdf5r is not installed")
    (results_dir / "read.R").write_text(R_SNIPPETS[0])
    run = subprocess.run(["Rscript", "read.R"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    pair, barrier = run.stdout.split()
    assert pair == "seed0-seed1"
    assert float(barrier) == pytest.approx(_barrier(results_dir / "results.h5"), rel=1e-6)
