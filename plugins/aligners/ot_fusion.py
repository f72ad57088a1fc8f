"""``ot_fusion``: optimal-transport alignment (Singh & Jaggi, "Model Fusion via Optimal
Transport", NeurIPS 2020, Sec. 4 and Alg. 1).

Groups are visited in the spec's order (input to output). For group g with n units, uniform
marginals mu = nu = 1/n and a ground cost C_g, the transport map is

    T_g = argmin_{T in Pi(mu, nu)} <T, C_g>            (``solver='emd'``, exact: ``ot.emd``)
    T_g = argmin <T, C_g> - reg * H(T)                 (``solver='sinkhorn'``: ``ot.sinkhorn``
                                                         on C_g / max C_g)

* ``on='weights'``: C_g[i, j] = ||w_i^A - w~_j^B||^2 over the group's *incoming* tensors (the
  refs on axis 0: weight rows, biases, norm parameters; all refs if none is on axis 0), where
  w~^B is B with the maps of the groups already visited applied (n T, which is doubly
  stochastic, multiplies their axes), as in Singh & Jaggi's layer-by-layer alignment;
* ``on='activations'``: C_g[i, j] = E[(z_i^A - z_j^B)^2] = E[z_i^A^2] + E[z_j^B^2] - 2 E[z_i^A z_j^B]
  from the shared activation moments (averaged over the group's producers).

Each group's hard permutation is the linear assignment maximising <P, T_g>; for equal sizes
and the exact solver T_g is n^-1 times a permutation matrix and the two agree. ``transport``
holds n T_g (rows sum to 1). The objective is sum_g <T_g, C_g> (lower is better). A Sinkhorn
map whose marginals are off by more than ``tol`` triggers a warning with the objective reached.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Literal, get_args

import ot
import torch

from ridgeline.core import AlignContext, Aligner, Alignment, ConfigError, PermutationSpec
from ridgeline.core.numerics import Moments, assignment, soft_apply, stream_moments

Solver = Literal["emd", "sinkhorn"]
Source = Literal["weights", "activations"]
SOLVERS, SOURCES = get_args(Solver), get_args(Source)


def weight_cost(spec: PermutationSpec, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                group: str) -> torch.Tensor:
    """Squared distances between A's and B's units over the group's incoming tensors."""
    n = spec.groups[group]
    refs = [r for r in spec.axes[group] if r.axis == 0] or list(spec.axes[group])
    fa = torch.cat([spec.unit_view(a[r.key], r, n).double() for r in refs], dim=1)
    fb = torch.cat([spec.unit_view(b[r.key], r, n).double() for r in refs], dim=1)
    return torch.cdist(fa, fb) ** 2


def activation_cost(moments: Moments) -> torch.Tensor:
    """E[(z_i^A - z_j^B)^2] from the joint second moments of A's and B's units."""
    second = moments.inner()
    a, b = moments.block(0, 0, second).diagonal(), moments.block(1, 1, second).diagonal()
    return a[:, None] + b[None, :] - 2 * moments.block(0, 1, second)


def transport(cost: torch.Tensor, solver: str, reg: float, iters: int) -> torch.Tensor:
    """The optimal coupling of two uniform marginals under ``cost`` (float64, entries sum to 1)."""
    n, m = cost.shape
    mu = torch.full((n,), 1.0 / n, dtype=torch.float64)
    nu = torch.full((m,), 1.0 / m, dtype=torch.float64)
    c = cost.detach().cpu().double()
    if solver == "emd":
        return ot.emd(mu, nu, c, numItermax=max(iters, 100000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is checked (and reported) by the caller
        return ot.sinkhorn(mu, nu, c / c.max().clamp_min(1e-12), reg, numItermax=iters)


class OTFusionAligner(Aligner):
    """OT alignment ``on`` weights or activations with the ``emd`` or ``sinkhorn`` solver
    (entropic ``reg`` relative to the largest cost, ``iters`` iterations)."""

    name = "ot_fusion"

    def __init__(self, *, on: Source = "weights", solver: Solver = "emd", reg: float = 0.01,
                 iters: int = 1000, tol: float = 1e-3, split: str | None = None,
                 examples: int = 2000, batch_size: int = 500) -> None:
        if on not in SOURCES:
            raise ConfigError(f"ot_fusion 'on' must be one of {SOURCES}, got {on!r}")
        if solver not in SOLVERS:
            raise ConfigError(f"ot_fusion solver must be one of {SOLVERS}, got {solver!r}")
        if examples < 1 or batch_size < 1:  # as activation_matching and zipit, which stream the same moments
            raise ConfigError(f"ot_fusion needs examples >= 1 and batch_size >= 1, got examples={examples}, "
                              f"batch_size={batch_size}")
        super().__init__(on=on, solver=solver, reg=reg, iters=iters, tol=tol, split=split,
                         examples=examples, batch_size=batch_size)
        self.on, self.solver, self.reg, self.iters, self.tol = on, solver, reg, iters, tol
        self.split, self.examples, self.batch_size = split, examples, batch_size

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        self.check_inputs(reference, other, spec)
        start = time.perf_counter()
        if self.on == "activations":
            moments = stream_moments(context.evaluator, [reference, other], spec,
                                     split=self.split or context.split, examples=self.examples,
                                     batch_size=self.batch_size)
        maps: dict[str, torch.Tensor] = {}
        perms, costs, errors = {}, {}, {}
        for group, n in spec.groups.items():
            if self.on == "weights":
                aligned = soft_apply(spec, {k: v.double() for k, v in other.items()
                                            if v.is_floating_point()}, maps)
                cost = weight_cost(spec, reference, aligned, group)
            else:
                cost = torch.stack([activation_cost(m) for m in moments[group]]).mean(0)
            plan = transport(cost, self.solver, self.reg, self.iters)
            errors[group] = float(max((plan.sum(1) - 1.0 / n).abs().max(),
                                      (plan.sum(0) - 1.0 / n).abs().max()) * n)
            maps[group] = (plan * n).to(torch.float64)
            perms[group], _ = assignment(plan)
            costs[group] = float((plan * cost.cpu()).sum())
        objective = sum(costs.values())
        worst = max(errors.values())
        if worst > self.tol:
            warnings.warn(
                f"ot_fusion ({self.solver}, reg {self.reg}) did not converge in {self.iters} "
                f"iterations: transport cost {objective:.6g}, marginals off by up to {worst:.3g} "
                f"(relative; tol {self.tol}); raise iters or reg", RuntimeWarning, stacklevel=2)
        return Alignment(perms=perms, objective=objective, history=tuple(costs.values()),
                         seconds=time.perf_counter() - start,
                         transport={g: m.float() for g, m in maps.items()},
                         diagnostics={"on": self.on, "solver": self.solver, "cost": costs,
                                      "marginal_error": errors})
