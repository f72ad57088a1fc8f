"""Derive a network's PermutationSpec from its traced graph, and prove it before returning it.

``derive_spec(module, example_input)`` traces ``module`` with ``torch.fx`` (timm's leaf-module
conventions: modules timm marks as untraceable stay whole), runs the graph once on the example
while labelling every tensor axis (:mod:`ridgeline.core.symmetry.walker`, with the rules of
:mod:`ridgeline.core.symmetry.rules`), and turns the resulting union-find classes
(:mod:`ridgeline.core.symmetry.labels`) into permutation groups:

- a group starts at the output axis of a Linear or conv and follows it through activations,
  dropout, normalisation, pooling, flatten (a channel becomes a block of features), concatenation
  (a block of the joined axis), elementwise products (squeeze-excitation, layer scale) and
  residual additions, which tie both sides into one residual-stream group; class tokens and
  position embeddings are added to the stream and join it;
- grouped and depthwise convolutions tie input and output blocks; GroupNorm permits only whole
  groups; timm's fused-qkv attention gets head groups with nested within-head groups;
- anything the walker does not understand, and the network output, freezes the groups it touches;
  frozen groups are reported with their reason and size (coverage), never acted on.

Tied tensors (one tensor under several names: a shared block called from several places, tied
embeddings) are one tensor here: every use of any of its names is recorded under its canonical name
(:class:`_TiedUnions`), so the same axis used twice ties the groups of every use, and a use where
the axis must stay fixed freezes them. The spec refers to canonical names and records the aliases
(``PermutationSpec.ties``).

The spec is then checked (:meth:`PermutationSpec.check`: random permutations of every group must
leave the outputs unchanged in eval mode); a failing spec raises :class:`SpecError`.
"""

from __future__ import annotations

from collections import defaultdict

import attrs
import torch
from torch import fx, nn

from ridgeline.core.errors import SpecError
from ridgeline.core.state import Ties
from ridgeline.core.symmetry import layer_rules, op_rules, rules
from ridgeline.core.symmetry.labels import Unions
from ridgeline.core.symmetry.spec import AxisRef, PermutationSpec
from ridgeline.core.symmetry.walker import Walker

RULE_MODULES = (layer_rules, op_rules)  # importing them fills the tables in ``rules``

# timm marks NormFreeBlock untraceable because fx drops an in-place ``mul_`` from the data flow;
# the walker runs the graph for real, so the in-place op still happens and is labelled.
_TRACE_THROUGH = {"NormFreeBlock"}


def _timm_conventions() -> tuple[tuple[type, ...], tuple]:
    try:
        from timm.layers import get_notrace_functions, get_notrace_modules
    except ImportError:  # timm is optional for tracing plain PyTorch models
        return (), ()
    return tuple(get_notrace_modules()), tuple(get_notrace_functions())


class _Tracer(fx.Tracer):
    """fx tracer that keeps layers with a labelling rule whole and remembers where it failed."""

    def __init__(self) -> None:
        self._timm_leaves, functions = _timm_conventions()
        super().__init__(autowrap_functions=functions)
        self.failed_at: tuple[str, str] | None = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        # Linear/conv/BatchNorm subclasses (weight-standardised convs, timm's BatchNormAct2d) keep
        # the base class's axes; norms that override forward (timm's LayerNorm2d) are traced.
        if rules.keeps_whole(m):
            return True
        if type(m).__name__ in _TRACE_THROUGH:
            return False
        return isinstance(m, self._timm_leaves) or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_at is None:
                self.failed_at = (self.path_of_module(m) or "<root>", type(m).__name__)
            raise


def trace(module: nn.Module) -> fx.GraphModule:
    """``module``'s fx graph; :class:`SpecError` names the submodule whose forward broke tracing."""
    tracer = _Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as error:
        where, kind = tracer.failed_at or ("<root>", type(module).__name__)
        raise SpecError(
            f"torch.fx cannot trace module {where!r} ({kind}) of {type(module).__name__}: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}. "
            "Give the model plugin a hand-written spec, or make that module traceable "
            "(timm.layers.register_notrace_module keeps it whole; it is then frozen)."
        ) from None
    return fx.GraphModule(module, graph)


def derive_spec(module: nn.Module, example_input: torch.Tensor, *, seeds: int = 3,
                check: bool = True) -> PermutationSpec:
    """The permutation symmetries of ``module``, derived from its graph and checked.

    ``example_input`` is one batch the module accepts (the walker uses its first example; the
    check uses all of it). Raises :class:`SpecError` if the module cannot be traced (naming the
    module) or if the derived spec fails its check (it is never returned silently).
    """
    was_training = module.training
    module.eval()
    ties = Ties.of(module)
    try:
        graph_module = trace(module)
        unions = _TiedUnions(ties)
        shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        walker = Walker(graph_module, unions, shapes)
        with torch.no_grad():
            walker.run(example_input[:1].clone())
    finally:
        module.train(was_training)
    spec = _assemble(unions)
    if ties:
        spec = attrs.evolve(spec, ties=ties)
    if check:
        result = spec.check(module, example_input, seeds=seeds, state=generic_state(module))
        if not result.passed:
            why = f": {result.note}" if result.note else ""
            raise SpecError(
                f"the spec derived for {type(module).__name__} changes the network's outputs "
                f"(worst error {result.worst_ratio:.3g}x the tolerance over {seeds} random "
                f"permutations{why}): an op was labelled wrongly; please report it with the model"
            )
    return spec


class _TiedUnions(Unions):
    """The union-find, with every name of a tied tensor recorded as its canonical name: uses of
    one tensor under two names are then uses of one tensor (tied when the layouts agree, frozen
    when one of them must stay fixed)."""

    def __init__(self, ties: Ties) -> None:
        super().__init__()
        self.ties = ties

    def add_ref(self, var, key, *args, **kwargs) -> None:
        super().add_ref(var, self.ties.canonical(key), *args, **kwargs)


def generic_state(module: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """``module``'s state with every floating tensor perturbed (running variances scaled by
    U(0.5, 1.5), the rest plus Gaussian noise of a tenth of its spread), so that no layer is
    degenerate: zero-initialised heads, layer scales or last BatchNorms would make a spec check
    pass whatever the spec. Every name of a tied tensor gets the same perturbed tensor."""
    generator = torch.Generator().manual_seed(seed)
    aliases = Ties.of(module).aliases
    state = {}
    for key, tensor in module.state_dict().items():
        if key in aliases:
            continue
        tensor = tensor.detach()
        if tensor.is_floating_point():
            noise = torch.rand(tensor.shape, generator=generator) if key.endswith("running_var") \
                else torch.randn(tensor.shape, generator=generator)
            if key.endswith("running_var"):
                tensor = tensor * (0.5 + noise.to(tensor))
            else:
                spread = float(tensor.std()) if tensor.numel() > 1 else 0.0
                tensor = tensor + noise.to(tensor) * 0.1 * (spread if spread > 0 else 0.1)
        state[key] = tensor
    return {key: state[aliases.get(key, key)] for key in module.state_dict()}


def _assemble(unions: Unions) -> PermutationSpec:
    """Turn union-find classes holding hidden units into named groups with their axes."""
    members: dict[int, list[int]] = defaultdict(list)
    for var in range(len(unions.vars)):
        members[unions.find(var)].append(var)
    refs: dict[int, list] = defaultdict(list)
    for ref in unions.refs:
        refs[unions.find(ref.var)].append(ref)
    classes = sorted((min(v for v in vs if unions.vars[v].unit), root)
                     for root, vs in members.items() if any(unions.vars[v].unit for v in vs))
    names: dict[int, str] = {}
    groups, axes, frozen, frozen_sizes, unit_sizes, nested = {}, {}, {}, {}, {}, {}
    for first, root in classes:
        first_var = unions.vars[first]
        name = _unique(first_var.origin or "input", names.values())
        names[root] = name
        units, channels = unions.units[root], first_var.size
        reason = unions.frozen.get(root)
        parent = unions.find(first_var.parent) if first_var.parent is not None else None
        if reason is None and parent is not None and names.get(parent) not in groups:
            reason = f"its parent group {names.get(parent)!r} is frozen"
        if reason is None and units == 1:
            reason = "only one block of units is free to move (grouped layers around it)"
        if reason is not None:
            units_in_class = sum(1 for v in members[root] if unions.vars[v].unit)
            if reason.startswith("network output") and units_in_class == 1:
                continue  # the output layer: not a hidden unit
            frozen[name], frozen_sizes[name] = reason, channels
            continue
        group_refs = {}
        for ref in refs[root]:
            block = unions.vars[ref.var].size // units
            axis_ref = AxisRef(ref.key, ref.axis, ref.offset, ref.stride * block)
            group_refs[axis_ref] = None
        groups[name], axes[name] = units, tuple(group_refs)
        if channels != units and parent is None:
            unit_sizes[name] = channels
        if parent is not None:
            nested[name] = names[parent]
    return PermutationSpec(groups, axes, frozen=frozen, frozen_sizes=frozen_sizes,
                           unit_sizes=unit_sizes, nested=nested)


def _unique(name: str, taken) -> str:
    taken = set(taken)
    if name not in taken:
        return name
    i = 2
    while f"{name}#{i}" in taken:
        i += 1
    return f"{name}#{i}"
