"""Corrections applied to path points: ``bn_reset`` and ``repair``."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core.errors import ConfigError, DataError
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.core.numerics import collect_moments, module_producers
from ridgeline.core.plugin_host.host import registries
from ridgeline.core.run.training import TrainConfig, train
from ridgeline.core.state import lerp

CORRECTIONS = registries().corrections.list()


@pytest.fixture(scope="module", params=["mlp", "convnet-bn", "convnet"])
def pair(request):
    """Two briefly trained networks (with and without BatchNorm) and an evaluator."""
    torch.set_num_threads(1)
    regs = registries()
    if request.param == "mlp":
        data = regs.datasets.create("synthetic", features=12, num_classes=3, train_size=256, test_size=128)
        model = regs.models.create("mlp", input_shape=data.input_shape, num_classes=3, widths=[16, 16])
    else:
        data = regs.datasets.create("synthetic", num_classes=3, train_size=256, test_size=128,
                                    image_size=[1, 6, 6])
        model = regs.models.create("convnet", input_shape=data.input_shape, num_classes=3,
                                   widths=[6, 8], batchnorm=request.param == "convnet-bn")
    config = TrainConfig(steps=30, batch_size=64)
    a, b = (train(model, data, config, seed=s, progress=False) for s in (0, 1))
    return model, data, a, b, Evaluator(model.build(), data)


@pytest.mark.cuda
def test_repair_statistics_run_on_the_device_and_equal_the_cpu(pair, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # float32 convolutions, as on the CPU
    model, data, a, b, cpu = pair
    gpu = Evaluator(model.build(), data, device="cuda")
    midpoint = lerp(a, b, 0.5)
    repaired = {}
    for name, evaluator in (("cpu", cpu), ("cuda", gpu)):
        repair = registries().corrections.create("repair")
        repair.prepare([a, b], evaluator)  # endpoints on the host, as a script holds them
        repaired[name] = repair, repair.apply(midpoint, 0.5, evaluator)
    (on_cpu, cpu_state), (on_gpu, gpu_state) = repaired["cpu"], repaired["cuda"]
    for producer in on_cpu.producers:
        for endpoint in (0, 1):
            for got, expected in zip(on_gpu.endpoint_stats[endpoint][producer],
                                     on_cpu.endpoint_stats[endpoint][producer]):
                assert got.device.type == "cuda"  # measured on the device
                torch.testing.assert_close(got.cpu(), expected, rtol=1e-4, atol=1e-5)
    for key, value in cpu_state.items():
        assert gpu_state[key].device.type == "cpu"  # the state stays where it was given
        torch.testing.assert_close(gpu_state[key], value, rtol=1e-4, atol=1e-5)
    on_device = on_gpu.apply(gpu.on_device(midpoint), 0.5, gpu)  # a pipeline's states: on the device
    assert all(v.device.type == "cuda" for v in on_device.values())
    torch.testing.assert_close({k: v.cpu() for k, v in on_device.items()}, gpu_state, rtol=1e-5, atol=1e-6)
    expected = cpu.evaluate(cpu_state, "test").loss
    assert gpu.evaluate(gpu_state, "test").loss == pytest.approx(expected, rel=1e-4)


def test_both_corrections_are_registered():
    assert {"bn_reset", "repair"} <= set(CORRECTIONS)


@pytest.mark.parametrize("name", CORRECTIONS)
def test_a_correction_leaves_an_endpoint_working_and_keeps_the_state_keys(pair, name):
    _, data, a, b, evaluator = pair
    correction = registries().corrections.create(name)
    correction.prepare([a, b], evaluator)
    corrected = correction.apply(a, 0.0, evaluator)
    assert set(corrected) == set(a)
    assert all(corrected[k].shape == a[k].shape for k in a)
    before, after = evaluator.evaluate(a, "test"), evaluator.evaluate(corrected, "test")
    assert after.accuracy == pytest.approx(before.accuracy, abs=0.02)
    if name == "repair":  # the endpoint's statistics are already the target: nothing changes
        x, _ = data.split("test")
        assert torch.allclose(evaluator.logits(corrected, x), evaluator.logits(a, x), atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("t", [0.3, 0.5])
def test_repair_gives_every_unit_the_interpolated_statistics(pair, t):
    _, _, a, b, evaluator = pair
    repair = registries().corrections.create("repair")
    repair.prepare([a, b], evaluator)
    assert "head" not in [p.module for p in repair.producers]  # the output is never renormalised
    corrected = repair.apply(lerp(a, b, t), t, evaluator)
    measured = repair.statistics(corrected, evaluator)
    plain = repair.statistics(lerp(a, b, t), evaluator)
    first, last = repair.endpoint_stats
    collapsed = False
    for producer, (mean, std) in measured.items():
        target_mean = (1 - t) * first[producer][0] + t * last[producer][0]
        target_std = (1 - t) * first[producer][1] + t * last[producer][1]
        assert torch.allclose(mean, target_mean, atol=1e-3), producer.module
        assert torch.allclose(std, target_std, rtol=1e-3, atol=1e-3), producer.module
        collapsed |= bool((plain[producer][1] < 0.95 * target_std).any())
    assert collapsed  # without REPAIR some unit's spread had shrunk (variance collapse)


def test_repair_corrects_batchnorm_rather_than_a_biasless_conv(pair):
    model, _, a, b, evaluator = pair
    repair = registries().corrections.create("repair")
    repair.prepare([a, b], evaluator)
    modules = [p.module for p in repair.producers]
    if model.name == "convnet" and model.batchnorm:
        assert modules == ["blocks.0.norm", "blocks.1.norm"]
    elif model.name == "convnet":
        assert modules == ["blocks.0.conv", "blocks.1.conv"]
    else:
        assert modules == ["hidden.0", "hidden.1"]


def test_repair_refuses_misuse(pair):
    model, _, a, b, evaluator = pair
    repair = registries().corrections.create("repair")
    with pytest.raises(ConfigError, match="before prepare"):
        repair.apply(a, 0.5, evaluator)
    with pytest.raises(ConfigError, match="at least 2 examples"):
        registries().corrections.create("repair", examples=1)
    if model.name == "mlp":  # 2 examples give 2 samples per unit, too few for 16 units
        with pytest.raises(DataError, match=r"'hidden.0' \(16 units\) need at least 17 samples"):
            registries().corrections.create("repair", examples=2).prepare([a, b], evaluator)


def test_bn_reset_recomputes_running_statistics_and_nothing_else(pair):
    model, _, a, b, evaluator = pair
    if not getattr(model, "batchnorm", False):
        pytest.skip("bn_reset passes networks without BatchNorm through")
    mid = lerp(a, b, 0.5)
    reset = registries().corrections.create("bn_reset").apply(mid, 0.5, evaluator)
    for key in mid:
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(reset[key], mid[key])
    # the first block's running mean is now the mean of its conv outputs on the training split
    first = [p for p in module_producers(evaluator.module) if p.module == "blocks.0.conv"]
    conv = next(iter(collect_moments(evaluator, [reset], first).values()))
    assert torch.allclose(reset["blocks.0.norm.running_mean"], conv.mean.float(), atol=1e-4)


def test_repair_streams_uneven_batches_and_pools_their_statistics(pair, monkeypatch):
    model, data, a, b, _ = pair
    monkeypatch.setattr(data, "split", lambda split: pytest.fail(f"whole split {split!r} requested"))
    evaluator = Evaluator(model.build(), data)
    sizes = []
    evaluator.module.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    repair = registries().corrections.create("repair", examples=250, batch_size=100)
    repair.prepare([a, b], evaluator)
    sizes.clear()
    corrected = repair.apply(lerp(a, b, 0.5), 0.5, evaluator)
    assert sizes == [100, 100, 50]
    first = repair.producers[0]  # its input does not depend on the batching: pooled means exact
    mean, std = repair.statistics(corrected, evaluator)[first]
    (mean_a, std_a), (mean_b, std_b) = (stats[first] for stats in repair.endpoint_stats)
    assert torch.allclose(mean, (mean_a + mean_b) / 2, atol=1e-4)
    assert torch.allclose(std, (std_a + std_b) / 2, rtol=1e-4, atol=1e-4)


def test_bn_reset_takes_its_number_of_passes(pair):
    model, data, a, b, _ = pair
    with pytest.raises(ConfigError, match="bn_reset passes must be a positive integer, got 0"):
        registries().corrections.create("bn_reset", passes=0)
    if not getattr(model, "batchnorm", False):
        return
    evaluator = Evaluator(model.build(), data, batch_size=100)  # 256 examples: 100 + 100 + 56
    mid = lerp(a, b, 0.5)
    once = registries().corrections.create("bn_reset").apply(mid, 0.5, evaluator)
    twice = registries().corrections.create("bn_reset", passes=2).apply(mid, 0.5, evaluator)
    key = "blocks.{}.norm.running_var"
    assert torch.allclose(once[key.format(0)], twice[key.format(0)], rtol=1e-5)  # exact after one pass
    assert not torch.allclose(once[key.format(1)], twice[key.format(1)], rtol=1e-5)  # refined
