"""Linear assignment: the permutation maximising a similarity (Kuhn 1955, via scipy's
``linear_sum_assignment``), shared by every aligner that turns a similarity into a matching.

Three forms, one solver:

* :func:`assignment`: one square problem, the permutation and its value;
* :func:`batched_assignment`: one problem per leading index (``(..., n, n)``), e.g. every pair of
  heads in weight matching's nested step (Ainsworth et al. 2023, Alg. 1 with heads) or every
  pair of trees' level orders;
* :func:`improving_assignment`: the coordinate-descent step of weight matching (Ainsworth et
  al. 2023, Alg. 1): the best permutation only if it beats the current one by more than
  rounding, decided in float64.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

Matrix = torch.Tensor | np.ndarray


def _numpy(similarity: Matrix) -> np.ndarray:
    if isinstance(similarity, torch.Tensor):
        return similarity.detach().cpu().numpy()
    return np.asarray(similarity)


def assignment(similarity: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The permutation maximising sum_i S[i, perm[i]] and that sum."""
    rows, cols = linear_sum_assignment(similarity.detach().cpu().numpy(), maximize=True)
    perm = torch.as_tensor(cols, dtype=torch.long)
    return perm, float(similarity.cpu()[torch.as_tensor(rows), perm].sum())


def batched_assignment(similarity: Matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """For every leading index b of ``similarity`` (shape ``(..., n, n)``, a tensor or an array),
    the permutation maximising sum_i S[b, i, perm[b, i]] and that sum: ``(perms, totals)``, a long
    tensor of shape ``(..., n)`` and a float64 tensor of shape ``(...)`` (sums taken in float64)."""
    matrices = _numpy(similarity)
    if matrices.ndim < 2 or matrices.shape[-1] != matrices.shape[-2]:
        raise ValueError(f"batched_assignment needs square matrices (..., n, n), got shape {matrices.shape}")
    batch, n = matrices.shape[:-2], matrices.shape[-1]
    flat = matrices.reshape(-1, n, n)
    perms = np.zeros((len(flat), n), dtype=np.int64)
    totals = np.zeros(len(flat), dtype=np.float64)
    for b, matrix in enumerate(flat):
        rows, perms[b] = linear_sum_assignment(matrix, maximize=True)
        totals[b] = matrix[rows, perms[b]].astype(np.float64).sum()
    return torch.from_numpy(perms.reshape(*batch, n)), torch.from_numpy(totals.reshape(batch))


def improving_assignment(similarity: torch.Tensor, current: torch.Tensor,
                         rtol: float = 1e-9) -> torch.Tensor | None:
    """The permutation maximising sum_i S[i, perm[i]] if its sum beats ``current``'s by more than
    ``rtol * max(1, |current's sum|)``, else None (the current permutation is kept, so rounding
    never makes coordinate descent cycle). Sums and the solve are in float64 whatever S's dtype;
    the result is on ``current``'s device."""
    loss = np.negative(similarity.detach().cpu().numpy(), dtype=np.float64)  # one float64 copy, minimised
    rows = np.arange(len(loss))
    _, cols = linear_sum_assignment(loss)
    now = -float(loss[rows, current.cpu().numpy()].sum())
    best = -float(loss[rows, cols].sum())
    if best > now + rtol * max(1.0, abs(now)):
        return torch.as_tensor(cols, dtype=torch.long, device=current.device)
    return None
