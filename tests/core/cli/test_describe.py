"""`ridgeline describe` and `ridgeline list`: every entry's options with type, default and
allowed values, its plugin and paper, in plain text fitted to the terminal."""

from __future__ import annotations

import pytest

from ridgeline.core.cli import main
from ridgeline.core.cli.describe import describe, value_text
from ridgeline.core.plugin_host.host import default_host, registries
from ridgeline.core.plugin_host.options import factory_options
from ridgeline.core.plugin_host.registry import KINDS

MARKUP = ("``", ":func:", ":class:", ":meth:", ":mod:", ":data:")
ENTRIES = [(kind, name) for kind in KINDS for name in registries().of(kind).list()]


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=[f"{k}-{n}" for k, n in ENTRIES])
def test_describe_shows_every_option_with_its_default(kind, name):
    host = default_host()
    text = describe(host, kind, name, width=100)
    lines = text.splitlines()
    options = factory_options(host.registries.of(kind).get(name), kind)
    table = lines[lines.index("Options") + 1:]
    for option in options:
        row = next((line for line in table if line.split()[:1] == [option.name]), None)
        assert row is not None, f"{name}: option {option.name} missing from\n{text}"
        assert value_text(option.default) in row, f"{name}: default of {option.name} missing: {row}"
        for choice in option.choices:
            assert value_text(choice) in text
    assert f"plugin {host.registries.of(kind).entry(name).plugin}" in text
    assert "distribution" in text and "In a pipeline TOML" in text
    assert not [m for m in MARKUP if m in text], "describe prints reStructuredText markup"
    assert max(len(line) for line in lines if not line.startswith("      ")) <= 100


def test_describe_weight_matching_names_its_choices_paper_and_snippet():
    text = describe(default_host(), "aligners", "weight_matching")
    order = next(line for line in text.splitlines() if line.strip().startswith("order"))
    assert order.split()[:3] == ["order", "str", '"best"']
    assert '"random", "forward", "backward", "best"' in order
    assert "Ainsworth, Hayase & Srinivasa, ICLR 2023" in text  # the paper, from the module docstring
    assert 'aligners = [{ name = "weight_matching", order = "best", restarts = 3 }]' in text


def test_describe_a_model_says_which_parameters_ridgeline_supplies():
    text = describe(default_host(), "models", "timm")
    assert "Given by ridgeline, not options: input_shape, num_classes." in text
    assert "arch" in text and "(required)" in text and "**timm_kwargs" in text
    assert '[model]\n  name = "timm"\n  arch = "<str>"' in text


def test_describe_command_forms(capsys):
    assert main(["describe", "aligner", "weight_matching"]) == 0  # singular kind
    singular = capsys.readouterr().out
    assert main(["describe", "weight_matching"]) == 0  # a name alone: searched in every registry
    assert capsys.readouterr().out == singular
    assert main(["describe", "corrections"]) == 0  # a kind alone: every entry
    out = capsys.readouterr().out
    assert "bn_reset (correction)" in out and "repair (correction)" in out


def test_describe_unknown_names_suggest_close_matches(capsys):
    assert main(["describe", "aligners", "wieght_matching"]) == 2
    assert "did you mean 'weight_matching'" in capsys.readouterr().err
    assert main(["describe", "wieght_matching"]) == 2
    assert "did you mean 'weight_matching'" in capsys.readouterr().err


def test_list_is_plain_text_fitted_to_the_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert not [m for m in MARKUP if m in out]
    assert max(len(line) for line in out.splitlines()) <= 72
    line = next(line for line in out.splitlines() if line.strip().startswith("activation_matching"))
    assert line.endswith("…") and not line[:-1].endswith(" ")  # cut between words, marked
    words = line.split()[1:]
    summary = registries().aligners.entry("activation_matching").summary.replace("``", "").split()
    assert words[:-1] == summary[: len(words) - 1]  # whole words only
    assert "ridgeline describe KIND NAME" in out
