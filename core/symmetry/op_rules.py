"""How functions and tensor methods in a traced graph move axis labels: elementwise ops,
reductions, layout ops (reshape, permute, cat, split, indexing), matmul and scaled dot-product
attention, and the functional forms of the layers in :mod:`ridgeline.core.symmetry.layer_rules`.
Importing this module registers the rules in :mod:`ridgeline.core.symmetry.rules`; an op without
a rule freezes what it touches.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F

from ridgeline.core.symmetry.labels import (
    Label,
    Labels,
    broadcast,
    fixed_like,
    freeze_all,
    merge,
    normalise,
    reshape,
    segments_or_fixed,
    split,
)
from ridgeline.core.symmetry.layer_rules import (
    channel_affine,
    group_norm,
    layer_norm,
    linear,
    pooled,
)
from ridgeline.core.symmetry.rules import Walk as Walker
from ridgeline.core.symmetry.rules import add_function_rules, add_method_rules, add_named_function_rule

_POINTWISE_FUNCTIONS = {
    operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.iadd,
    operator.imul, torch.add, torch.sub, torch.mul, torch.div, torch.relu, torch.sigmoid,
    torch.tanh, torch.exp, torch.addcmul, torch.addcdiv, torch.sqrt, torch.rsqrt, torch.clamp,
    torch.where, torch.abs,
    F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh, F.mish,
    F.leaky_relu, F.elu, F.dropout, F.softplus, F.hardtanh,
}
_POINTWISE_METHODS = {
    "add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_", "sigmoid", "sigmoid_", "relu",
    "relu_", "tanh", "exp", "sqrt", "rsqrt", "clamp", "clamp_", "pow", "neg", "abs", "float",
    "half", "to", "type_as", "contiguous", "clone", "detach", "softmax", "log_softmax",
}
_REDUCTIONS = {"mean", "sum", "amax", "amin", "logsumexp"}
_POOL_FUNCTIONS = {F.interpolate, F.adaptive_avg_pool2d, F.avg_pool2d, F.max_pool2d, F.adaptive_max_pool2d,
                   F.adaptive_avg_pool1d, F.avg_pool1d, F.max_pool1d}




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
        return fixed_like(result)
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
        return fixed_like(result)
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


add_function_rules({
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
})
add_method_rules({
    **dict.fromkeys(_POINTWISE_METHODS, pointwise),
    **dict.fromkeys(_REDUCTIONS, reduction),
    **dict.fromkeys(("reshape", "view", "flatten", "squeeze", "unsqueeze", "reshape_as",
                     "view_as"), layout),
    **dict.fromkeys(("chunk", "split", "unbind"), pieces),
    **dict.fromkeys(("expand", "expand_as"), expand),
    "permute": permute, "transpose": transpose, "matmul": matmul, "bmm": matmul,
    "size": shape_query, "dim": shape_query,
})
add_named_function_rule("resample_abs_pos_embed", resample_pos_embed)
