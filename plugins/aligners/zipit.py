"""``zipit``: ZipIt! (Stoica, Bolya, Bjorner, Ramesh, Hearn & Hoffman, ICLR 2024, Sec. 4).

For each zipped group the 2n units of A and B are paired greedily by the correlation of their
activations (the shared moments; within-model pairs allowed unless ``within=False``): take
the most correlated remaining pair, remove both, repeat until n pairs. Pair m defines a merge
matrix M = [M^A | M^B] (n x 2n; M[m, u] = 1/2 for both members u) and an unmerge matrix
U = [U^A; U^B] (2n x n; U[u, m] = 1), and each merged layer is (Sec. 4.1, Eq. 3)

    W* = M_out [W^A 0; 0 W^B] U_in = sum_k M_out^k W^k U_in^k.

From the spec: a group's axis 0 refs (weight rows, biases, norm parameters and statistics)
are its *output* side and get M^k; its other refs are an input side and get (U^k)^T. A tensor
with no output-side ref of any group (the head) is averaged over the models.

Partial zipping (Sec. 4.3): with ``stop`` (a group name, or a count of groups in spec order),
only the groups up to it are zipped; tensors whose output side is a later group (and, when
zipping is partial, tensors with no group on their output side) stay each model's own, with
U^k on their inputs from zipped groups. That yields one network per model sharing the zipped
trunk: ``zip_models`` returns both; the aligner's ``merged`` is the reference's (with full
zipping both are the same network). The aligner's permutations are activation matching on
the same statistics (so paths between A and B remain defined).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import torch

from ridgeline.core import AlignContext, Aligner, Alignment, ConfigError, PermutationSpec, State
from ridgeline.core.numerics import Moments, soft_apply, stream_moments
from ridgeline.plugins.aligners.activation_matching import match_moments


def greedy_pairs(corr: torch.Tensor, n: int, within: bool = True) -> list[tuple[int, int]]:
    """Pair the 2n features of a (2n x 2n) correlation matrix greedily, most correlated first;
    pairs (u < v) are returned sorted by u, so a merged unit sits where A's unit was."""
    c = corr.clone().double()
    c.fill_diagonal_(-torch.inf)
    if not within:
        c[:n, :n] = -torch.inf
        c[n:, n:] = -torch.inf
    pairs = []
    for _ in range(n):
        flat = int(torch.argmax(c))
        u, v = divmod(flat, c.shape[1])
        pairs.append((min(u, v), max(u, v)))
        c[[u, v], :] = -torch.inf
        c[:, [u, v]] = -torch.inf
    return sorted(pairs)


def zip_matrices(pairs: list[tuple[int, int]], n: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per model k, M^k (n x n, merge) and U^k (n x n, unmerge) from the pairs."""
    merge = torch.zeros(n, 2 * n, dtype=torch.float64)
    unmerge = torch.zeros(2 * n, n, dtype=torch.float64)
    for m, (u, v) in enumerate(pairs):
        merge[m, [u, v]] = 0.5
        unmerge[[u, v], m] = 1.0
    return [merge[:, :n], merge[:, n:]], [unmerge[:n], unmerge[n:]]


def zipped_groups(spec: PermutationSpec, stop: str | int | None) -> list[str]:
    """The groups up to and including ``stop`` (all if None) in spec order."""
    names = list(spec.groups)
    if stop is None:
        return names
    if isinstance(stop, int):
        if not 1 <= stop <= len(names):
            raise ConfigError(f"zipit stop must lie in [1, {len(names)}] groups, got {stop}")
        return names[:stop]
    if stop not in names:
        raise ConfigError(f"zipit stop {stop!r} is not a permutation group; groups: {names}")
    return names[:names.index(stop) + 1]


def zip_models(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], spec: PermutationSpec,
               moments: Mapping[str, list[Moments]], *, stop: str | int | None = None,
               within: bool = True) -> tuple[list[State], dict[str, dict[str, int]]]:
    """The zipped network of each model (identical under full zipping), and per group the
    number of cross-model and within-model pairs."""
    zipped = zipped_groups(spec, stop)
    full = len(zipped) == len(spec.groups)
    merges: list[dict[str, torch.Tensor]] = [{}, {}]
    unmerges: list[dict[str, torch.Tensor]] = [{}, {}]
    counts = {}
    for group in zipped:
        n = spec.groups[group]
        corr = torch.stack([m.correlation() for m in moments[group]]).mean(0)
        pairs = greedy_pairs(corr, n, within)
        cross = sum((u < n) != (v < n) for u, v in pairs)
        counts[group] = {"cross": int(cross), "within": n - int(cross)}
        ms, us = zip_matrices(pairs, n)
        for k in range(2):
            merges[k][group], unmerges[k][group] = ms[k], us[k].T
    moved = [soft_apply(spec, {k: v.double() for k, v in s.items() if v.is_floating_point()},
                        merges[i], consume=unmerges[i]) for i, s in enumerate((a, b))]
    output_group = {r.key: g for g, refs in spec.axes.items() for r in refs if r.axis == 0}
    outs: list[State] = [dict(a), dict(b)]
    for key, value in a.items():
        if not value.is_floating_point():
            continue
        group = output_group.get(key)
        if group in zipped:
            shared = moved[0][key] + moved[1][key]
        elif group is None and full:
            shared = (moved[0][key] + moved[1][key]) / 2
        else:
            for k in range(2):
                outs[k][key] = moved[k][key].to(value.dtype)
            continue
        for k in range(2):
            outs[k][key] = shared.to(value.dtype)
    return [spec.ties.retie(out) for out in outs], counts  # a tied tensor's aliases follow it


class ZipItAligner(Aligner):
    """ZipIt! merging on activation correlations over ``split``; ``stop`` for partial zipping,
    ``within`` to allow within-model merges."""

    name = "zipit"
    merges = True

    def __init__(self, *, stop: str | int | None = None, within: bool = True,
                 split: str | None = None, examples: int = 2000, batch_size: int = 500) -> None:
        if examples < 1 or batch_size < 1:
            raise ConfigError(f"zipit needs examples >= 1 and batch_size >= 1, got examples={examples}, "
                              f"batch_size={batch_size}")
        super().__init__(stop=stop, within=within, split=split, examples=examples,
                         batch_size=batch_size)
        self.stop, self.within = stop, bool(within)
        self.split, self.examples, self.batch_size = split, examples, batch_size

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        self.check_inputs(reference, other, spec)
        zipped_groups(spec, self.stop)
        start = time.perf_counter()
        moments = stream_moments(context.evaluator, [reference, other], spec,
                                 split=self.split or context.split, examples=self.examples,
                                 batch_size=self.batch_size)
        perms, scores = match_moments(moments)
        models, counts = zip_models(reference, other, spec, moments, stop=self.stop, within=self.within)
        return Alignment(perms=perms, objective=sum(scores.values()) / len(scores),
                         seconds=time.perf_counter() - start, merged=models[0],
                         diagnostics={"pairs": counts, "zipped": zipped_groups(spec, self.stop)})
