"""States: a network's parameters and buffers as a ``dict[str, Tensor]`` (a state dict).

States are values. Nothing here mutates its inputs. Arithmetic acts on floating-point
tensors; integer buffers (BatchNorm's ``num_batches_tracked``) are carried over from the
first state, since averaging a counter means nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import torch

from ridgeline.core.errors import NonFiniteStateError, StateMismatchError

State = dict[str, torch.Tensor]


def check_compatible(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                     names: tuple[str, str] = ("A", "B")) -> None:
    """Raise :class:`StateMismatchError` naming the first differing key or shape."""
    missing = sorted(set(a) - set(b))
    extra = sorted(set(b) - set(a))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{names[1]} lacks {', '.join(missing[:5])}")
        if extra:
            parts.append(f"{names[1]} has extra {', '.join(extra[:5])}")
        raise StateMismatchError(
            f"states {names[0]} and {names[1]} have different tensors: {'; '.join(parts)} "
            "(different architectures?)"
        )
    for key in a:
        if a[key].shape != b[key].shape:
            raise StateMismatchError(
                f"tensor {key!r} has shape {tuple(a[key].shape)} in {names[0]} but "
                f"{tuple(b[key].shape)} in {names[1]} (different architectures or widths?)"
            )


def non_finite(state: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """The number of NaN and inf values of every floating tensor that has any, by key."""
    counts = {}
    for key, tensor in state.items():
        if tensor.is_floating_point() or tensor.is_complex():
            count = int((~torch.isfinite(tensor)).sum())
            if count:
                counts[key] = count
    return counts


def check_finite(state: Mapping[str, torch.Tensor], name: str, needed_by: str = "") -> None:
    """Raise :class:`NonFiniteStateError` if ``state`` (called ``name``: a file, ``reference``)
    holds NaN or inf, naming each such tensor with its count (``needed_by``: who refuses it)."""
    counts = non_finite(state)
    if not counts:
        return
    listed = [f"{key!r} ({count} of {state[key].numel()})" for key, count in list(counts.items())[:3]]
    more = f" and {len(counts) - 3} more tensors" if len(counts) > 3 else ""
    who = f"{needed_by} needs finite weights" if needed_by else "finite weights are needed"
    raise NonFiniteStateError(
        f"{name} holds non-finite values (NaN or inf) in tensor {', '.join(listed)}{more}; {who}. "
        "A diverged training run? The identity aligner still measures (and flags) such a path."
    )


def combine(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | torch.Tensor) -> State:
    """sum_i weights[i] * states[i], key by key, on ``states[0]``'s devices; integer tensors
    come from ``states[0]``."""
    if len(states) != len(weights):
        raise ValueError(f"{len(states)} states but {len(weights)} weights")
    out: State = {}
    for key, first in states[0].items():
        if not first.is_floating_point():
            out[key] = first.clone()
            continue
        acc = first * weights[0]
        for state, w in zip(states[1:], weights[1:]):
            acc = acc + state[key].to(acc.device) * w  # a no-op unless states straddle devices
        out[key] = acc
    return out


def lerp(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], t: float) -> State:
    """(1 - t) a + t b."""
    return combine([a, b], [1.0 - t, t])


def subtract(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> State:
    """a - b over floating-point tensors (the displacement from b to a)."""
    return {k: a[k] - b[k].to(a[k].device) for k in a if a[k].is_floating_point()}


def clone(state: Mapping[str, torch.Tensor], device: torch.device | str | None = None) -> State:
    return {k: v.detach().clone().to(device) if device else v.detach().clone() for k, v in state.items()}


def to_device(state: Mapping[str, torch.Tensor], device: torch.device | str) -> State:
    return {k: v.to(device) for k, v in state.items()}


def distance(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Euclidean distance between the floating-point parts of two states."""
    return float(torch.sqrt(sum(((a[k] - b[k]).double() ** 2).sum() for k in a if a[k].is_floating_point())))


def module_groups(state: Mapping[str, torch.Tensor]) -> dict[str, list[str]]:
    """The state's floating-point keys grouped by module, in key order (input to output for
    modules registered in forward order).

    A layer is every tensor of one module (Adilova et al., ICLR 2024): the key prefix before
    the last dot, so ``hidden.0.weight`` and ``hidden.0.bias`` form layer ``hidden.0``.
    Integer buffers (BatchNorm's counter) are left out: they are never interpolated.
    """
    groups: dict[str, list[str]] = {}
    for key, value in state.items():
        if value.is_floating_point():
            groups.setdefault(key.rpartition(".")[0] or key, []).append(key)
    return groups


def fingerprint(states: Sequence[Mapping[str, torch.Tensor]]) -> str:
    """A SHA-256 of the states' names, dtypes, shapes and values (identifies a model set)."""
    digest = hashlib.sha256()
    for state in states:
        for key in sorted(state):
            tensor = state[key].detach().cpu().contiguous()
            digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16
                          else tensor.float().numpy().tobytes())
    return digest.hexdigest()
