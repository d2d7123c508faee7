"""GhostNet (Han et al., CVPR 2020) and GhostNet-A (TinyNet appendix Table 2), twistable in (r, d, w).

torchvision has no GhostNet, so the two building blocks are written here (small on purpose):

* :class:`GhostModule`: a 1x1 "primary" convolution producing ``ceil(out / 2)`` channels, a
  3x3 depthwise "cheap operation" producing as many again, concatenated and cut to ``out``.
* :class:`GhostBottleneck` ("G-neck"): ghost module (expand, ReLU) -> [depthwise conv if
  stride 2] -> [SE] -> ghost module (project, no activation), plus an identity shortcut or a
  depthwise + 1x1 shortcut when the shape changes.

torchvision's ``Conv2dNormActivation`` and ``SqueezeExcitation`` (hard-sigmoid gate) are reused.

Two bases:

``ghostnet_100`` (original GhostNet 1.0x, as timm ``ghostnet_100``): width multiplies every
    channel count (``make_divisible(c * w, 4)``), the 1280-wide head stays fixed; SE squeeze
    ``make_divisible(mid / 4, 4)``. Depth scales each run of consecutive same-width blocks to
    ``max(1, round(n * d))`` blocks (extra blocks repeat the run's last one, cuts from the end).
``ghostnet_a`` (appendix Table 2): 240 px, SE in every G-neck, 1680 -> 1400 head. Table 2 gives
    expansion ratios, outputs, strides and repeats but not kernel sizes. We use 5x5 depthwise
    convolutions in the four stride-2 G-necks and 3x3 everywhere else (kernels only matter where
    a G-neck has a depthwise conv: stride 2, or a shortcut when the width changes). This is a fit:
    searching all 2^10 per-row kernel choices, the only ones that give the paper's 591M (591.03M)
    are those with 5x5 in every stride-2 row and 3x3 in the 140->196 row; GhostNet's own per-stage
    kernels would give 582.8M. Expansion is relative to the block input (as in GhostNet:
    480 = 6 x 80). "SE reduction ratio 10" is read as squeeze = ``make_divisible(mid / 10, 4)``:
    11.92M params (paper 11.9M); GhostNet's usual mid / 4 would give 17.8M.
    ``se_ratio`` is a parameter of :func:`build_ghostnet`.
    Twisting GhostNet-A scales every channel count including the 1680/1400 head by ``w``
    (``make_divisible(c * w, 4)``) and every row's repeats by ``max(1, round(n * d))``.

GhostNet-B/C/D are GhostNet-A twisted by dials rubik *reconstructed* from the appendix's params and
FLOPs (the authors never released them): ``rubik.ghostnet_family``, registered as ``ghostnet_b/c/d``.

Both use ReLU by default (the paper's GhostNet-A); ``act="hswish"`` switches every activation
(not the SE gate) to HardSwish, the paper's "+ HSwish" variants.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation

from ..cube import Twist
from ._common import Counter, conv_out, make_divisible, scale_depth

# Original GhostNet 1.0x (GhostNet paper Table 1): kernel, mid (expansion) channels, out channels,
# SE ratio, stride; one row per block, grouped into stages as in the official code/timm.
GHOSTNET_STAGES = (
    ((3, 16, 16, 0.0, 1),),
    ((3, 48, 24, 0.0, 2),),
    ((3, 72, 24, 0.0, 1),),
    ((5, 72, 40, 0.25, 2),),
    ((5, 120, 40, 0.25, 1),),
    ((3, 240, 80, 0.0, 2),),
    ((3, 200, 80, 0.0, 1), (3, 184, 80, 0.0, 1), (3, 184, 80, 0.0, 1),
     (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)),
    ((5, 672, 160, 0.25, 2),),
    ((5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1)),
)
GHOSTNET_STEM = 16
GHOSTNET_LAST = 960
GHOSTNET_HEAD = 1280

# GhostNet-A (TinyNet appendix Table 2): kernel (ours, see module doc), expansion ratio (x block
# input channels), out channels, stride, repeats. SE in every G-neck.
GHOSTNET_A_ROWS = (
    (3, 1.0, 28, 1, 1),
    (5, 3.0, 44, 2, 1),
    (3, 3.0, 44, 1, 1),
    (5, 3.0, 72, 2, 1),
    (3, 3.0, 72, 1, 2),
    (5, 6.0, 140, 2, 1),
    (3, 2.5, 140, 1, 3),
    (3, 6.0, 196, 1, 3),
    (5, 6.0, 280, 2, 1),
    (3, 6.0, 280, 1, 5),
)
GHOSTNET_A_STEM = 28
GHOSTNET_A_LAST = 1680
GHOSTNET_A_HEAD = 1400
GHOSTNET_A_SE_RATIO = 0.1  # "SE ... reduction ratio 10"

VARIANTS = ("ghostnet_100", "ghostnet_a")


@dataclass(frozen=True)
class GhostBlockPlan:
    kernel: int
    in_channels: int
    mid_channels: int
    out_channels: int
    se_channels: int  # 0: no SE
    stride: int


@dataclass(frozen=True)
class GhostNetPlan:
    stem: int
    stages: tuple[tuple[GhostBlockPlan, ...], ...]
    last: int  # 1x1 conv after the last stage (before pooling)
    head: int  # 1x1 conv (with bias) after pooling

    @property
    def blocks(self) -> tuple[GhostBlockPlan, ...]:
        return tuple(b for stage in self.stages for b in stage)

    @property
    def repeats(self) -> tuple[int, ...]:
        return tuple(len(stage) for stage in self.stages)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(stage[-1].out_channels for stage in self.stages)


def _runs(stages) -> list[list[tuple]]:
    """Consecutive GhostNet blocks grouped by output width (the units that depth scales)."""
    runs: list[list[tuple]] = []
    for row in (r for stage in stages for r in stage):
        if runs and runs[-1][-1][2] == row[2] and row[4] == 1:
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _se_channels(mid: int, se_ratio: float) -> int:
    return make_divisible(mid * se_ratio, 4) if se_ratio > 0 else 0


def _w4(c: float, w: float, what: str) -> int:
    if round(c * w) < 1:
        raise ValueError(f"width {w:g} rounds the {c:g}-channel {what} to zero channels")
    return make_divisible(c * w, 4)


def ghostnet_plan(twist=None, variant: str = "ghostnet_a", *, se_ratio: float | None = None) -> GhostNetPlan:
    """Channels and blocks of GhostNet (``"ghostnet_100"``) or GhostNet-A twisted by ``twist``.

    ``se_ratio``: GhostNet-A's SE squeeze as a fraction of the expanded channels (default 0.1,
    "reduction ratio 10"); for ``ghostnet_100`` it overrides the per-block 0.25 where SE is used.
    """
    twist = Twist.from_any(twist)
    w, d = twist.width, twist.depth
    if variant == "ghostnet_100":
        stem = _w4(GHOSTNET_STEM, w, "stem")
        cin = stem
        stages = []
        for i, run in enumerate(_runs(GHOSTNET_STAGES)):
            rows = []
            # depth: a run of n blocks with the same output width becomes max(1, round(n * d))
            # blocks; extra blocks repeat the run's last block, removed blocks are taken from the
            # end (the first block keeps the run's stride).
            n = scale_depth(len(run), d)
            picked = [run[min(j, len(run) - 1)] for j in range(n)]
            for j, (k, mid, c, se, s) in enumerate(picked):
                cout = _w4(c, w, f"stage {i} output")
                m = _w4(mid, w, f"stage {i} expansion")
                se = se if (se_ratio is None or not se) else se_ratio
                rows.append(GhostBlockPlan(k, cin, m, cout, _se_channels(m, se), s if j == 0 else 1))
                cin = cout
            stages.append(tuple(rows))
        last = _w4(GHOSTNET_LAST, w, "last conv")
        return GhostNetPlan(stem, tuple(stages), last, GHOSTNET_HEAD)
    if variant == "ghostnet_a":
        se_ratio = GHOSTNET_A_SE_RATIO if se_ratio is None else se_ratio
        stem = _w4(GHOSTNET_A_STEM, w, "stem")
        cin = stem
        stages = []
        for i, (k, e, c, s, n) in enumerate(GHOSTNET_A_ROWS):
            cout = _w4(c, w, f"row {i} output")
            rows = []
            for j in range(scale_depth(n, d)):
                block_in = cin if j == 0 else cout
                m = make_divisible(block_in * e, 4)
                rows.append(GhostBlockPlan(k, block_in, m, cout, _se_channels(m, se_ratio), s if j == 0 else 1))
            stages.append(tuple(rows))
            cin = cout
        return GhostNetPlan(stem, tuple(stages), _w4(GHOSTNET_A_LAST, w, "last conv"),
                            _w4(GHOSTNET_A_HEAD, w, "head"))
    raise ValueError(f"unknown GhostNet variant {variant!r}; expected one of {VARIANTS}")


def _act_layer(act: str):
    if act == "relu":
        return nn.ReLU
    if act in ("hswish", "hardswish"):
        return nn.Hardswish
    raise ValueError(f"unknown activation {act!r}; expected 'relu' or 'hswish'")


class GhostModule(nn.Module):
    """Primary 1x1 conv to ceil(out/2) channels + cheap 3x3 depthwise conv, concatenated."""

    def __init__(self, in_channels: int, out_channels: int, act_layer=nn.ReLU, dw_size: int = 3) -> None:
        super().__init__()
        self.out_channels = out_channels
        primary = math.ceil(out_channels / 2)
        self.primary_conv = Conv2dNormActivation(in_channels, primary, kernel_size=1, activation_layer=act_layer)
        self.cheap_operation = Conv2dNormActivation(primary, primary, kernel_size=dw_size, groups=primary,
                                                    activation_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        return torch.cat([x1, x2], dim=1)[:, : self.out_channels]


class GhostBottleneck(nn.Module):
    """G-neck: ghost expand -> [dw conv, stride 2] -> [SE] -> ghost project (+ shortcut)."""

    def __init__(self, cfg: GhostBlockPlan, act_layer=nn.ReLU) -> None:
        super().__init__()
        self.ghost1 = GhostModule(cfg.in_channels, cfg.mid_channels, act_layer)
        if cfg.stride > 1:
            self.conv_dw = Conv2dNormActivation(cfg.mid_channels, cfg.mid_channels, kernel_size=cfg.kernel,
                                                stride=cfg.stride, groups=cfg.mid_channels, activation_layer=None)
        else:
            self.conv_dw = nn.Identity()
        if cfg.se_channels:
            self.se = SqueezeExcitation(cfg.mid_channels, cfg.se_channels, activation=nn.ReLU,
                                        scale_activation=nn.Hardsigmoid)
        else:
            self.se = nn.Identity()
        self.ghost2 = GhostModule(cfg.mid_channels, cfg.out_channels, act_layer=None)
        if cfg.in_channels == cfg.out_channels and cfg.stride == 1:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                Conv2dNormActivation(cfg.in_channels, cfg.in_channels, kernel_size=cfg.kernel, stride=cfg.stride,
                                     groups=cfg.in_channels, activation_layer=None),
                Conv2dNormActivation(cfg.in_channels, cfg.out_channels, kernel_size=1, activation_layer=None),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ghost2(self.se(self.conv_dw(self.ghost1(x))))
        return y + self.shortcut(x)


class GhostNet(nn.Module):
    """stem -> G-neck stages -> 1x1 conv -> global pool -> 1x1 conv (bias) -> dropout -> FC."""

    def __init__(self, plan: GhostNetPlan, num_classes: int = 1000, *, act: str = "relu",
                 drop_rate: float = 0.2) -> None:
        super().__init__()
        act_layer = _act_layer(act)
        self.plan = plan
        layers: list[nn.Module] = [Conv2dNormActivation(3, plan.stem, kernel_size=3, stride=2,
                                                        activation_layer=act_layer)]
        for stage in plan.stages:
            layers.append(nn.Sequential(*[GhostBottleneck(b, act_layer) for b in stage]))
        layers.append(Conv2dNormActivation(plan.blocks[-1].out_channels, plan.last, kernel_size=1,
                                           activation_layer=act_layer))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = nn.Conv2d(plan.last, plan.head, kernel_size=1, bias=True)
        self.act = act_layer(inplace=True)
        self.classifier = nn.Sequential(nn.Flatten(1), nn.Dropout(drop_rate), nn.Linear(plan.head, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        x = self.act(self.conv_head(x))
        return self.classifier(x)


def build_ghostnet(twist=None, num_classes: int = 1000, *, variant: str = "ghostnet_a", act: str = "relu",
                   drop_rate: float = 0.2, se_ratio: float | None = None) -> GhostNet:
    return GhostNet(ghostnet_plan(twist, variant, se_ratio=se_ratio), num_classes, act=act, drop_rate=drop_rate)


def count_plan(plan: GhostNetPlan, image_size: int | None, num_classes: int = 1000) -> Counter:
    """MACs (conv + linear) and params of a GhostNet plan, mirroring :class:`GhostNet`."""
    c = Counter()
    hw = 1 if image_size is None else conv_out(image_size, 3, 2)

    def ghost(cin: int, cout: int, hw: int) -> None:
        primary = math.ceil(cout / 2)
        c.conv(cin, primary, 1, hw)
        c.conv(primary, primary, 3, hw, groups=primary)

    c.conv(3, plan.stem, 3, hw)
    for b in plan.blocks:
        out_hw = hw if image_size is None else conv_out(hw, b.kernel, b.stride)
        ghost(b.in_channels, b.mid_channels, hw)
        if b.stride > 1:
            c.conv(b.mid_channels, b.mid_channels, b.kernel, out_hw, groups=b.mid_channels)
        if b.se_channels:
            c.conv(b.mid_channels, b.se_channels, 1, 1, bias=True, bn=False)
            c.conv(b.se_channels, b.mid_channels, 1, 1, bias=True, bn=False)
        ghost(b.mid_channels, b.out_channels, out_hw)
        if not (b.in_channels == b.out_channels and b.stride == 1):
            c.conv(b.in_channels, b.in_channels, b.kernel, out_hw, groups=b.in_channels)
            c.conv(b.in_channels, b.out_channels, 1, out_hw)
        hw = out_hw
    c.conv(plan.blocks[-1].out_channels, plan.last, 1, hw)
    c.conv(plan.last, plan.head, 1, 1, bias=True, bn=False)
    c.linear(plan.head, num_classes)
    if image_size is None:
        c.flops = 0
    return c


__all__ = ["GhostModule", "GhostBottleneck", "GhostNet", "GhostNetPlan", "GhostBlockPlan", "ghostnet_plan",
           "build_ghostnet", "count_plan", "VARIANTS"]
