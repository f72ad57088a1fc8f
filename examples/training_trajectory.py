"""Barriers as a function of training time: two MNIST-1D runs checkpointed every 64 steps.

Trains two ``mlp`` 3x512 on ``mnist1d`` (the quickstart's settings: Adam lr 1e-3, batch 128,
20 epochs = 640 steps; seeds 0 and 1) with ``checkpoint_every=64``, then runs
:func:`ridgeline.core.measure_trajectory` over the two checkpoint series: the loss and
error barrier of the linear path and the single-layer barriers at every common step. Writes
``<out>/trajectory.json`` and ``<out>/trajectory_layers.png`` (layers x training step).

Run: ``.venv/bin/python examples/training_trajectory.py --out results/trajectory`` (about a
minute on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ridgeline.core import Evaluator, TrainConfig, checkpoint_series, measure_trajectory, registries, train
from ridgeline.core.plots import layer_heatmap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/trajectory")
    parser.add_argument("--every", type=int, default=64, help="checkpoint every N steps")
    args = parser.parse_args()
    out = Path(args.out)
    regs = registries()
    dataset = regs.datasets.create("mnist1d")
    model = regs.models.create("mlp", input_shape=dataset.input_shape, num_classes=dataset.num_classes)
    config = TrainConfig(epochs=20, batch_size=128, lr=1e-3, checkpoint_every=args.every)
    runs = {}
    for seed in (0, 1):
        runs[seed] = out / f"seed{seed}"
        runs[seed].mkdir(parents=True, exist_ok=True)
        if not any(runs[seed].glob("step*.safetensors")):
            train(model, dataset, config, seed=seed, checkpoint_dir=runs[seed], progress=False)
    metrics = {"loss_barrier": regs.metrics.create("loss_barrier", grid=25),
               "error_barrier": regs.metrics.create("error_barrier", grid=25),
               "layerwise_barrier": regs.metrics.create("layerwise_barrier")}
    result = measure_trajectory(runs[0], runs[1], Evaluator(model.build(), dataset), metrics)
    for summary in result.summaries:
        if summary["metric"] != "layerwise_barrier":
            print(summary["step"], summary["metric"], round(summary["barrier"], 4), flush=True)
    (out / "trajectory.json").write_text(json.dumps(
        {"steps": list(checkpoint_series(runs[0])), "summaries": result.summaries}, indent=1))
    layer_heatmap([r for r in result.rows if r["metric"] == "layerwise_barrier"],
                  out / "trajectory_layers.png", value="barrier_a", x="step",
                  title="single-layer loss barrier (others at seed 0) over training")


if __name__ == "__main__":
    main()  # torch's default thread count, as the quickstart trains: the pair is the quickstart's
