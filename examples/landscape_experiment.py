"""Paths beyond the line on the quickstart's naive MNIST-1D pair (issue 5 acceptance figures).

Trains three ``mlp`` 3x512 on ``mnist1d`` (Adam, lr 1e-3, 20 epochs, batch 128; seeds 0, 1, 2),
with NO alignment, and measures on the test split:

1. the maximum test loss along the linear path, a fitted ``bezier`` and a fitted ``polychain``
   between seeds 0 and 1 (Garipov et al. 2018);
2. a fitted ``star`` centre for the three models: the barrier of each line centre -> model i
   against the pairwise linear barriers (Lin, Li, Wu 2024);
3. single-layer barriers (``layerwise_barrier``, both anchors) against the full-network barrier
   (Adilova et al. 2024), the second-order prediction (``taylor_barrier``, Singh et al. 2024),
   curvature (``curvature``) and the slope along the line (``gradient``);
4. the loss landscape on the plane through the pair and the fitted Bezier control (``plane``
   in ``curve`` mode with ``landscape``), with the line and the curve drawn on it.

Run: ``.venv/bin/python examples/landscape_experiment.py --out results/landscape``
(about 2 minutes on 2 CPU cores). Numbers go to ``<out>/figures.json``, pictures beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ridgeline.core import (
    Evaluator,
    PathProbe,
    TrainConfig,
    load_state,
    measure_along,
    registries,
    save_state,
    train,
)
from ridgeline.core.plots import barrier_scatter, landscape_contour, layer_heatmap


def run_metric(metric, path, evaluator):
    """Records and summary of one metric along one path."""
    return measure_along(metric, PathProbe(path, evaluator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/landscape")
    parser.add_argument("--fit-steps", type=int, default=640,
                        help="curve fitting steps (640 = the 20 epochs that trained each endpoint)")
    parser.add_argument("--grid", type=int, default=21, help="plane lattice points per axis")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    regs = registries()
    dataset = regs.datasets.create("mnist1d")
    model = regs.models.create("mlp", input_shape=dataset.input_shape, num_classes=dataset.num_classes)
    config = TrainConfig(epochs=20, batch_size=128, lr=1e-3)
    states, timings = [], {}
    for seed in (0, 1, 2):
        file = out / f"mlp-seed{seed}.safetensors"
        if file.exists():
            loaded = load_state(file)  # safetensors sorts keys; layers must keep the model's order
            states.append({k: loaded[k] for k in model.build().state_dict()})
            continue
        start = time.perf_counter()
        states.append(train(model, dataset, config, seed=seed, progress=False))
        timings[f"train_seed{seed}"] = time.perf_counter() - start
        save_state(file, states[-1], {"seed": seed})
    evaluator = Evaluator(model.build(), dataset)
    barrier = regs.metrics.create("loss_barrier", grid=25)
    error = regs.metrics.create("error_barrier", grid=25)
    fit = {"steps": args.fit_steps, "lr": 1e-3, "batch_size": 128, "seed": 0}
    figures: dict = {"fit": fit, "timings": timings}

    # 1. line, Bezier, polygonal chain between seeds 0 and 1
    pair = states[:2]
    for name, options in (("linear", {}), ("bezier", fit), ("polychain", fit)):
        path = regs.paths.create(name, endpoints=pair, **options)
        start = time.perf_counter()
        report = path.fit(evaluator) if path.trainable else {}
        seconds = time.perf_counter() - start
        _, loss = run_metric(barrier, path, evaluator)
        _, err = run_metric(error, path, evaluator)
        figures[name] = {"max_test_loss": loss["max"], "loss_barrier": loss["barrier"],
                         "end_losses": [loss["start"], loss["end"]], "error_barrier": err["barrier"],
                         "max_test_error": err["max"], "fit_seconds": seconds, **(
                             {"fit_last_loss": report["last_loss"]} if report else {})}
        print(name, figures[name], flush=True)

    # 2. star over three models versus the pairwise lines
    def line_figures(path):
        loss, err = run_metric(barrier, path, evaluator)[1], run_metric(error, path, evaluator)[1]
        return {"loss_barrier": loss["barrier"], "max_test_loss": loss["max"],
                "error_barrier": err["barrier"], "max_test_error": err["max"]}

    pairwise = {f"{i}-{j}": line_figures(regs.paths.create("linear", endpoints=[states[i], states[j]]))
                for i in range(3) for j in range(i + 1, 3)}
    star = regs.paths.create("star", endpoints=states, **fit)
    star.fit(evaluator)
    lines = {label: line_figures(seg) for label, seg in star.segments().items()}
    centre = evaluator.evaluate(star.centre, "test")
    figures["star"] = {"pairwise_lines": pairwise, "centre_lines": lines,
                       "centre_test_loss": centre.loss, "centre_test_error": centre.error}
    print("star", figures["star"], flush=True)

    # 3. layer-wise barriers and the second-order prediction, naive pair
    line = regs.paths.create("linear", endpoints=pair)
    layer_rows, layer_summary = run_metric(regs.metrics.create("layerwise_barrier"), line, evaluator)
    cumulative = {order: run_metric(regs.metrics.create("layerwise_barrier", mode="cumulative", order=order),
                                    line, evaluator)[0] for order in ("input", "output")}
    taylor_rows, taylor_summary = run_metric(regs.metrics.create("taylor_barrier"), line, evaluator)
    figures["layerwise"] = {"rows": layer_rows, "summary": layer_summary,
                            "cumulative": {o: [(r["label"], r["barrier_a"], r["barrier_b"]) for r in rows]
                                           for o, rows in cumulative.items()}}
    figures["taylor"] = {"rows": taylor_rows, "summary": taylor_summary}
    curvature_rows, _ = run_metric(regs.metrics.create("curvature", iters=30), line, evaluator)
    gradient_rows, _ = run_metric(regs.metrics.create("gradient", grid=11), line, evaluator)
    figures["curvature"] = [{k: r[k] for k in ("t", "top_eigenvalue", "delta_curvature")}
                            for r in curvature_rows]
    figures["gradient"] = [{k: r[k] for k in ("t", "grad_norm", "cos_tangent", "slope")}
                           for r in gradient_rows]
    print("layerwise", layer_summary, "\ntaylor", taylor_summary, "\ncurvature", figures["curvature"],
          "\ngradient", figures["gradient"], flush=True)
    layer_heatmap(layer_rows, out / "layerwise_barrier.png", title="naive pair: single-layer loss barriers")
    barrier_scatter(taylor_rows, out / "taylor_scatter.png",
                    predicted=["predicted_mid", "predicted_a", "predicted_b"])

    # 4. the plane through the pair and the fitted Bezier control
    plane = regs.paths.create("plane", endpoints=pair, mode="curve", grid=args.grid,
                              curve_options=fit)
    plane.fit(evaluator)
    rows, summary = run_metric(regs.metrics.create("landscape", curve_points=25), plane, evaluator)
    for r in rows:
        r["path"] = "bezier"
    line_rows = []
    for k in range(25):
        t = k / 24
        u, v, _ = plane.project(line.at(t))
        line_rows.append({"u": u, "v": v, "t": t, "on_path": 1.0, "path": "linear"})
    figures["plane"] = summary
    landscape_contour(rows + line_rows, out / "plane_contour.png",
                      title="test loss, plane through A, B and the Bezier bend")
    (out / "figures.json").write_text(json.dumps(figures, indent=1))
    print("plane", summary)


if __name__ == "__main__":
    main()  # torch's default thread count, as the quickstart trains: the pair is the quickstart's
