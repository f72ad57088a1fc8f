"""The rule tables spec derivation consults: how a module kept whole, a function or a tensor
method moves axis labels (:mod:`ridgeline.core.symmetry.labels`).

The walker (:mod:`ridgeline.core.symmetry.walker`) only looks rules up here. The rule modules
fill the tables when imported: :mod:`ridgeline.core.symmetry.layer_rules` (modules, and the
label algebra of Linear, conv, norms, pooling and attention) and
:mod:`ridgeline.core.symmetry.op_rules` (functions and methods). No rule module imports the
walker: a rule receives it as a :class:`Walk`, the few operations a rule may use. So the import
graph is a tree: labels <- rules <- layer_rules <- op_rules, and the walker beside them.

A module rule is ``rule(walk, name, module, args, largs, result) -> labels of the output``; an
op rule is ``rule(walk, where, args, kwargs, largs, lkwargs, result)``. ``largs``/``lkwargs``
are the labels of ``args``/``kwargs``. A rule that cannot parse a call form raises
``IndexError``, ``KeyError``, ``TypeError``, ``ValueError`` or ``AttributeError``; the walker
then treats the op as unknown and freezes what it touches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from torch import fx, nn

from ridgeline.core.symmetry.labels import Label, Labels, Unions

Param = Labels | str | None  # a parameter's labels (read by get_attr), its state key, or absent


class Walk(Protocol):
    """What a rule may use of the walker that runs it."""

    unions: Unions
    state_shapes: dict[str, tuple[int, ...]]

    def tie(self, label: Label, param: Param, axis: int, where: str) -> None:
        """Tie ``label`` to ``axis`` of a parameter (a state key, or labels read by get_attr)."""

    def new_unit(self, size: int, origin: str, params: Iterable[Param] = ()) -> Label:
        """A new hidden-unit variable on axis 0 of ``params`` (a weight's rows, a bias)."""

    def freeze_inputs(self, largs: Any, where: str, what: str) -> None:
        """Freeze every variable ``largs`` carries: ``what`` at ``where`` is not understood."""


ModuleRule = Callable[[Walk, str, nn.Module, tuple, tuple, Any], Any]
OpRule = Callable[[Walk, str, tuple, dict, tuple, dict, Any], Any]


_MODULE_RULES: list[tuple[Callable[[nn.Module], bool], ModuleRule, bool]] = []
_FUNCTION_RULES: dict[Any, OpRule] = {}
_NAMED_FUNCTION_RULES: dict[str, OpRule] = {}
_METHOD_RULES: dict[str, OpRule] = {}
_STACK_AWARE: set[OpRule] = set()


def add_module_rule(matches: Callable[[nn.Module], bool], rule: ModuleRule, *,
                    keep_whole: bool = False) -> None:
    """Label modules for which ``matches(module)`` is true with ``rule`` (first match wins, in
    registration order). ``keep_whole``: the tracer keeps such modules as leaves instead of
    tracing into them (modules under ``torch.nn`` are leaves anyway)."""
    _MODULE_RULES.append((matches, rule, keep_whole))


def add_function_rules(rules: Mapping[Any, OpRule]) -> None:
    """Rules for ``call_function`` nodes, keyed by the function object."""
    _FUNCTION_RULES.update(rules)


def add_named_function_rule(name: str, rule: OpRule) -> None:
    """A rule for ``call_function`` nodes whose function has this ``__name__`` (functions that
    fx wraps, like timm's ``resample_abs_pos_embed``, are not the same object everywhere)."""
    _NAMED_FUNCTION_RULES[name] = rule


def add_method_rules(rules: Mapping[str, OpRule]) -> None:
    """Rules for ``call_method`` nodes, keyed by the tensor method's name."""
    _METHOD_RULES.update(rules)


def add_stack_aware(*rules: OpRule) -> None:
    """Rules that accept :class:`~ridgeline.core.symmetry.labels.Stacked` labels (permute,
    transpose, unbind, indexing); the walker collapses stacks before any other rule."""
    _STACK_AWARE.update(rules)


def accepts_stacks(rule: OpRule) -> bool:
    return rule in _STACK_AWARE


def module_rule(module: nn.Module) -> ModuleRule | None:
    """The rule for a module kept whole, or None (the walker then freezes its inputs)."""
    for matches, rule, _ in _MODULE_RULES:
        if matches(module):
            return rule
    return None


def keeps_whole(module: nn.Module) -> bool:
    """Whether a registered rule asks the tracer to keep ``module`` as a leaf."""
    return any(keep and matches(module) for matches, _, keep in _MODULE_RULES)


def target_name(n: fx.Node) -> str:
    """A node's function or method name, for rules and messages."""
    return getattr(n.target, "__name__", str(n.target))


def op_rule(n: fx.Node) -> OpRule | None:
    """The rule for a function or method node, or None (the walker then freezes its inputs)."""
    if n.op == "call_method":
        return _METHOD_RULES.get(n.target)
    if n.op == "call_function":
        return function_rule(n.target)
    return None


def function_rule(function: Any) -> OpRule | None:
    """The rule for a function object (by identity, else by ``__name__`` for wrapped ones)."""
    name = getattr(function, "__name__", None)
    named = _NAMED_FUNCTION_RULES.get(name) if isinstance(name, str) else None
    try:
        return named or _FUNCTION_RULES.get(function)
    except TypeError:  # an unhashable callable
        return named


def method_rule(name: str) -> OpRule | None:
    """The rule for a tensor method called by name (``reshape``, ``__getitem__``...)."""
    return _METHOD_RULES.get(name)
