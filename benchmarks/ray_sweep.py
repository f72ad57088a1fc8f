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

    .venv/bin/python benchmarks/ray_sweep.py [--out DIR] [--tiny | --heavy]
        [--speed-only]

``--tiny`` shrinks everything for a smoke test; ``--heavy`` grows the cells (512-wide
networks, 1000-step curve fits) to the size where two workers pay for Ray's fixed costs.
Prints one line per figure and writes ``<out>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


class Bench:
    """The sweep's folder, its pipeline file and the figures measured so far."""

    def __init__(self, out: Path, sizes: dict[str, int]) -> None:
        self.out, self.sizes = out, sizes
        out.mkdir(parents=True, exist_ok=True)
        self.toml = out / "sweep.toml"
        self.toml.write_text(PIPELINE.format(**sizes))
        self.summary: dict[str, object] = {"sizes": sizes, "load_average_start": os.getloadavg()}

    def report(self, key: str, value: object) -> None:
        self.summary[key] = value
        print(f"{key}: {value}", flush=True)

    def results(self, name: str) -> Path:
        return self.out / name / "results.h5"

    def args(self, name: str, *extra: str) -> list[str]:
        """``ridgeline run`` of the sweep into ``<out>/<name>/``, after removing what is there."""
        if (self.out / name).exists():
            shutil.rmtree(self.out / name)
        return ["run", str(self.toml), "--quiet", "--output", str(self.results(name)), *extra]

    def serial(self, default_threads: bool) -> dict:
        """Serial runs: one torch thread (the reference numbers), then torch's default."""
        self.report("serial_1_thread_s", run(self.args("serial1"), {"OMP_NUM_THREADS": "1"}))
        reference = numbers(self.results("serial1"))
        self.report("curves", len(reference))
        if not default_threads:
            return reference
        self.report("serial_default_threads_s", run(self.args("serial")))
        self.report("serial_default_threads_max_abs_difference",
                    max_difference(numbers(self.results("serial")), reference))
        return reference

    def ray(self, reference: dict) -> None:
        self.report("ray_s", run(self.args("ray", "--executor", "ray")))
        self.report("ray_equals_serial_1_thread", numbers(self.results("ray")) == reference)
        for serial in ("serial_1_thread", "serial_default_threads"):
            if f"{serial}_s" in self.summary:
                self.report(f"speedup_vs_{serial}", self.summary[f"{serial}_s"] / self.summary["ray_s"])

    def worker_kill(self, reference: dict) -> None:
        """A worker process killed by its pid while it measures a path."""
        driver = subprocess.Popen(RIDGELINE + self.args("ray_worker_killed", "--executor", "ray"),
                                  stdout=subprocess.DEVNULL)
        victim = None
        while driver.poll() is None and victim is None:
            time.sleep(0.5)
            busy = [p for p in children(driver.pid) if title(p).startswith("ray::measure")]
            victim = busy[0] if busy else None
        if victim is not None:
            self.report("killed_worker", f"{victim} {title(victim)}")
            os.kill(victim, signal.SIGKILL)
        self.report("worker_killed_exit_status", driver.wait())
        self.report("worker_killed_equals_serial", numbers(self.results("ray_worker_killed")) == reference)

    def driver_kill(self, reference: dict) -> None:
        """The driver killed with SIGKILL once a quarter of the measure cells have started,
        then the same command again."""
        from ridgeline.core.results.readers import read_summaries

        args = self.args("ray_driver_killed", "--executor", "ray")
        driver = subprocess.Popen(RIDGELINE + args, stdout=subprocess.DEVNULL)
        measures = self.sizes["last_seed"] * 3 * 2
        started: set[str] = set()
        while driver.poll() is None and len(started) < max(2, measures // 4):
            time.sleep(0.2)
            started |= {title(p) for p in children(driver.pid) if title(p).startswith("ray::measure")}
        self.report("measure_cells_started_at_kill", f"{len(started)} of {measures}")
        ray_processes = children(driver.pid)
        if driver.poll() is not None:
            raise SystemExit("the sweep finished before the driver could be killed: use a larger sweep")
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        time.sleep(5)
        left = [p for p in ray_processes if Path(f"/proc/{p}").exists()]
        self.report("ray_processes_left_after_driver_kill", [title(p) for p in left])
        for pid in left:  # only the processes this driver started
            os.kill(pid, signal.SIGKILL)
        partial = numbers(self.results("ray_driver_killed"))
        done = [r for r in read_summaries(self.results("ray_driver_killed")) if r["complete"]]
        self.report("series_complete_at_kill", len(done))
        self.report("points_written_at_kill", len(partial))
        self.report("resume_s", run(args))  # the same command again
        resumed = numbers(self.results("ray_driver_killed"))
        self.report("resumed_equals_serial", resumed == reference)
        self.report("nothing_lost", all(resumed[k] == v for k, v in partial.items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="ray-sweep-bench")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--heavy", action="store_true",
                        help="wider networks and longer curve fits (cells of seconds, not tenths): the "
                        "size at which two workers can pay for Ray's start-up")
    parser.add_argument("--speed-only", action="store_true",
                        help="only the serial (one thread) and Ray runs, not the kill checks")
    parser.add_argument("--no-default-threads", action="store_true",
                        help="skip the serial run with torch's default thread count (on a machine whose "
                        "cores are busy with other work, its threads mostly wait for each other)")
    parser.add_argument("--driver-kill-only", action="store_true",
                        help="only the driver-kill check, against <out>/serial1 from an earlier run")
    args = parser.parse_args()
    sizes = (dict(bezier_steps=10, grid=5, samples=1000, width=32, epochs=2, last_seed=3) if args.tiny
             else dict(bezier_steps=1000, grid=25, samples=4000, width=512, epochs=10, last_seed=7)
             if args.heavy
             else dict(bezier_steps=200, grid=25, samples=4000, width=128, epochs=10, last_seed=7))
    bench = Bench(Path(args.out).resolve(), sizes)
    if args.driver_kill_only:
        bench.driver_kill(numbers(bench.results("serial1")))
        return
    reference = bench.serial(not args.no_default_threads)
    bench.ray(reference)
    if not args.speed_only:
        bench.worker_kill(reference)
        bench.driver_kill(reference)
    bench.summary["load_average_end"] = os.getloadavg()
    (bench.out / "summary.json").write_text(json.dumps(bench.summary, indent=2, default=str))


if __name__ == "__main__":
    main()
