"""The walker: runs a traced graph on a real example and labels every tensor axis.

Modules kept whole by the tracer, functions and tensor methods get their rule from the tables in
:mod:`ridgeline.core.symmetry.rules` (filled by :mod:`~ridgeline.core.symmetry.layer_rules` and
:mod:`~ridgeline.core.symmetry.op_rules`); anything without a rule freezes every variable its
inputs carry (see :mod:`ridgeline.core.symmetry.labels` for labels and variables). A module
that fx could not trace and no rule knows (timm keeps it whole: data-dependent control flow) is
run again op by op under a :class:`~torch.overrides.TorchFunctionMode` that applies the same
rules (:class:`EagerLabeller`), so it is walked through rather than frozen.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Iterable
from typing import Any

import torch
from torch import fx, nn
from torch.overrides import TorchFunctionMode

from ridgeline.core.errors import ExampleInputError
from ridgeline.core.symmetry import rules
from ridgeline.core.symmetry.labels import (
    Label,
    Labels,
    Stacked,
    Unions,
    check_nesting,
    collapse,
    fixed_like,
    free_like,
    freeze_all,
    is_uniform,
    merge,
)
from ridgeline.core.symmetry.rules import Param

# operator-style tensor methods as the rule tables name them
_METHOD_ALIASES = {"__getitem__": "getitem", "__matmul__": "matmul",
                   "rsub": "sub", "__rsub__": "sub", "__radd__": "add", "__rmul__": "mul",
                   "__rtruediv__": "div", "__truediv__": "div", "__neg__": "neg", "__pow__": "pow",
                   "__add__": "add", "__sub__": "sub", "__mul__": "mul", "__iadd__": "add_",
                   "__imul__": "mul_"}


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
        """Labels of a parameter or buffer: a passive variable per axis, referenced. A constant
        outside the state whose entries are all equal is free on every axis."""
        if tensor is None:
            return None
        if key not in self.state_keys:
            return free_like(self.unions, tensor) if is_uniform(tensor) else Labels.fixed(tensor.dim())
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
            if var is not None and self.unions.is_within((var, n, stride)):
                # the same entries serve every head, whose dimensions permute differently
                self.unions.freeze(var, f"{param!r} at {where} is shared by every head", within=True)
                var = None
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
            raise ExampleInputError(
                f"fails on the example input at {where!r} ({n.op} {rules.target_name(n)}): "
                f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
            ) from None
        largs = fx.node.map_arg(n.args, lambda a: self.labels.get(a))
        lkwargs = fx.node.map_arg(n.kwargs, lambda a: self.labels.get(a))
        where = n.name if n.op != "call_module" else str(n.target)
        labels = self.label(n, args, kwargs, largs, lkwargs, result)
        check_nesting(self.unions, labels, where)
        self.labels[n] = labels
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
            largs, lkwargs = self.collapsed(largs, where), self.collapsed(lkwargs, where)
            if module_rule is not None:
                return module_rule(self, where, module, args, largs, result)
            return self.walk_eagerly(module, where, args, kwargs, largs, lkwargs, result)
        rule = rules.op_rule(n)
        if rule is None and n.op == "call_function" and inspect.isfunction(n.target):
            # a Python function fx kept whole (timm's notrace functions): walk it op by op
            return self.walk_eagerly(n.target, where, args, kwargs, largs, lkwargs, result)
        return self.apply_op(rule, f"{n.op} {rules.target_name(n)}", where,
                             args, kwargs, largs, lkwargs, result)

    def walk_eagerly(self, target: Any, where: str, args: tuple, kwargs: dict, largs: Any,
                     lkwargs: Any, result: Any) -> Any:
        """Labels of a module or function fx kept whole, walked op by op; if that fails (a
        call the labeller cannot replay), its inputs freeze as for any op without a rule."""
        try:
            return EagerLabeller(self, target, where).run(args, kwargs, largs, lkwargs)
        except Exception as error:  # the module itself ran fine in the graph: only labelling failed
            what = getattr(target, "__name__", type(target).__name__)
            self.freeze_inputs((largs, lkwargs), where, f"{what} (walked op by op: {type(error).__name__})")
            return fixed_like(result)

    def apply_op(self, rule: rules.OpRule | None, what: str, where: str, args: tuple, kwargs: dict,
                 largs: tuple, lkwargs: dict, result: Any) -> Any:
        """Labels of a function or method's result from its rule; without one (or a call form
        the rule does not parse) its inputs freeze. A constant built from no tensor at all (a
        ``torch.zeros``) whose entries are all equal is free."""
        if rule is not None and not rules.accepts_stacks(rule):
            largs, lkwargs = self.collapsed(largs, where), self.collapsed(lkwargs, where)
        if rule is not None:
            try:
                return rule(self, where, args, kwargs, largs, lkwargs, result)
            except (IndexError, KeyError, TypeError, ValueError, AttributeError):
                pass  # a call form the rule does not parse: treat the op as unknown
        if (isinstance(result, torch.Tensor) and not _has_tensor((args, kwargs))
                and is_uniform(result)):
            return free_like(self.unions, result)
        self.freeze_inputs((largs, lkwargs), where, what)
        return fixed_like(result)

    def collapsed(self, value: Any, where: str) -> Any:
        if isinstance(value, Stacked):
            return collapse(self.unions, value, where)
        if isinstance(value, (tuple, list)):
            return type(value)(self.collapsed(v, where) for v in value)
        if isinstance(value, dict):
            return {k: self.collapsed(v, where) for k, v in value.items()}
        return value


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_has_tensor(v) for v in value.values())
    return False


class EagerLabeller(TorchFunctionMode):
    """Labels a module (or function) that fx could not trace by running it again on the real
    inputs: every torch function and tensor method it calls is labelled by the same rules as in
    a traced graph, and its submodules that have a module rule (Linear, conv, norms...) are
    labelled as a whole. Control flow is resolved by the real values, so nothing has to be
    traceable."""

    def __init__(self, walker: Walker, module: nn.Module | Any, where: str) -> None:
        super().__init__()
        self.walker = walker
        self.module = module
        self.where = where
        self.labels: dict[int, tuple[torch.Tensor, Any]] = {}
        prefix = f"{where}." if where else ""
        tensors = ([*module.named_parameters(), *module.named_buffers()]
                   if isinstance(module, nn.Module) else [])
        self.params = {id(t): f"{prefix}{name}" for name, t in tensors}
        self.param_labels: dict[str, Any] = {}
        self.inside = 0  # > 0 while a submodule with a rule runs
        self.count = 0

    def run(self, args: tuple, kwargs: dict, largs: tuple, lkwargs: dict) -> Any:
        self.remember(args, largs)
        self.remember(kwargs, lkwargs)
        handles = []
        submodules = self.module.named_modules() if isinstance(self.module, nn.Module) else ()
        for name, sub in submodules:
            if sub is not self.module and rules.keeps_whole(sub) and rules.module_rule(sub) is not None:
                handles.append(sub.register_forward_pre_hook(self._enter))
                handles.append(sub.register_forward_hook(self._make_exit(name)))
        try:
            with torch.no_grad(), self:
                result = self.module(*args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()
        return self.lookup(result)

    # -- tensors and their labels ----------------------------------------------------
    def remember(self, value: Any, labels: Any) -> None:
        if isinstance(value, torch.Tensor):
            self.labels[id(value)] = (value, labels if labels is not None else fixed_like(value))
        elif isinstance(value, (tuple, list)) and isinstance(labels, (tuple, list)):
            for v, lab in zip(value, labels):
                self.remember(v, lab)
        elif isinstance(value, dict) and isinstance(labels, dict):
            for k, v in value.items():
                self.remember(v, labels.get(k))

    def lookup(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            known = self.labels.get(id(value))
            if known is not None and known[0] is value:
                return known[1]
            key = self.params.get(id(value))
            if key is not None:
                if key not in self.param_labels:
                    self.param_labels[key] = self.walker.param(key, value)
                return self.param_labels[key]
            return fixed_like(value)
        if isinstance(value, (tuple, list)):
            return type(value)(self.lookup(v) for v in value)
        if isinstance(value, dict):
            return {k: self.lookup(v) for k, v in value.items()}
        return None

    # -- submodules with a rule --------------------------------------------------------
    def _enter(self, module: nn.Module, args: tuple) -> None:
        self.inside += 1

    def _make_exit(self, name: str):
        def exit_(module: nn.Module, args: tuple, output: Any) -> None:
            self.inside -= 1
            if self.inside:
                return
            where = f"{self.where}.{name}" if self.where else name
            largs = self.walker.collapsed(self.lookup(args), where)
            labels = rules.module_rule(module)(self.walker, where, module, args, largs, output)
            check_nesting(self.walker.unions, labels, where)
            self.remember(output, labels)
        return exit_

    # -- every torch function and tensor method ------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if self.inside or not _has_tensor(result):
            return result
        name = getattr(func, "__name__", "")
        is_method = getattr(torch.Tensor, name, None) is func
        if is_method:
            name = _METHOD_ALIASES.get(name, name)
            rule = rules.function_rule(_OPERATORS[name]) if name in _OPERATORS else rules.method_rule(name)
        else:
            rule = rules.function_rule(func)
        self.count += 1
        where = f"{self.where}:{name}_{self.count}"
        labels = self.walker.apply_op(rule, f"{'method' if is_method else 'function'} {name}", where,
                                      tuple(args), kwargs, self.lookup(tuple(args)), self.lookup(kwargs),
                                      result)
        check_nesting(self.walker.unions, labels, where)
        self.remember(result, labels)
        return result


_OPERATORS: dict[str, Any] = {"getitem": operator.getitem, "matmul": operator.matmul}
