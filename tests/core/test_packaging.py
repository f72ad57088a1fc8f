"""The wheel must contain every subpackage: setuptools silently drops unlisted ones."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _listed() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def _folders() -> set[str]:
    found = set()
    for top, package in (("core", "ridgeline.core"), ("plugins", "ridgeline.plugins")):
        for init in (ROOT / top).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / top)
            found.add(".".join([package, *relative.parts]))
    return found


def test_every_package_folder_is_listed_in_pyproject():
    assert _folders() == _listed()


def test_no_bare_core_or_plugins_imports():
    offenders = []
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("plugins/**/*.py"), *ROOT.glob("tests/**/*.py")]:
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import core", "from core", "import plugins", "from plugins")):
                offenders.append(f"{path}: {stripped}")
    assert not offenders


def test_installed_package_resolves_to_this_checkout():
    import ridgeline.core
    import ridgeline.plugins

    assert Path(ridgeline.core.__file__).parent == ROOT / "core"
    assert Path(ridgeline.plugins.__file__).parent == ROOT / "plugins"


def test_dependencies_have_no_upper_bound():
    """Users of newer releases (a newer torch) must be able to install ridgeline; the README's
    install command pins the versions the suite is run with, the package does not."""
    from packaging.requirements import Requirement

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    capped = [d for d in dependencies
              if any(s.operator in ("<", "<=", "==", "~=") for s in Requirement(d).specifier)]
    assert not capped


def test_readme_and_ci_install_the_same_pinned_torch():
    import re

    pins = [re.findall(r"torch==[\d.]+ torchvision==[\d.]+", (ROOT / name).read_text())
            for name in ("README.md", ".ci/run")]
    assert pins[0] and pins[0][:1] == pins[1][:1]
