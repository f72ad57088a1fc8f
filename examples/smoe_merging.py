"""Mixture-of-experts on MNIST-1D: M-SMoE expert merging and expert-aware alignment.

Part 1, merging inside one model (Li et al., "Merge, Then Compress", ICLR 2024): train ``smoe_mlp``
(2 blocks of 8 experts, 32 units each, top-2 routing, width 64; Adam 3e-3, 20 epochs, batch 128)
from several seeds and merge every layer's 8 experts into 4 with the ``msmoe`` entry, against its
ablations:

* ``msmoe``: units aligned to the dominant expert, groups averaged weighted by activation frequency;
* ``plain averaging``: aligned, uniform weights;
* ``no alignment``: frequency weights, units not aligned;
* ``no alignment, plain averaging``;
* ``dominant only``: each group keeps its dominant expert (the others dropped).

Each merged network (8 experts per layer, one copy per group) is then compressed into a genuinely
smaller ``smoe_mlp`` with ``SMoEMLPModel.compress``: 4 experts per layer, the router's 8 routes
dispatched to their groups' experts (``routes = 8``). Its parameters are counted from the module
and its test outputs compared with the merged network's (equal, up to float rounding). With
``--save DIR`` the compressed ``msmoe`` networks are written as ``DIR/smoe_msmoe_seed{s}.safetensors``
with the model config in their metadata, loadable into ``smoe_mlp`` with ``experts = 4, routes = 8``
(docs/methods.md shows how).

Part 2, between two models: the test loss and error barriers of the linear path between two wider
SMoE networks (1 block, width 256, 8 experts of 64 units, top-2; Adam 1e-3, 20 epochs) aligned by
``identity``, by weight matching of the residual stream alone, of the residual stream and whole
experts (``spec.without_nested()``: experts moved as blocks, their units left in place) and by
expert-aware weight matching (experts matched by their best unit-level match, then the units
within them).

    python examples/smoe_merging.py [--seeds 5] [--epochs 20] [--lr 0.003] [--out smoe.json] [--save DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from ridgeline.core import AlignContext, Evaluator, TrainConfig, registries, save_state, train
from ridgeline.core.numerics import barrier_summary, lerp, t_grid

MERGES = {
    "msmoe": {},
    "plain averaging": {"weighting": "uniform"},
    "no alignment": {"align": False},
    "no alignment, plain averaging": {"align": False, "weighting": "uniform"},
    "dominant only": {"weighting": "dominant"},
}


def cell(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    spread = statistics.pstdev(values) * scale if len(values) > 1 else 0.0
    return f"{statistics.fmean(values) * scale:.{digits}f} ± {spread:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--grid", type=int, default=11)
    parser.add_argument("--out", default="")
    parser.add_argument("--save", default="", help="folder for the compressed msmoe checkpoints")
    args = parser.parse_args()
    torch.set_num_threads(1)
    regs = registries()
    data = regs.datasets.create("mnist1d", num_samples=5000)
    model = regs.models.create("smoe_mlp", input_shape=data.input_shape, num_classes=data.num_classes)
    config = TrainConfig(epochs=args.epochs, batch_size=128, lr=args.lr)
    start = time.perf_counter()
    states = [train(model, data, config, seed=s, progress=False) for s in range(args.seeds)]
    print(f"trained {len(states)} smoe_mlp in {time.perf_counter() - start:.1f} s")
    evaluator = Evaluator(model.build(), data)
    symmetry = model.symmetries()
    context = AlignContext(evaluator=evaluator)
    results: dict[str, dict[str, list[float]]] = {"original": {"accuracy": [], "loss": []}}
    parameters: dict[str, int] = {"before": sum(p.numel() for p in model.build().parameters())}
    compression = {"max_logit_difference": 0.0, "accuracy_equal": True}
    x_test, _ = data.split("test")
    for seed, state in enumerate(states):
        base = evaluator.evaluate(state, "test")
        results["original"]["accuracy"].append(base.accuracy)
        results["original"]["loss"].append(base.loss)
        for name, options in MERGES.items():
            alignment = regs.aligners.create("msmoe", **options).align(state, state, symmetry, context)
            merged = evaluator.evaluate(alignment.merged, "test")
            row = results.setdefault(name, {"accuracy": [], "loss": [], "seconds": [],
                                            "compressed_accuracy": []})
            row["accuracy"].append(merged.accuracy)
            row["loss"].append(merged.loss)
            row["seconds"].append(alignment.seconds)
            # the merged network as a smaller smoe_mlp: one expert per group, the 8 routes dispatched
            groups = {layer: found["groups"] for layer, found in alignment.diagnostics["layers"].items()}
            smaller, compressed = model.compress(alignment.merged, groups)
            small = Evaluator(smaller.build(), data)
            row["compressed_accuracy"].append(small.evaluate(compressed, "test").accuracy)
            difference = small.logits(compressed, x_test) - evaluator.logits(alignment.merged, x_test)
            compression["max_logit_difference"] = max(compression["max_logit_difference"],
                                                      float(difference.abs().max()))
            compression["accuracy_equal"] &= row["compressed_accuracy"][-1] == merged.accuracy
            parameters.update(after=sum(p.numel() for p in small.module.parameters()),
                              routing_table=sum(b.numel() for b in small.module.buffers()),
                              computed_after=alignment.diagnostics["parameters_after"])
            if args.save and name == "msmoe":
                path = save_state(Path(args.save) / f"smoe_msmoe_seed{seed}.safetensors", compressed,
                                  {"model": smaller.config, "seed": seed, "merged_by": "msmoe",
                                   "groups": groups})
                print(f"saved {path} ({smaller.options['experts']} experts per layer, "
                      f"{smaller.routes} routes)")
    print(f"\nPart 1: merging 8 -> 4 experts per layer ({args.seeds} seeds; parameters counted "
          f"{parameters['before']} -> {parameters['after']} (+{parameters['routing_table']} routing-table "
          f"entries), computed by msmoe {parameters['computed_after']})")
    print(f"compressed models (4 experts, 8 routes): test accuracy equal to the merged models' on every "
          f"seed and merge: {compression['accuracy_equal']}; largest test logit difference "
          f"{compression['max_logit_difference']:.1e}")
    print("| model | experts per layer | parameters | test accuracy | change (paired, pp) "
          "| test loss |")
    print("|---|---|---|---|---|---|")
    base = results["original"]["accuracy"]
    for name, row in results.items():
        experts, count = ("8", parameters["before"]) if name == "original" else ("4", parameters["after"])
        change = [merged - original for merged, original in zip(row["accuracy"], base)]
        print(f"| {name} | {experts} | {count} | {cell(row['accuracy'], 100)}% | {cell(change, 100)} | "
              f"{cell(row['loss'], 1, 3)} |")

    grid = t_grid(args.grid)
    wide = regs.models.create("smoe_mlp", input_shape=data.input_shape, num_classes=data.num_classes,
                              blocks=1, width=256, expert_width=64)
    wide_config = TrainConfig(epochs=20, batch_size=128, lr=1e-3)
    a, b = (train(wide, data, wide_config, seed=s, progress=False) for s in (0, 1))
    evaluator = Evaluator(wide.build(), data)
    spec = wide.spec()
    residual = type(spec)({"residual": spec.groups["residual"]}, {"residual": spec.axes["residual"]})
    aligned = {"identity": b}
    for label, used in (("weight matching, residual stream only", residual),
                        ("weight matching, experts as blocks", spec.without_nested()),
                        ("expert-aware weight matching", spec)):
        found = regs.aligners.create("weight_matching", order="best").align(a, b, used, context)
        aligned[label] = found.apply(used, b)
    print(f"\nPart 2: linear path between two wide SMoE networks (seeds 0 and 1, {args.grid} points, "
          "test split)")
    print("| alignment | loss barrier | error barrier (pp) | accuracy at midpoint |")
    print("|---|---|---|---|")
    barriers = {}
    for label, other in aligned.items():
        curve = [evaluator.evaluate(lerp(a, other, t), "test") for t in grid]
        loss = barrier_summary(grid, [c.loss for c in curve])
        error = barrier_summary(grid, [c.error for c in curve])
        barriers[label] = {"loss": loss["barrier"], "error": error["barrier"],
                           "midpoint_accuracy": 1 - error["midpoint"]}
        print(f"| {label} | {loss['barrier']:.3f} | {100 * error['barrier']:.1f} | "
              f"{100 * (1 - error['midpoint']):.1f}% |")
    print(f"endpoint test accuracy {100 * (1 - curve[0].error):.1f}% / {100 * (1 - curve[-1].error):.1f}%")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"merging": results, "parameters": parameters, "compression": compression,
                       "barriers": barriers}, handle, indent=1)


if __name__ == "__main__":
    main()
