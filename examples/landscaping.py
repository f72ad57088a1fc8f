"""The Landscaping story in one command (Singh et al. 2024, "Landscaping Linear Mode Connectivity").

1. **A pair over training.** Trains the quickstart pair (``mlp`` 3x512 on ``mnist1d``, Adam 1e-3,
   batch 128, 20 epochs = 640 steps, seeds 0 and 1), checkpointed every 64 steps.
2. **Mountainside and ridge.** Along the line between the two runs at several training steps
   (:func:`ridgeline.core.measure_trajectory`): the loss (``loss_barrier``), the gradient norm and
   the cosine between the gradient and Delta (``gradient``), the curvature along Delta,
   Delta^T H Delta / |Delta|^2 (``curvature``), and the second-order prediction of the midpoint
   barrier, -(1/8) Delta^T H Delta with H at the midpoint of the line predicted, beside the
   measured barrier, whole network and per layer, with its finite-difference check
   (``taylor_barrier``). The same at the last step for the weight-matched pair, and the
   single-layer barriers of Adilova et al. (``layerwise_barrier``).
3. **A toy example of how barriers arise** (ridgeline's own construction; the paper's text beyond
   its abstract was not available to us, see docs/methods.md): a network with two ReLU units on
   2-D inputs whose class is "x1 > 1/2 or x2 > 1/2". A trained network uses one unit per
   half-plane; swapping the units gives a second, functionally identical network. The line
   between the two crosses the *ridge* of networks whose two units are equal (the fixed points
   of the swap), where the network can draw only one half-plane: a barrier with negative
   curvature along Delta at the midpoint, gradients climbing the mountainside towards it, and
   no barrier once weight matching undoes the swap. Over pairs of independently trained toys,
   a barrier has two sources: the units' order (removed by weight matching) and a different
   solution (a unit drawing its half-plane from the other side: relu(x1 - b) with a positive
   head weight or relu(b - x1) with a negative one), which no permutation removes.

Writes ``<out>/landscaping.json`` and four figures (``landscaping_*.png``) beside it;
``--figures docs/figures`` writes the figures there too. Prints the tables of docs/methods.md.

Run: ``.venv/bin/python examples/landscaping.py --out results/landscaping`` (about 5 minutes on
2 CPU cores; training the pair is cached in ``<out>``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from ridgeline.core import (
    AlignContext,
    Dataset,
    Evaluator,
    PathProbe,
    TrainConfig,
    load_state,
    measure_along,
    measure_trajectory,
    registries,
    train,
)

STEPS = (64, 192, 384, 640)


def metric_rows(rows, metric, step=None):
    return [r for r in rows if r["metric"] == metric and (step is None or r["step"] == step)]


def measure(regs, metrics, pair, evaluator):
    """Rows and summaries of ``metrics`` (label -> (name, options)) along the line of ``pair``."""
    line = regs.paths.create("linear", endpoints=pair)
    out = {}
    for label, (name, options) in metrics.items():
        out[label] = measure_along(regs.metrics.create(name, **options), PathProbe(line, evaluator))
    return out


# -- 1 and 2: the MNIST-1D pair ------------------------------------------------------------------

def mnist_pair(out: Path, regs) -> dict:
    dataset = regs.datasets.create("mnist1d")
    model = regs.models.create("mlp", input_shape=dataset.input_shape, num_classes=dataset.num_classes)
    config = TrainConfig(epochs=20, batch_size=128, lr=1e-3, checkpoint_every=64)
    runs = {}
    for seed in (0, 1):
        runs[seed] = out / f"seed{seed}"
        runs[seed].mkdir(parents=True, exist_ok=True)
        if not (runs[seed] / "step640.safetensors").exists():
            train(model, dataset, config, seed=seed, checkpoint_dir=runs[seed], progress=False)
    evaluator = Evaluator(model.build(), dataset)
    order = list(model.build().state_dict())
    metrics = {
        "loss_barrier": ("loss_barrier", {"grid": 25}),
        "gradient": ("gradient", {"grid": 11}),
        "curvature": ("curvature", {"grid": 11, "iters": 10}),
        "taylor_barrier": ("taylor_barrier", {}),
    }
    trajectory = measure_trajectory(runs[0], runs[1], evaluator,
                                     {k: regs.metrics.create(n, **o) for k, (n, o) in metrics.items()},
                                     steps=STEPS)
    final = [load_state(runs[s] / "step640.safetensors") for s in (0, 1)]
    final = [{k: s[k] for k in order} for s in final]
    aligner = regs.aligners.create("weight_matching")
    alignment = aligner.align(final[0], final[1], model.spec(), AlignContext(evaluator=evaluator))
    aligned = [final[0], model.spec().apply(final[1], alignment.perms)]
    pairs = {}
    for name, pair in (("naive", final), ("weight_matching", aligned)):
        pairs[name] = measure(regs, {**metrics, "layerwise_barrier": ("layerwise_barrier", {})}, pair,
                              evaluator)
    return {"trajectory": {"rows": trajectory.rows, "summaries": trajectory.summaries},
            "final": {name: {label: {"rows": rows, "summary": summary}
                             for label, (rows, summary) in measured.items()}
                      for name, measured in pairs.items()},
            "weight_matching_objective": alignment.objective,
            "endpoints": [evaluator.evaluate(s, "test").loss for s in final]}


def mnist_figures(result: dict, out: Path) -> list[Path]:
    rows = result["trajectory"]["rows"]
    final = result["final"]
    colours = plt.cm.viridis([i / max(1, len(STEPS) - 1) for i in range(len(STEPS))])
    written = []

    fig, ax = plt.subplots(figsize=(5.6, 3.8), constrained_layout=True)
    for colour, step in zip(colours, STEPS):
        r = metric_rows(rows, "loss_barrier", step)
        ax.plot([x["t"] for x in r], [x["loss"] for x in r], color=colour, label=f"step {step}")
    r = final["weight_matching"]["loss_barrier"]["rows"]
    ax.plot([x["t"] for x in r], [x["loss"] for x in r], "k--", label="step 640, weight-matched")
    ax.set_xlabel("t (line from seed 0 to seed 1)")
    ax.set_ylabel("test loss")
    ax.set_title("the loss along the line over training", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    written.append(out / "landscaping_line.png")
    fig.savefig(written[-1], dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    panels = (("gradient", "grad_norm", "|grad L|"), ("gradient", "cos_tangent", "cos(grad L, Delta)"),
              ("curvature", "delta_curvature", "Delta^T H Delta / |Delta|^2"))
    for ax, (metric, column, name) in zip(axes, panels):
        for colour, step in zip(colours, STEPS):
            r = metric_rows(rows, metric, step)
            ax.plot([x["t"] for x in r], [x[column] for x in r], "o-", ms=3, color=colour,
                    label=f"step {step}")
        r = final["weight_matching"][metric]["rows"]
        ax.plot([x["t"] for x in r], [x[column] for x in r], "k--", label="640, matched")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("t")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("mountainside and ridge along the line (test split)", fontsize=10)
    written.append(out / "landscaping_mountainside.png")
    fig.savefig(written[-1], dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0), constrained_layout=True)
    whole = [r for r in metric_rows(rows, "taylor_barrier") if r["label"] == "all"]
    ax = axes[0]
    ax.plot([r["step"] for r in whole], [r["measured"] for r in whole], "o-", label="measured")
    ax.plot([r["step"] for r in whole], [r["predicted"] for r in whole], "s-", label="-(1/8) Δᵀ H(mid) Δ")
    for key in ("fd_h0.1", "fd_h0.01"):
        ax.plot([r["step"] for r in whole], [r[key] for r in whole], ":", marker=".",
                label=f"finite difference {key[4:]}")
    ax.set_xlabel("training step")
    ax.set_ylabel("midpoint barrier")
    ax.set_title("whole network, naive pair", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    for name, marker in (("naive", "o"), ("weight_matching", "^")):
        layers = final[name]["taylor_barrier"]["rows"][1:]
        for column, fill in (("predicted", True), ("predicted_mid", False)):
            ax.scatter([r[column] for r in layers], [r["measured"] for r in layers], marker=marker,
                       facecolors=None if fill else "none", edgecolors="C0" if fill else "C1",
                       label=f"{name}: H at {'own' if fill else 'path'} midpoint")
        for r in layers:
            ax.annotate(r["label"], (r["predicted"], r["measured"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    values = [r[c] for n in final for r in final[n]["taylor_barrier"]["rows"][1:]
              for c in ("predicted", "predicted_mid", "measured")]
    lo, hi = min(values), max(values)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("predicted single-layer barrier")
    ax.set_ylabel("measured (line moving one layer)")
    ax.set_title("per layer, step 640", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    written.append(out / "landscaping_taylor.png")
    fig.savefig(written[-1], dpi=90)
    plt.close(fig)
    return written


def mnist_tables(result: dict) -> None:
    rows = result["trajectory"]["rows"]
    print("\n| step | loss barrier | measured midpoint barrier | -(1/8) Δᵀ H(mid) Δ | max |grad| | "
          "cos(grad, Δ) at t = 0.3 | curvature along Δ at t = 0 / 0.5 / 1 |")
    print("|---|---|---|---|---|---|---|")
    for step in STEPS:
        barrier = next(s for s in result["trajectory"]["summaries"]
                       if s["step"] == step and s["metric"] == "loss_barrier")
        taylor = next(r for r in metric_rows(rows, "taylor_barrier", step) if r["label"] == "all")
        grads = metric_rows(rows, "gradient", step)
        curv = {round(r["t"], 2): r["delta_curvature"] for r in metric_rows(rows, "curvature", step)}
        cos = next(r["cos_tangent"] for r in grads if abs(r["t"] - 0.3) < 1e-9)
        print(f"| {step} | {barrier['barrier']:.4f} | {taylor['measured']:.4f} | {taylor['predicted']:.4f} | "
              f"{max(r['grad_norm'] for r in grads):.3f} | {cos:+.4f} | "
              f"{curv[0.0]:+.5f} / {curv[0.5]:+.5f} / {curv[1.0]:+.5f} |")
    for name, measured in result["final"].items():
        print(f"\n{name} pair at step 640: taylor_barrier (loss barrier "
              f"{measured['loss_barrier']['summary']['barrier']:.4f})")
        print("| scope | measured | predicted (own midpoint) | H at path midpoint | H at A | H at B | "
              "fd h=0.1 | fd 0.01 | fd 0.001 | fd 0.0001 | relative spread | Adilova B_l (others at A) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        layer_b = {r["label"]: r["barrier_a"] for r in measured["layerwise_barrier"]["rows"]}
        for r in measured["taylor_barrier"]["rows"]:
            cells = [r[c] for c in ("measured", "predicted", "predicted_mid", "predicted_a", "predicted_b",
                                    "fd_h0.1", "fd_h0.01", "fd_h0.001", "fd_h0.0001")]
            print(f"| {r['label']} | " + " | ".join(f"{c:.4f}" for c in cells)
                  + f" | {r['fd_relative_spread']:.3f} | {layer_b.get(r['label'], math.nan):.4f} |")
        s = measured["taylor_barrier"]["summary"]
        layers = measured["taylor_barrier"]["rows"][1:]
        adilova = [layer_b[r["label"]] for r in layers]
        print("correlation across layers with the measured line barriers: own midpoint "
              f"{s['corr_predicted']:.3f}, path midpoint {s['corr_predicted_mid']:.3f}, "
              f"at A {s['corr_predicted_a']:.3f}, "
              f"at B {s['corr_predicted_b']:.3f}; with Adilova's B_l: own midpoint "
              f"{correlation([r['predicted'] for r in layers], adilova):.3f}, path midpoint "
              f"{correlation([r['predicted_mid'] for r in layers], adilova):.3f}")


def correlation(x, y) -> float:
    x, y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    if len(x) < 2 or float(x.std()) == 0.0 or float(y.std()) == 0.0:
        return math.nan
    return float(torch.corrcoef(torch.stack([x, y]))[0, 1])


# -- 3: the toy ---------------------------------------------------------------------------------

class Corner(Dataset):
    """2-D standard normal inputs; class 1 when x1 > 1/2 or x2 > 1/2 (52% of inputs)."""

    name = "corner"
    input_shape = (2,)
    num_classes = 2
    splits = ("train", "test")

    def load(self, split):
        generator = torch.Generator().manual_seed(0 if split == "train" else 1)
        x = torch.randn(1000, 2, generator=generator)
        return x, (x.max(dim=1).values > 0.5).long()


def solution(state) -> str:
    """Which half-plane each unit draws, from which side, as a permutation-free label: for each
    unit the input axis its weight points along and the sign of that weight (a unit may draw
    "x1 > 1/2" as relu(x1 - b) with a positive head weight, or as relu(-x1 + b) with a negative
    one), sorted over the units."""
    weight = state["hidden.0.weight"]
    units = []
    for w in weight:
        axis = int(w.abs().argmax())
        units.append(f"{'+' if float(w[axis]) > 0 else '-'}x{axis + 1}")
    return ",".join(sorted(units))


def toy(out: Path, regs, seeds: int) -> dict:
    dataset = Corner()
    model = regs.models.create("mlp", input_shape=(2,), num_classes=2, widths=[2])
    spec = model.spec()
    evaluator = Evaluator(model.build(), dataset)
    config = TrainConfig(steps=800, batch_size=64, lr=1e-2)
    states = {seed: train(model, dataset, config, seed=seed, progress=False) for seed in range(seeds)}
    accuracy = {seed: evaluator.evaluate(s, "test").accuracy for seed, s in states.items()}
    a = states[0]
    swapped = spec.apply(a, {"hidden.0": torch.tensor([1, 0])})  # the same function
    metrics = {"loss_barrier": ("loss_barrier", {"grid": 41}), "gradient": ("gradient", {"grid": 21}),
               "curvature": ("curvature", {"grid": 21, "iters": 50, "tol": 1e-6}),
               "taylor_barrier": ("taylor_barrier", {})}
    ridge = measure(regs, metrics, [a, swapped], evaluator)
    aligner = regs.aligners.create("weight_matching")
    pairs = []
    good = [seed for seed in states if accuracy[seed] > 0.95]
    line = {"loss_barrier": ("loss_barrier", {"grid": 21})}
    for i, j in itertools.combinations(good, 2):
        trained = aligner.align(states[i], states[j], spec, AlignContext(evaluator=evaluator))
        naive = measure(regs, line, [states[i], states[j]], evaluator)
        matched = measure(regs, line, [states[i], spec.apply(states[j], trained.perms)], evaluator)
        pairs.append({"seeds": [i, j], "swapped": trained.perms["hidden.0"].tolist() != [0, 1],
                      "same_solution": solution(states[i]) == solution(states[j]),
                      "naive_barrier": naive["loss_barrier"][1]["barrier"],
                      "matched_barrier": matched["loss_barrier"][1]["barrier"]})
    return {"accuracy": accuracy, "state": {k: v.tolist() for k, v in a.items()},
            "solutions": {seed: solution(states[seed]) for seed in good},
            "ridge": {label: {"rows": rows, "summary": summary} for label, (rows, summary) in ridge.items()},
            "pairs": pairs}


def toy_figure(result: dict, out: Path) -> Path:
    ridge = result["ridge"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    ax = axes[0]
    loss = ridge["loss_barrier"]["rows"]
    whole = ridge["taylor_barrier"]["rows"][0]
    ends = (loss[0]["loss"], loss[-1]["loss"])
    ts = [r["t"] for r in loss]
    ax.plot(ts, [r["loss"] for r in loss], "o-", ms=3, label="loss along the line A -> swap(A)")
    # the quadratic model about the midpoint: chord + 4 t (1 - t) * predicted midpoint barrier
    ax.plot(ts, [(1 - t) * ends[0] + t * ends[1] + 4 * t * (1 - t) * whole["predicted"] for t in ts], "--",
            label="quadratic model, H at the midpoint")
    ax.set_xlabel("t")
    ax.set_ylabel("test loss")
    ax.legend(fontsize=8)
    ax.set_title("the ridge between a network and its unit swap", fontsize=10)
    ax.grid(alpha=0.3)
    ax = axes[1]
    grad = ridge["gradient"]["rows"]
    curv = ridge["curvature"]["rows"]
    ax.plot([r["t"] for r in grad], [r["cos_tangent"] for r in grad], "o-", ms=3, label="cos(grad L, Delta)")
    ax.plot([r["t"] for r in curv], [r["delta_curvature"] for r in curv], "s-", ms=3,
            label="Delta^T H Delta / |Delta|^2")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("t")
    ax.legend(fontsize=8)
    ax.set_title("mountainside (slope) and ridge (negative curvature)", fontsize=10)
    ax.grid(alpha=0.3)
    ax = axes[2]
    for kind, colour in zip(PAIR_KINDS, ("C0", "C3", "C2")):
        chosen = [p for p in result["pairs"] if pair_kind(p) == kind]
        ax.scatter([p["naive_barrier"] for p in chosen], [p["matched_barrier"] for p in chosen], color=colour,
                   label=f"{kind} ({len(chosen)})")
    ax.set_xlabel("naive loss barrier")
    ax.set_ylabel("barrier after weight matching")
    ax.legend(fontsize=8)
    ax.set_title("pairs of independently trained toys", fontsize=10)
    ax.grid(alpha=0.3)
    path = out / "landscaping_toy.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def toy_tables(result: dict) -> None:
    ridge = result["ridge"]
    whole, *layers = ridge["taylor_barrier"]["rows"]
    curv = {round(r["t"], 3): r["delta_curvature"] for r in ridge["curvature"]["rows"]}
    grad = {round(r["t"], 3): r for r in ridge["gradient"]["rows"]}
    print("\ntoy: trained network", json.dumps(result["state"]))
    print("toy accuracies", {k: round(v, 3) for k, v in result["accuracy"].items()})
    print(f"toy ridge: loss barrier {ridge['loss_barrier']['summary']['barrier']:.4f}; midpoint: measured "
          f"{whole['measured']:.4f}, predicted {whole['predicted']:.4f}, fd 0.1/0.01/0.001/0.0001 "
          + " / ".join(f"{whole[k]:.4f}" for k in ("fd_h0.1", "fd_h0.01", "fd_h0.001", "fd_h0.0001"))
          + f"; H at A {whole['predicted_a']:.4f}")
    print("toy curvature along Delta at t = 0, 0.25, 0.5:", curv[0.0], curv[0.25], curv[0.5])
    print("toy cos(grad, Delta) at t = 0, 0.25, 0.5:", grad[0.0]["cos_tangent"], grad[0.25]["cos_tangent"],
          grad[0.5]["cos_tangent"], "grad norm", grad[0.0]["grad_norm"], grad[0.25]["grad_norm"],
          grad[0.5]["grad_norm"])
    print("toy top eigenvalue at t = 0, 0.5:", ridge["curvature"]["rows"][0]["top_eigenvalue"],
          ridge["curvature"]["rows"][10]["top_eigenvalue"])
    for r in layers:
        print("toy layer", r["label"], round(r["measured"], 4), round(r["predicted"], 4))
    print("solutions", result["solutions"])
    print("\n| pairs of trained toys | count | naive loss barrier, mean (range) | after weight matching, "
          "mean (max) |")
    print("|---|---|---|---|")
    for kind in PAIR_KINDS:
        chosen = [p for p in result["pairs"] if pair_kind(p) == kind]
        if chosen:
            naive = [p["naive_barrier"] for p in chosen]
            matched = [p["matched_barrier"] for p in chosen]
            print(f"| {kind} | {len(chosen)} | {sum(naive) / len(naive):.3f} ({min(naive):.3f} - "
                  f"{max(naive):.3f}) | {sum(matched) / len(matched):.4f} ({max(matched):.4f}) |")


PAIR_KINDS = ("same solution, same unit order", "same solution, units swapped", "different solutions")


def pair_kind(pair: dict) -> str:
    if not pair["same_solution"]:
        return PAIR_KINDS[2]
    return PAIR_KINDS[1] if pair["swapped"] else PAIR_KINDS[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/landscaping")
    parser.add_argument("--figures", default="", help="also write the figures here (e.g. docs/figures)")
    parser.add_argument("--toy-seeds", type=int, default=12)
    parser.add_argument("--skip-mnist", action="store_true", help="run the toy only")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for these small networks on a shared CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    regs = registries()
    result: dict = {}
    figures = []
    if not args.skip_mnist:
        result["mnist1d"] = mnist_pair(out, regs)
        figures += mnist_figures(result["mnist1d"], out)
        mnist_tables(result["mnist1d"])
    result["toy"] = toy(out, regs, args.toy_seeds)
    figures.append(toy_figure(result["toy"], out))
    toy_tables(result["toy"])
    (out / "landscaping.json").write_text(json.dumps(result, indent=1, default=float))
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)
        for figure in figures:
            (Path(args.figures) / figure.name).write_bytes(figure.read_bytes())


if __name__ == "__main__":
    main()
