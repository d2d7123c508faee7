"""DRNet's resolution predictor: a small ResNet that looks at a low-resolution view and scores K resolutions.

Built from torchvision's ``BasicBlock``: a 3x3 stride-2 stem, one block per stage (the first stage at
stride 1, the others at stride 2, a 1x1 projection where the shape changes), global average pooling
and a linear layer to ``num_candidates`` logits. Its size is a parameter (``channels`` per stage,
``view`` px), and its FLOPs are counted analytically in ``rubik.flops``' convention
(:func:`predictor_flops`, equal to ``rubik.count_flops`` of the module: tested).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from ..models._common import Counter, conv_out


class ResolutionPredictor(nn.Module):
    """``forward(view) -> (N, num_candidates)`` logits; ``view`` is the image at ``view`` px."""

    def __init__(self, num_candidates: int, channels: Sequence[int] = (8, 16, 32), view: int = 32):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        self.channels, self.view, self.num_candidates = channels, int(view), int(num_candidates)
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        blocks, cin = [], channels[0]
        for i, cout in enumerate(channels):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or cin != cout:
                down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            blocks.append(BasicBlock(cin, cout, stride=stride, downsample=down))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_candidates)
        self.resolution = self.view   # what rubik.count_flops / measure_latency feed it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def predictor_flops(num_candidates: int, channels: Sequence[int] = (8, 16, 32), view: int = 32) -> int:
    """MACs of one view through :class:`ResolutionPredictor` (conv + linear), from its settings alone."""
    c = Counter()
    hw = conv_out(int(view), 3, 2)
    c.conv(3, channels[0], 3, hw)
    cin = channels[0]
    for i, cout in enumerate(channels):
        if i:
            hw = conv_out(hw, 3, 2)
        c.conv(cin, cout, 3, hw)
        c.conv(cout, cout, 3, hw)
        if i or cin != cout:
            c.conv(cin, cout, 1, hw)
        cin = cout
    c.linear(cin, int(num_candidates))
    return int(c.flops)


__all__ = ["ResolutionPredictor", "predictor_flops"]
