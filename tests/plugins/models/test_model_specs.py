"""Derived specs of the model plugins: check passes, coverage, and planted-permutation recovery.

The architectures are the issue's acceptance list, built small where timm allows (3 classes,
32x32 inputs, ``img_size=32`` for the transformers, a narrow VGG head); docs/specs.md records
the figures of a full run (``pytest -m slow`` adds the heaviest).
"""

from __future__ import annotations

import pytest
import torch

from ridgeline.core.symmetry.derive import generic_state
from ridgeline.plugins.aligners.weight_matching import recover_planted


def _case(arch: str, options: dict, coverage: float, *, slow: bool = False, size: int = 32):
    options = {**options, "_size": size}
    return pytest.param(arch, options, coverage, id=arch, marks=[pytest.mark.slow] if slow else [])


# (architecture, timm options, least coverage expected)
ARCHITECTURES = [
    _case("test_resnet", {}, 1.0),
    _case("test_efficientnet", {}, 1.0),
    _case("test_convnext", {}, 1.0),
    _case("test_vit", {"img_size": 32}, 1.0),
    _case("test_vit4", {"img_size": 32}, 1.0),  # timm's RmsNorm and F.rms_norm
    _case("test_efficientnet_evos", {}, 1.0),  # EvoNorm2dS0's per-group statistics
    _case("test_byobnet", {}, 1.0),
    _case("test_nfnet", {}, 1.0),
    _case("resnet18", {}, 1.0),
    _case("resnet50", {}, 1.0, slow=True),
    _case("vgg11_bn", {"mlp_ratio": 0.0625}, 1.0),
    _case("densenet121", {}, 1.0, slow=True),
    _case("efficientnet_b0", {}, 1.0),
    _case("mobilenetv3_small_100", {}, 1.0),
    _case("convnext_atto", {}, 1.0),
    _case("regnetx_002", {}, 1.0),
    _case("vit_tiny_patch16_224", {"img_size": 32}, 1.0),
    _case("deit_tiny_patch16_224", {"img_size": 32}, 1.0),
    # token-mixing outputs are added to the fixed token axis: frozen, the rest is free
    _case("mixer_s16_224", {"img_size": 32}, 0.99),
    # issue 11's families, small: split channels, reshaped heads, concatenated qkv biases, padding,
    # untraceable timm modules (docs/specs.md has them at native size: benchmarks/spec_coverage.py)
    _case("cs3darknet_s", {}, 1.0, size=64),
    _case("cspresnet50", {}, 1.0, size=64, slow=True),
    _case("res2net50_14w_8s", {"layers": [1, 1, 1, 1], "channels": (16, 32, 64, 128), "stem_width": 16}, 1.0),
    _case("cait_xxs24_224", {"img_size": 32, "depth": 2, "depth_token_only": 1}, 1.0),
    _case("beit_base_patch16_224",
          {"img_size": 32, "patch_size": 4, "depth": 2, "embed_dim": 64, "num_heads": 4, "init_values": None},
          1.0),
    _case("eva02_tiny_patch14_224", {"img_size": 28, "depth": 2}, 1.0, size=28),
    _case("pvt_v2_b0", {}, 1.0, size=64),
    _case("swin_tiny_patch4_window7_224",
          {"img_size": 32, "window_size": 2, "depths": (1, 1, 1, 1), "embed_dim": 32}, 1.0),
    _case("edgenext_xx_small", {}, 1.0, size=64),
    _case("ghostnet_100", {}, 1.0),
    _case("efficientvit_b0", {}, 1.0, size=64),
    _case("mobilevit_xxs", {}, 1.0, size=64),
    _case("hgnetv2_b0", {}, 1.0, size=64),
    _case("dla34", {}, 1.0, size=64, slow=True),
    # token mixing reaches the input's patch grid: frozen, as for the mixer
    _case("resmlp_12_224", {"img_size": 32}, 0.88, slow=True),
]


def _timm(regs, arch, options):
    pytest.importorskip("timm")
    options = dict(options)
    size = options.pop("_size", 32)
    return regs.models.create("timm", input_shape=(3, size, size), num_classes=3, arch=arch, **options)


def planted_recovery(model) -> tuple[float, str]:
    """Permute a model at random, re-align it with weight_matching; the largest entry-wise
    distance left and the sweep order that reached it; an exact recovery reaches <A, A>."""
    distance, order, _, objective = recover_planted(model.spec(), model.init_state(0), seed=1)
    if distance == 0:
        assert objective == pytest.approx(1.0, rel=1e-9)
    return distance, order


@pytest.mark.parametrize(("arch", "options", "coverage"), ARCHITECTURES)
def test_timm_spec_is_checked_covers_hidden_units_and_weight_matching_recovers_it(
        regs, arch, options, coverage):
    model = _timm(regs, arch, options)
    spec = model.spec()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = model.build()
    check = spec.check(module, model.example_input(4, seed=3), state=generic_state(module))
    assert check.passed and check.worst_ratio > 0  # outputs really depend on the weights
    assert spec.coverage() >= coverage
    distance, order = planted_recovery(model)
    assert distance == 0, f"{arch}: distance {distance} after weight matching ({order} order)"


def test_residual_inner_blocks_stay_free(regs):
    spec = _timm(regs, "resnet18", {}).spec()
    inner = [g for g in spec.groups if g.endswith(".conv1")]
    assert len(inner) == 8  # one per BasicBlock, separate from the residual stream
    streams = {g for g in spec.groups if g not in inner}
    assert sum(spec.groups[g] for g in inner) > sum(spec.groups[g] for g in streams)


def test_mlp_plugin_derives_the_hand_written_spec(small_mlp):
    derived, written = small_mlp.spec(), small_mlp.hand_written_spec()

    def shape(spec):
        return sorted((n, frozenset(spec.axes[g])) for g, n in spec.groups.items())

    assert shape(derived) == shape(written)
    assert derived.frozen == {} and derived.coverage() == 1.0
    assert planted_recovery(small_mlp)[0] == 0


def test_specs_are_cached_per_config(regs, small_mlp):
    assert small_mlp.spec() is small_mlp.spec()
    other = regs.models.create("mlp", input_shape=small_mlp.input_shape,
                               num_classes=small_mlp.num_classes, widths=[16, 8])
    assert other.spec().groups == {"hidden.0": 16, "hidden.1": 8}


def test_spec_report_lists_groups_tensors_frozen_groups_and_the_check(regs):
    from ridgeline.core.symmetry.report import format_spec_report

    report = format_spec_report(_timm(regs, "mixer_s16_224", {"img_size": 32}), seeds=2)
    assert "blocks.0.mlp_channels.fc1: 2048" in report
    assert "blocks.0.mlp_channels.fc1.weight[0]" in report
    assert "blocks.0.mlp_tokens.fc2 (4 units): joined at" in report
    assert "coverage: 99." in report and "check: passed (2 random permutations" in report
