"""The units after the nonlinearity: found in the traced graph of every model family, applied
exactly, and used by activation matching by default."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core.errors import ConfigError
from ridgeline.core.interfaces.aligner import AlignContext
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.numerics import producers, stream_moments
from ridgeline.core.numerics.nonlinearities import post_activations
from ridgeline.core.symmetry.spec import AxisRef

IMAGE = {"name": "synthetic", "image_size": [3, 16, 16], "train_size": 64, "test_size": 32}
CASES = {  # model, dataset, {producer module: the nonlinearity found after it (None: none)}
    "mlp": ({"name": "mlp", "widths": [16, 8]}, {"name": "synthetic"},
            {"hidden.0": "relu", "hidden.1": "relu"}),
    "convnet": ({"name": "convnet", "widths": [4, 4]}, IMAGE,  # the BatchNorm's ReLU, not the conv's
                {"blocks.0.conv": None, "blocks.0.norm": "relu", "blocks.1.norm": "relu"}),
    "convnet-no-bn": ({"name": "convnet", "widths": [4, 4], "batchnorm": False}, IMAGE,  # past nn.Identity
                      {"blocks.0.conv": "relu", "blocks.1.conv": "relu"}),
    "resnet18": ({"name": "timm", "arch": "resnet18"}, IMAGE,  # past drop_block; not a residual stream
                 {"bn1": "ReLU", "layer1.0.bn1": "ReLU", "layer1.0.bn2": None,
                  "layer2.0.downsample.1": None}),
    "vit": ({"name": "timm", "arch": "vit_tiny_patch16_224", "img_size": 16, "patch_size": 8, "depth": 1},
            IMAGE, {"blocks.0.mlp.fc1": "GELU", "blocks.0.attn.qkv": None, "blocks.0.mlp.fc2": None}),
    "efficientnet": ({"name": "timm", "arch": "efficientnet_b0"}, IMAGE,  # BatchNormAct2d applies its own
                     {"bn1": "SiLU inside BatchNormAct2d", "conv_stem": None}),
}


def build(regs, model: dict, dataset: dict):
    data = regs.datasets.create(dataset["name"], **{k: v for k, v in dataset.items() if k != "name"})
    model = regs.models.create(model["name"], input_shape=data.input_shape, num_classes=data.num_classes,
                               **{k: v for k, v in model.items() if k != "name"})
    return data, model


@pytest.mark.parametrize("case", CASES)
def test_the_nonlinearity_after_each_producer_is_found_in_the_graph(regs, case):
    model_config, dataset_config, expected = CASES[case]
    _, model = build(regs, model_config, dataset_config)
    module = model.build()
    plist = [p for ps in producers(module, model.spec().without_nested()).values() for p in ps]
    by_module = {p.module: p for p in plist}
    found = {p.module: post.name for p, post in post_activations(module, plist).items()}
    for name, activation in expected.items():
        assert name in by_module, name
        assert found.get(name) == activation, name


def test_post_features_are_the_activation_of_the_pre_features_exactly(regs):
    data, model = build(regs, {"name": "mlp", "widths": [16, 8]}, {"name": "synthetic"})
    evaluator = Evaluator(model.build(), data)
    states = [model.init_state(0), model.init_state(1)]
    spec = model.spec()
    post = stream_moments(evaluator, states, spec, features="post", split="test")
    pre = stream_moments(evaluator, states, spec, features="pre", split="test")
    x, _ = evaluator.data("test")
    with torch.no_grad():
        hidden = torch.relu(torch.func.functional_call(evaluator.module.hidden[0], {
            "weight": states[1]["hidden.0.weight"], "bias": states[1]["hidden.0.bias"]}, (x,)))
    (moments,) = post["hidden.0"]
    assert moments.features == "post" and pre["hidden.0"][0].features == "pre"
    torch.testing.assert_close(moments.mean[16:], hidden.double().mean(0))  # network 1's units
    assert not torch.allclose(moments.mean, pre["hidden.0"][0].mean)
    with pytest.raises(ConfigError, match="features must be one of"):
        stream_moments(evaluator, states, spec, features="after")


def test_activation_matching_uses_post_activations_and_notes_groups_without_one(regs):
    vit = {"name": "timm", "arch": "vit_tiny_patch16_224", "img_size": 16, "patch_size": 8, "depth": 1,
           "embed_dim": 16, "num_heads": 2}
    data, model = build(regs, vit, IMAGE)
    context = AlignContext(evaluator=Evaluator(model.build(), data), split="train")
    spec = model.spec().without_nested()
    a, b = model.init_state(0), model.init_state(1)
    alignment = regs.aligners.create("activation_matching", examples=64).align(a, b, spec, context)
    features = alignment.diagnostics["features"]
    fc1 = next(g for g, refs in spec.axes.items() if AxisRef("blocks.0.mlp.fc1.weight", 0) in refs)
    assert features[fc1] == "post" and "pre" in features.values()  # the residual stream, the heads
    assert "matched on pre-activations" in alignment.diagnostics["note"]
    pre = regs.aligners.create("activation_matching", features="pre", examples=64)
    assert set(pre.align(a, b, spec, context).diagnostics["features"].values()) == {"pre"}
    assert not torch.equal(pre.align(a, b, spec, context).perms[fc1], alignment.perms[fc1])
