"""Checking a registry entry's keyword options against its factory's signature, before it is built.

A factory's annotations are its option types: ``grid: int | Sequence[float] = 25`` accepts 25 or
``[0, 0.5, 1]`` and refuses ``"ten"``. :func:`check_options` refuses an unknown option (listing
the accepted ones) and a value of the wrong type (naming the entry, the option, the value and the
type it should be), so a pipeline can check every entry before it trains a model or creates a
file. Ranges (``grid >= 2``) are the factory's own business: its constructor raises
:class:`~ridgeline.core.errors.ConfigError`.

The type check understands ``int``, ``float`` (an int is a float), ``bool``, ``str``, ``None``,
unions, ``Literal``, ``Any``, sequences (``list``/``tuple``/``Sequence``: a list or a tuple, TOML
having no tuples; never a string), mappings and plain classes; an annotation it cannot resolve or
does not understand accepts every value (a third-party factory may annotate as it likes).
"""

from __future__ import annotations

import collections.abc
import inspect
import numbers
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ridgeline.core.errors import ConfigError

_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def _hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """The factory's resolved parameter annotations; unresolvable ones are left out."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # a name only imported for type checkers: resolve what can be resolved
        pass
    namespace = getattr(inspect.getmodule(target), "__dict__", {})
    hints = {}
    for name, annotation in getattr(target, "__annotations__", {}).items():
        try:
            hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
        except Exception:
            continue
    return hints


def matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits ``annotation`` (see the module docstring for what is understood)."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, arg) for arg in args)
    if origin is typing.Literal:
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
    return True  # a TypeVar, a Protocol, a string we could not resolve...


def describe(annotation: Any) -> str:
    """An annotation as a reader writes it: ``int | Sequence[float]``, not ``typing.Union[...]``."""
    if inspect.isclass(annotation) and not typing.get_args(annotation):
        return annotation.__name__
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    text = str(annotation).replace("NoneType", "None")
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", text)


def check_options(where: str, factory: Callable[..., Any], options: Mapping[str, Any],
                  skip: Iterable[str] = ()) -> None:
    """Refuse options ``factory`` does not take, and values whose type its annotations exclude.

    ``where`` names the entry in the messages (``metric 'loss_barrier'``); ``skip`` lists
    arguments the caller supplies itself (a model's ``input_shape``, a path's ``endpoints``),
    which must be accepted but are not checked. Raises :class:`ConfigError`.
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no introspectable signature: let the call decide
        return
    skipped = set(skip)
    params = signature.parameters
    accepted = [p.name for p in params.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in skipped]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [k for k in options if k not in params or params[k].kind in (
        inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY)]
    if unknown and not takes_any:
        raise ConfigError(f"{where} has no option {', '.join(repr(k) for k in unknown)}; it takes "
                          f"{', '.join(accepted) or 'no options'}")
    missing = [p.name for p in params.values() if p.default is p.empty and p.name not in options
               and p.name not in skipped and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if missing:
        raise ConfigError(f"{where} needs option {', '.join(repr(k) for k in missing)}")
    hints = _hints(factory)
    for name, value in options.items():
        if name in skipped or name not in params or name not in hints:
            continue
        if not matches(value, hints[name]):
            raise ConfigError(f"{where}: option {name} = {value!r} must be {describe(hints[name])} "
                              f"(got {type(value).__name__})")


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
