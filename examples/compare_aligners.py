"""Compare every registered aligner, and the BatchNorm corrections, on small trained pairs.

Part 1, the quickstart pair: two ``mlp`` 3 x 512 on ``mnist1d`` (Adam 1e-3, 20 epochs, batch
128, seeds 0 and 1). Weight and activation matching first recover a permutation planted in a
copy of A (distance to A afterwards; 0.0 is exact recovery). Then for each aligner: alignment
objective and wall time, the largest change of the aligned network's test logits (function
preservation), and the barriers of test error and loss along the linear path (25 t, chord and
mean forms, ``barrier_summary``); merging aligners also report the merged network's test error.

Part 2, BatchNorm: two ``convnet`` (conv-BN-ReLU, 32-64-64) trained briefly on ``digits``,
weight-matched, then the test error barrier of plain interpolation, ``bn_reset`` and
``repair``; and the same without BatchNorm (plain vs ``repair``).

    python examples/compare_aligners.py [--out compare.json] [--part aligners] [--only zipit ste]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch

from ridgeline.core import AlignContext, Evaluator, PathProbe, TrainConfig, registries, train
from ridgeline.core.numerics import barrier_summary, distance, t_grid

ALIGNERS = [
    ("identity", {}),
    ("weight_matching", {}),
    ("activation_matching", {}),
    ("activation_matching", {"kind": "inner"}),
    ("ste", {}),
    ("sinkhorn", {"objective": "distance"}),
    ("sinkhorn", {"objective": "midpoint"}),
    ("ot_fusion", {"on": "weights", "solver": "emd"}),
    ("ot_fusion", {"on": "activations", "solver": "emd"}),
    ("ot_fusion", {"on": "weights", "solver": "sinkhorn"}),
    ("zipit", {}),
    ("zipit", {"stop": 1}),
    ("zipit", {"stop": 2}),
    ("merge_many", {}),
]


def curve(evaluator, a, b, grid, corrections=()):
    """Test loss and error of the linear path from a to b at every t (with corrections),
    through the same probe the pipeline uses."""
    probe = PathProbe(registries().paths.create("linear", endpoints=[a, b]), evaluator, corrections)
    results = [probe.evaluate(t, "test") for t in grid]
    return [r.loss for r in results], [r.error for r in results]


def planted_recovery(regs, spec, a, context) -> list[dict]:
    """Distance to A of a randomly permuted copy of A after alignment (0.0: recovered)."""
    other = spec.apply(a, spec.random(torch.Generator().manual_seed(0)))
    rows = []
    for name in ("weight_matching", "activation_matching"):
        alignment = regs.aligners.create(name).align(a, other, spec, context)
        rows.append({"aligner": name, "planted_distance": distance(alignment.apply(spec, other), a),
                     "unaligned_distance": distance(other, a)})
        print(json.dumps(rows[-1]))
    return rows


def compare_aligners(regs, epochs: int, grid: list[float], only: list[str] | None = None) -> list[dict]:
    dataset = regs.datasets.create("mnist1d")
    model = regs.models.create("mlp", input_shape=dataset.input_shape,
                               num_classes=dataset.num_classes, widths=[512] * 3)
    config = TrainConfig(epochs=epochs, batch_size=128, lr=1e-3)
    start = time.perf_counter()
    a, b = (train(model, dataset, config, seed=s, progress=False) for s in (0, 1))
    print(f"trained the quickstart pair in {time.perf_counter() - start:.1f} s")
    spec = model.spec()
    evaluator = Evaluator(model.build(), dataset)
    context = AlignContext(evaluator=evaluator, seed=0, split="train")
    x, _ = dataset.split("test")
    rows = planted_recovery(regs, spec, a, context)
    for name, options in ALIGNERS:
        if only and name not in only:
            continue
        aligner = regs.aligners.create(name, **options)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            alignment = aligner.align(a, b, spec, context)
        aligned = alignment.apply(spec, b)
        with torch.no_grad():
            change = float((evaluator.logits(aligned, x) - evaluator.logits(b, x)).abs().max())
        losses, errors = curve(evaluator, a, aligned, grid)
        error, loss = barrier_summary(grid, errors), barrier_summary(grid, losses)
        row = {"aligner": name, "options": options, "objective": alignment.objective,
               "seconds": alignment.seconds, "max_logit_change": change,
               "error_barrier": error["barrier"], "error_barrier_mean": error["barrier_mean"],
               "loss_barrier": loss["barrier"], "loss_barrier_mean": loss["barrier_mean"],
               "midpoint_accuracy": 1 - error["midpoint"], "error_A": error["start"],
               "error_B": error["end"], "warnings": [str(w.message) for w in caught]}
        if alignment.merged is not None:
            row["merged_error"] = evaluator.evaluate(alignment.merged, "test").error
        rows.append(row)
        print(json.dumps(row))
    return rows


def compare_corrections(regs, steps: int, grid: list[float]) -> list[dict]:
    dataset = regs.datasets.create("digits")
    rows = []
    for batchnorm in (True, False):
        model = regs.models.create("convnet", input_shape=dataset.input_shape,
                                   num_classes=dataset.num_classes, batchnorm=batchnorm)
        config = TrainConfig(steps=steps, batch_size=128, lr=1e-3)
        a, b = (train(model, dataset, config, seed=s, progress=False) for s in (0, 1))
        spec = model.spec()
        evaluator = Evaluator(model.build(), dataset)
        context = AlignContext(evaluator=evaluator)
        aligned = regs.aligners.create("weight_matching").align(a, b, spec, context).apply(spec, b)
        names = ("none", "bn_reset", "repair") if batchnorm else ("none", "repair")
        for correction in names:
            corrections = [] if correction == "none" else [regs.corrections.create(correction)]
            start = time.perf_counter()
            losses, errors = curve(evaluator, a, aligned, grid, corrections)
            error, loss = barrier_summary(grid, errors), barrier_summary(grid, losses)
            row = {"model": f"convnet batchnorm={batchnorm}", "correction": correction,
                   "error_barrier": error["barrier"], "error_barrier_mean": error["barrier_mean"],
                   "loss_barrier": loss["barrier"], "midpoint_error": error["midpoint"],
                   "error_A": error["start"], "error_B": error["end"],
                   "seconds": time.perf_counter() - start}
            rows.append(row)
            print(json.dumps(row))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="compare_aligners.json")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--convnet-steps", type=int, default=300)
    parser.add_argument("--grid", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--part", choices=("all", "aligners", "corrections"), default="all")
    parser.add_argument("--only", nargs="*", help="run only these aligners (by registry name)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    regs = registries()
    grid = t_grid(args.grid)
    result = {}
    if args.part in ("all", "corrections"):
        result["corrections"] = compare_corrections(regs, args.convnet_steps, grid)
    if args.part in ("all", "aligners"):
        result["aligners"] = compare_aligners(regs, args.epochs, grid, args.only)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
