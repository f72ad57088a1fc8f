"""What each ``ridgeline`` subcommand does. Every command imports its machinery when it runs,
so ``ridgeline --help`` and ``ridgeline list`` stay fast."""

from __future__ import annotations

import argparse
import ast
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ridgeline.core.errors import ConfigError, RidgelineError
from ridgeline.core.plugin_host.registry import KINDS


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
    from ridgeline.core.plugin_host.host import registries

    regs = registries()
    kinds = [args.kind] if args.kind else list(KINDS)
    for kind in kinds:
        registry = regs.of(kind)
        names = registry.list(args.pattern)
        print(f"{kind}:")
        for name in names:
            entry = registry.entry(name)
            summary = entry.summary if len(entry.summary) <= 90 else entry.summary[:89] + "…"
            print(f"  {name:<22} {summary}  [{entry.plugin}]")
        if not names:
            print("  (none)")
    return 0


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
    regs.models.entry(name)  # raises UnknownEntryError with close matches
    raise AssertionError("unreachable")


def _build_model(args: argparse.Namespace):
    """The dataset (None when the model runs at its own input size) and the model."""
    from ridgeline.core.plugin_host.host import registries

    regs = registries()
    name, options = _resolve_model(regs, args.model, _options(args.option))
    dataset_name = args.dataset
    if dataset_name is None:
        native = getattr(regs.models.get(name), "native_input", None)
        shape = native(**options) if callable(native) else None
        if shape is not None:
            return None, regs.models.create(name, input_shape=shape[0], num_classes=shape[1], **options)
        dataset_name = "mnist1d"
    dataset = regs.datasets.create(dataset_name, **_options(args.dataset_option))
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
    from ridgeline.core.symmetry.report import format_spec_table, spec_row

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
            from ridgeline.core.symmetry.report import SpecRow

            row = SpecRow(arch, (), error=str(error).splitlines()[0])
        table = format_spec_table([row]).splitlines()
        print("\n".join(table if header else table[2:]), flush=True)
        header = False
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ridgeline.core.checkpoint import save_state
    from ridgeline.core.interfaces.evaluator import Evaluator
    from ridgeline.core.run.pipeline import resolve_device
    from ridgeline.core.run.training import TrainConfig, spawn, train

    dataset, model = _build_model(args)
    config = TrainConfig.from_dict({"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                                    "optimizer": args.optimizer, "steps": args.steps,
                                    "checkpoint_every": args.checkpoint_every})
    device = resolve_device(args.device)
    out = Path(args.out)
    meta = {"model": model.config, "dataset": dataset.config}
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
    from ridgeline.core.results.tables import format_table, report_rows
    from ridgeline.core.run.config import PipelineConfig
    from ridgeline.core.run.pipeline import Pipeline

    config = PipelineConfig.from_toml(args.pipeline)
    output = Pipeline(config, output=args.output, device=args.device, progress=not args.quiet).run()
    print(format_table(report_rows(output)))
    print(f"\nresults: {output}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ridgeline.core.results.tables import format_table, report_rows, to_json

    _require_file(args.file)
    rows = report_rows(args.file)
    print(to_json(rows) if args.json else format_table(rows))
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
                               width=args.width, depth=args.depth, grid=args.grid, device=args.device)
    output = Pipeline(config, progress=not args.quiet).run()
    print(format_table(report_rows(output)))
    for path in plot_curves(output, Path(args.out)):
        print(f"\nplot: {path}")
    print(f"results: {output}\ntook {time.perf_counter() - start:.1f} s")
    return 0


def _require_file(path: str) -> None:
    if not Path(path).is_file():
        raise ConfigError(f"results file {path} does not exist")
