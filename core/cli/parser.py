"""The ``ridgeline`` command line: list, spec, train, run, report, plot, quickstart."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ridgeline.core.cli import commands
from ridgeline.core.errors import RidgelineError
from ridgeline.core.plugin_host.registry import KINDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ridgeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registry entries")
    p.add_argument("kind", nargs="?", choices=KINDS)
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'weight*'")
    p.set_defaults(func=commands.cmd_list)

    def model_args(p: argparse.ArgumentParser, dataset: str | None = "mnist1d") -> None:
        p.add_argument("--dataset", default=dataset,
                       help=None if dataset else "the input shape and classes (default: the model's "
                       "own input size, else mnist1d)")
        p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE")
        p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                       help="model option, e.g. -o widths=[256,256] or -o arch=resnet18")

    p = sub.add_parser("spec", help="derive and check a model's permutation spec")
    p.add_argument("model", nargs="?", help="a registry entry, or an architecture name (resnet26d)")
    p.add_argument("--all", metavar="PATTERN", dest="pattern",
                   help="a table over every architecture matching PATTERN, e.g. 'cspres*'")
    model_args(p, dataset=None)
    p.add_argument("--seeds", type=int, default=3)
    p.set_defaults(func=commands.cmd_spec)

    p = sub.add_parser("train", help="train a model (or spawn two children) and save checkpoints")
    p.add_argument("--model", default="mlp")
    model_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--checkpoint-every", type=int, help="also save every N steps")
    p.add_argument("--spawn-step", type=int, help="train a parent this many steps, then two children")
    p.add_argument("--out", default="model.safetensors")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser("run", help="run a pipeline TOML file")
    p.add_argument("pipeline")
    p.add_argument("--output", help="results file (default: the pipeline's output)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: the pipeline's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_run)

    p = sub.add_parser("report", help="print a results file as a table")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="the same rows as JSON")
    p.set_defaults(func=commands.cmd_report)

    p = sub.add_parser("plot", help="plot the curves of a results file")
    p.add_argument("file")
    p.add_argument("--out", help="folder for the figures (default: beside the file)")
    p.add_argument("--format", choices=("png", "pdf"), default="png")
    p.set_defaults(func=commands.cmd_plot)

    p = sub.add_parser("compare", help="run several aligners (and corrections) on the same models")
    p.add_argument("pipeline", nargs="?", help="pipeline TOML giving models and data "
                   "(default: the quickstart's)")
    p.add_argument("--aligners", nargs="+", metavar="NAME", help="aligners to compare")
    p.add_argument("--corrections", nargs="+", metavar="SET",
                   help="correction sets: none, bn_reset, repair, bn_reset+repair ...")
    p.add_argument("--out", help="folder for results.h5, checkpoints and plots")
    p.add_argument("--device", default=None, help="cpu, cuda or auto")
    p.add_argument("--format", choices=("png", "pdf"), default="png")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_compare)

    p = sub.add_parser("quickstart", help="train two MNIST-1D MLPs, align them, measure the barriers")
    p.add_argument("--out", default="ridgeline-quickstart")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--num-samples", type=int, default=5000)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--grid", type=int, default=25)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_quickstart)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RidgelineError as error:
        print(f"ridgeline: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
