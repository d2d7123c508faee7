"""EfficientNet-B0 family (EfficientNet-B0, TinyNet-A..E, inversed-giant B^-1..B^-4).

Built from torchvision's ``EfficientNet`` / ``MBConvConfig`` / ``MBConv`` (not re-implemented):
this module only decides the *numbers* (blocks per stage, channels, stem and head width) for a
twist ``(r, d, w)`` of EfficientNet-B0, with one of two rule sets (:class:`Rules`, named options
as timm's ``_gen_tinynet`` states them):

``rules="tinynet"`` (default; huawei-noah ``tinynet_pytorch``, timm ``_gen_tinynet``)
    ``Rules(depth_trunc="round", fix_stem=True, head_floor=True)``: blocks per stage
    ``max(1, round(n * d))`` (Python round), stem fixed at 32 channels, head
    ``max(1280, round_channels(1280 * w))``.
``rules="efficientnet"`` (EfficientNet paper / TF code / torchvision B-series)
    ``Rules(depth_trunc="ceil", fix_stem=False, head_floor=False)``: blocks per stage
    ``ceil(n * d)``, stem ``round_channels(32 * w)``, head ``round_channels(1280 * w)``.

Both round every other channel count with ``make_divisible(c * w, 8)`` (min 8, +8 if below 90%).
Resolution is not part of the module (the network is fully convolutional); it is carried as
``model.resolution`` and used by the FLOPs count.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Mapping

from torch import nn
from torchvision.models.efficientnet import EfficientNet, MBConvConfig

from ..cube import Twist
from ._common import Counter, conv_out, make_divisible, scale_channels, scale_depth


# EfficientNet-B0 stages (EfficientNet paper Table 1): expand ratio, kernel, stride, out channels, repeats.
# Every block has squeeze-and-excitation with squeeze = block input channels / 4 and SiLU.
B0_STAGES = (
    # e, k, s, c, n
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
B0_STEM = 32
B0_HEAD = 1280


@dataclass(frozen=True)
class Rules:
    """How a twist's width and depth round into a network, as named options (timm ``_gen_tinynet``:
    ``depth_trunc="round"``, ``fix_stem=True``, ``num_features=max(1280, ...)``)."""

    depth_trunc: str = "round"   # blocks per stage: "round" max(1, round(n * d)) | "ceil" ceil(n * d)
    fix_stem: bool = True        # stem stays at 32 channels (else round_channels(32 * w))
    head_floor: bool = True      # head max(1280, round_channels(1280 * w)) (else round_channels(1280 * w))

    def __post_init__(self) -> None:
        if self.depth_trunc not in ("round", "ceil"):
            raise ValueError(f"unknown depth_trunc {self.depth_trunc!r}; expected 'round' or 'ceil'")

    @property
    def name(self) -> str | None:
        """The rule set's name in :data:`RULES` (None for an unnamed combination)."""
        return next((k for k, v in RULES.items() if v == self), None)


#: the named rule sets; "tinynet" is the family's default (``rubik.models.registry``)
RULES = {"tinynet": Rules("round", fix_stem=True, head_floor=True),
         "efficientnet": Rules("ceil", fix_stem=False, head_floor=False)}
DEFAULT_RULES = "tinynet"


@dataclass(frozen=True)
class StagePlan:
    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    num_layers: int


@dataclass(frozen=True)
class EfficientNetPlan:
    """The integers that define one twisted EfficientNet (independent of torch modules)."""

    stem: int
    stages: tuple[StagePlan, ...]
    head: int

    @property
    def repeats(self) -> tuple[int, ...]:
        return tuple(s.num_layers for s in self.stages)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(s.out_channels for s in self.stages)


def resolve_rules(rules: Rules | Mapping | str | None = None) -> Rules:
    """``rules`` as a :class:`Rules`: a name in :data:`RULES`, a Rules, its fields as a dict, or None
    (TinyNet's). ``rubik.models.registry.resolve_rules`` gives the same for ``efficientnet_b0``."""
    if rules is None:
        return RULES[DEFAULT_RULES]
    if isinstance(rules, str):
        if rules not in RULES:
            raise ValueError(f"unknown rules {rules!r}; expected one of {tuple(RULES)}")
        return RULES[rules]
    if isinstance(rules, Mapping):
        return Rules(**rules)
    if isinstance(rules, Rules):
        return rules
    raise ValueError(f"rules must be a name {tuple(RULES)}, a Rules or a dict, got {rules!r}")


def efficientnet_plan(twist=None, rules: Rules | str | None = None) -> EfficientNetPlan:
    """Stem, per-stage (e, k, s, in, out, n) and head of EfficientNet-B0 twisted by ``twist``
    (``rules``: a :class:`Rules`, its fields as a dict, a name in :data:`RULES`, or None: TinyNet's)."""
    twist = Twist.from_any(twist)
    rules = resolve_rules(rules)
    w, d = twist.width, twist.depth
    stem = B0_STEM if rules.fix_stem else scale_channels(B0_STEM, w, what="stem")
    if rules.head_floor:   # the head never shrinks (TinyNet), so a tiny width cannot empty it
        head = max(B0_HEAD, make_divisible(B0_HEAD * w, 8))
    else:
        head = scale_channels(B0_HEAD, w, what="head")
    stages = []
    cin = stem
    for i, (e, k, s, c, n) in enumerate(B0_STAGES):
        cout = scale_channels(c, w, what=f"stage {i + 1}")
        stages.append(StagePlan(e, k, s, cin, cout, scale_depth(n, d, rules.depth_trunc)))
        cin = cout
    return EfficientNetPlan(stem, tuple(stages), head)


def efficientnet_config(twist=None, rules: Rules | str | None = None) -> tuple[list[MBConvConfig], int]:
    """torchvision ``MBConvConfig`` list (one per stage) and ``last_channel`` for a twist.

    The channel and depth numbers are final (computed by :func:`efficientnet_plan`), so the
    configs are made with ``width_mult = depth_mult = 1`` (torchvision's own rounding is then the
    identity: channels are already multiples of 8).
    """
    plan = efficientnet_plan(twist, rules)
    configs = [
        MBConvConfig(st.expand_ratio, st.kernel, st.stride, st.in_channels, st.out_channels, st.num_layers,
                     width_mult=1.0, depth_mult=1.0)
        for st in plan.stages
    ]
    return configs, plan.head


def build_efficientnet(twist=None, num_classes: int = 1000, *, rules: Rules | str | None = None,
                       drop_rate: float = 0.2, drop_path_rate: float = 0.0,
                       norm_layer=None, bn_momentum: float | None = None, bn_eps: float | None = None) -> EfficientNet:
    """torchvision ``EfficientNet`` for EfficientNet-B0 twisted by ``twist``.

    ``drop_rate``: dropout before the classifier (0.2 as in the paper); ``drop_path_rate``:
    stochastic depth (drop-connect; 0 in the paper except TinyNet-B 0.1). ``bn_momentum`` /
    ``bn_eps`` set BatchNorm's (PyTorch convention: the TF 0.99 decay is momentum 0.01).
    """
    configs, last_channel = efficientnet_config(twist, rules)
    if norm_layer is None and (bn_momentum is not None or bn_eps is not None):
        bn_kwargs = {}
        if bn_momentum is not None:
            bn_kwargs["momentum"] = bn_momentum
        if bn_eps is not None:
            bn_kwargs["eps"] = bn_eps
        norm_layer = partial(nn.BatchNorm2d, **bn_kwargs)
    return EfficientNet(configs, dropout=drop_rate, stochastic_depth_prob=drop_path_rate,
                        num_classes=num_classes, norm_layer=norm_layer, last_channel=last_channel)


def count_plan(plan: EfficientNetPlan, image_size: int | None, num_classes: int = 1000) -> Counter:
    """MACs and params of a plan, mirroring torchvision's ``EfficientNet``/``MBConv`` layer by layer.

    ``image_size=None`` counts params only (FLOPs left at 0).
    """
    c = Counter()
    hw = 1 if image_size is None else conv_out(image_size, 3, 2)
    c.conv(3, plan.stem, 3, hw)
    for st in plan.stages:
        for i in range(st.num_layers):
            cin = st.in_channels if i == 0 else st.out_channels
            stride = st.stride if i == 0 else 1
            mid = make_divisible(cin * st.expand_ratio, 8)  # torchvision MBConv: adjust_channels(in, e)
            if mid != cin:
                c.conv(cin, mid, 1, hw)
            if image_size is not None:
                hw = conv_out(hw, st.kernel, stride)
            c.conv(mid, mid, st.kernel, hw, groups=mid)
            squeeze = max(1, cin // 4)
            c.conv(mid, squeeze, 1, 1, bias=True, bn=False)
            c.conv(squeeze, mid, 1, 1, bias=True, bn=False)
            c.conv(mid, st.out_channels, 1, hw)
    c.conv(plan.stages[-1].out_channels, plan.head, 1, hw)
    c.linear(plan.head, num_classes)
    if image_size is None:
        c.flops = 0
    return c


__all__ = ["B0_STAGES", "RULES", "DEFAULT_RULES", "Rules", "resolve_rules", "EfficientNetPlan", "StagePlan", "efficientnet_plan", "efficientnet_config",
           "build_efficientnet", "count_plan"]
