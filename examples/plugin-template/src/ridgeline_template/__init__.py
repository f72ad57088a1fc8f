"""A third-party ridgeline plugin that registers one aligner, ``norm_matching``.

Copy this package to start your own: rename it, keep the ``[project.entry-points.ridgeline]``
table in pyproject.toml, and implement the ``register_<kind>`` hooks you need.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import torch

from ridgeline.core import AlignContext, Aligner, Alignment, PermutationSpec, hookimpl


class NormMatchingAligner(Aligner):
    """Match units by the rank of their weight norm (a cheap heuristic baseline).

    In each group, units of both networks are sorted by the L2 norm of all the weights the
    group touches; the k-th largest unit of ``other`` is matched to the k-th largest of
    ``reference``. Exact for a planted permutation when norms are distinct.
    """

    name = "norm_matching"

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        start = time.perf_counter()
        perms = {}
        for group, size in spec.groups.items():
            norms = []
            for state in (reference, other):
                total = torch.zeros(size, dtype=torch.float64)
                for ref in spec.axes[group]:
                    total += spec.unit_view(state[ref.key], ref, size).double().pow(2).sum(1).cpu()
                norms.append(total)
            rank_ref = torch.argsort(norms[0], descending=True)
            rank_other = torch.argsort(norms[1], descending=True)
            perm = torch.empty(size, dtype=torch.long)
            perm[rank_ref] = rank_other  # unit i of the aligned model is other's unit of equal rank
            perms[group] = perm
        return Alignment(perms=perms, seconds=time.perf_counter() - start)


@hookimpl
def register_aligners(register):
    register("norm_matching", NormMatchingAligner)
