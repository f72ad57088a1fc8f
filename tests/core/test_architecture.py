"""The house rules of docs/architecture.md: import layers, the public API, plugins that use only it.

The layers and the walker/rule separation are import-linter contracts in pyproject.toml; the
plugin rules are checked here by walking every plugin module's imports (function-level ones
included), so a failure names the file, the line and the import.
"""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ridgeline.core
import ridgeline.core.numerics
import ridgeline.core.plots

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {"ridgeline.core", "ridgeline.core.numerics"}


def test_import_layers_hold(capsys):
    from importlinter.cli import lint_imports

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    finally:
        os.chdir(cwd)
    assert code == 0, capsys.readouterr().out


def _ridgeline_imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("ridgeline"):
                yield node.lineno, name


def _family(path: Path) -> str:
    return path.relative_to(ROOT / "plugins").parts[0]


PLUGIN_MODULES = sorted((ROOT / "plugins").rglob("*.py"))


@pytest.mark.parametrize("path", PLUGIN_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_the_public_api_and_their_own_family(path):
    offenders = []
    for line, module in _ridgeline_imports(path):
        if module in PUBLIC:
            continue
        if module.startswith("ridgeline.plugins."):
            family = module.split(".")[2]
            if path.parent != ROOT / "plugins" and family == _family(path):
                continue
            offenders.append(f"{path.name}:{line}: {module} (another plugin family)")
        else:
            offenders.append(f"{path.name}:{line}: {module} (internal; use ridgeline.core or "
                             "ridgeline.core.numerics)")
    assert not offenders, "\n".join(offenders)


def _solver_imports(path: Path):
    """Imports of scipy's linear assignment solver (``from scipy.optimize import
    linear_sum_assignment``, ``import scipy.optimize``, ``from scipy import optimize``), anywhere."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module in ("scipy.optimize", "scipy.optimize._lsap"):
            yield node.lineno, f"from {node.module} import {', '.join(a.name for a in node.names)}"
        elif isinstance(node, ast.ImportFrom) and node.module == "scipy" and any(
                a.name == "optimize" for a in node.names):
            yield node.lineno, "from scipy import optimize"
        elif isinstance(node, ast.Import) and any(a.name.startswith("scipy.optimize") for a in node.names):
            yield node.lineno, "import scipy.optimize"
        elif isinstance(node, ast.Attribute) and node.attr == "linear_sum_assignment":
            yield node.lineno, f"{ast.unparse(node)}"


@pytest.mark.parametrize("path", PLUGIN_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_match_through_the_shared_assignment(path):
    """Linear assignment lives in ridgeline.core.numerics (assignment, batched_assignment,
    improving_assignment): one solver, one place to make it faster or change its tie-breaking."""
    offenders = [f"{path.name}:{line}: {text}" for line, text in _solver_imports(path)]
    assert not offenders, ("use ridgeline.core.numerics' assignment functions instead of scipy's solver:\n"
                           + "\n".join(offenders))


def test_the_solver_check_sees_every_spelling(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from scipy.optimize import linear_sum_assignment\nimport scipy.optimize\n"
                      "def f(x):\n    from scipy import optimize\n    import scipy\n"
                      "    return scipy.optimize.linear_sum_assignment(x)\n")
    assert sorted(line for line, _ in _solver_imports(module)) == [1, 2, 4, 6]


EXAMPLES = sorted((ROOT / "examples").rglob("*.py"))
SCRIPT_API = PUBLIC | {"ridgeline.core.plots"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_use_only_the_public_api(path):
    offenders = [f"{path.name}:{line}: {module}" for line, module in _ridgeline_imports(path)
                 if module not in SCRIPT_API]
    assert not offenders, "\n".join(offenders)


def test_the_plugin_walk_sees_every_family():
    assert {_family(p) for p in PLUGIN_MODULES if p.parent != ROOT / "plugins"} == {
        "aligners", "corrections", "datasets", "metrics", "models", "paths"}


FACADES = [ridgeline.core, ridgeline.core.numerics, ridgeline.core.plots]


@pytest.mark.parametrize("facade", FACADES, ids=lambda m: m.__name__)
def test_every_public_name_resolves(facade):
    for name in facade.__all__:
        assert getattr(facade, name) is not None, name
    assert set(facade.__all__) <= set(dir(facade))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        facade.not_a_name  # noqa: B018


@pytest.mark.parametrize("facade", FACADES, ids=lambda m: m.__name__)
def test_no_public_name_is_also_a_submodule_of_its_facade(facade):
    """Importing a submodule sets it as an attribute of its package, which would hide a lazy
    facade name of the same spelling for the rest of the process (``from ridgeline.core.numerics
    import assignment`` would give a module)."""
    submodules = {info.name for info in pkgutil.iter_modules(facade.__path__)}
    clashes = sorted(set(facade.__all__) & submodules)
    assert not clashes, f"{facade.__name__} exports {clashes}, which are also its submodules' names"


def test_importing_the_public_api_is_lazy():
    code = ("import sys, ridgeline.core, ridgeline.core.numerics, ridgeline.core.plots; "
            "print(sorted(m for m in ('torch', 'timm', 'h5py', 'scipy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_plugin_authoring_guide_lists_the_public_api():
    guide = (ROOT / "docs" / "plugin-authoring.md").read_text()
    missing = [name for facade in FACADES for name in facade.__all__ if f"`{name}`" not in guide]
    assert not missing, f"docs/plugin-authoring.md does not list {missing}"
