"""Linear assignment: the permutation maximising a similarity (Kuhn 1955, via scipy's
``linear_sum_assignment``), shared by every aligner that turns a similarity into a matching."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment


def assignment(similarity: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The permutation maximising sum_i S[i, perm[i]] and that sum."""
    rows, cols = linear_sum_assignment(similarity.detach().cpu().numpy(), maximize=True)
    perm = torch.as_tensor(cols, dtype=torch.long)
    return perm, float(similarity.cpu()[torch.as_tensor(rows), perm].sum())
