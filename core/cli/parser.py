"""The ``ridgeline`` command line: the argument parser, one block per command, and ``main``.

Every command and argument carries a one-line plain-text help; the commands that read a
pipeline point to an example file in their epilog (tests/core/cli/test_help.py checks both).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from ridgeline.core.cli import commands
from ridgeline.core.errors import RidgelineError
from ridgeline.core.plugin_host.registry import KINDS

DESCRIPTION = """\
ridgeline: linear mode connectivity of neural networks. Train or load models, align their
hidden units, measure the loss along paths between them, store the results in HDF5, plot them.

  start here      quickstart, init
  discover        list, describe, spec
  run             train, run, compare, bench
  read results    report, plot, export

`ridgeline COMMAND --help` explains a command."""

PIPELINE_EXAMPLE = """\
A pipeline is a TOML file naming a dataset, a model, the model sets (seeds or checkpoints) and
the aligners, corrections, paths and metrics to run on them. Start from one:
  ridgeline init                    writes pipeline.toml, commented key by key
  examples/quickstart.toml          the quickstart's pipeline (in the source repository)
  examples/compare_aligners.toml    every aligner on the quickstart pair
Relative paths in a pipeline file are relative to the file."""

FORMATS = ("png", "pdf", "svg")


def _command(sub, name: str, help: str, epilog: str = "") -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` shows its one-line help and an epilog kept as written."""
    return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                          epilog=epilog or None, formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ridgeline", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of the commands below")

    p = _command(sub, "list", "list the registry entries (models, datasets, aligners, ...)",
                 "example: ridgeline list aligners 'weight*'\n"
                 "then:    ridgeline describe aligners weight_matching")
    p.add_argument("kind", nargs="?", choices=KINDS, help="one registry (default: every one)")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern for names, e.g. 'weight*'")
    p.set_defaults(func=commands.cmd_list)

    def model_args(p: argparse.ArgumentParser, dataset: str | None = "mnist1d") -> None:
        p.add_argument("--dataset", default=dataset, help=(
            f"dataset entry giving the input shape and classes (default: {dataset})" if dataset else
            "dataset entry giving the input shape and classes (default: the model's own input size, "
            "else mnist1d)"))
        p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                       help="dataset option, repeatable, e.g. --dataset-option num_samples=1000")
        p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                       help="model option, repeatable, e.g. -o widths=[256,256] or -o arch=resnet18")

    def threads_argument(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threads", type=int, help="intra-op threads while training (default: torch's); "
                       "with the seed it fixes the result bit for bit")

    p = _command(sub, "spec", "derive and check a model's permutation spec",
                 "examples:\n"
                 "  ridgeline spec mlp -o widths=[64,64]\n"
                 "  ridgeline spec resnet26d                 (a timm architecture at its own size)\n"
                 "  ridgeline spec timm -o arch=resnet18 --dataset synthetic "
                 "--dataset-option image_size=[3,32,32]\n"
                 "  ridgeline spec --all 'cspres*'           (a coverage table over timm models)\n"
                 "A model's options: ridgeline describe models NAME. How specs are derived and\n"
                 "checked: docs/specs.md; a pipeline using a model: examples/compare_batchnorm.toml.")
    p.add_argument("model", nargs="?", help="model entry (mlp, convnet, timm ...) or a timm architecture "
                   "name (resnet26d)")
    p.add_argument("--all", metavar="PATTERN", dest="pattern",
                   help="a table over every timm architecture matching PATTERN, e.g. 'cspres*'")
    model_args(p, dataset=None)
    p.add_argument("--seeds", type=int, default=3, help="random permutations the check tries (default: 3)")
    p.set_defaults(func=commands.cmd_spec)

    p = _command(sub, "train", "train a model (or spawn two children) and save checkpoints",
                 "example: ridgeline train --model mlp -o widths=[256,256] --seed 3 --out m3.safetensors")
    p.add_argument("--model", default="mlp", help="model entry (default: mlp)")
    model_args(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and data order")
    p.add_argument("--epochs", type=int, default=20, help="passes over the training split (default: 20)")
    p.add_argument("--steps", type=int, help="train this many optimiser steps instead of --epochs")
    p.add_argument("--batch-size", type=int, default=128, help="examples per step (default: 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 0.001)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="optimiser (default: adam)")
    p.add_argument("--checkpoint-every", type=int, help="also save every N steps (a checkpoint series)")
    p.add_argument("--spawn-step", type=int, help="train a parent this many steps, then two children")
    threads_argument(p)
    p.add_argument("--out", default="model.safetensors", help="checkpoint file (default: model.safetensors)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.set_defaults(func=commands.cmd_train)

    p = _command(sub, "run", "run a pipeline TOML file (resumes an interrupted run)",
                 "example: ridgeline run examples/quickstart.toml\n\n" + PIPELINE_EXAMPLE)
    p.add_argument("pipeline", help="pipeline TOML file (ridgeline init writes one)")
    p.add_argument("--output", help="results file (default: the pipeline's output)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: the pipeline's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--executor", choices=("serial", "ray"),
                   help="how cells run (default: the pipeline's [executor], else serial)")
    p.add_argument("--address", help="the Ray cluster to run on (host:port, ray://host:port or auto; "
                   "default: the pipeline's [executor] address, else a new local Ray instance)")
    p.set_defaults(func=commands.cmd_run)

    p = _command(sub, "report", "print a results file as a table (key columns; --wide for all)",
                 "examples:\n"
                 "  ridgeline report results.h5\n"
                 "  ridgeline report results.h5 --columns loss_barrier_mean,align_seconds\n"
                 "  ridgeline report results.h5 --json > rows.json")
    p.add_argument("file", help="results file (HDF5) written by run, compare or quickstart")
    p.add_argument("--json", action="store_true", help="every column of every row as JSON")
    p.add_argument("--wide", action="store_true", help="every column of the table, however wide")
    p.add_argument("--columns", metavar="KEY,KEY", help="the value columns to show, by report key "
                   "(as in --json), e.g. loss_barrier,align_seconds")
    p.set_defaults(func=commands.cmd_report)

    p = _command(sub, "plot", "draw the figures of a results file (curves, heatmaps, contours)",
                 "example: ridgeline plot results.h5 --format svg --out figures/\n"
                 "Curves: colour = aligner, line style = path, marker = correction.")
    p.add_argument("file", help="results file (HDF5)")
    p.add_argument("--out", help="folder for the figures (default: beside the file)")
    p.add_argument("--format", choices=FORMATS, default="png", help="image format (default: png)")
    p.set_defaults(func=commands.cmd_plot)

    p = _command(sub, "compare", "run several aligners (and corrections) on the same models",
                 "examples:\n"
                 "  ridgeline compare --aligners identity weight_matching zipit\n"
                 "  ridgeline compare examples/compare_batchnorm.toml\n"
                 "  ridgeline init --template compare && ridgeline compare pipeline.toml\n\n"
                 + PIPELINE_EXAMPLE)
    p.add_argument("pipeline", nargs="?", help="pipeline TOML giving models and data "
                   "(default: the quickstart's)")
    p.add_argument("--aligners", nargs="+", metavar="NAME", help="aligners to compare (replaces the "
                   "pipeline's)")
    p.add_argument("--corrections", nargs="+", metavar="SET",
                   help="correction sets: none, bn_reset, repair, bn_reset+repair ...")
    p.add_argument("--out", help="folder for results.h5, checkpoints and plots")
    p.add_argument("--device", default=None, help="cpu, cuda or auto")
    p.add_argument("--format", choices=FORMATS, default="png", help="image format (default: png)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_compare)

    p = _command(sub, "quickstart", "train two MNIST-1D MLPs, align them, measure the barriers",
                 "The same pipeline as a file: ridgeline init --template quickstart "
                 "(or examples/quickstart.toml).")
    p.add_argument("--out", default="ridgeline-quickstart", help="output folder "
                   "(default: ridgeline-quickstart)")
    p.add_argument("--epochs", type=int, default=20, help="training epochs per model (default: 20)")
    p.add_argument("--num-samples", type=int, default=5000, help="MNIST-1D examples (default: 5000)")
    p.add_argument("--width", type=int, default=512, help="hidden units per layer (default: 512)")
    p.add_argument("--depth", type=int, default=3, help="hidden layers (default: 3)")
    p.add_argument("--grid", type=int, default=25, help="points along each path (default: 25)")
    threads_argument(p)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_quickstart)

    p = _command(sub, "describe", "show an entry's text, options (type, default, allowed values) "
                 "and paper",
                 "examples:\n"
                 "  ridgeline describe aligners weight_matching\n"
                 "  ridgeline describe weight_matching      (searches every registry)\n"
                 "  ridgeline describe metrics              (every metric)")
    p.add_argument("kind", metavar="KIND", help=f"registry ({', '.join(KINDS)}; singular works too), "
                   "or an entry name")
    p.add_argument("name", nargs="?", metavar="NAME", help="entry name (default: every entry of KIND)")
    p.set_defaults(func=commands.cmd_describe)

    p = _command(sub, "init", "write a commented pipeline TOML to start from",
                 "templates:\n"
                 "  quickstart  two MLPs on MNIST-1D, identity and weight matching, the linear path\n"
                 "  compare     several aligners and corrections on the same pair\n"
                 "  landscape   curves, layer-wise and Taylor barriers and a plane on one pair\n"
                 "then: ridgeline run pipeline.toml")
    p.add_argument("--template", choices=commands.TEMPLATES, default="quickstart",
                   help="which pipeline to start from (default: quickstart)")
    p.add_argument("--out", default="pipeline.toml", help="file to write (default: pipeline.toml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=commands.cmd_init)

    p = _command(sub, "export", "write a results file's tidy tables as CSV or Parquet",
                 "example: ridgeline export results.h5 --format csv --out tables/\n"
                 "Writes <stem>_report, _summaries, _curves and _alignments tables; Parquet needs\n"
                 "pandas and pyarrow (pip install 'ridgeline[pandas]'). docs/results-format.md\n"
                 "shows reading the HDF5 file directly from Python, pandas and R.")
    p.add_argument("file", help="results file (HDF5)")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="table format (default: csv)")
    p.add_argument("--out", help="folder for the tables (default: beside the file)")
    p.set_defaults(func=commands.cmd_export)

    p = _command(sub, "bench", "measure where a pipeline's time goes, as ratios to act on",
                 "example: ridgeline bench examples/quickstart.toml\n"
                 "Nothing is trained or written: checkpoints are used where they exist, freshly\n"
                 "initialised states otherwise. Ratios against a bare forward pass, evaluation and\n"
                 "`import torch` (docs/performance.md).")
    p.add_argument("pipeline", help="pipeline TOML file (nothing is trained or written)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: the pipeline's)")
    p.add_argument("--points", type=int, default=9, help="path points per measurement")
    p.add_argument("--repeats", type=int, default=3, help="repeats of the baselines (median)")
    p.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    p.add_argument("--json", action="store_true", help="the same measurements as JSON, for scripts")
    p.set_defaults(func=commands.cmd_bench)
    return parser


def _plain_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   line: str | None = None) -> str:
    """A warning as the command line shows it: one line, no source file or code."""
    return f"ridgeline: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show = warnings.formatwarning
    warnings.formatwarning = _plain_warning
    try:
        return args.func(args)
    except RidgelineError as error:
        print(f"ridgeline: error: {error}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = show


if __name__ == "__main__":
    raise SystemExit(main())
