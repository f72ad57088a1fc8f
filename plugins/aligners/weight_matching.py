"""``weight_matching``: Git Re-Basin Algorithm 1 (Ainsworth, Hayase & Srinivasa, ICLR 2023).

Maximises sum_l <W_l^A, P_l W_l^B P_{l-1}^T> over the permutations of a PermutationSpec by
coordinate descent: visit the groups in some order and solve, for each, the linear assignment
problem whose cost matrix sums, over every tensor axis the group acts on, the inner products
of A's units with B's units (other groups' permutations held fixed). Start at the identity;
stop when a full sweep improves no group.

Speed at width (issue 9): each group's cost matrix is kept across visits (:class:`CostMatrices`)
and, when a neighbouring group's permutation changes, corrected in place by the columns it moved
only (a rank-k update); products are float32 matrix multiplications on the states' device; a
group whose cost matrix did not change since its last solve is not solved again (the assignment
would be the same). The permutations and objective are those of the from-scratch float64
computation (``benchmarks/weight_matching_reference.py``, checked by the tests on fixed pairs).

Nested groups (attention heads and their within-head groups, experts and their hidden units,
``spec.nested``) are solved together with their parent in one exact step: for every pair of heads
(i of A, j of B) a small assignment per child gives the best within-head match and its value, plus
the similarity of the parent's own axes that no child covers (an expert's router row); one
assignment over those values picks the head permutation, and the matched within-head permutations
come with it. For mixtures of experts this is expert-aware alignment: match the experts by their
best unit-level match, then the units within the matched experts.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import numpy as np
import torch

from ridgeline.core import (
    AlignContext,
    Aligner,
    Alignment,
    AxisRef,
    ConfigError,
    Perms,
    PermutationSpec,
)
from ridgeline.core.numerics import assignment, batched_assignment, improving_assignment

SweepOrder = Literal["random", "forward", "backward"]
ORDERS = get_args(SweepOrder)
Order = Literal[SweepOrder, "best"]


def permuted_tensor(spec: PermutationSpec, state: Mapping[str, torch.Tensor], key: str,
                    perms: Mapping[str, torch.Tensor],
                    skip: tuple[str, object] | None = None) -> torch.Tensor:
    """``state[key]`` with every group's permutation applied to it except ``skip``."""
    tensor = state[key]
    for group, ref in spec.refs_of_key(key):
        if (group, ref) != skip and group in perms:
            tensor = spec.permute_axis(tensor, ref, perms[group])
    return tensor


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """float32 for float32 and narrower states; float64 states stay float64."""
    return torch.promote_types(tensor.dtype, torch.float32)


class CostMatrices:
    """The cost matrix of each group, C_g[i, j] = sum over the group's axes of <unit i of A,
    unit j of B with the other groups' permutations applied>, kept up to date across visits.

    An axis's term A_view @ B_view^T depends on the permutations of the other groups acting on
    the same tensor. It is corrected only when one of them changed since the group's last
    visit, and then by the columns of B_view that moved: C_g += A_view[:, S] @ (B_new -
    B_old)[:, S]^T (the whole difference when more than half the columns moved), in place.
    Matrices are float32 (float64 if the states hold float64): the rounding of a few dozen in-place
    corrections stays below that of one float32 product over the units' weights, and the sums
    that decide (the assignment's value, the objective) are taken in float64 (on CUDA this
    assumes full float32 products, torch's default; TF32 products would not keep it). Axes no
    other group touches (biases, BatchNorm vectors) are added once.
    """

    def __init__(self, spec: PermutationSpec, a: Mapping[str, torch.Tensor],
                 b: Mapping[str, torch.Tensor]) -> None:
        self.spec, self.a, self.b = spec, a, b
        self.dtype = functools.reduce(torch.promote_types, (a[key].dtype for key in spec.keys), torch.float32)
        self.version = dict.fromkeys(spec.groups, 0)
        self._depends: dict[tuple[str, AxisRef], tuple[str, ...]] = {}
        for group, refs in spec.axes.items():
            for ref in refs:
                self._depends[group, ref] = tuple(sorted({h for h, r in spec.refs_of_key(ref.key)
                                                          if (h, r) != (group, ref)}))
        self._costs: dict[str, torch.Tensor] = {}
        self._seen: dict[tuple[str, AxisRef], tuple[tuple[int, ...], torch.Tensor]] = {}
        self._a_views: dict[tuple[str, AxisRef], torch.Tensor] = {}
        self._key_groups = {key: tuple(sorted({g for g, _ in spec.refs_of_key(key)}))
                            for key in sorted(spec.keys)}
        self._inner: dict[str, tuple[tuple[int, ...], float]] = {}

    def changed(self, group: str) -> None:
        """Record that ``group``'s permutation changed (its neighbours' terms are stale)."""
        self.version[group] += 1

    def cost(self, group: str, perms: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """C_g (n x n, owned by this object: do not modify) for the current ``perms``; None if
        it is the same as at the last call for this group (its assignment would not change)."""
        n = self.spec.groups[group]
        changed = group not in self._costs
        if changed:
            device = self.a[self.spec.axes[group][0].key].device
            cost = torch.zeros((n, n), dtype=self.dtype, device=device)
            for ref in self.spec.axes[group]:
                if not self._depends[group, ref]:
                    cost.addmm_(self._view(self.a[ref.key], ref, n), self._view(self.b[ref.key], ref, n).T)
            self._costs[group] = cost
        for ref in self.spec.axes[group]:
            if self._depends[group, ref]:
                changed |= self._refresh(group, ref, n, perms)
        return self._costs[group] if changed else None

    def _view(self, tensor: torch.Tensor, ref: AxisRef, n: int) -> torch.Tensor:
        return self.spec.unit_view(tensor, ref, n).to(self.dtype)

    def _refresh(self, group: str, ref: AxisRef, n: int, perms: Mapping[str, torch.Tensor]) -> bool:
        """Bring one axis's term of C_g up to date; True if it changed."""
        versions = tuple(self.version[h] for h in self._depends[group, ref])
        seen = self._seen.get((group, ref))
        if seen is not None and seen[0] == versions:
            return False
        if (group, ref) not in self._a_views:
            self._a_views[group, ref] = self._view(self.a[ref.key], ref, n).contiguous()
        a_view = self._a_views[group, ref]
        b_view = self._view(permuted_tensor(self.spec, self.b, ref.key, perms, skip=(group, ref)),
                            ref, n).contiguous()
        self._seen[group, ref] = (versions, b_view)
        cost = self._costs[group]
        if seen is None:
            cost.addmm_(a_view, b_view.T)
            return True
        old = seen[1]
        moved = (b_view != old).any(dim=0).nonzero().squeeze(1)
        if moved.numel() == 0:
            return False
        if 2 * moved.numel() > b_view.shape[1]:
            cost.addmm_(a_view, (b_view - old).T)
        else:
            cost.addmm_(a_view[:, moved], (b_view[:, moved] - old[:, moved]).T)
        return True

    def objective(self, perms: Mapping[str, torch.Tensor]) -> float:
        """:func:`matching_objective` at ``perms``, reusing the tensors no changed group touches."""
        total = 0.0
        for key, groups in self._key_groups.items():
            versions = tuple(self.version[g] for g in groups)
            cached = self._inner.get(key)
            if cached is None or cached[0] != versions:
                cached = self._inner[key] = (versions, inner_product(
                    self.a[key], permuted_tensor(self.spec, self.b, key, perms)))
            total += cached[1]
        return total


def inner_product(x: torch.Tensor, y: torch.Tensor) -> float:
    """<x, y> with float32 (or wider) products, summed per row and then in float64."""
    dtype = _compute_dtype(x)
    return float((x.to(dtype) * y.to(dtype)).reshape(x.shape[0] if x.dim() else 1, -1)
                 .sum(1).double().sum())


def matching_objective(spec: PermutationSpec, a: Mapping[str, torch.Tensor],
                       b: Mapping[str, torch.Tensor], perms: Mapping[str, torch.Tensor]) -> float:
    """sum over the spec's tensors of <A, permuted B>."""
    permuted = spec.apply(b, perms)
    return sum(inner_product(a[k], permuted[k]) for k in sorted(spec.keys))


def _nested_step(spec: PermutationSpec, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                 perms: Perms, parent: str, children: list[str]) -> bool:
    """Re-solve ``parent`` and its nested ``children`` jointly (others held fixed); True if the
    objective improved. Parent axes no child covers (an expert's router row and output bias) add
    their unit similarities to the parent's score."""
    heads = spec.groups[parent]
    held = {g: p for g, p in perms.items() if g != parent and g not in children}
    permuted = spec.apply(b, held)
    score = np.zeros((heads, heads))
    current, now = 0.0, perms[parent].cpu().numpy()  # the objective at the current head permutation
    within: dict[str, np.ndarray] = {}
    for child in children:
        n, d = spec.groups[child], spec.block(child)
        sim = sum(spec.unit_view(a[r.key], r, n).double() @ spec.unit_view(permuted[r.key], r, n).double().T
                  for r in spec.axes[child])
        sim = sim.cpu().numpy().reshape(heads, d, heads, d)
        cols, totals = batched_assignment(sim.transpose(0, 2, 1, 3))  # [i, j]: head i of A, head j of B
        score += totals.numpy()
        within[child] = cols.numpy()
        tau = perms[child].cpu().numpy().reshape(heads, d) % d
        current += sum(sim[i, np.arange(d), now[i], tau[i]].sum() for i in range(heads))
    covered = {(r.key, r.axis) for child in children for r in spec.axes[child]}
    for ref in spec.axes[parent]:  # the parent's own axes (an expert's router row, its output bias)
        if (ref.key, ref.axis) not in covered:
            own = spec.unit_view(a[ref.key], ref, heads).double() @ \
                spec.unit_view(permuted[ref.key], ref, heads).double().T
            own = own.cpu().numpy()
            score += own
            current += float(own[np.arange(heads), now].sum())
    sigma = assignment(torch.from_numpy(score))[0].numpy()
    best = float(score[np.arange(heads), sigma].sum())
    if best <= current + 1e-9 * max(1.0, abs(current)):
        return False
    device = perms[parent].device
    perms[parent] = torch.as_tensor(sigma, dtype=torch.long, device=device)
    for child in children:
        d = spec.block(child)
        tau = within[child][np.arange(heads), sigma] + (np.arange(heads) * d)[:, None]
        perms[child] = torch.as_tensor(tau.reshape(-1), dtype=torch.long, device=device)
    return True


def weight_matching(spec: PermutationSpec, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                    *, order: SweepOrder = "random", max_iter: int = 100, seed: int = 0,
                    init: Perms | None = None) -> tuple[Perms, list[float]]:
    """Permutations of B's units maximising the weight inner product with A; and the objective
    after each sweep."""
    if order not in ORDERS:
        raise ConfigError(f"weight_matching order must be one of {ORDERS}, got {order!r}")
    device = next(iter(a.values())).device
    perms = {g: p.to(device) for g, p in (init or spec.identity(device)).items()}
    children: dict[str, list[str]] = defaultdict(list)
    for child, parent in spec.nested.items():
        children[parent].append(child)
    names = [g for g in spec.groups if g not in spec.nested]
    rng = np.random.default_rng(seed)
    costs = CostMatrices(spec, a, b)
    history: list[float] = []
    for _ in range(max_iter):
        sweep: Sequence[str] = {
            "random": lambda: [names[i] for i in rng.permutation(len(names))],
            "forward": lambda: names,
            "backward": lambda: names[::-1],
        }[order]()
        improved = False
        for group in sweep:
            if group in children:
                if _nested_step(spec, a, b, perms, group, children[group]):
                    improved = True
                    for changed in (group, *children[group]):
                        costs.changed(changed)
                continue
            cost = costs.cost(group, perms)
            if cost is None:
                continue  # the same matrix as at the last visit: the same assignment
            cols = improving_assignment(cost, perms[group])
            if cols is not None:
                perms[group] = cols
                costs.changed(group)
                improved = True
        history.append(costs.objective(perms))
        if not improved:
            break
    return {g: p.cpu() for g, p in perms.items()}, history


class WeightMatchingAligner(Aligner):
    """Git Re-Basin weight matching (Alg. 1): coordinate descent of linear assignments.

    Coordinate ascent stops in a local optimum whose place depends on the sweep order (on the
    quickstart pair, objectives from 415 to 460 and loss barriers from 0.00 to 1.07 over ten
    random orders; docs/methods.md), so by default several orders are run and the highest
    objective kept. Options: the sweep ``order`` (``best``, the default: ``forward``,
    ``backward`` and ``restarts`` random orders; ``random``: ``restarts`` random orders;
    ``forward`` or ``backward``: that order alone), ``restarts`` (random orders, seeds ``seed``,
    ``seed + 1``, ...; default 3), ``max_iter`` (sweeps per run), ``seed`` (default: the
    context's). The diagnostics list every run's objective and their spread.
    """

    name = "weight_matching"
    supports_nested = True

    def __init__(self, *, order: Order = "best", restarts: int = 3, max_iter: int = 100,
                 seed: int | None = None) -> None:
        check_sweep_options(self.name, order, restarts, max_iter)
        super().__init__(order=order, restarts=restarts, max_iter=max_iter, seed=seed)
        self.order, self.restarts, self.max_iter, self.seed = order, int(restarts), int(max_iter), seed

    def runs(self, seed: int) -> list[tuple[str, int]]:
        """The (sweep order, seed) of every run :meth:`align` makes."""
        return sweep_runs(self.order, self.restarts, seed)

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        self.check_inputs(reference, other, spec)
        start = time.perf_counter()
        seed = context.seed if self.seed is None else self.seed
        reference, other = context.place(reference), context.place(other)  # the evaluator's device
        perms, history, diagnostics = best_weight_matching(spec, reference, other, order=self.order,
                                                           restarts=self.restarts, max_iter=self.max_iter,
                                                           seed=seed)
        return Alignment(perms=perms, objective=history[-1], history=tuple(history),
                         seconds=time.perf_counter() - start, diagnostics=diagnostics)


def check_sweep_options(aligner: str, order: str, restarts: int, max_iter: int) -> None:
    """Refuse an ``order``, ``restarts`` or ``max_iter`` that :func:`best_weight_matching` cannot
    run, naming ``aligner``: the options of every aligner of this family that weight-matches."""
    if order not in get_args(Order):
        raise ConfigError(f"{aligner} order must be one of {get_args(Order)}, got {order!r}")
    if restarts < 1 or max_iter < 1:
        raise ConfigError(f"{aligner} needs restarts >= 1 and max_iter >= 1, got restarts={restarts}, "
                          f"max_iter={max_iter}")


def sweep_runs(order: str, restarts: int, seed: int) -> list[tuple[str, int]]:
    """The (sweep order, seed) of every run an ``order`` option asks for: ``best`` is
    ``forward``, ``backward`` and ``restarts`` random orders; ``random`` the random orders alone;
    ``forward`` or ``backward`` that order once."""
    randoms = [("random", seed + i) for i in range(restarts)]
    if order == "best":
        return [("forward", seed), ("backward", seed), *randoms]
    return randoms if order == "random" else [(order, seed)]


def best_weight_matching(spec: PermutationSpec, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                         *, order: str = "best", restarts: int = 3, max_iter: int = 100,
                         seed: int = 0) -> tuple[Perms, list[float], dict]:
    """:func:`weight_matching` in every sweep order ``order`` asks for (:func:`sweep_runs`), the
    run of highest objective kept: its permutations, its objective per sweep, and diagnostics
    listing every run's objective and their spread. Shared by every aligner of this family that
    weight-matches (``weight_matching``, ``msmoe``, ``tree_matching``)."""
    runs = []
    for run_order, run_seed in sweep_runs(order, restarts, seed):
        perms, history = weight_matching(spec, a, b, order=run_order, max_iter=max_iter, seed=run_seed)
        runs.append((run_order, run_seed, perms, history))
    kept_order, kept_seed, perms, history = max(runs, key=lambda r: r[3][-1] if r[3] else -np.inf)
    finals = [h[-1] if h else float("nan") for *_, h in runs]  # never empty: sweep_runs gives >= 1 run
    diagnostics = {
        "sweeps": len(history), "order": kept_order, "seed": kept_seed,
        "runs": [{"order": o, "seed": s, "objective": final, "sweeps": len(h)}
                 for (o, s, _, h), final in zip(runs, finals)],
        "objectives": {_label(o, s): final for (o, s, _, _), final in zip(runs, finals)},
        "objective_spread": {"min": float(np.nanmin(finals)), "max": float(np.nanmax(finals)),
                             "std": float(np.nanstd(finals))},
    }
    return perms, history, diagnostics


def _label(order: str, seed: int) -> str:
    return f"random:{seed}" if order == "random" else order


def recover_planted(spec: PermutationSpec, state: Mapping[str, torch.Tensor], *, seed: int = 1,
                    orders: Sequence[str] = ("forward", "random", "backward")
                    ) -> tuple[float, str, float, float]:
    """Plant a random permutation of every group of ``spec`` in ``state`` and re-align the
    copy with :func:`weight_matching`, trying ``orders`` in turn until one undoes it exactly
    (coordinate ascent can stop in a local optimum on random weights). Returns the largest
    entry-wise distance left (0: recovered exactly), the order that reached it, the seconds
    spent, and the objective reached relative to <A, A> (1 when exact). A spec check for the
    aligner: every group's axes must be complete for the distance to be 0."""
    start = time.perf_counter()
    planted = spec.apply(state, spec.random(torch.Generator().manual_seed(seed)))
    exact = matching_objective(spec, state, state, spec.identity())
    best = (float("inf"), "", float("nan"))
    for order in orders:
        perms, history = weight_matching(spec, state, planted, order=order, seed=0)
        aligned = spec.apply(planted, perms)
        distance = max(float((aligned[k].double() - state[k].double()).abs().max()) for k in state)
        best = min(best, (distance, order, history[-1] / exact if history and exact else float("nan")))
        if distance == 0:
            break
    return best[0], best[1], time.perf_counter() - start, best[2]
