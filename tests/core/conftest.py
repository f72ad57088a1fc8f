"""Fixtures shared by the core tests: ``flaky``, a metric that crashes a run part-way (the resume
tests of the pipeline, the Ray executor and the tied models)."""

from __future__ import annotations

import pytest

from ridgeline.core.plugin_host.host import PluginHost, hookimpl, load_plugins
from ridgeline.plugins.metrics.barrier import LossBarrier


class Interrupt(Exception):
    """A crash in the middle of a run (what the ``flaky`` metric raises)."""


class Flaky:
    """The ``flaky`` metric: a loss barrier that raises :class:`Interrupt` once it has measured
    ``after`` points (``10**6``: never, for the reference run)."""

    Interrupt = Interrupt

    @staticmethod
    def plugin(after: int) -> tuple[str, object]:
        """``("flaky", plugin)`` registering the metric, for :func:`load_plugins`' ``extra``."""
        calls = {"n": 0}

        class FlakyBarrier(LossBarrier):
            name = "flaky"

            def measure(self, point, probe):
                calls["n"] += 1
                if calls["n"] > after:
                    raise Interrupt
                return super().measure(point, probe)

        class Plugin:
            @hookimpl
            def register_metrics(self, register):
                register("flaky", FlakyBarrier)

        return "flaky", Plugin()

    @classmethod
    def host(cls, after: int, *extra: tuple[str, object]) -> PluginHost:
        """The first-party plugins, the ``flaky`` metric and ``extra``; no installed plugins."""
        return load_plugins([cls.plugin(after), *extra], autoload=False)


@pytest.fixture(scope="session")
def flaky() -> type[Flaky]:
    return Flaky
