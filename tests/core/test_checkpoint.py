from __future__ import annotations

import pickle

import pytest
import torch

from ridgeline.core.checkpoint import load_metadata, load_state, save_state
from ridgeline.core.errors import CheckpointError


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_round_trip_with_metadata(tmp_path, suffix):
    state = {"a.weight": torch.randn(3, 2), "a.n": torch.tensor(4)}
    path = save_state(tmp_path / f"m{suffix}", state, {"seed": 7})
    loaded = load_state(path)
    assert set(loaded) == set(state)
    for key in state:
        assert torch.equal(loaded[key], state[key])
    assert load_metadata(path)["seed"] == 7


class Payload:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match="unpickl"):
        load_state(path)


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        load_state(path)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(pickle.dumps("x")[:3])
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_state(garbage)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_tensor_shared_by_several_names_is_saved_under_every_name(tmp_path, suffix):
    module = torch.nn.Module()
    module.a = torch.nn.Linear(2, 2)
    module.b = module.a  # Module.state_dict() gives both names views of one storage
    state = module.state_dict()
    loaded = load_state(save_state(tmp_path / f"tied{suffix}", state))
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
