"""Every name and file the docs and docstrings point at exists, so a move cannot leave stale paths.

Dotted references (``ridgeline.core.numerics.module_producers``, ``ridgeline.core.cli:main``) in
README.md, docs/*.md, pyproject.toml and every file under core/, plugins/ and examples/ are
resolved by importing the longest module prefix and taking attributes for the rest (classes,
methods, facade names). File paths (``tests/core/test_architecture.py``, ``core/state.py``) in
README.md, docs/*.md, pyproject.toml and the same source trees must exist in the repository.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "pyproject.toml", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = [p for folder in ("core", "plugins", "examples") for p in sorted((ROOT / folder).rglob("*"))
           if p.suffix in {".py", ".md", ".toml"}]
DOTTED = re.compile(r"\bridgeline(?:\.[A-Za-z_]\w*)+(?::[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)?")
FILE_PATH = re.compile(r"(?<![\w/.-])(?:core|plugins|tests|examples|benchmarks|docs)/"
                       r"[\w/*.-]*\.(?:py|md|toml)\b")


class OptionalDependency(Exception):
    """A reference whose module needs an optional extra that is not installed here."""


def _occurrences(pattern: re.Pattern, files: list[Path]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in pattern.finditer(line):
                found.setdefault(match.group(0), []).append(f"{path.relative_to(ROOT)}:{number}")
    return found


def _import(name: str):
    """The module ``name``, None when no such module exists; OptionalDependency when it needs a
    third-party package that is missing."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:
            return None
        if error.name and not error.name.startswith("ridgeline"):
            raise OptionalDependency(error.name) from error
        raise


def resolve(reference: str) -> str | None:
    """None when ``reference`` names a module, or an attribute of one (to any depth); otherwise
    what is missing."""
    module_part, _, attribute_part = reference.partition(":")
    parts = module_part.split(".") + (attribute_part.split(".") if attribute_part else [])
    target = importlib.import_module(parts[0])
    for depth, part in enumerate(parts[1:], 2):
        name = ".".join(parts[:depth])
        if hasattr(target, "__path__") and ":" not in name:
            module = _import(name)
            if module is not None:
                target = module
                continue
        try:
            target = getattr(target, part)
        except AttributeError:
            return f"{'.'.join(parts[:depth - 1])} has no module or attribute {part!r}"
        except ModuleNotFoundError as error:
            if error.name and not error.name.startswith("ridgeline"):
                raise OptionalDependency(error.name) from error
            raise
    return None


DOTTED_REFERENCES = _occurrences(DOTTED, DOCUMENTS + SOURCES)
FILE_REFERENCES = _occurrences(FILE_PATH, DOCUMENTS + SOURCES)


def test_the_scans_find_the_references():
    # a regex that silently matches nothing would make the checks below vacuous
    assert len(DOTTED_REFERENCES) > 100
    assert "ridgeline.core.numerics.module_producers" in DOTTED_REFERENCES
    assert "ridgeline.core.cli:main" in DOTTED_REFERENCES
    assert "tests/core/test_architecture.py" in FILE_REFERENCES


def test_the_resolver_tells_stale_references_from_good_ones():
    assert resolve("ridgeline.core.Model.data_config") is None
    assert resolve("ridgeline.core.numerics.assignment") is None  # a facade name
    assert resolve("ridgeline.core.numerics.linear_assignment.batched_assignment") is None
    assert resolve("ridgeline.core.cli:main") is None
    assert resolve("ridgeline.core.landscape_plots") == (
        "ridgeline.core has no module or attribute 'landscape_plots'")
    assert resolve("ridgeline.core.run.training.trian") == (
        "ridgeline.core.run.training has no module or attribute 'trian'")
    assert resolve("ridgeline.core.cli:mian") is not None


def test_every_dotted_reference_resolves():
    stale, optional = [], []
    for reference, places in sorted(DOTTED_REFERENCES.items()):
        try:
            problem = resolve(reference)
        except OptionalDependency as missing:
            optional.append(f"{reference} (needs {missing})")
            continue
        if problem:
            stale.append(f"{reference}: {problem} (at {', '.join(places)})")
    assert not stale, "stale references:\n" + "\n".join(stale)
    if optional:
        pytest.skip("not resolved without optional packages: " + "; ".join(optional))


def test_every_file_path_mentioned_exists():
    missing = [f"{path} (at {', '.join(places)})" for path, places in sorted(FILE_REFERENCES.items())
               if not list(ROOT.glob(path))]
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)
