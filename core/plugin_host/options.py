"""The options a registry entry takes, read from its factory's signature and annotations.

This is the one description of an entry's options: ``ridgeline describe`` prints it, and
:func:`check_options` checks a pipeline's options against the same records (types through
:func:`ridgeline.core.validation.matches`). A factory declares each option as a keyword
parameter with a type annotation and a default; a closed set of values is a ``typing.Literal``
(``order: Literal["random", "forward"] = "random"``), so the allowed values are written once,
where the option is declared. The parameters ridgeline itself passes (a model's ``input_shape``
and ``num_classes``, a path's ``endpoints`` and, when it asks for them, the model's ``ties``) are
not options (:data:`SUPPLIED`).
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ridgeline.core.errors import ConfigError
from ridgeline.core.validation import choices_of, describe, matches, type_text

__all__ = ["REQUIRED", "SUPPLIED", "FactoryOptions", "Option", "check_not_supplied", "check_options",
           "choices_of", "factory_options", "type_text"]

SUPPLIED: dict[str, tuple[str, ...]] = {
    "models": ("input_shape", "num_classes"),
    "paths": ("endpoints", "ties"),
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
    declared = {option.name for option in options}
    options += [option for option in _settings_options(factory) if option.name not in declared]
    return FactoryOptions(tuple(options), tuple(given), more)


def _settings_options(factory: Callable[..., Any]) -> list[Option]:
    """The fields of the attrs class a factory names as ``settings_class``: options it takes
    through ``**options`` and hands to that class (a fitted path's ``FitSettings``), described
    and checked like its own."""
    settings = getattr(factory, "settings_class", None)
    if settings is None or not attrs.has(settings):
        return []
    hints = typing.get_type_hints(settings)
    out = []
    for field in attrs.fields(settings):
        annotation = hints.get(field.name)
        default = REQUIRED if field.default is attrs.NOTHING else field.default
        out.append(Option(field.name, type_text(annotation), default, choices_of(annotation), annotation))
    return out


def check_options(where: str, factory: Callable[..., Any], options: Mapping[str, Any], kind: str = "",
                  skip: Iterable[str] = ()) -> None:
    """Refuse options ``factory`` does not take, required ones that are missing, and values whose
    type its annotations exclude (``grid = "ten"`` for ``grid: int | Sequence[float]``), before
    it is built. ``where`` names the entry in the messages (``metric 'loss_barrier'``); the
    parameters ridgeline supplies for ``kind`` (:data:`SUPPLIED`) and ``skip`` are accepted
    unchecked. Ranges are the factory's own business (its constructor raises). Raises
    :class:`ConfigError`."""
    described = factory_options(factory, kind)  # no readable signature: no options, ``more`` set
    supplied = {*SUPPLIED.get(kind, ()), *skip}  # described.supplied is the part of it in the signature
    by_name = {option.name: option for option in described}
    unknown = [k for k in options if k not in by_name and k not in supplied]
    if unknown and described.more is None:
        raise ConfigError(f"{where} has no option {', '.join(repr(k) for k in unknown)}; it takes "
                          f"{', '.join(by_name) or 'no options'}")
    missing = [o.name for o in described if o.required and o.name not in options]
    if missing:
        raise ConfigError(f"{where} needs option {', '.join(repr(k) for k in missing)}")
    for name, value in options.items():
        option = by_name.get(name)
        if option is not None and not matches(value, option.annotation):
            raise ConfigError(f"{where}: option {name} = {value!r} must be {describe(option.annotation)} "
                              f"(got {type(value).__name__})")


def check_not_supplied(where: str, kind: str, options: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Refuse a user's option that ridgeline itself passes to an entry of ``kind``
    (:data:`SUPPLIED`: a model's ``num_classes`` and ``input_shape``, a path's ``endpoints``),
    which would otherwise be passed twice. ``sources`` says where each comes from (``dataset
    'digits' (10 classes)``), for the message. Raises :class:`ConfigError`."""
    for name in SUPPLIED.get(kind, ()):
        if name in options:
            source = sources.get(name, "ridgeline")
            raise ConfigError(f"{where}: {name} is not an option: it comes from {source}; remove "
                              f"{name} = {options[name]!r}")
