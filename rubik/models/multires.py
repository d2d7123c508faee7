"""One classifier, several input resolutions: shared weights, one set of BatchNorm layers per resolution.

DRNet (Zhu, Han et al., NeurIPS 2021) feeds the same network images at a few candidate resolutions.
Convolution and linear weights do not depend on the input size and are shared; BatchNorm statistics do
(a 112-px image has other activation statistics than a 224-px one), so every BatchNorm layer is
replaced by :class:`MultiResBatchNorm2d`, which holds one ``BatchNorm2d`` per candidate and uses the
one selected by index. This works for any model built from ``nn.BatchNorm2d`` (every registered or
twisted model of :mod:`rubik.models`).

    backbone = rubik.create_model("efficientnet_b0", twist=(0.8, 0.37, 0.71), base_resolution=64, num_classes=10)
    clf = MultiResolutionClassifier(backbone, resolutions=(51, 38, 25))
    logits = clf(images, index=2)     # images resized to 25 px, BatchNorm set 2
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class MultiResBatchNorm2d(nn.Module):
    """``num_resolutions`` independent ``BatchNorm2d`` (own weights, biases and running statistics);
    ``index`` picks the one that normalises (set by :meth:`MultiResolutionClassifier.set_index`)."""

    def __init__(self, bn: nn.BatchNorm2d, num_resolutions: int):
        super().__init__()
        # copies of the original layer: same eps, momentum, affine and initial values
        self.bns = nn.ModuleList(copy.deepcopy(bn) for _ in range(num_resolutions))
        self.index = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bns[self.index](x)

    def extra_repr(self) -> str:
        return f"num_resolutions={len(self.bns)}, index={self.index}"


def convert_batchnorm(model: nn.Module, num_resolutions: int) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` of ``model`` (in place) by a :class:`MultiResBatchNorm2d`."""
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, MultiResBatchNorm2d(child, num_resolutions))
        else:
            convert_batchnorm(child, num_resolutions)
    return model


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` (N, C, H, W) resized to ``size`` x ``size`` (bilinear, antialiased); unchanged if it has that size."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class MultiResolutionClassifier(nn.Module):
    """``model`` with per-resolution BatchNorm, fed images resized to ``resolutions[index]``.

    ``resolutions`` are input sides in px (the model's FLOPs follow from them: ``Arch.flops(resolution=)``).
    ``forward(x, index)`` resizes ``x`` and normalises with BatchNorm set ``index``; ``index=None`` uses
    the current one (:meth:`set_index`). The wrapped model keeps its attributes (``.arch``, ``.twist``).
    """

    def __init__(self, model: nn.Module, resolutions: Sequence[int]):
        super().__init__()
        resolutions = [int(r) for r in resolutions]
        if not resolutions or len(set(resolutions)) != len(resolutions) or min(resolutions) < 1:
            raise ValueError(f"resolutions must be distinct positive sizes in px, got {resolutions}")
        self.resolutions = resolutions
        self.model = convert_batchnorm(model, len(resolutions))
        self._norms = [m for m in self.model.modules() if isinstance(m, MultiResBatchNorm2d)]
        self.index = 0

    def set_index(self, index: int) -> None:
        if not 0 <= int(index) < len(self.resolutions):
            raise IndexError(f"resolution index {index} out of range for {len(self.resolutions)} resolutions")
        self.index = int(index)
        for m in self._norms:
            m.index = self.index

    def forward(self, x: torch.Tensor, index: int | None = None) -> torch.Tensor:
        if index is not None:
            self.set_index(index)
        return self.model(resize_batch(x, self.resolutions[self.index]))

    def branch(self, index: int) -> nn.Module:
        """The classifier at one resolution as a module of its own (input already at that size), for
        ``rubik.measure_latency`` and ``rubik.count_flops``: it shares this module's weights."""
        return _Branch(self, index)


class _Branch(nn.Module):
    def __init__(self, parent: MultiResolutionClassifier, index: int):
        super().__init__()
        self.parent = parent
        self.index = int(index)
        self.resolution = parent.resolutions[self.index]

    def forward(self, x):
        return self.parent(x, self.index)


__all__ = ["MultiResBatchNorm2d", "MultiResolutionClassifier", "convert_batchnorm", "resize_batch"]
