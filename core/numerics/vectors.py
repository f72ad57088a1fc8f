"""States as vectors: inner products, norms, angles and flattening over tensor keys.

A *vector* here is a ``dict[str, Tensor]`` over some of a state's keys (a displacement, a
gradient, a Hessian-vector product). Keys absent from a vector count as zero. Reductions run in
float64 so that sums over millions of parameters stay accurate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

Vector = dict[str, torch.Tensor]


def dot(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """<a, b> over the keys of ``a`` (in float64); keys missing from ``b`` count as zero."""
    return float(sum((a[k].double() * b[k].to(a[k].device).double()).sum() for k in a if k in b))


def norm(a: Mapping[str, torch.Tensor]) -> float:
    """The Euclidean norm of a vector."""
    return dot(a, a) ** 0.5


def restrict(vector: Mapping[str, torch.Tensor], keys: list[str]) -> Vector:
    """The vector with every key outside ``keys`` set to zero (dropped)."""
    return {k: vector[k] for k in keys if k in vector}


def flatten(state: Mapping[str, torch.Tensor], keys: Iterable[str] | None = None) -> torch.Tensor:
    """The floating-point tensors of ``state`` (``keys``, in that order; default all) as one
    vector on their device, in their dtype (empty if there are none)."""
    keys = list(state) if keys is None else list(keys)
    parts = [state[k].reshape(-1) for k in keys if state[k].is_floating_point()]
    return torch.cat(parts) if parts else torch.zeros(0)


def angle(x: torch.Tensor, y: torch.Tensor) -> float:
    """The angle between two vectors in degrees (NaN if either is zero)."""
    nx, ny = float(x.norm()), float(y.norm())
    if nx == 0.0 or ny == 0.0:
        return math.nan
    return math.degrees(math.acos(max(-1.0, min(1.0, float(x @ y) / (nx * ny)))))
