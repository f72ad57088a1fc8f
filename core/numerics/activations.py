"""Activation statistics of permutation groups, streamed over a data split.

One place for everything that looks at a network's hidden units through its activations:
activation matching, OT fusion on activations, ZipIt and the REPAIR correction. Which module
produces a group's units, and how its output is hooked, is
:mod:`ridgeline.core.numerics.unit_producers`.

Statistics are pre-activations (the producer's output, before any nonlinearity) or, with
``features="post"``, the units after the pointwise nonlinearity that follows the producer
(:mod:`ridgeline.core.numerics.nonlinearities`); every position of a convolution counts as one
sample, and so does every call of a module called more than once (a shared block). For a
group with several producers each producer keeps its own statistics; consumers
average over producers. With ``features="post"`` a group uses only its producers followed by a
nonlinearity (in a conv-BN-ReLU block: the BatchNorm's output after the ReLU, not the conv's),
and a group with none (a residual stream, attention heads) falls back to its pre-activations;
each :class:`Moments` records which it holds (``features``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs
import torch

from ridgeline.core.errors import ConfigError, DataError
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.numerics.nonlinearities import post_activations
from ridgeline.core.numerics.unit_producers import Producer, hooked, producers, unit_samples
from ridgeline.core.symmetry.spec import PermutationSpec


@attrs.define
class Moments:
    """Running first and second moments of the concatenated units of K networks at one
    producer: ``total`` (K*size), ``outer`` (K*size x K*size), ``n`` samples (float64)."""

    producer: Producer
    k: int
    n: int = 0
    total: torch.Tensor | None = None
    outer: torch.Tensor | None = None
    features: str = "pre"
    """``pre`` (the producer's output) or ``post`` (after the nonlinearity that follows it)."""

    def add(self, samples: torch.Tensor) -> None:
        x = samples.double()
        if self.total is None:
            self.total, self.outer = x.sum(0), x.T @ x
        else:
            self.total += x.sum(0)
            self.outer += x.T @ x
        self.n += x.shape[0]

    @property
    def mean(self) -> torch.Tensor:
        return self.total / self.n

    @property
    def covariance(self) -> torch.Tensor:
        mean = self.mean
        return self.outer / self.n - torch.outer(mean, mean)

    @property
    def std(self) -> torch.Tensor:
        return self.covariance.diagonal().clamp_min(0).sqrt()

    def block(self, i: int, j: int, matrix: torch.Tensor) -> torch.Tensor:
        """Block (network i, network j) of a K*size square matrix."""
        s = self.producer.size
        return matrix[i * s:(i + 1) * s, j * s:(j + 1) * s]

    def units(self, matrix: torch.Tensor) -> torch.Tensor:
        """A channel-level K*size*stride square matrix as a unit-level K*size one: the entry of
        units (i, j) is the mean over positions k of channel pairs (i*stride + k, j*stride + k),
        the units' channels being compared position by position (the identity for stride 1)."""
        s = self.producer.stride
        if s == 1:
            return matrix
        n = matrix.shape[0] // s
        return matrix.reshape(n, s, n, s).diagonal(dim1=1, dim2=3).mean(-1)

    def correlation(self, eps: float = 1e-8) -> torch.Tensor:
        """corr(z_a, z_b) over all K*size units; a constant unit correlates 0 with everything."""
        std = self.std.clamp_min(eps)
        return self.units(self.covariance / torch.outer(std, std))

    def inner(self) -> torch.Tensor:
        """E[z_a z_b] over all K*size units (the plain inner product of activations)."""
        return self.units(self.outer / self.n)


def collect_moments(evaluator: Evaluator, states: Sequence[Mapping[str, torch.Tensor]],
                    plist: Sequence[Producer], *, split: str = "train", examples: int | None = 2000,
                    batch_size: int = 500,
                    transforms: Mapping[Producer, Callable[[torch.Tensor], torch.Tensor]] | None = None,
                    ) -> dict[Producer, Moments]:
    """Joint moments of the K networks' units at each producer over the first ``examples``
    examples of ``split``, streamed in batches (:meth:`Evaluator.batches`) and accumulated in
    float64 on the evaluator's device; where ``transforms`` has a producer, of its output mapped
    through it (post-activations).

    Raises :class:`DataError` if a producer gets fewer samples than it has units plus one
    (its covariance would be singular and any matching from it arbitrary).
    """
    if evaluator is None:
        raise ConfigError("activation statistics need data: pass an AlignContext with an evaluator")
    transforms = dict(transforms or {})
    states = [evaluator.on_device(state) for state in states]  # moved once, not once per batch
    moments = {p: Moments(p, len(states), features="post" if p in transforms else "pre") for p in plist}
    captured: dict[Producer, list[torch.Tensor]] = {}  # producer -> its calls in one forward
    seen = 0

    def capture(producer: Producer, output: torch.Tensor) -> None:
        if producer in transforms:
            output = transforms[producer](output)
        captured.setdefault(producer, []).append(unit_samples(output, producer))

    with torch.no_grad(), hooked(evaluator.module, plist, capture):
        for batch, _ in evaluator.batches(split, limit=examples, batch_size=batch_size):
            per_state = []
            for state in states:
                captured.clear()
                evaluator.logits(state, batch)  # a shared module's calls are more samples
                per_state.append({p: torch.cat(calls, dim=0) for p, calls in captured.items()})
            for producer in per_state[0]:
                moments[producer].add(torch.cat([outputs[producer] for outputs in per_state], dim=1))
            seen += len(batch)
    for m in moments.values():
        if m.n < m.producer.size + 1:
            raise DataError(
                f"activation statistics of group {m.producer.group!r} at {m.producer.module!r} "
                f"({m.producer.size} units) need at least {m.producer.size + 1} samples; split "
                f"{split!r} gave {m.n} (from {seen} examples)"
            )
    return moments


FEATURES = ("post", "pre")


def stream_moments(evaluator: Evaluator, states: Sequence[Mapping[str, torch.Tensor]],
                   spec: PermutationSpec, *, features: str = "pre", **options) -> dict[str, list[Moments]]:
    """:func:`collect_moments` at every producer of every group of ``spec``, by group.

    ``features="post"``: a group's statistics are its units after the nonlinearity that follows
    its producers, from those producers alone; a group whose producers have none keeps its
    pre-activations (its moments say ``features == "pre"``).
    """
    if evaluator is None:
        raise ConfigError("activation statistics need data: pass an AlignContext with an evaluator")
    if features not in FEATURES:
        raise ConfigError(f"activation features must be one of {FEATURES}, got {features!r}")
    found = producers(evaluator.module, spec)
    transforms = {}
    if features == "post":
        posts = post_activations(evaluator.module, [p for ps in found.values() for p in ps])
        transforms = {p: post.apply for p, post in posts.items()}
        found = {g: [p for p in ps if p in posts] or ps for g, ps in found.items()}
    moments = collect_moments(evaluator, states, [p for ps in found.values() for p in ps],
                              transforms=transforms, **options)
    return {g: [moments[p] for p in ps] for g, ps in found.items()}


def cross_similarity(moments: Sequence[Moments], i: int, j: int, kind: str = "correlation") -> torch.Tensor:
    """S[u, v] = similarity of unit u of network i and unit v of network j, averaged over the
    group's producers; ``kind`` is ``correlation`` or ``inner``."""
    if kind not in ("correlation", "inner"):
        raise ConfigError(f"activation similarity must be 'correlation' or 'inner', got {kind!r}")
    blocks = [m.block(i, j, m.correlation() if kind == "correlation" else m.inner()) for m in moments]
    return torch.stack(blocks).mean(0)
