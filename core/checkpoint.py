"""Checkpoints: states saved as safetensors or ``torch.save`` files, loaded safely.

``.safetensors`` files hold tensors only. Other files are loaded with
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects; pass
``allow_pickle=True`` only for files you trust.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ridgeline.core.errors import CheckpointError
from ridgeline.core.state import State


def save_state(path: str | Path, state: Mapping[str, torch.Tensor],
               metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``state`` (and JSON-serialisable ``metadata``) to ``path``; returns the path.

    Every name is written, tied names too (a tensor shared by several names, as
    ``Module.state_dict()`` gives a shared block, is stored once per name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors, storages = {}, set()
    for key, value in state.items():
        tensor = value.detach().contiguous().cpu()
        storage = tensor.untyped_storage().data_ptr()
        if storage in storages:  # safetensors refuses tensors that share memory
            tensor = tensor.clone()
        storages.add(storage)
        tensors[key] = tensor
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(tensors, str(path), metadata={"ridgeline": json.dumps(dict(metadata or {}))})
    else:
        torch.save({"state_dict": tensors, "ridgeline": json.dumps(dict(metadata or {}))}, path)
    return path


def _as_state(obj: Any, path: Path) -> State:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{path} is not a state dict: entries {bad[:3]} are not (name, tensor) pairs"
        )
    return dict(obj)


def load_state(path: str | Path, *, allow_pickle: bool = False) -> State:
    """The state stored in ``path`` (safetensors, or a torch file holding a state dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:
            raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as error:
        if "weights_only" in str(error) or "Unsupported global" in str(error):
            raise CheckpointError(
                f"{path} needs arbitrary objects unpickled to load, which can run code; refusing. "
                "Re-save it as a plain state dict, or pass allow_pickle=True if you trust it"
            ) from None
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {error}") from None
    return _as_state(obj, path)


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The ridgeline metadata saved with a checkpoint ({} if none)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("ridgeline", "{}"))
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return json.loads(obj.get("ridgeline", "{}")) if isinstance(obj, Mapping) else {}
