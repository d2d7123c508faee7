"""ResNet-50 (and ResNet-26) twistable in (r, d, w), built from torchvision's ``Bottleneck``.

* depth: blocks per stage ``max(1, round(n * d))`` for ResNet-50's (3, 4, 6, 3), ResNet-26's (2, 2, 2, 2);
* width: the stem (64) and every stage width (64, 128, 256, 512; bottleneck outputs are 4x)
  become ``make_divisible(c * w, 8)``;
* resolution: input ``int(224 * r)``.

ResNet-26 (base ``resnet26``) is ResNet-50's stage structure at a cost a CPU can train: the same
7x7/2 stem + max-pool, four stages of torchvision ``Bottleneck`` at the same widths and strides, but
two blocks per stage (2 + 4 x 2 x 3 = 26 weighted layers). At 64 px and 10 classes it has 191.1M
FLOPs and 14.0M params (ResNet-50: 333.7M; EfficientNet-B0 at 64 px: 32.0M). Chosen over a
BasicBlock ResNet-18 because the ResNet rows the paper trains are bottleneck ResNets: ResNet-26 keeps
the 1x1-3x3-1x1 block, the 4x expansion and so how width and depth trade against FLOPs; only the
number of blocks per stage differs, which is the depth dial anyway.

Module names follow torchvision's ``ResNet`` (conv1, bn1, layer1..layer4, fc), so an untwisted
model loads torchvision ResNet-50 weights as is.

``conv=ConvSpec("spconv", alpha)`` swaps every bottleneck's 3x3 (``conv2``, which carries the stride) for
an :class:`~rubik.models.spconv.SPConv2d`, as the SPConv authors' ``resnet_sp.py`` does; the 7x7 stem and
the 1x1 convolutions stay.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from ..cube import Twist
from ._common import Counter, conv_out, scale_channels, scale_depth
from .spconv import DENSE, ConvSpec, check_splits, conv3x3, count_conv3x3

RESNET50_LAYERS = (3, 4, 6, 3)
RESNET50_WIDTHS = (64, 128, 256, 512)
RESNET50_STEM = 64
RESNET26_LAYERS = (2, 2, 2, 2)


@dataclass(frozen=True)
class ResNetPlan:
    stem: int
    widths: tuple[int, ...]  # bottleneck inner width per stage (output = 4x)
    layers: tuple[int, ...]
    conv: ConvSpec = DENSE   # the bottlenecks' 3x3

    @property
    def repeats(self) -> tuple[int, ...]:
        return self.layers

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(c * Bottleneck.expansion for c in self.widths)


def resnet_plan(twist=None, conv: ConvSpec = DENSE, layers: tuple[int, ...] = RESNET50_LAYERS) -> ResNetPlan:
    """The twisted plan of a Bottleneck ResNet with ``layers`` blocks per stage at d = 1
    (``RESNET50_LAYERS``, or ``RESNET26_LAYERS`` for the ``resnet26`` base)."""
    twist = Twist.from_any(twist)
    stem = scale_channels(RESNET50_STEM, twist.width, what="stem")
    widths = tuple(scale_channels(c, twist.width, what=f"layer{i + 1}") for i, c in enumerate(RESNET50_WIDTHS))
    layers = tuple(scale_depth(n, twist.depth) for n in layers)
    check_splits(((w, w, f"layer{i + 1}.conv2") for i, w in enumerate(widths)), conv)
    return ResNetPlan(stem, widths, layers, conv)


class ResNet(nn.Module):
    """torchvision-style ResNet with free stem/stage widths (Bottleneck blocks)."""

    def __init__(self, plan: ResNetPlan, num_classes: int = 1000, *, zero_init_residual: bool = False) -> None:
        super().__init__()
        self.plan = plan
        self.conv1 = nn.Conv2d(3, plan.stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(plan.stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = plan.stem
        for i, (width, n) in enumerate(zip(plan.widths, plan.layers)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                downsample = None
                if j == 0 and (stride != 1 or inplanes != width * Bottleneck.expansion):
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, width * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False),
                        nn.BatchNorm2d(width * Bottleneck.expansion),
                    )
                block = Bottleneck(inplanes, width, stride=stride if j == 0 else 1, downsample=downsample)
                if not plan.conv.dense:
                    block.conv2 = conv3x3(width, width, stride if j == 0 else 1, plan.conv)
                blocks.append(block)
                inplanes = width * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_resnet(twist=None, num_classes: int = 1000, *, conv: ConvSpec = DENSE,
                 zero_init_residual: bool = False, layers: tuple[int, ...] = RESNET50_LAYERS) -> ResNet:
    return ResNet(resnet_plan(twist, conv, layers), num_classes, zero_init_residual=zero_init_residual)


def count_plan(plan: ResNetPlan, image_size: int | None, num_classes: int = 1000) -> Counter:
    """MACs (conv + linear) and params of a ResNet plan, mirroring :class:`ResNet`."""
    c = Counter()
    hw = 1 if image_size is None else conv_out(image_size, 7, 2)
    c.conv(3, plan.stem, 7, hw)
    if image_size is not None:
        hw = conv_out(hw, 3, 2)
    inplanes = plan.stem
    for i, (width, n) in enumerate(zip(plan.widths, plan.layers)):
        for j in range(n):
            stride = 2 if (i > 0 and j == 0) else 1
            out_hw = hw if image_size is None else conv_out(hw, 3, stride)
            c.conv(inplanes, width, 1, hw)
            count_conv3x3(c, width, width, out_hw, plan.conv)
            c.bn(width)
            c.conv(width, width * 4, 1, out_hw)
            if j == 0 and (stride != 1 or inplanes != width * 4):
                c.conv(inplanes, width * 4, 1, out_hw)
            inplanes = width * 4
            hw = out_hw
    c.linear(inplanes, num_classes)
    if image_size is None:
        c.flops = 0
    return c


__all__ = ["ResNet", "ResNetPlan", "resnet_plan", "build_resnet", "count_plan", "RESNET50_LAYERS", "RESNET50_WIDTHS",
           "RESNET26_LAYERS"]
