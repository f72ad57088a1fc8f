"""``timm``: any timm architecture by name, randomly initialised or from a local checkpoint.

Never downloads: ``pretrained`` is refused; pass ``checkpoint`` (a local file) instead.
The permutation spec is derived automatically from the traced graph (``Model.spec``), which
follows timm's leaf-module conventions; keyword options (``img_size``, ``depth``...) go to
``timm.create_model``, so small variants of an architecture are cheap to build. Without an
input shape the model takes its architecture's own (timm's ``pretrained_cfg``: ``input_size``,
``num_classes``); a timm name that is not a registry entry resolves to this model
(``ridgeline spec resnet26d``). timm is imported when an entry is built or resolved, not
when this module is (listing and validating stay instant).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ridgeline.core import (
    ConfigError,
    ExampleInputError,
    Model,
    PermutationSpec,
    SpecError,
    UnknownEntryError,
)


def _timm() -> Any:
    """timm, imported on first use (not when the registry lists this entry)."""
    import timm

    return timm


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


class TimmModel(Model):
    """A timm architecture (``arch``) with ``num_classes`` outputs and ``in_chans`` from the input."""

    name = "timm"

    @classmethod
    def native_input(cls, **options: Any) -> tuple[tuple[int, ...], int] | None:
        arch = options.get("arch")
        cfg = _timm().get_pretrained_cfg(arch) if isinstance(arch, str) and _timm().is_model(arch) else None
        if cfg is None or not getattr(cfg, "input_size", None):
            return None
        channels, height, width = cfg.input_size
        if "img_size" in options:  # the architecture is built for this size instead
            size = options["img_size"]
            height, width = (size, size) if isinstance(size, int) else tuple(size)
        return (options.get("in_chans", channels), height, width), cfg.num_classes or 1000

    @classmethod
    def resolve(cls, name: str) -> dict[str, Any] | None:
        return {"arch": name} if _timm().is_model(name) else None

    @classmethod
    def architectures(cls, pattern: str) -> list[str]:
        return list(_timm().list_models(pattern))

    def __init__(self, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None,
                 *, arch: str, checkpoint: str | None = None, **timm_kwargs: Any) -> None:
        if timm_kwargs.pop("pretrained", False):
            raise ConfigError(
                "model 'timm': pretrained weights would be downloaded; save them locally and "
                "pass checkpoint='path/to/weights.safetensors' instead"
            )
        timm = _timm()
        if not timm.is_model(arch):
            raise UnknownEntryError("timm architectures", arch, timm.list_models())
        native = self.native_input(arch=arch, **timm_kwargs)
        if input_shape is None or num_classes is None:
            if native is None:
                raise ConfigError(f"model 'timm': {arch!r} has no input size in timm's pretrained "
                                  "config; give a dataset (its input shape and classes)")
            input_shape = native[0] if input_shape is None else input_shape
            num_classes = native[1] if num_classes is None else num_classes
        cfg = timm.get_pretrained_cfg(arch)
        if (native is not None and getattr(cfg, "fixed_input_size", False) and "img_size" not in timm_kwargs
                and tuple(input_shape)[-2:] != native[0][-2:]):
            raise ConfigError(
                f"model 'timm': {arch!r} takes only {_shape(native[0][-2:])} inputs (timm's fixed "
                f"input size), not {_shape(tuple(input_shape)[-2:])}: use data of its native size "
                f"(`ridgeline spec {arch}` without --dataset), or build it for yours with the model "
                f"option img_size={tuple(input_shape)[-1]} (`img_size = {tuple(input_shape)[-1]}` in a "
                "pipeline's [model] table, -o on the command line; patch-based models may also need a "
                "patch_size that divides it)")
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
        timm = _timm()
        kwargs = dict(self.timm_kwargs)
        if len(self.input_shape) == 3:
            kwargs.setdefault("in_chans", self.input_shape[0])
        try:
            module = timm.create_model(self.arch, pretrained=False, num_classes=self.num_classes, **kwargs)
        except Exception as error:  # timm's own checks (a patch larger than the image, ...) as one line
            cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"model 'timm': timm cannot build {self.arch!r} with "
                              f"{kwargs or 'its defaults'} for {self.num_classes} classes: "
                              f"{type(error).__name__}: {cause}") from None
        if self.checkpoint:
            from ridgeline.core import Ties, load_state

            ties = Ties.of(module)  # tied names must agree; a checkpoint may store one of them
            state = ties.expand(load_state(self.checkpoint))
            ties.check(state, f"checkpoint {self.checkpoint}")
            module.load_state_dict(state)
        return module

    def spec(self) -> PermutationSpec:
        """The derived spec; an input the architecture cannot take is named with its native size."""
        try:
            return super().spec()
        except ExampleInputError as error:
            native = self.native_input(arch=self.arch, **self.timm_kwargs)
            if native is None or tuple(self.input_shape) == native[0]:
                raise
            raise SpecError(
                f"{error.failure}: timm's {self.arch!r} is built "
                f"for {_shape(native[0])} inputs, not {_shape(self.input_shape)}; use its native "
                f"size (no --dataset: `ridgeline spec {self.arch}`)") from None


def _pretrained_cfg(arch: str) -> dict[str, Any]:
    cfg = _timm().get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {}
