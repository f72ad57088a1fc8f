"""The weight matching of ridgeline 0.1 (before issue 9), kept verbatim as the benchmark's baseline.

``benchmarks/weight_matching.py`` times it against ``ridgeline.plugins.aligners.weight_matching``
in one process, and ``tests/plugins/aligners/test_weight_matching.py`` checks that the fast
implementation returns the same permutations and objective on fixed pairs. Cost matrices are
float64 and rebuilt from scratch at every group visit (the cost issue 9 removed). Not part of
the package.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ridgeline.core import ConfigError, Perms, PermutationSpec

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
