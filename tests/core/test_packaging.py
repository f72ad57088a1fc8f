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
