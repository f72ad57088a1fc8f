"""Metric plugins: every registered metric yields its declared columns along a path, and each
metric's numbers agree with an independent computation (the quadratic-loss identities of the
second-order barrier, finite differences, direct state arithmetic)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.evaluator import Evaluation, Evaluator
from ridgeline.core.interfaces.metric import PathProbe
from ridgeline.core.numerics.hessian import LossSurface
from ridgeline.core.numerics.vectors import flatten
from ridgeline.core.run.training import TrainConfig, train
from ridgeline.core.state import distance, lerp, module_groups

# options per registered metric (a new metric must be added here) and the path it runs on
METRICS = {
    "loss_barrier": ({"grid": 5}, "linear"),
    "error_barrier": ({"grid": 5}, "linear"),
    "layerwise_barrier": ({}, "linear"),
    "taylor_barrier": ({"examples": 64}, "linear"),
    "curvature": ({"examples": 64, "iters": 5}, "linear"),
    "gradient": ({"grid": 3}, "linear"),
    "geometry": ({"length_points": 5}, "linear"),
    "disagreement": ({"grid": 3}, "linear"),
    "landscape": ({"curve_points": 3}, "plane"),
    "input_connectivity": ({"pairs": 2, "steps": 5, "grid": 3}, "linear"),
}


@pytest.fixture(scope="module")
def setup():
    from ridgeline.core.plugin_host.host import registries

    regs = registries()
    data = regs.datasets.create("synthetic", features=12, num_classes=3, train_size=256, test_size=128)
    model = regs.models.create("mlp", input_shape=data.input_shape, num_classes=data.num_classes,
                               widths=[16, 16])
    config = TrainConfig(steps=100, batch_size=32, lr=1e-2)
    states = [train(model, data, config, seed=s, progress=False) for s in range(2)]
    return regs, states, Evaluator(model.build(), data)


def run(metric, path, evaluator):
    probe = PathProbe(path, evaluator)
    records = [{k: float(v) for k, v in metric.measure(p, probe).items()} for p in metric.points(path)]
    return records, metric.summarise(records)


def test_every_registered_metric_is_covered(regs):
    assert set(regs.metrics.list()) == set(METRICS)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_records_match_columns_and_labels(setup, name):
    regs, states, evaluator = setup
    options, path_name = METRICS[name]
    path_options = {"mode": "curve", "grid": 3, "curve_options": {"steps": 0}} if path_name == "plane" else {}
    path = regs.paths.create(path_name, endpoints=states, **path_options)
    metric = regs.metrics.create(name, **options)
    points = metric.points(path)
    labels = metric.labels(path)
    assert labels is None or len(labels) == len(points)
    records, summary = run(metric, path, evaluator)
    assert all(list(r) == list(metric.columns) for r in records)
    assert summary and all(isinstance(v, float) for v in summary.values())


# -- a quadratic loss with a known Hessian ------------------------------------------------------

class QuadraticEvaluator(Evaluator):
    """L(theta) = 1/2 (p - m)^T Q (p - m) + c over the flattened parameters p (data ignored)."""

    def __init__(self, module, dataset, q, m, c=0.3):
        super().__init__(module, dataset)
        self.q, self.m, self.c = q, m, c

    def loss(self, state, x, y):
        keys = [k for k, _ in self.module.named_parameters()]
        d = torch.cat([state[k].reshape(-1) for k in keys]).double() - self.m
        return 0.5 * d @ self.q @ d + self.c

    def evaluate(self, state, split, *, bn_reset=None):
        with torch.no_grad():
            return Evaluation(loss=float(self.loss(state, None, None)), accuracy=0.0, n=1)


@pytest.fixture
def quadratic(synthetic):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(12, 3), nn.ReLU(), nn.Linear(3, 3))
    n = sum(p.numel() for p in module.parameters())
    basis, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    eigenvalues = torch.linspace(-2.0, 1.5, n, dtype=torch.float64)  # indefinite: ridges exist
    q = basis @ torch.diag(eigenvalues) @ basis.T
    evaluator = QuadraticEvaluator(module, synthetic, q, torch.randn(n, dtype=torch.float64))
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append({k: torch.randn_like(v) for k, v in module.state_dict().items()})
    return evaluator, states, q


def test_hvp_matches_finite_differences(quadratic):
    evaluator, (a, _), _ = quadratic
    surface = LossSurface(evaluator, "train")
    torch.manual_seed(5)
    v = {k: torch.randn_like(t) for k, t in a.items()}
    hv = surface.hvp(a, v)
    h = 1e-3  # central differences of the gradient are exact for a quadratic up to rounding
    plus = surface.gradient({k: a[k] + h * v[k] for k in a})
    minus = surface.gradient({k: a[k] - h * v[k] for k in a})
    for key in hv:
        torch.testing.assert_close(hv[key], (plus[key] - minus[key]) / (2 * h), rtol=2e-3, atol=2e-3)


def test_hvp_is_the_known_hessian_times_v(quadratic):
    evaluator, (a, _), q = quadratic
    surface = LossSurface(evaluator, "train")
    torch.manual_seed(6)
    v = {k: torch.randn_like(t) for k, t in a.items()}
    expected = q @ flatten(v).double()
    torch.testing.assert_close(flatten(surface.hvp(a, v)).double(), expected, rtol=1e-5, atol=1e-5)


def test_taylor_estimate_equals_measured_barrier_on_a_quadratic(regs, quadratic):
    evaluator, states, _ = quadratic
    path = regs.paths.create("linear", endpoints=states)
    records, summary = run(regs.metrics.create("taylor_barrier"), path, evaluator)
    assert len(records) == 1 + len(module_groups(states[0]))
    for record in records:  # whole network and every layer; H is constant, so all three agree
        for column in ("predicted_mid", "predicted_a", "predicted_b"):
            assert record[column] == pytest.approx(record["measured"], rel=1e-5, abs=1e-5)
    # and the whole-network value is the midpoint chord barrier of the loss along the line
    ends = (evaluator.evaluate(states[0], "x").loss + evaluator.evaluate(states[1], "x").loss) / 2
    middle = evaluator.evaluate(lerp(*states, 0.5), "x").loss
    assert summary["measured_all"] == pytest.approx(middle - ends, rel=1e-5)
    assert summary["corr_predicted_mid"] == pytest.approx(1.0, abs=1e-6)


def test_curvature_on_a_quadratic(regs, quadratic):
    evaluator, states, q = quadratic
    path = regs.paths.create("linear", endpoints=states)
    metric = regs.metrics.create("curvature", grid=[0.5], iters=500, tol=1e-9)
    records, _ = run(metric, path, evaluator)
    delta = flatten(states[1]).double() - flatten(states[0]).double()
    for record in records:
        expected = float(delta @ q @ delta / (delta @ delta))
        assert record["delta_curvature"] == pytest.approx(expected, rel=1e-5)
        assert record["top_eigenvalue"] == pytest.approx(-2.0, rel=1e-3)  # largest in magnitude


# -- metrics on a trained pair --------------------------------------------------------------------

def test_layerwise_cumulative_ends_at_the_full_barrier(setup):
    regs, states, evaluator = setup
    path = regs.paths.create("linear", endpoints=states)
    for order in ("input", "output", "random"):
        metric = regs.metrics.create("layerwise_barrier", mode="cumulative", order=order, seed=1)
        records, _ = run(metric, path, evaluator)
        last = records[-1]
        assert last["barrier_a"] == pytest.approx(last["full_barrier"], abs=1e-6)
        assert last["barrier_b"] == pytest.approx(last["full_barrier"], abs=1e-6)
        assert sorted(metric.labels(path)) == sorted(f"+{n}" for n in module_groups(states[0]))
    backwards = regs.metrics.create("layerwise_barrier", mode="cumulative", order="output")
    assert backwards.labels(path)[0] == "+head"


def test_single_layer_barrier_is_the_hybrid_midpoint(setup):
    regs, states, evaluator = setup
    a, b = states
    path = regs.paths.create("linear", endpoints=states)
    metric = regs.metrics.create("layerwise_barrier")
    records, summary = run(metric, path, evaluator)
    hybrid = dict(a)
    hybrid.update({k: (a[k] + b[k]) / 2 for k in ("hidden.1.weight", "hidden.1.bias")})
    mean = (evaluator.evaluate(a, "test").loss + evaluator.evaluate(b, "test").loss) / 2
    assert metric.labels(path) == ["hidden.0", "hidden.1", "head"]
    assert records[1]["barrier_a"] == pytest.approx(evaluator.evaluate(hybrid, "test").loss - mean, abs=1e-6)
    assert summary["max_barrier_a"] == max(r["barrier_a"] for r in records)


def test_layerwise_barrier_of_identical_states_is_zero(setup):
    regs, states, evaluator = setup
    path = regs.paths.create("linear", endpoints=[states[0], states[0]])
    records, _ = run(regs.metrics.create("layerwise_barrier"), path, evaluator)
    assert all(abs(r["barrier_a"]) < 1e-6 and abs(r["barrier_b"]) < 1e-6 for r in records)


class DoubleEvaluator(Evaluator):
    """Evaluates in float64, so finite differences of the loss are accurate to many digits."""

    def prepare(self, inputs):
        return super().prepare(inputs).double()


def test_gradient_slope_matches_finite_difference_of_the_loss(setup):
    regs, states, evaluator = setup
    states = [{k: v.double() for k, v in s.items()} for s in states]
    evaluator = DoubleEvaluator(copy.deepcopy(evaluator.module).double(), evaluator.dataset)
    path = regs.paths.create("linear", endpoints=states)
    records, _ = run(regs.metrics.create("gradient", grid=[0.3]), path, evaluator)
    surface = LossSurface(evaluator, "test")
    h = 1e-5
    for record in records:
        t = record["t"]
        if 0.0 < t < 1.0:
            numeric = (surface.value(path.at(t + h)) - surface.value(path.at(t - h))) / (2 * h)
            assert record["slope"] == pytest.approx(numeric, rel=1e-5)
        norms = [record[f"grad_norm@{layer}"] for layer in module_groups(states[0])]
        assert math.sqrt(sum(n * n for n in norms)) == pytest.approx(record["grad_norm"], rel=1e-5)


def test_geometry_distances_and_spawn_angle(setup):
    regs, states, evaluator = setup
    a, b = states
    path = regs.paths.create("linear", endpoints=states)
    records, summary = run(regs.metrics.create("geometry", origin=a), path, evaluator)
    assert summary["distance"] == pytest.approx(distance(a, b), rel=1e-6)
    assert summary["path_length"] == pytest.approx(summary["distance"], rel=1e-5)  # the line
    va, vb = flatten(a).double(), flatten(b).double()
    assert summary["cosine"] == pytest.approx(float(va @ vb / (va.norm() * vb.norm())), rel=1e-6)
    assert math.isnan(summary["spawn_angle"])  # displacement of A from itself is zero
    per_layer = [r["distance"] for r in records[1:]]
    assert math.sqrt(sum(d * d for d in per_layer)) == pytest.approx(summary["distance"], rel=1e-5)
    # two displacements along orthogonal axes from a common origin are 90 degrees apart
    origin = {k: torch.zeros_like(v) for k, v in a.items()}
    x = {k: torch.zeros_like(v) for k, v in a.items()}
    y = {k: torch.zeros_like(v) for k, v in a.items()}
    x["head.bias"][0], y["head.bias"][1] = 1.0, 2.0
    geometry = regs.metrics.create("geometry", origin=origin)
    records, summary = run(geometry, regs.paths.create("linear", endpoints=[x, y]), evaluator)
    assert summary["spawn_angle"] == pytest.approx(90.0)


def test_disagreement_against_direct_predictions(setup):
    regs, states, evaluator = setup
    path = regs.paths.create("linear", endpoints=states)
    records, summary = run(regs.metrics.create("disagreement", grid=3), path, evaluator)
    x, _ = evaluator.data("test")
    with torch.no_grad():
        pa, pb = (evaluator.logits(s, x).argmax(1) for s in states)
    assert records[0]["disagree_a"] == 0.0 and records[-1]["disagree_b"] == 0.0
    assert summary["endpoints"] == pytest.approx(float((pa != pb).float().mean()))


def test_landscape_lattice_and_curve(setup):
    regs, states, evaluator = setup
    plane = regs.paths.create("plane", endpoints=states, mode="curve", grid=3,
                              curve_options={"steps": 20, "lr": 1e-2, "batch_size": 64})
    plane.fit(evaluator)
    metric = regs.metrics.create("landscape", curve_points=5)
    records, summary = run(metric, plane, evaluator)
    lattice, curve = records[:9], records[9:]
    assert [r["on_path"] for r in records] == [0.0] * 9 + [1.0] * 5
    assert len({(r["u"], r["v"]) for r in lattice}) == 9
    assert curve[0]["u"] == pytest.approx(0.0, abs=1e-5) and curve[0]["v"] == pytest.approx(0.0, abs=1e-5)
    assert curve[-1]["u"] == pytest.approx(distance(*states), rel=1e-5)
    assert curve[0]["loss"] == pytest.approx(evaluator.evaluate(states[0], "test").loss)
    assert summary["curve_max_off_plane"] < 1e-3
    corner = lattice[0]
    assert corner["loss"] == pytest.approx(
        evaluator.evaluate(plane.point(corner["u"], corner["v"]), "test").loss)


def test_landscape_has_no_points_off_a_plane(setup):
    regs, states, evaluator = setup
    line = regs.paths.create("linear", endpoints=states)
    metric = regs.metrics.create("landscape")
    assert metric.points(line) == []
    with pytest.raises(ConfigError, match="needs the 'plane' path, not 'linear'"):
        metric.measure(0.0, PathProbe(line, evaluator))


