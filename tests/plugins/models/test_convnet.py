"""The ``convnet`` model plugin: its hand-written spec, and activation hooks on conv + BN."""

from __future__ import annotations

import contextlib

import pytest
import torch

from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.aligner import AlignContext
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.numerics import producers
from ridgeline.core.plugin_host.host import registries


def convnet(**options):
    return registries().models.create("convnet", input_shape=(1, 8, 8), num_classes=10, **options)


@pytest.mark.parametrize("options", [{}, {"batchnorm": False}, {"widths": [6, 5], "pool_every": 0},
                                     {"widths": [4, 6, 8, 5], "pool_every": 1}])
def test_spec_preserves_the_function_and_covers_every_channel(options):
    torch.set_num_threads(1)
    model = convnet(**options)
    module = model.build()
    spec = model.spec()
    check = spec.verify(module, model.example_input(4))
    assert check.passed
    widths = model.widths
    assert list(spec.groups.values()) == widths
    out = module(model.example_input(3))
    assert out.shape == (3, 10)
    state = module.state_dict()
    assert ("blocks.0.norm.running_mean" in state) == model.batchnorm
    assert ("blocks.0.conv.bias" in state) == (not model.batchnorm)
    # every tensor with a channel axis of a block is in the spec
    touched = spec.keys
    assert all(k in touched for k in state if k.startswith("blocks.") and "num_batches" not in k)


def test_conv_and_batchnorm_are_both_producers_of_a_block():
    model = convnet(widths=[4, 6])
    found = producers(model.build(), model.spec())
    assert [p.module for p in found["blocks.0"]] == ["blocks.0.conv", "blocks.0.norm"]
    assert all(p.unit_axis == 1 for ps in found.values() for p in ps)


def test_bad_shapes_and_widths_are_refused():
    with pytest.raises(ConfigError, match=r"C x H x W.*\(64,\)"):
        registries().models.create("convnet", input_shape=(64,), num_classes=10)
    with pytest.raises(ConfigError, match="positive"):
        convnet(widths=[4, 0])


@pytest.mark.parametrize("name", ["weight_matching", "activation_matching", "ot_fusion"])
def test_aligners_recover_a_planted_permutation_on_a_batchnorm_convnet(name):
    torch.set_num_threads(1)
    regs = registries()
    data = regs.datasets.create("digits")
    model = convnet(widths=[6, 8])
    spec = model.spec()
    a = model.init_state(0)
    a = {k: (v + 0.1 * torch.rand_like(v)) if "running_var" in k else v for k, v in a.items()}
    other = spec.apply(a, spec.random(torch.Generator().manual_seed(0)))
    context = AlignContext(evaluator=Evaluator(model.build(), data))
    alignment = regs.aligners.create(name).align(a, other, spec, context)
    aligned = alignment.apply(spec, other)
    assert all(torch.equal(aligned[k], a[k]) for k in a)


@pytest.mark.parametrize(("name", "options"), [("ste", {"steps": 3}),
                                               ("sinkhorn", {"objective": "midpoint", "steps": 3})])
def test_loss_driven_aligners_handle_batchnorm_buffers(name, options):
    """Running statistics are permuted with the units but must not require gradients."""
    torch.set_num_threads(1)
    regs = registries()
    data = regs.datasets.create("digits")
    model = convnet(widths=[6, 8])
    spec = model.spec()
    a, b = model.init_state(0), model.init_state(1)
    evaluator = Evaluator(model.build(), data)
    with pytest.warns(RuntimeWarning) if name == "sinkhorn" else contextlib.nullcontext():
        alignment = regs.aligners.create(name, **options).align(a, b, spec, AlignContext(evaluator=evaluator))
    x, _ = data.split("test")
    aligned = alignment.apply(spec, b)
    assert torch.allclose(evaluator.logits(aligned, x), evaluator.logits(b, x), atol=1e-5)
