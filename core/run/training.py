"""Training from seeds, and spawning two children from a shared parent (Frankle et al. 2020).

Training is ordinary mini-batch optimisation of a module ridgeline built itself. The seed
fixes the initialisation; ``data_seed`` fixes the order of mini-batches (SGD noise), so two
children spawned from one parent differ only in their data order.

**Reproducibility.** A training run is bit-for-bit deterministic for a seed and a number of
intra-op threads (on one machine type and torch build): :func:`train` runs under
:func:`deterministic`, which fixes the thread count and asks torch for deterministic kernels
(``torch.use_deterministic_algorithms``, cuDNN without autotuning, cuBLAS's fixed workspace).
The thread count matters on a CPU: matrix products split their sums across threads, so 1 and 2
threads round differently, and 20 epochs of Adam turn that into a different network (test
accuracy 68.4 % against 69.0 % for the quickstart's seed 0; docs/methods.md). ``TrainConfig.threads``
fixes it (default: torch's current setting); the pipeline records it, and the seed, in every
checkpoint it trains and in the results file.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, Literal

import attrs
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from ridgeline.core.checkpoint import save_state
from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.dataset import Dataset
from ridgeline.core.interfaces.model import Model
from ridgeline.core.state import State, clone
from ridgeline.core.validation import checked


@attrs.frozen
class TrainConfig:
    """Optimisation settings. ``steps`` overrides ``epochs`` when given (``steps = 0``: the
    network at its initialisation, untrained)."""

    scope: ClassVar[str] = "train"
    epochs: int = attrs.field(default=20, validator=checked(int, at_least=1))
    steps: int | None = attrs.field(default=None, validator=checked(int | None, at_least=0))
    batch_size: int = attrs.field(default=128, validator=checked(int, at_least=1))
    lr: float = attrs.field(default=1e-3, validator=checked(float, above=0))
    optimizer: str = attrs.field(default="adam", validator=checked(Literal["adam", "sgd"]))
    momentum: float = attrs.field(default=0.9, validator=checked(float, at_least=0, below=1))
    weight_decay: float = attrs.field(default=0.0, validator=checked(float, at_least=0))
    checkpoint_every: int | None = attrs.field(default=None, validator=checked(int | None, at_least=1))
    threads: int | None = attrs.field(default=None, validator=checked(int | None, at_least=1))
    """Intra-op threads while training (None: torch's current setting); with the seed it
    determines the trained network bit for bit."""

    @classmethod
    def from_dict(cls, options: dict) -> TrainConfig:
        unknown = set(options) - {f.name for f in attrs.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown training options {sorted(unknown)}; known: "
                              f"{[f.name for f in attrs.fields(cls)]}")
        return cls(**options)

    def to_dict(self) -> dict:
        """The settings as plain data; ``threads`` only when set, so that configurations (and
        the model caches and results files keyed by them) written before it existed still match."""
        out = attrs.asdict(self)
        if out["threads"] is None:
            del out["threads"]
        return out

    def resolved_threads(self) -> int:
        """The thread count a training run with these settings uses now."""
        return int(self.threads) if self.threads is not None else torch.get_num_threads()

    def total_steps(self, train_size: int) -> int:
        if self.steps is not None:
            return int(self.steps)
        return self.epochs * math.ceil(train_size / self.batch_size)


def _optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


@contextlib.contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads and deterministic kernels, then restore
    the previous settings. On CUDA, cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` before its first
    use; it is set here if unset (set it in the environment to be sure)."""
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[3], saved[4]


def _batch_stream(dataset: Dataset, batch_size: int, generator: torch.Generator, device):
    while True:
        yield from dataset.batches("train", batch_size, shuffle=True, generator=generator, device=device,
                                   augment=True)


def train(model: Model, dataset: Dataset, config: TrainConfig, *, seed: int,
          data_seed: int | None = None, device: torch.device | str = "cpu",
          init: State | None = None, start_step: int = 0, stop_step: int | None = None,
          checkpoint_dir: str | Path | None = None, progress: bool = True,
          on_step: Callable[[int, State], None] | None = None) -> State:
    """Train ``model`` from ``seed`` (or from ``init``) and return the final state, the same
    bits for the same seed and ``config.resolved_threads()`` (see the module docstring).

    Runs steps ``start_step`` .. ``stop_step`` (default: the config's total). With
    ``checkpoint_dir`` and ``config.checkpoint_every``, intermediate states are saved as
    ``step{N}.safetensors``. Optimiser state restarts at ``start_step`` (Frankle et al. spawn
    children this way too when they copy only the weights).
    """
    with deterministic(config.resolved_threads()):
        return _train(model, dataset, config, seed=seed, data_seed=data_seed, device=device, init=init,
                      start_step=start_step, stop_step=stop_step, checkpoint_dir=checkpoint_dir,
                      progress=progress, on_step=on_step)


def _train(model: Model, dataset: Dataset, config: TrainConfig, *, seed: int, data_seed: int | None,
           device: torch.device | str, init: State | None, start_step: int, stop_step: int | None,
           checkpoint_dir: str | Path | None, progress: bool,
           on_step: Callable[[int, State], None] | None) -> State:
    device = torch.device(device)
    total = config.total_steps(dataset.size("train"))
    stop = total if stop_step is None else stop_step
    torch.manual_seed(seed)
    module = model.build().to(device)
    if init is not None:
        module.load_state_dict(init)
    module.train()
    optimizer = _optimizer(config, module.parameters())
    generator = torch.Generator().manual_seed(seed if data_seed is None else data_seed)
    batches = _batch_stream(dataset, config.batch_size, generator, device)
    meta = {"model": model.config, "dataset": dataset.config, "seed": seed, "data_seed": data_seed,
            **provenance(config)}
    bar = tqdm(range(start_step, stop), desc=f"train seed {seed}", disable=not progress, leave=False)
    for step in bar:
        x, y = next(batches)
        loss = F.cross_entropy(module(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = step + 1
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if checkpoint_dir and config.checkpoint_every and done % config.checkpoint_every == 0:
            save_state(Path(checkpoint_dir) / f"step{done}.safetensors", module.state_dict(),
                       {**meta, "step": done})
        if on_step is not None:
            on_step(done, module.state_dict())
    return clone(module.state_dict(), "cpu")


def provenance(config: TrainConfig) -> dict:
    """What besides the seed determines a trained network: recorded in checkpoint metadata."""
    return {"threads": config.resolved_threads(), "deterministic": True,
            "torch_version": str(torch.__version__)}


@attrs.frozen
class Spawn:
    """A parent trained for ``spawn_step`` steps and two children trained on from it."""

    parent: State
    children: tuple[State, State]
    spawn_step: int


def spawn(model: Model, dataset: Dataset, config: TrainConfig, *, seed: int, spawn_step: int,
          child_data_seeds: tuple[int, int] = (1, 2), device: torch.device | str = "cpu",
          progress: bool = True) -> Spawn:
    """Frankle et al. (2020), "Linear Mode Connectivity and the Lottery Ticket Hypothesis":
    train one network for ``spawn_step`` steps, then train two copies to the end with
    different data orders. Returns the parent at the spawn point and both children."""
    total = config.total_steps(dataset.size("train"))
    if not 0 <= spawn_step <= total:
        raise ConfigError(f"spawn_step must lie in [0, {total}], got {spawn_step}")
    parent = train(model, dataset, config, seed=seed, data_seed=seed, device=device,
                   stop_step=spawn_step, progress=progress)
    children = tuple(
        train(model, dataset, config, seed=seed, data_seed=child_seed, device=device, init=parent,
              start_step=spawn_step, progress=progress)
        for child_seed in child_data_seeds
    )
    return Spawn(parent=parent, children=children, spawn_step=spawn_step)
