"""Path evaluation per point, by ``points_per_batch`` and ``precision``, against a bare forward pass.

For each workload, the same linear path (``--points`` points between two freshly initialised
states) is evaluated with every setting; each row gives the seconds per point and the ratio to
one fp32 ``torch.func.functional_call`` pass of the midpoint over the same data (wall seconds on
CUDA, process CPU seconds on the CPU). The fastest
setting per device is the one to make the default (``DEFAULT_POINTS_PER_BATCH`` in
``core/interfaces/evaluator.py``). Reduced precisions run on CUDA only.

    .venv/bin/python benchmarks/evaluation.py [--device cuda] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from ridgeline.core import Evaluator, PathProbe, registries
from ridgeline.core.numerics import lerp, t_grid

WORKLOADS = {
    # name: (dataset options, model name, model options, evaluation batch size)
    "mlp3x512": ({"name": "synthetic", "features": 40, "num_classes": 10, "train_size": 256,
                  "test_size": 5000}, "mlp", {"widths": [512] * 3}, 1000),
    "resnet18": ({"name": "synthetic", "image_size": [3, 32, 32], "num_classes": 10, "train_size": 256,
                  "test_size": 2000}, "timm", {"arch": "resnet18"}, 500),
}


def _seconds(function, device: torch.device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls: wall time on CUDA (synchronised), process CPU time
    on the CPU (the fair measure on a shared machine; the same as wall time on an idle one)."""
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = clock()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(clock() - start)
    return statistics.median(times)


def measure(workload: str, device: torch.device, points: int = 16, repeats: int = 3,
            examples: int | None = None) -> list[dict]:
    """Rows of (setting, seconds per point, ratio to a bare fp32 forward pass); ``examples``
    overrides the workload's number of test examples."""
    dataset_options, model_name, model_options, batch_size = WORKLOADS[workload]
    if examples:
        dataset_options = {**dataset_options, "test_size": examples}
    regs = registries()
    dataset = regs.datasets.create(dataset_options["name"],
                                   **{k: v for k, v in dataset_options.items() if k != "name"})
    model = regs.models.create(model_name, input_shape=dataset.input_shape,
                               num_classes=dataset.num_classes, **model_options)
    a, b = ({k: v.to(device) for k, v in model.init_state(seed).items()} for seed in (0, 1))
    module = model.build()
    base = Evaluator(module, dataset, device=device, batch_size=batch_size)
    x, _ = base.data("test")
    midpoint = lerp(a, b, 0.5)

    def forward() -> None:
        with torch.no_grad():
            for first in range(0, len(x), batch_size):
                torch.func.functional_call(base.module, midpoint, (x[first:first + batch_size],))

    forward()
    bare = _seconds(forward, device, repeats)
    path = regs.paths.create("linear", endpoints=[a, b])
    ts = t_grid(points)
    precisions = ("fp32", "bf16", "fp16") if device.type == "cuda" else ("fp32",)
    rows = [{"workload": workload, "device": str(device), "setting": "bare forward pass, fp32",
             "seconds_per_point": bare, "ratio": 1.0}]
    for precision in precisions:
        for stacked in (1, 4, 16):
            evaluator = Evaluator(module, dataset, device=device, batch_size=batch_size,
                                  points_per_batch=stacked, precision=precision)

            def along(evaluator: Evaluator = evaluator) -> None:
                probe = PathProbe(path, evaluator)
                probe.prefetch(ts, "test")

            along()  # warm-up (vmap tracing, autocast kernels)
            seconds = _seconds(along, device, repeats) / len(ts)
            rows.append({"workload": workload, "device": str(device),
                         "setting": f"points_per_batch={stacked}, {precision}",
                         "seconds_per_point": seconds, "ratio": seconds / bare})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--points", type=int, default=16)
    parser.add_argument("--examples", type=int, default=None, help="test examples (default: the workload's)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [row for w in args.workloads
            for row in measure(w, torch.device(args.device), args.points, examples=args.examples)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'workload':<10} {'setting':<28} {'s / point':>10} {'vs bare forward':>16}")
    for row in rows:
        print(f"{row['workload']:<10} {row['setting']:<28} {row['seconds_per_point']:>10.4f} "
              f"{row['ratio']:>15.2f}x")


if __name__ == "__main__":
    main()
