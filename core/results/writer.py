"""The writer: hands writes to the results store in the caller's thread or in one background
thread (used on a GPU, so evaluation never waits on disk)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ridgeline.core.results.store import ResultsStore, Series


class Writer:
    """Hands writes to the store, in the caller's thread or in one background thread.

    In background mode (used on a GPU) the evaluation loop only enqueues records; tensors are
    moved to the host and written by the writer thread, so the device never waits on disk.
    Errors raised in the thread resurface at the next call or at :meth:`close`.
    """

    def __init__(self, store: ResultsStore, *, background: bool = False) -> None:
        self.store = store
        self.background = background
        self._queue: queue.Queue[tuple[Callable[..., None], tuple] | None] = queue.Queue(maxsize=1024)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="ridgeline-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                fn, args = item
                if self._error is None:  # after a failure, drop writes until it is reported
                    fn(*args)
                    self.store.flush()
            except BaseException as error:  # reported at the next call
                self._error = error
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self._raise()
        if self.background:
            self._queue.put((fn, args))
        else:
            fn(*args)
            self.store.flush()

    def append(self, series: Series, record: Mapping[str, Any]) -> None:
        self.submit(series.append, dict(record))

    def finish(self, series: Series, summary: Mapping[str, Any]) -> None:
        self.submit(series.finish, dict(summary))

    def drain(self) -> None:
        """Wait until every submitted write is on disk."""
        if self._thread is not None:
            self._queue.join()
        self._raise()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._raise()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
