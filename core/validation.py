"""Values checked against type annotations, with messages a user reads.

One reading of annotations for the whole house: :func:`matches` says whether a value fits an
annotation, :func:`type_text` and :func:`choices_of` write it for a reader (``int | None``;
the values of a ``Literal``), :func:`describe` says what a value must be, and :func:`checked`
is an attrs validator built from them (the configs: ``TrainConfig``, ``FitSettings``,
``PipelineConfig``). A registry entry's options are read from its factory's signature by
:mod:`ridgeline.core.plugin_host.options`, which checks them with :func:`matches`.

:func:`matches` understands ``int``, ``float`` (an int is a float), ``bool``, ``str``, ``None``,
unions, ``Literal``, ``Any``, sequences (``list``/``tuple``/``Sequence``: a list or a tuple, TOML
having no tuples; never a string), mappings and plain classes; an annotation it cannot resolve
or does not understand accepts every value (a third-party factory may annotate as it likes).
"""

from __future__ import annotations

import collections.abc
import inspect
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ridgeline.core.errors import ConfigError

_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


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


def describe(annotation: Any) -> str:
    """What a value of ``annotation`` must be, as a message says it: ``int | Sequence[float]``,
    ``one of 'adam', 'sgd'``, and for a closed set beside other types ``one of 'dataset', 'none',
    'model', or Mapping[str, float]``."""
    members = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    if not any(typing.get_origin(m) is Literal for m in members):
        return type_text(annotation)
    closed = [m for m in members if typing.get_origin(m) is Literal or m is type(None)]
    choices = "one of " + ", ".join(repr(c) for c in choices_of(annotation))
    others = [m for m in members if m not in closed]
    return f"{choices}, or {' | '.join(type_text(m) for m in others)}" if others else choices


def matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits ``annotation`` (see the module docstring for what is understood)."""
    if annotation is Any or annotation is None or annotation is inspect.Parameter.empty:
        return True
    if annotation is type(None):
        return value is None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if _is_union(annotation):
        return any(matches(value, arg) for arg in args)
    if origin is Literal:
        return value in args
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    container = origin or annotation
    if container in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args))
        element = args[0] if args else Any
        return all(matches(v, element) for v in value)
    if container in _MAPPINGS:
        if not isinstance(value, Mapping):
            return False
        key, item = args if len(args) == 2 else (Any, Any)
        return all(matches(k, key) and matches(v, item) for k, v in value.items())
    if inspect.isclass(container):
        try:
            return isinstance(value, container)
        except TypeError:
            return True
    return True  # a TypeVar, a Protocol, an annotation left as text...


def checked(annotation: Any, *, at_least: float | None = None, above: float | None = None,
            below: float | None = None) -> Callable[[Any, Any, Any], None]:
    """An attrs validator: the value fits ``annotation`` and, unless None, lies in the range
    (``at_least <= value``, ``above < value``, ``value < below``); otherwise a
    :class:`ConfigError` naming the record (its ``scope`` attribute, else its class) and field."""
    def validate(instance: Any, attribute: Any, value: Any) -> None:
        scope = getattr(type(instance), "scope", type(instance).__name__)
        if not matches(value, annotation):
            raise ConfigError(f"{scope} option {attribute.name} = {value!r} must be "
                              f"{describe(annotation)} (got {type(value).__name__})")
        if value is None:
            return
        for bound, ok, text in ((at_least, lambda b: value >= b, ">="), (above, lambda b: value > b, ">"),
                                (below, lambda b: value < b, "<")):
            if bound is not None and not ok(bound):
                raise ConfigError(f"{scope} option {attribute.name} = {value!r} must be {text} {bound}")
    return validate
