"""derive_spec on small hand-built modules: each op family, freezing, errors, nesting, speed."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from ridgeline.core.errors import SpecError
from ridgeline.core.symmetry import op_rules, rules
from ridgeline.core.symmetry.derive import derive_spec
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1, self.bn1 = nn.Conv2d(8, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 5)
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        x = nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return self.head(torch.relu(self.fc(x)))


def _randomise_bn(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return module


def test_residual_stream_inner_channels_and_flatten_after_a_conv(function_preserved):
    torch.manual_seed(0)
    module = _randomise_bn(Residual())
    x = torch.randn(3, 3, 8, 8)
    spec = derive_spec(module, x)
    assert spec.groups == {"stem": 8, "conv1": 6, "fc": 5}
    stream = set(spec.axes["stem"])
    # both sides of the residual addition are one group; flatten makes blocks of 16 features
    assert {AxisRef("conv2.weight", 0), AxisRef("bn2.running_var", 0),
            AxisRef("fc.weight", 1, 0, 16)} <= stream
    assert set(spec.axes["conv1"]) == {AxisRef("conv1.weight", 0), AxisRef("conv1.bias", 0),
                                       AxisRef("bn1.weight", 0), AxisRef("bn1.bias", 0),
                                       AxisRef("bn1.running_mean", 0), AxisRef("bn1.running_var", 0),
                                       AxisRef("conv2.weight", 1)}
    assert spec.frozen == {} and spec.coverage() == 1.0
    function_preserved(module, spec, x)


class Dense(nn.Module):
    """Concatenation along channels, then BatchNorm and a conv over the joined channels."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 5, 3, padding=1)
        self.norm = nn.BatchNorm2d(9)
        self.mix = nn.Conv2d(9, 6, 1)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.a(x), torch.relu(self.b(x))], dim=1)
        x = self.mix(torch.relu(self.norm(x)))
        return self.head(x.mean((2, 3)))


def test_concatenation_is_a_block_permutation(function_preserved):
    torch.manual_seed(0)
    module = _randomise_bn(Dense())
    x = torch.randn(2, 3, 6, 6)
    spec = derive_spec(module, x)
    assert AxisRef("norm.weight", 0, 4) in spec.axes["b"]
    assert AxisRef("mix.weight", 1, 4) in spec.axes["b"]
    assert AxisRef("mix.weight", 1, 0) in spec.axes["a"]
    function_preserved(module, spec, x)


class Grouped(nn.Module):
    def __init__(self, groups: int, norm_groups: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(3, 8, 1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=groups)
        self.norm = nn.GroupNorm(norm_groups, 8)
        self.project = nn.Conv2d(8, 4, 1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.expand(x))
        x = torch.relu(self.norm(self.grouped(x)))
        return self.head(self.project(x).amax((2, 3)))


@pytest.mark.parametrize(("groups", "norm_groups", "blocks"), [(8, 8, 8), (4, 1, 4), (8, 2, 2)])
def test_grouped_and_depthwise_convs_and_group_norm_move_whole_blocks(groups, norm_groups, blocks,
                                                                     function_preserved):
    torch.manual_seed(0)
    module = _randomise_bn(Grouped(groups, norm_groups))
    x = torch.randn(2, 3, 5, 5)
    spec = derive_spec(module, x)
    if blocks == 8:  # depthwise: input and output channels form one free group
        assert "grouped" not in spec.groups and spec.groups["expand"] == 8
    else:
        # a grouped conv ties its input blocks to its output blocks: one group of `blocks` units
        assert spec.groups["expand"] == blocks and spec.unit_sizes["expand"] == 8
        assert AxisRef("grouped.weight", 0, 0, 8 // blocks) in spec.axes["expand"]
    function_preserved(module, spec, x)


class RootMeanSquareNorms(nn.Module):
    """RMSNorm three ways: torch's module, timm's ``RmsNorm`` (kept whole) and the functional form."""

    def __init__(self, timm_norm: type[nn.Module]) -> None:
        super().__init__()
        self.embed, self.norm = nn.Linear(4, 6), nn.RMSNorm(6)
        self.fc1, self.fc2, self.timm_norm = nn.Linear(6, 5), nn.Linear(5, 6), timm_norm(6)
        self.gain = nn.Parameter(torch.linspace(0.5, 1.5, 6))
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = x + self.fc2(torch.relu(self.fc1(self.norm(x))))
        x = nn.functional.rms_norm(self.timm_norm(x), (6,), self.gain)
        return self.head(x)


def test_rms_norms_keep_the_normalised_units_free_and_their_weight_follows_them(function_preserved):
    timm_layers = pytest.importorskip("timm.layers")
    torch.manual_seed(0)
    module = RootMeanSquareNorms(timm_layers.RmsNorm)
    assert rules.keeps_whole(module.norm) and rules.keeps_whole(module.timm_norm)
    x = torch.randn(3, 4)
    spec = derive_spec(module, x)
    assert spec.groups == {"embed": 6, "fc1": 5} and spec.frozen == {} and spec.coverage() == 1.0
    weights = {AxisRef("norm.weight", 0), AxisRef("timm_norm.weight", 0), AxisRef("gain", 0)}
    assert weights <= set(spec.axes["embed"])
    for m in (module.norm, module.timm_norm):
        nn.init.uniform_(m.weight, 0.5, 1.5)
    function_preserved(module, spec, x)


class Unknown(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second, self.head = nn.Linear(4, 6), nn.Linear(6, 5), nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.first(x))
        x = torch.cumsum(self.second(x), dim=1)  # order-dependent: cannot be permuted
        return self.head(x)


def test_an_op_the_walker_does_not_know_freezes_its_groups_with_a_reason():
    module = Unknown()
    spec = derive_spec(module, torch.randn(3, 4))
    assert list(spec.groups) == ["first"]
    assert "cumsum" in spec.frozen["second"] and spec.frozen_sizes == {"second": 5}
    assert spec.coverage() == pytest.approx(6 / 11)


def test_a_wrong_rule_is_caught_by_the_built_in_check(monkeypatch):
    # pretend cumsum were elementwise: the derived spec is wrong and must not be returned
    monkeypatch.setitem(rules._FUNCTION_RULES, torch.cumsum, op_rules.pointwise)
    with pytest.raises(SpecError, match="changes the network's outputs"):
        derive_spec(Unknown(), torch.randn(3, 4))


class Branchy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


class Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), Branchy())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_untraceable_module_is_named_in_the_error():
    with pytest.raises(SpecError, match=r"cannot trace module 'body\.1' \(Branchy\)"):
        derive_spec(Wrapper(), torch.randn(2, 4))


class TinyViT(nn.Module):
    """Tokens with a class token, position embedding, timm Attention and layer scale."""

    def __init__(self) -> None:
        super().__init__()
        from timm.layers import Attention, LayerScale

        self.embed = nn.Linear(6, 8)
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8))
        self.pos_embed = nn.Parameter(torch.randn(1, 5, 8))
        self.norm = nn.LayerNorm(8)
        self.attn = Attention(8, num_heads=2)
        self.ls = LayerScale(8, init_values=0.5)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = x + self.ls(self.attn(self.norm(x)))
        return self.head(x[:, 0])


def test_attention_gets_head_groups_with_nested_within_head_groups(function_preserved):
    torch.manual_seed(0)
    module = TinyViT()
    x = torch.randn(2, 4, 6)
    spec = derive_spec(module, x)
    assert spec.groups["attn.heads"] == 2
    assert spec.nested == {"attn.qk": "attn.heads", "attn.v": "attn.heads"}
    assert spec.block("attn.qk") == 4
    assert {AxisRef("cls_token", 2), AxisRef("pos_embed", 2), AxisRef("ls.gamma", 0),
            AxisRef("attn.qkv.weight", 1)} <= set(spec.axes["embed"])
    perm = spec.random(torch.Generator().manual_seed(0))["attn.qk"]
    assert sorted(perm[:4].tolist()) == [0, 1, 2, 3]  # block-diagonal: stays inside its head
    function_preserved(module, spec, x)
    heads_only = spec.without_nested()
    assert heads_only.nested == {} and "attn.qk" not in heads_only.groups
    function_preserved(module, heads_only, x)


def test_nested_invert_and_compose_follow_apply():
    heads, block = 3, 4
    spec = PermutationSpec({"h": heads, "c": heads * block},
                           {"h": [("w", 0, 0, block)], "c": [("w", 0)]}, nested={"c": "h"})
    w = {"w": torch.randn(heads * block, 2)}
    for seed in range(4):
        generator = torch.Generator().manual_seed(seed)
        p, q = spec.random(generator), spec.random(generator)
        assert torch.equal(spec.apply(spec.apply(w, p), spec.invert(p))["w"], w["w"])
        assert torch.equal(spec.apply(w, spec.compose(p, q))["w"], spec.apply(spec.apply(w, p), q)["w"])


def test_nested_groups_must_fit_their_parent():
    with pytest.raises(SpecError, match="whole number of blocks"):
        PermutationSpec({"h": 3, "c": 7}, {"h": [("w", 0)], "c": [("w", 0)]}, nested={"c": "h"})


def test_deriving_resnet50s_spec_costs_a_few_forward_passes():
    """Speed as a ratio to a baseline in the same process (the machine is shared): tracing,
    walking and assembling resnet50's spec costs about 3 forward passes (docs/specs.md has the
    times of the full derivation, check included)."""
    timm = pytest.importorskip("timm")
    module = timm.create_model("resnet50", pretrained=False, num_classes=3).eval()
    x = torch.randn(1, 3, 32, 32)

    def best(fn, repeat):
        timings = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            timings.append(time.perf_counter() - start)
        return min(timings)

    with torch.no_grad():
        forward = best(lambda: module(x), 3)
    derive = best(lambda: derive_spec(module, x, check=False), 2)
    assert derive < 8 * forward, (derive, forward)
    assert derive_spec(module, x).coverage() == 1.0


class Shared(nn.Module):
    """One Linear applied twice: first to the fixed inputs, then to its own outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.layer, self.head = nn.Linear(6, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.layer(torch.relu(self.layer(x)))))


def test_a_weight_used_twice_in_incompatible_layouts_is_frozen():
    spec = derive_spec(Shared(), torch.randn(3, 6))
    assert spec.groups == {}
    assert "incompatible layouts" in spec.frozen["layer"]


def test_an_input_the_module_cannot_take_is_reported_with_the_failing_layer():
    module = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(SpecError, match=r"fails on the example input at '0'.*input shape"):
        derive_spec(module, torch.randn(2, 3, 3, 3))
