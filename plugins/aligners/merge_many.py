"""``merge_many``: Git Re-Basin Algorithm 3, MergeMany (Ainsworth, Hayase & Srinivasa,
ICLR 2023, Appendix).

Given N models, repeat until no permutation changes (or ``max_iter`` rounds): for each model i
in a random order, weight-match it to the mean of the others as currently permuted,

    P_i <- weight_matching(mean_{j != i} P_j(theta_j), theta_i),

then average: theta_merged = (1 / N) sum_i P_i(theta_i). Results are expressed in the first
model's frame (its permutation is the identity), so ``align(reference, other)`` is the N = 2
case: its permutations take ``other`` onto ``reference`` and ``merged`` is the average.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ridgeline.core import AlignContext, Aligner, Alignment, ConfigError, Perms, PermutationSpec, State
from ridgeline.core.numerics import check_compatible, combine
from ridgeline.plugins.aligners.weight_matching import matching_objective, weight_matching


def merge_many(states: Sequence[Mapping[str, torch.Tensor]], spec: PermutationSpec, *,
               max_iter: int = 20, wm_iter: int = 100, seed: int = 0
               ) -> tuple[list[Perms], State, list[float]]:
    """Permutations of every model (the first's is the identity), the merged state, and per
    round the sum over models of the weight-matching objective against the others' mean."""
    if len(states) < 2:
        raise ConfigError(f"merge_many needs at least two models, got {len(states)}")
    for i, state in enumerate(states[1:], start=1):
        check_compatible(states[0], state, names=("model 0", f"model {i}"))
    spec.validate(states[0])
    n = len(states)
    rng = np.random.default_rng(seed)
    perms = [spec.identity() for _ in states]
    history: list[float] = []
    for round_ in range(max_iter):
        changed, total = False, 0.0
        for i in rng.permutation(n):
            others = [spec.apply(states[j], perms[j]) for j in range(n) if j != i]
            mean = combine(others, [1.0 / (n - 1)] * (n - 1))
            new, trace = weight_matching(spec, mean, states[i], max_iter=wm_iter,
                                         seed=seed + round_ * n + int(i), init=perms[i])
            changed |= any(not torch.equal(new[g], perms[i][g]) for g in new)
            perms[i] = new
            total += trace[-1]
        history.append(total)
        if not changed:
            break
    frame = spec.invert(perms[0])
    perms = [spec.compose(p, frame) for p in perms]
    merged = combine([spec.apply(s, p) for s, p in zip(states, perms)], [1.0 / n] * n)
    return perms, merged, history


class MergeManyAligner(Aligner):
    """MergeMany for two models (the pipeline's pairwise use); for N models call
    :func:`merge_many`. Options: ``max_iter`` rounds, ``wm_iter`` weight-matching sweeps."""

    name = "merge_many"
    supports_nested = True
    merges = True

    def __init__(self, *, max_iter: int = 20, wm_iter: int = 100, seed: int | None = None) -> None:
        super().__init__(max_iter=max_iter, wm_iter=wm_iter, seed=seed)
        self.max_iter, self.wm_iter, self.seed = max_iter, wm_iter, seed

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        self.check_inputs(reference, other, spec)
        start = time.perf_counter()
        seed = context.seed if self.seed is None else self.seed
        perms, merged, history = merge_many([reference, other], spec, max_iter=self.max_iter,
                                            wm_iter=self.wm_iter, seed=seed)
        objective = matching_objective(spec, reference, other, perms[1])
        return Alignment(perms=perms[1], objective=objective, history=tuple(history),
                         seconds=time.perf_counter() - start, merged=merged,
                         diagnostics={"rounds": len(history)})
