"""States: a network's parameters and buffers as a ``dict[str, Tensor]`` (a state dict).

States are values. Nothing here mutates its inputs. Arithmetic acts on floating-point
tensors; integer buffers (BatchNorm's ``num_batches_tracked``) are carried over from the
first state, since averaging a counter means nothing.

**Tied names.** A module may hold one tensor under several names: a submodule registered twice
(a shared block) or a parameter assigned to two modules (tied input and output embeddings).
``Module.state_dict()`` lists such a tensor under every name, and users' checkpoints hold them all.
:class:`Ties` records which names are one tensor, so that every operation keeps them equal
(:meth:`Ties.retie`), counts the tensor once (:meth:`Ties.drop`) and refuses a state whose tied
names disagree (:meth:`Ties.check`). Per-key arithmetic (:func:`combine`, :func:`lerp`,
:func:`subtract`) keeps equal names equal by itself.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence

import attrs
import torch
from torch import nn

from ridgeline.core.errors import NonFiniteStateError, StateMismatchError

State = dict[str, torch.Tensor]


def check_compatible(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                     names: tuple[str, str] = ("A", "B")) -> None:
    """Raise :class:`StateMismatchError` naming the first differing key or shape."""
    missing = sorted(set(a) - set(b))
    extra = sorted(set(b) - set(a))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{names[1]} lacks {', '.join(missing[:5])}")
        if extra:
            parts.append(f"{names[1]} has extra {', '.join(extra[:5])}")
        raise StateMismatchError(
            f"states {names[0]} and {names[1]} have different tensors: {'; '.join(parts)} "
            "(different architectures?)"
        )
    for key in a:
        if a[key].shape != b[key].shape:
            raise StateMismatchError(
                f"tensor {key!r} has shape {tuple(a[key].shape)} in {names[0]} but "
                f"{tuple(b[key].shape)} in {names[1]} (different architectures or widths?)"
            )


def non_finite(state: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """The number of NaN and inf values of every floating tensor that has any, by key."""
    counts = {}
    for key, tensor in state.items():
        if tensor.is_floating_point() or tensor.is_complex():
            count = int((~torch.isfinite(tensor)).sum())
            if count:
                counts[key] = count
    return counts


def check_finite(state: Mapping[str, torch.Tensor], name: str, needed_by: str = "") -> None:
    """Raise :class:`NonFiniteStateError` if ``state`` (called ``name``: a file, ``reference``)
    holds NaN or inf, naming each such tensor with its count (``needed_by``: who refuses it)."""
    counts = non_finite(state)
    if not counts:
        return
    listed = [f"{key!r} ({count} of {state[key].numel()})" for key, count in list(counts.items())[:3]]
    more = f" and {len(counts) - 3} more tensors" if len(counts) > 3 else ""
    who = f"{needed_by} needs finite weights" if needed_by else "finite weights are needed"
    raise NonFiniteStateError(
        f"{name} holds non-finite values (NaN or inf) in tensor {', '.join(listed)}{more}; {who}. "
        "A diverged training run? The identity aligner still measures (and flags) such a path."
    )


def combine(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | torch.Tensor) -> State:
    """sum_i weights[i] * states[i], key by key, on ``states[0]``'s devices; integer tensors
    come from ``states[0]``."""
    if len(states) != len(weights):
        raise ValueError(f"{len(states)} states but {len(weights)} weights")
    out: State = {}
    for key, first in states[0].items():
        if not first.is_floating_point():
            out[key] = first.clone()
            continue
        acc = first * weights[0]
        for state, w in zip(states[1:], weights[1:]):
            acc = acc + state[key].to(acc.device) * w  # a no-op unless states straddle devices
        out[key] = acc
    return out


def lerp(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], t: float) -> State:
    """(1 - t) a + t b."""
    return combine([a, b], [1.0 - t, t])


def subtract(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> State:
    """a - b over floating-point tensors (the displacement from b to a)."""
    return {k: a[k] - b[k].to(a[k].device) for k in a if a[k].is_floating_point()}


def clone(state: Mapping[str, torch.Tensor], device: torch.device | str | None = None) -> State:
    return {k: v.detach().clone().to(device) if device else v.detach().clone() for k, v in state.items()}


def to_device(state: Mapping[str, torch.Tensor], device: torch.device | str) -> State:
    return {k: v.to(device) for k, v in state.items()}


def distance(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Euclidean distance between the floating-point parts of two states."""
    return float(torch.sqrt(sum(((a[k] - b[k]).double() ** 2).sum() for k in a if a[k].is_floating_point())))


def module_groups(state: Mapping[str, torch.Tensor]) -> dict[str, list[str]]:
    """The state's floating-point keys grouped by module, in key order (input to output for
    modules registered in forward order).

    A layer is every tensor of one module (Adilova et al., ICLR 2024): the key prefix before
    the last dot, so ``hidden.0.weight`` and ``hidden.0.bias`` form layer ``hidden.0``.
    Integer buffers (BatchNorm's counter) are left out: they are never interpolated.
    """
    groups: dict[str, list[str]] = {}
    for key, value in state.items():
        if value.is_floating_point():
            groups.setdefault(key.rpartition(".")[0] or key, []).append(key)
    return groups


def fingerprint(states: Sequence[Mapping[str, torch.Tensor]]) -> str:
    """A SHA-256 of the states' names, dtypes, shapes and values (identifies a model set)."""
    digest = hashlib.sha256()
    for state in states:
        for key in sorted(state):
            tensor = state[key].detach().cpu().contiguous()
            digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16
                          else tensor.float().numpy().tobytes())
    return digest.hexdigest()


def _tie_groups(value: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    return {canonical: tuple(aliases) for canonical, aliases in value.items() if tuple(aliases)}


@attrs.frozen
class Ties:
    """The names of a state that are one tensor of the module (see the module docstring).

    ``groups``: canonical name -> its other names (*aliases*). The canonical name is the first in
    ``state_dict()`` order, which is also the name ``named_modules()``, ``named_parameters()`` and
    torch.fx give a shared tensor. An empty ``Ties()`` (a module without tied tensors) makes every
    method the identity.
    """

    groups: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_tie_groups)

    @classmethod
    def of(cls, module: nn.Module) -> Ties:
        """The tied names of ``module``'s state dict: parameters and buffers that are the same tensor
        (``named_parameters(remove_duplicate=False)``, ``named_buffers(remove_duplicate=False)``)."""
        order = {name: i for i, name in enumerate(module.state_dict(keep_vars=True))}
        names: dict[int, list[str]] = {}
        for name, tensor in itertools.chain(module.named_parameters(remove_duplicate=False),
                                            module.named_buffers(remove_duplicate=False)):
            if tensor is not None and name in order:
                names.setdefault(id(tensor), []).append(name)
        groups = [sorted(set(group), key=order.__getitem__) for group in names.values()]
        return cls({group[0]: group[1:] for group in sorted(groups, key=lambda g: order[g[0]])
                    if len(group) > 1})

    def __bool__(self) -> bool:
        return bool(self.groups)

    @property
    def aliases(self) -> dict[str, str]:
        """Every alias -> its canonical name."""
        return {alias: canonical for canonical, aliases in self.groups.items() for alias in aliases}

    def canonical(self, key: str) -> str:
        """The canonical name of ``key``'s tensor (``key`` itself unless it is an alias)."""
        return self.aliases.get(key, key)

    def drop(self, state: Mapping[str, torch.Tensor]) -> State:
        """``state`` with each tied tensor once, under the first of its names present (the
        canonical one when present): what ``torch.func.functional_call`` takes, and what a
        measurement over the tensors (a distance, a norm, a layer list) must count."""
        if not self.groups:
            return dict(state)
        extra = set()
        for canonical, aliases in self.groups.items():
            present = [name for name in (canonical, *aliases) if name in state]
            extra.update(present[1:])
        return {k: v for k, v in state.items() if k not in extra}

    def expand(self, state: Mapping[str, torch.Tensor]) -> State:
        """``state`` with every missing name of a tied tensor filled from a name present (a
        checkpoint that stores a tied tensor once, as Hugging Face's ``save_pretrained`` does)."""
        out = dict(state)
        for canonical, aliases in self.groups.items():
            names = (canonical, *aliases)
            present = next((name for name in names if name in state), None)
            if present is not None:
                for name in names:
                    out.setdefault(name, state[present])
        return out

    def retie(self, state: Mapping[str, torch.Tensor], keys: Iterable[str] | None = None) -> State:
        """``state`` with every alias present set to its canonical name's tensor (for the canonical
        names in ``keys``, default all): what an operation that acted on the canonical names
        (a permutation, a correction) does to make every name agree."""
        out = dict(state)
        chosen = None if keys is None else set(keys)
        for canonical, aliases in self.groups.items():
            if canonical in state and (chosen is None or canonical in chosen):
                for alias in aliases:
                    if alias in state:
                        out[alias] = state[canonical]
        return out

    def disagreements(self, state: Mapping[str, torch.Tensor]) -> list[tuple[str, str]]:
        """Pairs (canonical or first name present, another name) of one tensor that hold different
        values in ``state``."""
        found = []
        for canonical, aliases in self.groups.items():
            present = [name for name in (canonical, *aliases) if name in state]
            for name in present[1:]:
                a, b = state[present[0]], state[name]
                if a is not b and (a.shape != b.shape or a.dtype != b.dtype
                                   or not torch.equal(a, b.to(a.device))):
                    found.append((present[0], name))
        return found

    def check(self, state: Mapping[str, torch.Tensor], what: str = "the state") -> None:
        """Raise :class:`StateMismatchError` (one line naming the names) if tied names of
        ``state`` hold different values (a checkpoint edited by hand)."""
        found = self.disagreements(state)
        if found:
            first, other = found[0]
            more = f" (and {len(found) - 1} more tied pair{'s' * (len(found) > 2)})" if len(found) > 1 else ""
            raise StateMismatchError(
                f"{what}: {first!r} and {other!r} are one tensor in the model (tied) but hold "
                f"different values{more}; give every name of a tied tensor the same value, or store it "
                "under one name"
            )
