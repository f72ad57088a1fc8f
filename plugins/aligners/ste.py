"""``ste``: Git Re-Basin Algorithm 2, the straight-through estimator (Ainsworth, Hayase &
Srinivasa, ICLR 2023, Sec. 3.3).

A free proxy theta~ (initialised at theta_A) is projected onto B's permutation orbit by weight
matching, proj(theta~) = P(theta_B) with P = weight_matching(theta~, theta_B). The loss is
taken at the midpoint (or at a fresh t ~ U(0, 1) per step, ``t='random'``):

    L((1 - t) theta_A + t [theta~ + stopgrad(P(theta_B) - theta~)]),

so the forward pass uses the projection and the gradient flows to theta~ unchanged (the
straight-through estimator). theta~ follows Adam; the permutation returned is the one whose
projection gave the lowest mini-batch loss, every mini-batch drawn from the context's split.
Tensors the spec does not touch are B's own throughout; buffers the spec permutes (BatchNorm
running statistics) take the projection's values and no gradient.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Literal, get_args

import torch

from ridgeline.core import AlignContext, Aligner, Alignment, ConfigError, PermutationSpec
from ridgeline.core.numerics import combine
from ridgeline.plugins.aligners.weight_matching import weight_matching

TMode = Literal["midpoint", "random"]
T_MODES = get_args(TMode)


class STEAligner(Aligner):
    """Straight-through estimator: ``steps`` Adam steps of rate ``lr`` on mini-batches of
    ``batch_size``; ``t`` is ``midpoint`` or ``random``; each projection runs weight matching
    (``max_iter`` sweeps, warm-started from the previous permutation)."""

    name = "ste"
    supports_nested = True

    def __init__(self, *, steps: int = 100, lr: float = 1e-3, t: TMode = "midpoint",
                 batch_size: int = 256, max_iter: int = 20, seed: int | None = None) -> None:
        if t not in T_MODES:
            raise ConfigError(f"ste t must be one of {T_MODES}, got {t!r}")
        if steps < 1:
            raise ConfigError(f"ste needs steps >= 1, got {steps}")
        super().__init__(steps=steps, lr=lr, t=t, batch_size=batch_size, max_iter=max_iter, seed=seed)
        self.steps, self.lr, self.t, self.batch_size = steps, lr, t, batch_size
        self.max_iter, self.seed = max_iter, seed

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        self.check_inputs(reference, other, spec)
        if context.evaluator is None:
            raise ConfigError("ste minimises a loss and needs data: pass an AlignContext with an evaluator")
        start = time.perf_counter()
        seed = context.seed if self.seed is None else self.seed
        generator = torch.Generator().manual_seed(seed)
        a, b = context.place(reference), context.place(other)
        # buffers (BatchNorm running statistics) follow the projection but take no gradient
        parameters = {name for name, _ in context.evaluator.module.named_parameters()}
        keys = sorted(spec.keys & parameters)
        buffers = sorted(spec.keys - parameters)
        proxy = {k: a[k].clone().requires_grad_() for k in keys}
        optimizer = torch.optim.Adam(proxy.values(), lr=self.lr)
        x, y = context.evaluator.stored(context.split)  # each drawn batch prepared as used
        perms = None
        history: list[float] = []
        best = (float("inf"), None)
        changes = 0
        for step in range(self.steps):
            detached = {**b, **{k: v.detach() for k, v in proxy.items()}}
            new, _ = weight_matching(spec, detached, b, order="random", max_iter=self.max_iter,
                                     seed=seed + step, init=perms)
            if perms is not None and any(not torch.equal(new[g], perms[g]) for g in new):
                changes += 1
            perms = new
            projected = spec.apply(b, perms)
            straight = {**b, **{k: projected[k] for k in buffers},
                        **{k: proxy[k] + (projected[k] - proxy[k]).detach() for k in keys}}
            t = 0.5 if self.t == "midpoint" else float(torch.rand((), generator=generator))
            index = torch.randint(len(x), (min(self.batch_size, len(x)),), generator=generator)
            loss = context.evaluator.loss(combine([a, straight], [1.0 - t, t]),
                                          context.evaluator.prepare(x[index.to(x.device)]),
                                          y[index.to(y.device)])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append(loss.item())
            if history[-1] < best[0]:
                best = (history[-1], {g: p.clone() for g, p in perms.items()})
        return Alignment(perms=best[1], objective=best[0], history=tuple(history),
                         seconds=time.perf_counter() - start,
                         diagnostics={"objective_name": f"loss at t={self.t}",
                                      "permutation_changes": changes, "steps": self.steps})
