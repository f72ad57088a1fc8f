"""Options read from a factory's signature: types, defaults, Literal choices, supplied parameters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import pytest

from ridgeline.core.errors import ConfigError
from ridgeline.core.plugin_host.host import registries
from ridgeline.core.plugin_host.options import REQUIRED, choices_of, factory_options, type_text
from ridgeline.core.plugin_host.registry import KINDS

Mode = Literal["fast", "exact"]


class Example:
    def __init__(self, endpoints: Sequence[int], *, mode: Mode = "fast", size: int | None = None,
                 anchor: Literal["a", "b"] | None = None, required: str, hidden: NotImported = 1,  # noqa: F821
                 **more: int) -> None:
        pass


def test_options_carry_type_default_and_choices():
    options = factory_options(Example, "paths")
    assert options.supplied == ("endpoints",) and options.more == "more"
    by_name = {o.name: o for o in options}
    assert list(by_name) == ["mode", "size", "anchor", "required", "hidden"]
    assert (by_name["mode"].type, by_name["mode"].default, by_name["mode"].choices) == ("str", "fast",
                                                                                        ("fast", "exact"))
    assert by_name["size"].type == "int | None" and by_name["size"].choices == ()
    assert by_name["anchor"].choices == ("a", "b", None)
    assert by_name["required"].required and by_name["required"].default is REQUIRED
    assert by_name["hidden"].type == "NotImported"  # an annotation that cannot be resolved stays text


def test_a_closed_set_beside_other_types_is_described_with_its_choices():
    from collections.abc import Mapping

    from ridgeline.core.validation import describe, matches

    setting = Literal["dataset", "none"] | Mapping[str, float | Sequence[float]]
    assert choices_of(setting) == ("dataset", "none")
    assert describe(setting) == "one of 'dataset', 'none', or Mapping[str, float | Sequence[float]]"
    assert describe(Literal["a"] | None) == "one of 'a', None" and describe(int | None) == "int | None"
    assert matches({"mean": [0.5, 1], "std": 0.2}, setting) and matches("none", setting)
    assert not matches("imagenet", setting) and not matches({"mean": "x"}, setting)


def test_type_text_of_generics():
    assert type_text(Sequence[float]) == "Sequence[float]"
    assert type_text(tuple[int, ...]) == "tuple[int, ...]"
    assert choices_of(int) == ()


def test_a_factory_without_a_signature_says_so():
    options = factory_options(min)  # a builtin: inspect cannot read its signature
    assert options.options == () and "signature cannot be read" in options.more


def _entries(kinds=KINDS):
    from ridgeline.core.plugin_host.host import registries

    regs = registries()
    return [(kind, name) for kind in kinds for name in regs.of(kind).list()]


@pytest.mark.parametrize(("kind", "name"), _entries(("aligners", "metrics", "corrections", "datasets")))
def test_declared_choices_are_the_ones_the_factory_accepts(kind, name, regs):
    """A Literal annotation and the factory's own check agree: a value outside it is refused."""
    factory = regs.of(kind).get(name)
    described = factory_options(factory, kind)
    if any(option.required for option in described):
        pytest.skip(f"{kind} {name!r} needs user data to be built (its required options)")
    for option in described:
        if not option.choices:
            continue
        for value in option.choices:
            if value is not None:
                regs.of(kind).create(name, **{option.name: value})
        with pytest.raises(ConfigError, match=option.name):
            regs.of(kind).create(name, **{option.name: "no_such_value"})


@pytest.mark.parametrize("kind, name, options, message", [
    ("aligners", "msmoe", {"order": "bogus"}, "order = 'bogus'"),
    ("aligners", "tree_matching", {"order": "bogus"}, "order = 'bogus'"),
    ("aligners", "msmoe", {"weighting": "mean"}, "weighting = 'mean'"),
    ("aligners", "zipit", {"examples": -1}, "examples >= 1"),
    ("aligners", "ot_fusion", {"on": "activations", "batch_size": 0}, "batch_size >= 1"),
    ("metrics", "curvature", {"iters": 0}, "iters >= 1"),
    ("metrics", "geometry", {"length_points": 0}, "length_points must be at least 2"),
    ("metrics", "gradient", {"examples": -4}, "examples must be at least 1"),
    ("metrics", "taylor_barrier", {"examples": 0}, "examples must be at least 1"),
    ("paths", "bezier", {"steps": "ten", "endpoints": None}, "steps = 'ten'"),
    ("models", "soft_trees", {"structure": "forest", "input_shape": (4,), "num_classes": 3},
     "structure = 'forest'"),
])
def test_closed_choices_and_ranges_are_refused_when_the_entry_is_built(kind, name, options, message):
    # what a pipeline's check before any training does for every entry (Pipeline._check_entries)
    with pytest.raises(ConfigError, match=re.escape(message)):
        registries().of(kind).create(name, **options)


def test_a_fitted_paths_fit_settings_are_described_with_their_choices():
    options = {o.name: o for o in factory_options(registries().paths.get("polychain"), "paths")}
    assert {"bends", "steps", "lr", "batch_size", "optimizer"} <= set(options)
    assert options["optimizer"].choices == ("adam", "sgd") and options["steps"].default == 500
