"""``weight_matching``: Git Re-Basin Algorithm 1 (Ainsworth, Hayase & Srinivasa, ICLR 2023).

Maximises sum_l <W_l^A, P_l W_l^B P_{l-1}^T> over the permutations of a PermutationSpec by
coordinate descent: visit the groups in some order and solve, for each, the linear assignment
problem whose cost matrix sums, over every tensor axis the group acts on, the inner products
of A's units with B's units (other groups' permutations held fixed). Start at the identity;
stop when a full sweep improves no group.

Nested groups (attention heads and their within-head groups, ``spec.nested``) are solved together
with their parent in one exact step: for every pair of heads (i of A, j of B) a small assignment
per child gives the best within-head match and its value; one assignment over those values picks
the head permutation, and the matched within-head permutations come with it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ridgeline.core import AlignContext, Aligner, Alignment, ConfigError, Perms, PermutationSpec

ORDERS = ("random", "forward", "backward")


def permuted_tensor(spec: PermutationSpec, state: Mapping[str, torch.Tensor], key: str,
                    perms: Mapping[str, torch.Tensor],
                    skip: tuple[str, object] | None = None) -> torch.Tensor:
    """``state[key]`` with every group's permutation applied to it except ``skip``."""
    tensor = state[key]
    for group, ref in spec.refs_of_key(key):
        if (group, ref) != skip and group in perms:
            tensor = spec.permute_axis(tensor, ref, perms[group])
    return tensor


def group_cost(spec: PermutationSpec, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
               perms: Mapping[str, torch.Tensor], group: str) -> torch.Tensor:
    """C[i, j] = sum over the group's axes of <unit i of A, unit j of permuted B> (float64)."""
    n = spec.groups[group]
    cost = torch.zeros((n, n), dtype=torch.float64, device=next(iter(a.values())).device)
    for ref in spec.axes[group]:
        wa = spec.unit_view(a[ref.key], ref, n).double()
        wb = spec.unit_view(permuted_tensor(spec, b, ref.key, perms, skip=(group, ref)), ref, n).double()
        cost += wa @ wb.T
    return cost


def matching_objective(spec: PermutationSpec, a: Mapping[str, torch.Tensor],
                       b: Mapping[str, torch.Tensor], perms: Mapping[str, torch.Tensor]) -> float:
    """sum over the spec's tensors of <A, permuted B>."""
    permuted = spec.apply(b, perms)
    return float(sum((a[k].double() * permuted[k].double()).sum() for k in spec.keys))


def _nested_step(spec: PermutationSpec, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                 perms: Perms, parent: str, children: list[str]) -> bool:
    """Re-solve ``parent`` and its nested ``children`` jointly (others held fixed); True if the
    objective improved. The children's axes must cover the parent's (as for attention)."""
    heads = spec.groups[parent]
    held = {g: p for g, p in perms.items() if g != parent and g not in children}
    permuted = spec.apply(b, held)
    score = np.zeros((heads, heads))
    current = 0.0
    within: dict[str, np.ndarray] = {}
    for child in children:
        n, d = spec.groups[child], spec.block(child)
        sim = sum(spec.unit_view(a[r.key], r, n).double() @ spec.unit_view(permuted[r.key], r, n).double().T
                  for r in spec.axes[child])
        sim = sim.cpu().numpy().reshape(heads, d, heads, d)
        cols = np.zeros((heads, heads, d), dtype=np.int64)
        for i in range(heads):
            for j in range(heads):
                rows, cols[i, j] = linear_sum_assignment(sim[i, :, j, :], maximize=True)
                score[i, j] += sim[i, rows, j, cols[i, j]].sum()
        within[child] = cols
        sigma = perms[parent].cpu().numpy()
        tau = perms[child].cpu().numpy().reshape(heads, d) % d
        current += sum(sim[i, np.arange(d), sigma[i], tau[i]].sum() for i in range(heads))
    _, sigma = linear_sum_assignment(score, maximize=True)
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
                    *, order: str = "random", max_iter: int = 100, seed: int = 0,
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
                improved |= _nested_step(spec, a, b, perms, group, children[group])
                continue
            cost = group_cost(spec, a, b, perms, group)
            n = cost.shape[0]
            current = float(cost[torch.arange(n, device=device), perms[group]].sum())
            _, cols = linear_sum_assignment(cost.cpu().numpy(), maximize=True)
            best = float(cost[torch.arange(n, device=device), torch.as_tensor(cols, device=device)].sum())
            if best > current + 1e-9 * max(1.0, abs(current)):
                perms[group] = torch.as_tensor(cols, dtype=torch.long, device=device)
                improved = True
        history.append(matching_objective(spec, a, b, perms))
        if not improved:
            break
    return {g: p.cpu() for g, p in perms.items()}, history


class WeightMatchingAligner(Aligner):
    """Git Re-Basin weight matching (Alg. 1): coordinate descent of linear assignments.

    Options: ``order`` (``random`` with ``seed``, ``forward``, ``backward``, or ``best``: run
    all three and keep the highest objective, since coordinate ascent can stop in a local
    optimum that depends on the order), ``max_iter``.
    """

    name = "weight_matching"
    supports_nested = True

    def __init__(self, *, order: str = "random", max_iter: int = 100, seed: int | None = None) -> None:
        if order not in (*ORDERS, "best"):
            raise ConfigError(f"weight_matching order must be one of {(*ORDERS, 'best')}, got {order!r}")
        super().__init__(order=order, max_iter=max_iter, seed=seed)
        self.order, self.max_iter, self.seed = order, int(max_iter), seed

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: PermutationSpec, context: AlignContext) -> Alignment:
        self.check_inputs(reference, other, spec)
        start = time.perf_counter()
        seed = context.seed if self.seed is None else self.seed
        runs = {order: weight_matching(spec, reference, other, order=order, max_iter=self.max_iter,
                                       seed=seed)
                for order in (ORDERS if self.order == "best" else (self.order,))}
        order = max(runs, key=lambda o: runs[o][1][-1])
        perms, history = runs[order]
        return Alignment(perms=perms, objective=history[-1] if history else float("nan"),
                         history=tuple(history), seconds=time.perf_counter() - start,
                         diagnostics={"sweeps": len(history), "order": order,
                                      "objectives": {o: h[-1] for o, (_, h) in runs.items()}})


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
