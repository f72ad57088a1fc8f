"""What ``ridgeline spec MODEL`` prints: a model's permutation groups, coverage and check."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

import torch
from torch import nn

from ridgeline.core.symmetry.derive import generic_state
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec


class SpecSource(Protocol):
    """What the report needs of a model (a :class:`ridgeline.core.Model` is one)."""

    name: str

    @property
    def config(self) -> dict[str, Any]: ...

    def spec(self) -> PermutationSpec: ...

    def build(self) -> nn.Module: ...

    def example_input(self) -> torch.Tensor: ...


def format_ref(ref: AxisRef, size: int) -> str:
    """``key[axis]``, with the slice and block size when the group acts on part of the axis."""
    text = f"{ref.key}[{ref.axis}]"
    if ref.offset or ref.stride != 1:
        text += f"[{ref.offset}:{ref.offset + size * ref.stride}"
        text += f" in blocks of {ref.stride}]" if ref.stride != 1 else "]"
    return text


def format_spec_report(model: SpecSource, *, seeds: int = 3) -> str:
    """Groups (size, the tensors each acts on, nesting), frozen groups with reasons, coverage
    (permutable hidden units / all hidden units) and the result of ``spec.check`` over
    ``seeds`` random permutations of every group on the model's example input (with a
    perturbed copy of the initial state, so that zero-initialised layers cannot hide an error)."""
    start = time.perf_counter()
    spec = model.spec()
    seconds = time.perf_counter() - start
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = model.build()
    check = spec.check(module, model.example_input(), seeds=seeds, state=generic_state(module))
    lines = [f"model {model.name!r} {json.dumps(model.config, default=str)}",
             f"spec obtained in {seconds:.2f} s (cached per model and config)", ""]
    lines += _groups(spec)
    if spec.frozen:
        lines += ["", f"frozen groups ({len(spec.frozen)}; never permuted):"]
        for name, reason in spec.frozen.items():
            size = spec.frozen_sizes.get(name)
            lines.append(f"  {name}" + (f" ({size} units)" if size is not None else "") + f": {reason}")
    free = spec.hidden_units()
    total = free + sum(spec.frozen_sizes.values())
    lines += ["", f"coverage: {spec.coverage():.1%} ({free} of {total} hidden units permutable; "
                  f"{len(spec.groups)} groups, {len(spec.frozen)} frozen)",
              f"check: {'passed' if check.passed else 'FAILED'} ({seeds} random permutations of every "
              f"group; worst output error {check.worst_ratio:.3g} x tolerance, "
              f"atol={check.atol:g}, rtol={check.rtol:g})"]
    return "\n".join(lines)


def _groups(spec: PermutationSpec) -> list[str]:
    lines = [f"groups ({len(spec.groups)}):"]
    for name, size in spec.groups.items():
        extra = []
        if name in spec.nested:
            extra.append(f"within each unit of {spec.nested[name]!r}, blocks of {spec.block(name)}")
        if name in spec.unit_sizes:
            extra.append(f"moves {spec.unit_sizes[name]} hidden units")
        head = f"  {name}: {size}" + (f" ({'; '.join(extra)})" if extra else "")
        tensors = ", ".join(format_ref(ref, size) for ref in spec.axes[name])
        lines.append(f"{head}\n      {tensors}")
    return lines
