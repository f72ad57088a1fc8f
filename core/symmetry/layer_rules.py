"""How layers move axis labels (see :mod:`ridgeline.core.tracing_labels`): Linear and conv
(grouped and depthwise included), BatchNorm, GroupNorm, LayerNorm, pooling, and timm's fused-qkv
``Attention``. Used by :class:`ridgeline.core.tracing_walker.Walker` for modules kept whole and
by :mod:`ridgeline.core.tracing_ops` for their functional forms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import fx, nn

from ridgeline.core.symmetry.labels import Label, Labels, freeze_all

if TYPE_CHECKING:
    from ridgeline.core.symmetry.walker import Walker

POINTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Hardsigmoid, nn.Hardswish, nn.Tanh,
    nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.Identity, nn.Dropout,
    nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Softmax, nn.LogSoftmax,
)
BN_TENSORS = ("weight", "bias", "running_mean", "running_var")
BASE_TENSORS = {*BN_TENSORS, "num_batches_tracked"}
POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
         nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
Param = Labels | str | None  # a parameter's labels (read by get_attr), its state key, or absent


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


def fixed_like(result: Any) -> Any:
    if isinstance(result, torch.Tensor):
        return Labels.fixed(result.dim())
    if isinstance(result, (tuple, list)):
        return tuple(fixed_like(r) for r in result)
    return None


def target_name(n: fx.Node) -> str:
    return getattr(n.target, "__name__", str(n.target))


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
    convolutions tie the block permutation of their input channels to that of their outputs."""
    channel_axis = len(lx.axes) - spatial - 1
    freeze_all(w.unions, Labels(lx.axes[channel_axis + 1:]), f"spatial axes at {where}")
    lin = lx.axes[channel_axis]
    out = w.new_unit(out_channels, where, [weight, bias])
    if groups == 1:
        w.tie(lin, weight, 1, where)
    elif lin is not None and len(lin) == 1 and lin[0][2] == 1 and lin[0][0] is not None:
        w.unions.coarsen(lin[0][0], groups)
        w.unions.coarsen(out[0][0], groups)
        w.unions.union(lin[0][0], out[0][0])
    else:
        freeze_all(w.unions, Labels((lin, out)), f"grouped convolution {where} on an input "
                   "whose channels are not one permutable block")
    return Labels((*lx.axes[:channel_axis], out, *(None,) * spatial))


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
    """LayerNorm over the last ``k`` axes: statistics are permutation invariant, the affine
    parameters follow the normalised axes."""
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
