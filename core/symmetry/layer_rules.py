"""How layers move axis labels (see :mod:`ridgeline.core.symmetry.labels`): Linear and conv
(grouped and depthwise included), BatchNorm, GroupNorm, LayerNorm, RMSNorm, pooling, and timm's fused-qkv
``Attention``. Importing this module registers the module rules in
:mod:`ridgeline.core.symmetry.rules`; :mod:`ridgeline.core.symmetry.op_rules` reuses the label
algebra here for the functional forms of the same layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ridgeline.core.symmetry.labels import MAX_SEGMENTS, Label, Labels, fixed_like, freeze_all, reshape
from ridgeline.core.symmetry.rules import Param, add_module_rule
from ridgeline.core.symmetry.rules import Walk as Walker

POINTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Hardsigmoid, nn.Hardswish, nn.Tanh,
    nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.Identity, nn.Dropout,
    nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Softmax, nn.LogSoftmax,
)
BN_TENSORS = ("weight", "bias", "running_mean", "running_var")
BASE_TENSORS = {*BN_TENSORS, "num_batches_tracked"}
POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
         nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)


def is_fused_attention(module: nn.Module) -> bool:
    """timm's ``Attention``: fused ``qkv`` Linear, per-head softmax, ``proj`` Linear, and
    nothing per head that would break a head or within-head permutation."""
    return (type(module).__name__ == "Attention"
            and isinstance(getattr(module, "qkv", None), nn.Linear)
            and isinstance(getattr(module, "proj", None), nn.Linear)
            and isinstance(getattr(module, "num_heads", None), int)
            and isinstance(getattr(module, "head_dim", None), int)
            and module.qkv.out_features == 3 * module.num_heads * module.head_dim
            and all(isinstance(getattr(module, name, nn.Identity()), nn.Identity)
                    for name in ("q_norm", "k_norm", "norm"))
            and getattr(module, "gate", None) is None)


def is_conv_mlp(module: nn.Module) -> bool:
    """timm's VGG ``ConvMlp`` head (a leaf: it branches on the input size): conv, activation,
    dropout, conv, activation."""
    return (type(module).__name__ == "ConvMlp"
            and isinstance(getattr(module, "fc1", None), nn.Conv2d)
            and isinstance(getattr(module, "fc2", None), nn.Conv2d)
            and all(isinstance(getattr(module, name, None), POINTWISE_MODULES)
                    for name in ("act1", "drop", "act2")))


def spatial_axes(module: nn.Module) -> int:
    name = type(module).__name__
    return 1 if "1d" in name else 3 if "3d" in name else 2


def axis_entries(label: Label) -> int:
    return sum(n * s for _, n, s in label or ())


# -- linear maps --------------------------------------------------------------------------
def linear(w: Walker, where: str, lx: Labels, weight: Param, bias: Param,
           out_features: int) -> Labels:
    """y = x W^T + b: W's input axis follows x's last axis; the outputs are new units."""
    w.tie(lx.axes[-1], weight, 1, where)
    return Labels((*lx.axes[:-1], w.new_unit(out_features, where, [weight, bias])))


def conv(w: Walker, where: str, lx: Labels, weight: Param, bias: Param,
         out_channels: int, groups: int, spatial: int) -> Labels:
    """Convolution over the channel axis (before ``spatial`` axes). Grouped (and depthwise)
    convolutions tie the block permutation of their input channels to that of their outputs;
    over concatenated inputs, each input segment moves its own blocks with the output channels
    those blocks feed (a piece of the output)."""
    channel_axis = len(lx.axes) - spatial - 1
    freeze_all(w.unions, Labels(lx.axes[channel_axis + 1:]), f"spatial axes at {where}")
    lin = lx.axes[channel_axis]
    out = w.new_unit(out_channels, where, [weight, bias])
    if groups == 1:
        w.tie(lin, weight, 1, where)
    elif lin is not None:
        _grouped(w, where, lin, out[0][0], out_channels, groups)
    return Labels((*lx.axes[:channel_axis], out, *(None,) * spatial))


def _grouped(w: Walker, where: str, lin: Label, out: int, out_channels: int, groups: int) -> None:
    u = w.unions
    per_in = axis_entries(lin) // groups
    per_out = out_channels // groups
    at = 0
    for var, n, stride in lin:
        entries = n * stride
        if entries % per_in or (var is not None and (stride != 1 or u.is_within((var, n, stride)))):
            freeze_all(u, Labels((lin, ((out, out_channels, 1),))), f"grouped convolution {where} on "
                       "an input whose channels do not fall into whole groups")
            return
        first, count = at // per_in, entries // per_in
        at += entries
        if var is None:  # fixed input channels: each group's outputs move only among themselves
            if count > MAX_SEGMENTS:
                u.freeze(u.piece(out, first * per_out, (first + count) * per_out),
                         f"grouped convolution {where} over fixed input channels")
                continue
            for g in range(first, first + count):
                u.piece(out, g * per_out, (g + 1) * per_out)
            continue
        part = u.piece(out, first * per_out, (first + count) * per_out)
        u.coarsen(var, count)
        u.coarsen(part, count)
        u.union(var, part)


def weight_origin(w: Walker, weight: Param, where: str) -> str:
    """The name a functional layer's units get: its weight's module (``blocks.0.attn.qkv`` for
    ``F.linear(x, self.qkv.weight, ...)``), else ``where``."""
    if isinstance(weight, Labels) and weight.axes and weight.axes[0]:
        var = weight.axes[0][0][0]
        origin = w.unions.vars[var].origin if var is not None else ""
        if origin.endswith(".weight"):
            return origin[: -len(".weight")]
    return where


def channel_affine(w: Walker, where: str, lx: Labels, params: list[Param]) -> Labels:
    """BatchNorm: per-channel statistics and affine parameters follow channel axis 1."""
    for param in params:
        w.tie(lx.axes[1], param, 0, where)
    return lx


def group_norm(w: Walker, where: str, lx: Labels, groups: int, params: list[Param]) -> Labels:
    """GroupNorm mixes statistics inside each of its groups: only whole groups may move."""
    channel = lx.axes[1]
    if channel is not None and groups not in (1, axis_entries(channel)):
        if len(channel) == 1 and channel[0][2] == 1:
            w.unions.coarsen(channel[0][0], groups)
        else:
            freeze_all(w.unions, Labels((channel,)), f"GroupNorm {where} over concatenated channels")
    return channel_affine(w, where, lx, params)


def layer_norm(w: Walker, where: str, lx: Labels, k: int, params: list[Param]) -> Labels:
    """LayerNorm or RMSNorm over the last ``k`` axes: the statistic (mean and variance, or the
    root mean square, over the normalised axes) is permutation invariant, the affine parameters
    follow the normalised axes."""
    for param in params:
        for i in range(k):
            w.tie(lx.axes[len(lx.axes) - k + i], param, i, where)
    return lx


def pooled(w: Walker, where: str, lx: Labels, spatial: int, result: torch.Tensor) -> Labels:
    keep = lx.axes[:len(lx.axes) - spatial]
    freeze_all(w.unions, Labels(lx.axes[len(lx.axes) - spatial:]), f"pooled axes at {where}")
    return Labels((*keep, *(None,) * (result.dim() - len(keep))))


def attention(w: Walker, name: str, module: nn.Module, lx: Labels) -> Labels:
    """timm ``Attention`` (fused qkv): heads move as a whole (q, k and v rows of a head and the
    proj columns it feeds); inside a head, q and k dimensions share one permutation, v and
    proj's input another (Vaswani et al. 2017, Eq. 1: softmax(Q K^T / sqrt(d)) V is invariant
    under Q -> Q P, K -> K P and equivariant under V -> V P)."""
    u, heads, dim = w.unions, module.num_heads, module.head_dim
    width = heads * dim
    prefix = f"{name}." if name else ""
    w.tie(lx.axes[-1], f"{prefix}qkv.weight", 1, name)
    head = u.new(heads, unit=True, origin=f"{prefix}heads")
    qk = u.new(width, unit=True, origin=f"{prefix}qk", parent=head)
    v = u.new(width, unit=True, origin=f"{prefix}v", parent=head)
    keys = [f"{prefix}qkv.weight"] + ([f"{prefix}qkv.bias"] if module.qkv.bias is not None else [])
    for key in keys:
        for part in range(3):
            u.add_ref(head, key, 0, part * width, dim, nested=True)
        u.add_ref(qk, key, 0, 0, 1, nested=True)
        u.add_ref(qk, key, 0, width, 1, nested=True)
        u.add_ref(v, key, 0, 2 * width, 1, nested=True)
    u.add_ref(head, f"{prefix}proj.weight", 1, 0, dim, nested=True)
    u.add_ref(v, f"{prefix}proj.weight", 1, 0, 1, nested=True)
    proj = module.proj
    out = w.new_unit(proj.out_features, f"{prefix}proj",
                     [f"{prefix}proj.weight", f"{prefix}proj.bias" if proj.bias is not None else None])
    return Labels((*lx.axes[:-1], out))


# -- modules kept whole: the rules the walker looks up ------------------------------------
def param_key(name: str, module: nn.Module, attr: str) -> str | None:
    """The state key of ``module``'s tensor ``attr`` (dotted for a submodule's), or None if the
    module has no such tensor (a Linear without bias)."""
    path, _, leaf = attr.rpartition(".")
    owner = module.get_submodule(path) if path else module
    prefix = f"{name}." if name else ""
    return f"{prefix}{attr}" if getattr(owner, leaf, None) is not None else None


def extra_params(w: Walker, name: str, module: nn.Module, channel: Label, out: Labels) -> None:
    """Tensors of a Linear/conv/BatchNorm subclass beyond the base class's (a weight-
    standardised conv's ``gain``, a fused activation's parameters): one entry per output
    channel follows the channels; anything else freezes the outputs."""
    tensors = [*module.named_parameters(), *module.named_buffers()]
    for attr, tensor in tensors:
        if attr in BASE_TENSORS or tensor.numel() <= 1:
            continue
        key = f"{name}.{attr}" if name else attr
        if tensor.numel() == tensor.shape[0] == axis_entries(channel):
            w.tie(channel, key, 0, name)
        else:
            freeze_all(w.unions, out, f"{name} holds {attr!r}, which the walker does not know")


def linear_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                  result: Any) -> Labels:
    out = linear(w, name, largs[0], param_key(name, module, "weight"), param_key(name, module, "bias"),
                 module.out_features)
    extra_params(w, name, module, out.axes[-1], out)
    return out


def conv_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                result: Any) -> Any:
    if module.transposed:  # kept whole, but not understood
        w.freeze_inputs(largs, name, f"module {type(module).__name__}")
        return fixed_like(result)
    out = conv(w, name, largs[0], param_key(name, module, "weight"), param_key(name, module, "bias"),
               module.out_channels, module.groups, len(module.kernel_size))
    extra_params(w, name, module, out.axes[len(out.axes) - len(module.kernel_size) - 1], out)
    return out


def batch_norm_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                      result: Any) -> Labels:
    lx = largs[0]
    out = channel_affine(w, name, lx, [param_key(name, module, a) for a in BN_TENSORS])
    extra_params(w, name, module, lx.axes[1], out)
    return out


def group_norm_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                      result: Any) -> Labels:
    return group_norm(w, name, largs[0], module.num_groups,
                      [param_key(name, module, "weight"), param_key(name, module, "bias")])


def layer_norm_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                      result: Any) -> Labels:
    return layer_norm(w, name, largs[0], len(module.normalized_shape),
                      [param_key(name, module, "weight"), param_key(name, module, "bias")])


def rms_norm_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                    result: Any) -> Labels:
    """``nn.RMSNorm`` and timm's ``RmsNorm`` / ``RmsNormFp32`` (Zhang and Sennrich 2019, Eq. 4:
    x / RMS(x) * g over the last axes): a LayerNorm without a mean or a bias."""
    return layer_norm(w, name, largs[0], len(module.normalized_shape), [param_key(name, module, "weight")])


def is_timm_rms_norm(module: nn.Module) -> bool:
    """timm's ``RmsNorm`` / ``RmsNormFp32``: ``rms_norm(x, normalized_shape, weight, eps)`` over
    the last axes (the fast path through apex or autocast included; neither changes the axes)."""
    return (type(module).__name__ in ("RmsNorm", "RmsNormFp32")
            and isinstance(getattr(module, "normalized_shape", None), tuple))


def pointwise_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                     result: Any) -> Any:
    return largs[0]


def upsample_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                    result: Any) -> Labels:
    return pooled(w, name, largs[0], args[0].dim() - 2, result)


def pool_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                result: Any) -> Labels:
    return pooled(w, name, largs[0], args[0].dim() - result.dim() + spatial_axes(module), result)


def flatten_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                   result: Any) -> Labels:
    return reshape(w.unions, largs[0], tuple(args[0].shape), tuple(result.shape), name)


def attention_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                     result: Any) -> Labels:
    return attention(w, name, module, largs[0])


def conv_mlp_module(w: Walker, name: str, module: nn.Module, args: tuple, largs: tuple,
                    result: Any) -> Labels:
    hidden = conv(w, f"{name}.fc1", largs[0], param_key(name, module, "fc1.weight"),
                  param_key(name, module, "fc1.bias"), module.fc1.out_channels, module.fc1.groups, 2)
    return conv(w, f"{name}.fc2", hidden, param_key(name, module, "fc2.weight"),
                param_key(name, module, "fc2.bias"), module.fc2.out_channels, module.fc2.groups, 2)


def _exact(base: type[nn.Module]):
    """Modules whose forward is ``base``'s own (subclasses that only add attributes)."""
    return lambda m: type(m).forward is base.forward


add_module_rule(lambda m: isinstance(m, nn.Linear), linear_module, keep_whole=True)
add_module_rule(lambda m: isinstance(m, nn.modules.conv._ConvNd), conv_module, keep_whole=True)
add_module_rule(lambda m: isinstance(m, nn.modules.batchnorm._BatchNorm), batch_norm_module,
                keep_whole=True)
add_module_rule(_exact(nn.GroupNorm), group_norm_module, keep_whole=True)
add_module_rule(_exact(nn.LayerNorm), layer_norm_module, keep_whole=True)
add_module_rule(_exact(nn.RMSNorm), rms_norm_module, keep_whole=True)
add_module_rule(is_timm_rms_norm, rms_norm_module, keep_whole=True)
add_module_rule(lambda m: isinstance(m, POINTWISE_MODULES) or type(m).__name__ in ("DropPath", "GELUTanh"),
                pointwise_module)
add_module_rule(lambda m: isinstance(m, nn.PReLU) and m.num_parameters == 1, pointwise_module)
add_module_rule(lambda m: isinstance(m, nn.Upsample), upsample_module)
add_module_rule(lambda m: isinstance(m, POOLS), pool_module)
add_module_rule(lambda m: isinstance(m, nn.Flatten), flatten_module)
add_module_rule(is_fused_attention, attention_module, keep_whole=True)
add_module_rule(is_conv_mlp, conv_mlp_module, keep_whole=True)
