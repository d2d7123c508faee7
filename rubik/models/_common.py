"""Small helpers shared by the model families: channel/depth rounding and an op counter.

The op counter (:class:`Counter`) walks a family's *plan* (plain integers, no torch modules)
and adds up multiply-accumulates and parameters exactly the way ``rubik.flops.count_flops``
(ptflops restricted to convolutions and linear layers) and ``count_params`` see the built
module, so thousands of candidate twists can be costed per second without building them.
"""
from __future__ import annotations

import math


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``min_value``, default
    ``divisor``), adding one ``divisor`` if that lost more than ``1 - round_limit`` (the "90% rule"
    of the TF MobileNet/EfficientNet code, also used by torchvision and timm)."""
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return int(new_value)


def scale_channels(channels: int, width: float, divisor: int = 8, *, what: str = "channels") -> int:
    """``make_divisible(channels * width, divisor)``; ValueError if the width makes it vanish.

    A width so small that the layer would have less than one real channel
    (``round(channels * width) == 0``) is rejected rather than silently lifted to ``divisor``.
    """
    if round(channels * width) < 1:
        raise ValueError(f"width {width:g} rounds the {channels}-channel {what} to zero channels")
    return make_divisible(channels * width, divisor)


def scale_depth(repeats: int, depth: float, mode: str = "round") -> int:
    """Blocks in a stage: ``max(1, round(n * d))`` (TinyNet, Python's round) or ``ceil(n * d)``
    (EfficientNet / torchvision)."""
    if mode == "round":
        return max(1, int(round(repeats * depth)))
    if mode == "ceil":
        return max(1, int(math.ceil(repeats * depth)))
    raise ValueError(f"unknown depth rounding {mode!r}; expected 'round' or 'ceil'")


def conv_out(size: int, kernel: int, stride: int, padding: int | None = None) -> int:
    """Output side of a convolution/pooling with 'same'-style padding (k - 1) // 2."""
    if padding is None:
        padding = (kernel - 1) // 2
    return (size + 2 * padding - kernel) // stride + 1


class Counter:
    """Accumulates MACs (ptflops convention: conv + linear, bias adds included) and params."""

    __slots__ = ("flops", "params")

    def __init__(self) -> None:
        self.flops = 0
        self.params = 0

    def conv(self, cin: int, cout: int, kernel: int, out_hw: tuple[int, int] | int, *, groups: int = 1,
             bias: bool = False, bn: bool = True) -> None:
        """A k x k convolution producing ``out_hw`` outputs per channel (+ optional BatchNorm)."""
        if isinstance(out_hw, int):
            positions = out_hw * out_hw
        else:
            positions = out_hw[0] * out_hw[1]
        per_position = kernel * kernel * cin * (cout // groups)
        self.flops += per_position * positions
        self.params += kernel * kernel * (cin // groups) * cout
        if bias:
            self.flops += cout * positions
            self.params += cout
        if bn:
            self.params += 2 * cout

    def linear(self, fin: int, fout: int, *, bias: bool = True) -> None:
        self.flops += fin * fout + (fout if bias else 0)
        self.params += fin * fout + (fout if bias else 0)

    def bn(self, channels: int) -> None:
        self.params += 2 * channels
