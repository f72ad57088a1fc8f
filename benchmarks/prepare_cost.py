"""What preparing each batch in the evaluation loop costs on images: one path point's evaluation of
a ResNet-20 on 1000 generated CIFAR-10 test images (uint8, stored at 32 x 32), the evaluator
preparing every batch (scale, resize, normalise) against a loop over the split prepared once, as
evaluation did before. One process, interleaved, one thread, best of 5; records must be equal.

    python benchmarks/prepare_cost.py [FOLDER]    (default /tmp/ridgeline-prepare-cost)
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ridgeline.core import Evaluator, registries
from ridgeline.plugins.datasets.cifar import write_cifar

BATCH = 250


def generated_cifar(root: Path) -> Path:
    if not root.exists():
        rng = np.random.default_rng(0)

        def split(n: int) -> tuple[np.ndarray, np.ndarray]:
            return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n)

        write_cifar(root, "cifar10", split(100), split(1000))
    return root


def prepared_once(evaluator: Evaluator, state: dict) -> tuple[float, float]:
    """The old way: the whole split prepared once, then plain batches of it."""
    x, y = evaluator.data("test")
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), BATCH):
            logits = torch.func.functional_call(evaluator.module, state, (x[start:start + BATCH],))
            loss += torch.nn.functional.cross_entropy(logits, y[start:start + BATCH], reduction="sum").item()
            correct += (logits.argmax(1) == y[start:start + BATCH]).sum().item()
    return loss / len(x), correct / len(x)


def prepared_per_batch(evaluator: Evaluator, state: dict) -> tuple[float, float]:
    evaluation = evaluator.evaluate(state, "test")
    return evaluation.loss, evaluation.accuracy


def best(function: Callable[[], object], times: list[float]) -> None:
    start = time.perf_counter()
    function()
    times.append(time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", UserWarning)  # generated files are not the official ones (MD5)
    root = generated_cifar(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ridgeline-prepare-cost"))
    regs = registries()
    for size in (32, 64):
        data = regs.datasets.create("cifar10", root=str(root), image_size=size, cache=False)
        model = regs.models.create("cifar_resnet", depth=20, input_shape=data.input_shape,
                                   num_classes=data.num_classes)
        state = model.init_state(0)
        evaluator = Evaluator(model.build(), data, batch_size=BATCH)
        old, new = prepared_once(evaluator, state), prepared_per_batch(evaluator, state)
        assert abs(old[0] - new[0]) < 1e-5 and old[1] == new[1], (old, new)
        old_times: list[float] = []
        new_times: list[float] = []
        for _ in range(5):
            best(lambda e=evaluator, s=state: prepared_once(e, s), old_times)
            best(lambda e=evaluator, s=state: prepared_per_batch(e, s), new_times)
        print(f"image_size {size}: per point, prepared per batch / prepared once = "
              f"{min(new_times) / min(old_times):.3f}x (best of 5: {min(new_times):.3f} s against "
              f"{min(old_times):.3f} s), records equal")


if __name__ == "__main__":
    main()
