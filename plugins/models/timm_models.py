"""``timm``: any timm architecture by name, randomly initialised or from a local checkpoint.

Never downloads: ``pretrained`` is refused; pass ``checkpoint`` (a local file) instead.
The permutation spec is derived automatically from the traced graph (``Model.spec``), which
follows timm's leaf-module conventions; keyword options (``img_size``, ``depth``...) go to
``timm.create_model``, so small variants of an architecture are cheap to build. Without an
input shape the model takes its architecture's own (timm's ``pretrained_cfg``: ``input_size``,
``num_classes``); a timm name that is not a registry entry resolves to this model
(``ridgeline spec resnet26d``).
"""

from __future__ import annotations

from typing import Any

import timm
from timm.models import get_pretrained_cfg
from torch import nn

from ridgeline.core import ConfigError, Model, PermutationSpec, SpecError, UnknownEntryError


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


class TimmModel(Model):
    """A timm architecture (``arch``) with ``num_classes`` outputs and ``in_chans`` from the input."""

    name = "timm"

    @classmethod
    def native_input(cls, **options: Any) -> tuple[tuple[int, ...], int] | None:
        arch = options.get("arch")
        cfg = get_pretrained_cfg(arch) if isinstance(arch, str) and timm.is_model(arch) else None
        if cfg is None or not getattr(cfg, "input_size", None):
            return None
        channels, height, width = cfg.input_size
        if "img_size" in options:  # the architecture is built for this size instead
            size = options["img_size"]
            height, width = (size, size) if isinstance(size, int) else tuple(size)
        return (options.get("in_chans", channels), height, width), cfg.num_classes or 1000

    @classmethod
    def resolve(cls, name: str) -> dict[str, Any] | None:
        return {"arch": name} if timm.is_model(name) else None

    @classmethod
    def architectures(cls, pattern: str) -> list[str]:
        return list(timm.list_models(pattern))

    def __init__(self, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None,
                 *, arch: str, checkpoint: str | None = None, **timm_kwargs: Any) -> None:
        if timm_kwargs.pop("pretrained", False):
            raise ConfigError(
                "model 'timm': pretrained weights would be downloaded; save them locally and "
                "pass checkpoint='path/to/weights.safetensors' instead"
            )
        if not timm.is_model(arch):
            raise UnknownEntryError("timm architectures", arch, timm.list_models())
        native = self.native_input(arch=arch, **timm_kwargs)
        if input_shape is None or num_classes is None:
            if native is None:
                raise ConfigError(f"model 'timm': {arch!r} has no input size in timm's pretrained "
                                  "config; give a dataset (its input shape and classes)")
            input_shape = native[0] if input_shape is None else input_shape
            num_classes = native[1] if num_classes is None else num_classes
        cfg = get_pretrained_cfg(arch)
        if (native is not None and getattr(cfg, "fixed_input_size", False) and "img_size" not in timm_kwargs
                and tuple(input_shape)[-2:] != native[0][-2:]):
            raise ConfigError(
                f"model 'timm': {arch!r} takes only {_shape(native[0][-2:])} inputs (timm's fixed "
                f"input size), not {_shape(tuple(input_shape)[-2:])}: use its native size (no "
                f"--dataset: `ridgeline spec {arch}`) or build it for yours with -o "
                f"img_size={tuple(input_shape)[-1]}")
        super().__init__(input_shape, num_classes, arch=arch, checkpoint=checkpoint, **timm_kwargs)
        self.arch = arch
        self.checkpoint = checkpoint
        self.timm_kwargs = timm_kwargs

    def build(self) -> nn.Module:
        kwargs = dict(self.timm_kwargs)
        if len(self.input_shape) == 3:
            kwargs.setdefault("in_chans", self.input_shape[0])
        module = timm.create_model(self.arch, pretrained=False, num_classes=self.num_classes, **kwargs)
        if self.checkpoint:
            from ridgeline.core import load_state

            module.load_state_dict(load_state(self.checkpoint))
        return module

    def spec(self) -> PermutationSpec:
        """The derived spec; an input the architecture cannot take is named with its native size."""
        try:
            return super().spec()
        except SpecError as error:
            native = self.native_input(arch=self.arch, **self.timm_kwargs)
            if "fails on the example input" not in str(error) or native is None \
                    or tuple(self.input_shape) == native[0]:
                raise
            raise SpecError(
                f"{str(error).split('; is the input shape right')[0]}: timm's {self.arch!r} is built "
                f"for {_shape(native[0])} inputs, not {_shape(self.input_shape)}; use its native "
                f"size (no --dataset: `ridgeline spec {self.arch}`)") from None
