"""The image transforms the pipelines share, as batched tensor ops (no PIL, no GPU needed).

The constants of ImageNet training and evaluation (normalisation, the eval crop ratio
``CROP_PCT``: resize to ``floor(size / 0.875)``, centre crop ``size``, RandomResizedCrop's
defaults) and the ops that apply them to a whole batch at once: torchvision's RandomResizedCrop box
sampling, vectorised (``random_resized_crop_params``); crop + flip + resize as one bilinear
``affine_grid``/``grid_sample`` (``crop_flip_theta``, ``affine_resize``, ``crop_flip_resize``); and a
batched brightness / contrast / saturation jitter (``color_jitter_batch``). They run on the CPU or on
the device the batch is on.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_PCT = 0.875
RRC_SCALE = (0.08, 1.0)
"""RandomResizedCrop's default range of the crop's area, as a fraction of the image's."""
RRC_RATIO = (3 / 4, 4 / 3)
"""RandomResizedCrop's default range of the crop's aspect ratio (width / height)."""
HFLIP_PROB = 0.5
"""Probability of a horizontal flip of a training image."""


def random_resized_crop_params(n: int, height: int, width: int, scale=RRC_SCALE, ratio=RRC_RATIO,
                               generator=None, tries: int = 10) -> torch.Tensor:
    """torchvision's RandomResizedCrop box sampling, vectorised: ``(n, 4)`` float boxes ``(top, left, h, w)``."""
    area = height * width
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    a = area * torch.empty(n, tries).uniform_(scale[0], scale[1], generator=generator)
    r = torch.exp(torch.empty(n, tries).uniform_(log_r[0], log_r[1], generator=generator))
    w = torch.sqrt(a * r).round()
    h = torch.sqrt(a / r).round()
    ok = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
    # fallback (no valid try): the whole image, clamped to the ratio range (as torchvision)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fh, fw = height, round(height * ratio[1])
    else:
        fw, fh = width, height
    idx = first.clamp(min=0)
    bw = torch.where(first >= 0, w.gather(1, idx[:, None])[:, 0], torch.full((n,), float(fw)))
    bh = torch.where(first >= 0, h.gather(1, idx[:, None])[:, 0], torch.full((n,), float(fh)))
    u = torch.rand(n, 2, generator=generator)
    top = torch.floor(u[:, 0] * (height - bh + 1))
    left = torch.floor(u[:, 1] * (width - bw + 1))
    fallback = first < 0
    top = torch.where(fallback, torch.floor((height - bh) / 2), top)
    left = torch.where(fallback, torch.floor((width - bw) / 2), left)
    return torch.stack([top, left, bh, bw], 1)


def crop_flip_theta(boxes: torch.Tensor, flip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(N, 2, 3)`` affine matrices (``affine_grid``'s normalised coordinates) that crop ``boxes``
    (top, left, h, w) from ``height`` x ``width`` images and mirror where ``flip``."""
    b = boxes.to(torch.float32)
    top, left, h, w = b.unbind(1)
    sx, sy = w / width, h / height
    cx = (left + w / 2) / width * 2 - 1
    cy = (top + h / 2) / height * 2 - 1
    sign = 1.0 - 2.0 * flip.to(b.device, torch.float32)
    zero = torch.zeros_like(sx)
    return torch.stack([sx * sign, zero, cx, zero, sy, cy], 1).view(-1, 2, 3)


def affine_resize(x: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Float images ``x`` (N,C,H,W) sampled through ``theta`` (N,2,3) at ``size`` x ``size``: one bilinear
    ``grid_sample`` for the whole batch."""
    grid = F.affine_grid(theta.to(x.device), [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def crop_flip_resize(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``boxes`` (top, left, h, w) from float images ``x`` (N,C,H,W), flip where ``flip``, resize to
    ``size`` -- one bilinear ``grid_sample`` for the whole batch."""
    theta = crop_flip_theta(boxes.to(x.device), flip.to(x.device), x.shape[-2], x.shape[-1])
    return affine_resize(x, theta, size)


def color_jitter_factors(n: int, strength: float, generator=None) -> torch.Tensor:
    """``(n, 3)`` brightness, contrast, saturation factors, uniform in ``[max(0, 1-s), 1+s]``."""
    return torch.empty(n, 3).uniform_(max(0.0, 1 - strength), 1 + strength, generator=generator)


def color_jitter_batch(x: torch.Tensor, strength: float, generator=None, factors=None) -> torch.Tensor:
    """Batched brightness, contrast, saturation jitter (factors in [1-s, 1+s], fixed order) on [0,1] images;
    ``factors`` (from :func:`color_jitter_factors`) are drawn here if not given."""
    f = factors if factors is not None else color_jitter_factors(x.shape[0], strength, generator)
    f = f.to(x.device)
    x = x * f[:, 0, None, None, None]
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    m = gray.mean((2, 3), keepdim=True)
    x = (x - m) * f[:, 1, None, None, None] + m
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    x = (x - gray) * f[:, 2, None, None, None] + gray
    return x.clamp_(0, 1)
