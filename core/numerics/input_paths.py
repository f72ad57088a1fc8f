"""Paths between two inputs of one fixed network (input-space mode connectivity).

Vrabel, Shem-Ur, Oz & Krueger (2024), "Input Space Mode Connectivity in Deep Neural Networks":
for a fixed network f and two inputs x_a, x_b to which f assigns the same class c, a path x(s),
s in [0, 1], from x_a to x_b, and along it the class loss L_c(x) = -log softmax(f(x))_c and the
confidence p_c(x) = softmax(f(x))_c. The linear path is x(s) = (1 - s) x_a + s x_b. A fitted curve
is Garipov et al.'s (NeurIPS 2018) curve moved from parameter space to input space: a polygonal
chain through ``bends`` free inputs, or a Bezier curve of degree ``bends + 1``, whose free
controls (started on the line, so an unfitted curve *is* the line) minimise
E_{s ~ U(0, 1)} L_c(x(s)), the endpoints fixed, with Adam on a fresh batch of ``samples`` values
of s per step. The barrier of a path is the chord form of L_c along s
(:func:`ridgeline.core.numerics.curves.barrier_summary`).

Only the inputs move: the network's state is fixed and never differentiated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch
from torch.nn import functional as F

from ridgeline.core.errors import ConfigError, DataError
from ridgeline.core.numerics.curves import bernstein, chain_coefficients

Logits = Callable[[torch.Tensor], torch.Tensor]
CURVES = ("polychain", "bezier")


def same_class_pairs(classes: torch.Tensor, count: int, seed: int) -> list[tuple[int, int]]:
    """``count`` distinct pairs (i, j), i != j, of indices with ``classes[i] == classes[j]``, drawn
    with a seeded generator: i uniformly among the indices whose class has another member, then j
    uniformly among the other members of i's class. Fewer when fewer exist; ``DataError`` when
    no class has two members."""
    classes = classes.detach().cpu()
    members = {int(c): torch.nonzero(classes == c).flatten().tolist() for c in classes.unique()}
    eligible = [i for group in members.values() if len(group) > 1 for i in group]
    if not eligible:
        raise DataError("no two inputs share a class, so there is no same-class pair to connect")
    available = sum(len(g) * (len(g) - 1) // 2 for g in members.values())
    generator = torch.Generator().manual_seed(seed)
    chosen: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    while len(chosen) < min(count, available):
        i = eligible[int(torch.randint(len(eligible), (), generator=generator))]
        group = [j for j in members[int(classes[i])] if j != i]
        j = group[int(torch.randint(len(group), (), generator=generator))]
        if (min(i, j), max(i, j)) not in seen:
            seen.add((min(i, j), max(i, j)))
            chosen.append((i, j))
    return chosen


def class_loss(logits: Logits, inputs: torch.Tensor,
               target: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per input: L_c = -log softmax(f(x))_c, the confidence softmax(f(x))_c, and whether c is the
    arg-max class (1.0 or 0.0), for a batch ``inputs``."""
    log_p = F.log_softmax(logits(inputs), dim=1)
    log_c = log_p[:, target]
    return -log_c, log_c.exp(), (log_p.argmax(dim=1) == target).to(log_p.dtype)


class InputCurve:
    """A curve from input ``x_a`` (s = 0) to ``x_b`` (s = 1): the line for ``kind="linear"``, a
    polygonal chain through ``bends`` free inputs, or a Bezier curve of degree ``bends + 1``."""

    def __init__(self, x_a: torch.Tensor, x_b: torch.Tensor, kind: str = "polychain", bends: int = 1) -> None:
        if kind not in ("linear", *CURVES):
            raise ConfigError(f"an input curve is 'linear', {' or '.join(map(repr, CURVES))}, got {kind!r}")
        if x_a.shape != x_b.shape:
            raise ConfigError(f"the two inputs differ in shape: {tuple(x_a.shape)} and {tuple(x_b.shape)}")
        if int(bends) < 1:
            raise ConfigError(f"an input curve needs at least one bend, got bends={bends}")
        self.kind, self.bends = kind, int(bends)
        self.x_a, self.x_b = x_a.detach(), x_b.detach()
        count = 0 if kind == "linear" else self.bends
        self.free = [torch.lerp(self.x_a, self.x_b, (i + 1) / (count + 1)) for i in range(count)]

    def coefficients(self, s: float) -> torch.Tensor:
        """c(s), one weight per control input (x_a, the free inputs, x_b)."""
        if self.kind == "linear":
            return torch.tensor([1.0 - s, s], dtype=torch.float64)
        if self.kind == "polychain":
            return chain_coefficients(s, self.bends + 2)
        return bernstein(s, self.bends + 1)

    def batch(self, ss: Sequence[float], free: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """x(s) for every s, stacked on a new first axis (differentiable in ``free`` when given)."""
        controls = torch.stack([self.x_a, *(self.free if free is None else free), self.x_b])
        weights = torch.stack([self.coefficients(float(s)) for s in ss]).to(controls)
        return torch.einsum("sc,c...->s...", weights, controls)

    def line(self, ss: Sequence[float]) -> torch.Tensor:
        """The straight line's points (1 - s) x_a + s x_b."""
        s = torch.tensor([float(v) for v in ss], dtype=self.x_a.dtype, device=self.x_a.device)
        shape = (-1,) + (1,) * self.x_a.dim()
        return self.x_a + s.view(shape) * (self.x_b - self.x_a)


@attrs.frozen
class InputFitSettings:
    """Adam on the free inputs: ``steps`` steps of ``samples`` values of s ~ U(0, 1) each."""

    steps: int = 300
    lr: float = 0.05
    samples: int = 16
    seed: int = 0


def fit_input_curve(logits: Logits, curve: InputCurve, target: int,
                    settings: InputFitSettings) -> dict[str, Any]:
    """Fit ``curve``'s free inputs in place by minimising E_s L_c(x(s)) (``target`` = c);
    returns a report (first and last tenth's mean loss). A linear curve has nothing to fit."""
    if not curve.free or settings.steps <= 0:
        return {"steps": 0}
    free = [x.clone().requires_grad_(True) for x in curve.free]
    optimizer = torch.optim.Adam(free, lr=settings.lr)
    generator = torch.Generator().manual_seed(settings.seed)
    losses = []
    for _ in range(settings.steps):
        ss = torch.rand(settings.samples, generator=generator, dtype=torch.float64).tolist()
        loss = class_loss(logits, curve.batch(ss, free), target)[0].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    curve.free = [x.detach() for x in free]
    window = max(1, len(losses) // 10)
    return {"steps": settings.steps, "first_loss": sum(losses[:window]) / window,
            "last_loss": sum(losses[-window:]) / window}
