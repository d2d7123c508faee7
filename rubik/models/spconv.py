"""SPConv: a drop-in for a dense 3x3 convolution (Zhang, Han et al., "Split to Be Slim: An Overlooked
Redundancy in Vanilla Convolution", IJCAI 2020; the authors' ``SPConv_3x3`` in qiulinzhang/SPConv.pytorch).

The input channels are split by ``alpha``: the first ``alpha * C_in`` (the *representative* part) go
through a group-wise 3x3 convolution plus a point-wise 1x1 convolution, summed; the other
``(1 - alpha) * C_in`` (the *redundant* part) through a point-wise 1x1 only. Each path has its own
BatchNorm. The two are fused without parameters: the global average of each path's output, a softmax
across the two paths per output channel, and the weighted sum. With stride 2 the group-wise 3x3 strides;
the two 1x1 convolutions see a 2x2 average-pooled input instead (the "light path").

Where this differs from the authors' code, on purpose:

* the redundant 1x1 has no bias (a BatchNorm follows it; theirs keeps PyTorch's default bias), so a
  layer has ``C_out`` fewer parameters;
* the 2x2 average pool uses ``ceil_mode=True`` so an odd input side gives the same output side as the
  strided 3x3 (theirs fails there); on even sides the two are identical;
* ``alpha = 1`` has no redundant path and no fusion (a softmax over one path is 1): the layer is the
  group-wise + point-wise pair with its BatchNorm;
* ``alpha`` must split ``C_in`` into whole channels, and the group count must divide both the
  representative channels and ``C_out`` (theirs truncates ``int(C_in * alpha)`` silently).

FLOPs follow ``rubik.flops``'s convention (multiply-accumulates of convolutions and linear layers;
ptflops counts the three inner ``nn.Conv2d`` as any other): the fusion's pooling, softmax and
weighted sum, like every elementwise op in the package, are not counted (:func:`fusion_ops` gives
their size: 5 operations per output element, ~10 % of an alpha-1/2 layer's MACs at 16 channels, ~2.4 %
at 64).

Which convolutions a model swaps is the model family's choice, made in its plan (:class:`ConvSpec`
travels in :class:`~rubik.models.arch.Arch` as ``conv``): every dense 3x3 except the stem's (its 3
RGB channels cannot be split). EfficientNet's MBConv and GhostNet's blocks have no dense 3x3 (only
depth-wise and point-wise convolutions), so those families refuse ``conv="spconv"``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ._common import Counter

CONV_KINDS = ("dense", "spconv")


@dataclass(frozen=True)
class ConvSpec:
    """Which 3x3 convolution a family builds: ``dense`` (``nn.Conv2d``) or ``spconv`` (:class:`SPConv2d`
    with ``alpha`` and ``groups``; ignored for ``dense``)."""

    kind: str = "dense"
    alpha: float = 0.5
    groups: int = 2

    def __post_init__(self) -> None:
        if self.kind not in CONV_KINDS:
            raise ConfigError(f"unknown conv {self.kind!r}; expected one of {CONV_KINDS}")
        if self.kind == "dense":   # one dense spec, whatever alpha was passed with it
            object.__setattr__(self, "alpha", 1.0)
            object.__setattr__(self, "groups", 1)
            return
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
                or not 0 < alpha <= 1:
            raise ConfigError(f"spconv alpha must be a number in (0, 1], got {alpha!r}")
        if isinstance(self.groups, bool) or not isinstance(self.groups, int) or self.groups < 1:
            raise ConfigError(f"spconv groups must be a positive integer, got {self.groups!r}")
        object.__setattr__(self, "alpha", float(alpha))

    @property
    def dense(self) -> bool:
        return self.kind == "dense"

    @classmethod
    def from_any(cls, conv=None, alpha: float | None = None, groups: int | None = None) -> "ConvSpec":
        """None / ``"dense"`` / ``"spconv"`` / a dict of the fields / a ConvSpec; ``alpha`` and ``groups``
        replace the given spec's (``from_any("spconv", alpha=0.25)``)."""
        if isinstance(conv, ConvSpec):
            spec = conv
        elif conv is None:
            spec = cls("dense") if alpha is None and groups is None else cls("spconv")
        elif isinstance(conv, str):
            spec = cls(conv)   # the constructor names a bad kind
        elif isinstance(conv, dict):
            unknown = set(conv) - {"kind", "alpha", "groups"}
            if unknown:
                raise ConfigError(f"unknown conv field(s) {sorted(unknown)}; expected kind, alpha, groups")
            spec = cls(**conv)
        else:
            raise ConfigError(f"conv must be 'dense', 'spconv', a dict or a ConvSpec, got {conv!r}")
        if alpha is not None or groups is not None:
            if spec.dense:
                raise ConfigError("alpha and groups only apply to conv='spconv'")
            spec = cls(spec.kind, spec.alpha if alpha is None else alpha, spec.groups if groups is None else groups)
        return spec

    def to_dict(self) -> dict:
        return {"kind": self.kind, "alpha": self.alpha, "groups": self.groups}

    def split(self, in_channels: int, out_channels: int, where: str = "") -> tuple[int, int]:
        """``(representative, redundant)`` input channels; ConfigError when ``alpha`` cannot split
        ``in_channels`` into whole channels or ``groups`` does not divide them."""
        at = f" at {where}" if where else ""
        rep = in_channels * self.alpha
        if abs(rep - round(rep)) > 1e-6:
            raise ConfigError(f"spconv alpha {self.alpha:g} cannot split {in_channels} input channels{at} "
                              f"({in_channels} x {self.alpha:g} = {rep:g} is not a whole number)")
        rep = int(round(rep))
        if rep == 0 or rep % self.groups or out_channels % self.groups:
            raise ConfigError(f"spconv groups={self.groups} must divide the {rep} representative input channels "
                              f"and the {out_channels} output channels{at} (alpha {self.alpha:g} of {in_channels})")
        return rep, in_channels - rep

    def __str__(self) -> str:
        return "dense" if self.dense else f"spconv(alpha={self.alpha:g}, groups={self.groups})"


DENSE = ConvSpec()


class SPConv2d(nn.Module):
    """Split convolution replacing a dense 3x3 ``in_channels -> out_channels`` (padding 1, stride 1 or 2).

    ``gwc`` (group-wise 3x3) + ``pwc`` (point-wise 1x1) on the first ``alpha * in_channels`` channels,
    ``bn_rep``; ``pw_redundant`` (1x1) on the rest, ``bn_redundant``; the parameter-free fusion
    (:meth:`fusion_weights`). Raises ConfigError for a split ``alpha``/``groups`` cannot make.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, alpha: float = 0.5,
                 groups: int = 2) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"SPConv2d supports stride 1 or 2, got {stride!r}")
        self.spec = ConvSpec("spconv", alpha, groups)
        self.in_rep, self.in_redundant = self.spec.split(in_channels, out_channels)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.gwc = nn.Conv2d(self.in_rep, out_channels, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.pwc = nn.Conv2d(self.in_rep, out_channels, 1, bias=False)
        self.bn_rep = nn.BatchNorm2d(out_channels)
        if self.in_redundant:
            self.pw_redundant = nn.Conv2d(self.in_redundant, out_channels, 1, bias=False)
            self.bn_redundant = nn.BatchNorm2d(out_channels)
        else:
            self.pw_redundant = self.bn_redundant = None
        # the light path at stride 2: 1x1 convolutions on a 2x2-averaged input
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) if stride == 2 else nn.Identity()

    def paths(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The two normalised path outputs before fusion (the redundant one None at alpha = 1)."""
        rep, redundant = torch.split(x, [self.in_rep, self.in_redundant], dim=1)
        out_rep = self.bn_rep(self.gwc(rep) + self.pwc(self.pool(rep)))
        if self.pw_redundant is None:
            return out_rep, None
        return out_rep, self.bn_redundant(self.pw_redundant(self.pool(redundant)))

    @staticmethod
    def fusion_weights(out_rep: torch.Tensor, out_redundant: torch.Tensor) -> torch.Tensor:
        """``(N, C, 2)``: softmax over the two paths of each path's global average, per channel."""
        pooled = torch.stack((out_rep.mean((2, 3)), out_redundant.mean((2, 3))), dim=2)
        return F.softmax(pooled, dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_rep, out_redundant = self.paths(x)
        if out_redundant is None:
            return out_rep
        w = self.fusion_weights(out_rep, out_redundant)[:, :, :, None, None]
        return out_rep * w[:, :, 0] + out_redundant * w[:, :, 1]

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}, {self.spec}"


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, conv: ConvSpec = DENSE) -> nn.Module:
    """A 3x3 convolution (padding 1, no bias) of the kind ``conv`` names: ``nn.Conv2d`` or :class:`SPConv2d`."""
    if conv.dense:
        return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
    return SPConv2d(in_channels, out_channels, stride, conv.alpha, conv.groups)


def count_conv3x3(c: Counter, in_channels: int, out_channels: int, out_hw: int, conv: ConvSpec = DENSE) -> None:
    """Add the MACs (at ``out_hw`` x ``out_hw`` outputs) and params of :func:`conv3x3` to ``c``; the
    BatchNorm after the layer is the caller's (as for a dense conv), an SPConv's own ones are added here."""
    if conv.dense:
        c.conv(in_channels, out_channels, 3, out_hw, bn=False)
        return
    rep, redundant = conv.split(in_channels, out_channels)
    c.conv(rep, out_channels, 3, out_hw, groups=conv.groups, bn=False)   # gwc
    c.conv(rep, out_channels, 1, out_hw)                                  # pwc + bn_rep
    if redundant:
        c.conv(redundant, out_channels, 1, out_hw)                        # pw_redundant + bn_redundant


def fusion_ops(out_channels: int, out_hw: int, conv: ConvSpec = DENSE) -> int:
    """Elementwise operations of one SPConv's fusion that the MAC convention leaves out: the two global
    averages (one add per element each), the weighted sum (two multiplies and an add per element);
    the softmax over ``2 * C`` numbers is negligible. 0 for dense and for ``alpha = 1``."""
    if conv.dense or conv.alpha == 1:
        return 0
    return 5 * out_channels * out_hw * out_hw


def check_splits(layers, conv: ConvSpec) -> None:
    """Raise ConfigError for the first ``(in, out, where)`` the spec cannot split (dense: nothing)."""
    if conv.dense:
        return
    for cin, cout, where in layers:
        conv.split(cin, cout, where)


__all__ = ["SPConv2d", "ConvSpec", "CONV_KINDS", "DENSE", "conv3x3", "count_conv3x3", "fusion_ops", "check_splits"]
