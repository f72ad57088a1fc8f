"""``smoe_mlp``: an MLP whose blocks' feed-forward parts are sparse mixtures of experts (Shazeer et
al. 2017; the layer Li et al. merge in "Merge, Then Compress", ICLR 2024).

``x -> relu(embed) -> [h = h + MoE(h)] x blocks -> head``. Each MoE layer has ``experts`` experts (width
-> ``expert_width`` -> width, ReLU) and a linear router; an input goes to the ``top_k`` experts with
the largest router logits, weighted by the softmax of those k logits. The experts' parameters are
stacked expert-major (``w_in`` (E*H, d), ``b_in`` (E*H), ``w_out`` (d, E*H), ``b_out`` (E, d)), the
layout of :class:`~ridgeline.core.ExpertSymmetry`. Every expert is computed densely and the unused
ones are weighted zero: exact, and cheap at these sizes. The ReLU after the embedding matters: the
residual stream otherwise meets only linear maps (the embedding, the routers, the experts' first
and second layers, the head), so any invertible linear map of it would be a symmetry, of which
permutations are a vanishing part; the ReLU cuts the stream's symmetry down to permutations (and
positive scalings).

Top-k routing is data-dependent, so the spec tracer cannot follow it: the model declares its
symmetries explicitly, a :class:`~ridgeline.core.SymmetryProduct` of the residual stream's
permutation and one :class:`~ridgeline.core.ExpertSymmetry` per block (experts with their router
rows, units within experts). These commute (they act on different axes), and :meth:`spec` is
their permutation part, so permutation aligners that keep nested groups (weight matching) align
two SMoE models expert-aware.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ridgeline.core import ConfigError, ExpertSymmetry, Model, PermutationSpec, SymmetryProduct


class SparseMoE(nn.Module):
    """E experts d -> H -> d with a top-k softmax router."""

    def __init__(self, width: int, experts: int, hidden: int, top_k: int) -> None:
        super().__init__()
        self.experts, self.hidden, self.top_k = experts, hidden, top_k
        self.router = nn.Linear(width, experts)
        bound_in, bound_out = 1 / math.sqrt(width), 1 / math.sqrt(hidden)
        self.w_in = nn.Parameter(torch.empty(experts * hidden, width).uniform_(-bound_in, bound_in))
        self.b_in = nn.Parameter(torch.empty(experts * hidden).uniform_(-bound_in, bound_in))
        self.w_out = nn.Parameter(torch.empty(width, experts * hidden).uniform_(-bound_out, bound_out))
        self.b_out = nn.Parameter(torch.empty(experts, width).uniform_(-bound_out, bound_out))

    def gates(self, h: torch.Tensor) -> torch.Tensor:
        """(batch, E): the softmax of the top-k router logits, zero for the other experts."""
        logits = self.router(h)
        top, index = logits.topk(self.top_k, dim=-1)
        return torch.zeros_like(logits).scatter(-1, index, torch.softmax(top, dim=-1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, width = h.shape
        hidden = F.relu(F.linear(h, self.w_in, self.b_in)).view(batch, self.experts, self.hidden)
        out = torch.einsum("beh,deh->bed", hidden, self.w_out.view(width, self.experts, self.hidden))
        return torch.einsum("be,bed->bd", self.gates(h), out + self.b_out)


class Block(nn.Module):
    def __init__(self, width: int, experts: int, hidden: int, top_k: int) -> None:
        super().__init__()
        self.moe = SparseMoE(width, experts, hidden, top_k)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.moe(h)


class SMoEMLP(nn.Module):
    """Embedding, residual blocks of sparse mixtures of experts, linear head."""

    def __init__(self, in_features: int, num_classes: int, width: int, blocks: int, experts: int,
                 hidden: int, top_k: int) -> None:
        super().__init__()
        self.embed = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(Block(width, experts, hidden, top_k) for _ in range(blocks))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.embed(x.flatten(1)))
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class SMoEMLPModel(Model):
    """MLP of sparse mixture-of-experts blocks (top-k router, stacked experts)."""

    name = "smoe_mlp"

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, width: int = 64, blocks: int = 2,
                 experts: int = 8, expert_width: int = 32, top_k: int = 2) -> None:
        sizes = {"width": int(width), "blocks": int(blocks), "experts": int(experts),
                 "expert_width": int(expert_width), "top_k": int(top_k)}
        if min(sizes.values()) < 1:
            raise ConfigError(f"smoe_mlp sizes must be positive, got {sizes}")
        if sizes["top_k"] > sizes["experts"]:
            raise ConfigError(f"smoe_mlp top_k ({top_k}) cannot exceed the number of experts ({experts})")
        super().__init__(input_shape, num_classes, **sizes)

    def build(self) -> SMoEMLP:
        o = self.options
        return SMoEMLP(math.prod(self.input_shape), self.num_classes, o["width"], o["blocks"], o["experts"],
                       o["expert_width"], o["top_k"])

    def symmetries(self) -> SymmetryProduct:
        """The residual stream's permutation, and each block's experts (with their router rows)
        and units within experts."""
        o = self.options
        residual = [("embed.weight", 0), ("embed.bias", 0), ("head.weight", 1)]
        experts = []
        for i in range(o["blocks"]):
            p = f"blocks.{i}.moe"
            residual += [(f"{p}.router.weight", 1), (f"{p}.w_in", 1), (f"{p}.w_out", 0), (f"{p}.b_out", 1)]
            experts.append(ExpertSymmetry(
                f"{p}.experts", o["experts"], o["expert_width"],
                router=[(f"{p}.router.weight", 0), (f"{p}.router.bias", 0)],
                expert_params=[(f"{p}.b_out", 0)],
                unit_axes=[(f"{p}.w_in", 0), (f"{p}.b_in", 0), (f"{p}.w_out", 1)], top_k=o["top_k"]))
        stream = PermutationSpec({"residual": o["width"]}, {"residual": residual})
        return SymmetryProduct([stream, *experts])

    def spec(self) -> PermutationSpec:
        """The permutation part of :meth:`symmetries`: the residual stream, each block's experts
        (blocks of units) and the units nested within them."""
        return self.symmetries().permutations()
