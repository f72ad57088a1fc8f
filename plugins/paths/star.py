"""``star``: one centre linearly connected to N >= 3 models (Lin, Li, Wu, ICLR 2024).

The centre minimises the mean over models i and t ~ U(0, 1) of L((1 - t) theta_c + t theta_i)
(the star-shaped connectivity objective; a fresh i and t per batch, as in Garipov's curve
fitting). It starts at the mean of the models. Metrics run along each line centre -> model i
(:meth:`segments`); the path itself, as one curve, is the chain model 0 -> centre -> model N-1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from ridgeline.core import ConfigError, Evaluator, Path, State
from ridgeline.core.numerics import FitSettings, chain_coefficients, combine, fit_free_states, lerp
from ridgeline.plugins.paths.linear import LinearPath


class StarPath(Path):
    """A fitted centre and the N lines to the models. Options: ``centre`` (an initial state;
    default the models' mean) and fit settings as for ``bezier``."""

    name = "star"
    trainable = True
    settings_class: ClassVar[type] = FitSettings
    """The fit settings it takes as options (``ridgeline describe`` lists them)."""

    def __init__(self, endpoints: Sequence[State], **options: Any) -> None:
        super().__init__(endpoints, **options)
        if len(self.endpoints) < 3:
            raise ConfigError(f"path 'star' needs at least 3 models, got {len(self.endpoints)}")
        self.settings = FitSettings.split_options(self.name, options, ("centre",))
        given = options.get("centre")
        n = len(self.endpoints)
        self.centre = dict(given) if given is not None else combine(self.endpoints, [1.0 / n] * n)
        self.fit_report: dict[str, Any] | None = None

    @property
    def controls(self) -> list[State]:
        return [self.endpoints[0], self.centre, self.endpoints[-1]]

    def coefficients(self, t: float) -> torch.Tensor:
        return chain_coefficients(t, 3)

    def fitted(self) -> list[State]:
        return [self.centre]

    def restore(self, states: list[State]) -> None:
        (self.centre,) = (dict(s) for s in states)

    def fit(self, evaluator: Evaluator) -> dict[str, Any]:
        models = [{k: v.to(evaluator.device) for k, v in s.items()} for s in self.endpoints]

        def sample_point(free: list[State], generator: torch.Generator) -> State:
            i = int(torch.randint(len(models), (), generator=generator))
            t = float(torch.rand((), generator=generator))
            return lerp(free[0], models[i], t)

        (self.centre,), report = fit_free_states(evaluator, [self.centre], sample_point, self.settings)
        report["models"] = len(models)
        self.fit_report = report
        return dict(report)

    def segments(self) -> dict[str, Path]:
        """The lines centre (t = 0) -> model i (t = 1), labelled ``model<i>``."""
        return {f"model{i}": LinearPath([self.centre, model]) for i, model in enumerate(self.endpoints)}
