"""A scripted pipeline: compose registry entries by name from Python, then read tidy rows.

    python examples/scripted_pipeline.py [output_dir]

Trains three small MLPs on scikit-learn's digits, compares the naive and weight-matched
linear paths between every model and the first, and prints the barriers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ridgeline.core import Pipeline, PipelineConfig, format_table, read_curves, report_rows


def main(out_dir: str = "ridgeline-scripted") -> None:
    config = PipelineConfig.from_dict({
        "output": str(Path(out_dir) / "results.h5"),
        "dataset": {"name": "digits"},
        "model": {"name": "mlp", "widths": [128, 128]},
        "train": {"epochs": 15, "batch_size": 64, "lr": 1e-3},
        "pairs": [{"name": "s0-s1", "seeds": [0, 1]}, {"name": "s0-s2", "seeds": [0, 2]}],
        "aligners": ["identity", {"name": "weight_matching", "order": "forward"}],
        "metrics": [{"name": "loss_barrier", "grid": 11}, {"name": "error_barrier", "grid": 11}],
    })
    output = Pipeline(config, device="auto").run()
    print(format_table(report_rows(output)))
    midpoints = [r for r in read_curves(output) if r["t"] == 0.5 and r["metric"] == "error_barrier"]
    for row in midpoints:
        print(f"{row['pair']:>6} {row['aligner']:>16}: midpoint accuracy {100 * row['accuracy']:.1f}%")


if __name__ == "__main__":
    main(*sys.argv[1:])
