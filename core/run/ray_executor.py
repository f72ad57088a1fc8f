"""The Ray executor: a pipeline's cells as Ray tasks, this process the only writer of the file.

Each cell (:mod:`ridgeline.core.run.cells`) is one Ray task asking for ``[executor] num_cpus``
and ``num_gpus``. Every model's state goes to the object store once (a trained model is the
training task's own result); an alignment task takes the set's states as object refs and each
measuring task takes the states and its alignment (an object ref when the alignment is still
being computed), so training runs before the cells that need it. Results come back as tasks
finish, in any order, and the driver writes them as they arrive through the run's
:class:`~ridgeline.core.run.recorder.Recorder`; what to submit is decided from the results file
exactly as the serial executor decides what to run, so a run resumes the same way.

A task whose worker dies is run again up to ``max_retries`` times; a cell that fails for good
is recorded as failed (with its error, naming the node) and the rest of the sweep completes.
Workers build their plugin host as the driver did: entry-point plugins installed on the node,
plus the driver's in-process plugins (pickled). Docs: docs/cluster.md.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch
from tqdm.auto import tqdm

from ridgeline.core.errors import CellError, ConfigError, UnknownEntryError
from ridgeline.core.plugin_host.host import load_plugins
from ridgeline.core.run.cells import (
    AlignCell,
    AlignOutcome,
    Cell,
    CellContext,
    PathProgress,
    TrainCell,
    Trained,
    align_cell,
    endpoints_of,
    measure_cell,
    train_cell,
)
from ridgeline.core.run.config import ExecutorConfig, ModelSetConfig, PipelineConfig
from ridgeline.core.run.recorder import Recorder
from ridgeline.core.state import State

if TYPE_CHECKING:
    from ridgeline.core.run.pipeline import Pipeline

INSTALL_HINT = "the Ray executor needs Ray, which is not installed: pip install 'ridgeline[ray]'"


def require_ray() -> Any:
    """The ``ray`` module, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def cell_device(device: str | torch.device, executor: ExecutorConfig) -> torch.device:
    """Where workers run cells: ``auto`` is CUDA when cells ask for GPUs, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if executor.num_gpus > 0 else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"device {device!r} is not one torch knows (use cpu, cuda or auto): "
                          f"{error}") from None
    if resolved.type == "cuda" and executor.num_gpus <= 0:
        raise ConfigError(f"device {device!r} on Ray needs GPUs for the cells: set [executor] num_gpus "
                          "(e.g. 1, or 0.5 to share a GPU between two cells)")
    return resolved


# -- the worker side -------------------------------------------------------------------
@attrs.frozen
class WorkerRecipe:
    """What a worker needs to build the run's :class:`CellContext` (once per process)."""

    key: str
    config: PipelineConfig
    device: str
    threads: int
    plugins: tuple[tuple[str, object], ...]
    autoload: bool | None
    providers: Mapping[str, str]
    """``<kind>:<name>`` -> the plugin that provides the entry on the driver."""
    data_cache: Path | None = None
    """The driver's folder for decoded dataset splits (shared when workers see the same disk)."""


_CONTEXTS: dict[str, CellContext] = {}


def _context(recipe: WorkerRecipe) -> CellContext:
    context = _CONTEXTS.get(recipe.key)
    if context is None:
        host = load_plugins(extra=recipe.plugins, autoload=recipe.autoload)
        _CONTEXTS.clear()  # one run at a time per worker process
        context = _CONTEXTS[recipe.key] = CellContext(recipe.config, host.registries,
                                                      torch.device(recipe.device),
                                                      data_cache=recipe.data_cache)
    return context


def _portable(value: Any) -> Any:
    """``value`` with every tensor on the CPU and every record number a float."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_portable(v) for v in value)
    if attrs.has(type(value)):
        return attrs.evolve(value, **{f.name: _portable(getattr(value, f.name))
                                      for f in attrs.fields(type(value)) if f.init})
    return value


def _node() -> str:
    try:
        import ray

        address = ray.util.get_node_ip_address()
    except Exception:  # outside Ray (tests call run_cell directly)
        address = "local"
    return f"{address} ({socket.gethostname()})"


def run_cell(recipe: WorkerRecipe, cell: Cell, progress: PathProgress | None,
             alignment: AlignOutcome | None, *states: State | Trained) -> Any:
    """One cell on a worker: a :class:`Trained` state, an :class:`AlignOutcome`, or the list
    of writes of a measure cell. Any failure is re-raised as a CellError naming the cell and
    the node (and, for an entry the node lacks, the plugin that provides it on the driver)."""
    torch.set_num_threads(recipe.threads)
    try:
        context = _context(recipe)
        if isinstance(cell, TrainCell):
            return _portable(train_cell(context, cell))
        placed = context.place([s.state if isinstance(s, Trained) else s for s in states])
        if isinstance(cell, AlignCell):
            return _portable(align_cell(context, cell, placed))
        endpoints = endpoints_of(context, placed, alignment, cell.aligner)
        return [_portable(write) for write in measure_cell(context, cell, endpoints, progress)]
    except UnknownEntryError as error:
        provider = recipe.providers.get(f"{error.kind}:{error.name}", "unknown")
        raise CellError(
            f"{cell.label}: {error.kind[:-1]} {error.name!r} (plugin {provider!r} on the driver) is "
            f"not installed on Ray node {_node()}: {error}. Install the plugin's distribution on "
            "every node of the cluster") from None
    except Exception as error:
        where = traceback.extract_tb(error.__traceback__)[-1]
        raise CellError(f"{cell.label} failed on Ray node {_node()}: {type(error).__name__}: {error} "
                        f"(at {where.filename}:{where.lineno} in {where.name})") from None


# -- the driver side -------------------------------------------------------------------
def _reachable(address: str, timeout: float) -> None:
    """Fail within ``timeout`` seconds when nothing listens at a ``host:port`` address, or when
    what listens is not a gRPC server (a Ray head's GCS and a Ray Client server both are):
    connecting Ray to anything else waits for many seconds behind a screen of retry logs.

    The probe is HTTP/2's own handshake: after the client's connection preface a server must
    send a SETTINGS frame first (RFC 9113, Sec. 3.4), so the fourth byte it sends is 0x04."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host:
        host, port = target, "6379"
    hint = f"Is `ray start --head` running there, and is port {port} open from here?"
    try:
        connection = socket.create_connection((host, int(port)), timeout=timeout)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {error or type(error).__name__}. "
                          f"{hint}") from None
    answer = b""
    with connection:
        try:
            connection.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
            while len(answer) < 9:
                chunk = connection.recv(9 - len(answer))
                if not chunk:
                    break
                answer += chunk
        except OSError:  # silent or closed: not a gRPC server
            pass
    if len(answer) < 9 or answer[3] != 0x04:
        raise ConfigError(f"{address!r} answers, but not as a Ray cluster (no gRPC handshake within "
                          f"{timeout:g} s). {hint}")


def _error_text(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return str(cause) if isinstance(cause, CellError) else f"{type(cause).__name__}: {cause}"
    return f"{type(error).__name__}: {error}".strip()


class RayExecutor:
    """Runs a :class:`~ridgeline.core.run.pipeline.Pipeline`'s cells on Ray."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config

    # -- connecting ----------------------------------------------------------------------
    def __enter__(self) -> RayExecutor:
        """Join the cluster and check that it can hold a cell (before any file is written)."""
        self._started = self.connect()
        try:
            self.check_resources()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if getattr(self, "_started", False):
            require_ray().shutdown()
            self._started = False

    def connect(self) -> bool:
        """Join the configured cluster (or start a local instance when no address is given);
        True when this call started Ray (and so must shut it down). An already initialised
        Ray (a script's or a test's ``ray.init``) is used as it is."""
        ray = require_ray()
        address = self.config.address
        if address and address != "auto":
            _reachable(address, min(self.config.timeout_s, 5.0))
        if ray.is_initialized():
            return False
        try:
            if address:
                ray.init(address=address)
            else:
                ray.init(include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
            hint = ""
            if address and os.environ.get("RAY_AUTH_MODE") != "token":
                hint = (". If the cluster uses token authentication (the default for `ray start` from "
                        "Ray 2.59), set RAY_AUTH_MODE=token here with its token in RAY_AUTH_TOKEN or "
                        "~/.ray/auth_token (docs/cluster.md)")
            raise ConfigError(f"cannot connect to the Ray cluster at {address or 'a new local instance'!r}: "
                              f"{error}{hint}") from None
        return True

    def check_resources(self) -> None:
        """Wait up to ``timeout_s`` for a live node that can hold one cell; say so if none can."""
        import ray

        want = {"CPU": self.config.num_cpus, "GPU": self.config.num_gpus}
        deadline = time.monotonic() + self.config.timeout_s
        while True:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            if any(all(n["Resources"].get(k, 0.0) >= v for k, v in want.items() if v > 0) for n in nodes):
                return
            if time.monotonic() >= deadline:
                offered = "; ".join(f"{n['NodeManagerAddress']}: CPU {n['Resources'].get('CPU', 0):g}, "
                                    f"GPU {n['Resources'].get('GPU', 0):g}" for n in nodes) or "no live node"
                raise ConfigError(
                    f"no node of the Ray cluster can run a cell asking for num_cpus="
                    f"{self.config.num_cpus:g}, num_gpus={self.config.num_gpus:g} (nodes: {offered}); "
                    f"waited {self.config.timeout_s:g} s. Lower [executor] num_cpus / num_gpus, or add "
                    "a node that has them")
            time.sleep(min(1.0, self.config.timeout_s))

    # -- running -------------------------------------------------------------------------
    def run(self, pipeline: Pipeline, recorder: Recorder) -> None:
        """Submit the pipeline's cells and write their results as they arrive (use inside
        ``with RayExecutor(config) as executor``)."""
        _Sweep(self, pipeline, recorder, require_ray()).run()


class _Sweep:
    """One run's submissions and the loop that writes their results as they arrive."""

    def __init__(self, executor: RayExecutor, pipeline: Pipeline, recorder: Recorder, ray: Any) -> None:
        self.executor, self.pipeline, self.recorder, self.ray = executor, pipeline, recorder, ray
        config = executor.config
        host = pipeline.host
        providers = {f"{kind}:{name}": pipeline.registries.of(kind).entry(name).plugin
                     for kind in ("models", "datasets", "aligners", "paths", "metrics", "corrections")
                     for name in pipeline.registries.of(kind).list()}
        self.recipe = ray.put(WorkerRecipe(
            key=uuid.uuid4().hex, config=pipeline.config, device=str(pipeline.device),
            threads=max(1, round(config.num_cpus)), plugins=host.extra, autoload=host.autoload,
            providers=providers, data_cache=pipeline.context.data_cache))
        self.remote = ray.remote(run_cell)
        self.resources = {"num_cpus": config.num_cpus, "num_gpus": config.num_gpus,
                          "max_retries": config.max_retries, "retry_exceptions": False}
        self.pending: dict[Any, tuple[Cell, ModelSetConfig | None]] = {}
        self.training: dict[int, Any] = {}    # seed -> its training task
        self.trained: set[int] = set()        # seeds whose checkpoints are saved
        self.unchecked: dict[str, ModelSetConfig] = {}  # sets whose fingerprints wait for training
        self.model_refs: dict[str, Any] = {}  # checkpoint path -> its state in the object store

    def submit(self, cell: Cell, model_set: ModelSetConfig | None, *args: Any) -> Any:
        ref = self.remote.options(name=cell.label, **self.resources).remote(self.recipe, cell, *args)
        self.pending[ref] = (cell, model_set)
        return ref

    def state_refs(self, model_set: ModelSetConfig) -> list[Any]:
        """One object ref per model: a loaded state put once, or the training task's result."""
        states = self.pipeline.load_models(model_set, train_missing=False)
        files = model_set.checkpoints or [str(self.pipeline.checkpoint_path(s)) for s in model_set.seeds]
        refs = []
        for i, state in enumerate(states):
            if state is not None:
                key = files[i]
                if key not in self.model_refs:
                    self.model_refs[key] = self.ray.put(state)
                refs.append(self.model_refs[key])
                continue
            seed = model_set.seeds[i]
            if seed not in self.training:
                self.training[seed] = self.submit(TrainCell(seed), None, None, None)
            refs.append(self.training[seed])
        if all(state is not None for state in states):
            self.recorder.check_endpoints(model_set, states, self.pipeline.provenance(model_set))
        else:
            self.unchecked[model_set.name] = model_set
        return refs

    def submit_all(self) -> None:
        for model_set in self.pipeline.model_sets():
            refs = self.state_refs(model_set)
            for cell in self.pipeline.align_cells(model_set):
                alignment = self.recorder.stored_alignment(cell)
                if alignment is None:
                    alignment = self.submit(cell, model_set, None, None, *refs)
                for measure in self.pipeline.measure_cells(model_set, cell.aligner.key):
                    if not self.recorder.path_complete(measure):
                        self.submit(measure, model_set, self.recorder.progress(measure), alignment, *refs)

    def saved(self, seed: int, trained: Trained) -> None:
        if seed not in self.trained:
            self.pipeline.save_trained(seed, trained)
            self.trained.add(seed)

    def ensure_checked(self, model_set: ModelSetConfig) -> None:
        """Before the first result of a set that needed training is written: its checkpoints
        saved and its fingerprint checked against the file, as the serial run does."""
        if self.unchecked.pop(model_set.name, None) is None:
            return
        for seed in model_set.seeds:
            if seed in self.training and seed not in self.trained:
                self.saved(seed, self.ray.get(self.training[seed]))
        self.recorder.check_endpoints(model_set, self.pipeline.load_models(model_set),
                                      self.pipeline.provenance(model_set))

    def failed(self, cell: Cell, model_set: ModelSetConfig | None, error: BaseException) -> None:
        text = _error_text(error)
        if isinstance(cell, TrainCell):  # every set that needed this model
            for name, waiting in list(self.unchecked.items()):
                if cell.seed in waiting.seeds:
                    self.recorder.failure(name, cell, text)
        else:
            assert model_set is not None
            self.recorder.failure(model_set.name, cell, text)

    def handle(self, cell: Cell, model_set: ModelSetConfig | None, result: Any) -> None:
        if isinstance(cell, TrainCell):
            self.saved(cell.seed, result)
            return
        assert model_set is not None
        self.ensure_checked(model_set)
        if isinstance(cell, AlignCell):
            self.pipeline.record_alignment(self.recorder, cell, result)
        else:
            for write in result:
                self.recorder.write(cell, write)
            self.recorder.writer.drain()

    def run(self) -> None:
        ray = self.ray
        self.submit_all()
        bar = tqdm(total=len(self.pending), desc="cells", disable=not self.pipeline.progress)
        wait_s = min(10.0, self.executor.config.timeout_s)
        try:
            while self.pending:
                ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=wait_s)
                if not ready:
                    self.executor.check_resources()  # nothing finished for a while: can anything run?
                    continue
                cell, model_set = self.pending.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayError as error:
                    self.failed(cell, model_set, error)
                else:
                    self.handle(cell, model_set, result)
                bar.update()
        except BaseException:
            for ref in self.pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
