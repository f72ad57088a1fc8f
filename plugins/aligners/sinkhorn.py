"""``sinkhorn``: Sinkhorn re-basin (Peña, Medeiros Ferreira, Bergé & Alves, CVPR 2023).

Each group g gets learnable logits M_g; its soft permutation is the Sinkhorn operator
S(M_g / tau) (Sec. 3.1, computed in the log domain: alternate row and column log-normalisation
for ``iters`` rounds), a doubly stochastic matrix. The soft-permuted B, P(theta_B), multiplies
every axis a group acts on by P_g (the soft counterpart of ``PermutationSpec.apply``), and the
logits are fitted with Adam to one of the paper's objectives (Sec. 3.2):

* ``distance``: ||theta_A - P(theta_B)||^2 / ||theta_A||^2 over the spec's tensors (data-free);
* ``midpoint``: L((theta_A + P(theta_B)) / 2) on training mini-batches;
* ``random_t``: L((1 - t) theta_A + t P(theta_B)) with a fresh t ~ U(0, 1) per step.

The hard permutation at the end is the linear assignment maximising <P, S(M / tau)>.
The method has converged when the soft permutations have become hard (the mean over groups and
rows of P[i, perm[i]] is at least 1 - ``tol``) or the objective's mean over the last ``window``
steps differs from the mean over the ``window`` steps before by less than ``tol`` (relative);
otherwise a warning gives the objective reached.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Literal, get_args

import torch

from ridgeline.core import AlignContext, Aligner, Alignment, ConfigError, PermutationSpec
from ridgeline.core.numerics import assignment, combine, soft_apply

Objective = Literal["distance", "midpoint", "random_t"]
OBJECTIVES = get_args(Objective)


def log_sinkhorn(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """Sinkhorn operator in the log domain (rows, then columns, ``iters`` times): a doubly
    stochastic matrix (columns exact, rows up to the remaining error)."""
    log_p = logits
    for _ in range(iters):
        log_p = log_p - torch.logsumexp(log_p, dim=1, keepdim=True)
        log_p = log_p - torch.logsumexp(log_p, dim=0, keepdim=True)
    return log_p.exp()


def converged(history: list[float], window: int, tol: float) -> tuple[bool, float]:
    """Whether the mean of the last ``window`` values is within ``tol`` (relative) of the mean
    of the ``window`` before; and that relative change."""
    if len(history) < 2 * window:
        return False, float("inf")
    last = sum(history[-window:]) / window
    before = sum(history[-2 * window:-window]) / window
    change = abs(last - before) / max(abs(before), 1e-12)
    return change < tol, change


class SinkhornAligner(Aligner):
    """Sinkhorn re-basin: ``objective`` in {distance, midpoint, random_t}, ``steps`` Adam steps
    of rate ``lr`` on the logits, temperature ``tau``, ``iters`` Sinkhorn rounds, mini-batches of
    ``batch_size`` from the context's split; ``tol`` and ``window`` define convergence."""

    name = "sinkhorn"

    def __init__(self, *, objective: Objective = "distance", steps: int = 300, lr: float = 0.1,
                 tau: float = 1.0, iters: int = 20, batch_size: int = 256, tol: float = 0.01,
                 window: int = 20, seed: int | None = None) -> None:
        if objective not in OBJECTIVES:
            raise ConfigError(f"sinkhorn objective must be one of {OBJECTIVES}, got {objective!r}")
        if steps < 1 or iters < 1 or tau <= 0:
            raise ConfigError(f"sinkhorn needs steps >= 1, iters >= 1 and tau > 0; got "
                              f"steps={steps}, iters={iters}, tau={tau}")
        super().__init__(objective=objective, steps=steps, lr=lr, tau=tau, iters=iters,
                         batch_size=batch_size, tol=tol, window=window, seed=seed)
        self.objective, self.steps, self.lr, self.tau, self.iters = objective, steps, lr, tau, iters
        self.batch_size, self.tol, self.window, self.seed = batch_size, tol, window, seed

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        self.check_inputs(reference, other, spec)
        if self.objective != "distance" and context.evaluator is None:
            raise ConfigError(f"sinkhorn objective {self.objective!r} needs data: pass an "
                              "AlignContext with an evaluator (or use objective='distance')")
        start = time.perf_counter()
        seed = context.seed if self.seed is None else self.seed
        generator = torch.Generator().manual_seed(seed)
        device = context.device
        a, b = context.place(reference), context.place(other)
        logits = {g: (1e-3 * torch.randn(n, n, generator=generator)).to(device).requires_grad_()
                  for g, n in spec.groups.items()}
        optimizer = torch.optim.Adam(logits.values(), lr=self.lr)
        keys = sorted(spec.keys)
        scale = float(sum((a[k].double() ** 2).sum() for k in keys))
        if self.objective != "distance":
            x, y = context.evaluator.stored(context.split)  # each drawn batch prepared as used
            # buffers (BatchNorm running statistics) are permuted softly but carry no gradient
            parameters = {name for name, _ in context.evaluator.module.named_parameters()}
        history: list[float] = []
        for _ in range(self.steps):
            mats = {g: log_sinkhorn(m / self.tau, self.iters) for g, m in logits.items()}
            moved = soft_apply(spec, b, mats)
            if self.objective == "distance":
                loss = sum(((a[k] - moved[k]) ** 2).sum() for k in keys) / scale
            else:
                t = 0.5 if self.objective == "midpoint" else float(torch.rand((), generator=generator))
                index = torch.randint(len(x), (min(self.batch_size, len(x)),), generator=generator)
                point = {k: v if k in parameters else v.detach()
                         for k, v in combine([a, moved], [1.0 - t, t]).items()}
                loss = context.evaluator.loss(point, context.evaluator.prepare(x[index.to(x.device)]),
                                              y[index.to(y.device)])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append(loss.item())
        perms, errors, hits = {}, {}, []
        with torch.no_grad():
            for g, m in logits.items():
                soft = log_sinkhorn(m / self.tau, self.iters)
                errors[g] = float((soft.sum(1) - 1).abs().max())
                perms[g], total = assignment(soft)
                hits.append(total / len(perms[g]))
        hardness = sum(hits) / len(hits)
        stable, change = converged(history, self.window, self.tol)
        done = stable or hardness >= 1 - self.tol
        if not done:
            trend = (f"relative change {change:.3g} over the last {self.window} steps (tol {self.tol})"
                     if len(history) >= 2 * self.window else
                     f"too few steps to judge the trend (fewer than 2 x window = {2 * self.window})")
            warnings.warn(
                f"sinkhorn ({self.objective}) did not converge in {self.steps} steps: objective "
                f"{history[-1]:.6g}, {trend}, soft permutations {hardness:.3f} hard; raise steps or lr",
                RuntimeWarning, stacklevel=2)
        return Alignment(perms=perms, objective=history[-1], history=tuple(history),
                         seconds=time.perf_counter() - start,
                         transport={g: log_sinkhorn(m.detach() / self.tau, self.iters).cpu()
                                    for g, m in logits.items()},
                         diagnostics={"objective_name": self.objective, "converged": done,
                                      "hardness": hardness,
                                      "relative_change": change, "sinkhorn_row_error": errors})
