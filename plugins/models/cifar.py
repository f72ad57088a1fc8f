"""``cifar_resnet`` and ``cifar_vgg``: the CIFAR benchmark networks of the LMC literature.

``cifar_resnet`` is He et al.'s CIFAR ResNet (CVPR 2016, Sec. 4.2): a 3x3 stem conv, three stages
of ``n`` BasicBlocks with 16, 32 and 64 channels (times ``width``), ``depth = 6n + 2`` (20, 32,
44, 56, 110), global average pooling and a linear head. Shortcuts that change shape are a 1x1
strided conv followed by a norm (option B), as in the ResNet-20 of Git Re-Basin (Ainsworth,
Hayase & Srinivasa, ICLR 2023, Sec. 5) and REPAIR (Jordan et al., ICLR 2023), whose benchmark
family is ResNet-20 at widths 1x to 16x (Git Re-Basin: 32x).

``cifar_vgg`` is the CIFAR VGG of those papers (Simonyan & Zisserman 2015 configurations A / B /
D / E = VGG-11/13/16/19): 3x3 convs, a 2x2 max-pool after each of the five stages, the flattened
features and one linear head (REPAIR's VGG; Git Re-Basin's VGG-16 uses the same stages).

``norm`` chooses the normalisation after every conv: ``batchnorm`` (PyTorch's BatchNorm2d),
``layernorm`` (normalisation over the channels at each position, flax's ``nn.LayerNorm`` on
NHWC as in Git Re-Basin's LayerNorm ResNet) or ``none`` (convs get biases). Specs are derived by
the tracer (``Model.spec``) like every model's.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
from torch import nn

from ridgeline.core import ConfigError, Model

Norm = Literal["batchnorm", "layernorm", "none"]
NORMS = get_args(Norm)
VGG_STAGES = {
    11: [[64], [128], [256, 256], [512, 512], [512, 512]],
    13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of an N x C x H x W tensor, at every position separately."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "layernorm":
        return ChannelLayerNorm(channels)
    return nn.Identity()


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int, norm: str) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=norm == "none")


class BasicBlock(nn.Module):
    """conv3x3 -> norm -> ReLU -> conv3x3 -> norm, plus the shortcut, then ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = _conv(in_channels, channels, 3, stride, norm)
        self.norm1 = _norm(norm, channels)
        self.conv2 = _conv(channels, channels, 3, 1, norm)
        self.norm2 = _norm(norm, channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(_conv(in_channels, channels, 1, stride, norm),
                                          _norm(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, in_channels: int, blocks: int, width: int, num_classes: int, norm: str) -> None:
        super().__init__()
        channels = [16 * width, 32 * width, 64 * width]
        self.conv1 = _conv(in_channels, channels[0], 3, 1, norm)
        self.norm1 = _norm(norm, channels[0])
        stages, previous = [], channels[0]
        for stage, c in enumerate(channels):
            layers = []
            for i in range(blocks):
                layers.append(BasicBlock(previous, c, 2 if stage > 0 and i == 0 else 1, norm))
                previous = c
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(out.mean(dim=(2, 3)))


class CifarVGG(nn.Module):
    def __init__(self, in_channels: int, stages: list[list[int]], width: int, num_classes: int,
                 norm: str, positions: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for stage in stages:
            for c in stage:
                layers += [_conv(previous, c * width, 3, 1, norm), _norm(norm, c * width), nn.ReLU()]
                previous = c * width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(previous * positions, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def _check_options(entry: str, input_shape: tuple[int, ...], width: int, norm: str) -> None:
    if len(input_shape) != 3:
        raise ConfigError(f"{entry} needs C x H x W image inputs (CIFAR's are 3x32x32), but the dataset's "
                          f"examples have shape {tuple(input_shape)}")
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ConfigError(f"{entry} width is a positive integer multiplier of the channels, got {width!r}")
    if norm not in NORMS:
        raise ConfigError(f"{entry} norm must be one of {', '.join(NORMS)}, got {norm!r}")


class _CifarModel(Model):
    """The CIFAR models' common ground: CIFAR-10's images are their native input."""

    @classmethod
    def native_input(cls, **options: Any) -> tuple[tuple[int, ...], int]:
        """CIFAR-10's images: 3x32x32, 10 classes (``ridgeline spec`` without ``--dataset``)."""
        return (3, 32, 32), 10


class CifarResNetModel(_CifarModel):
    """CIFAR ResNet-20/32/44/56/110 (``depth``) at ``width`` x 16-32-64 channels, ``norm`` batchnorm
    (default), layernorm or none; the Git Re-Basin / REPAIR benchmark family."""

    name = "cifar_resnet"

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, depth: int = 20,
                 width: int = 1, norm: Norm = "batchnorm") -> None:
        _check_options("cifar_resnet", input_shape, width, norm)
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ConfigError(f"cifar_resnet depth is 6n + 2 (20, 32, 44, 56, 110), got {depth!r}")
        super().__init__(input_shape, num_classes, depth=depth, width=width, norm=norm)
        self.depth, self.width, self.norm = depth, width, norm

    def build(self) -> CifarResNet:
        blocks = (self.depth - 2) // 6
        return CifarResNet(self.input_shape[0], blocks, self.width, self.num_classes, self.norm)


class CifarVGGModel(_CifarModel):
    """CIFAR VGG-11/13/16/19 (``depth``) at ``width`` x 64..512 channels, ``norm`` batchnorm
    (default), layernorm or none; five 2x2 max-pools, then one linear head."""

    name = "cifar_vgg"

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, *, depth: int = 11,
                 width: int = 1, norm: Norm = "batchnorm") -> None:
        _check_options("cifar_vgg", input_shape, width, norm)
        if depth not in VGG_STAGES:
            raise ConfigError(f"cifar_vgg depth must be one of {sorted(VGG_STAGES)}, got {depth!r}")
        _, height, breadth = input_shape
        if height < 32 or breadth < 32:
            raise ConfigError(f"cifar_vgg halves the image five times and needs at least 32 x 32 "
                              f"inputs, got input_shape {tuple(input_shape)}")
        super().__init__(input_shape, num_classes, depth=depth, width=width, norm=norm)
        self.depth, self.width, self.norm = depth, width, norm

    def build(self) -> CifarVGG:
        _, height, breadth = self.input_shape
        positions = (height // 32) * (breadth // 32)
        return CifarVGG(self.input_shape[0], VGG_STAGES[self.depth], self.width, self.num_classes,
                        self.norm, positions)
