"""Measurements for issue 14 (shared / tied tensors), reported in docs/specs.md and docs/performance.md.

timm's ``coat_lite_tiny`` (random weights, 3x224x224, 10 classes) registers each stage's
convolutional position encodings once per block that calls them: 32 tensors under 2 or 3 names.

1. derivation: seconds to trace and walk, and to derive and check, each against one forward pass
   of the same 2-example batch in the same process; groups, coverage, tied tensors;
2. a planted permutation (every group, seed 1) re-aligned with weight matching in each sweep order:
   the largest difference left at any name, the seconds, and the objective against <A, A> summed
   over the spec's (canonical) tensors;
3. the evaluator: evaluating a state that holds every name (the tied names are compared first)
   against the same state with each tensor once, same process;
4. the pipeline (``run_pipeline``, as ``ridgeline run`` does): model sets [A, P(A)] and [A, A]
   from checkpoints on 16 synthetic 3x224x224 images, aligners identity and weight_matching,
   the line with a 3-point loss barrier.

    .venv/bin/python benchmarks/tied_models.py [--out DIR]

Prints one line per figure and writes ``<out>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ridgeline.core import Evaluator, derive_spec, read_summaries, registries, run_pipeline, save_state
from ridgeline.core.symmetry.derive import trace


def best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="tied_models_"))
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    summary: dict[str, object] = {}

    def report(name: str, value: object) -> None:
        summary[name] = value
        print(f"{name}: {value}", flush=True)

    regs = registries()
    model = regs.models.create("timm", input_shape=(3, 224, 224), num_classes=10, arch="coat_lite_tiny")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = model.build().eval()
    x = model.example_input(2)
    with torch.no_grad():
        forward = best(lambda: module(x))
    walk = best(lambda: derive_spec(module, x, check=False))
    full = best(lambda: derive_spec(module, x))
    report("forward_s", round(forward, 3))
    report("trace_s", round(best(lambda: trace(module)), 3))
    report("derive_without_check_s", round(walk, 3))
    report("derive_and_check_s", round(full, 3))
    report("derive_over_forward", round(walk / forward, 2))
    report("derive_and_check_over_forward", round(full / forward, 2))

    spec = model.spec()
    ties = model.ties()
    state = model.init_state(0)
    distinct = ties.drop(state)
    report("groups", len(spec.groups))
    report("coverage", round(spec.coverage(), 4))
    report("hidden_units_permutable", spec.hidden_units())
    report("frozen_groups", len(spec.frozen))
    report("tied_tensors", len(ties.groups))
    report("tied_names", sum(len(a) for a in ties.groups.values()))
    report("state_entries", len(state))
    report("distinct_tensors", len(distinct))
    report("parameters_once", sum(v.numel() for k, v in distinct.items() if v.is_floating_point()))
    report("parameters_by_name", sum(v.numel() for v in state.values() if v.is_floating_point()))

    # 2. a planted permutation
    from ridgeline.plugins.aligners.weight_matching import weight_matching

    planted = spec.apply(state, spec.random(torch.Generator().manual_seed(1)))
    inner = sum(float((state[k].double() ** 2).sum()) for k in spec.keys)
    for order in ("forward", "random", "backward"):
        start = time.perf_counter()
        perms, history = weight_matching(spec, state, planted, order=order, seed=0)
        seconds = time.perf_counter() - start
        aligned = spec.apply(planted, perms)
        gap = max(float((aligned[k] - state[k]).abs().max()) for k in state if state[k].is_floating_point())
        report(f"planted_{order}", {"max_difference_any_name": gap, "seconds": round(seconds, 2),
                                    "sweeps": len(history),
                                    "objective_over_inner_AA": history[-1] / inner,
                                    "tied_names_disagree": len(ties.disagreements(aligned))})

    # 3. the evaluator on every name vs. each tensor once
    data = regs.datasets.create("synthetic", image_size=[3, 224, 224], num_classes=10, train_size=16,
                                test_size=16)
    evaluator = Evaluator(module, data, batch_size=16)
    evaluator.evaluate(state, "test")  # warm up
    every = best(lambda: evaluator.evaluate(state, "test"))
    once = best(lambda: evaluator.evaluate(distinct, "test"))
    same = evaluator.evaluate(state, "test").loss == evaluator.evaluate(distinct, "test").loss
    report("evaluate_every_name_over_once", round(every / once, 3))
    report("evaluate_same_loss", same)
    check = best(lambda: ties.check(state))
    report("tie_check_over_evaluate", round(check / once, 5))

    # 4. the pipeline
    a_path = str(save_state(out / "a.safetensors", state))
    p_path = str(save_state(out / "planted.safetensors", planted))
    config = {
        "output": str(out / "results.h5"),
        "dataset": {"name": "synthetic", "image_size": [3, 224, 224], "num_classes": 10,
                    "train_size": 16, "test_size": 16},
        "model": {"name": "timm", "arch": "coat_lite_tiny"},
        "batch_size": 16,
        "pairs": [{"name": "planted", "checkpoints": [a_path, p_path]},
                  {"name": "same", "checkpoints": [a_path, a_path]}],
        "aligners": ["identity", {"name": "weight_matching", "order": "forward"}],
        "metrics": [{"name": "loss_barrier", "grid": 3}],
    }
    start = time.perf_counter()
    output = run_pipeline(config, progress=False, device="cpu")
    report("pipeline_s", round(time.perf_counter() - start, 1))
    for row in read_summaries(output):
        report(f"barrier_{row['pair']}_{row['aligner']}", row["barrier"])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'summary.json'}")


if __name__ == "__main__":
    main()
