from __future__ import annotations

import pytest

from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.interfaces.metric import PathProbe


@pytest.mark.parametrize("metric", ["loss_barrier", "error_barrier"])
def test_identical_endpoints_have_zero_barrier(regs, small_mlp, synthetic, metric):
    state = small_mlp.init_state(0)
    path = regs.paths.create("linear", endpoints=[state, dict(state)])
    m = regs.metrics.create(metric, grid=5)
    probe = PathProbe(path, Evaluator(small_mlp.build(), synthetic))
    records = [m.measure(t, probe) for t in m.points(path)]
    summary = m.summarise(records)
    assert summary["barrier"] == pytest.approx(0.0, abs=1e-6)
    assert summary["barrier_mean"] == pytest.approx(0.0, abs=1e-6)


def test_linear_path_meets_its_endpoints(regs, small_mlp):
    a, b = small_mlp.init_state(0), small_mlp.init_state(1)
    path = regs.paths.create("linear", endpoints=[a, b])
    for key in a:
        assert (path.at(0.0)[key] == a[key]).all() and (path.at(1.0)[key] == b[key]).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        path.at(1.5)
