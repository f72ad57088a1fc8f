"""``soft_trees``: an ensemble of soft binary trees for tabular classification (Kanoh & Sugiyama,
"Linear Mode Connectivity in Differentiable Tree Ensembles", ICLR 2025, Sec. 2).

Each of ``trees`` trees of ``depth`` routes an input through sigmoid-gated splits: split n sends it
left with probability sigmoid(w_n . x + b_n); a leaf's probability is the product of the branch
probabilities on its path, and the tree outputs sum_leaf prob * leaf value (a vector of class
logits). The ensemble sums its trees. ``structure`` is ``oblivious`` (one split per level, shared
by the level's nodes, as in NODE), ``tree`` (every node its own split) or ``decision_list`` (a
chain of splits, each with one leaf; see :mod:`ridgeline.core.symmetry.trees`).

The model declares its symmetries explicitly (:class:`~ridgeline.core.TreeSymmetry`: tree
permutation, subtree flips, splitting order); its permutation spec is the tree permutation alone,
so permutation aligners see the trees as one group.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn

from ridgeline.core import ConfigError, Model, PermutationSpec, TreeSymmetry, tree_leaf_paths

Structure = Literal["oblivious", "tree", "decision_list"]
STRUCTURES = get_args(Structure)


class SoftTreeEnsemble(nn.Module):
    """``weight`` (M, S, F), ``bias`` (M, S) and ``leaf`` (M, L, C): the layout of
    :class:`~ridgeline.core.TreeSymmetry`."""

    def __init__(self, in_features: int, num_classes: int, trees: int, depth: int, structure: str) -> None:
        super().__init__()
        splits, right, used = tree_leaf_paths(structure, depth)
        n_splits = int(splits.max()) + 1
        self.weight = nn.Parameter(torch.randn(trees, n_splits, in_features) / math.sqrt(in_features))
        self.bias = nn.Parameter(0.1 * torch.randn(trees, n_splits))
        self.leaf = nn.Parameter(torch.randn(trees, len(splits), num_classes) / math.sqrt(trees))
        self.register_buffer("splits", splits, persistent=False)
        self.register_buffer("right", right, persistent=False)
        self.register_buffer("used", used, persistent=False)

    def leaf_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, trees, leaves): the probability of reaching each leaf."""
        z = torch.einsum("bf,msf->bms", x.flatten(1), self.weight) + self.bias
        z = z[:, :, self.splits]
        branch = torch.sigmoid(torch.where(self.right, -z, z))  # sigmoid(-z) = 1 - sigmoid(z)
        return torch.where(self.used, branch, torch.ones_like(branch)).prod(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bml,mlc->bc", self.leaf_probabilities(x), self.leaf)


class SoftTreesModel(Model):
    """Ensemble of soft (sigmoid-gated) binary trees: oblivious, plain, or decision lists."""

    name = "soft_trees"

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, trees: int = 16, depth: int = 3,
                 structure: Structure = "oblivious") -> None:
        if structure not in STRUCTURES:
            raise ConfigError(f"soft_trees structure must be one of {STRUCTURES}, got {structure!r}")
        if int(trees) < 1 or int(depth) < 1:
            raise ConfigError(f"soft_trees needs trees >= 1 and depth >= 1, got trees={trees}, depth={depth}")
        super().__init__(input_shape, num_classes, trees=int(trees), depth=int(depth), structure=structure)

    def build(self) -> SoftTreeEnsemble:
        o = self.options
        return SoftTreeEnsemble(math.prod(self.input_shape), self.num_classes, o["trees"], o["depth"],
                                o["structure"])

    def symmetries(self) -> TreeSymmetry:
        """Tree permutation, subtree flips and (oblivious trees) splitting order."""
        o = self.options
        return TreeSymmetry(o["trees"], o["depth"], o["structure"], "weight", "bias", "leaf")

    def spec(self) -> PermutationSpec:
        """The tree permutation: one group on axis 0 of ``weight``, ``bias`` and ``leaf``."""
        return self.symmetries().permutations()
