from __future__ import annotations

import pytest
import torch

from ridgeline.core import ConfigError, Ties
from ridgeline.core.numerics import module_groups, select_layers

# a Linear "mix" registered again under two blocks: the state with each tied tensor once
TIES = Ties({"mix.weight": ("blocks.0.mix.weight", "blocks.1.mix.weight"),
             "mix.bias": ("blocks.0.mix.bias", "blocks.1.mix.bias")})
STATE = {k: torch.zeros(2) for k in ("inp.weight", "mix.weight", "mix.bias", "blocks.0.out.weight",
                                     "blocks.1.out.weight", "head.weight")}
GROUPS = module_groups(STATE)


def test_names_and_patterns_select_layers_in_model_order():
    assert select_layers(GROUPS, ["head", "blocks.*", "mix"], TIES) == [
        "mix", "blocks.0.out", "blocks.1.out", "head"]
    assert select_layers(GROUPS, ["head", "blocks.*.out"], TIES) == ["blocks.0.out", "blocks.1.out", "head"]


def test_a_pattern_that_also_names_an_alias_is_refused_unless_the_tied_tensor_is_chosen():
    """``blocks.*`` reaches the blocks' outputs and the tied ``mix`` under its other names: left
    unsaid, the tied tensor would stay out of a block-wise interpolation."""
    with pytest.raises(ConfigError, match=r"^layers 'blocks.\*' also names a tied tensor's other layer: "
                                          r"'blocks.0.mix' is another name of the tied tensor 'mix' .*; "
                                          r"use 'mix'.*, or list the layers without it$"):
        select_layers(GROUPS, ["head", "blocks.*"], TIES)


def test_another_name_of_a_tied_tensor_is_refused_naming_the_layer_to_use():
    with pytest.raises(ConfigError) as error:
        select_layers(GROUPS, ["blocks.0.mix"], TIES)
    assert str(error.value) == (
        "no layer matches 'blocks.0.mix': 'blocks.0.mix' is another name of the tied tensor 'mix' "
        "(blocks.0.mix.weight is mix.weight, blocks.0.mix.bias is mix.bias); use 'mix'; "
        "the layers are inp, mix, blocks.0.out, blocks.1.out, head")


def test_a_pattern_matching_only_aliases_names_each():
    with pytest.raises(ConfigError, match=r"'blocks.0.mix' is another name .*; use 'mix'; 'blocks.1.mix' is "
                                          r"another name .*; use 'mix'; the layers are"):
        select_layers(GROUPS, ["blocks.?.mix"], TIES)


def test_without_ties_an_unknown_layer_names_the_layers():
    with pytest.raises(ConfigError, match=r"^no layer matches 'blocks.0.mix'; the layers are inp, mix"):
        select_layers(GROUPS, ["blocks.0.mix"])
