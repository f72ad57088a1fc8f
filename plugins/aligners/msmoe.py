"""``msmoe``: M-SMoE expert merging (Li et al., "Merge, Then Compress: Demystify Efficient SMoE with
Hints from Its Routing Policy", ICLR 2024, Sec. 3): the merge step, intra-model.

For every mixture-of-experts layer (:class:`~ridgeline.core.ExpertSymmetry` of the model's
symmetries), on ``samples`` examples of the context's split:

1. **routing statistics**: the router's logits and each expert's activation frequency f_e, the
   fraction of inputs whose top-k holds e;
2. **dominant experts**: the ``experts`` most frequently used (default half of them) lead one group
   each; every other expert joins the dominant expert whose router-logit column is most similar
   (cosine over the calibration inputs: experts the router treats alike);
3. **alignment** (``align``): each member's hidden units are permuted onto its dominant expert's
   (one linear assignment of the units' weight inner products, Git Re-Basin weight matching inside
   the expert);
4. **merging**: each group becomes one expert, the average of its members weighted by their
   frequencies (``weighting = "frequency"``; ``"uniform"`` is plain averaging; ``"dominant"`` keeps
   the dominant expert alone, i.e. drops the others).

The router is kept: an input still picks its top-k experts by the original logits, and every member
of a group now holds the group's merged expert, so the merged network is the original architecture
with ``experts`` distinct experts per layer ("redirect to the merged expert"). ``parameters_after``
(in the diagnostics, with each layer's ``groups``) is the parameter count of that network with one
copy per group; ``smoe_mlp``'s ``compress(merged, groups)`` builds it as a smaller model (one expert
per group, the router's routes dispatched to their groups) with the same outputs, whose counted
parameters are this figure. The compression step of the paper (low-rank and sparse decomposition)
is not part of this entry. A model whose router scores more routes than it has experts (a
compressed ``smoe_mlp``) is refused: merge the uncompressed one.

Registry kind: an aligner that merges (``merges = True``, ``uses_symmetries = True``). M-SMoE is
intra-model, the seam is a pair: ``align(reference, other)`` returns the expert-aware weight
matching of ``other`` onto ``reference`` as ``perms`` (so a pipeline's paths are measured as usual)
and, as ``merged``, the *reference* with its experts merged; the pipeline records the merged
network's loss and accuracy. To compress one model, call ``align(state, state, symmetry, context)``
(the permutations are then the identity). On a model without experts it warns and merges nothing.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any, Literal, get_args

import torch
from torch.nn import functional as F

from ridgeline.core import (
    AlignContext,
    Aligner,
    Alignment,
    ConfigError,
    DataError,
    Evaluator,
    ExpertSymmetry,
    State,
    Symmetry,
    SymmetryProduct,
)
from ridgeline.core.numerics import Producer, assignment, hooked, unit_samples
from ridgeline.plugins.aligners.weight_matching import Order, best_weight_matching, check_sweep_options

Weighting = Literal["frequency", "uniform", "dominant"]
WEIGHTINGS = get_args(Weighting)


def expert_layers(symmetry: Symmetry) -> list[ExpertSymmetry]:
    """The mixture-of-experts layers a symmetry declares."""
    if isinstance(symmetry, ExpertSymmetry):
        return [symmetry]
    if isinstance(symmetry, SymmetryProduct):
        return symmetry.part(ExpertSymmetry)
    return []


def router_logits(evaluator: Evaluator, state: Mapping[str, torch.Tensor], layers: list[ExpertSymmetry],
                  split: str, samples: int) -> dict[str, torch.Tensor]:
    """Each layer's router logits (samples, E) on the first ``samples`` examples of ``split``."""
    producers = [Producer(layer.router[0].key.rpartition(".")[0], layer.name, -1, 0, layer.experts)
                 for layer in layers]
    modules = dict(evaluator.module.named_modules())
    missing = [p.module for p in producers if p.module not in modules]
    if missing:
        raise ConfigError(f"msmoe reads router logits from the module owning the router's weight; "
                          f"the network has no module {missing[0]!r}")
    available = evaluator.dataset.size(split)  # counted where the data is kept, nothing moved
    if available < 2:
        raise DataError(f"msmoe needs calibration inputs; split {split!r} has {available}")
    found: dict[str, list[torch.Tensor]] = {p.group: [] for p in producers}

    def capture(producer: Producer, output: torch.Tensor) -> None:
        if output.shape[producer.unit_axis] != producer.size:
            raise ConfigError(f"msmoe reads one router logit per expert from module {producer.module!r}, "
                              f"whose output has {output.shape[producer.unit_axis]} features for the "
                              f"{producer.size} experts of {producer.group!r} (a compressed model, whose "
                              "router scores more routes than it has experts? merge the uncompressed model)")
        found[producer.group].append(unit_samples(output.detach(), producer).double().cpu())

    with torch.no_grad(), hooked(evaluator.module, producers, capture):
        for inputs, _ in evaluator.batches(split, limit=samples):  # prepared batch by batch
            evaluator.logits(state, inputs)
    return {name: torch.cat(chunks) for name, chunks in found.items()}


def _slices(layer: ExpertSymmetry, state: Mapping[str, torch.Tensor], expert: int) -> list[torch.Tensor]:
    """Expert ``expert``'s parameters, one tensor per axis: its units as rows (H, ...) for each
    unit axis, then its own entry of each expert-indexed parameter."""
    h = layer.units
    out = [torch.movedim(state[r.key].narrow(r.axis, r.offset + expert * h, h), r.axis, 0)
           for r in layer.unit_axes]
    out += [state[r.key].select(r.axis, r.offset + expert) for r in layer.expert_params]
    return out


def _write(layer: ExpertSymmetry, state: State, expert: int, parts: list[torch.Tensor]) -> None:
    """Write ``parts`` (as :func:`_slices` returns them) into expert ``expert``'s slot of ``state``."""
    h = layer.units
    for ref, part in zip(layer.unit_axes, parts):
        state[ref.key].narrow(ref.axis, ref.offset + expert * h, h).copy_(torch.movedim(part, 0, ref.axis))
    for ref, part in zip(layer.expert_params, parts[len(layer.unit_axes):]):
        state[ref.key].select(ref.axis, ref.offset + expert).copy_(part)


def _align_units(layer: ExpertSymmetry, target: list[torch.Tensor], member: list[torch.Tensor]
                 ) -> list[torch.Tensor]:
    """``member``'s units permuted onto ``target``'s (one assignment of their inner products)."""
    units = len(layer.unit_axes)
    similarity = sum(t.reshape(layer.units, -1).double() @ m.reshape(layer.units, -1).double().T
                     for t, m in zip(target[:units], member[:units]))
    perm, _ = assignment(similarity)
    return [m[perm.to(m.device)] for m in member[:units]] + member[units:]


def group_experts(logits: torch.Tensor, top_k: int, keep: int) -> tuple[torch.Tensor, dict[int, list[int]]]:
    """Activation frequencies (E,) and groups {dominant expert: members (dominant first)}: the
    ``keep`` most used experts lead, each other joins the most similar leader (router-logit cosine)."""
    experts = logits.shape[1]
    chosen = logits.topk(top_k, dim=1).indices
    frequency = torch.zeros(experts, dtype=torch.float64).scatter_add_(
        0, chosen.reshape(-1), torch.ones(chosen.numel(), dtype=torch.float64)) / len(logits)
    order = sorted(range(experts), key=lambda e: (-float(frequency[e]), e))
    leaders = order[:keep]
    columns = F.normalize(logits.T, dim=1)
    groups = {leader: [leader] for leader in leaders}
    for expert in order[keep:]:
        similarity = columns[leaders] @ columns[expert]
        groups[leaders[int(similarity.argmax())]].append(expert)
    return frequency, groups


def merge_experts(state: Mapping[str, torch.Tensor], layers: list[ExpertSymmetry], evaluator: Evaluator, *,
                  keep: int | None = None, align: bool = True, weighting: str = "frequency",
                  split: str = "train", samples: int = 2048) -> tuple[State, dict[str, Any]]:
    """``state`` with every layer's experts merged into ``keep`` groups (default half) as the
    module docstring describes, and a report: groups, frequencies, parameter counts."""
    logits = router_logits(evaluator, state, layers, split, samples)
    merged = {k: v.detach().clone() for k, v in state.items()}
    before = sum(v.numel() for v in state.values() if v.is_floating_point())
    removed = 0
    report: dict[str, Any] = {"layers": {}}
    for layer in layers:
        target = layer.experts // 2 if keep is None else int(keep)
        if not 1 <= target <= layer.experts:
            raise ConfigError(f"msmoe experts must lie in [1, {layer.experts}] for {layer.name!r}, "
                              f"got {target}")
        frequency, groups = group_experts(logits[layer.name], layer.top_k, target)
        for members in groups.values():
            params = [_slices(layer, state, e) for e in members]
            if align:
                params = [params[0], *(_align_units(layer, params[0], p) for p in params[1:])]
            weights = {"frequency": frequency[members], "uniform": torch.ones(len(members)),
                       "dominant": torch.eye(len(members))[0]}[weighting].double()
            if float(weights.sum()) <= 0:  # a group nobody uses: plain average
                weights = torch.ones(len(members), dtype=torch.float64)
            weights = weights / weights.sum()
            average = [sum(float(w) * p[i].double() for w, p in zip(weights, params)).to(params[0][i].dtype)
                       for i in range(len(params[0]))]
            for expert in members:
                _write(layer, merged, expert, average)
        per_expert = sum(t.numel() for t in _slices(layer, state, 0))
        removed += (layer.experts - target) * per_expert
        report["layers"][layer.name] = {
            "frequency": [round(float(f), 4) for f in frequency],
            "groups": {str(leader): members for leader, members in groups.items()},
            "experts_before": layer.experts, "experts_after": target}
    report.update(parameters_before=before, parameters_after=before - removed)
    return merged, report


class MSMoEAligner(Aligner):
    """M-SMoE: merge each MoE layer's experts into groups led by the most used (Li et al. 2024).

    Options: ``experts`` (experts kept per layer, default half), ``align`` (permute members' units
    onto the dominant expert first), ``weighting`` (``frequency``, ``uniform`` or ``dominant``),
    ``samples`` (calibration examples of the context's split), and ``order``/``restarts``/
    ``max_iter`` of the expert-aware weight matching that aligns ``other`` to ``reference`` (as
    ``weight_matching``'s: by default the best of five sweep orders; the context's seed).
    """

    name = "msmoe"
    merges = True
    supports_nested = True
    uses_symmetries = True

    def __init__(self, *, experts: int | None = None, align: bool = True, weighting: Weighting = "frequency",
                 samples: int = 2048, order: Order = "best", restarts: int = 3,
                 max_iter: int = 100) -> None:
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"msmoe weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if experts is not None and int(experts) < 1:
            raise ConfigError(f"msmoe experts must be at least 1, got {experts}")
        check_sweep_options(self.name, order, restarts, max_iter)
        super().__init__(experts=experts, align=align, weighting=weighting, samples=samples, order=order,
                         restarts=restarts, max_iter=max_iter)
        self.keep = None if experts is None else int(experts)
        self.align_units, self.weighting, self.samples = bool(align), weighting, int(samples)
        self.order, self.restarts, self.max_iter = order, int(restarts), int(max_iter)

    def align(self, reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
              spec: Symmetry, context: AlignContext) -> Alignment:
        self.check_inputs(reference, other, spec)
        start = time.perf_counter()
        perms, history, matched = best_weight_matching(spec.permutations(), reference, other,
                                                       order=self.order, restarts=self.restarts,
                                                       max_iter=self.max_iter, seed=context.seed)
        layers = expert_layers(spec)
        merged, report = None, {}
        if not layers:
            warnings.warn("msmoe: the model declares no mixture-of-experts layer (ExpertSymmetry); "
                          "nothing is merged, only the weight-matching alignment is returned",
                          RuntimeWarning, stacklevel=2)
        elif context.evaluator is None:
            raise DataError("msmoe needs data for its routing statistics: pass an AlignContext with an "
                            "evaluator (the pipeline does)")
        else:
            merged, report = merge_experts(reference, layers, context.evaluator, keep=self.keep,
                                           align=self.align_units, weighting=self.weighting,
                                           split=context.split, samples=self.samples)
        report["weight_matching_runs"] = matched["runs"]  # every sweep order run (bench counts them)
        return Alignment(perms=perms, objective=history[-1] if history else float("nan"),
                         history=tuple(history), seconds=time.perf_counter() - start, merged=merged,
                         diagnostics=report)
