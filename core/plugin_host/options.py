"""The options a registry entry takes, read from its factory's signature and annotations.

This is the one description of an entry's options: ``ridgeline describe`` prints it, and checks
of a pipeline's options read the same records. A factory declares each option as a keyword
parameter with a type annotation and a default; a closed set of values is a ``typing.Literal``
(``order: Literal["random", "forward"] = "random"``), so the allowed values are written once,
where the option is declared. The parameters ridgeline itself passes (a model's ``input_shape``
and ``num_classes``, a path's ``endpoints``) are not options (:data:`SUPPLIED`).
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

import attrs

SUPPLIED: dict[str, tuple[str, ...]] = {
    "models": ("input_shape", "num_classes"),
    "paths": ("endpoints",),
}
"""Per registry kind, the factory parameters the pipeline fills in (never a user's option)."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of an option that has none (the user must give it)."""


@attrs.frozen
class Option:
    """One keyword option of a factory.

    ``annotation`` is the resolved type (a ``typing`` object or class), or the annotation's text
    when it cannot be resolved, or None when the parameter has none; ``type`` is its readable
    text; ``choices`` the allowed values of a ``Literal`` (with None when the type admits it),
    empty when any value of the type is allowed.
    """

    name: str
    type: str
    default: Any = REQUIRED
    choices: tuple[Any, ...] = ()
    annotation: Any = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@attrs.frozen
class FactoryOptions:
    """Every option of a factory, and whether it also takes further keyword options
    (``**options``) that its docstring describes."""

    options: tuple[Option, ...]
    supplied: tuple[str, ...] = ()
    more: str | None = None

    def __iter__(self):
        return iter(self.options)

    def names(self) -> list[str]:
        return [option.name for option in self.options]


def _target(factory: Callable[..., Any]) -> Callable[..., Any]:
    """The function whose annotations describe the factory's parameters."""
    if inspect.isclass(factory):
        return factory.__init__
    return factory


def _resolve(text: Any, factory: Callable[..., Any]) -> Any:
    """Evaluate a string annotation in the namespace of the module that wrote it."""
    if not isinstance(text, str):
        return text
    namespace = dict(vars(sys.modules.get(_target(factory).__module__, typing)))
    try:
        return eval(text, namespace)  # annotations are code of the plugin, not user input
    except Exception:  # a name imported only for type checkers: keep the text
        return text


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def choices_of(annotation: Any) -> tuple[Any, ...]:
    """The values a ``Literal`` annotation allows (through unions; None when ``| None``)."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    if _is_union(annotation):
        members = typing.get_args(annotation)
        values = [v for m in members for v in choices_of(m)]
        if values and type(None) in members:
            values.append(None)
        return tuple(dict.fromkeys(values))
    return ()


def type_text(annotation: Any) -> str:
    """A readable type: ``int``, ``int | None``, ``Sequence[float]``; a Literal shows the type
    of its values (the values themselves are :func:`choices_of`)."""
    if annotation is None or annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    if annotation is type(None):
        return "None"
    if typing.get_origin(annotation) is Literal:
        return " | ".join(dict.fromkeys(type(v).__name__ if v is not None else "None"
                                        for v in typing.get_args(annotation)))
    if _is_union(annotation):
        return " | ".join(dict.fromkeys(type_text(a) for a in typing.get_args(annotation)))
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is not None and args:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join('...' if a is Ellipsis else type_text(a) for a in args)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def factory_options(factory: Callable[..., Any], kind: str = "") -> FactoryOptions:
    """The options of ``factory`` (a registry entry of ``kind``), in signature order.

    A factory without an introspectable signature yields no options and ``more`` set.
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return FactoryOptions((), more="its signature cannot be read; see its docstring")
    supplied = SUPPLIED.get(kind, ())
    options, given, more = [], [], None
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            more = parameter.name
            continue
        if parameter.kind is parameter.VAR_POSITIONAL or parameter.kind is parameter.POSITIONAL_ONLY:
            continue
        if parameter.name in supplied:
            given.append(parameter.name)
            continue
        annotation = _resolve(parameter.annotation, factory)
        if annotation is inspect.Parameter.empty:
            annotation = None
        default = REQUIRED if parameter.default is inspect.Parameter.empty else parameter.default
        options.append(Option(parameter.name, type_text(annotation), default, choices_of(annotation),
                              annotation))
    return FactoryOptions(tuple(options), tuple(given), more)
