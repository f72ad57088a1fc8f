"""Weight matching at width: today's implementation against the pre-issue-9 one, in one process.

For each pair, both implementations align B to A from the same start with the same order and
seed; the table gives their times, the ratio, whether the permutations are identical and the
relative difference of the final objectives. Pairs (``--pairs``, default all):

* ``quickstart``: the two 3x512 MLPs the quickstart trains on MNIST-1D (read from
  ``ridgeline-quickstart/checkpoints`` when present, else trained here);
* ``mlp2048``: two randomly initialised 3x2048 MLPs (input 40, 10 classes);
* ``resnet18``, ``resnet50``: two randomly initialised timm states (1000 classes,
  ``pretrained=False``).

    .venv/bin/python benchmarks/weight_matching.py [--pairs mlp2048 resnet50] [--device cuda] [--json]

``--device`` runs the new implementation there (the baseline always runs on the CPU). One
thread by default (``--threads``), as in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import weight_matching_reference as reference

from ridgeline.core import registries
from ridgeline.plugins.aligners.weight_matching import weight_matching

PAIRS = ("quickstart", "mlp2048", "resnet18", "resnet50")


def quickstart_pair():
    """The quickstart's model and its two trained states (trained now if not cached)."""
    from ridgeline.core.cli.quickstart import quickstart_config
    from ridgeline.core.run.pipeline import Pipeline

    config = quickstart_config(output_dir="ridgeline-quickstart", device="cpu")
    pipeline = Pipeline(config, progress=False)
    states = pipeline.load_models(config.pairs[0])
    return pipeline.model, states[0], states[1]


def pair(name: str):
    regs = registries()
    if name == "quickstart":
        return quickstart_pair()
    if name == "mlp2048":
        model = regs.models.create("mlp", input_shape=(40,), num_classes=10, widths=[2048] * 3)
    elif name in ("resnet18", "resnet50"):
        model = regs.models.create("timm", input_shape=(3, 64, 64), num_classes=1000, arch=name)
    else:
        raise SystemExit(f"unknown pair {name!r}; choose from {', '.join(PAIRS)}")
    return model, model.init_state(0), model.init_state(1)


def compare(name: str, device: torch.device, order: str = "random", seed: int = 0) -> dict:
    model, a, b = pair(name)
    spec = model.spec()
    start, cpu = time.perf_counter(), time.thread_time()
    old_perms, old_history = reference.weight_matching(spec, a, b, order=order, seed=seed)
    old_seconds, old_cpu = time.perf_counter() - start, time.thread_time() - cpu
    placed_a = {k: v.to(device) for k, v in a.items()}
    placed_b = {k: v.to(device) for k, v in b.items()}
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.thread_time()
    new_perms, new_history = weight_matching(spec, placed_a, placed_b, order=order, seed=seed)
    new_seconds, new_cpu = time.perf_counter() - start, time.thread_time() - cpu
    same = all(torch.equal(old_perms[g], new_perms[g]) for g in spec.groups)
    objective_gap = abs(new_history[-1] - old_history[-1]) / max(abs(old_history[-1]), 1e-300)
    return {"pair": name, "groups": len(spec.groups), "largest_group": max(spec.groups.values()),
            "parameters": sum(v.numel() for v in a.values()), "device": str(device),
            "old_s": old_seconds, "new_s": new_seconds, "speedup": old_seconds / new_seconds,
            "old_cpu_s": old_cpu, "new_cpu_s": new_cpu, "cpu_speedup": old_cpu / new_cpu,
            "old_sweeps": len(old_history), "new_sweeps": len(new_history),
            "same_permutations": same, "objective_rel_diff": objective_gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=PAIRS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [compare(name, torch.device(args.device)) for name in args.pairs]
    if args.json:
        print(json.dumps({"machine": platform.platform(), "threads": args.threads, "rows": rows}, indent=1))
        return
    print(f"weight matching, old (float64, from scratch) vs new; {args.threads} thread(s), "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}")
    print("wall: elapsed seconds; cpu: the thread's CPU seconds (the same on an idle machine; on a "
          "shared one, cpu is the fair ratio)")
    print(f"{'pair':<11}{'groups':>7}{'old wall':>10}{'new wall':>10}{'ratio':>7}{'old cpu':>9}{'new cpu':>9}"
          f"{'ratio':>7}{'sweeps':>9}  same perms  objective rel diff")
    for r in rows:
        print(f"{r['pair']:<11}{r['groups']:>7}{r['old_s']:>10.2f}{r['new_s']:>10.2f}{r['speedup']:>6.1f}x"
              f"{r['old_cpu_s']:>9.2f}{r['new_cpu_s']:>9.2f}{r['cpu_speedup']:>6.1f}x"
              f"{r['old_sweeps']:>5}/{r['new_sweeps']:<3}  {r['same_permutations']!s:<10}  "
              f"{r['objective_rel_diff']:.1e}")


if __name__ == "__main__":
    main()
