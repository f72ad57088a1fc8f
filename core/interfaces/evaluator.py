"""Evaluator: loss and accuracy of a state on a data split, evaluated functionally.

The evaluator owns a private copy of the module's structure; states are passed to
``torch.func.functional_call`` so the user's module is never touched. BatchNorm statistics
of a path point can be re-estimated on a training split first (a path point of a BN network
is meaningless without it).

Evaluation options (the pipeline's ``batch_size``, ``points_per_batch`` and ``precision``):
``batch_size`` examples per forward pass; ``points_per_batch`` states evaluated together in
one stacked forward (``torch.func.vmap`` over the stacked states; the default per device is
the faster one measured, :data:`DEFAULT_POINTS_PER_BATCH`); ``precision`` ``"fp32"``, or
``"bf16"``/``"fp16"`` autocast on CUDA. Losses and correct counts accumulate on the device
and come to the host in one copy per call, not one synchronisation per batch.

**Data.** The evaluator holds each evaluated split as the dataset stores it (:meth:`stored`:
uint8 images for datasets read from files, floats for the in-memory ones), on the device when it
fits (:data:`DEVICE_DATA_FRACTION`) and otherwise on the host where the dataset keeps it (each
batch pinned as it moves, so the host never holds a second copy of the split), and prepares
every batch inside the batch loop (:meth:`prepare`: moved to the device, scaled, resized,
normalised), so no float copy of a whole split exists: the 10 000 CIFAR test images for a model
at 224 x 224 are 31 MB stored (uint8, 32 x 32) and would be 6 GB prepared. :meth:`data` still
gives a whole split prepared, for the few consumers that need random access to prepared inputs.

Tied tensors (:class:`~ridgeline.core.state.Ties`: one tensor under several names) reach
``functional_call`` once, under their first name present; a state may hold every name (they must
agree: :meth:`Evaluator.evaluate` refuses one whose tied names differ) or only one.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Mapping, Sequence

import attrs
import torch
from torch import nn
from torch.nn import functional as F

from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.dataset import Dataset
from ridgeline.core.interfaces.statistics import BATCHNORM, reestimate_batchnorm
from ridgeline.core.state import State, Ties

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Evaluation precisions: ``fp32``, or autocast to ``bf16``/``fp16`` (CUDA only)."""

DEFAULT_POINTS_PER_BATCH: dict[str, int] = {"cpu": 1, "cuda": 1}
"""States per stacked forward when ``points_per_batch`` is not given, per device type. On the
CPU, stacking 25 points with ``torch.func.vmap`` was 1.6x slower than one at a time (issue 9);
on CUDA it stays 1 until ``benchmarks/gpu.sh`` has measured a faster value on a GPU."""


DEVICE_DATA_FRACTION = 0.25
"""A split's stored inputs are kept on a CUDA device when they take at most this fraction of the
device's free memory (the rest is left to activations); a larger split stays on the host, as the
dataset keeps it, and moves batch by batch, each batch pinned for an asynchronous copy."""


def check_evaluation_options(device: torch.device, points_per_batch: int | None, precision: str) -> int:
    """Validate the evaluation options for ``device``; the resolved ``points_per_batch``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"evaluation precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "fp32" and device.type != "cuda":
        raise ConfigError(
            f"evaluation precision {precision!r} is CUDA autocast, but this run evaluates on "
            f"{device.type!r}; use precision = \"fp32\" or run on a CUDA device")
    if points_per_batch is None:
        return DEFAULT_POINTS_PER_BATCH.get(device.type, 1)
    if isinstance(points_per_batch, bool) or not isinstance(points_per_batch, int) or points_per_batch < 1:
        raise ConfigError(f"points_per_batch must be a whole number >= 1, got {points_per_batch!r}")
    return points_per_batch


@attrs.frozen
class Evaluation:
    """Mean loss, accuracy and error (fractions in [0, 1]) over ``n`` examples."""

    loss: float
    accuracy: float
    n: int

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss)


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, BATCHNORM) for m in module.modules())


class Evaluator:
    """Evaluates states of one architecture on one dataset.

    ``batch_size`` bounds memory; ``bn_split`` (e.g. ``"train"``) makes :meth:`evaluate`
    re-estimate BatchNorm statistics on that split before measuring (``bn_examples`` caps it,
    ``bn_passes`` bounds the streamed passes of :meth:`reset_batchnorm`).
    ``points_per_batch`` and ``precision``: see the module docstring (bad values, or a reduced
    precision on a device without CUDA, are a :class:`~ridgeline.core.errors.ConfigError`).
    """

    def __init__(self, module: nn.Module, dataset: Dataset, *, device: torch.device | str = "cpu",
                 batch_size: int = 1000, bn_split: str | None = None, bn_examples: int = 2000,
                 bn_passes: int = 1, points_per_batch: int | None = None,
                 precision: str = "fp32") -> None:
        self.device = torch.device(device)
        self.points_per_batch = check_evaluation_options(self.device, points_per_batch, precision)
        self.precision = precision
        self.module = copy.deepcopy(module).to(self.device).eval()
        self.ties = Ties.of(self.module)
        """The module's tied names (one tensor, several names)."""
        self.dataset = dataset
        self.batch_size = batch_size
        self.bn_split = bn_split
        self.bn_examples = bn_examples
        self.bn_passes = bn_passes
        self._stored: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._prepared: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def stored(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``split`` as the dataset stores it (:meth:`Dataset.stored`: uint8 images, or floats),
        held for evaluation: inputs on the device if they fit (:data:`DEVICE_DATA_FRACTION` of a
        CUDA device's free memory; always on the CPU, where nothing is copied), otherwise on the
        host (the dataset's own tensor, not a pinned second copy of it); labels on the device.
        Prepare batches of it with :meth:`prepare`."""
        if split not in self._stored:
            x, y = self.dataset.stored(split)
            self._stored[split] = (self._place(x), y.to(self.device))
        return self._stored[split]

    def _place(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return x.to(self.device)
        free, _ = torch.cuda.mem_get_info(self.device)
        if x.numel() * x.element_size() <= DEVICE_DATA_FRACTION * free:
            return x.to(self.device)
        return x  # pinning it whole would hold a second host copy of a split too large to move

    def _to_device(self, inputs: torch.Tensor) -> torch.Tensor:
        """A batch on the device: a host batch is pinned first (one batch of page-locked memory,
        from torch's caching host allocator, which keeps it until the copy is done), so the copy
        is asynchronous; without page-locked memory left it is a plain, waiting copy."""
        if self.device.type == "cuda" and inputs.device.type == "cpu" and not inputs.is_pinned():
            try:
                inputs = inputs.pin_memory()
            except RuntimeError:
                return inputs.to(self.device)
        return inputs.to(self.device, non_blocking=True)

    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        """A batch of stored inputs as the model's inputs, on the device (:meth:`Dataset.prepare`
        after a non-blocking move, :meth:`_to_device`; the same stream orders the two)."""
        return self.dataset.prepare(self._to_device(inputs))

    def data(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split prepared, on the device, kept: for consumers that need random access
        to prepared inputs. For a dataset of uint8 images this is a float copy of the whole split
        (4 bytes per value); evaluation (:meth:`evaluate_many`) and statistics passes
        (:meth:`batches`) never make it, and in-memory float datasets share the stored tensor."""
        if split not in self._prepared:
            x, y = self.stored(split)
            self._prepared[split] = (self.prepare(x), y)
        return self._prepared[split]

    def batches(self, split: str, *, limit: int | None = None,
                batch_size: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Prepared batches of the first ``limit`` examples of ``split`` on the device, for
        statistics passes: sliced from :meth:`stored` when the evaluator already holds the split,
        otherwise from the dataset's stored split on the host, so a pass never moves a split whole;
        each batch is prepared as it is moved (:meth:`prepare`)."""
        size = batch_size or self.batch_size
        x, y = self._stored[split] if split in self._stored else self.dataset.stored(split)
        n = len(x) if limit is None else min(limit, len(x))
        for start in range(0, n, size):
            end = min(start + size, n)
            yield self.prepare(x[start:end]), y[start:end].to(self.device, non_blocking=True)

    def on_device(self, state: Mapping[str, torch.Tensor]) -> State:
        """``state`` with every tensor on the evaluator's device (no copy if already there)."""
        return {k: v if v.device == self.device else v.to(self.device) for k, v in state.items()}

    def logits(self, state: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Differentiable forward pass of ``state`` on a batch (eval mode); a tied tensor is read
        from the first of its names present."""
        return torch.func.functional_call(self.module, self.on_device(self.ties.drop(state)), (x,))

    def loss(self, state: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Differentiable mean cross-entropy of ``state`` on a batch."""
        return F.cross_entropy(self.logits(state, x), y)

    def evaluate(self, state: Mapping[str, torch.Tensor], split: str, *,
                 bn_reset: bool | None = None) -> Evaluation:
        """Mean cross-entropy and accuracy on ``split``; NaN/inf losses are returned as is.
        Raises :class:`~ridgeline.core.errors.StateMismatchError` if tied names of ``state`` differ."""
        return self.evaluate_many([state], split, bn_reset=bn_reset)[0]

    def evaluate_many(self, states: Sequence[Mapping[str, torch.Tensor]], split: str, *,
                      bn_reset: bool | None = None) -> list[Evaluation]:
        """:meth:`evaluate` of several states, ``points_per_batch`` of them per stacked forward.

        The numbers equal those of one state at a time up to float rounding (a batched matrix
        product sums in another order); one host transfer brings every state's numbers back.
        Raises :class:`~ridgeline.core.errors.StateMismatchError` if tied names of a state differ.
        """
        for state in states:
            self.ties.check(state, "the evaluated state")
        if bn_reset if bn_reset is not None else self.bn_split is not None:
            states = [self.reset_batchnorm(state, self.bn_split or "train") for state in states]
        x, y = self.stored(split)
        sums = []
        with torch.no_grad():
            for first in range(0, len(states), self.points_per_batch):
                chunk = [self.on_device(self.ties.drop(state))
                         for state in states[first:first + self.points_per_batch]]
                sums.append(self._sums(chunk, x, y))
        loss, correct = _to_host(torch.cat(sums, dim=1)) if sums else ((), ())
        n = len(x)
        return [Evaluation(loss=float(total) / n, accuracy=int(right) / n, n=n)
                for total, right in zip(loss, correct)]

    def _sums(self, states: list[State], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(2, len(states)) float64: each state's summed cross-entropy and correct count over
        the stored inputs ``x``, each batch prepared here (outside autocast)."""
        total_loss = torch.zeros(len(states), device=self.device, dtype=torch.float64)
        correct = torch.zeros(len(states), device=self.device, dtype=torch.long)
        stacked = {k: torch.stack([s[k] for s in states]) for k in states[0]} if len(states) > 1 else None
        for start in range(0, len(x), self.batch_size):
            xb, yb = self.prepare(x[start:start + self.batch_size]), y[start:start + self.batch_size]
            with self._autocast():
                if stacked is None:  # one state: a plain functional call
                    logits = torch.func.functional_call(self.module, states[0], (xb,)).float()
                    total_loss += F.cross_entropy(logits, yb, reduction="sum").double()
                    correct += (logits.argmax(dim=1) == yb).sum()
                    continue
                logits = self._stacked_logits(stacked, xb).float()
                losses = F.cross_entropy(logits.flatten(0, 1), yb.repeat(len(states)), reduction="none")
                total_loss += losses.view(len(states), -1).sum(1).double()
                correct += (logits.argmax(dim=2) == yb).sum(1)
        return torch.stack([total_loss, correct.double()])

    def _stacked_logits(self, stacked: State, x: torch.Tensor) -> torch.Tensor:
        """Logits of every stacked state on ``x`` in one vmapped forward: (points, batch, classes)."""
        def forward(params: State) -> torch.Tensor:
            return torch.func.functional_call(self.module, params, (x,))

        try:
            return torch.func.vmap(forward)(stacked)
        except RuntimeError as error:
            raise ConfigError(
                f"{type(self.module).__name__} cannot be evaluated with several states stacked "
                f"(torch.func.vmap: {error}); set points_per_batch = 1") from error

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=PRECISIONS[self.precision])

    def reset_batchnorm(self, state: Mapping[str, torch.Tensor], split: str = "train", *,
                        passes: int | None = None) -> State:
        """``state`` with BatchNorm running statistics re-estimated on up to ``bn_examples``
        examples of ``split``, streamed: full-pass statistics, every batch weighing by its size,
        in ``passes`` passes (default ``bn_passes``; :mod:`ridgeline.core.interfaces.statistics`).
        Parameters are unchanged; states of networks without BatchNorm pass through."""
        if not has_batchnorm(self.module):
            return dict(state)
        estimated = reestimate_batchnorm(self.module, self.on_device(self.ties.expand(state)),
                                         lambda: (x for x, _ in self.batches(split, limit=self.bn_examples)),
                                         passes=passes or self.bn_passes)
        return {k: estimated[k] for k in state}  # the names given (a tied tensor's, or one)


def _to_host(sums: torch.Tensor) -> tuple[list[float], list[int]]:
    """The (2, points) sums on the host. On a device this is one copy, and so the one wait for
    the call's work to finish: the caller needs the numbers at once, so nothing can overlap it.
    What it saves is the rest: losses and counts accumulate on the device, where reading each
    batch's numbers would wait once per batch."""
    host = sums.cpu()
    return host[0].tolist(), [round(c) for c in host[1].tolist()]
