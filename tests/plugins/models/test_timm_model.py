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
