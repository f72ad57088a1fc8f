"""Path plugins: every registered path is a curve from its first endpoint, fitted paths lower
the loss they minimise, and each path's own geometry (layer selection, plane coordinates) holds."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.numerics import bernstein, chain_coefficients
from ridgeline.core.run.training import TrainConfig, train
from ridgeline.core.state import distance, lerp, module_groups

FIT = {"steps": 40, "lr": 1e-2, "batch_size": 64, "seed": 0}

# options per registered path (a new path must be added here) and how many endpoints it takes
PATHS = {
    "linear": ({}, 2),
    "bezier": (FIT, 2),
    "polychain": ({**FIT, "bends": 2}, 2),
    "layerwise": ({"layers": ["hidden.1"]}, 2),
    "star": (FIT, 3),
    "plane": ({"mode": "three", "grid": 3}, 3),
}


@pytest.fixture(scope="module")
def trained():
    """Three tiny mlps trained from different seeds on a synthetic task, and an evaluator."""
    from ridgeline.core.plugin_host.host import registries

    regs = registries()
    data = regs.datasets.create("synthetic", features=12, num_classes=3, train_size=256, test_size=128)
    model = regs.models.create("mlp", input_shape=data.input_shape, num_classes=data.num_classes,
                               widths=[16, 16])
    config = TrainConfig(steps=150, batch_size=32, lr=1e-2)
    states = [train(model, data, config, seed=s, progress=False) for s in range(3)]
    return states, Evaluator(model.build(), data)


def max_train_loss(path, evaluator, n=11):
    return max(evaluator.evaluate(path.at(i / (n - 1)), "train").loss for i in range(n))


def test_every_registered_path_is_covered(regs):
    assert set(regs.paths.list()) == set(PATHS)


@pytest.mark.parametrize("name", sorted(PATHS))
def test_path_starts_at_first_endpoint_and_coefficients_sum_to_one(regs, trained, name):
    states, evaluator = trained
    options, count = PATHS[name]
    path = regs.paths.create(name, endpoints=states[:count], **options)
    if path.trainable:
        path.fit(evaluator)
    assert distance(path.at(0.0), states[0]) < 1e-5
    for t in (0.0, 0.3, 0.5, 0.8, 1.0):
        assert float(path.coefficients(t).sum()) == pytest.approx(1.0)
    for label, segment in path.segments().items():
        assert segment.at(0.5).keys() == states[0].keys(), label


@pytest.mark.parametrize("name", ["bezier", "polychain"])
def test_unfitted_curve_is_the_line(regs, trained, name):
    states, _ = trained
    curve = regs.paths.create(name, endpoints=states[:2], **PATHS[name][0])
    for t in (0.0, 0.25, 0.6, 1.0):
        assert distance(curve.at(t), lerp(states[0], states[1], t)) < 1e-4


@pytest.mark.parametrize("name", ["bezier", "polychain"])
def test_fitted_curve_keeps_endpoints_and_lowers_the_max_loss(regs, trained, name):
    states, evaluator = trained
    line = regs.paths.create("linear", endpoints=states[:2])
    curve = regs.paths.create(name, endpoints=states[:2], **{**PATHS[name][0], "steps": 120})
    report = curve.fit(evaluator)
    assert distance(curve.at(1.0), states[1]) < 1e-5
    assert report["last_loss"] < report["first_loss"]
    assert max_train_loss(curve, evaluator) < max_train_loss(line, evaluator)


def test_star_lines_run_from_the_centre_and_fitting_lowers_them(regs, trained):
    states, evaluator = trained
    star = regs.paths.create("star", endpoints=states, **{**FIT, "steps": 120})
    before = {k: max_train_loss(s, evaluator) for k, s in star.segments().items()}
    star.fit(evaluator)
    segments = star.segments()
    assert list(segments) == ["model0", "model1", "model2"]
    for i, segment in enumerate(segments.values()):
        assert distance(segment.at(0.0), star.centre) < 1e-6
        assert distance(segment.at(1.0), states[i]) < 1e-6
    after = {k: max_train_loss(s, evaluator) for k, s in segments.items()}
    assert sum(after.values()) < sum(before.values())


def test_star_needs_three_models(regs, trained):
    with pytest.raises(ConfigError, match="at least 3 models"):
        regs.paths.create("star", endpoints=trained[0][:2])


def test_fit_options_are_checked(regs, trained):
    with pytest.raises(ConfigError, match="no option.*stepz.*allowed"):
        regs.paths.create("bezier", endpoints=trained[0][:2], stepz=3)


def test_bernstein_and_chain_coefficients():
    assert bernstein(0.5, 2).tolist() == [0.25, 0.5, 0.25]
    assert chain_coefficients(0.25, 3).tolist() == [0.5, 0.5, 0.0]
    assert chain_coefficients(1.0, 4).tolist() == [0.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(("options", "chosen"), [
    ({"layers": ["hidden.1"]}, ["hidden.1"]),
    ({"layers": ["hidden.*"]}, ["hidden.0", "hidden.1"]),
    ({"prefix": 2}, ["hidden.0", "hidden.1"]),
    ({"suffix": 1, "anchor": "b"}, ["head"]),
])
def test_layerwise_moves_only_the_chosen_layers(regs, trained, options, chosen):
    a, b = trained[0][:2]
    path = regs.paths.create("layerwise", endpoints=[a, b], **options)
    anchor = b if options.get("anchor") == "b" else a
    assert path.layers == chosen
    middle = path.at(0.5)
    for layer, keys in module_groups(a).items():
        for key in keys:
            expected = (a[key] + b[key]) / 2 if layer in chosen else anchor[key]
            torch.testing.assert_close(middle[key], expected)


def test_layerwise_unknown_layer_names_the_layers(regs, trained):
    with pytest.raises(ConfigError, match="no layer matches 'conv1'.*hidden.0, hidden.1, head"):
        regs.paths.create("layerwise", endpoints=trained[0][:2], layers=["conv1"])


def test_plane_through_three_states_has_them_at_their_coordinates(regs, trained):
    states, _ = trained
    plane = regs.paths.create("plane", endpoints=states, mode="three", grid=4)
    coords = [plane.project(s) for s in states]
    assert coords[0][:2] == pytest.approx((0.0, 0.0), abs=1e-5)
    assert coords[1][0] == pytest.approx(distance(states[0], states[1]), rel=1e-5)
    assert coords[1][1] == pytest.approx(0.0, abs=1e-4)
    for state, (u, v, off) in zip(states, coords):
        assert off < 1e-3
        assert distance(plane.point(u, v), state) < 1e-3
    points = plane.grid_points()
    assert len(points) == 16
    us = sorted({p[0] for p in points})
    assert us[0] < 0.0 < distance(states[0], states[1]) < us[-1]  # the margin frames every state


def test_plane_mode_defaults_to_the_states_given(regs, trained):
    states, _ = trained
    assert regs.paths.create("plane", endpoints=states, grid=2).mode == "three"
    assert regs.paths.create("plane", endpoints=states[:2], grid=2).mode == "curve"
    with pytest.raises(ConfigError, match="mode 'three' needs 3 states"):
        regs.paths.create("plane", endpoints=states[:2], mode="three")


def test_plane_random_directions_are_filter_normalised(regs, trained):
    a, b = trained[0][:2]
    plane = regs.paths.create("plane", endpoints=[a, b], mode="random", seed=3)
    for direction in plane.directions:
        for key, d in direction.items():
            if a[key].dim() < 2:
                assert torch.count_nonzero(d) == 0
            else:
                torch.testing.assert_close(d.norm(dim=1), a[key].norm(dim=1), rtol=1e-4, atol=1e-6)


def test_plane_curve_mode_holds_the_fitted_bezier(regs, trained):
    states, evaluator = trained
    plane = regs.paths.create("plane", endpoints=states[:2], mode="curve", grid=3, curve_options=FIT)
    assert plane.trainable
    plane.fit(evaluator)
    for t in (0.2, 0.5, 0.9):
        assert plane.project(plane.at(t))[2] < 1e-3  # a quadratic Bezier lies in its plane


@pytest.mark.parametrize(("name", "options", "count"), [
    ("bezier", FIT, 2), ("polychain", {**FIT, "bends": 2}, 2), ("star", FIT, 3),
    ("plane", {"mode": "curve", "grid": 3, "curve_options": {**FIT, "steps": 10}}, 2)])
def test_a_fitted_path_is_restored_exactly_from_its_fitted_states(trained, name, options, count):
    from ridgeline.core.plugin_host.host import registries

    states, evaluator = trained
    fitted = registries().paths.create(name, endpoints=states[:count], **options)
    fitted.fit(evaluator)
    restored = registries().paths.create(name, endpoints=states[:count], **options)
    restored.restore([dict(s) for s in fitted.fitted()])
    for t in (0.25, 0.5):
        assert distance(fitted.at(t), restored.at(t)) == 0.0
    for (label, a), (_, b) in zip(fitted.segments().items(), restored.segments().items()):
        assert distance(a.at(0.5), b.at(0.5)) == 0.0, label
