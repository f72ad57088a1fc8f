"""Which module produces a permutation group's units, and how to observe them.

A module ``m`` is a *producer* of group ``g`` when
the spec has ``AxisRef(f"{m}.weight", 0)`` in ``g``: the module's output channels are the
group's units (with ``stride`` s, each unit is s consecutive channels, e.g. an attention head,
and unit similarities average the channel similarities position by position). That covers
Linear and Conv output rows, BatchNorm / LayerNorm / GroupNorm affine parameters, and every
block that writes into a residual stream (several producers per group). The unit axis of the
output is the last one for ``nn.Linear`` and ``nn.LayerNorm`` and axis 1 for convolutions and
BatchNorm / GroupNorm / InstanceNorm; other module types are not hookable. A group without a
hookable producer raises :class:`~ridgeline.core.errors.SpecError` naming the group: there is
no silent fallback to weight statistics.

Without a spec, :func:`module_producers` makes every hookable module with an affine weight a
producer of its own output units (REPAIR). :func:`hooked` calls a function on every producer's
output during a forward pass; :func:`unit_samples` turns such an output into (samples, units).
Activation statistics (:mod:`ridgeline.core.numerics.activations`) and the units after the
nonlinearity (:mod:`ridgeline.core.numerics.nonlinearities`) are built on these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import attrs
import torch
from torch import nn

from ridgeline.core.errors import SpecError
from ridgeline.core.symmetry.spec import PermutationSpec

_LAST_AXIS = (nn.Linear, nn.LayerNorm)
_CHANNEL_AXIS = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.GroupNorm,
                 nn.modules.instancenorm._InstanceNorm)


@attrs.frozen
class Producer:
    """Module ``module`` writes units ``offset .. offset + size * stride`` of ``group`` on
    ``unit_axis``, each unit ``stride`` consecutive channels (an attention head's dimensions)."""

    module: str
    group: str
    unit_axis: int
    offset: int
    size: int
    stride: int = 1


def producers(module: nn.Module, spec: PermutationSpec) -> dict[str, list[Producer]]:
    """Every group's producers, in module (forward) order; :class:`SpecError` for a group
    that has none."""
    modules = dict(module.named_modules())
    found: dict[str, list[Producer]] = {g: [] for g in spec.groups}
    order = {name: i for i, name in enumerate(modules)}
    for group, refs in spec.axes.items():
        for ref in refs:
            name, _, leaf = ref.key.rpartition(".")
            if leaf != "weight" or ref.axis != 0 or name not in modules:
                continue
            sub = modules[name]
            if isinstance(sub, _LAST_AXIS):
                axis = -1
            elif isinstance(sub, _CHANNEL_AXIS):
                axis = 1
            else:
                continue
            found[group].append(
                Producer(name, group, axis, ref.offset, spec.groups[group], ref.stride))
        found[group].sort(key=lambda p: order[p.module])
    missing = [g for g, ps in found.items() if not ps]
    if missing:
        raise SpecError(
            f"permutation group(s) {missing} have no hookable producer (a Linear, Conv or norm "
            "module whose weight has axis 0 in the group), so their activations cannot be "
            "observed; use a weight-based aligner (weight_matching, ot_fusion with on='weights')"
        )
    return found


def unit_samples(output: torch.Tensor, producer: Producer) -> torch.Tensor:
    """A producer's output as (samples, units): every other axis becomes samples."""
    out = torch.movedim(output, producer.unit_axis, -1)
    width = producer.size * producer.stride
    return out.narrow(-1, producer.offset, width).reshape(-1, width)


@contextlib.contextmanager
def hooked(module: nn.Module, plist: Sequence[Producer],
           callback: Callable[[Producer, torch.Tensor], torch.Tensor | None]) -> Iterator[None]:
    """Call ``callback(producer, output)`` after every producer's forward; a tensor it returns
    replaces the output. Hooks are removed on exit."""
    modules = dict(module.named_modules())
    handles = []
    for producer in plist:
        def hook(_m, _inputs, output, producer=producer):
            return callback(producer, output)
        handles.append(modules[producer.module].register_forward_hook(hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def module_producers(module: nn.Module) -> list[Producer]:
    """Every hookable module with an affine weight, as its own group of all its output units
    (used without a spec, e.g. by REPAIR), in module order."""
    out = []
    for name, sub in module.named_modules():
        if getattr(sub, "weight", None) is None:
            continue
        if isinstance(sub, nn.Linear):
            out.append(Producer(name, name, -1, 0, sub.out_features))
        elif isinstance(sub, nn.LayerNorm) and len(sub.normalized_shape) == 1:
            out.append(Producer(name, name, -1, 0, sub.normalized_shape[0]))
        elif isinstance(sub, _CHANNEL_AXIS):
            out.append(Producer(name, name, 1, 0, int(sub.weight.shape[0])))
    return out
