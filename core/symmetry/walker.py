"""The walker: runs a traced graph on a real example and labels every tensor axis.

Modules kept whole by the tracer, functions and tensor methods get their rule from the tables in
:mod:`ridgeline.core.symmetry.rules` (filled by :mod:`~ridgeline.core.symmetry.layer_rules` and
:mod:`~ridgeline.core.symmetry.op_rules`); anything without a rule freezes every variable its
inputs carry (see :mod:`ridgeline.core.symmetry.labels` for labels and variables).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import fx

from ridgeline.core.errors import SpecError
from ridgeline.core.symmetry import rules
from ridgeline.core.symmetry.labels import Label, Labels, Unions, fixed_like, freeze_all, merge
from ridgeline.core.symmetry.rules import Param


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

    def new_unit(self, size: int, origin: str, params: Iterable[Param] = ()) -> Label:
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
                f"{rules.target_name(n)}): {type(error).__name__}: {str(error).splitlines()[0]}; "
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
            module = self.modules[n.target]
            module_rule = rules.module_rule(module)
            if module_rule is not None:
                return module_rule(self, where, module, args, largs, result)
            self.freeze_inputs(largs, where, f"module {type(module).__name__}")
            return fixed_like(result)
        rule = rules.op_rule(n)
        if rule is not None:
            try:
                return rule(self, where, args, kwargs, largs, lkwargs, result)
            except (IndexError, KeyError, TypeError, ValueError, AttributeError):
                pass  # a call form the rule does not parse: treat the op as unknown
        self.freeze_inputs((largs, lkwargs), where, f"{n.op} {rules.target_name(n)}")
        return fixed_like(result)
