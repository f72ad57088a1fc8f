"""Fitting the free control states of a curve (Garipov et al., NeurIPS 2018, Sec. 3.2).

The objective is E_{t ~ U(0, 1)} L(phi_theta(t)): each optimisation step draws a fresh t (and,
for a star, a fresh model) and one mini-batch of the training split, and takes a gradient step
on the free parameters only; the endpoints stay fixed. Any model works: phi(t) is a weighted
sum of state dicts evaluated through ``torch.func.functional_call``, so no curve-specific
layers are needed.

BatchNorm is handled as Garipov et al. do: during fitting the network runs in train mode, so
each point uses its own batch statistics; the running statistics of a path point mean nothing
and must be re-estimated before it is evaluated (``Evaluator.reset_batchnorm``: the
``bn_reset`` correction or the evaluator's ``bn_split``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Literal

import attrs
import torch

from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.evaluator import Evaluator, has_batchnorm
from ridgeline.core.interfaces.path import Path
from ridgeline.core.state import State, combine, lerp
from ridgeline.core.validation import checked


@attrs.frozen
class FitSettings:
    """How to fit: ``steps`` Adam (or SGD) steps of ``batch_size`` examples of ``split``."""

    scope: ClassVar[str] = "fit"
    steps: int = attrs.field(default=500, validator=checked(int, at_least=0))
    lr: float = attrs.field(default=1e-3, validator=checked(float, above=0))
    batch_size: int = attrs.field(default=128, validator=checked(int, at_least=1))
    seed: int = attrs.field(default=0, validator=checked(int))
    split: str = attrs.field(default="train", validator=checked(str))
    optimizer: Literal["adam", "sgd"] = attrs.field(default="adam", validator=checked(Literal["adam", "sgd"]))
    momentum: float = attrs.field(default=0.9, validator=checked(float, at_least=0, below=1))
    weight_decay: float = attrs.field(default=0.0, validator=checked(float, at_least=0))

    @classmethod
    def split_options(cls, path: str, options: dict[str, Any], own: Sequence[str]) -> FitSettings:
        """The fit settings among a path's ``options``; anything neither a fit setting nor in
        ``own`` (the path's other options) is an error naming the allowed options, and a
        setting of the wrong type or out of range one naming the path and the setting."""
        fields = [f.name for f in attrs.fields(cls)]
        unknown = sorted(set(options) - set(fields) - set(own))
        if unknown:
            raise ConfigError(f"path {path!r} has no option(s) {unknown}; allowed: {sorted([*own, *fields])}")
        try:
            return cls(**{k: v for k, v in options.items() if k in fields})
        except ConfigError as error:
            raise ConfigError(f"path {path!r}: {error}") from None


@contextlib.contextmanager
def train_mode(evaluator: Evaluator) -> Iterator[None]:
    """Run the evaluator's module in train mode (batch statistics) and restore eval mode."""
    evaluator.module.train()
    try:
        yield
    finally:
        evaluator.module.eval()


def _batches(evaluator: Evaluator, settings: FitSettings, generator: torch.Generator):
    while True:
        yield from evaluator.dataset.batches(settings.split, settings.batch_size, shuffle=True,
                                             generator=generator, device=evaluator.device)


def fit_free_states(evaluator: Evaluator, free: list[State],
                    sample_point: Callable[[list[State], torch.Generator], State],
                    settings: FitSettings) -> tuple[list[State], dict[str, Any]]:
    """Minimise the expected loss of ``sample_point(free, generator)`` over the parameters of
    the ``free`` states; returns the fitted (detached) states and a report.

    ``sample_point`` draws the random path point (a fresh t per call) and must build it
    differentiably from ``free``. Only the module's parameters are trained; buffers stay as given.
    A tied tensor is one leaf, under its canonical name (``named_parameters`` lists each tensor
    once, and the evaluator reads a tied tensor from that name); its other names in the fitted
    states take the fitted value (``evaluator.ties``).
    """
    keys = [name for name, _ in evaluator.module.named_parameters()]
    leaves = [{k: (v.detach().clone().to(evaluator.device).requires_grad_(True) if k in keys
                   else v.to(evaluator.device)) for k, v in state.items()} for state in free]
    params = [state[k] for state in leaves for k in keys]
    if settings.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    else:
        optimizer = torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum,
                                    weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(settings.seed)
    batches = _batches(evaluator, settings, generator)
    losses: list[float] = []
    with train_mode(evaluator):
        for _ in range(settings.steps):
            x, y = next(batches)
            loss = evaluator.loss(sample_point(leaves, generator), x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    window = max(1, len(losses) // 10)
    report = {
        "steps": settings.steps, "lr": settings.lr, "batch_size": settings.batch_size,
        "seed": settings.seed, "optimizer": settings.optimizer,
        "first_loss": sum(losses[:window]) / window if losses else float("nan"),
        "last_loss": sum(losses[-window:]) / window if losses else float("nan"),
        "batchnorm": has_batchnorm(evaluator.module),
    }
    fitted = [evaluator.ties.retie({k: v.detach() for k, v in state.items()})  # on the fit's device
              for state in leaves]
    return fitted, report


class FittedCurve(Path):
    """A curve from endpoint A through free control states to endpoint B, fitted by
    :func:`fit_free_states`. Subclasses give the coefficients; the free controls start on the
    straight line at :meth:`initial_positions` (the curve then equals the line), or at the
    states given as ``controls``."""

    trainable = True
    own_options: tuple[str, ...] = ("controls",)
    settings_class: ClassVar[type] = FitSettings
    """The fit settings it takes as options (``ridgeline describe`` lists them)."""

    def __init__(self, endpoints: Sequence[State], **options: Any) -> None:
        super().__init__(endpoints, **options)
        if len(self.endpoints) != 2:
            raise ConfigError(f"path {self.name!r} joins two models, got {len(self.endpoints)}; "
                              "use a model set of two (or 'star' for a centre joined to N models)")
        self.settings = FitSettings.split_options(self.name, options, self.own_options)
        given = options.get("controls")
        a, b = self.endpoints[0], self.endpoints[-1]
        if given is not None:
            self.free = [dict(s) for s in given]
        else:
            self.free = [lerp(a, b, s) for s in self.initial_positions()]
        if len(self.free) != self.free_count():
            raise ConfigError(f"path {self.name!r} needs {self.free_count()} free control states, "
                              f"got {len(self.free)}")
        self.fit_report: dict[str, Any] | None = None

    def free_count(self) -> int:
        return len(self.initial_positions())

    def initial_positions(self) -> list[float]:
        """Where on the line A -> B the free controls start (values of t)."""
        raise NotImplementedError

    @property
    def controls(self) -> list[State]:
        return [self.endpoints[0], *self.free, self.endpoints[-1]]

    def fitted(self) -> list[State]:
        return list(self.free)

    def restore(self, states: list[State]) -> None:
        if len(states) != self.free_count():
            raise ConfigError(f"path {self.name!r} has {self.free_count()} free states, "
                              f"{len(states)} were stored")
        self.free = [dict(s) for s in states]

    def fit(self, evaluator: Evaluator) -> dict[str, Any]:
        a, b = self.endpoints[0], self.endpoints[-1]
        a = {k: v.to(evaluator.device) for k, v in a.items()}
        b = {k: v.to(evaluator.device) for k, v in b.items()}

        def sample_point(free: list[State], generator: torch.Generator) -> State:
            t = float(torch.rand((), generator=generator))
            return combine([a, *free, b], self.coefficients(t).tolist())

        self.free, report = fit_free_states(evaluator, self.free, sample_point, self.settings)
        self.fit_report = report
        return dict(report)
