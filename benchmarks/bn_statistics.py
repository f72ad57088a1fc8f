"""Exact BatchNorm statistics (issue 10, item 4): errors of streamed re-estimation against one pass.

Trains a BatchNorm network briefly, then re-estimates its BatchNorm statistics on the training
split in batches of 1000 (so digits' 1347 examples come as 1000 + 347) three ways and compares each
with the statistics of a single train-mode batch holding every example (the full-pass reference):

- PyTorch's cumulative average (``momentum=None``), ridgeline's method before issue 10;
- pooled moments, one pass (every batch weighs by its size);
- pooled moments with further eval-mode passes (``Evaluator.bn_passes``).

Errors are the largest over layers and channels of |mean - mean_ref| / std_ref and
|var / var_ref - 1|. Run: ``python benchmarks/bn_statistics.py [--model convnet|cifar_resnet]``.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn

from ridgeline.core import Evaluator, TrainConfig, registries, train
from ridgeline.core.interfaces.statistics import BATCHNORM


def momentum_none(module: nn.Module, state, x: torch.Tensor, batch_size: int):
    """The old method: PyTorch's cumulative average over the batches, whole network in train mode."""
    work = copy.deepcopy(module)
    work.load_state_dict(state)
    for m in work.modules():
        if isinstance(m, BATCHNORM):
            m.reset_running_stats()
            m.momentum = None
    work.train()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            work(x[start:start + batch_size])
    return work.state_dict()


def timed(work, repeats: int = 5):
    """The result of ``work()`` and its fastest time over ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return result, best


def errors(estimate, reference) -> tuple[float, float]:
    worst_mean = worst_var = 0.0
    for key in reference:
        if key.endswith("running_mean"):
            var_key = key.replace("running_mean", "running_var")
            std = reference[var_key].double().sqrt()
            worst_mean = max(worst_mean, float(((estimate[key] - reference[key]).double().abs() / std).max()))
            ratio = estimate[var_key].double() / reference[var_key].double()
            worst_var = max(worst_var, float((ratio - 1).abs().max()))
    return worst_mean, worst_var


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnet", choices=["convnet", "cifar_resnet"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    regs = registries()
    if args.model == "convnet":
        data = regs.datasets.create("digits")
        model = regs.models.create("convnet", input_shape=data.input_shape, num_classes=10)
    else:
        data = regs.datasets.create("synthetic", num_classes=10, train_size=1347, test_size=64,
                                    image_size=[3, 16, 16], separation=6.0)
        model = regs.models.create("cifar_resnet", input_shape=data.input_shape, num_classes=10)
    state = train(model, data, TrainConfig(steps=200, batch_size=128), seed=0, progress=False)
    module = model.build()
    x, _ = data.split("train")
    print(f"{args.model} on {data.name}: {len(x)} training examples, batches of 1000 "
          f"({', '.join(str(min(1000, len(x) - s)) for s in range(0, len(x), 1000))})")
    reference = Evaluator(module, data, batch_size=len(x), bn_examples=len(x), bn_passes=1).reset_batchnorm(
        state, "train")
    old, seconds = timed(lambda: momentum_none(module, state, x, 1000))
    rows = [("momentum=None (before)", *errors(old, reference), seconds)]
    for passes in (1, 2, 3, 4):
        evaluator = Evaluator(module, data, batch_size=1000, bn_examples=len(x), bn_passes=passes)
        estimate, seconds = timed(lambda evaluator=evaluator: evaluator.reset_batchnorm(state, "train"))
        rows.append((f"pooled, {passes} pass{'es' if passes > 1 else ''}", *errors(estimate, reference),
                     seconds))
    print(f"{'method':<26} {'max |mean err| / std':>22} {'max |var ratio - 1|':>20} {'best s':>8}")
    for name, mean_error, var_error, seconds in rows:
        print(f"{name:<26} {mean_error:>22.3g} {var_error:>20.3g} {seconds:>8.3f}")


if __name__ == "__main__":
    main()
