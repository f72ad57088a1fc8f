"""What each ``ridgeline`` subcommand does. Every command imports its machinery when it runs,
so ``ridgeline --help`` and ``ridgeline list`` stay fast."""

from __future__ import annotations

import argparse
import ast
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ridgeline.core.errors import ConfigError, RidgelineError, UnknownEntryError
from ridgeline.core.plugin_host.registry import KINDS

TEMPLATES = ("quickstart", "compare", "landscape")
"""The pipelines ``ridgeline init`` writes (``core/cli/templates/<name>.toml``)."""


def _value(text: str) -> Any:
    """Parse an option value as a Python literal when possible (3, 0.1, [512, 512], True)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _options(pairs: Sequence[str] | None) -> dict[str, Any]:
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise ConfigError(f"option {pair!r} should look like key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = _value(value.strip())
    return out


def cmd_list(args: argparse.Namespace) -> int:
    from ridgeline.core.cli.text import plain_text, shorten, terminal_width
    from ridgeline.core.plugin_host.host import INTERNAL_PLUGINS, registries

    regs = registries()
    kinds = [args.kind] if args.kind else list(KINDS)
    width = terminal_width()
    for kind in kinds:
        registry = regs.of(kind)
        names = registry.list(args.pattern)
        print(f"{kind}:")
        column = max((len(n) for n in names), default=0) + 4
        for name in names:
            entry = registry.entry(name)
            # first-party entries need no provenance on every line; describe gives it
            plugin = "" if entry.plugin in INTERNAL_PLUGINS else f"  [{entry.plugin}]"
            summary = shorten(plain_text(entry.summary), width - column - len(plugin))
            print(f"  {name.ljust(column - 2)}{summary}{plugin}")
        if not names:
            print("  (none)")
    print("\nridgeline describe KIND NAME shows an entry's options and paper.")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from ridgeline.core.cli.describe import describe
    from ridgeline.core.cli.text import terminal_width
    from ridgeline.core.plugin_host.host import default_host

    host = default_host()
    kind = _kind(args.kind)
    if kind is None and args.name is None:  # one word: an entry name, searched in every registry
        found = [k for k in KINDS if args.kind in host.registries.of(k)]
        if not found:
            every = {n for k in KINDS for n in host.registries.of(k).list()}
            raise UnknownEntryError("registry entries", args.kind, every)
        pairs = [(k, args.kind) for k in found]
    elif kind is None:
        raise UnknownEntryError("registry kinds", args.kind, KINDS)
    elif args.name is None:  # a kind alone: every entry of it
        pairs = [(kind, n) for n in host.registries.of(kind).list()]
    else:
        pairs = [(kind, args.name)]
    width = min(terminal_width(), 110)
    print(f"\n\n{'-' * width}\n\n".join(describe(host, k, n, width=width) for k, n in pairs))
    return 0


def _kind(word: str) -> str | None:
    """A registry kind from its plural or singular (``aligners`` or ``aligner``); None if neither."""
    for kind in KINDS:
        if word in (kind, kind[:-1]):
            return kind
    return None


def _resolve_model(regs, name: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A registry entry, or a name a model factory resolves (``resnet26d`` -> ``timm`` with
    ``arch='resnet26d'``); unknown names get the registry's close matches."""
    if name in regs.models:
        return name, options
    for entry in regs.models:
        resolve = getattr(entry.factory, "resolve", None)
        resolved = resolve(name) if callable(resolve) else None
        if resolved is not None:
            return entry.name, {**resolved, **options}
    known = set(regs.models.list())
    for entry in regs.models:  # architecture names the factories know (timm's), for close matches
        architectures = getattr(entry.factory, "architectures", None)
        known.update(architectures("*") if callable(architectures) else ())
    raise UnknownEntryError("models or architectures", name, known)


def _build_model(args: argparse.Namespace):
    """The dataset (None when the model runs at its own input size) and the model."""
    from ridgeline.core.plugin_host.host import registries
    from ridgeline.core.plugin_host.options import check_not_supplied
    from ridgeline.core.run.cells import dataset_supplies

    regs = registries()
    name, options = _resolve_model(regs, args.model, _options(args.option))
    dataset_name = args.dataset
    if dataset_name is None:
        native = getattr(regs.models.get(name), "native_input", None)
        shape = native(**options) if callable(native) else None
        if shape is not None:
            check_not_supplied(f"model {name!r}", "models", options, {
                "num_classes": f"the architecture's own size ({shape[1]} classes) or --dataset",
                "input_shape": f"the architecture's own size ({shape[0]}) or --dataset"})
            return None, regs.models.create(name, input_shape=shape[0], num_classes=shape[1], **options)
        dataset_name = "mnist1d"
    dataset = regs.datasets.create(dataset_name, **_options(args.dataset_option))
    check_not_supplied(f"model {name!r}", "models", options, dataset_supplies(dataset))
    model = regs.models.create(name, input_shape=dataset.input_shape,
                               num_classes=dataset.num_classes, **options)
    return dataset, model


def cmd_spec(args: argparse.Namespace) -> int:
    from ridgeline.core.symmetry.report import format_spec_report

    if args.pattern is not None:
        return _spec_table(args)
    if args.model is None:
        raise ConfigError("ridgeline spec: give a model (a registry entry or an architecture name) "
                          "or --all PATTERN")
    _, model = _build_model(args)
    print(format_spec_report(model, seeds=args.seeds))
    return 0


def _spec_table(args: argparse.Namespace) -> int:
    """``ridgeline spec --all PATTERN``: one row per architecture a model factory knows, printed
    as each is derived (the table of docs/specs.md)."""
    from ridgeline.core.plugin_host.host import registries
    from ridgeline.core.symmetry.report import SpecRow, format_spec_table, spec_row

    regs = registries()
    names = sorted({arch for entry in regs.models
                    for arch in getattr(entry.factory, "architectures", lambda _: [])(args.pattern)})
    if not names:
        raise ConfigError(f"ridgeline spec --all: no architecture matches {args.pattern!r}")
    header = True
    for arch in names:
        args.model = arch
        try:
            _, model = _build_model(args)
            row = spec_row(arch, model, seeds=args.seeds)
        except RidgelineError as error:
            row = SpecRow(arch, (), error=str(error).splitlines()[0])
        table = format_spec_table([row]).splitlines()
        print("\n".join(table if header else table[2:]), flush=True)
        header = False
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ridgeline.core.checkpoint import save_state
    from ridgeline.core.interfaces.evaluator import Evaluator
    from ridgeline.core.run.pipeline import resolve_device
    from ridgeline.core.run.training import TrainConfig, provenance, spawn, train

    dataset, model = _build_model(args)
    config = TrainConfig.from_dict({"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                                    "optimizer": args.optimizer, "steps": args.steps,
                                    "checkpoint_every": args.checkpoint_every, "threads": args.threads})
    device = resolve_device(args.device)
    out = Path(args.out)
    meta = {"model": model.config, "dataset": dataset.config, **provenance(config)}
    if args.spawn_step is not None:
        result = spawn(model, dataset, config, seed=args.seed, spawn_step=args.spawn_step, device=device)
        states = {"parent": result.parent, "child0": result.children[0], "child1": result.children[1]}
    else:
        steps_dir = out.parent / f"{out.stem}-steps" if args.checkpoint_every else None
        states = {"": train(model, dataset, config, seed=args.seed, device=device, checkpoint_dir=steps_dir)}
    evaluator = Evaluator(model.build(), dataset, device=device)
    for tag, state in states.items():
        path = out.with_name(f"{out.stem}-{tag}{out.suffix}") if tag else out
        save_state(path, state, {**meta, "seed": args.seed, "spawn_step": args.spawn_step})
        test = evaluator.evaluate(state, "test")
        print(f"wrote {path}  test accuracy {100 * test.accuracy:.1f}%  test loss {test.loss:.4f}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ridgeline.core.run.config import PipelineConfig
    from ridgeline.core.run.pipeline import Pipeline

    config = PipelineConfig.from_toml(args.pipeline)
    pipeline = Pipeline(config, output=args.output, device=args.device, progress=not args.quiet,
                        executor=args.executor, address=args.address)
    output = pipeline.run()
    print(_report(output))
    print(f"\nresults: {output}")
    if pipeline.failures:
        print(f"ridgeline: {len(pipeline.failures)} cells failed for good (listed above, and in "
              f"`ridgeline report {output}`); run the pipeline again to retry them", file=sys.stderr)
        return 1
    return 0


def _report(path: str | Path, rows: list[dict[str, Any]] | None = None, **table: Any) -> str:
    """The report table (``table``: ``wide``, ``columns``), then the sweeps' table (mean ±
    standard deviation over pairs)."""
    from ridgeline.core.results.tables import format_sweeps, format_table, report_rows, sweep_rows

    rows = report_rows(path) if rows is None else rows
    sweeps = format_sweeps(sweep_rows(path, rows))
    return format_table(rows, **table) + (f"\n\nsweeps (mean ± standard deviation over pairs):\n{sweeps}"
                                          if sweeps else "")


def cmd_report(args: argparse.Namespace) -> int:
    from ridgeline.core.results.tables import report_rows, to_json

    _require_file(args.file)
    rows = report_rows(args.file)
    if args.json:
        print(to_json(rows))
        return 0
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    print(_report(args.file, rows, wide=args.wide, columns=columns))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ridgeline.core.plots.curves import plot_results

    _require_file(args.file)
    out = Path(args.out) if args.out else Path(args.file).parent
    written = plot_results(args.file, out, fmt=args.format)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("nothing to plot in", args.file)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import attrs

    from ridgeline.core.cli.quickstart import quickstart_config
    from ridgeline.core.plots.curves import plot_results
    from ridgeline.core.results.tables import format_table, report_rows
    from ridgeline.core.run.config import PipelineConfig, correction_sets, entries_of
    from ridgeline.core.run.pipeline import Pipeline

    config = PipelineConfig.from_toml(args.pipeline) if args.pipeline else quickstart_config(
        output_dir=args.out or "ridgeline-compare")
    changes: dict[str, Any] = {}
    if args.aligners:
        changes["aligners"] = entries_of(args.aligners, "--aligners")
    if args.corrections:
        changes["corrections"] = correction_sets(
            [[] if c == "none" else c.split("+") for c in args.corrections])
    if args.out:
        changes["output"] = str(Path(args.out) / "results.h5")
        changes["checkpoint_dir"] = str(Path(args.out) / "checkpoints")
    config = attrs.evolve(config, **changes)
    output = Pipeline(config, device=args.device, progress=not args.quiet).run()
    print(format_table(report_rows(output)))
    for path in plot_results(output, output.parent, fmt=args.format):
        print(f"plot: {path}")
    print(f"results: {output}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from ridgeline.core.cli.quickstart import quickstart_config
    from ridgeline.core.plots.curves import plot_curves
    from ridgeline.core.results.tables import format_table, report_rows
    from ridgeline.core.run.pipeline import Pipeline

    start = time.perf_counter()
    config = quickstart_config(output_dir=args.out, epochs=args.epochs, num_samples=args.num_samples,
                               width=args.width, depth=args.depth, grid=args.grid, device=args.device,
                               threads=args.threads)
    output = Pipeline(config, progress=not args.quiet).run()
    print(format_table(report_rows(output)))
    for path in plot_curves(output, Path(args.out)):
        print(f"\nplot: {path}")
    print(f"results: {output}\ntook {time.perf_counter() - start:.1f} s")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from importlib.resources import files

    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists; choose another --out, or add --force to overwrite it")
    text = (files("ridgeline.core.cli") / "templates" / f"{args.template}.toml").read_text()
    text = _name_in_comments(text, args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    command = next((line.split()[2] for line in text.splitlines()  # the header's first command
                    if line.startswith("#   ridgeline ")), "run")
    print(f"wrote {out} (template {args.template}); edit it, then: ridgeline {command} {out}")
    return 0


def _name_in_comments(text: str, out: str) -> str:
    """A template's comments with its own name (``pipeline.toml``) replaced by the file written
    and its ``output`` path seen from the current folder (it is relative to the file's folder)."""
    import tomllib

    output = tomllib.loads(text).get("output")
    shown = str(Path(out).parent / output) if output else None
    def swap(line: str, old: str, new: str) -> str:  # a trailing comment keeps its column
        return re.sub(re.escape(old) + r"( +)(?=#)|" + re.escape(old),
                      lambda m: new + " " * max(1, len(m.group(1)) + len(old) - len(new)) if m.group(1)
                      else new, line)

    lines = []
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("#"):
            line = swap(line, "pipeline.toml", out)
            if shown and not Path(output).is_absolute():
                line = swap(line, output, shown)
        lines.append(line)
    return "".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from ridgeline.core.results.export import export_tables

    _require_file(args.file)
    out = Path(args.out) if args.out else Path(args.file).parent
    for path in export_tables(args.file, out, fmt=args.format):
        print(f"wrote {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from ridgeline.core.run.bench import bench_pipeline, format_bench
    from ridgeline.core.run.config import PipelineConfig

    config = PipelineConfig.from_toml(args.pipeline)
    report = bench_pipeline(config, device=args.device, points=args.points, repeats=args.repeats,
                            startup=not args.no_startup)
    print(json.dumps(report.to_dict(), indent=1) if args.json else format_bench(report))
    return 0


def _require_file(path: str) -> None:
    if not Path(path).is_file():
        raise ConfigError(f"results file {path} does not exist")
