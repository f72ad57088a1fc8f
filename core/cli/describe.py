"""``ridgeline describe``: everything a user needs to use one registry entry, as plain text.

The entry's full docstring; its options with type, default and allowed values (read from the
factory's signature and annotations by :func:`ridgeline.core.plugin_host.options.factory_options`,
the same description the option checks use); the plugin and distribution that provide it; the
method and paper it implements (the docstring of the module that defines it, where first-party
plugins cite the paper and equation); and how to write it in a pipeline TOML.
"""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Any

from ridgeline.core import __version__
from ridgeline.core.cli.text import plain_text, reflow
from ridgeline.core.plugin_host.host import INTERNAL_PLUGINS, PluginHost
from ridgeline.core.plugin_host.options import REQUIRED, FactoryOptions, Option, factory_options

# where each kind's entries go in a pipeline TOML: a table of its own, or a list of entries
_SECTION = {"models": "model", "datasets": "dataset"}


def value_text(value: Any) -> str:
    """An option's value as it is written in a pipeline TOML (None, which TOML cannot write,
    as ``None``: leave the key out)."""
    if value is REQUIRED:
        return "(required)"
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return repr(value)


def _table(options: FactoryOptions, width: int) -> str:
    header = ("option", "type", "default", "allowed values")
    rows = [(o.name, o.type or "any", value_text(o.default),
             ", ".join(value_text(c) for c in o.choices)) for o in options]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[:3])]
    lead = 2 + sum(w + 2 for w in widths)
    last = max(20, width - lead)
    lines = []
    for row in (header, *rows):
        cells = "  ".join(c.ljust(w) for c, w in zip(row, widths))
        wrapped = textwrap.wrap(row[3], last) or [""]
        lines.append(("  " + cells + "  " + wrapped[0]).rstrip())
        lines += [" " * lead + more for more in wrapped[1:]]
    return "\n".join(lines)


def _pipeline_snippet(kind: str, name: str, options: tuple[Option, ...]) -> str:
    shown = [o for o in options if o.required]
    shown += [o for o in options if not o.required and o.default is not None][: max(0, 2 - len(shown))]

    def value(option: Option) -> str:
        if option.required:  # a placeholder the user replaces
            return '"<str>"' if option.type == "str" else f"<{option.type or 'value'}>"
        return value_text(option.default)

    if kind in _SECTION:
        return "\n".join([f"[{_SECTION[kind]}]", f"name = {json.dumps(name)}",
                          *(f"{o.name} = {value(o)}" for o in shown)])
    entry = ", ".join([f"name = {json.dumps(name)}", *(f"{o.name} = {value(o)}" for o in shown)])
    entry = f"{{ {entry} }}" if shown else json.dumps(name)
    return f"{kind} = [[{entry}]]" if kind == "corrections" else f"{kind} = [{entry}]"


def _provenance(host: PluginHost, plugin: str) -> str:
    distribution = host.distributions.get(plugin)
    if distribution is None and plugin in INTERNAL_PLUGINS:
        return f"plugin {plugin} (first-party), distribution ridgeline {__version__}"
    if distribution is None:
        return f"plugin {plugin} (registered in this process, no distribution)"
    version = host.versions.get(plugin)
    return f"plugin {plugin}, distribution {distribution}" + (f" {version}" if version else "")


def describe(host: PluginHost, kind: str, name: str, *, width: int = 100) -> str:
    """The plain-text description of the entry ``name`` of ``kind`` (see the module docstring)."""
    registry = host.registries.of(kind)
    entry = registry.entry(name)
    factory = registry.get(name)
    options = factory_options(factory, kind)
    title = f"{name} ({kind[:-1]})"
    parts = [f"{title}\n{'=' * len(title)}",
             reflow(plain_text(getattr(factory, "__doc__", None) or entry.summary or "(no docstring)"),
                    width)]

    section = ["Options"]
    if options.options:
        section.append(_table(options, width))
    else:
        section.append("  (none)")
    if options.supplied:
        section.append(f"  Given by ridgeline, not options: {', '.join(options.supplied)}.")
    if options.more:
        section.append(reflow(f"Also takes further keyword options (**{options.more}), as the text "
                              "above describes.", width, "  "))
    parts.append("\n".join(section))

    module_name = getattr(factory, "__module__", "") or ""
    qualname = getattr(factory, "__qualname__", getattr(factory, "__name__", repr(factory)))
    parts.append(f"Provided by\n  {_provenance(host, entry.plugin)}\n  factory {module_name}.{qualname}")

    module = sys.modules.get(module_name)
    method = plain_text(getattr(module, "__doc__", None) or "")
    if method:
        parts.append(f"Method and references (from {module_name})\n" + reflow(method, width - 2, "  "))

    snippet = _pipeline_snippet(kind, name, options.options)
    parts.append("In a pipeline TOML\n" + textwrap.indent(snippet, "  "))
    return "\n\n".join(parts)
