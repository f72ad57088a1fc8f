"""``activation_matching``: match units by the correlation of their activations.

Git Re-Basin (Ainsworth, Hayase & Srinivasa, ICLR 2023, Sec. 3.1) and REPAIR (Jordan et al.,
ICLR 2023, Sec. 3): for every permutation group independently,

    P_g = argmax_P <P, S_g>,   S_g[i, j] = corr(z_i^A, z_j^B)   (or E[z_i^A z_j^B], ``inner``)

where z are the group's units over a data split, S_g is computed from first and second moments
streamed by :mod:`ridgeline.core.numerics.activations`, and the argmax is one linear assignment
problem per group (``scipy.optimize.linear_sum_assignment``). Activations of B do not depend on
how B's other groups are permuted, so the groups decouple.

``features="post"`` (the default) takes z after the nonlinearity that follows the unit, relu(Wx+b),
as Git Re-Basin's MNIST code does; a group with no nonlinearity after its units (a residual
stream, attention heads) uses its pre-activations and is listed in the diagnostics.
``features="pre"`` takes Wx+b for every group.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Literal, get_args

import torch

from ridgeline.core import AlignContext, Aligner, Alignment, ConfigError, Perms, PermutationSpec
from ridgeline.core.numerics import Moments, assignment, cross_similarity, stream_moments

Kind = Literal["correlation", "inner"]
KINDS = get_args(Kind)
Features = Literal["post", "pre"]
FEATURES = get_args(Features)


def match_moments(moments: Mapping[str, list[Moments]], kind: str = "correlation",
                  i: int = 0, j: int = 1) -> tuple[Perms, dict[str, float]]:
    """Per group, the permutation of network j's units best matching network i's, and the mean
    similarity of the matched pairs."""
    perms, scores = {}, {}
    for group, ms in moments.items():
        perm, total = assignment(cross_similarity(ms, i, j, kind))
        perms[group], scores[group] = perm, total / len(perm)
    return perms, scores


class ActivationMatchingAligner(Aligner):
    """Correlation (or inner-product) matching of activations on ``split`` (default: the
    context's split), from up to ``examples`` examples. Which units: ``features = "post"`` (after
    their nonlinearity, where they have one; the default) or ``"pre"``."""

    name = "activation_matching"

    def __init__(self, *, kind: Kind = "correlation", features: Features = "post", split: str | None = None,
                 examples: int = 2000, batch_size: int = 500) -> None:
        if kind not in KINDS:
            raise ConfigError(f"activation_matching kind must be one of {KINDS}, got {kind!r}")
        if features not in FEATURES:
            raise ConfigError(f"activation_matching features must be one of {FEATURES}, got {features!r}")
        if examples < 1 or batch_size < 1:
            raise ConfigError(f"activation_matching needs examples >= 1 and batch_size >= 1, got "
                              f"examples={examples}, batch_size={batch_size}")
        super().__init__(kind=kind, features=features, split=split, examples=examples, batch_size=batch_size)
        self.kind, self.features, self.split = kind, features, split
        self.examples, self.batch_size = examples, batch_size

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        self.check_inputs(reference, other, spec)
        start = time.perf_counter()
        moments = stream_moments(context.evaluator, [reference, other], spec, features=self.features,
                                 split=self.split or context.split, examples=self.examples,
                                 batch_size=self.batch_size)
        perms, scores = match_moments(moments, self.kind)
        objective = sum(scores.values()) / len(scores)
        features = {group: ms[0].features for group, ms in moments.items()}
        diagnostics = {"kind": self.kind, "features": features, "mean_similarity": scores}
        fallback = [g for g, f in features.items() if f != self.features]
        if fallback:
            diagnostics["note"] = (f"no nonlinearity follows the units of {len(fallback)} group(s) "
                                   f"({', '.join(fallback[:5])}{'...' if len(fallback) > 5 else ''}): "
                                   "matched on pre-activations")
        return Alignment(perms=perms, objective=objective, history=(objective,),
                         seconds=time.perf_counter() - start, diagnostics=diagnostics)
