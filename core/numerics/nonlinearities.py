"""The units after the nonlinearity: the pointwise activation that follows a producer's output.

Git Re-Basin's own activation matching (Ainsworth, Hayase & Srinivasa, ICLR 2023; their MNIST
code) correlates the units *after* the nonlinearity, relu(W x + b), not the pre-activations
W x + b. A producer (:class:`~ridgeline.core.numerics.unit_producers.Producer`) is hooked on its
module's output; :func:`post_activations` finds, in the module's traced graph
(:func:`ridgeline.core.symmetry.derive.trace`), the pointwise nonlinearity its output goes
through, so that the hook can apply it to (a copy of) the captured output:

- the output's only consumer, past modules that are the identity at evaluation time
  (``nn.Identity``, dropout, drop-path, drop-block), must be an activation: a module
  (``nn.ReLU``, ``nn.GELU``, ``nn.SiLU``... applied as the module itself) or a function or
  tensor method (``torch.relu``, ``F.gelu(x, approximate="tanh")``, ``x.relu()``, with its
  other arguments if they are constants);
- a normalisation that applies its activation itself (timm's ``BatchNormAct2d``: a module with
  an ``act`` that is not the identity) already outputs the units after the nonlinearity;
- anything else (a residual addition, a reshape into attention heads, the network output, a
  producer called twice, a module fx cannot trace) has no post-activation: the caller falls
  back to the pre-activation and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs
import torch
from torch import fx, nn
from torch.nn import functional as F

from ridgeline.core.errors import SpecError
from ridgeline.core.numerics.unit_producers import Producer

ACTIVATION_MODULES = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Hardsigmoid, nn.Hardswish, nn.Tanh,
    nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.PReLU,
)
ACTIVATION_FUNCTIONS = {
    torch.relu, F.relu, F.relu6, F.gelu, F.silu, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
    F.hardswish, F.hardsigmoid, F.mish, F.leaky_relu, F.elu, F.celu, F.selu, F.softplus,
    F.hardtanh, torch.nn.functional.relu_, torch.relu_,
}
ACTIVATION_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_"}
# identity at evaluation time: the value reaching the activation is the producer's output
_PASS_THROUGH_MODULES = (nn.Identity, nn.modules.dropout._DropoutNd)
_PASS_THROUGH_NAMES = {"DropPath", "DropBlock2d"}
_PASS_THROUGH_FUNCTIONS = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout}


@attrs.frozen
class PostActivation:
    """The nonlinearity following a producer: ``apply(output)`` maps the producer's output to
    the units after it (on a copy: the network's own tensor is never touched); ``name`` says
    which it is (``relu``, ``GELU``, ``act inside BatchNormAct2d``)."""

    name: str
    apply: Callable[[torch.Tensor], torch.Tensor] = attrs.field(eq=False, repr=False)


def _passes_through(node: fx.Node, modules: Mapping[str, nn.Module]) -> bool:
    if node.op == "call_module":
        module = modules[node.target]
        return isinstance(module, _PASS_THROUGH_MODULES) or type(module).__name__ in _PASS_THROUGH_NAMES
    if node.op == "call_function":
        return node.target in _PASS_THROUGH_FUNCTIONS
    return False


def _constant(value: object) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_constant(v) for v in value)
    return not isinstance(value, fx.Node)


def _activation_of(node: fx.Node, source: fx.Node, modules: Mapping[str, nn.Module]) -> PostActivation | None:
    """``node`` as a nonlinearity applied to ``source``'s value, or None."""
    if not node.args or node.args[0] is not source:
        return None
    rest, kwargs = node.args[1:], dict(node.kwargs)
    if not _constant(rest) or not _constant(tuple(kwargs.values())):
        return None
    kwargs.pop("inplace", None)
    if node.op == "call_module" and not rest and isinstance(modules[node.target], ACTIVATION_MODULES):
        module = modules[node.target]
        return PostActivation(type(module).__name__, lambda x: module(x.clone()))
    if node.op == "call_function" and node.target in ACTIVATION_FUNCTIONS:
        function = node.target
        return PostActivation(getattr(function, "__name__", str(function)).rstrip("_"),
                              lambda x: function(x.clone(), *rest, **kwargs))
    if node.op == "call_method" and node.target in ACTIVATION_METHODS:
        method = node.target.rstrip("_")
        return PostActivation(method, lambda x: getattr(x.clone(), method)(*rest, **kwargs))
    return None


def _follow(node: fx.Node, modules: Mapping[str, nn.Module]) -> PostActivation | None:
    """The activation ``node``'s value goes through, past identities, if it has only that use."""
    current = node
    while len(current.users) == 1:
        (user,) = current.users
        found = _activation_of(user, current, modules)
        if found is not None:
            return found
        if not _passes_through(user, modules) or user.args[:1] != (current,):
            return None
        current = user
    return None


def _own_activation(module: nn.Module) -> PostActivation | None:
    """A norm that applies its activation itself (timm's ``BatchNormAct2d``) outputs post-activations."""
    act = getattr(module, "act", None)
    if isinstance(act, nn.Module) and not isinstance(act, nn.Identity):
        return PostActivation(f"{type(act).__name__} inside {type(module).__name__}", lambda x: x)
    return None


def post_activations(module: nn.Module, plist: Sequence[Producer]) -> dict[Producer, PostActivation]:
    """The nonlinearity following each producer of ``plist`` whose output goes through one
    (see the module docstring); producers without one are left out, and so are all of them if
    ``module`` cannot be traced."""
    from ridgeline.core.symmetry.derive import trace

    modules = dict(module.named_modules())
    try:
        graph = trace(module).graph
    except SpecError:
        return {}
    calls: dict[str, list[fx.Node]] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls.setdefault(node.target, []).append(node)
    found = {}
    for producer in plist:
        own = _own_activation(modules[producer.module])
        nodes = calls.get(producer.module, [])
        post = own or (_follow(nodes[0], modules) if len(nodes) == 1 else None)
        if post is not None:
            found[producer] = post
    return found
