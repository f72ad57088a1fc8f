"""The ``timm`` model plugin: any architecture by name, random init or a local checkpoint,
never a download."""

from __future__ import annotations

import pytest
import torch

from ridgeline.core.checkpoint import save_state
from ridgeline.core.errors import CheckpointError, ConfigError, StateMismatchError, UnknownEntryError


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


def test_coat_lite_tiny_with_shared_position_encodings_derives_and_checks_at_native_size(regs, tmp_path):
    # CoaT registers each stage's convolutional position encodings once per block that calls them
    # (issue 14): 32 tensors under 2 or 3 names each
    model = regs.models.create("timm", input_shape=(3, 224, 224), num_classes=10, arch="coat_lite_tiny")
    spec = model.spec()  # derived and checked (Model.spec raises if the check fails)
    ties = model.ties()
    assert len(ties.groups) == 32 and ties.aliases["serial_blocks4.0.factoratt_crpe.crpe.conv_list.0.bias"] \
        == "crpe4.conv_list.0.bias"
    assert spec.ties == ties and not spec.keys & set(ties.aliases)
    assert {"cpe1.proj.weight", "cpe4.proj.bias"} <= spec.keys and spec.coverage() > 0.5
    state = model.init_state(0)
    moved = spec.apply(state, spec.random(torch.Generator().manual_seed(1)))
    assert not ties.disagreements(moved)
    edited = dict(state, **{"serial_blocks1.1.cpe.proj.bias": state["cpe1.proj.bias"] + 1})
    path = save_state(tmp_path / "edited.safetensors", edited)
    refused = r"'cpe1\.proj\.bias' and 'serial_blocks1\.1\.cpe\.proj\.bias'"
    with pytest.raises(StateMismatchError, match=refused):
        regs.models.create("timm", input_shape=(3, 224, 224), num_classes=10, arch="coat_lite_tiny",
                           checkpoint=str(path)).build()


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
