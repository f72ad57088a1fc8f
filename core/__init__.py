"""ridgeline's public API: every name a plugin or a script needs, in one place.

Plugins and scripts import from here (``from ridgeline.core import Aligner, Alignment``) and
from :mod:`ridgeline.core.numerics` (the shared mathematics). Everything else under
``ridgeline.core`` is internal: its modules may move between releases. Names are imported
lazily, on first use, so ``import ridgeline.core`` costs almost nothing.

The layers behind this facade (docs/architecture.md): ``errors``, ``state`` and ``checkpoint``
at the base; ``symmetry`` (the Symmetry interface: permutation specs and their derivation, tree
and expert symmetries, products); ``interfaces`` (what a plugin implements); ``numerics`` (shared
mathematics, public); ``plugin_host`` (hooks and registries);
``results`` (the HDF5 store and its readers); ``run`` (configs, pipelines, training); and the
views ``plots`` (figures, public for scripts) and ``cli``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ridgeline.core._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    # errors
    **dict.fromkeys((
        "RidgelineError", "UnknownEntryError", "DuplicateEntryError", "PluginLoadError",
        "StateMismatchError", "SpecError", "CheckpointError", "ConfigError",
        "ResultsMismatchError", "ResultsReadError", "DataError", "MissingExtraError", "CellError",
        "NonFiniteStateError", "ExampleInputError"), "ridgeline.core.errors"),
    # states and checkpoints
    **dict.fromkeys(("State", "Ties"), "ridgeline.core.state"),
    "load_state": "ridgeline.core.checkpoint",
    "save_state": "ridgeline.core.checkpoint",
    "load_metadata": "ridgeline.core.checkpoint",
    # symmetry
    **dict.fromkeys(("PermutationSpec", "AxisRef", "SpecCheck", "Perms"), "ridgeline.core.symmetry.spec"),
    **dict.fromkeys(("Symmetry", "Transform"), "ridgeline.core.symmetry.symmetry"),
    "SymmetryProduct": "ridgeline.core.symmetry.product",
    **dict.fromkeys(("TreeSymmetry", "tree_leaf_paths"), "ridgeline.core.symmetry.trees"),
    "ExpertSymmetry": "ridgeline.core.symmetry.experts",
    **dict.fromkeys(("derive_spec", "generic_state"), "ridgeline.core.symmetry.derive"),
    "add_module_rule": "ridgeline.core.symmetry.rules",
    # the interfaces a plugin implements, and what they are given
    "Model": "ridgeline.core.interfaces.model",
    "Dataset": "ridgeline.core.interfaces.dataset",
    **dict.fromkeys(("Evaluator", "Evaluation", "has_batchnorm"), "ridgeline.core.interfaces.evaluator"),
    **dict.fromkeys(("Aligner", "Alignment", "AlignContext"), "ridgeline.core.interfaces.aligner"),
    "Path": "ridgeline.core.interfaces.path",
    "FittedCurve": "ridgeline.core.numerics.curve_fitting",
    **dict.fromkeys(("Metric", "PathProbe", "Record"), "ridgeline.core.interfaces.metric"),
    "Correction": "ridgeline.core.interfaces.correction",
    # the plugin host
    **dict.fromkeys(("hookimpl", "load_plugins", "registries"), "ridgeline.core.plugin_host.host"),
    **dict.fromkeys(("KINDS", "Registry", "Registries"), "ridgeline.core.plugin_host.registry"),
    # running
    **dict.fromkeys(("run_pipeline", "Pipeline"), "ridgeline.core.run.pipeline"),
    "PipelineConfig": "ridgeline.core.run.config",
    **dict.fromkeys(("TrainConfig", "train", "spawn"), "ridgeline.core.run.training"),
    **dict.fromkeys(("measure_trajectory", "measure_along", "checkpoint_series"),
                    "ridgeline.core.run.trajectory"),
    # reading results
    **dict.fromkeys(("read_metadata", "read_summaries", "read_curves", "read_alignments", "read_failures",
                     "Rows"), "ridgeline.core.results.readers"),
    "export_tables": "ridgeline.core.results.export",
    **dict.fromkeys(("report_rows", "format_table"), "ridgeline.core.results.tables"),
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what static tools see; at run time names load on first use
    from ridgeline.core.checkpoint import load_metadata, load_state, save_state
    from ridgeline.core.errors import (
        CellError,
        CheckpointError,
        ConfigError,
        DataError,
        DuplicateEntryError,
        ExampleInputError,
        MissingExtraError,
        NonFiniteStateError,
        PluginLoadError,
        ResultsMismatchError,
        ResultsReadError,
        RidgelineError,
        SpecError,
        StateMismatchError,
        UnknownEntryError,
    )
    from ridgeline.core.interfaces.aligner import AlignContext, Aligner, Alignment
    from ridgeline.core.interfaces.correction import Correction
    from ridgeline.core.interfaces.dataset import Dataset
    from ridgeline.core.interfaces.evaluator import Evaluation, Evaluator, has_batchnorm
    from ridgeline.core.interfaces.metric import Metric, PathProbe, Record
    from ridgeline.core.interfaces.model import Model
    from ridgeline.core.interfaces.path import Path
    from ridgeline.core.numerics.curve_fitting import FittedCurve
    from ridgeline.core.plugin_host.host import hookimpl, load_plugins, registries
    from ridgeline.core.plugin_host.registry import KINDS, Registries, Registry
    from ridgeline.core.results.export import export_tables
    from ridgeline.core.results.readers import (
        Rows,
        read_alignments,
        read_curves,
        read_failures,
        read_metadata,
        read_summaries,
    )
    from ridgeline.core.results.tables import format_table, report_rows
    from ridgeline.core.run.config import PipelineConfig
    from ridgeline.core.run.pipeline import Pipeline, run_pipeline
    from ridgeline.core.run.training import TrainConfig, spawn, train
    from ridgeline.core.run.trajectory import checkpoint_series, measure_along, measure_trajectory
    from ridgeline.core.state import State, Ties
    from ridgeline.core.symmetry.derive import derive_spec, generic_state
    from ridgeline.core.symmetry.experts import ExpertSymmetry
    from ridgeline.core.symmetry.product import SymmetryProduct
    from ridgeline.core.symmetry.rules import add_module_rule
    from ridgeline.core.symmetry.spec import AxisRef, Perms, PermutationSpec, SpecCheck
    from ridgeline.core.symmetry.symmetry import Symmetry, Transform
    from ridgeline.core.symmetry.trees import TreeSymmetry, tree_leaf_paths
