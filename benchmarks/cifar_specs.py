"""Spec derivation of the CIFAR models: time, coverage, check, planted-permutation recovery.

For each ``cifar_resnet`` / ``cifar_vgg`` configuration (3 x 32 x 32 inputs, 10 classes): parameters,
groups, permutable hidden units, the best of three ``derive_spec`` times on one thread (trace, walk,
check), the check's worst error relative to its tolerance, and whether ``weight_matching`` (forward
order, seed 0) recovers a random permutation planted in ``init_state(0)`` exactly, with its time.
Run: ``python benchmarks/cifar_specs.py``.
"""

from __future__ import annotations

import time

import torch

from ridgeline.core import derive_spec, generic_state, registries
from ridgeline.plugins.aligners.weight_matching import weight_matching

CONFIGS = [
    ("cifar_resnet", {"depth": 20}), ("cifar_resnet", {"depth": 20, "width": 4}),
    ("cifar_resnet", {"depth": 20, "width": 16}), ("cifar_resnet", {"depth": 20, "norm": "layernorm"}),
    ("cifar_resnet", {"depth": 32}), ("cifar_resnet", {"depth": 56}),
    ("cifar_vgg", {"depth": 11}), ("cifar_vgg", {"depth": 16}),
]


def main() -> None:
    torch.set_num_threads(1)
    print("| model | params | groups | permutable hidden units | coverage | derive (s, 1 core) "
          "| check: worst error / tolerance | weight matching: distance (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, options in CONFIGS:
        model = registries().models.create(name, input_shape=(3, 32, 32), num_classes=10, **options)
        module = model.build()
        example = model.example_input()
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            spec = derive_spec(module, example)
            best = min(best, time.perf_counter() - start)
        check = spec.check(module, model.example_input(4, seed=3), state=generic_state(module))
        state = model.init_state(0)
        planted = spec.apply(state, spec.random(torch.Generator().manual_seed(1)))
        start = time.perf_counter()
        perms, _ = weight_matching(spec, state, planted, seed=0)
        seconds = time.perf_counter() - start
        aligned = spec.apply(planted, perms)
        distance = max(float((aligned[k] - state[k]).abs().max()) for k in state)
        units = spec.hidden_units()
        hidden = units + sum(spec.frozen_sizes.values())
        params = sum(p.numel() for p in module.parameters()) / 1e6
        label = f"{name} " + " ".join(f"{k}={v}" for k, v in options.items())
        print(f"| {label} | {params:.2f}M | {len(spec.groups)} | {units} / {hidden} | {spec.coverage():.1%} "
              f"| {best:.3f} | {check.worst_ratio:.2g} | {distance:g} ({seconds:.1f}) |")


if __name__ == "__main__":
    main()
