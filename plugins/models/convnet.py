"""``convnet``: a small conv-(BatchNorm)-ReLU network for BatchNorm experiments on small images.

Blocks of 3x3 convolution, optional BatchNorm and ReLU, a 2x2 max-pool after every
``pool_every`` blocks, global average pooling and a linear head. The spec is hand-written:
one group per block (its channels).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ridgeline.core import AxisRef, ConfigError, Model, PermutationSpec


class ConvBlock(nn.Module):
    """conv 3x3 (no bias when normalised) -> BatchNorm (optional) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, batchnorm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batchnorm)
        self.norm = nn.BatchNorm2d(out_channels) if batchnorm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x)))


class ConvNet(nn.Module):
    def __init__(self, in_channels: int, widths: Sequence[int], num_classes: int, *,
                 batchnorm: bool, pool_every: int) -> None:
        super().__init__()
        sizes = [in_channels, *widths]
        self.blocks = nn.ModuleList(ConvBlock(a, b, batchnorm) for a, b in itertools.pairwise(sizes))
        self.pool_every = pool_every
        self.head = nn.Linear(sizes[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)
            if self.pool_every and i % self.pool_every == 0 and i < len(self.blocks):
                x = nn.functional.max_pool2d(x, 2)
        return self.head(x.mean(dim=(2, 3)))


class ConvNetModel(Model):
    """Conv-BN-ReLU blocks of ``widths`` channels (default 32, 64, 64) on C x H x W inputs;
    ``batchnorm`` (default True); a max-pool after every ``pool_every`` blocks (0: never)."""

    name = "convnet"

    @classmethod
    def native_input(cls, **options: Any) -> tuple[tuple[int, ...], int]:
        """scikit-learn's digits, the images it is sized for: 1x8x8, 10 classes (``ridgeline spec``
        without ``--dataset``)."""
        return (1, 8, 8), 10

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *,
                 widths: Sequence[int] = (32, 64, 64), batchnorm: bool = True, pool_every: int = 2) -> None:
        widths = [int(w) for w in widths]
        if len(input_shape) != 3:
            raise ConfigError(f"convnet needs C x H x W inputs, got input_shape {tuple(input_shape)}")
        if not widths or any(w <= 0 for w in widths):
            raise ConfigError(f"convnet widths must be positive integers, got {widths}")
        if int(pool_every) < 0:
            raise ConfigError(f"model 'convnet': option pool_every = {pool_every} must be >= 0 "
                              "(0: never pool)")
        super().__init__(input_shape, num_classes, widths=widths, batchnorm=bool(batchnorm),
                         pool_every=int(pool_every))
        self.widths, self.batchnorm, self.pool_every = widths, bool(batchnorm), int(pool_every)

    def build(self) -> ConvNet:
        return ConvNet(self.input_shape[0], self.widths, self.num_classes,
                       batchnorm=self.batchnorm, pool_every=self.pool_every)

    def spec(self) -> PermutationSpec:
        """Group ``blocks.i``: the conv's output channels (and bias), the BatchNorm's affine
        parameters and running statistics, and the next conv's (or the head's) input axis."""
        groups, axes = {}, {}
        for i, width in enumerate(self.widths):
            prefix = f"blocks.{i}"
            refs = [AxisRef(f"{prefix}.conv.weight", 0)]
            if self.batchnorm:
                refs += [AxisRef(f"{prefix}.norm.{k}", 0)
                         for k in ("weight", "bias", "running_mean", "running_var")]
            else:
                refs.append(AxisRef(f"{prefix}.conv.bias", 0))
            consumer = f"blocks.{i + 1}.conv.weight" if i + 1 < len(self.widths) else "head.weight"
            refs.append(AxisRef(consumer, 1))
            groups[prefix], axes[prefix] = width, tuple(refs)
        return PermutationSpec(groups, axes)
