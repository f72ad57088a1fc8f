"""``repair``: REPAIR (Jordan, Sedghi, Saukh, Entezari & Neyshabur, ICLR 2023, Sec. 4).

Interpolating two networks shrinks the variance of hidden units ("variance collapse"). REPAIR
gives every unit u of the interpolated network theta_t the statistics it would have if
statistics interpolated linearly:

    mu_t(u) = (1 - t) mu_A(u) + t mu_B(u),     sigma_t(u) = (1 - t) sigma_A(u) + t sigma_B(u),

measured on a data split at each unit's pre-activation, and folds the correction into the
producing module: with mu_I, sigma_I the statistics of theta_t's unit (given the already
corrected units upstream), scale = sigma_t / sigma_I, shift = mu_t - scale * mu_I, and

    W[u] <- scale * W[u],   b[u] <- scale * b[u] + shift.

Units are the outputs of every Linear, convolution and BatchNorm / LayerNorm / GroupNorm module
with a weight and a bias, except the module that produces the network's output (see
:func:`~ridgeline.core.numerics.module_producers`); a convolution without bias
(followed by BatchNorm) is corrected through its norm layer. One forward pass measures every
unit, renormalising each producer's output with the batch's statistics on the way (as Jordan et
al. do with temporary BatchNorm layers), so downstream units see the corrected network; the
statistics folded in are pooled over the batches (every batch weighs by its size,
:class:`~ridgeline.core.numerics.PooledMoments`), and with the default of one batch holding
every example the folded correction reproduces that pass exactly. Batches are streamed from the
evaluator (:meth:`Evaluator.batches`), never the whole split.
Works with and without BatchNorm (BatchNorm running statistics are those of theta_t).
Paths with more than two endpoints interpolate the statistics of the first and the last.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ridgeline.core import ConfigError, Correction, Evaluator, State
from ridgeline.core.numerics import (
    PooledMoments,
    Producer,
    collect_moments,
    hooked,
    module_producers,
    unit_samples,
)


def _correctable(evaluator: Evaluator, state: Mapping[str, torch.Tensor]) -> list[Producer]:
    """Producers with a weight and a bias in ``state``, minus the one writing the output."""
    plist = [p for p in module_producers(evaluator.module)
             if f"{p.module}.weight" in state and f"{p.module}.bias" in state]
    outputs: dict[Producer, torch.Tensor] = {}
    split = "train" if "train" in evaluator.dataset.splits else evaluator.dataset.splits[0]
    x, _ = next(iter(evaluator.batches(split, limit=2)))
    with torch.no_grad(), hooked(evaluator.module, plist, lambda p, out: outputs.__setitem__(p, out)):
        final = evaluator.logits(state, x)
    return [p for p in plist if outputs.get(p) is not final]


class Repair(Correction):
    """REPAIR on ``split`` (default ``train``) from up to ``examples`` examples."""

    name = "repair"

    def __init__(self, *, split: str = "train", examples: int = 2000, batch_size: int | None = None,
                 eps: float = 1e-5) -> None:
        if examples < 2:
            raise ConfigError(f"repair needs at least 2 examples for unit statistics, got {examples}")
        super().__init__(split=split, examples=examples, batch_size=batch_size, eps=eps)
        self.split, self.examples, self.eps = split, int(examples), float(eps)
        self.batch_size = int(batch_size) if batch_size else self.examples
        self.endpoint_stats: list[dict[Producer, tuple[torch.Tensor, torch.Tensor]]] = []
        self.producers: list[Producer] = []

    def statistics(self, state: Mapping[str, torch.Tensor],
                   evaluator: Evaluator) -> dict[Producer, tuple[torch.Tensor, torch.Tensor]]:
        """Mean and standard deviation of every corrected unit of ``state``."""
        moments = collect_moments(evaluator, [state], self.producers, split=self.split,
                                  examples=self.examples, batch_size=self.batch_size)
        return {p: (m.mean, m.std) for p, m in moments.items()}

    def prepare(self, endpoints: list[State], evaluator: Evaluator) -> None:
        self.producers = _correctable(evaluator, endpoints[0])
        if not self.producers:
            raise ConfigError("repair found no Linear, convolution or norm module with a weight and "
                              "a bias to correct in this network")
        self.endpoint_stats = [self.statistics(endpoints[0], evaluator),
                               self.statistics(endpoints[-1], evaluator)]

    def apply(self, state: Mapping[str, torch.Tensor], t: float, evaluator: Evaluator) -> State:
        if not self.endpoint_stats:
            raise ConfigError("repair.apply called before prepare(endpoints, evaluator)")
        first, last = self.endpoint_stats
        target = {p: ((1 - t) * first[p][0] + t * last[p][0], (1 - t) * first[p][1] + t * last[p][1])
                  for p in self.producers}
        pooled = {p: PooledMoments() for p in self.producers}

        def renormalise(producer: Producer, output: torch.Tensor) -> torch.Tensor:
            z = unit_samples(output, producer)
            var, mean = torch.var_mean(z.double(), dim=0, correction=0)
            pooled[producer].merge(len(z), mean, var)
            mu, sigma = target[producer]
            scale = sigma / (var.sqrt() + self.eps)
            shift = mu - mean * scale
            shape = [1] * output.dim()
            shape[producer.unit_axis] = -1
            return output * scale.to(output.dtype).reshape(shape) + shift.to(output.dtype).reshape(shape)

        with torch.no_grad(), hooked(evaluator.module, self.producers, renormalise):
            for x, _ in evaluator.batches(self.split, limit=self.examples, batch_size=self.batch_size):
                evaluator.logits(state, x)
        out = dict(state)
        for producer in self.producers:
            mu, sigma = target[producer]
            scale = sigma / (pooled[producer].std + self.eps)
            shift = mu - scale * pooled[producer].mean
            weight, bias = f"{producer.module}.weight", f"{producer.module}.bias"
            w = out[weight]  # statistics live on the evaluator's device; the state stays where it is
            out[weight] = w * scale.to(w).reshape(-1, *[1] * (w.dim() - 1))
            out[bias] = out[bias] * scale.to(w) + shift.to(w)
        return out
