"""What ``ridgeline spec MODEL`` prints: a model's permutation groups, coverage and check, and every
kind of symmetry the model declares (``Model.symmetries()``) with its own check."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any, Protocol

import attrs
import torch
from torch import nn

from ridgeline.core.errors import RidgelineError
from ridgeline.core.symmetry.derive import derive_and_check, generic_state
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec
from ridgeline.core.symmetry.symmetry import Symmetry


class SpecSource(Protocol):
    """What the report needs of a model (a :class:`ridgeline.core.Model` is one)."""

    name: str

    @property
    def config(self) -> dict[str, Any]: ...

    def spec(self) -> PermutationSpec: ...

    def symmetries(self) -> Symmetry: ...

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
    """Groups (size, the tensors each acts on, nesting), frozen groups with reasons, tied tensors
    (the names of each), coverage
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
    if spec.ties:
        lines += ["", f"tied tensors ({len(spec.ties.groups)}; one tensor under several names, "
                      "permuted once, every name kept equal):"]
        lines += [f"  {canonical} = {', '.join(aliases)}" for canonical, aliases in spec.ties.groups.items()]
    free = spec.hidden_units()
    total = free + sum(spec.frozen_sizes.values())
    lines += ["", f"coverage: {spec.coverage():.1%} ({free} of {total} hidden units permutable; "
                  f"{len(spec.groups)} groups, {len(spec.frozen)} frozen)",
              f"check: {'passed' if check.passed else 'FAILED'} ({seeds} random permutations of every "
              f"group; worst output error {check.worst_ratio:.3g} x tolerance, "
              f"atol={check.atol:g}, rtol={check.rtol:g})"]
    lines += ["", *_kinds(model.symmetries(), spec, module, model.example_input(), seeds)]
    return "\n".join(lines)


def _kinds(symmetry: Symmetry, spec: PermutationSpec, module: nn.Module, example: torch.Tensor,
           seeds: int) -> list[str]:
    """Every kind of symmetry, and the check of the whole symmetry when it holds more than the spec."""
    kinds = symmetry.kinds()
    lines = [f"kinds of symmetry ({len(kinds)}):"]
    lines += [f"  {kind}: {summary}" for kind, summary in kinds.items()]
    if symmetry is not spec:
        check = symmetry.check(module, example, seeds=seeds, state=generic_state(module))
        lines.append(f"check of every kind: {'passed' if check.passed else 'FAILED'} ({seeds} random "
                     f"transforms; worst output error {check.worst_ratio:.3g} x tolerance"
                     + (f"; {check.note}" if check.note else "") + ")")
    return lines


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


# -- the coverage table of ``ridgeline spec --all PATTERN`` -------------------------------------
@attrs.frozen
class SpecRow:
    """One model's line in the coverage table: where its spec stands and what it cost."""

    model: str
    input_shape: tuple[int, ...]
    coverage: float | None = None
    groups: int = 0
    hidden_units: int = 0
    frozen: tuple[tuple[str, int, int], ...] = ()  # (reason, groups, hidden units)
    seconds: float | None = None  # trace, walk, assemble and check (one call of derive_spec)
    worst_ratio: float | None = None  # the check's worst output error / tolerance
    error: str | None = None
    spec: PermutationSpec | None = attrs.field(default=None, repr=False, eq=False)


def frozen_summary(spec: PermutationSpec) -> tuple[tuple[str, int, int], ...]:
    """Frozen groups by reason (the place each happened left out), most hidden units first."""
    groups: Counter[str] = Counter()
    units: Counter[str] = Counter()
    for name, reason in spec.frozen.items():
        kind = re.sub(r" at \S+", "", reason)
        groups[kind] += 1
        units[kind] += spec.frozen_sizes.get(name, 0)
    return tuple(sorted(((k, groups[k], units[k]) for k in groups), key=lambda r: (-r[2], -r[1], r[0])))


def spec_row(name: str, model: SpecSource, *, seeds: int = 3) -> SpecRow:
    """Derive and check ``model``'s spec on its example input, timed; an error (a module that
    cannot be traced, a wrong input size) becomes the row's ``error``, one line."""
    shape = tuple(getattr(model, "input_shape", ()))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module = model.build()
        example = model.example_input()
        start = time.perf_counter()
        spec, check = derive_and_check(module, example, seeds=seeds)
        seconds = time.perf_counter() - start
    except (RidgelineError, RuntimeError, ValueError, TypeError, AssertionError) as error:
        text = (str(error).splitlines() or [""])[0]
        return SpecRow(name, shape, error=text if isinstance(error, RidgelineError)
                       else f"{type(error).__name__}: {text}")
    free = spec.hidden_units()
    return SpecRow(name, shape, spec.coverage(), len(spec.groups), free + sum(spec.frozen_sizes.values()),
                   frozen_summary(spec), seconds, check.worst_ratio if check else None, None, spec)


def format_spec_table(rows: list[SpecRow]) -> str:
    """A Markdown table: model, input, coverage, groups, frozen groups and reasons, derive time."""
    lines = ["| model | input | coverage | groups | frozen groups (hidden units): reason "
             "| derive + check (s) |", "|---|---|---|---|---|---|"]
    for row in rows:
        shape = "x".join(str(n) for n in row.input_shape)
        if row.coverage is None or row.error:
            lines.append(f"| {row.model} | {shape} | - | - | {row.error} | - |")
            continue
        frozen = "; ".join(f"{n} ({u}): {reason}" for reason, n, u in row.frozen) or "none"
        lines.append(f"| {row.model} | {shape} | {row.coverage:.1%} | {row.groups} | {frozen} | "
                     f"{row.seconds:.2f} |")
    return "\n".join(lines)
