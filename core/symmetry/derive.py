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

import inspect

import attrs
import torch
from torch import fx, nn

from ridgeline.core.errors import ExampleInputError, SpecError
from ridgeline.core.state import Ties
from ridgeline.core.symmetry import layer_rules, op_rules, rules
from ridgeline.core.symmetry.assemble import assemble
from ridgeline.core.symmetry.labels import Unions
from ridgeline.core.symmetry.spec import PermutationSpec, SpecCheck
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
    """``module``'s fx graph for a call with one input, ``module(x)``: every other parameter of
    ``forward`` that has a default is traced at that default (``mask=None``, ``attn_mask=None``,
    ``is_causal=False``), as the call uses it, rather than as an input the graph would need.
    :class:`SpecError` names the submodule whose forward broke tracing."""
    tracer = _Tracer()
    try:
        graph = tracer.trace(module, concrete_args=_defaults(module))
    except Exception as error:
        where, kind = tracer.failed_at or ("<root>", type(module).__name__)
        raise SpecError(
            f"torch.fx cannot trace module {where!r} ({kind}) of {type(module).__name__}: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}. "
            "Give the model plugin a hand-written spec, or make that module traceable "
            "(timm.layers.register_notrace_module keeps it whole; it is then frozen)."
        ) from None
    return fx.GraphModule(module, graph)


def _defaults(module: nn.Module) -> dict[str, object]:
    """The parameters of ``module.forward`` after the first whose default is None or a scalar,
    with it (fx specialises those; a tuple default would become one graph input per entry)."""
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and (p.default is None or isinstance(p.default, (bool, int, float, str)))}


def derive_spec(module: nn.Module, example_input: torch.Tensor, *, seeds: int = 3,
                check: bool = True) -> PermutationSpec:
    """The permutation symmetries of ``module``, derived from its graph and checked.

    ``example_input`` is one batch the module accepts; the walker and the check use its first
    example (one is enough: every output entry of a perturbed network depends on every weight).
    Raises :class:`SpecError` if the module cannot be traced (naming the module) or if the
    derived spec fails its check (it is never returned silently).
    """
    spec, _ = derive_and_check(module, example_input, seeds=seeds if check else 0)
    return spec


def derive_and_check(module: nn.Module, example_input: torch.Tensor, *,
                     seeds: int = 3) -> tuple[PermutationSpec, SpecCheck | None]:
    """:func:`derive_spec` with the result of its check (None if ``seeds`` is 0: unchecked)."""
    _check_single_input(module, example_input)
    was_training = module.training
    module.eval()
    ties = Ties.of(module)
    example = example_input[:1].clone()
    try:
        graph_module = trace(module)
        unions = _TiedUnions(ties)
        shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        walker = Walker(graph_module, unions, shapes)
        with torch.no_grad():
            walker.run(example)
    except ExampleInputError as error:
        failure = f"{type(module).__name__} {error}"
        raise ExampleInputError(
            f"{failure}. If the input shape is wrong for this architecture, give one it takes; if "
            f"its forward wants something other than one tensor (a dict, several tensors), {_HOW_TO}",
            failure,
        ) from None
    finally:
        module.train(was_training)
    spec = assemble(unions)
    if ties:
        spec = attrs.evolve(spec, ties=ties)
    if not seeds:
        return spec, None
    result = spec.check(module, example, seeds=seeds, state=generic_state(module))
    if not result.passed:
        why = f": {result.note}" if result.note else ""
        raise SpecError(
            f"the spec derived for {type(module).__name__} changes the network's outputs "
            f"(worst error {result.worst_ratio:.3g}x the tolerance over {seeds} random "
            f"permutations{why}): an op was labelled wrongly; please report it with the model"
        )
    return spec, result


_HOW_TO = ("wrap the model in an nn.Module whose forward(x) takes one tensor and supplies the "
           "other inputs itself, and give derive_spec that module with one example batch (a Model "
           "plugin: return the wrapper from build() and the tensor from example_input())")


def _check_single_input(module: nn.Module, example_input: object) -> None:
    """Spec derivation feeds one example tensor: say how to give one to a model that wants more."""
    name = type(module).__name__
    if not isinstance(example_input, torch.Tensor):
        raise SpecError(f"the example input for {name} is a {type(example_input).__name__}, not one "
                        f"tensor: spec derivation feeds a single tensor batch; {_HOW_TO}")
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return
    required = [p.name for p in parameters if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if len(required) > 1:
        raise SpecError(f"{name}.forward needs {len(required)} inputs ({', '.join(required)}) but "
                        f"spec derivation feeds one example tensor; {_HOW_TO}")


_NOISE_PERIOD = 1_000_003  # prime: two rows of a tensor never get the same stretch of noise


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
    U(0.5, 1.5), the rest plus Gaussian noise of a tenth of its spread, a weight's spread being
    at least 1/sqrt(fan-in)), so that no layer is degenerate: zero-initialised heads, layer
    scales or last BatchNorms, or BEiT's head scaled by 0.001, would make a spec check pass
    whatever the spec. The noise is read from one stream of ``_NOISE_PERIOD`` samples, a
    prime, cycled over the tensors (cheaper than fresh samples for every entry of a large model,
    and no two rows of a tensor shorter than the period see the same noise). Every name of a tied
    tensor gets the same perturbed tensor."""
    generator = torch.Generator().manual_seed(seed)
    gauss = torch.randn(_NOISE_PERIOD, generator=generator)
    uniform = torch.rand(_NOISE_PERIOD, generator=generator)
    state, at = {}, 0
    aliases = Ties.of(module).aliases
    for key, tensor in module.state_dict().items():
        if key in aliases:
            continue
        tensor = tensor.detach()
        if tensor.is_floating_point():
            variance = key.endswith("running_var")
            noise = _cycled(uniform if variance else gauss, at, tensor.numel()).reshape(tensor.shape)
            at += tensor.numel()
            if variance:
                tensor = tensor * (0.5 + noise.to(tensor))
            else:
                spread = float(tensor.std()) if tensor.numel() > 1 else 0.0
                if tensor.dim() >= 2:  # a weight: at least the spread of a default init
                    spread = max(spread, (tensor.numel() // tensor.shape[0]) ** -0.5)
                tensor = torch.add(tensor, noise.to(tensor), alpha=0.1 * (spread if spread > 0 else 0.1))
        state[key] = tensor
    return {key: state[aliases.get(key, key)] for key in module.state_dict()}


def _cycled(stream: torch.Tensor, start: int, count: int) -> torch.Tensor:
    """``count`` samples of ``stream`` read cyclically from position ``start``."""
    start %= stream.numel()
    repeats = -(-(start + count) // stream.numel())
    return (stream.repeat(repeats) if repeats > 1 else stream)[start:start + count]
