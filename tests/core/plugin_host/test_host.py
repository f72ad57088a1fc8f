"""Plugin discovery through the ``ridgeline`` entry-point group, for real: a fake installed
distribution (a .dist-info folder on sys.path) is found by importlib.metadata."""

from __future__ import annotations

import inspect
import sys
import textwrap
from pathlib import Path

import pytest

from ridgeline.core.errors import DuplicateEntryError, PluginLoadError
from ridgeline.core.plugin_host import hookspecs
from ridgeline.core.plugin_host.host import INTERNAL_PLUGINS, hookimpl, load_plugins
from ridgeline.core.plugin_host.registry import KINDS

ROOT = Path(__file__).resolve().parents[3]


def install_fake_distribution(tmp_path: Path, monkeypatch, module: str, source: str,
                              dist: str = "fake-plugin", entry: str = "fake") -> None:
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp_path / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[ridgeline]\n{entry} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)


GOOD = """
from ridgeline.core import hookimpl
from ridgeline.plugins.aligners.identity import IdentityAligner

class Renamed(IdentityAligner):
    '''The identity under another name.'''
    name = "renamed_identity"

@hookimpl
def register_aligners(register):
    register("renamed_identity", Renamed)
"""


def test_entry_point_plugin_is_loaded_with_its_version(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, monkeypatch, "ridgeline_fake_good", GOOD)
    host = load_plugins(autoload=True)
    assert "renamed_identity" in host.registries.aligners
    assert host.registries.aligners.entry("renamed_identity").plugin == "fake"
    assert host.versions["fake"] == "0.1"


LAZY = """
from ridgeline.core import hookimpl

@hookimpl
def register_aligners(register):
    register("lazy_identity", "ridgeline.plugins.aligners.identity:IdentityAligner", "The identity, lazily.")
    register("lazy_ghost", "ridgeline_fake_missing.aligner:Ghost", "An aligner whose module is missing.")
"""


def test_entry_point_plugin_registers_lazily_and_a_broken_path_names_its_distribution(tmp_path,
                                                                                     monkeypatch):
    install_fake_distribution(tmp_path, monkeypatch, "ridgeline_fake_lazy", LAZY, dist="lazy-dist",
                              entry="lazy")
    aligners = load_plugins(autoload=True).registries.aligners
    assert aligners.entry("lazy_ghost").summary == "An aligner whose module is missing."
    assert aligners.create("lazy_identity").name == "identity"
    with pytest.raises(PluginLoadError) as info:
        aligners.get("lazy_ghost")
    message = str(info.value)
    assert "'lazy'" in message and "lazy-dist" in message and "'lazy_ghost'" in message
    assert "ridgeline_fake_missing" in message


def test_autoload_can_be_disabled_by_environment(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, monkeypatch, "ridgeline_fake_off", GOOD)
    monkeypatch.setenv("RIDGELINE_DISABLE_PLUGIN_AUTOLOAD", "1")
    host = load_plugins()
    assert "renamed_identity" not in host.registries.aligners
    assert "weight_matching" in host.registries.aligners  # first-party plugins still load


def test_a_plugin_can_be_blocked_by_name(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, monkeypatch, "ridgeline_fake_blocked", GOOD)
    monkeypatch.setenv("RIDGELINE_BLOCK_PLUGINS", "fake")
    assert "renamed_identity" not in load_plugins().registries.aligners


def test_broken_plugin_error_names_plugin_and_distribution(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, monkeypatch, "ridgeline_fake_broken",
                              "import a_module_that_does_not_exist\n", dist="broken-dist", entry="broken")
    with pytest.raises(PluginLoadError) as info:
        load_plugins(autoload=True)
    message = str(info.value)
    assert "'broken'" in message and "broken-dist" in message and "a_module_that_does_not_exist" in message


def test_plugin_failing_inside_its_hook_is_named(tmp_path, monkeypatch):
    source = """
    from ridgeline.core import hookimpl

    @hookimpl
    def register_paths(register):
        raise RuntimeError("boom")
    """
    install_fake_distribution(tmp_path, monkeypatch, "ridgeline_fake_hook", source, entry="hooky")
    with pytest.raises(PluginLoadError, match="'hooky'.*boom"):
        load_plugins(autoload=True)


def test_duplicate_registration_names_both_plugins():
    class Clash:
        @hookimpl
        def register_aligners(self, register):
            register("weight_matching", object)

    with pytest.raises(DuplicateEntryError) as info:
        load_plugins([("clashing", Clash())], autoload=False)
    assert info.value.plugins == ("ridgeline.plugins.aligners", "clashing")


def test_misspelled_hook_is_rejected_with_plugin_name():
    class Typo:
        @hookimpl
        def register_aligner(self, register):  # missing "s"
            pass

    with pytest.raises(PluginLoadError, match="'typo'"):
        load_plugins([("typo", Typo())], autoload=False)


def test_each_kind_has_exactly_one_register_hook():
    hooks = {name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
             if name.startswith("register_")}
    assert hooks == {f"register_{kind}" for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_every_hook_is_documented_and_used_by_a_first_party_plugin(kind):
    guide = (ROOT / "docs" / "plugin-authoring.md").read_text()
    assert f"register_{kind}" in guide
    assert any(kind in module for module in INTERNAL_PLUGINS)
