"""Acceptance measurements of the Ray executor (issue 12), reported in docs/performance.md.

A sweep of 8 seeds (each paired with the first: 7 model sets) x 3 aligners x 2 paths on a
small MNIST-1D MLP, run through the command line:

1. serially with one torch thread (the reference numbers: Ray cells run with num_cpus = 1
   thread each, and CPU matrix products round differently with another thread count);
2. serially with torch's default threads (the everyday serial run: its wall time);
3. on a local 2-CPU Ray instance (``--executor ray``): numbers equal to 1., wall time;
4. on Ray again, a worker process killed by its pid mid-sweep: completes, numbers equal;
5. on Ray again, the driver killed with SIGKILL mid-sweep, then the same command again: it
   resumes (the cells finished before the kill are not redone), numbers equal, nothing lost.

    .venv/bin/python benchmarks/ray_sweep.py [--out DIR] [--tiny]

``--tiny`` shrinks everything for a smoke test. Prints one line per figure and writes
``<out>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PIPELINE = """\
output = "results.h5"
seed = 0
aligners = ["identity", "weight_matching", "activation_matching"]
paths = ["linear", {{ name = "bezier", steps = {bezier_steps}, batch_size = 128 }}]
metrics = [{{ name = "loss_barrier", grid = {grid} }}, {{ name = "error_barrier", grid = {grid} }}]

[dataset]
name = "mnist1d"
num_samples = {samples}

[model]
name = "mlp"
widths = [{width}, {width}]

[train]
epochs = {epochs}
batch_size = 128

[[pairs]]
name = "mlp"
seeds = "0..{last_seed}"
pairs = "first"

[executor]
num_cpus = 1
max_retries = 2
"""

RIDGELINE = [str(Path(sys.executable).parent / "ridgeline")]


def run(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(RIDGELINE + args, check=True, env={**os.environ, **(env or {})},
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def numbers(path: Path) -> dict[tuple, tuple[float, float]]:
    from ridgeline.core.results.readers import read_curves

    return {(r["pair"], r["aligner"], r["correction"], r["path"], r["segment"], r["metric"], r["index"]):
            (r["loss"], r["error"]) for r in read_curves(path)}


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys(), f"different curves: {sorted(set(a) ^ set(b))[:5]}"
    return max(abs(x - y) for k in a for x, y in zip(a[k], b[k]))


def children(pid: int) -> list[int]:
    """Every descendant process of ``pid`` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == current]
        out += kids
        frontier += kids
    return out


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="ray-sweep-bench")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    sizes = (dict(bezier_steps=10, grid=5, samples=1000, width=32, epochs=2, last_seed=3) if args.tiny
             else dict(bezier_steps=200, grid=25, samples=4000, width=128, epochs=10, last_seed=7))
    toml = out / "sweep.toml"
    toml.write_text(PIPELINE.format(**sizes))
    summary: dict[str, object] = {"sizes": sizes, "load_average_start": os.getloadavg()}

    def report(key: str, value: object) -> None:
        summary[key] = value
        print(f"{key}: {value}", flush=True)

    def ray_args(name: str) -> list[str]:
        return ["run", str(toml), "--quiet", "--executor", "ray", "--output", str(out / name / "results.h5")]

    def fresh(name: str) -> None:
        subprocess.run(["rm", "-rf", str(out / name)], check=True)

    fresh("serial1")
    serial_args = ["run", str(toml), "--quiet", "--output", str(out / "serial1/results.h5")]
    report("serial_1_thread_s", run(serial_args, {"OMP_NUM_THREADS": "1"}))
    reference = numbers(out / "serial1/results.h5")
    report("curves", len(reference))
    fresh("serial")
    report("serial_default_threads_s", run(["run", str(toml), "--quiet", "--output",
                                            str(out / "serial/results.h5")]))
    report("serial_default_threads_max_abs_difference",
           max_difference(numbers(out / "serial/results.h5"), reference))
    fresh("ray")
    report("ray_s", run(ray_args("ray")))
    report("ray_equals_serial_1_thread", numbers(out / "ray/results.h5") == reference)
    report("speedup_vs_serial_1_thread", summary["serial_1_thread_s"] / summary["ray_s"])
    report("speedup_vs_serial_default_threads", summary["serial_default_threads_s"] / summary["ray_s"])

    # a worker killed by its pid while it measures
    fresh("ray_worker_killed")
    driver = subprocess.Popen(RIDGELINE + ray_args("ray_worker_killed"), stdout=subprocess.DEVNULL)
    victim = None
    while driver.poll() is None and victim is None:
        time.sleep(0.5)
        busy = [p for p in children(driver.pid) if title(p).startswith("ray::measure")]
        victim = busy[0] if busy else None
    if victim is not None:
        report("killed_worker", f"{victim} {title(victim)}")
        os.kill(victim, signal.SIGKILL)
    report("worker_killed_exit_status", driver.wait())
    report("worker_killed_equals_serial", numbers(out / "ray_worker_killed/results.h5") == reference)

    # the driver killed with SIGKILL mid-sweep, then the same command again
    fresh("ray_driver_killed")
    driver = subprocess.Popen(RIDGELINE + ray_args("ray_driver_killed"), stdout=subprocess.DEVNULL)
    time.sleep(0.5 * summary["ray_s"])
    ray_processes = children(driver.pid)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    time.sleep(5)
    left = [p for p in ray_processes if Path(f"/proc/{p}").exists()]
    report("ray_processes_left_after_driver_kill", len(left))
    for pid in left:  # only the processes this driver started
        os.kill(pid, signal.SIGKILL)
    partial = numbers(out / "ray_driver_killed/results.h5")
    from ridgeline.core.results.readers import read_summaries

    done = {(r["pair"], r["aligner"], r["path"], r["metric"]) for r in
            read_summaries(out / "ray_driver_killed/results.h5") if r["complete"]}
    report("series_complete_at_kill", len(done))
    report("points_written_at_kill", len(partial))
    report("resume_s", run(ray_args("ray_driver_killed")))
    resumed = numbers(out / "ray_driver_killed/results.h5")
    report("resumed_equals_serial", resumed == reference)
    report("nothing_lost", all(resumed[k] == v for k, v in partial.items()))
    summary["load_average_end"] = os.getloadavg()
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
