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
    MAX_SEGMENTS,
    Label,
    Labels,
    Stacked,
    broadcast,
    collapse,
    fixed_like,
    free_like,
    freeze_all,
    is_uniform,
    merge,
    normalise,
    reshape,
    segments_or_fixed,
    split,
)
from ridgeline.core.symmetry.layer_rules import (
    channel_affine,
    conv,
    group_norm,
    layer_norm,
    linear,
    pooled,
    weight_origin,
)
from ridgeline.core.symmetry.rules import Walk as Walker
from ridgeline.core.symmetry.rules import (
    add_function_rules,
    add_method_rules,
    add_named_function_rule,
    add_stack_aware,
)

_POINTWISE_FUNCTIONS = {
    operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.iadd,
    operator.imul, torch.add, torch.sub, torch.mul, torch.div, torch.relu, torch.sigmoid,
    torch.tanh, torch.exp, torch.addcmul, torch.addcdiv, torch.sqrt, torch.rsqrt, torch.clamp,
    torch.where, torch.abs, torch.erf, torch.rsub, torch.square, torch.minimum, torch.maximum,
    torch.masked_fill, operator.pow,
    F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh, F.mish,
    F.leaky_relu, F.elu, F.dropout, F.softplus, F.hardtanh,
}
_POINTWISE_METHODS = {
    "add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_", "sigmoid", "sigmoid_", "relu",
    "relu_", "tanh", "exp", "sqrt", "rsqrt", "clamp", "clamp_", "pow", "neg", "abs", "float",
    "half", "contiguous", "clone", "detach", "softmax", "log_softmax", "pow_",
    "masked_fill", "masked_fill_", "square", "erf", "reciprocal", "exp_", "gelu", "silu",
    "hardswish", "tanh_", "minimum", "maximum", "bfloat16",
}
_REDUCTIONS = {"mean", "sum", "amax", "amin", "logsumexp", "var", "std"}
_CONSTANT_LIKE = {"zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full", "new_empty"}
_POOL_FUNCTIONS = {F.interpolate, F.adaptive_avg_pool2d, F.avg_pool2d, F.max_pool2d, F.adaptive_max_pool2d,
                   F.adaptive_avg_pool1d, F.avg_pool1d, F.max_pool1d}




def _tensors(args: tuple, largs: tuple) -> list[tuple[Labels, tuple[int, ...]]]:
    return [(lab, tuple(a.shape)) for a, lab in zip(args, largs)
            if isinstance(a, torch.Tensor) and isinstance(lab, Labels)]


def first_only(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
               result: Any) -> Any:
    """x.to(y), x.type_as(y): the values of x; y gives only a dtype or device."""
    if not isinstance(result, torch.Tensor) or result.shape != args[0].shape:
        raise ValueError("not a cast")
    return largs[0]


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
    """Sums, means, norms and maxima over an axis are invariant under permuting it."""
    x, lx = args[0], largs[0]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    dims = _dims(dim, x.dim())
    if isinstance(result, tuple):  # max/min with indices: not labelled
        raise TypeError("a reduction with indices")
    if result.dim() == x.dim():  # keepdim
        return Labels(tuple(None if i in dims else label for i, label in enumerate(lx.axes)))
    if result.dim() != x.dim() - len(dims):
        raise ValueError("unexpected reduction shape")
    return Labels(tuple(label for i, label in enumerate(lx.axes) if i not in dims))


def norm(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
         result: Any) -> Any:
    """x.norm(p, dim): a reduction over ``dim``."""
    dim = kwargs.get("dim", args[2] if len(args) > 2 else None)
    return reduction(w, where, (args[0], dim), {}, largs, lkwargs, result)


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
    order = [d % x.dim() for d in dims]
    if isinstance(lx, Stacked):
        return _moved_stack(lx, order)
    return Labels(tuple(lx.axes[d] for d in order))


def transpose(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
              result: Any) -> Any:
    x, lx = args[0], largs[0]
    a, b = (args[1] % x.dim(), args[2] % x.dim()) if len(args) > 2 else (x.dim() - 2, x.dim() - 1)
    order = list(range(x.dim()))
    order[a], order[b] = order[b], order[a]
    if isinstance(lx, Stacked):
        return _moved_stack(lx, order)
    return Labels(tuple(lx.axes[d] for d in order))


def _moved_stack(lx: Stacked, order: list[int]) -> Stacked:
    """A stack's labels after its axes are reordered (``order[i]`` = the old axis now at i)."""
    axis = order.index(lx.axis)
    rest = [d - (d > lx.axis) for d in order if d != lx.axis]
    return Stacked(axis, tuple(Labels(tuple(part.axes[d] for d in rest)) for part in lx.parts))


def expand(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
           result: Any) -> Any:
    x, lx = args[0], largs[0]
    lead = result.dim() - x.dim()
    return Labels((*(None,) * lead, *(None if x.shape[i] == 1 else label
                                      for i, label in enumerate(lx.axes))))


def repeat(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
           result: Any) -> Any:
    """x.repeat(*sizes): tiling. An axis tiled ``k`` times holds its label ``k`` times over (one
    permutation acting on every copy); new leading axes are fixed."""
    x, lx = args[0], largs[0]
    sizes = tuple(args[1]) if len(args) == 2 and not isinstance(args[1], int) else tuple(args[1:])
    sizes = sizes or tuple(kwargs["repeats"])
    lead = len(sizes) - x.dim()
    axes: list[Label] = [None] * lead
    for label, times in zip(lx.axes, sizes[lead:]):
        if label is not None and times > 1 and times * len(label) > MAX_SEGMENTS:
            raise ValueError("too many copies to follow")
        axes.append(label * times if label is not None else None)
    return Labels(tuple(axes))


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
    """chunk, split, unbind: cut an axis. A cut through a variable makes pieces of it (each
    becomes its own group, tied again wherever the parts meet); a cut inside one unit freezes
    it. ``unbind`` of a stacked axis returns its parts."""
    x, lx = args[0], largs[0]
    outs = list(result)
    squeeze = outs[0].dim() < x.dim()
    dim = args[2] if len(args) > 2 else kwargs.get("dim", args[1] if squeeze and len(args) > 1 else 0)
    dim = dim % x.dim()
    if isinstance(lx, Stacked):
        if squeeze and dim == lx.axis:
            return tuple(lx.parts)
        lx = Labels(_unstacked(w, lx, where))
    if squeeze:
        heads = [_select_head(w, lx, dim, i) for i in range(len(outs))]
        if all(h is not None for h in heads):
            return tuple(heads)
    sizes = [1 if squeeze else o.shape[dim] for o in outs]
    parts = split(w.unions, lx.axes[dim], sizes)
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


def _select_head(w: Walker, lx: Labels, axis: int, index: int) -> Labels | None:
    """Head ``index`` of a head axis: the axis goes, and the within-head dimensions on the other
    axes become that head's entries of their variable (a piece: the heads then freeze, each
    head's dimensions permute on their own). None if ``axis`` is not a head axis."""
    label = lx.axes[axis]
    u = w.unions
    if label is None or len(label) != 1 or label[0][0] is None or label[0][2] != 1:
        return None
    head = u.find(label[0][0])
    axes = []
    found = False
    for k, other in enumerate(lx.axes):
        if k == axis:
            continue
        segments = []
        for var, n, s in other or ():
            if var is not None and u.is_within((var, n, s)) and u.find(u.parent_of(var)) == head:
                var = u.piece(var, index * n, (index + 1) * n)
                found = True
            segments.append((var, n, s))
        axes.append(tuple(segments) if other is not None else None)
    return Labels(tuple(axes)) if found else None


def _unstacked(w: Walker, lx: Stacked, where: str) -> tuple:
    return collapse(w.unions, lx, where).axes


def getitem(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
            result: Any) -> Any:
    """Indexing. Whole axes keep their labels; a slice with step 1 keeps the piece it selects
    (the rest is dropped); an integer picks a stacked part; integers, strided slices and index
    tensors on permutable axes freeze them (on fixed axes they are fine)."""
    container, index = args[0], args[1]
    if not isinstance(container, torch.Tensor):
        inner = largs[0]
        return inner[index] if isinstance(inner, tuple) and isinstance(index, int) else None
    lx = largs[0]
    index = index if isinstance(index, tuple) else (index,)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        fill = container.dim() - sum(1 for i in index if i is not None and i is not Ellipsis)
        index = (*index[:at], *(slice(None),) * fill, *index[at + 1:])
    if isinstance(lx, Stacked):
        lead = index[:lx.axis]
        if (len(index) > lx.axis and isinstance(index[lx.axis], int)
                and all(isinstance(i, slice) and i == slice(None) for i in lead)):
            part = lx.parts[index[lx.axis]]
            rest = (*lead, *index[lx.axis + 1:])
            if all(isinstance(i, slice) and i == slice(None) for i in rest):
                return part
            return getitem(w, where, (container.select(lx.axis, index[lx.axis]), rest), {},
                           (part, None), {}, result)
        lx = Labels(_unstacked(w, lx, where))
    real = [k for k, item in enumerate(index) if item is not None]
    ints = [k for k in real if isinstance(index[k], int)]
    if len(ints) == 1 and all(index[k] == slice(None) for k in real if k not in ints):
        axis = real.index(ints[0])
        head = _select_head(w, lx, axis, index[ints[0]] % container.shape[axis])
        if head is not None:
            axes = list(head.axes)
            for k, item in enumerate(index):
                if item is None:
                    axes.insert(k - sum(1 for kk in ints if kk < k), None)
            if len(axes) == result.dim():
                return Labels(tuple(axes))
    axes: list[Label] = []
    axis = 0
    advanced = [i for i in index if isinstance(i, (torch.Tensor, list, tuple))]
    for item in index:
        if item is None:
            axes.append(None)
            continue
        label = lx.axes[axis]
        size = container.shape[axis]
        if isinstance(item, slice) and item == slice(None):
            axes.append(label)
        elif isinstance(item, slice) and item.step in (None, 1) and label is not None:
            start, stop, _ = item.indices(size)
            kept = split(w.unions, label, [start, max(stop - start, 0), size - max(stop, start)])
            if kept is None:
                freeze_all(w.unions, Labels((label,)), f"indexed at {where}")
                axes.append(None)
            else:
                axes.append(kept[1])
        else:
            if label is not None:
                freeze_all(w.unions, Labels((label,)), f"indexed at {where}")
            if isinstance(item, slice):
                axes.append(None)
            elif advanced and item is advanced[0]:
                axes.extend([None] * torch.as_tensor(item).dim())
        axis += 1
    axes.extend(lx.axes[axis:])
    if len(axes) != result.dim():
        raise ValueError("index form not followed")
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
    """softmax(q k^T / sqrt(d) + mask) v: q and k share the contracted axis, k and v the keys
    axis; the batch axes (heads) of q, k, v and an additive mask (a relative position bias per
    head) are tied; the mask's query and key axes must stay fixed."""
    q, k, v = args[:3]
    lq, lk, lv = largs[:3]
    mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
    lmask = largs[3] if len(largs) > 3 else lkwargs.get("attn_mask")
    if kwargs.get("enable_gqa"):
        raise TypeError("grouped-query attention")
    merge(w.unions, [lq.axes[-1], lk.axes[-1]], where)
    merge(w.unions, [lk.axes[-2], lv.axes[-2]], where)
    batch = [(Labels(lab.axes[:-2]), tuple(t.shape[:-2])) for lab, t in ((lq, q), (lk, k), (lv, v))]
    if isinstance(mask, torch.Tensor):
        lmask = lmask if isinstance(lmask, Labels) else Labels.fixed(mask.dim())
        freeze_all(w.unions, Labels(lmask.axes[-2:]), f"attention mask's query and key axes at {where}")
        batch.append((Labels(lmask.axes[:-2]), tuple(mask.shape[:-2])))
    out = broadcast(w.unions, batch, tuple(result.shape[:-2]), where)
    return Labels((*out.axes, lq.axes[-2], lv.axes[-1]))


def pad(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
        result: Any) -> Any:
    """F.pad: a constant pad adds fixed entries at both ends of the padded axes (a permutable
    axis keeps its units between them); other modes mix entries, so a padded permutable axis
    freezes."""
    x, lx = args[0], largs[0]
    widths = list(args[1] if len(args) > 1 else kwargs["pad"])
    mode = args[2] if len(args) > 2 else kwargs.get("mode", "constant")
    axes = list(lx.axes)
    for i in range(len(widths) // 2):
        axis = x.dim() - 1 - i
        before, after = widths[2 * i], widths[2 * i + 1]
        label = axes[axis]
        if label is None or (before == 0 and after == 0):
            continue
        if mode != "constant" or before < 0 or after < 0:
            freeze_all(w.unions, Labels((label,)), f"padded at {where}")
            axes[axis] = None
            continue
        axes[axis] = tuple(s for s in ((None, before, 1), *label, (None, after, 1)) if s[1])
    return Labels(tuple(axes))


def roll(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
         result: Any) -> Any:
    """torch.roll shifts entries along fixed axes (shifted windows); a rolled permutable axis freezes."""
    x, lx = args[0], largs[0]
    dims = args[2] if len(args) > 2 else kwargs.get("dims")
    dims = range(x.dim()) if dims is None else _dims(dims, x.dim())
    freeze_all(w.unions, Labels(tuple(lx.axes[d] for d in dims)), f"rolled at {where}")
    return Labels(tuple(None if d in dims else label for d, label in enumerate(lx.axes)))


def constant_like(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
                  result: Any) -> Any:
    """zeros_like, ones_like, new_zeros...: a constant, free on every axis if uniform."""
    if not isinstance(result, torch.Tensor) or not is_uniform(result):
        raise ValueError("not a uniform constant")
    return free_like(w.unions, result)


def functional_conv(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple,
                    lkwargs: dict, result: Any) -> Any:
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    lweight = largs[1] if len(largs) > 1 else lkwargs["weight"]
    lbias = largs[2] if len(largs) > 2 else lkwargs.get("bias")
    groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
    return conv(w, weight_origin(w, lweight, where), largs[0], lweight, lbias, weight.shape[0], groups,
                weight.dim() - 2)


def pool_function(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict,
                  result: Any) -> Any:
    return pooled(w, where, largs[0], 1 if "1d" in where else 2, result)


def functional_linear(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple,
                      lkwargs: dict, result: Any) -> Any:
    weight = largs[1] if len(largs) > 1 else lkwargs["weight"]
    bias = largs[2] if len(largs) > 2 else lkwargs.get("bias")
    out_features = (args[1] if len(args) > 1 else kwargs["weight"]).shape[0]
    return linear(w, weight_origin(w, weight, where), largs[0], weight, bias, out_features)


def functional_layer_norm(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple,
                          lkwargs: dict, result: Any) -> Any:
    params = [*(largs[2:4]), lkwargs.get("weight"), lkwargs.get("bias")]
    k = len(args[1]) if not isinstance(args[1], int) else 1
    return layer_norm(w, where, largs[0], k, [p for p in params if isinstance(p, Labels)])


def functional_rms_norm(w: Walker, where: str, args: tuple, kwargs: dict, largs: tuple,
                        lkwargs: dict, result: Any) -> Any:
    """``F.rms_norm(x, normalized_shape, weight, eps)`` (and ``torch.rms_norm``)."""
    shape = args[1] if len(args) > 1 else kwargs["normalized_shape"]
    weight = largs[2] if len(largs) > 2 else lkwargs.get("weight")
    k = 1 if isinstance(shape, int) else len(shape)
    return layer_norm(w, where, largs[0], k, [weight] if isinstance(weight, Labels) else [])


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
    **dict.fromkeys((F.conv1d, F.conv2d, F.conv3d), functional_conv),
    **dict.fromkeys((torch.zeros_like, torch.ones_like, torch.full_like), constant_like),
    **dict.fromkeys((torch.tensor_split,), pieces),
    F.pad: pad, torch.roll: roll, F.normalize: pointwise, torch.unflatten: layout,
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
    F.rms_norm: functional_rms_norm, torch.rms_norm: functional_rms_norm,
    F.batch_norm: functional_batch_norm,
})
add_method_rules({
    **dict.fromkeys(_POINTWISE_METHODS, pointwise),
    **dict.fromkeys(_REDUCTIONS, reduction),
    **dict.fromkeys(("reshape", "view", "flatten", "squeeze", "unsqueeze", "reshape_as",
                     "view_as"), layout),
    **dict.fromkeys(("chunk", "split", "unbind", "split_with_sizes", "tensor_split"), pieces),
    **dict.fromkeys(("expand", "expand_as"), expand),
    **dict.fromkeys(_CONSTANT_LIKE, constant_like),
    "unflatten": layout, "roll": roll, "getitem": getitem, "norm": norm, "to": first_only, "repeat": repeat,
    "type_as": first_only,
    "permute": permute, "transpose": transpose, "matmul": matmul, "bmm": matmul,
    "size": shape_query, "dim": shape_query,
})
add_named_function_rule("resample_abs_pos_embed", resample_pos_embed)
add_named_function_rule("_assert_is_none", shape_query)  # fx's guard on an argument traced at None
add_stack_aware(permute, transpose, pieces, getitem)
