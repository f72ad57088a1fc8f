"""Loss, gradient and Hessian-vector products of a state's parameters on a fixed data subset.

Shared by the second-order metrics (``taylor_barrier``, ``curvature``, ``gradient``). The loss
is the evaluator's differentiable mean cross-entropy (eval mode: BatchNorm uses the state's
running statistics, so L is a fixed function of the parameters), averaged over the first
``examples`` inputs of ``split`` in batches of the evaluator's ``batch_size``.

Hessian-vector products use double backpropagation (Pearlmutter 1994): H v = d/dtheta <grad L, v>,
exact and O(one backward pass). The top eigenvalue is found by power iteration on H v, which
converges to the eigenvalue of largest magnitude (it keeps its sign).

Autograd's H is the Hessian of the smooth piece the state lies on: on a ReLU network it ignores
the kinks (a unit switching on or off between two states), which bend the loss along a line
without showing in H. :meth:`LossSurface.second_differences` measures the bending itself, the
central second difference of the loss along a direction at several step sizes, in float64: where
it agrees with v^T H v at every step, the quadratic model holds; where it moves with the step,
it does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch

from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.numerics.vectors import Vector, dot, norm


def parameter_keys(evaluator: Evaluator) -> list[str]:
    """The keys of the module's trainable parameters (buffers are not differentiated)."""
    return [name for name, _ in evaluator.module.named_parameters()]


class LossSurface:
    """L(theta) on the first ``examples`` inputs of ``split`` (all when ``None``)."""

    def __init__(self, evaluator: Evaluator, split: str = "test", examples: int | None = None) -> None:
        self.evaluator = evaluator
        self.split = split
        self.examples = examples
        self.keys = parameter_keys(evaluator)

    def _chunks(self, dtype: torch.dtype | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        x, _ = self.evaluator.stored(self.split)  # held (on the device when it fits) for every pass
        n = len(x) if self.examples is None else min(self.examples, len(x))
        for xb, yb in self.evaluator.batches(self.split, limit=self.examples):  # each prepared as used
            if dtype is not None and xb.is_floating_point():
                xb = xb.to(dtype)
            yield xb, yb, len(xb) / n

    def _leaves(self, state: Mapping[str, torch.Tensor]) -> tuple[dict, Vector]:
        params = {k: state[k].detach().to(self.evaluator.device).requires_grad_(True) for k in self.keys}
        full = {k: v.to(self.evaluator.device) for k, v in state.items()}
        full.update(params)
        return full, params

    def value(self, state: Mapping[str, torch.Tensor], *, dtype: torch.dtype | None = None) -> float:
        """L(state), a mean over the examples; with ``dtype`` (e.g. ``torch.float64``) the state's
        floating tensors and the inputs are cast to it first, so the whole forward pass runs in it."""
        full = {k: v.to(self.evaluator.device) for k, v in state.items()}
        if dtype is not None:
            full = {k: v.to(dtype) if v.is_floating_point() else v for k, v in full.items()}
        with torch.no_grad():
            return float(sum(float(self.evaluator.loss(full, x, y)) * w for x, y, w in self._chunks(dtype)))

    def second_differences(self, state: Mapping[str, torch.Tensor], direction: Mapping[str, torch.Tensor],
                           steps: Sequence[float], *, dtype: torch.dtype = torch.float64) -> list[float]:
        """For each step h: [L(state + h v) - 2 L(state) + L(state - h v)] / h^2, the central second
        difference of the loss along v = ``direction`` (keys absent from it count as zero),
        evaluated in ``dtype`` (float64 by default: at h = 1e-4 the differences are ~1e-8 of L).

        For a smooth loss it tends to v^T H v as h -> 0 (error O(h^2)); for a quadratic it equals
        v^T H v at every h. With ``state`` the midpoint of a line and v = Delta its chord, h = 1/2
        gives 4 (L_A + L_B - 2 L_mid): -1/8 of it is the measured midpoint barrier."""
        centre = {k: v.to(self.evaluator.device) for k, v in state.items()}
        v = {k: direction[k].to(self.evaluator.device, dtype) for k in centre if k in direction}
        middle = self.value(centre, dtype=dtype)
        out = []
        for h in steps:
            plus = {k: (t.to(dtype) + h * v[k] if k in v else t) for k, t in centre.items()}
            minus = {k: (t.to(dtype) - h * v[k] if k in v else t) for k, t in centre.items()}
            ends = self.value(plus, dtype=dtype) + self.value(minus, dtype=dtype)
            out.append((ends - 2.0 * middle) / h ** 2)
        return out

    def gradient(self, state: Mapping[str, torch.Tensor]) -> Vector:
        """grad L(state) with respect to the parameters."""
        total = {k: torch.zeros_like(state[k], device=self.evaluator.device) for k in self.keys}
        for x, y, w in self._chunks():
            full, params = self._leaves(state)
            grads = torch.autograd.grad(self.evaluator.loss(full, x, y) * w, list(params.values()),
                                        allow_unused=True)
            for k, g in zip(params, grads):
                if g is not None:
                    total[k] += g
        return total

    def hvp(self, state: Mapping[str, torch.Tensor], vector: Mapping[str, torch.Tensor]) -> Vector:
        """H(state) v by double backprop; keys absent from ``vector`` count as zero."""
        total = {k: torch.zeros_like(state[k], device=self.evaluator.device) for k in self.keys}
        v = {k: vector[k].to(self.evaluator.device) for k in self.keys if k in vector}
        for x, y, w in self._chunks():
            full, params = self._leaves(state)
            grads = torch.autograd.grad(self.evaluator.loss(full, x, y) * w, list(params.values()),
                                        create_graph=True, allow_unused=True)
            inner = sum((g * v[k]).sum() for k, g in zip(params, grads) if g is not None and k in v)
            if not torch.is_tensor(inner) or not inner.requires_grad:
                continue  # the loss is linear in the directions asked for
            products = torch.autograd.grad(inner, list(params.values()), allow_unused=True)
            for k, hv in zip(params, products):
                if hv is not None:
                    total[k] += hv
        return total

    def quadratic_form(self, state: Mapping[str, torch.Tensor], vector: Mapping[str, torch.Tensor]) -> float:
        """v^T H(state) v."""
        return dot({k: vector[k] for k in self.keys if k in vector}, self.hvp(state, vector))

    def top_eigenvalue(self, state: Mapping[str, torch.Tensor], *, iters: int = 20,
                       tol: float = 1e-3, seed: int = 0) -> tuple[float, int]:
        """(largest-magnitude Hessian eigenvalue, iterations used) by power iteration,
        stopping when the Rayleigh quotient changes by less than ``tol`` (relative)."""
        generator = torch.Generator().manual_seed(seed)
        v = {k: torch.randn(state[k].shape, generator=generator, dtype=state[k].dtype) for k in self.keys}
        scale = norm(v)
        v = {k: t / scale for k, t in v.items()}
        eigenvalue = 0.0
        for i in range(1, iters + 1):
            hv = self.hvp(state, v)
            new = dot(v, hv)
            size = norm(hv)
            if size == 0.0:
                return 0.0, i
            v = {k: t.detach().cpu() / size for k, t in hv.items()}
            if i > 1 and abs(new - eigenvalue) <= tol * max(abs(new), 1e-12):
                return new, i
            eigenvalue = new
        return eigenvalue, iters
