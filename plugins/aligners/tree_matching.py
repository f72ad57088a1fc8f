"""``tree_matching``: weight matching for soft tree ensembles (Kanoh & Sugiyama, "Linear Mode
Connectivity in Differentiable Tree Ensembles", ICLR 2025, Sec. 3).

For every tree i of A and tree j of B the similarity of the pair is the largest inner product of
their parameters over the within-tree transforms the chosen invariances allow,

    s(i, j) = max_T < theta_i^A, T(theta_j^B) >,

where theta holds each split's weights and bias and the leaf values, and T ranges over subtree
flips (``flips``) and, for oblivious trees, splitting orders (``orders``). The search is exact when
it examines at most ``exact_limit`` candidates per pair: oblivious trees and decision lists
enumerate their 2^D * D! (2) transforms; plain trees, whose 2^(2^D - 1) flip patterns cannot be
enumerated beyond depth 3, are solved exactly by dynamic programming over the 4^D pairs of
subtrees (the flips inside two sibling subtrees are independent). Beyond the limit the transforms
are chosen greedily, level by level: for oblivious trees the level order is the assignment of
|<w_k^A, w_l^B>| and a level flips when its matched inner product is negative; for plain trees,
from the root down, a split flips when that makes its own inner product plus the best matches of
the splits (or leaves) just below larger. Then one linear assignment over s(i, j) matches the trees
(``permutation``; without it tree i stays with tree i) and the transform is applied.

The search runs on any :class:`~ridgeline.core.Symmetry`: the tree ensembles of a
:class:`~ridgeline.core.TreeSymmetry` (alone or inside a :class:`~ridgeline.core.SymmetryProduct`)
are matched as above after every other permutation group was aligned by Git Re-Basin weight
matching (the parts of a product commute); on a plain permutation spec it is weight matching.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch

from ridgeline.core import (
    AlignContext,
    Aligner,
    Alignment,
    ConfigError,
    PermutationSpec,
    Symmetry,
    SymmetryProduct,
    Transform,
    TreeSymmetry,
)
from ridgeline.core.numerics import assignment, batched_assignment
from ridgeline.plugins.aligners.weight_matching import Order, best_weight_matching, check_sweep_options

CHUNK_ELEMENTS = 2 ** 22  # score entries computed at once while enumerating patterns


def split_symmetry(symmetry: Symmetry) -> tuple[list[TreeSymmetry], PermutationSpec | None]:
    """The tree ensembles of ``symmetry`` and the permutation spec of everything else (None if
    nothing else)."""
    if isinstance(symmetry, TreeSymmetry):
        return [symmetry], None
    if isinstance(symmetry, SymmetryProduct):
        trees = symmetry.part(TreeSymmetry)
        others = [p for p in symmetry.parts if not isinstance(p, TreeSymmetry)]
        return trees, (SymmetryProduct(others).permutations() if others else None)
    return [], symmetry.permutations()


def _node_params(tree: TreeSymmetry, state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, S, F + 1) split weights with their biases, and (M, L, C) leaf values, in float64."""
    nodes = torch.cat([state[tree.weight].double(), state[tree.bias].double()[..., None]], dim=-1)
    return nodes, state[tree.leaf].double()


def _pattern_scores(tree: TreeSymmetry, g: torch.Tensor, h: torch.Tensor, flips: torch.Tensor,
                    orders: torch.Tensor | None) -> torch.Tensor:
    """Score of every pair (i, j) under each pattern: (M, M, P)."""
    nodes, signs, leaves = tree.within_maps(flips, orders)
    splits, n_leaves = nodes.shape[1], leaves.shape[1]
    rows = torch.arange(splits)[None, :].expand_as(nodes)
    node_part = (g[:, :, rows, nodes] * signs.to(g.dtype)).sum(-1)
    leaf_rows = torch.arange(n_leaves)[None, :].expand_as(leaves)
    return node_part + h[:, :, leaf_rows, leaves].sum(-1)


def _paired_scores(tree: TreeSymmetry, g: torch.Tensor, h: torch.Tensor, flips: torch.Tensor,
                   orders: torch.Tensor | None) -> torch.Tensor:
    """Score of pair (i, j) under its own pattern (``flips`` (M, M, bits), ``orders`` (M, M, D))."""
    m = g.shape[0]
    nodes, signs, leaves = tree.within_maps(flips.reshape(m * m, -1),
                                            None if orders is None else orders.reshape(m * m, -1))
    pairs = torch.arange(m * m)[:, None]
    gf, hf = g.reshape(m * m, *g.shape[2:]), h.reshape(m * m, *h.shape[2:])
    node_part = (gf[pairs, torch.arange(nodes.shape[1])[None, :], nodes] * signs.to(g.dtype)).sum(-1)
    leaf_part = hf[pairs, torch.arange(leaves.shape[1])[None, :], leaves].sum(-1)
    return (node_part + leaf_part).reshape(m, m)


def _greedy_oblivious(tree: TreeSymmetry, g: torch.Tensor, flips: bool, orders: bool
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pair: levels matched by the assignment of |<level k of A, level l of B>|, a level flipped
    when its matched inner product is negative."""
    m, depth = g.shape[0], tree.depth
    order = batched_assignment(g.abs())[0] if orders else torch.arange(depth).repeat(m, m, 1)
    matched = torch.gather(g, 3, order[..., None]).squeeze(-1)
    flip = (matched < 0).long() if flips else torch.zeros_like(order)
    return flip, order


def _at(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``rows[..., j, cols[..., j]]`` for every j."""
    return torch.gather(rows, -1, cols[..., None]).squeeze(-1)


def _descend(choice: dict[int, torch.Tensor], m: int, depth: int) -> torch.Tensor:
    """Flip bits (M, M, splits) from per-level decisions ``choice[d]`` (M, M, 2^d, 2^d): the bit
    of A's split at position x of level d when it is matched with B's split at position y."""
    flips = torch.zeros(m, m, 2 ** depth - 1, dtype=torch.long)
    pos = torch.zeros(m, m, 1, dtype=torch.long)
    for level in range(depth):
        base, width = 2 ** level - 1, 2 ** level
        bit = _at(choice[level], pos).long()
        flips[:, :, base:base + width] = bit
        pos = torch.stack([2 * pos + bit, 2 * pos + 1 - bit], dim=-1).reshape(m, m, 2 * width)
    return flips


def _exact_tree(tree: TreeSymmetry, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The best flips of every pair by dynamic programming over subtree pairs: the best match of
    A's subtree at x with B's subtree at y is max(<x, y> + best(children in order),
    -<x, y> + best(children swapped)), since the flips inside the two subtrees below are
    independent. Exact, with 4^D subtree pairs per tree pair instead of 2^(2^D - 1) patterns."""
    depth = tree.depth
    best, choice = h, {}
    for level in range(depth - 1, -1, -1):
        base, width = 2 ** level - 1, 2 ** level
        own = g[:, :, base:base + width, base:base + width]
        keep = own + best[:, :, 0::2, 0::2] + best[:, :, 1::2, 1::2]
        swap = -own + best[:, :, 0::2, 1::2] + best[:, :, 1::2, 0::2]
        choice[level] = swap > keep
        best = torch.maximum(keep, swap)
    return _descend(choice, g.shape[0], depth)


def _greedy_tree(tree: TreeSymmetry, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """From the root down: a split flips when its own signed inner product plus the best matches
    of the two splits (or leaves) below it is larger flipped (one level of look-ahead)."""
    m, depth = g.shape[0], tree.depth
    flips = torch.zeros(m, m, 2 ** depth - 1, dtype=torch.long)
    pos = torch.zeros(m, m, 1, dtype=torch.long)
    for level in range(depth):
        base, width = 2 ** level - 1, 2 ** level
        own = _at(g[:, :, base:base + width, base:base + width], pos)
        if level + 1 < depth:
            nxt = slice(2 * base + 1, 2 * base + 1 + 2 * width)
            below = g[:, :, nxt, nxt].abs()
        else:
            below = h
        left, right = below[:, :, 0::2, :], below[:, :, 1::2, :]
        keep = own + _at(left, 2 * pos) + _at(right, 2 * pos + 1)
        swap = -own + _at(left, 2 * pos + 1) + _at(right, 2 * pos)
        bit = (swap > keep).long()
        flips[:, :, base:base + width] = bit
        pos = torch.stack([2 * pos + bit, 2 * pos + 1 - bit], dim=-1).reshape(m, m, 2 * width)
    return flips


def search_cost(tree: TreeSymmetry, *, flips: bool, orders: bool) -> int:
    """Candidates an exact search examines per tree pair: the within-tree transforms, or for
    plain trees with flips the 4^D subtree pairs of the dynamic programme."""
    if tree.structure == "tree" and flips:
        return 4 ** tree.depth
    return tree.pattern_count(flips=flips, orders=orders)


def match_trees(tree: TreeSymmetry, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], *,
                permutation: bool = True, flips: bool = True, orders: bool = True,
                exact_limit: int = 4096) -> tuple[Transform, float, dict[str, Any]]:
    """The transform of ``tree`` taking B's trees onto A's, its objective (sum of the matched
    pairs' inner products) and how it was searched (see the module docstring)."""
    na, la = _node_params(tree, a)
    nb, lb = _node_params(tree, b)
    g = torch.einsum("isf,jtf->ijst", na.cpu(), nb.cpu())
    h = torch.einsum("ilc,jkc->ijlk", la.cpu(), lb.cpu())
    m, (_, _, bits) = tree.trees, tree.sizes
    orders = orders and tree.has_orders
    count = tree.pattern_count(flips=flips, orders=orders)
    exact = search_cost(tree, flips=flips, orders=orders) <= exact_limit or tree.structure == "decision_list"
    if exact and tree.structure == "tree" and flips:
        pair_flips, pair_orders = _exact_tree(tree, g, h), None
        best = _paired_scores(tree, g, h, pair_flips, pair_orders)
    elif exact:
        all_flips, all_orders = tree.patterns(flips=flips, orders=orders)
        chunk = max(1, CHUNK_ELEMENTS // (m * m * (g.shape[2] + h.shape[2])))
        best = torch.full((m, m), -torch.inf, dtype=torch.float64)
        choice = torch.zeros((m, m), dtype=torch.long)
        for start in range(0, count, chunk):
            part = slice(start, start + chunk)
            scores = _pattern_scores(tree, g, h, all_flips[part],
                                     None if all_orders is None else all_orders[part])
            value, index = scores.max(dim=-1)
            better = value > best
            best = torch.where(better, value, best)
            choice = torch.where(better, index + start, choice)
        pair_flips = all_flips[choice]
        pair_orders = None if all_orders is None else all_orders[choice]
    else:
        if tree.structure == "oblivious":
            pair_flips, pair_orders = _greedy_oblivious(tree, g, flips, orders)
        else:
            pair_flips, pair_orders = _greedy_tree(tree, g, h), None
        best = _paired_scores(tree, g, h, pair_flips, pair_orders)
    perm = assignment(best)[0] if permutation else torch.arange(m)
    rows = torch.arange(m)
    transform = {tree.name: perm, tree.flips_name: pair_flips[rows, perm].reshape(m, bits).long()}
    if tree.has_orders:
        transform[tree.orders_name] = (pair_orders[rows, perm] if pair_orders is not None
                                       else torch.arange(tree.depth).repeat(m, 1))
    objective = float(best[rows, perm].sum())
    diagnostics = {"search": "exact" if exact else "greedy", "transforms_per_pair": count,
                   "trees_moved": int((perm != rows).sum()),
                   "flipped_splits": int(transform[tree.flips_name].sum())}
    if tree.has_orders:
        diagnostics["reordered_trees"] = int(
            (transform[tree.orders_name] != torch.arange(tree.depth)).any(dim=1).sum())
    return transform, objective, diagnostics


class TreeMatchingAligner(Aligner):
    """Tree ensembles: subtree flips and level orders per tree pair, then trees by assignment.

    Options: ``permutation``, ``flips``, ``orders`` (which invariances to use; all by default),
    ``exact_limit`` (search exactly when that examines at most this many candidates per tree pair,
    else greedily level by level), and for other permutation groups ``order``, ``restarts`` and
    ``max_iter`` of weight matching (as ``weight_matching``'s: by default the best of five orders).
    """

    name = "tree_matching"
    supports_nested = True
    uses_symmetries = True

    def __init__(self, *, permutation: bool = True, flips: bool = True, orders: bool = True,
                 exact_limit: int = 4096, order: Order = "best", restarts: int = 3,
                 max_iter: int = 100) -> None:
        if int(exact_limit) < 1:
            raise ConfigError(f"tree_matching exact_limit must be at least 1, got {exact_limit}")
        check_sweep_options(self.name, order, restarts, max_iter)
        super().__init__(permutation=permutation, flips=flips, orders=orders, exact_limit=exact_limit,
                         order=order, restarts=restarts, max_iter=max_iter)
        self.permutation, self.flips, self.orders = bool(permutation), bool(flips), bool(orders)
        self.exact_limit, self.order, self.max_iter = int(exact_limit), order, int(max_iter)
        self.restarts = int(restarts)

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: Symmetry, context: AlignContext) -> Alignment:
        self.check_inputs(reference, other, spec)
        start = time.perf_counter()
        trees, rest = split_symmetry(spec)
        transform: Transform = {}
        objective, history, diagnostics = 0.0, [], {}
        if rest is not None and rest.groups:
            perms, history, matched = best_weight_matching(rest, reference, other, order=self.order,
                                                           restarts=self.restarts, max_iter=self.max_iter,
                                                           seed=context.seed)
            transform.update(perms)
            other = rest.apply(other, perms)
            objective += history[-1] if history else 0.0
            diagnostics["weight_matching_sweeps"] = len(history)  # the kept run's
            diagnostics["weight_matching_runs"] = matched["runs"]  # every run made (order, seed, sweeps)
        for tree in trees:
            found, value, report = match_trees(
                tree, reference, other, permutation=self.permutation, flips=self.flips,
                orders=self.orders, exact_limit=self.exact_limit)
            transform.update(found)
            objective += value
            diagnostics[tree.name] = report
        return Alignment(perms=transform, objective=objective, history=tuple(history),
                         seconds=time.perf_counter() - start, diagnostics=diagnostics)
