"""CIFAR-style networks for 32 px inputs, the SPConv paper's small-scale setting: ResNet-20/56 and VGG-16.

* ResNet-20 (He et al. 2016, section 4.2): a 3x3 stem of 16 channels, three stages of 3 basic blocks
  (16, 32, 64 channels; 32, 16, 8 px), global average pool, one linear layer. Shortcuts are parameter-free
  ("option A": a strided identity padded with zero channels), as in the paper's 0.27M parameters.
  ResNet-56 is the same base with 9 blocks per stage: depth dial d = 3 (``round(3 * 3)``).
* VGG-16 (configuration D's 13 convolutions with BatchNorm): stages of (2, 2, 3, 3, 3) 3x3 convolutions
  of (64, 128, 256, 512, 512) channels, 2x2 max pool after each (the last one as a global max pool, so
  a twisted input below 32 px still ends at 1 x 1), then one linear layer: the widely used CIFAR VGG-16
  (313.2M MACs, 14.7M params for 10 classes; the SPConv paper's 349.51M / 16.62M VGG-16 is not
  specified further, see ``benchmarks/spconv_counts.py``).

Both take a :class:`~rubik.models.spconv.ConvSpec`: with ``spconv`` every 3x3 but the stem's (3 RGB
channels) is an :class:`~rubik.models.spconv.SPConv2d`. Both are twistable: width scales every
channel count (``make_divisible(c * w, 8)``), depth the blocks (convolutions for VGG) per stage
(``max(1, round(n * d))``), resolution the 32 px input.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..cube import Twist
from ._common import Counter, conv_out, scale_channels, scale_depth
from .spconv import DENSE, ConvSpec, check_splits, conv3x3, count_conv3x3

RESNET20_STEM = 16
RESNET20_WIDTHS = (16, 32, 64)
RESNET20_LAYERS = (3, 3, 3)
VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_LAYERS = (2, 2, 3, 3, 3)


# ----------------------------------------------------------------------------- ResNet-20 / 56

class _StagePlan:
    """What ``Arch`` reads of a CIFAR plan: ``repeats`` (its ``layers``) and ``channels`` (its ``widths``)."""

    @property
    def repeats(self) -> tuple[int, ...]:
        return self.layers

    @property
    def channels(self) -> tuple[int, ...]:
        return self.widths


@dataclass(frozen=True)
class CifarResNetPlan(_StagePlan):
    stem: int
    widths: tuple[int, ...]
    layers: tuple[int, ...]
    conv: ConvSpec = DENSE

    def conv_layers(self):
        """``(in, out, stride, where)`` of every swappable 3x3 (not the stem), in build order."""
        inplanes = self.stem
        for i, (width, n) in enumerate(zip(self.widths, self.layers)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                yield inplanes, width, stride, f"layer{i + 1}.{j}.conv1"
                yield width, width, 1, f"layer{i + 1}.{j}.conv2"
                inplanes = width


def cifar_resnet_plan(twist=None, conv: ConvSpec = DENSE) -> CifarResNetPlan:
    twist = Twist.from_any(twist)
    stem = scale_channels(RESNET20_STEM, twist.width, what="stem")
    widths = tuple(scale_channels(c, twist.width, what=f"layer{i + 1}") for i, c in enumerate(RESNET20_WIDTHS))
    layers = tuple(scale_depth(n, twist.depth) for n in RESNET20_LAYERS)
    plan = CifarResNetPlan(stem, widths, layers, conv)
    check_splits(((cin, cout, where) for cin, cout, _, where in plan.conv_layers()), conv)
    return plan


class PadShortcut(nn.Module):
    """Option-A shortcut: the identity subsampled by ``stride``, zero channels appended up to ``planes``."""

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride, self.extra = stride, extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))


class CifarBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, conv: ConvSpec = DENSE) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, conv)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, 1, conv)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = PadShortcut(stride, planes - inplanes) if stride != 1 or inplanes != planes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-20-style network for small inputs (module names as torchvision's: conv1, bn1, layer1.., fc)."""

    def __init__(self, plan: CifarResNetPlan, num_classes: int = 10) -> None:
        super().__init__()
        self.plan = plan
        self.conv1 = nn.Conv2d(3, plan.stem, 3, padding=1, bias=False)   # the stem stays dense (3 channels)
        self.bn1 = nn.BatchNorm2d(plan.stem)
        self.relu = nn.ReLU(inplace=True)
        inplanes = plan.stem
        for i, (width, n) in enumerate(zip(plan.widths, plan.layers)):
            blocks = [CifarBasicBlock(inplanes if j == 0 else width, width, 2 if (i > 0 and j == 0) else 1, plan.conv)
                      for j in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = width
        self.stages = len(plan.widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_cifar_resnet(twist=None, num_classes: int = 10, *, conv: ConvSpec = DENSE) -> CifarResNet:
    return CifarResNet(cifar_resnet_plan(twist, conv), num_classes)


def count_cifar_resnet(plan: CifarResNetPlan, image_size: int | None, num_classes: int = 10) -> Counter:
    """MACs (conv + linear) and params of a CIFAR ResNet plan, mirroring :class:`CifarResNet`."""
    c = Counter()
    hw = 1 if image_size is None else image_size
    c.conv(3, plan.stem, 3, hw)
    for cin, cout, stride, _ in plan.conv_layers():
        if image_size is not None:
            hw = conv_out(hw, 3, stride)
        count_conv3x3(c, cin, cout, hw, plan.conv)
        c.bn(cout)
    c.linear(plan.widths[-1], num_classes)
    if image_size is None:
        c.flops = 0
    return c


# ----------------------------------------------------------------------------- VGG-16

@dataclass(frozen=True)
class VGGPlan(_StagePlan):
    widths: tuple[int, ...]
    layers: tuple[int, ...]
    conv: ConvSpec = DENSE

    def conv_layers(self):
        """``(in, out, stage, where)`` of every 3x3 in build order; the first (the RGB stem) stays dense."""
        cin = 3
        for i, (width, n) in enumerate(zip(self.widths, self.layers)):
            for j in range(n):
                yield cin, width, i, f"features.stage{i + 1}.{j}"
                cin = width


def vgg_plan(twist=None, conv: ConvSpec = DENSE) -> VGGPlan:
    twist = Twist.from_any(twist)
    widths = tuple(scale_channels(c, twist.width, what=f"stage{i + 1}") for i, c in enumerate(VGG16_WIDTHS))
    layers = tuple(scale_depth(n, twist.depth) for n in VGG16_LAYERS)
    plan = VGGPlan(widths, layers, conv)
    check_splits(((cin, cout, where) for k, (cin, cout, _, where) in enumerate(plan.conv_layers()) if k), conv)
    return plan


class CifarVGG(nn.Module):
    """VGG with BatchNorm for small inputs: conv-BN-ReLU stages, 2x2 max pools, one linear classifier."""

    def __init__(self, plan: VGGPlan, num_classes: int = 10) -> None:
        super().__init__()
        self.plan = plan
        stages = [[] for _ in plan.widths]
        for k, (cin, cout, i, _) in enumerate(plan.conv_layers()):
            stages[i] += [conv3x3(cin, cout, 1, DENSE if k == 0 else plan.conv), nn.BatchNorm2d(cout),
                          nn.ReLU(inplace=True)]
        for i, layers in enumerate(stages):
            last = i == len(stages) - 1
            layers.append(nn.AdaptiveMaxPool2d(1) if last else nn.MaxPool2d(2, 2))
        self.features = nn.Sequential()
        for i, layers in enumerate(stages):
            self.features.add_module(f"stage{i + 1}", nn.Sequential(*layers))
        self.classifier = nn.Linear(plan.widths[-1], num_classes)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def build_vgg(twist=None, num_classes: int = 10, *, conv: ConvSpec = DENSE) -> CifarVGG:
    return CifarVGG(vgg_plan(twist, conv), num_classes)


def count_vgg(plan: VGGPlan, image_size: int | None, num_classes: int = 10) -> Counter:
    """MACs (conv + linear) and params of a VGG plan, mirroring :class:`CifarVGG`."""
    c = Counter()
    hw = 1 if image_size is None else image_size
    stage = 0
    for k, (cin, cout, i, _) in enumerate(plan.conv_layers()):
        if i != stage:   # a 2x2 max pool between stages
            stage = i
            hw = hw if image_size is None else hw // 2
        count_conv3x3(c, cin, cout, hw, DENSE if k == 0 else plan.conv)
        c.bn(cout)
    c.linear(plan.widths[-1], num_classes)
    if image_size is None:
        c.flops = 0
    return c


def _init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


__all__ = ["CifarResNet", "CifarResNetPlan", "CifarBasicBlock", "PadShortcut", "cifar_resnet_plan",
           "build_cifar_resnet", "count_cifar_resnet", "CifarVGG", "VGGPlan", "vgg_plan", "build_vgg", "count_vgg"]
