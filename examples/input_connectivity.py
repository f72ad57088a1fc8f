"""Input-space connectivity (Vrabel et al. 2024) of a trained and an untrained MNIST-1D network.

Runs ``examples/input_connectivity.toml`` twice through the pipeline: as written (the
quickstart's network, trained 20 epochs) and with ``[train] steps = 0`` (the same architecture
at its random initialisation, the paper's conjecture that input-space connectivity is a
geometric effect present even without training). Prints the summary table and the per-pair
barriers, and draws the class loss along the line and the fitted chain for the first pairs.

Run: ``.venv/bin/python examples/input_connectivity.py --out results/input`` (about 10 minutes
on 2 shared CPU cores with one thread, including training the pair once). ``--pairs``,
``--fit-steps``, ``--train-steps`` and ``--checkpoint-dir`` shrink it (the smoke test does).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import attrs
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from ridgeline.core import PipelineConfig, TrainConfig, read_curves, read_summaries, run_pipeline

HERE = Path(__file__).parent
KEYS = ("linear_barrier_mean", "linear_barrier_median", "linear_barrier_max", "fitted_barrier_mean",
        "fitted_barrier_median", "fitted_barrier_max", "fitted_lower_fraction", "linear_connected",
        "fitted_connected", "linear_min_confidence_mean", "fitted_min_confidence_mean", "offset_max_mean")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/input")
    parser.add_argument("--figure", default="", help="also write the figure here (e.g. docs/figures/...)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for these small networks on a shared CPU)")
    parser.add_argument("--pairs", type=int, help="input pairs per curve (default: the TOML's)")
    parser.add_argument("--fit-steps", type=int, help="steps fitting each curve (default: the TOML's)")
    parser.add_argument("--train-steps", type=int, help="training steps (default: the TOML's epochs)")
    parser.add_argument("--checkpoint-dir", help="trained models' cache (default: the TOML's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = PipelineConfig.from_toml(HERE / "input_connectivity.toml")
    fit = {k: v for k, v in (("pairs", args.pairs), ("steps", args.fit_steps)) if v is not None}
    base = attrs.evolve(base, metrics=tuple(attrs.evolve(m, options={**m.options, **fit})
                                            for m in base.metrics))
    if args.train_steps is not None:
        base = attrs.evolve(base, train=attrs.evolve(base.train, steps=args.train_steps))
    if args.checkpoint_dir:
        base = attrs.evolve(base, checkpoint_dir=args.checkpoint_dir)
    runs = {"trained": base, "untrained": attrs.evolve(base, train=TrainConfig(steps=0))}
    table, curves = {}, {}
    for name, config in runs.items():
        output = run_pipeline(attrs.evolve(config, output=str(out / f"{name}.h5")), progress=False)
        for summary in read_summaries(output):
            table[(name, summary["metric"])] = {k: summary[k] for k in KEYS}
        curves[name] = [r for r in read_curves(output) if r["metric"] == "input_connectivity"]
    print("| network | curve | " + " | ".join(KEYS) + " |")
    for (name, metric), row in table.items():
        print(f"| {name} | {metric} | " + " | ".join(f"{row[k]:.4g}" for k in KEYS) + " |")
    (out / "summary.json").write_text(json.dumps({f"{n}/{m}": r for (n, m), r in table.items()}, indent=1))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for ax, (name, rows) in zip(axes, curves.items()):
        for p in range(4):
            pair = [r for r in rows if r["label"] == f"pair{p}"]
            s = [r["s"] for r in pair]
            line = ax.plot(s, [r["loss_linear"] for r in pair], lw=1.2)[0]
            ax.plot(s, [r["loss_fitted"] for r in pair], "--", color=line.get_color(), lw=1.2)
        ax.set_title(f"{name} network: class loss, line (solid) / fitted chain (dashed)", fontsize=9)
        ax.set_xlabel("s (input path)")
        ax.set_ylabel("-log p_c(x(s))")
        ax.grid(alpha=0.3)
    for target in filter(None, (out / "input_connectivity.png", args.figure)):
        fig.savefig(target, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
