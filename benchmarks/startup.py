"""Start-up: ``ridgeline list`` and ``ridgeline --help`` against ``python -c "import torch"``.

Each command in a fresh interpreter, ``--repeats`` rounds with the three interleaved so that they
see the same machine load; prints the median, the range and the ratio to ``import torch``, with
the load average before and after (docs/performance.md, Start-up). Run:
``OMP_NUM_THREADS=1 python benchmarks/startup.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics

from ridgeline.core.run.bench import STARTUP_COMMANDS, fresh_interpreter_seconds


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    before = load()
    times = fresh_interpreter_seconds(STARTUP_COMMANDS, args.repeats)
    print(f"load average before {before}, after {load()}; {args.repeats} interleaved rounds")
    baseline = statistics.median(times["import torch"])
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{name:<18} median {median:.3f} s (range {min(seconds):.3f}-{max(seconds):.3f}), "
              f"{median / baseline:.3f}x import torch")


if __name__ == "__main__":
    main()
