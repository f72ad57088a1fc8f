"""The ``timm`` model plugin: any architecture by name, random init or a local checkpoint,
never a download."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core.checkpoint import save_state
from ridgeline.core.errors import CheckpointError, ConfigError, UnknownEntryError


def make(regs, **options):
    return regs.models.create("timm", input_shape=(3, 32, 32), num_classes=4, arch="test_resnet", **options)


def test_builds_a_random_timm_model_with_our_classes_and_channels(regs):
    model = make(regs)
    module = model.build().eval()
    assert module(model.example_input(2)).shape == (2, 4)
    gray = regs.models.create("timm", input_shape=(1, 16, 16), num_classes=3, arch="test_resnet")
    assert gray.build().eval()(gray.example_input(2)).shape == (2, 3)


def test_loads_a_local_checkpoint(regs, tmp_path):
    model = make(regs)
    state = model.init_state(7)
    path = save_state(tmp_path / "w.safetensors", state)
    loaded = make(regs, checkpoint=str(path)).build().state_dict()
    for key in state:
        assert torch.equal(loaded[key], state[key])
    with pytest.raises(CheckpointError, match="does not exist"):
        make(regs, checkpoint=str(tmp_path / "nope.safetensors")).build()


def test_pretrained_weights_are_refused_and_unknown_archs_get_close_matches(regs):
    with pytest.raises(ConfigError, match="downloaded"):
        make(regs, pretrained=True)
    with pytest.raises(UnknownEntryError, match="resnet18"):
        regs.models.create("timm", input_shape=(3, 32, 32), num_classes=4, arch="resnet1")


def test_without_an_input_shape_the_architecture_takes_its_own(regs):
    from ridgeline.plugins.models.timm_models import TimmModel

    assert TimmModel.native_input(arch="test_vit") == ((3, 160, 160), 1000)
    assert TimmModel.native_input(arch="test_vit", img_size=32) == ((3, 32, 32), 1000)
    assert TimmModel.resolve("resnet26d") == {"arch": "resnet26d"} and TimmModel.resolve("nope") is None
    assert "resnet26d" in TimmModel.architectures("resnet2*")
    model = regs.models.create("timm", arch="test_resnet")
    assert model.input_shape == (3, 160, 160) and model.num_classes == 1000
    with pytest.raises(ConfigError, match="takes only 160x160 inputs"):
        regs.models.create("timm", input_shape=(3, 32, 32), num_classes=4, arch="test_vit")
