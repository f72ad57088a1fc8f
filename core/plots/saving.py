"""Writing a figure: the format from the file's suffix (PNG, PDF or SVG), and metadata that say
which results file and which pipeline configuration produced it; and what every kind of figure
reads from that configuration (:func:`provenance`, the order of its entries
:func:`config_order`, the split each metric measured :func:`metric_splits`).

The metadata go where each format keeps them: PNG text chunks and SVG Dublin Core fields
(``Title``, ``Source``: the results file, ``Description``: the pipeline config as JSON), the PDF
information dictionary (``Title``, ``Subject``: the results file, ``Keywords``: the config).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ridgeline.core import __version__
from ridgeline.core.results.readers import read_metadata
from ridgeline.core.results.tables import entry_label, entry_order

FORMATS = ("png", "pdf", "svg")
_UNSAFE = re.compile(r'[<>:"\\|?*\x00-\x1f]')
"""Characters a file name cannot hold on some systems (Windows) or that shells treat specially."""


def provenance(results: str | Path) -> dict[str, str]:
    """What produced a figure drawn from ``results``: the file's absolute path and the pipeline
    configuration stored in it (JSON, keys sorted)."""
    config = read_metadata(results).get("config", {})
    return {"results": str(Path(results).resolve()), "config": json.dumps(config, sort_keys=True)}


def config_order(results: str | Path) -> dict[str, list[str]]:
    """The pipeline's model sets, aligners, corrections and paths in the order its config lists
    them (:func:`~ridgeline.core.results.tables.entry_order`; styles follow this order, so the
    same config draws the same styles)."""
    return entry_order(read_metadata(results).get("config", {}))


def metric_splits(results: str | Path) -> dict[str, tuple[str, str]]:
    """Metric label -> (registry name, split it was measured on): the config's ``split`` option,
    or the metric factory's default."""
    from ridgeline.core.plugin_host.host import registries
    from ridgeline.core.plugin_host.options import factory_options

    out = {}
    for entry in read_metadata(results).get("config", {}).get("metrics", []):
        split = entry.get("split")
        if split is None:
            try:
                factory = registries().metrics.get(entry["name"])
            except LookupError:  # a plugin no longer installed
                factory = None
            defaults = {o.name: o.default for o in factory_options(factory)} if factory else {}
            split = defaults.get("split") if isinstance(defaults.get("split"), str) else "default"
        out[entry_label(entry)] = (str(entry["name"]), str(split))
    return out


def _metadata(fmt: str, title: str, source: Mapping[str, str] | None) -> dict[str, Any]:
    creator = f"ridgeline {__version__}"
    results = (source or {}).get("results", "")
    config = (source or {}).get("config", "")
    if fmt == "pdf":
        meta = {"Title": title, "Creator": creator}
        if source:
            meta |= {"Subject": f"ridgeline results file {results}", "Keywords": f"pipeline config {config}"}
        return meta
    meta = {"Title": title, ("Software" if fmt == "png" else "Creator"): creator}
    if source:
        meta |= {"Source": results, "Description": f"pipeline config {config}"}
    return meta


def save_figure(fig: Any, out: str | Path, *, title: str = "", source: Mapping[str, str] | None = None,
                dpi: int = 120) -> Path:
    """Write ``fig`` to ``out`` (PNG when the suffix is not .png, .pdf or .svg) with ``title``
    and the :func:`provenance` ``source`` in its metadata; close it; return the path written."""
    out = Path(out)
    out = out.with_name(_UNSAFE.sub("_", out.name))  # names come from model sets ("sweep:seed0-seed1")
    if out.suffix.lower().lstrip(".") not in FORMATS:
        out = out.with_name(out.name + ".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, metadata=_metadata(out.suffix.lower().lstrip("."), title, source))
    plt.close(fig)
    return out
