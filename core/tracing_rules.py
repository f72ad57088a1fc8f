"""How each traced op moves axis labels (see :mod:`ridgeline.core.tracing_labels`).

The :class:`Walker` runs the fx graph on a real example (so every shape is known) and gives
each node's output its labels. Rules exist for linear maps (Linear, conv, incl. grouped and
depthwise), normalisation (BatchNorm, LayerNorm, GroupNorm), elementwise ops and activations,
pooling and reductions, layout ops (reshape, flatten, permute, cat, split, indexing), matmul and
scaled dot-product attention, and timm's fused-qkv ``Attention`` as a whole. Any other op
freezes every variable its inputs carry.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ridgeline.core.errors import SpecError
from ridgeline.core.tracing_labels import (
    Label,
    Labels,
    Unions,
    broadcast,
    freeze_all,
    merge,
    normalise,
    reshape,
    segments_or_fixed,
    split,
)

_POINTWISE_FUNCTIONS = {
    operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.iadd,
    operator.imul, torch.add, torch.sub, torch.mul, torch.div, torch.relu, torch.sigmoid,
    torch.tanh, torch.exp, torch.sqrt, torch.rsqrt, torch.clamp, torch.where, torch.abs,
    F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh, F.mish,
    F.leaky_relu, F.elu, F.dropout, F.softplus, F.hardtanh,
}
_POINTWISE_METHODS = {
    "add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_", "sigmoid", "sigmoid_", "relu",
    "relu_", "tanh", "exp", "sqrt", "rsqrt", "clamp", "clamp_", "pow", "neg", "abs", "float",
    "half", "to", "type_as", "contiguous", "clone", "detach", "softmax", "log_softmax",
}
_POINTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Hardsigmoid, nn.Hardswish, nn.Tanh,
    nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.Identity, nn.Dropout,
    nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Softmax, nn.LogSoftmax,
)
_REDUCTIONS = {"mean", "sum", "amax", "amin", "logsumexp"}
_BN_TENSORS = ("weight", "bias", "running_mean", "running_var")
_BASE_TENSORS = {*_BN_TENSORS, "num_batches_tracked"}
_POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
          nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
_POOL_FUNCTIONS = {F.adaptive_avg_pool2d, F.avg_pool2d, F.max_pool2d, F.adaptive_max_pool2d,
                   F.adaptive_avg_pool1d, F.avg_pool1d, F.max_pool1d}


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
    """timm's VGG ``ConvMlp`` head (a leaf: it branches on the input size)."""
    return (type(module).__name__ == "ConvMlp"
            and isinstance(getattr(module, "fc1", None), nn.Conv2d)
            and isinstance(getattr(module, "fc2", None), nn.Conv2d))


class Walker(fx.Interpreter):
    """Runs a traced graph and labels every node's output."""

    def __init__(self, graph_module: fx.GraphModule, unions: Unions,
                 state_shapes: dict[str, tuple[int, ...]]) -> None:
        super().__init__(graph_module)
        self.unions = unions
        self.state_shapes = state_shapes
        self.state_keys = set(state_shapes)
        self.labels: dict[fx.Node, Any] = {}
        self.modules = dict(graph_module.named_modules())

    # -- helpers ----------------------------------------------------------------------
    def param(self, key: str, tensor: torch.Tensor | None) -> Labels | None:
        """Labels of a parameter or buffer: a passive variable per axis, referenced."""
        if tensor is None:
            return None
        if key not in self.state_keys:
            return Labels.fixed(tensor.dim())
        axes: list[Label] = []
        for axis, n in enumerate(tensor.shape):
            if n == 1:
                axes.append(None)
                continue
            var = self.unions.new(n, unit=False, origin=key)
            self.unions.add_ref(var, key, axis)
            axes.append(((var, n, 1),))
        return Labels(tuple(axes))

    def tie(self, label: Label, param: Param, axis: int, where: str) -> None:
        """Tie ``label`` to ``axis`` of a parameter: a state key (its segments act on the
        matching entries there) or the labels of a parameter read by ``get_attr``."""
        if param is None:
            return
        if isinstance(param, Labels):
            merge(self.unions, [label, param.axes[axis] if axis < len(param.axes) else None], where)
            return
        if param not in self.state_keys:
            freeze_all(self.unions, Labels((label,)), f"{param!r} is not in the state dict")
            return
        if label is None:  # these entries stay fixed (matters if the tensor is used elsewhere)
            size = self.state_shapes[param][axis] if axis < len(self.state_shapes[param]) else 0
            self.unions.add_ref(None, param, axis, length=size)
            return
        offset = 0
        for var, n, stride in label:
            self.unions.add_ref(var, param, axis, offset, stride, length=n * stride)
            offset += n * stride

    def new_unit(self, size: int, origin: str, params: list[Param] = ()) -> Label:
        """A new hidden-unit variable on axis 0 of ``params`` (a weight's rows, a bias)."""
        label: Label = ((self.unions.new(size, unit=True, origin=origin), size, 1),)
        for param in params:
            self.tie(label, param, 0, origin)
        return label

    def freeze_inputs(self, largs: Any, where: str, what: str) -> None:
        freeze_all(self.unions, largs, f"{what} at {where} is not understood by the walker")

    # -- interpreter --------------------------------------------------------------------
    def run_node(self, n: fx.Node) -> Any:
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        try:
            result = super().run_node(n)
        except Exception as error:
            where = n.target if n.op == "call_module" else n.name
            raise SpecError(
                f"the module fails on the example input at {where!r} ({n.op} "
                f"{_target_name(n)}): {type(error).__name__}: {str(error).splitlines()[0]}; "
                "is the input shape right for this architecture?"
            ) from None
        largs = fx.node.map_arg(n.args, lambda a: self.labels.get(a))
        lkwargs = fx.node.map_arg(n.kwargs, lambda a: self.labels.get(a))
        self.labels[n] = self.label(n, args, kwargs, largs, lkwargs, result)
        return result

    def label(self, n: fx.Node, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
              result: Any) -> Any:
        where = n.name if n.op != "call_module" else str(n.target)
        if n.op == "placeholder":
            return _fixed_like(result)
        if n.op == "get_attr":
            return self.param(str(n.target), result) if isinstance(result, torch.Tensor) else None
        if n.op == "output":
            freeze_all(self.unions, largs, "network output (never permuted)")
            return None
        if n.op == "call_module":
            return self.module_rule(str(n.target), self.modules[n.target], args, largs, result)
        rule = _rule_for(n)
        if rule is not None:
            try:
                return rule(self, where, args, kwargs, largs, lkwargs, result)
            except (IndexError, KeyError, TypeError, ValueError, AttributeError):
                pass  # a call form the rule does not parse: treat the op as unknown
        self.freeze_inputs((largs, lkwargs), where, f"{n.op} {_target_name(n)}")
        return _fixed_like(result)

    # -- modules ------------------------------------------------------------------------
    def module_rule(self, name: str, module: nn.Module, args: tuple, largs: tuple,
                    result: Any) -> Any:
        x, lx = (args[0], largs[0]) if args else (None, None)
        prefix = f"{name}." if name else ""

        def p(attr: str) -> str | None:
            path, _, leaf = attr.rpartition(".")
            owner = module.get_submodule(path) if path else module
            return f"{prefix}{attr}" if getattr(owner, leaf, None) is not None else None

        if isinstance(module, nn.Linear):
            out = linear(self, name, lx, p("weight"), p("bias"), module.out_features)
            self.extra_params(name, module, out.axes[-1], out)
            return out
        if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
            out = conv(self, name, lx, p("weight"), p("bias"), module.out_channels, module.groups,
                       len(module.kernel_size))
            self.extra_params(name, module, out.axes[len(out.axes) - len(module.kernel_size) - 1], out)
            return out
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            out = channel_affine(self, name, lx, [p(a) for a in _BN_TENSORS])
            self.extra_params(name, module, lx.axes[1], out)
            return out
        if type(module).forward is nn.GroupNorm.forward:
            return group_norm(self, name, lx, module.num_groups, [p("weight"), p("bias")])
        if type(module).forward is nn.LayerNorm.forward:
            return layer_norm(self, name, lx, len(module.normalized_shape), [p("weight"), p("bias")])
        if isinstance(module, _POINTWISE_MODULES) or type(module).__name__ in ("DropPath", "GELUTanh"):
            return lx
        if isinstance(module, nn.PReLU) and module.num_parameters == 1:
            return lx
        if isinstance(module, _POOLS):
            return pooled(self, name, lx, x.dim() - result.dim() + _spatial(module), result)
        if isinstance(module, nn.Flatten):
            return reshape(self.unions, lx, tuple(x.shape), tuple(result.shape), name)
        if is_fused_attention(module):
            return attention(self, name, module, lx)
        if is_conv_mlp(module):
            hidden = conv(self, f"{name}.fc1", lx, p("fc1.weight"), p("fc1.bias"),
                          module.fc1.out_channels, module.fc1.groups, 2)
            return conv(self, f"{name}.fc2", hidden, p("fc2.weight"), p("fc2.bias"),
                        module.fc2.out_channels, module.fc2.groups, 2)
        self.freeze_inputs(largs, name, f"module {type(module).__name__}")
        return _fixed_like(result)

    def extra_params(self, name: str, module: nn.Module, channel: Label, out: Labels) -> None:
        """Tensors of a Linear/conv/BatchNorm subclass beyond the base class's (a weight-
        standardised conv's ``gain``, a fused activation's parameters): one entry per output
        channel follows the channels; anything else freezes the outputs."""
        tensors = [*module.named_parameters(), *module.named_buffers()]
        for attr, tensor in tensors:
            if attr in _BASE_TENSORS or tensor.numel() <= 1:
                continue
            key = f"{name}.{attr}" if name else attr
            if tensor.numel() == tensor.shape[0] == _axis_entries(channel):
                self.tie(channel, key, 0, name)
            else:
                freeze_all(self.unions, out, f"{name} holds {attr!r}, which the walker does not know")


def _spatial(module: nn.Module) -> int:
    name = type(module).__name__
    return 1 if "1d" in name else 3 if "3d" in name else 2


def _fixed_like(result: Any) -> Any:
    if isinstance(result, torch.Tensor):
        return Labels.fixed(result.dim())
    if isinstance(result, (tuple, list)):
        return tuple(_fixed_like(r) for r in result)
    return None


def _target_name(n: fx.Node) -> str:
    return getattr(n.target, "__name__", str(n.target))


def _axis_entries(label: Label) -> int:
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
    if channel is not None and groups not in (1, _axis_entries(channel)):
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


# -- functions and methods ----------------------------------------------------------------
Rule = Callable[[Walker, str, tuple, dict, tuple, dict, Any], Any]


def _tensors(args: tuple, largs: tuple) -> list[tuple[Labels, tuple[int, ...]]]:
    return [(lab, tuple(a.shape)) for a, lab in zip(args, largs)
            if isinstance(a, torch.Tensor) and isinstance(lab, Labels)]


def pointwise(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
              result: Any) -> Any:
    if not isinstance(result, torch.Tensor):
        return None
    parts = _tensors((*args, *kwargs.values()), (*largs, *lkwargs.values()))
    return broadcast(w.unions, parts, tuple(result.shape), where)


def _dims(dim: Any, ndim: int) -> list[int]:
    if dim is None:
        return list(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return sorted(d % ndim for d in dims)


def reduction(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
              result: Any) -> Any:
    """Sums, means and maxima over an axis are invariant under permuting it."""
    x, lx = args[0], largs[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = kwargs.get("keepdim", args[2] if len(args) > 2 and isinstance(args[2], bool) else False)
    dims = _dims(dim, x.dim())
    if keepdim:
        return Labels(tuple(None if i in dims else label for i, label in enumerate(lx.axes)))
    return Labels(tuple(label for i, label in enumerate(lx.axes) if i not in dims))


def layout(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
           result: Any) -> Any:
    """reshape, view, flatten, squeeze, unsqueeze: follow entries through the new shape."""
    return reshape(w.unions, largs[0], tuple(args[0].shape), tuple(result.shape), where)


def permute(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
            result: Any) -> Any:
    x, lx = args[0], largs[0]
    dims = args[1:] if len(args) > 1 else (kwargs.get("dims"),)
    if len(dims) == 1 and not isinstance(dims[0], int):
        dims = tuple(dims[0])
    return Labels(tuple(lx.axes[d % x.dim()] for d in dims))


def transpose(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
              result: Any) -> Any:
    x, lx = args[0], largs[0]
    a, b = (args[1] % x.dim(), args[2] % x.dim()) if len(args) > 2 else (x.dim() - 2, x.dim() - 1)
    axes = list(lx.axes)
    axes[a], axes[b] = axes[b], axes[a]
    return Labels(tuple(axes))


def expand(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
           result: Any) -> Any:
    x, lx = args[0], largs[0]
    lead = result.dim() - x.dim()
    return Labels((*(None,) * lead, *(None if x.shape[i] == 1 else label
                                      for i, label in enumerate(lx.axes))))


def concatenate(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
                result: Any) -> Any:
    """cat along an axis joins its segments (a block permutation); other axes are tied."""
    tensors, labels = list(args[0]), list(largs[0])
    dim = (args[1] if len(args) > 1 else kwargs.get("dim", 0)) % result.dim()
    axes: list[Label] = []
    for axis in range(result.dim()):
        if axis == dim:
            segments = tuple(s for t, lab in zip(tensors, labels)
                             for s in segments_or_fixed(lab.axes[axis], t.shape[axis]))
            axes.append(normalise(segments))
        else:
            axes.append(merge(w.unions, [lab.axes[axis] for lab in labels], where)
                        if result.shape[axis] > 1 else None)
    return Labels(tuple(axes))


def stack(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
          result: Any) -> Any:
    labels = list(largs[0])
    dim = (args[1] if len(args) > 1 else kwargs.get("dim", 0)) % result.dim()
    axes = [merge(w.unions, [lab.axes[i] for lab in labels], where) for i in range(result.dim() - 1)]
    axes.insert(dim, None)
    return Labels(tuple(axes))


def pieces(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
           result: Any) -> Any:
    """chunk, split, unbind: cut an axis; a cut through a segment freezes it."""
    x, lx = args[0], largs[0]
    outs = list(result)
    squeeze = outs[0].dim() < x.dim()
    dim = args[2] if len(args) > 2 else kwargs.get("dim", args[1] if squeeze and len(args) > 1 else 0)
    dim = dim % x.dim()
    sizes = [1 if squeeze else o.shape[dim] for o in outs]
    parts = split(lx.axes[dim], sizes)
    if parts is None or (squeeze and any(p is not None for p in parts)):
        freeze_all(w.unions, Labels((lx.axes[dim],)), f"split through permutable units at {where}")
        parts = [None] * len(outs)
    result_labels = []
    for part in parts:
        axes = list(lx.axes)
        if squeeze:
            del axes[dim]
        else:
            axes[dim] = part
        result_labels.append(Labels(tuple(axes)))
    return tuple(result_labels)


def getitem(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
            result: Any) -> Any:
    container, index = args[0], args[1]
    if not isinstance(container, torch.Tensor):
        inner = largs[0]
        return inner[index] if isinstance(inner, tuple) and isinstance(index, int) else None
    lx = largs[0]
    index = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, torch.Tensor) or isinstance(i, (list, tuple)) for i in index):
        w.freeze_inputs(largs, where, "advanced indexing")
        return Labels.fixed(result.dim())
    if Ellipsis in index:
        at = index.index(Ellipsis)
        fill = container.dim() - sum(1 for i in index if i is not None and i is not Ellipsis)
        index = (*index[:at], *(slice(None),) * fill, *index[at + 1:])
    axes: list[Label] = []
    axis = 0
    for item in index:
        if item is None:
            axes.append(None)
            continue
        label = lx.axes[axis]
        if isinstance(item, slice) and item == slice(None):
            axes.append(label)
        else:
            freeze_all(w.unions, Labels((label,)), f"indexed at {where}")
            if isinstance(item, slice):
                axes.append(None)
        axis += 1
    axes.extend(lx.axes[axis:])
    return Labels(tuple(axes))


def matmul(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
           result: Any) -> Any:
    """A contraction is invariant under one permutation of the contracted axis on both sides."""
    a, b = args[0], args[1]
    la, lb = largs[0], largs[1]
    if a.dim() < 2 or b.dim() < 2:
        w.freeze_inputs(largs, where, "matmul of vectors")
        return _fixed_like(result)
    merge(w.unions, [la.axes[-1], lb.axes[-2]], where)
    batch = broadcast(w.unions, [(Labels(la.axes[:-2]), tuple(a.shape[:-2])),
                                 (Labels(lb.axes[:-2]), tuple(b.shape[:-2]))],
                      tuple(result.shape[:-2]), where)
    return Labels((*batch.axes, la.axes[-2], lb.axes[-1]))


def sdpa(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
         result: Any) -> Any:
    """softmax(q k^T / sqrt(d)) v: q and k share the contracted axis, k and v the keys axis."""
    if (args[3:] and args[3] is not None) or kwargs.get("attn_mask") is not None:
        w.freeze_inputs((largs, lkwargs), where, "attention with a mask")
        return _fixed_like(result)
    q, k, v = args[:3]
    lq, lk, lv = largs[:3]
    merge(w.unions, [lq.axes[-1], lk.axes[-1]], where)
    merge(w.unions, [lk.axes[-2], lv.axes[-2]], where)
    batch = broadcast(w.unions, [(Labels(lab.axes[:-2]), tuple(t.shape[:-2]))
                                 for lab, t in ((lq, q), (lk, k), (lv, v))],
                      tuple(result.shape[:-2]), where)
    return Labels((*batch.axes, lq.axes[-2], lv.axes[-1]))


def pool_function(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
                  result: Any) -> Any:
    return pooled(w, where, largs[0], 1 if "1d" in where else 2, result)


def functional_linear(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple,
                      lkwargs: dict, result: Any) -> Any:
    weight = largs[1] if len(largs) > 1 else lkwargs["weight"]
    bias = largs[2] if len(largs) > 2 else lkwargs.get("bias")
    out_features = (args[1] if len(args) > 1 else kwargs["weight"]).shape[0]
    return linear(w, where, largs[0], weight, bias, out_features)


def functional_layer_norm(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple,
                          lkwargs: dict, result: Any) -> Any:
    params = [*(largs[2:4]), lkwargs.get("weight"), lkwargs.get("bias")]
    k = len(args[1]) if not isinstance(args[1], int) else 1
    return layer_norm(w, where, largs[0], k, [p for p in params if isinstance(p, Labels)])


def functional_group_norm(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple,
                          lkwargs: dict, result: Any) -> Any:
    params = [*(largs[2:4]), lkwargs.get("weight"), lkwargs.get("bias")]
    return group_norm(w, where, largs[0], args[1], [p for p in params if isinstance(p, Labels)])


def functional_batch_norm(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple,
                          lkwargs: dict, result: Any) -> Any:
    params = [*largs[1:5], *(lkwargs.get(k) for k in ("running_mean", "running_var", "weight", "bias"))]
    return channel_affine(w, where, largs[0], [p for p in params if isinstance(p, Labels)])


def shape_query(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
                result: Any) -> Any:
    return None


def resample_pos_embed(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple,
                       lkwargs: dict, result: Any) -> Any:
    """timm's position-embedding resampling interpolates each channel over the token grid."""
    lx = largs[0]
    freeze_all(w.unions, Labels(lx.axes[:-1]), f"token axes at {where}")
    return Labels((*(None,) * (result.dim() - 1), lx.axes[-1]))


_FUNCTION_RULES: dict[Any, Rule] = {
    **dict.fromkeys(_POINTWISE_FUNCTIONS, pointwise),
    **dict.fromkeys(_POOL_FUNCTIONS, pool_function),
    **dict.fromkeys((torch.mean, torch.sum, torch.amax, torch.amin, torch.logsumexp), reduction),
    **dict.fromkeys((torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze), layout),
    **dict.fromkeys((torch.cat, torch.concat), concatenate),
    **dict.fromkeys((torch.chunk, torch.split, torch.unbind), pieces),
    **dict.fromkeys((torch.matmul, operator.matmul, torch.bmm), matmul),
    **dict.fromkeys((F.softmax, F.log_softmax, torch.softmax), pointwise),
    torch.stack: stack, torch.permute: permute, torch.transpose: transpose,
    operator.getitem: getitem, getattr: shape_query, torch._assert: shape_query,
    F.scaled_dot_product_attention: sdpa, F.linear: functional_linear,
    F.layer_norm: functional_layer_norm, F.group_norm: functional_group_norm,
    F.batch_norm: functional_batch_norm,
}
_METHOD_RULES: dict[str, Rule] = {
    **dict.fromkeys(_POINTWISE_METHODS, pointwise),
    **dict.fromkeys(_REDUCTIONS, reduction),
    **dict.fromkeys(("reshape", "view", "flatten", "squeeze", "unsqueeze", "reshape_as",
                     "view_as"), layout),
    **dict.fromkeys(("chunk", "split", "unbind"), pieces),
    **dict.fromkeys(("expand", "expand_as"), expand),
    "permute": permute, "transpose": transpose, "matmul": matmul, "bmm": matmul,
    "size": shape_query, "dim": shape_query,
}


def _rule_for(n: fx.Node) -> Rule | None:
    if n.op == "call_method":
        return _METHOD_RULES.get(n.target)
    if n.op == "call_function":
        if _target_name(n) == "resample_abs_pos_embed":
            return resample_pos_embed
        return _FUNCTION_RULES.get(n.target)
    return None
