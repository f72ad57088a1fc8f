"""derive_spec on the hard families in miniature: cut channels (split, chunk, slices), heads from
reshapes (stacked q/k/v, talking heads, a concatenated qkv bias, rotary embeddings, a head picked
by index), padding, untraceable modules walked eagerly, and inputs that are not one tensor."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ridgeline.core.errors import ExampleInputError, SpecError
from ridgeline.core.symmetry.derive import derive_spec, generic_state
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec


def _fully_permutable(make: Callable[[], nn.Module], shape: tuple[int, ...]
                      ) -> tuple[nn.Module, torch.Tensor, PermutationSpec]:
    """``make()`` and an input of ``shape``, both drawn after seeding 0, with the spec derived for
    them, which must leave nothing frozen and cover every hidden unit."""
    torch.manual_seed(0)
    module = make()
    x = torch.randn(shape)
    spec = derive_spec(module, x)
    assert spec.frozen == {} and spec.coverage() == 1.0
    return module, x, spec


class CrossStage(nn.Module):
    """CSP: a conv's channels split in halves, one half through a block, joined again."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(3, 8, 1)
        self.block = nn.Conv2d(4, 4, 3, padding=1)
        self.mix = nn.Conv2d(8, 6, 1)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.relu(self.expand(x)).split(4, dim=1)
        x = torch.cat([a, torch.relu(self.block(b)) + b], dim=1)
        return self.head(self.mix(x).mean((2, 3)))


def test_a_split_makes_each_part_its_own_group(function_preserved):
    module, x, spec = _fully_permutable(CrossStage, (2, 3, 6, 6))
    # the two halves of `expand` permute separately; the second is tied to the block's residual
    assert spec.groups["expand[0:4]"] == 4 and spec.groups["expand[4:8]"] == 4
    assert AxisRef("expand.weight", 0, 4) in spec.axes["expand[4:8]"]
    assert AxisRef("block.weight", 0) in spec.axes["expand[4:8]"]
    assert AxisRef("mix.weight", 1, 4) in spec.axes["expand[4:8]"]
    function_preserved(module, spec, x, generic=True)


class Scales(nn.Module):
    """Res2Net: chunks of one conv's output feed a chain of convs and additions."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 12, 1)
        self.convs = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(2))
        self.conv3 = nn.Conv2d(12, 5, 1)
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.relu(self.conv1(x)).chunk(3, dim=1)
        out, sp = [], parts[0]
        for i, conv in enumerate(self.convs):
            sp = torch.relu(conv(sp if i == 0 else sp + parts[i]))
            out.append(sp)
        out.append(parts[-1])
        return self.head(self.conv3(torch.cat(out, dim=1)).amax((2, 3)))


def test_chunks_chained_by_additions_stay_free(function_preserved):
    module, x, spec = _fully_permutable(Scales, (2, 3, 5, 5))
    assert {n for g, n in spec.groups.items() if g.startswith("conv1[")} == {4}
    function_preserved(module, spec, x, generic=True)


class Gated(nn.Module):
    """A gated MLP (SwiGLU): one Linear's output halves multiplied together."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(4, 10), nn.Linear(5, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.fc1(x).chunk(2, dim=-1)
        return self.head(self.fc2(x1 * F.silu(x2)))


def test_gated_halves_move_together(function_preserved):
    module = Gated()
    x = torch.randn(3, 4)
    spec = derive_spec(module, x)
    assert spec.groups["fc1[0:5]"] == 5 and spec.unit_sizes["fc1[0:5]"] == 10
    assert {AxisRef("fc1.weight", 0), AxisRef("fc1.weight", 0, 5), AxisRef("fc2.weight", 1)} <= set(
        spec.axes["fc1[0:5]"])
    assert spec.coverage() == 1.0
    function_preserved(module, spec, x, generic=True)


class Ghost(nn.Module):
    """GhostNet: a cheap depthwise conv doubles the channels, a slice keeps some, and a depthwise
    conv runs over the concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.primary = nn.Conv2d(3, 4, 1)
        self.cheap = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = torch.relu(self.primary(x))
        x = torch.cat([x1, self.cheap(x1)], dim=1)[:, :6]
        return self.head(self.dw(x).mean((2, 3)))


def test_a_slice_and_a_depthwise_conv_over_concatenated_channels(function_preserved):
    module, x, spec = _fully_permutable(Ghost, (2, 3, 5, 5))
    # the cheap conv's last two channels are sliced away: they move with their inputs, apart
    assert spec.groups["primary[0:2]"] == 2 and spec.groups["primary[2:4]"] == 2
    assert {AxisRef("cheap.weight", 0, 2), AxisRef("dw.weight", 0, 2), AxisRef("head.weight", 1, 2)} <= set(
        spec.axes["primary[2:4]"])
    function_preserved(module, spec, x, generic=True)


class Heads(nn.Module):
    """Attention written out: fused qkv with a concatenated bias (zero k part), a relative
    position bias per head as the attention mask, optional talking heads, rotary-like position
    factors, or a single head picked by index."""

    def __init__(self, variant: str, heads: int = 2, dim: int = 3, tokens: int = 5) -> None:
        super().__init__()
        self.variant, self.heads, self.dim = variant, heads, dim
        width = heads * dim
        self.embed = nn.Linear(4, width)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_bias = nn.Parameter(torch.randn(width))
        self.register_buffer("k_bias", torch.zeros(width), persistent=False)
        self.v_bias = nn.Parameter(torch.randn(width))
        self.table = nn.Parameter(torch.randn(2 * tokens - 1, heads))
        offsets = torch.arange(tokens)[:, None] - torch.arange(tokens)[None] + tokens - 1
        self.register_buffer("index", offsets, persistent=False)
        self.register_buffer("angles", torch.randn(tokens, dim), persistent=False)
        self.mix_l, self.mix_w = nn.Linear(heads, heads), nn.Linear(heads, heads)
        self.proj = nn.Linear(width, width)
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        b, n, c = x.shape
        qkv = F.linear(x, self.qkv.weight, torch.cat((self.q_bias, self.k_bias, self.v_bias)))
        q, k, v = qkv.reshape(b, n, 3, self.heads, self.dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.variant == "rotary":
            q, k = q * self.angles.cos(), k * self.angles.cos()
        if self.variant == "talking":
            attn = self.mix_l((q @ k.transpose(-2, -1)).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            attn = self.mix_w(attn.softmax(-1).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            out = attn @ v
        else:
            bias = self.table[self.index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        if self.variant == "first head":
            out = out[:, 0]
            return self.head(torch.cat([out, out], dim=-1).mean(1))
        x = x + self.proj(out.transpose(1, 2).reshape(b, n, c))
        return self.head(x.mean(1))


def test_heads_of_a_reshaped_fused_projection_are_nested_groups(function_preserved):
    module, x, spec = _fully_permutable(lambda: Heads("plain"), (2, 5, 4))
    heads = next(g for g in spec.groups if g.endswith(".heads"))
    children = {c for c, p in spec.nested.items() if p == heads}
    assert len(children) == 2 and {spec.groups[c] for c in children} == {6}
    qk = next(c for c in children if AxisRef("q_bias", 0) in spec.axes[c])
    # q and k rows share the within-head permutation; the k part of the bias is a zero constant
    assert {AxisRef("qkv.weight", 0, 0), AxisRef("qkv.weight", 0, 6)} <= set(spec.axes[qk])
    # the head group moves whole blocks of q, k, v rows, proj columns and the bias table's heads
    assert {AxisRef("qkv.weight", 0, 0, 3), AxisRef("qkv.weight", 0, 12, 3), AxisRef("proj.weight", 1, 0, 3),
            AxisRef("table", 1)} <= set(spec.axes[heads])
    function_preserved(module, spec, x, generic=True)


def test_talking_heads_mix_heads_but_leave_within_head_dimensions_free(function_preserved):
    module, x, spec = _fully_permutable(lambda: Heads("talking"), (2, 5, 4))
    assert spec.groups["mix_l"] == 2  # the mixed attention maps are hidden units of their own
    parents = set(spec.nested.values())
    assert len(parents) == 2  # q/k heads feed mix_l; mix_w's outputs are v's heads
    function_preserved(module, spec, x, generic=True)


def test_position_factors_fix_the_query_key_dimensions_inside_their_heads(function_preserved):
    torch.manual_seed(0)
    module = Heads("rotary")
    x = torch.randn(2, 5, 4)
    spec = derive_spec(module, x)
    # the order of q and k dimensions is fixed inside each head, but they move with their heads
    assert [g for g in spec.frozen] == ["qkv[0:6]", "qkv[6:12]"]
    assert all(r.startswith("moves only with its heads: joined at") for r in spec.frozen.values())
    assert spec.frozen_sizes == {"qkv[0:6]": 0, "qkv[6:12]": 0}
    heads = next(g for g in spec.groups if g.endswith(".heads"))
    assert AxisRef("qkv.weight", 0, 0, 3) in spec.axes[heads] and spec.unit_sizes[heads] == 12
    assert spec.coverage() == 1.0
    function_preserved(module, spec, x, generic=True)


def test_a_head_picked_by_index_unnests_its_dimensions(function_preserved):
    torch.manual_seed(0)
    module = Heads("first head")
    x = torch.randn(2, 5, 4)
    spec = derive_spec(module, x)
    assert any(g.endswith(".heads") for g in spec.frozen) and not spec.nested
    function_preserved(module, spec, x, generic=True)


class Padded(nn.Module):
    """F.pad on spatial axes (HGNetV2's stem) and on channels (a fixed entry, as LiteMLA's)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 2)
        self.mix = nn.Conv2d(5, 3, 1)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(F.pad(x, (0, 1, 0, 1))))
        x = F.pad(F.pad(x, (1, 1, 1, 1), mode="replicate"), (0, 0, 0, 0, 1, 0), value=1.0)
        return self.head(self.mix(x).mean((2, 3)))


class GroupStatistics(nn.Module):
    """EvoNorm-S0 written out (timm's ``group_std``): each channel divided by the standard deviation
    of its group of 4 channels, reshaped to (B, groups, 4, H, W) and expanded back."""

    def __init__(self) -> None:
        super().__init__()
        self.expand, self.head = nn.Conv2d(3, 8, 1), nn.Linear(8, 2)
        self.v = nn.Parameter(torch.linspace(0.5, 1.5, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(x)
        b, c, h, w = x.shape
        grouped = x.reshape(b, 2, c // 2, h, w)
        std = grouped.var(dim=(2, 3, 4), unbiased=False, keepdim=True).add(1e-5).sqrt()
        std = std.expand(grouped.shape).reshape(b, c, h, w)
        x = x * (x * self.v.view(1, -1, 1, 1)).sigmoid() / std
        return self.head(x.mean((2, 3)))


def test_a_group_statistic_expanded_over_its_group_keeps_the_groups_together(function_preserved):
    module, x, spec = _fully_permutable(GroupStatistics, (2, 3, 4, 4))
    # the groups move whole, and the channels permute inside each group
    assert spec.groups == {"expand.heads": 2, "expand": 8} and spec.nested == {"expand": "expand.heads"}
    assert {AxisRef("expand.weight", 0, 0, 4), AxisRef("v", 0, 0, 4)} <= set(spec.axes["expand.heads"])
    members = {AxisRef("expand.weight", 0), AxisRef("v", 0), AxisRef("head.weight", 1)}
    assert members <= set(spec.axes["expand"])
    function_preserved(module, spec, x, generic=True)
    # a permutation that mixes the groups would not be a symmetry: the spec must not allow one
    mixed = torch.tensor([0, 1, 2, 4, 3, 5, 6, 7])
    state = generic_state(module)
    swapped = {**state, **{key: state[key][mixed] for key in ("expand.weight", "expand.bias", "v")},
               "head.weight": state["head.weight"][:, mixed]}
    with torch.no_grad():
        assert not torch.allclose(torch.func.functional_call(module, swapped, (x,)),
                                  torch.func.functional_call(module, state, (x,)), rtol=1e-4, atol=1e-5)


def test_constant_padding_keeps_the_units_between_fixed_entries(function_preserved):
    module = Padded()
    x = torch.randn(2, 3, 5, 5)
    spec = derive_spec(module, x)
    assert spec.frozen == {} and AxisRef("mix.weight", 1, 1) in spec.axes["conv"]
    function_preserved(module, spec, x, generic=True)


class Unfold(nn.Module):
    """MobileViT's unfolding of channels and positions into patches and back."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc, self.head = nn.Conv2d(3, 4, 1), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = 1, 4, 4, 4
        x = self.conv(x)
        patches = x.reshape(b * c * 2, 2, 2, 2).transpose(1, 2).reshape(b, c, 4, 4).transpose(1, 3)
        patches = patches.reshape(b * 4, 4, c)
        y = patches + self.fc(patches)
        y = y.reshape(b, 4, 4, c).transpose(1, 3).reshape(b * c * 2, 2, 2, 2).transpose(1, 2)
        return self.head(y.reshape(b, c, h, w).mean((2, 3)))


def test_channels_unfolded_with_positions_are_followed_entry_by_entry(function_preserved):
    module = Unfold()
    x = torch.randn(1, 3, 4, 4)
    spec = derive_spec(module, x)
    assert spec.frozen == {} and spec.coverage() == 1.0
    assert AxisRef("fc.weight", 1) in spec.axes["conv"]
    function_preserved(module, spec, x, generic=True)


class Branching(nn.Module):
    """Data-dependent control flow: fx cannot trace it, so it is registered as a timm leaf."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 3:  # a Proxy comparison under fx
            x = torch.relu(self.inner(x)) + x
        return x * 2


class WithLeaf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.body, self.head = nn.Linear(4, 6), Branching(), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.relu(self.first(x))))


def test_a_module_fx_cannot_trace_is_walked_op_by_op(function_preserved):
    timm_layers = pytest.importorskip("timm.layers")
    timm_layers.register_notrace_module(Branching)
    module = WithLeaf()
    x = torch.randn(3, 4)
    spec = derive_spec(module, x)
    # the residual addition inside the leaf puts its Linear's outputs in the stream of `first`
    assert spec.frozen == {} and set(spec.groups) == {"first"}
    assert {AxisRef("body.inner.weight", 0), AxisRef("body.inner.weight", 1)} <= set(spec.axes["first"])
    function_preserved(module, spec, x, generic=True)


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.layer(x) * mask


def test_a_forward_that_needs_several_inputs_gets_told_how_to_give_one():
    with pytest.raises(SpecError, match=r"TwoInputs.forward needs 2 inputs \(x, mask\).*wrap the model"):
        derive_spec(TwoInputs(), torch.randn(2, 4))
    with pytest.raises(SpecError, match=r"is a dict, not one tensor.*wrap the model"):
        derive_spec(nn.Linear(4, 2), {"x": torch.randn(2, 4)})


class OptionalMask(nn.Module):
    """A second input with a default: the call with one tensor never passes it."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.head = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, scale: float = 1.0) -> torch.Tensor:
        h = torch.relu(self.first(x)) * scale
        if mask is not None:
            h = h * mask
        return self.head(h)


def test_a_defaulted_second_input_is_traced_at_its_default(function_preserved):
    module, x = OptionalMask(), torch.randn(3, 4)
    spec = derive_spec(module, x)
    assert spec.groups == {"first": 6} and spec.frozen == {}
    function_preserved(module, spec, x, generic=True)


class DictInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.layer(batch["x"])


def test_a_forward_that_wants_a_dict_but_gets_a_tensor_is_told_to_wrap_the_model():
    message = r"^DictInput fails on the example input at 'getitem'.*wrap the "
    with pytest.raises(ExampleInputError, match=message) as error:
        derive_spec(DictInput(), torch.randn(2, 4))
    # the failure alone, for a model plugin to add its own advice (timm: the native input size)
    assert error.value.failure.startswith("DictInput fails on the example input at 'getitem'")
    assert "wrap the model" not in error.value.failure and isinstance(error.value, SpecError)
