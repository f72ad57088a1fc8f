"""Every GPU measurement of issue 9 in one table (run by ``benchmarks/gpu.sh``).

1. the CUDA tests (``pytest -m cuda``), as their summary line;
2. ``ridgeline bench`` on the quickstart pipeline (its trained checkpoints when the quickstart
   has run), on the device;
3. weight matching on the device against the pre-issue-9 implementation on the CPU
   (``benchmarks/weight_matching.py``);
4. path evaluation by ``points_per_batch`` and ``precision`` (``benchmarks/evaluation.py``).

    python benchmarks/gpu_report.py [--device cuda] [--out gpu-results.json] [--skip-tests]

Writes every row as JSON to ``--out`` as well, for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import evaluation  # noqa: E402
import weight_matching  # noqa: E402

from ridgeline.core.run.bench import bench_pipeline, machine_description  # noqa: E402
from ridgeline.core.run.config import PipelineConfig  # noqa: E402


def cuda_tests() -> list[dict]:
    result = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "--import-mode=importlib",
                             "-m", "cuda", "-q", "-p", "no:warnings", str(HERE.parent / "tests")],
                            capture_output=True, text=True)
    summary = (result.stdout.strip().splitlines() or ["no output"])[-1]
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-2000:], sep="\n", file=sys.stderr)
    return [{"section": "CUDA tests", "what": "pytest -m cuda", "value": summary,
             "ratio": "" if result.returncode == 0 else "FAILED"}]


def bench_rows(device: str) -> list[dict]:
    config = PipelineConfig.from_toml(HERE.parent / "examples" / "quickstart.toml")
    report = bench_pipeline(config, device=device)
    rows = [{"section": "ridgeline bench quickstart", "what": r.what, "value": f"{r.seconds:.4f} s",
             "ratio": f"{r.ratio:.2f}x vs {r.against}" if r.ratio is not None else ""} for r in report.rows]
    rows.append({"section": "ridgeline bench quickstart", "what": "states", "value": report.states,
                 "ratio": ""})
    return rows


def weight_matching_rows(device: str) -> list[dict]:
    rows = []
    for name in ("mlp2048", "resnet50"):
        r = weight_matching.compare(name, torch.device(device))
        rows.append({"section": "weight matching (old on CPU, new on device)", "what": name,
                     "value": f"old {r['old_s']:.2f} s, new {r['new_s']:.2f} s, sweeps {r['new_sweeps']}",
                     "ratio": f"{r['speedup']:.1f}x; same perms {r['same_permutations']}; "
                              f"objective rel diff {r['objective_rel_diff']:.1e}"})
    return rows


def evaluation_rows(device: str) -> list[dict]:
    rows = []
    for workload in evaluation.WORKLOADS:
        for r in evaluation.measure(workload, torch.device(device)):
            rows.append({"section": "path evaluation per point", "what": f"{workload}: {r['setting']}",
                         "value": f"{r['seconds_per_point']:.5f} s", "ratio": f"{r['ratio']:.2f}x vs bare"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="gpu-results.json")
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device is visible to torch; run with --device cpu to try the script")
    rows = [] if args.skip_tests else cuda_tests()
    for part in (bench_rows, weight_matching_rows, evaluation_rows):
        rows += part(args.device)
    machine = machine_description(torch.device(args.device))
    Path(args.out).write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    width = max(len(r["what"]) for r in rows)
    section = None
    print(f"\nmachine: {json.dumps(machine)}")
    for row in rows:
        if row["section"] != section:
            section = row["section"]
            print(f"\n{section}")
        print(f"  {row['what']:<{width}}  {row['value']:<44} {row['ratio']}")
    print(f"\nrows written to {args.out}")


if __name__ == "__main__":
    main()
