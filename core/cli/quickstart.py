"""``ridgeline quickstart``: the main job, on an embedded default configuration.

Two MLPs (3 hidden layers of 512, Adam 1e-3, seeds 0 and 1) trained on MNIST-1D, aligned with
``identity`` and ``weight_matching``, the linear path evaluated at 25 points on the test split.
The same pipeline is ``examples/quickstart.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ridgeline.core.run.config import PipelineConfig


def quickstart_config(*, output_dir: str | Path = "ridgeline-quickstart", epochs: int = 20,
                      num_samples: int = 5000, width: int = 512, depth: int = 3,
                      grid: int = 25, device: str = "auto", threads: int | None = None) -> PipelineConfig:
    """The quickstart pipeline; the keyword options shrink it for tests and smoke runs;
    ``threads`` fixes the training thread count (default: torch's)."""
    data: dict[str, Any] = {
        "output": str(Path(output_dir) / "results.h5"),
        "checkpoint_dir": str(Path(output_dir) / "checkpoints"),
        "device": device,
        "seed": 0,
        "dataset": {"name": "mnist1d", "num_samples": num_samples},
        "model": {"name": "mlp", "widths": [width] * depth},
        "train": {"epochs": epochs, "batch_size": 128, "lr": 1e-3, "optimizer": "adam",
                  **({"threads": threads} if threads is not None else {})},
        "pairs": [{"name": "seed0-seed1", "seeds": [0, 1]}],
        "aligners": ["identity", "weight_matching"],
        "paths": ["linear"],
        "metrics": [{"name": "loss_barrier", "split": "test", "grid": grid},
                    {"name": "error_barrier", "split": "test", "grid": grid}],
    }
    return PipelineConfig.from_dict(data)
