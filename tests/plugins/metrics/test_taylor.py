"""``taylor_barrier`` beyond the quadratic: the layer-wise predictor takes H at the midpoint of
the line it predicts (Singh et al. 2024), and finite differences along Delta show where the
quadratic model fails (issue 10, items 2 and 3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.evaluator import Evaluation, Evaluator
from ridgeline.core.interfaces.metric import PathProbe
from ridgeline.core.numerics.hessian import LossSurface
from ridgeline.core.state import module_groups


class FunctionEvaluator(Evaluator):
    """L(theta) = f(p) over the flattened parameters p in float64 (data ignored)."""

    def __init__(self, module, dataset, f):
        super().__init__(module, dataset)
        self.f = f

    def loss(self, state, x, y):
        keys = [k for k, _ in self.module.named_parameters()]
        return self.f(torch.cat([state[k].reshape(-1) for k in keys]).double())

    def evaluate(self, state, split, *, bn_reset=None):
        with torch.no_grad():
            return Evaluation(loss=float(self.loss(state, None, None)), accuracy=0.0, n=1)


def _module_and_states():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4),
                           nn.ReLU(), nn.Linear(4, 3))
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append({k: torch.randn_like(v, dtype=torch.float64) for k, v in module.state_dict().items()})
    return module.double(), states


@pytest.fixture
def cubic(synthetic):
    """L = 1/2 d^T Q d + 1/6 sum_k (u_k . d)^3, d = p - m: H varies along every line and couples
    the layers, and the expansion about a line's own midpoint is exact (the odd terms cancel and
    there is no quartic term)."""
    module, states = _module_and_states()
    n = sum(p.numel() for p in module.parameters())
    generator = torch.Generator().manual_seed(3)
    basis, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=generator))
    q = basis @ torch.diag(torch.linspace(-1.0, 1.0, n, dtype=torch.float64)) @ basis.T
    u = torch.randn(3, n, dtype=torch.float64, generator=generator) / n ** 0.5
    m = torch.randn(n, dtype=torch.float64, generator=generator)

    def f(p):
        d = p - m
        return 0.5 * d @ q @ d + ((u @ d) ** 3).sum() / 6.0

    return FunctionEvaluator(module, synthetic, f), states


def run(metric, path, evaluator):
    probe = PathProbe(path, evaluator)
    records = [{k: float(v) for k, v in metric.measure(p, probe).items()} for p in metric.points(path)]
    return records, metric.summarise(records)


def test_layer_predictor_takes_the_hessian_at_its_own_lines_midpoint(regs, cubic):
    evaluator, states = cubic
    path = regs.paths.create("linear", endpoints=states)
    records, summary = run(regs.metrics.create("taylor_barrier", steps=[]), path, evaluator)
    assert len(records) == 1 + len(module_groups(states[0]))
    for record in records:  # exact for a cubic: -(1/8) Delta_l^T H(theta_A + Delta_l / 2) Delta_l
        assert record["predicted"] == pytest.approx(record["measured"], rel=1e-9, abs=1e-9)
    assert records[0]["predicted"] == records[0]["predicted_mid"]  # the whole network's own midpoint
    # H at the whole path's midpoint is off layer l's line, and so is its prediction
    assert max(abs(r["predicted_mid"] - r["measured"]) for r in records[1:]) > 1e-2
    assert summary["predicted_all"] == pytest.approx(summary["measured_all"], rel=1e-9)
    assert summary["corr_predicted"] == pytest.approx(1.0, abs=1e-9)
    assert abs(summary["corr_predicted_mid"]) < 0.999


def test_finite_differences_agree_with_the_hessian_on_a_smooth_loss(regs, cubic):
    evaluator, states = cubic
    path = regs.paths.create("linear", endpoints=states)
    metric = regs.metrics.create("taylor_barrier", steps=[0.5, 1e-1, 1e-2, 1e-3, 1e-4])
    records, summary = run(metric, path, evaluator)
    for record in records:  # the second difference of a cubic about a midpoint is exact at any h
        for h in (0.5, 1e-1, 1e-2, 1e-3, 1e-4):
            # abs 1e-6: float64 rounding of the loss divided by h^2 at h = 1e-4
            assert record[f"fd_h{h:g}"] == pytest.approx(record["predicted"], rel=1e-6, abs=1e-6)
        assert record["fd_relative_spread"] < 1e-5
        assert record["fd_h0.5"] == pytest.approx(record["measured"], rel=1e-9)  # h = 1/2 reaches A and B
    assert summary["fd_spread_all"] == records[0]["fd_spread"]


def test_finite_differences_flag_a_kink_the_hessian_cannot_see(regs, synthetic):
    """L = sum_i |p_i - m_i| is piecewise linear: autograd's H is zero, so the quadratic model
    predicts no barrier, while the loss along Delta bends wherever a coordinate crosses m_i."""
    module, states = _module_and_states()
    m = (states[0]["0.weight"] + states[1]["0.weight"]).reshape(-1) / 2  # kinks at the midpoint
    n = sum(p.numel() for p in module.parameters())
    centre = torch.zeros(n, dtype=torch.float64)
    centre[: m.numel()] = m
    evaluator = FunctionEvaluator(module, synthetic, lambda p: (p - centre).abs().sum())
    path = regs.paths.create("linear", endpoints=states)
    records, _ = run(regs.metrics.create("taylor_barrier"), path, evaluator)
    whole = records[0]
    assert whole["predicted"] == 0.0 and whole["predicted_mid"] == 0.0
    assert whole["measured"] < -0.1  # the chord lies above the |.| valley
    estimates = [whole[f"fd_h{h:g}"] for h in (1e-1, 1e-2, 1e-3, 1e-4)]
    assert estimates == sorted(estimates, reverse=True)  # grows ~1/h as the step shrinks
    assert estimates[-1] < 100 * estimates[0] < 0
    assert whole["fd_relative_spread"] > 0.9


def test_second_differences_equal_the_quadratic_form_for_a_quadratic(synthetic):
    module, (a, b) = _module_and_states()
    n = sum(p.numel() for p in module.parameters())
    q = torch.eye(n, dtype=torch.float64) * torch.linspace(-2.0, 1.0, n, dtype=torch.float64)
    evaluator = FunctionEvaluator(module, synthetic, lambda p: 0.5 * p @ q @ p)
    surface = LossSurface(evaluator, "train")
    v = {k: b[k] - a[k] for k in a}
    expected = surface.quadratic_form(a, v)
    for value in surface.second_differences(a, v, [0.3, 1e-2, 1e-4]):
        assert value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("steps", [[0.7], [0.0], "ten", [1e-2, -1e-3]])
def test_bad_steps_are_refused_before_any_work(regs, steps):
    with pytest.raises(ConfigError, match="taylor_barrier.*steps"):
        regs.metrics.create("taylor_barrier", steps=steps)
