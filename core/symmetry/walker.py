"""The walker: runs a traced graph on a real example and labels every tensor axis.

Modules kept whole by the tracer get their rule from :mod:`ridgeline.core.tracing_layers`,
functions and methods from :mod:`ridgeline.core.tracing_ops`; anything else freezes every
variable its inputs carry (see :mod:`ridgeline.core.tracing_labels` for labels and variables).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

from ridgeline.core.errors import SpecError
from ridgeline.core.symmetry.labels import Label, Labels, Unions, freeze_all, merge, reshape
from ridgeline.core.symmetry.layer_rules import (
    BASE_TENSORS,
    BN_TENSORS,
    POINTWISE_MODULES,
    POOLS,
    Param,
    attention,
    axis_entries,
    channel_affine,
    conv,
    fixed_like,
    group_norm,
    is_conv_mlp,
    is_fused_attention,
    layer_norm,
    linear,
    pooled,
    spatial_axes,
    target_name,
)
from ridgeline.core.symmetry.op_rules import rule_for


class Walker(fx.Interpreter):
    """Runs a traced graph and labels every node's output."""

    def __init__(self, graph_module: fx.GraphModule, unions: Unions,
                 state_shapes: dict[str, tuple[int, ...]]) -> None:
        super().__init__(graph_module)
        self.extra_traceback = False  # our errors already name the node
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
                f"{target_name(n)}): {type(error).__name__}: {str(error).splitlines()[0]}; "
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
            return fixed_like(result)
        if n.op == "get_attr":
            return self.param(str(n.target), result) if isinstance(result, torch.Tensor) else None
        if n.op == "output":
            freeze_all(self.unions, largs, "network output (never permuted)")
            return None
        if n.op == "call_module":
            return self.module_rule(str(n.target), self.modules[n.target], args, largs, result)
        rule = rule_for(n)
        if rule is not None:
            try:
                return rule(self, where, args, kwargs, largs, lkwargs, result)
            except (IndexError, KeyError, TypeError, ValueError, AttributeError):
                pass  # a call form the rule does not parse: treat the op as unknown
        self.freeze_inputs((largs, lkwargs), where, f"{n.op} {target_name(n)}")
        return fixed_like(result)

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
            out = channel_affine(self, name, lx, [p(a) for a in BN_TENSORS])
            self.extra_params(name, module, lx.axes[1], out)
            return out
        if type(module).forward is nn.GroupNorm.forward:
            return group_norm(self, name, lx, module.num_groups, [p("weight"), p("bias")])
        if type(module).forward is nn.LayerNorm.forward:
            return layer_norm(self, name, lx, len(module.normalized_shape), [p("weight"), p("bias")])
        if isinstance(module, POINTWISE_MODULES) or type(module).__name__ in ("DropPath", "GELUTanh"):
            return lx
        if isinstance(module, nn.PReLU) and module.num_parameters == 1:
            return lx
        if isinstance(module, nn.Upsample):
            return pooled(self, name, lx, x.dim() - 2, result)
        if isinstance(module, POOLS):
            return pooled(self, name, lx, x.dim() - result.dim() + spatial_axes(module), result)
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
        return fixed_like(result)

    def extra_params(self, name: str, module: nn.Module, channel: Label, out: Labels) -> None:
        """Tensors of a Linear/conv/BatchNorm subclass beyond the base class's (a weight-
        standardised conv's ``gain``, a fused activation's parameters): one entry per output
        channel follows the channels; anything else freezes the outputs."""
        tensors = [*module.named_parameters(), *module.named_buffers()]
        for attr, tensor in tensors:
            if attr in BASE_TENSORS or tensor.numel() <= 1:
                continue
            key = f"{name}.{attr}" if name else attr
            if tensor.numel() == tensor.shape[0] == axis_entries(channel):
                self.tie(channel, key, 0, name)
            else:
                freeze_all(self.unions, out, f"{name} holds {attr!r}, which the walker does not know")
