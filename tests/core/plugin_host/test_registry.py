from __future__ import annotations

import inspect

import pytest

from ridgeline.core.errors import ConfigError, DuplicateEntryError, PluginLoadError, UnknownEntryError
from ridgeline.core.plugin_host.host import registries
from ridgeline.core.plugin_host.registry import KINDS, Registry, summary_of


def make() -> Registry:
    registry = Registry("aligners")
    for name in ("weight_matching", "activation_matching", "identity"):
        registry.register(name, dict, plugin="first")
    return registry


def test_list_takes_fnmatch_patterns_and_exclusions():
    registry = make()
    assert registry.list() == ["activation_matching", "identity", "weight_matching"]
    assert registry.list("*matching") == ["activation_matching", "weight_matching"]
    assert registry.list("*matching", exclude="act*") == ["weight_matching"]
    assert registry.list(["id*", "weight*"]) == ["identity", "weight_matching"]


def test_unknown_name_is_a_lookup_error_with_close_matches():
    with pytest.raises(UnknownEntryError) as info:
        make().get("weight_matchin")
    assert isinstance(info.value, LookupError) and not isinstance(info.value, KeyError)
    assert "weight_matching" in str(info.value)
    assert info.value.close_matches[0] == "weight_matching"


def test_duplicate_name_names_both_plugins():
    registry = make()
    with pytest.raises(DuplicateEntryError, match="'first'.*'second'"):
        registry.register("identity", dict, plugin="second")


def test_names_must_be_short_lowercase_words():
    with pytest.raises(ConfigError, match="lowercase"):
        Registry("paths").register("Bezier-Curve", dict, plugin="p")


def test_create_reports_bad_options_with_the_entry_name(regs):
    with pytest.raises(ConfigError, match="weight_matching"):
        regs.aligners.create("weight_matching", no_such_option=1)


@pytest.mark.parametrize("kind", KINDS)
def test_every_first_party_entry_is_lazy_and_its_summary_is_its_docstring(kind):
    from ridgeline.core.plugin_host.host import load_plugins

    registry = load_plugins(autoload=False).registries.of(kind)
    for entry in registry:
        assert entry.plugin.startswith("ridgeline.plugins")
        assert entry.lazy, f"{kind} {entry.name} is registered eagerly (imports its module at listing)"
        given = entry.summary
        assert given, f"{kind} {entry.name} has no summary"
        assert given == summary_of(entry.factory), f"{kind} {entry.name}: summary differs from its docstring"
        assert not entry.lazy and registry.get(entry.name) is entry.factory


def test_a_lazy_factory_is_imported_on_first_use_only():
    registry = Registry("aligners")
    registry.register("ordered", "collections:OrderedDict", plugin="p", summary="An ordered dict.")
    entry = registry.entry("ordered")
    assert entry.lazy and entry.summary == "An ordered dict."
    assert registry.create("ordered", a=1) == {"a": 1}
    assert not entry.lazy and registry.get("ordered").__name__ == "OrderedDict"


def test_a_lazy_factory_without_a_summary_takes_its_docstring_when_listed():
    registry = Registry("paths")
    registry.register("counter", "collections:Counter", plugin="p")
    assert registry.entry("counter").summary == summary_of(__import__("collections").Counter)


def test_a_broken_lazy_factory_names_plugin_distribution_and_entry():
    registry = Registry("aligners")
    registry.register("ghost", "no_such_module_here:Ghost", plugin="spooky", distribution="spooky-dist",
                      summary="Never importable.")
    assert "ghost" in registry.list()  # listing does not import it
    with pytest.raises(PluginLoadError) as info:
        registry.get("ghost")
    message = str(info.value)
    assert "'spooky'" in message and "spooky-dist" in message and "'ghost'" in message
    assert "no_such_module_here" in message
    registry.register("nothing", "collections:NoSuchThing", plugin="p", summary="Missing attribute.")
    with pytest.raises(PluginLoadError, match="'nothing'.*NoSuchThing"):
        registry.create("nothing")
    registry.register("constant", "math:pi", plugin="p", summary="Not callable.")
    with pytest.raises(PluginLoadError, match="not a class or callable"):
        registry.get("constant")


def test_a_malformed_factory_is_refused_at_registration():
    with pytest.raises(ConfigError, match="import path 'package.module:Attribute'"):
        Registry("models").register("bad", "just_a_module", plugin="p")
    with pytest.raises(ConfigError, match="plugin 'p'.*'bad'.*int"):
        Registry("models").register("bad", 3, plugin="p")


def _required(kind, name, small_mlp):
    """The arguments an entry of ``kind`` needs besides its options."""
    if kind == "datasets":  # e.g. a root folder: never opened, the misspelling is caught first
        parameters = inspect.signature(registries().datasets.get(name)).parameters.values()
        return {p.name: "unused" for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
    if kind == "models":
        return {"input_shape": (12,), "num_classes": 3}
    if kind == "paths":
        return {"endpoints": [small_mlp.init_state(s) for s in range(3 if name == "star" else 2)]}
    return {}


@pytest.mark.parametrize("kind", ["models", "aligners", "paths", "metrics", "corrections", "datasets"])
def test_a_misspelled_option_is_refused_by_every_entry(regs, small_mlp, kind):
    for entry in regs.of(kind):
        if kind == "models" and entry.name == "timm":
            continue  # timm forwards its options to timm.create_model, which refuses them itself
        with pytest.raises(ConfigError, match=rf"{entry.name}.*no_such_optoin|no_such_optoin.*{entry.name}"):
            regs.of(kind).create(entry.name, no_such_optoin=1, **_required(kind, entry.name, small_mlp))
