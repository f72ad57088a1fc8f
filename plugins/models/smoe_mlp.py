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

**Compressed models** (``routes``): the router may score more *routes* R than there are experts E,
each route dispatched to one expert by a fixed 0/1 table ``dispatch`` (E, R) (a buffer, not trained):
the top-k and softmax act on the R router logits, and an expert's gate is the sum of its routes'
gates. This is the exact form of an M-SMoE merged model (Li et al., ICLR 2024, Sec. 3.2): its
router still scores the R original experts, and every member of a group holds the group's merged
expert, so two selected members of one group add their gates on one expert.
:meth:`SMoEMLPModel.compress` turns such a merged state into the smaller model, one expert per
group, with the same outputs. Without ``routes`` (or with R = E) there is no table, and the layer is
the plain one above.

Top-k routing is data-dependent, so the spec tracer cannot follow it: the model declares its
symmetries explicitly, a :class:`~ridgeline.core.SymmetryProduct` of the residual stream's
permutation and one :class:`~ridgeline.core.ExpertSymmetry` per block (experts with their router
rows, units within experts). These commute (they act on different axes), and :meth:`spec` is
their permutation part, so permutation aligners that keep nested groups (weight matching) align
two SMoE models expert-aware. A compressed model's experts move with their ``dispatch`` rows (the
routing of each expert), and its routes (router rows with their ``dispatch`` columns) are one more
permutation group per block.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ridgeline.core import ConfigError, ExpertSymmetry, Model, PermutationSpec, State, SymmetryProduct


def one_route_each(experts: int, routes: int) -> torch.Tensor:
    """The default dispatch table (experts, routes): route r goes to expert r mod ``experts``
    (a compressed model's table is loaded with its state)."""
    return torch.eye(experts)[:, torch.arange(routes) % experts].contiguous()


def _expert(state: Mapping[str, torch.Tensor], prefix: str, expert: int, hidden: int) -> list[torch.Tensor]:
    """Expert ``expert``'s parameters in block ``prefix`` (``blocks.{i}.moe``) of an smoe_mlp state."""
    units = slice(expert * hidden, (expert + 1) * hidden)
    return [state[f"{prefix}.w_in"][units], state[f"{prefix}.b_in"][units],
            state[f"{prefix}.w_out"][:, units], state[f"{prefix}.b_out"][expert]]


def _partition(name: str, groups: Sequence[Sequence[int]] | Mapping[str, Sequence[int]], experts: int
               ) -> list[list[int]]:
    """``groups`` of expert layer ``name`` as sorted lists in the order of their smallest member;
    :class:`ConfigError` unless they partition 0 .. experts-1."""
    given = groups.values() if isinstance(groups, Mapping) else groups
    members = sorted((sorted(int(e) for e in group) for group in given), key=lambda g: g[0] if g else -1)
    if sorted(e for group in members for e in group) != list(range(experts)) or not all(members):
        raise ConfigError(f"smoe_mlp compress: the groups of {name!r} must partition its experts "
                          f"0..{experts - 1}, got {members}")
    return members


class SparseMoE(nn.Module):
    """E experts d -> H -> d with a top-k softmax router over R routes (R = E unless compressed,
    see the module docstring)."""

    def __init__(self, width: int, experts: int, hidden: int, top_k: int, routes: int | None = None) -> None:
        super().__init__()
        routes = experts if routes is None else routes
        self.experts, self.hidden, self.top_k, self.routes = experts, hidden, top_k, routes
        self.router = nn.Linear(width, routes)
        bound_in, bound_out = 1 / math.sqrt(width), 1 / math.sqrt(hidden)
        self.w_in = nn.Parameter(torch.empty(experts * hidden, width).uniform_(-bound_in, bound_in))
        self.b_in = nn.Parameter(torch.empty(experts * hidden).uniform_(-bound_in, bound_in))
        self.w_out = nn.Parameter(torch.empty(width, experts * hidden).uniform_(-bound_out, bound_out))
        self.b_out = nn.Parameter(torch.empty(experts, width).uniform_(-bound_out, bound_out))
        self.register_buffer("dispatch", None if routes == experts else one_route_each(experts, routes))

    def gates(self, h: torch.Tensor) -> torch.Tensor:
        """(batch, R): the softmax of the top-k router logits, zero for the other routes."""
        logits = self.router(h)
        top, index = logits.topk(self.top_k, dim=-1)
        return torch.zeros_like(logits).scatter(-1, index, torch.softmax(top, dim=-1))

    def expert_gates(self, h: torch.Tensor) -> torch.Tensor:
        """(batch, E): each expert's gate, the sum of its routes' gates (the gates themselves
        without a dispatch table)."""
        gates = self.gates(h)
        return gates if self.dispatch is None else gates @ self.dispatch.T

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, width = h.shape
        hidden = F.relu(F.linear(h, self.w_in, self.b_in)).view(batch, self.experts, self.hidden)
        out = torch.einsum("beh,deh->bed", hidden, self.w_out.view(width, self.experts, self.hidden))
        return torch.einsum("be,bed->bd", self.expert_gates(h), out + self.b_out)


class Block(nn.Module):
    def __init__(self, width: int, experts: int, hidden: int, top_k: int, routes: int | None = None) -> None:
        super().__init__()
        self.moe = SparseMoE(width, experts, hidden, top_k, routes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.moe(h)


class SMoEMLP(nn.Module):
    """Embedding, residual blocks of sparse mixtures of experts, linear head."""

    def __init__(self, in_features: int, num_classes: int, width: int, blocks: int, experts: int,
                 hidden: int, top_k: int, routes: int | None = None) -> None:
        super().__init__()
        self.embed = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(Block(width, experts, hidden, top_k, routes) for _ in range(blocks))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.embed(x.flatten(1)))
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class SMoEMLPModel(Model):
    """MLP of sparse mixture-of-experts blocks (top-k router, stacked experts).

    ``routes`` (default ``experts``): the router's outputs, each dispatched to one expert by a
    0/1 table in the state (a compressed model, :meth:`compress`); at least ``experts``."""

    name = "smoe_mlp"

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, width: int = 64, blocks: int = 2,
                 experts: int = 8, expert_width: int = 32, top_k: int = 2, routes: int | None = None) -> None:
        sizes = {"width": int(width), "blocks": int(blocks), "experts": int(experts),
                 "expert_width": int(expert_width), "top_k": int(top_k)}
        if min(sizes.values()) < 1:
            raise ConfigError(f"smoe_mlp sizes must be positive, got {sizes}")
        if routes is not None and int(routes) != sizes["experts"]:
            if int(routes) < sizes["experts"]:
                raise ConfigError(f"smoe_mlp routes ({routes}) cannot be fewer than experts ({experts}): "
                                  "every route goes to one expert, and every expert needs a route")
            sizes["routes"] = int(routes)  # a plain model's config stays without it
        if sizes["top_k"] > sizes.get("routes", sizes["experts"]):
            what = f"routes ({routes})" if "routes" in sizes else f"the number of experts ({experts})"
            raise ConfigError(f"smoe_mlp top_k ({top_k}) cannot exceed {what}")
        super().__init__(input_shape, num_classes, **sizes)

    @property
    def routes(self) -> int:
        """The router's outputs per block (the number of experts unless compressed)."""
        return self.options.get("routes", self.options["experts"])

    def build(self) -> SMoEMLP:
        o = self.options
        return SMoEMLP(math.prod(self.input_shape), self.num_classes, o["width"], o["blocks"], o["experts"],
                       o["expert_width"], o["top_k"], o.get("routes"))

    def symmetries(self) -> SymmetryProduct:
        """The residual stream's permutation, and each block's experts (with their router rows,
        or their ``dispatch`` rows in a compressed model) and units within experts; a compressed
        model's routes (router rows with their ``dispatch`` columns) are permuted too."""
        o = self.options
        residual = [("embed.weight", 0), ("embed.bias", 0), ("head.weight", 1)]
        groups, axes, experts = {"residual": o["width"]}, {}, []
        for i in range(o["blocks"]):
            p = f"blocks.{i}.moe"
            residual += [(f"{p}.router.weight", 1), (f"{p}.w_in", 1), (f"{p}.w_out", 0), (f"{p}.b_out", 1)]
            router = [(f"{p}.router.weight", 0), (f"{p}.router.bias", 0)]
            if "routes" in o:
                groups[f"{p}.routes"], axes[f"{p}.routes"] = o["routes"], [*router, (f"{p}.dispatch", 1)]
                router = [(f"{p}.dispatch", 0)]
            experts.append(ExpertSymmetry(
                f"{p}.experts", o["experts"], o["expert_width"], router=router,
                expert_params=[(f"{p}.b_out", 0)],
                unit_axes=[(f"{p}.w_in", 0), (f"{p}.b_in", 0), (f"{p}.w_out", 1)],
                top_k=min(o["top_k"], o["experts"])))
        stream = PermutationSpec(groups, {"residual": residual, **axes})
        return SymmetryProduct([stream, *experts])

    def spec(self) -> PermutationSpec:
        """The permutation part of :meth:`symmetries`: the residual stream, each block's experts
        (blocks of units) and the units nested within them (and a compressed model's routes)."""
        return self.symmetries().permutations()

    def compress(self, state: Mapping[str, torch.Tensor],
                 groups: Mapping[str, Sequence[Sequence[int]] | Mapping[str, Sequence[int]]]
                 ) -> tuple[SMoEMLPModel, State]:
        """The smaller model and its state computing the same function as ``state``, a state of
        this model in which every group's experts are equal (a merged state: ``msmoe``'s
        ``Alignment.merged``).

        ``groups``: for each block's expert layer (``"blocks.{i}.moe.experts"``, the
        :class:`~ridgeline.core.ExpertSymmetry` names), its groups as lists of experts that
        partition 0 .. E-1 (or ``msmoe``'s ``{leader: members}``); every block must have the same
        number E' of groups. The result has E' experts per block, one per group in the order of
        the groups' smallest members (that expert's copy), and keeps the router's R routes, each
        dispatched to its expert's group: ``dispatch'`` (E', R) = A @ ``dispatch`` with A the
        (E', E) group indicator (``dispatch`` the identity for a plain model). An expert's gate
        is then the sum of its members' gates, exactly the merged model's output
        (``tests/plugins/models/test_smoe_compress.py``). With E' = R (no group merges anything)
        the table is the identity and is left out: a plain model. Raises :class:`ConfigError`
        for groups that are not a partition, differ in number between blocks, or hold experts
        that are not equal (merge first)."""
        o, h = self.options, self.options["expert_width"]
        layers = [f"blocks.{i}.moe.experts" for i in range(o["blocks"])]
        unknown = sorted(set(groups) - set(layers))
        if unknown:
            raise ConfigError(f"smoe_mlp compress: no expert layer {unknown[0]!r}; the layers are {layers}")
        missing = [name for name in layers if name not in groups]
        if missing:
            raise ConfigError(f"smoe_mlp compress: no groups for expert layer {missing[0]!r} (give every "
                              f"layer's groups: {layers})")
        partitions = {name: _partition(name, groups[name], o["experts"]) for name in layers}
        counts = [len(members) for members in partitions.values()]
        if len(set(counts)) != 1:
            raise ConfigError(f"smoe_mlp compress: every block needs the same number of groups, got {counts}")
        out = dict(state)
        for name, members in partitions.items():
            p = name.removesuffix(".experts")
            for group in members:
                for expert in group[1:]:
                    if not all(torch.equal(a, b) for a, b in zip(_expert(state, p, group[0], h),
                                                                _expert(state, p, expert, h))):
                        raise ConfigError(
                            f"smoe_mlp compress: in {name!r}, expert {expert} differs from expert {group[0]} "
                            "of its group; compress keeps one copy per group, so a group's experts must be "
                            "equal: merge them first (msmoe's Alignment.merged)")
            first = torch.tensor([g[0] for g in members], device=state[f"{p}.w_in"].device)
            units = (first[:, None] * h + torch.arange(h, device=first.device)).reshape(-1)
            out[f"{p}.w_in"] = state[f"{p}.w_in"][units].clone()
            out[f"{p}.b_in"] = state[f"{p}.b_in"][units].clone()
            out[f"{p}.w_out"] = state[f"{p}.w_out"][:, units].clone()
            out[f"{p}.b_out"] = state[f"{p}.b_out"][first].clone()
            like = state[f"{p}.b_out"]
            indicator = torch.zeros(len(members), o["experts"], dtype=like.dtype, device=like.device)
            for g, group in enumerate(members):
                indicator[g, group] = 1
            old = state.get(f"{p}.dispatch")
            out[f"{p}.dispatch"] = indicator if old is None else indicator @ old.to(indicator)
        smaller = SMoEMLPModel(self.input_shape, self.num_classes,
                               **{**o, "experts": counts[0], "routes": self.routes})
        order = smaller.init_state(0)
        return smaller, {key: out[key] for key in order}
