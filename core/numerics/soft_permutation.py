"""Soft (and hard) permutation matrices applied to a state, differentiably.

``soft_apply(spec, state, mats)`` multiplies every axis a group acts on by the group's matrix:
the soft counterpart of :meth:`PermutationSpec.apply` (a hard permutation's matrix
P[i, perm[i]] = 1 gives exactly ``spec.apply``). Used by Sinkhorn re-basin, OT fusion and ZipIt.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ridgeline.core.state import State
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec


def multiply_axis(tensor: torch.Tensor, ref: AxisRef, matrix: torch.Tensor) -> torch.Tensor:
    """``tensor`` with the units on ``ref`` replaced by ``matrix @ units`` (differentiable):
    new unit i = sum_j matrix[i, j] * old unit j."""
    m, n = matrix.shape
    part = tensor.narrow(ref.axis, ref.offset, n * ref.stride)
    moved = torch.movedim(part, ref.axis, 0)
    rest = moved.shape[1:]
    mixed = (matrix.to(tensor) @ moved.reshape(n, -1)).reshape(m * ref.stride, *rest)
    mixed = torch.movedim(mixed, 0, ref.axis)
    before = tensor.narrow(ref.axis, 0, ref.offset)
    end = ref.offset + n * ref.stride
    after = tensor.narrow(ref.axis, end, tensor.shape[ref.axis] - end)
    return torch.cat([before, mixed, after], dim=ref.axis)


def soft_apply(spec: PermutationSpec, state: Mapping[str, torch.Tensor],
               mats: Mapping[str, torch.Tensor],
               consume: Mapping[str, torch.Tensor] | None = None) -> State:
    """The state with every axis of group g multiplied by ``mats[g]`` (a hard permutation's
    matrix P[i, perm[i]] = 1 gives ``spec.apply``). With ``consume``, axes other than 0 use
    ``consume[g]`` instead (ZipIt's unmerge side). The aliases of a tied tensor take its new
    value (``spec.ties``)."""
    out = dict(state)
    moved = set()
    for group, refs in spec.axes.items():
        if group not in mats:
            continue
        for ref in refs:
            matrix = consume[group] if consume is not None and ref.axis != 0 else mats[group]
            out[ref.key] = multiply_axis(out[ref.key], ref, matrix)
            moved.add(ref.key)
    return spec.ties.retie(out, moved) if spec.ties else out
