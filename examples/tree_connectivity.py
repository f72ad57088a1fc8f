"""Linear mode connectivity of soft tree ensembles (Kanoh & Sugiyama, ICLR 2025): the barrier table.

For each tabular dataset and tree structure, train ``2 * pairs`` ``soft_trees`` ensembles from
different seeds and measure the barriers of the linear path between each pair after aligning it
with ``tree_matching`` using more and more invariances:

* ``none``: no alignment;
* ``permutation``: the trees only (``flips = false, orders = false``);
* ``permutation + flips``: trees and subtree flips;
* ``permutation + orders``: trees and splitting orders (oblivious trees only);
* ``all``: every invariance the structure has.

Prints one markdown table per dataset: loss and error barriers (chord form, ``barrier_summary``)
on the training and test splits, averaged over the pairs (and their spread), and the endpoints'
test accuracy. Paper setting in spirit, small in size (16 trees of depth 3 by default).

    python examples/tree_connectivity.py [--datasets iris wine breast_cancer] [--pairs 4]
        [--structures oblivious tree decision_list] [--trees 16] [--depth 3] [--steps 600]
        [--out trees.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from ridgeline.core import AlignContext, Evaluator, TrainConfig, registries, train
from ridgeline.core.numerics import barrier_summary, lerp, t_grid

VARIANTS = {
    "none": None,
    "permutation": {"flips": False, "orders": False},
    "permutation + flips": {"orders": False},
    "permutation + orders": {"flips": False},
    "all": {},
}


def variants(structure: str) -> list[str]:
    if structure == "oblivious":
        return list(VARIANTS)
    return ["none", "permutation", "all"]


def barriers(evaluator: Evaluator, a, b, grid) -> dict[str, float]:
    """Loss and error barriers (chord form) of the linear path on both splits."""
    out = {}
    for split in ("train", "test"):
        results = [evaluator.evaluate(lerp(a, b, t), split) for t in grid]
        out[f"{split}_loss"] = barrier_summary(grid, [r.loss for r in results])["barrier"]
        out[f"{split}_error"] = barrier_summary(grid, [r.error for r in results])["barrier"]
        if split == "test":
            out["test_accuracy"] = (results[0].accuracy + results[-1].accuracy) / 2
    return out


def run(dataset_name: str, structure: str, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    regs = registries()
    data = regs.datasets.create("tabular", table=dataset_name)
    model = regs.models.create("soft_trees", input_shape=data.input_shape, num_classes=data.num_classes,
                               trees=args.trees, depth=args.depth, structure=structure)
    config = TrainConfig(steps=args.steps, batch_size=64, lr=args.lr)
    states = [train(model, data, config, seed=s, progress=False) for s in range(2 * args.pairs)]
    evaluator = Evaluator(model.build(), data)
    symmetry = model.symmetries()
    grid = t_grid(args.grid)
    rows: dict[str, dict[str, list[float]]] = {}
    for name in variants(structure):
        row = rows.setdefault(name, {})
        for i in range(args.pairs):
            a, b = states[2 * i], states[2 * i + 1]
            if VARIANTS[name] is not None:
                alignment = regs.aligners.create("tree_matching", **VARIANTS[name]).align(
                    a, b, symmetry, AlignContext(evaluator=evaluator))
                b = alignment.apply(symmetry, b)
            for key, value in barriers(evaluator, a, b, grid).items():
                row.setdefault(key, []).append(value)
    return rows


def cell(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    mean = statistics.fmean(values) * scale
    spread = statistics.pstdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["iris", "wine", "breast_cancer"])
    parser.add_argument("--structures", nargs="+", default=["oblivious", "tree", "decision_list"])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--trees", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--grid", type=int, default=11)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for dataset_name in args.datasets:
        print(f"\n{dataset_name}: {args.pairs} pairs of {args.trees} trees of depth {args.depth}, "
              f"Adam {args.lr}, {args.steps} steps, batch 64")
        print("| structure | invariances | train loss barrier | train error barrier (pp) "
              "| test error barrier (pp) | test accuracy |")
        print("|---|---|---|---|---|---|")
        for structure in args.structures:
            start = time.perf_counter()
            rows = run(dataset_name, structure, args)
            results[f"{dataset_name}/{structure}"] = rows
            for name, row in rows.items():
                print(f"| {structure} | {name} | {cell(row['train_loss'])} | "
                      f"{cell(row['train_error'], 100, 1)} | {cell(row['test_error'], 100, 1)} | "
                      f"{cell(row['test_accuracy'], 100, 1)}% |")
            print(f"<!-- {structure}: {time.perf_counter() - start:.1f} s -->")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
