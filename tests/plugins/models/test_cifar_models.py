"""``cifar_resnet`` and ``cifar_vgg``: the architectures of the papers, specs from the tracer."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core.errors import ConfigError
from ridgeline.core.symmetry.derive import generic_state
from ridgeline.plugins.aligners.weight_matching import weight_matching

CASES = [
    ("cifar_resnet", {"depth": 20}, (3, 8, 8)),
    ("cifar_resnet", {"depth": 20, "norm": "layernorm", "width": 2}, (3, 8, 8)),
    ("cifar_resnet", {"depth": 20, "norm": "none"}, (1, 8, 8)),
    ("cifar_resnet", {"depth": 32}, (3, 8, 8)),
    pytest.param("cifar_resnet", {"depth": 56}, (3, 8, 8), marks=pytest.mark.slow),
    ("cifar_vgg", {"depth": 11}, (3, 32, 32)),
    ("cifar_vgg", {"depth": 11, "norm": "layernorm"}, (3, 32, 32)),
    pytest.param("cifar_vgg", {"depth": 16, "norm": "none"}, (3, 32, 32), marks=pytest.mark.slow),
]


def _groups(name: str, options: dict) -> int:
    if name == "cifar_resnet":  # one group inside each block, plus one residual stream per stage
        return (options["depth"] - 2) // 2 + 3
    return {11: 8, 13: 10, 16: 13, 19: 16}[options["depth"]]  # one per conv


@pytest.mark.parametrize(("name", "options", "shape"), CASES)
def test_specs_are_derived_with_full_coverage_and_pass_their_check(regs, name, options, shape):
    model = regs.models.create(name, input_shape=shape, num_classes=10, **options)
    spec = model.spec()
    module = model.build()
    check = spec.check(module, model.example_input(4, seed=3), state=generic_state(module))
    assert check.passed and check.worst_ratio > 0
    assert spec.coverage() == 1.0 and not spec.frozen
    assert len(spec.groups) == _groups(name, options)
    assert module(model.example_input(2)).shape == (2, 10)


def test_the_papers_parameter_counts(regs):
    def millions(name, **options):
        module = regs.models.create(name, input_shape=(3, 32, 32), num_classes=10, **options).build()
        return sum(p.numel() for p in module.parameters()) / 1e6

    assert millions("cifar_resnet") == pytest.approx(0.27, abs=0.005)  # He et al. 2016, Table 6
    assert millions("cifar_resnet", depth=56) == pytest.approx(0.85, abs=0.01)
    assert millions("cifar_resnet", width=4) == pytest.approx(16 * 0.27, rel=0.02)  # width^2 growth
    assert millions("cifar_vgg", depth=11) == pytest.approx(9.23, abs=0.01)


def test_layernorm_normalises_the_channels_at_every_position(regs):
    model = regs.models.create("cifar_resnet", input_shape=(3, 8, 8), num_classes=10, norm="layernorm")
    norm = model.build().norm1
    x = torch.randn(2, 16, 4, 4)
    expected = (x - x.mean(1, keepdim=True)) / (x.var(1, correction=0, keepdim=True) + 1e-5).sqrt()
    torch.testing.assert_close(norm(x), expected, rtol=1e-4, atol=1e-5)


def test_weight_matching_recovers_a_planted_permutation_of_resnet20(regs):
    model = regs.models.create("cifar_resnet", input_shape=(3, 8, 8), num_classes=10)
    spec = model.spec()
    state = model.init_state(0)
    planted = spec.apply(state, spec.random(torch.Generator().manual_seed(1)))
    perms, _ = weight_matching(spec, state, planted, seed=0)
    aligned = spec.apply(planted, perms)
    assert max(float((aligned[k] - state[k]).abs().max()) for k in state) == 0


@pytest.mark.parametrize(("name", "options", "shape", "message"), [
    ("cifar_resnet", {"depth": 21}, (3, 32, 32), r"depth is 6n \+ 2 \(20, 32, 44, 56, 110\), got 21"),
    ("cifar_resnet", {"width": 0}, (3, 32, 32), "width is a positive integer multiplier"),
    ("cifar_resnet", {"norm": "groupnorm"}, (3, 32, 32),
     "norm = 'groupnorm' must be one of 'batchnorm', 'layernorm', 'none'"),
    ("cifar_resnet", {}, (40,), r"needs C x H x W image inputs \(CIFAR's are 3x32x32\), but the dataset's "
                                r"examples have shape \(40,\)"),
    ("cifar_vgg", {"depth": 12}, (3, 32, 32), r"depth must be one of \[11, 13, 16, 19\]"),
    ("cifar_vgg", {}, (1, 8, 8), r"needs at least 32 x 32 inputs, got input_shape \(1, 8, 8\)"),
])
def test_bad_options_are_refused_by_name(regs, name, options, shape, message):
    with pytest.raises(ConfigError, match=message):
        regs.models.create(name, input_shape=shape, num_classes=10, **options)
