"""TreeSymmetry: the invariances of an ensemble of soft binary trees (Kanoh & Sugiyama, "Linear Mode
Connectivity in Differentiable Tree Ensembles", ICLR 2025, Sec. 3).

Layout (what a model stores; ``M`` trees, depth ``D``, ``F`` input features, ``C`` outputs):
``weight`` (M, S, F) and ``bias`` (M, S) hold each tree's S splits, ``leaf`` (M, L, C) its L leaf
values. A split sends an input left with probability sigmoid(w.x + b); a leaf's probability is the
product of the branch probabilities on its path; a tree outputs sum_leaf prob * value and the
ensemble sums its trees. Three structures:

* ``tree``: S = 2^D - 1 splits in heap order (split n has children 2n+1, 2n+2), L = 2^D leaves from
  left to right;
* ``oblivious``: one split per depth level shared by all nodes of that level (S = D), L = 2^D
  leaves, leaf c taking the right branch at level k when bit D-1-k of c is set;
* ``decision_list``: a chain of S = D splits, split k sending its left branch to leaf k and its
  right branch on (the last split's right branch to leaf D): L = D + 1.

The transformations that leave the ensemble's function unchanged:

* **tree permutation** (every structure): reorder the trees (axis 0 of the three tensors);
* **subtree flip**: negate a split (sigmoid(-z) = 1 - sigmoid(z)) and swap the two subtrees below
  it. A ``tree`` can flip any split (2^S patterns, the flips composing along the paths); an
  ``oblivious`` tree flips a whole level at once (2^D); a ``decision_list`` only its last split,
  whose two children are both leaves (2);
* **splitting order** (``oblivious`` only): permute the D levels and reindex the leaves (D!).

A transform has three components: ``name`` (M,), the tree permutation (tree ``i`` of the result
is tree ``perm[i]`` of the input); ``name.flips`` (M, number of flip bits), 1 where a split is
flipped; ``name.orders`` (M, D), oblivious only, level ``k`` of the result being level
``order[k]`` of the input. The permutation acts first, then each slot's flips and order (the
convention of nested permutation groups). For ``tree``, bit ``v`` flips split ``v`` of the result:
its subtrees swap and the flips below follow the swapped subtrees.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import attrs
import torch

from ridgeline.core.errors import SpecError
from ridgeline.core.state import State
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec
from ridgeline.core.symmetry.symmetry import Symmetry, Transform, require_components

STRUCTURES = ("tree", "oblivious", "decision_list")


def tree_sizes(structure: str, depth: int) -> tuple[int, int, int]:
    """(splits S, leaves L, flip bits) of one tree."""
    if structure not in STRUCTURES:
        raise SpecError(f"tree structure must be one of {STRUCTURES}, got {structure!r}")
    if depth < 1:
        raise SpecError(f"tree depth must be at least 1, got {depth}")
    if structure == "tree":
        return 2 ** depth - 1, 2 ** depth, 2 ** depth - 1
    if structure == "oblivious":
        return depth, 2 ** depth, depth
    return depth, depth + 1, 1


def tree_leaf_paths(structure: str, depth: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each leaf's path from the root: ``splits`` (L, D) the split met at step k, ``right`` (L, D)
    True where the path takes the right branch, ``used`` (L, D) False past a decision-list leaf."""
    _, leaves, _ = tree_sizes(structure, depth)
    steps = torch.arange(depth)
    if structure == "decision_list":
        index = torch.arange(leaves)[:, None]
        splits = steps.expand(leaves, depth).clone()
        right = steps[None, :] < index
        used = steps[None, :] <= torch.clamp(index, max=depth - 1)
        return splits, right, used
    codes = torch.arange(leaves)[:, None]
    right = ((codes >> (depth - 1 - steps)[None, :]) & 1).bool()
    if structure == "oblivious":
        splits = steps.expand(leaves, depth).clone()
    else:
        splits = 2 ** steps[None, :] - 1 + (codes >> (depth - steps)[None, :])
    return splits, right, torch.ones(leaves, depth, dtype=torch.bool)


@attrs.frozen
class TreeSymmetry(Symmetry):
    """The symmetries of ``trees`` soft trees of ``depth`` and ``structure`` stored under the keys
    ``weight``, ``bias`` and ``leaf`` (see the module docstring for layout and conventions)."""

    trees: int
    depth: int
    structure: str
    weight: str
    bias: str
    leaf: str
    name: str = "trees"

    def __attrs_post_init__(self) -> None:
        tree_sizes(self.structure, self.depth)
        if self.trees < 1:
            raise SpecError(f"a tree ensemble needs at least one tree, got {self.trees}")

    # -- structure --------------------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, int, int]:
        """(splits S, leaves L, flip bits) of one tree."""
        return tree_sizes(self.structure, self.depth)

    @property
    def has_orders(self) -> bool:
        return self.structure == "oblivious"

    @property
    def flips_name(self) -> str:
        return f"{self.name}.flips"

    @property
    def orders_name(self) -> str:
        return f"{self.name}.orders"

    @property
    def components(self) -> tuple[str, ...]:
        return (self.name, self.flips_name, *((self.orders_name,) if self.has_orders else ()))

    @property
    def keys(self) -> set[str]:
        return {self.weight, self.bias, self.leaf}

    def validate(self, state: Mapping[str, torch.Tensor]) -> None:
        splits, leaves, _ = self.sizes
        for key, lead in ((self.weight, (self.trees, splits)), (self.bias, (self.trees, splits)),
                          (self.leaf, (self.trees, leaves))):
            if key not in state:
                raise SpecError(f"tree symmetry {self.name!r} refers to tensor {key!r}, "
                                "absent from the state")
            shape = tuple(state[key].shape)
            want = len(lead) + (0 if key == self.bias else 1)
            if shape[:2] != lead or len(shape) != want:
                tail = " + (n,)" if want == 3 else ""
                raise SpecError(f"tree symmetry {self.name!r} ({self.trees} {self.structure} trees of "
                                f"depth {self.depth}) needs {key!r} of shape {lead}{tail}, got {shape}")

    # -- within-tree transforms ---------------------------------------------------------
    def within_maps(self, flips: torch.Tensor, orders: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For a batch of within-tree transforms (``flips`` (P, bits), ``orders`` (P, D)): ``splits``
        (P, S) and ``signs`` (P, S) with split v of the result = signs[v] * split splits[v] of the
        input, and ``leaves`` (P, L) with leaf c of the result = leaf leaves[c] of the input."""
        flips = flips.long() != 0
        count, device = flips.shape[0], flips.device
        splits, leaves, _ = self.sizes
        signs = 1 - 2 * flips.long()
        if self.structure == "tree":
            nodes = torch.empty(count, splits, dtype=torch.long, device=device)
            pos = torch.zeros(count, 1, dtype=torch.long, device=device)
            for level in range(self.depth):
                base, width = 2 ** level - 1, 2 ** level
                nodes[:, base:base + width] = base + pos
                bit = flips[:, base:base + width].long()
                pos = torch.stack([2 * pos + bit, 2 * pos + 1 - bit], dim=-1).reshape(count, 2 * width)
            return nodes, signs, pos
        if self.structure == "oblivious":
            if orders is None:
                orders = torch.arange(self.depth, device=device).expand(count, -1)
            steps = torch.arange(self.depth, device=device)
            bits = (torch.arange(leaves, device=device)[:, None] >> (self.depth - 1 - steps)) & 1
            source = bits[None] ^ flips.long()[:, None, :]
            place = 2 ** (self.depth - 1 - orders.long())
            return orders.long().clone(), signs, (source * place[:, None, :]).sum(-1)
        nodes = torch.arange(splits, device=device).expand(count, -1).clone()
        full = torch.ones(count, splits, dtype=torch.long, device=device)
        full[:, -1] = signs[:, 0]
        out = torch.arange(leaves, device=device).expand(count, -1).clone()
        out[:, -2:] = torch.where(flips[:, :1], out[:, -2:].flip(-1), out[:, -2:])
        return nodes, full, out

    def _within_inverse(self, flips: torch.Tensor, orders: torch.Tensor | None
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.structure == "tree":
            nodes, _, _ = self.within_maps(flips)
            return torch.zeros_like(flips).scatter(1, nodes, flips), None
        if self.structure == "oblivious":
            back = torch.argsort(orders, dim=1)
            return torch.gather(flips, 1, back), back
        return flips.clone(), None

    def pattern_count(self, *, flips: bool = True, orders: bool = True) -> int:
        """How many within-tree transforms the chosen invariances allow."""
        _, _, bits = self.sizes
        return (2 ** bits if flips else 1) * (math.factorial(self.depth) if orders and self.has_orders else 1)

    def patterns(self, *, flips: bool = True, orders: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every within-tree transform the chosen invariances allow: ``flips`` (P, bits) and
        ``orders`` (P, D) (None unless oblivious); :meth:`pattern_count` says how many."""
        _, _, bits = self.sizes
        flip_rows = torch.tensor(list(itertools.product((0, 1), repeat=bits)) if flips else [[0] * bits])
        if not self.has_orders:
            return flip_rows, None
        order_rows = torch.tensor(list(itertools.permutations(range(self.depth))) if orders
                                  else [list(range(self.depth))])
        return (flip_rows.repeat_interleave(len(order_rows), 0), order_rows.repeat(len(flip_rows), 1))

    # -- transforms ---------------------------------------------------------------------
    def identity(self, device: torch.device | str = "cpu") -> Transform:
        _, _, bits = self.sizes
        out = {self.name: torch.arange(self.trees, device=device),
               self.flips_name: torch.zeros(self.trees, bits, dtype=torch.long, device=device)}
        if self.has_orders:
            out[self.orders_name] = torch.arange(self.depth, device=device).repeat(self.trees, 1)
        return out

    def random(self, generator: torch.Generator | None = None) -> Transform:
        _, _, bits = self.sizes
        out = {self.name: torch.randperm(self.trees, generator=generator),
               self.flips_name: torch.randint(0, 2, (self.trees, bits), generator=generator)}
        if self.has_orders:
            out[self.orders_name] = torch.stack([torch.randperm(self.depth, generator=generator)
                                                 for _ in range(self.trees)])
        return out

    def invert(self, transform: Mapping[str, torch.Tensor]) -> Transform:
        """If the result's slot i holds input tree p[i] transformed by T_i, the inverse puts tree i
        back in slot j = p^-1[i]... i.e. slot j of the inverse holds tree q[j] (q = p^-1) of its
        input, transformed by T_{q[j]}^-1."""
        require_components(self, transform)
        full = {**self.identity(), **{k: v.cpu() for k, v in transform.items()}}
        back = torch.argsort(full[self.name])
        flips, orders = self._within_inverse(full[self.flips_name].long(),
                                             full[self.orders_name].long() if self.has_orders else None)
        out = {self.name: back, self.flips_name: flips[back]}
        if orders is not None:
            out[self.orders_name] = orders[back]
        return {k: v for k, v in out.items() if k in transform or k == self.name}

    def apply(self, state: Mapping[str, torch.Tensor], transform: Mapping[str, torch.Tensor]) -> State:
        require_components(self, transform)
        out = dict(state)
        weight, bias, leaf = state[self.weight], state[self.bias], state[self.leaf]
        if self.name in transform:
            perm = transform[self.name].to(weight.device).long()
            weight, bias, leaf = weight[perm], bias[perm], leaf[perm]
        if self.flips_name in transform or self.orders_name in transform:
            flips = transform.get(self.flips_name)
            if flips is None:
                flips = torch.zeros(self.trees, self.sizes[2], dtype=torch.long)
            orders = transform.get(self.orders_name) if self.has_orders else None
            nodes, signs, leaves = self.within_maps(flips.to(weight.device),
                                                    None if orders is None else orders.to(weight.device))
            signs = signs.to(weight.dtype)
            weight = torch.gather(weight, 1, nodes[..., None].expand(-1, -1, weight.shape[2]))
            weight = weight * signs[..., None]
            bias = torch.gather(bias, 1, nodes) * signs
            leaf = torch.gather(leaf, 1, leaves[..., None].expand(-1, -1, leaf.shape[2]))
        out[self.weight], out[self.bias], out[self.leaf] = weight, bias, leaf
        return out

    # -- description ----------------------------------------------------------------------
    def kinds(self) -> dict[str, str]:
        splits, _, bits = self.sizes
        where = f"{self.weight}, {self.bias}, {self.leaf}"
        out = {"tree permutation": f"{self.trees} trees ({self.structure}, depth {self.depth}; {where})"}
        out["subtree flip"] = {
            "tree": f"any of the {splits} splits of each tree (2^{bits} patterns)",
            "oblivious": f"a whole level of each tree ({self.depth} levels, 2^{bits} patterns)",
            "decision_list": "the last split of each tree (its two children are leaves; 2 patterns)",
        }[self.structure]
        if self.has_orders:
            orders = math.factorial(self.depth)
            out["splitting order"] = f"the {self.depth} levels of each tree ({orders} orders)"
        return out

    def describe(self) -> list[dict[str, Any]]:
        tensors = [f"{self.weight}[0]", f"{self.bias}[0]", f"{self.leaf}[0]"]
        kinds = self.kinds()
        rows = [{"kind": "tree permutation", "component": self.name, "size": self.trees, "tensors": tensors},
                {"kind": "subtree flip", "component": self.flips_name, "size": self.trees,
                 "tensors": tensors, "summary": kinds["subtree flip"]}]
        if self.has_orders:
            rows.append({"kind": "splitting order", "component": self.orders_name, "size": self.trees,
                         "tensors": tensors, "summary": kinds["splitting order"]})
        return rows

    def permutations(self) -> PermutationSpec:
        """The tree permutation alone: one group moving axis 0 of the three tensors."""
        return PermutationSpec({self.name: self.trees},
                               {self.name: (AxisRef(self.weight, 0), AxisRef(self.bias, 0),
                                            AxisRef(self.leaf, 0))})
