"""``timm``: any timm architecture by name, randomly initialised or from a local checkpoint.

Never downloads: ``pretrained`` is refused; pass ``checkpoint`` (a local file) instead.
The permutation spec is derived automatically from the traced graph (``Model.spec``), which
follows timm's leaf-module conventions; keyword options (``img_size``, ``depth``...) go to
``timm.create_model``, so small variants of an architecture are cheap to build. timm is imported
when an entry is built, not when this module is (listing and validating stay instant).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ridgeline.core import ConfigError, Model, UnknownEntryError


class TimmModel(Model):
    """A timm architecture (``arch``) with ``num_classes`` outputs and ``in_chans`` from the input."""

    name = "timm"

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, arch: str,
                 checkpoint: str | None = None, **timm_kwargs: Any) -> None:
        if timm_kwargs.pop("pretrained", False):
            raise ConfigError(
                "model 'timm': pretrained weights would be downloaded; save them locally and "
                "pass checkpoint='path/to/weights.safetensors' instead"
            )
        import timm

        if not timm.is_model(arch):
            raise UnknownEntryError("timm architectures", arch, timm.list_models())
        super().__init__(input_shape, num_classes, arch=arch, checkpoint=checkpoint, **timm_kwargs)
        self.arch = arch
        self.checkpoint = checkpoint
        self.timm_kwargs = timm_kwargs

    def data_config(self) -> dict[str, Any]:
        """timm's data config of ``arch`` (its pretrained mean, std and input size; the ImageNet
        defaults where it has none), with ``img_size`` when that option is given."""
        import timm.data

        config = timm.data.resolve_data_config(pretrained_cfg=_pretrained_cfg(self.arch))
        out = {"mean": tuple(config["mean"]), "std": tuple(config["std"]),
               "input_size": tuple(config["input_size"])}
        size = self.timm_kwargs.get("img_size")
        if size is not None:
            height, width = (size, size) if isinstance(size, int) else size
            out["input_size"] = (out["input_size"][0], int(height), int(width))
        return out

    def build(self) -> nn.Module:
        import timm

        kwargs = dict(self.timm_kwargs)
        if len(self.input_shape) == 3:
            kwargs.setdefault("in_chans", self.input_shape[0])
        module = timm.create_model(self.arch, pretrained=False, num_classes=self.num_classes, **kwargs)
        if self.checkpoint:
            from ridgeline.core import load_state

            module.load_state_dict(load_state(self.checkpoint))
        return module


def _pretrained_cfg(arch: str) -> dict[str, Any]:
    import timm

    cfg = timm.get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {}
