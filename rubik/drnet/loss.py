"""DRNet's training objectives: cross-entropy at every candidate (stage ``multires``), and cross-entropy
plus a hinge on the expected FLOPs (stage ``joint``).

Joint loss (DRNet Sec. 3.3): ``CE(logits, y) + eta * max(0, E[FLOPs] / F_ref - target)``, with
``E[FLOPs]`` the batch mean of each image's FLOPs under its straight-through one-hot choice (the
classifier at the chosen resolution plus the predictor): in the forward pass the real FLOPs of the
sampled choices, in the backward pass the gradient of the soft choice, which moves the predictor.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .model import DRNetOutput, MultiResOutput


def flops_penalty(flops_ratio: torch.Tensor, target: float, eta: float) -> torch.Tensor:
    """``eta * max(0, flops_ratio - target)``: zero at or below the target."""
    return eta * torch.relu(flops_ratio - target)


class DRNetLoss(nn.Module):
    """The loss of either stage (chosen by the model's output type), with per-epoch statistics.

    ``classifier_flops`` per candidate, ``predictor_flops`` and ``reference_flops`` as on
    :class:`~rubik.drnet.model.DRNet`; ``target`` and ``eta`` as in :class:`~rubik.drnet.model.DRNetConfig`.
    :meth:`pop_stats` returns the epoch's means (and resets them) for ``metrics.jsonl``.
    """

    def __init__(self, classifier_flops: Sequence[int], predictor_flops: int, reference_flops: int, *,
                 target: float | None = None, eta: float = 0.0, label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("flops", torch.tensor([float(f) for f in classifier_flops]), persistent=False)
        self.predictor_flops, self.reference_flops = float(predictor_flops), float(reference_flops)
        self.target, self.eta, self.label_smoothing = target, float(eta), float(label_smoothing)
        self._reset()

    def _reset(self):
        self._sums: dict[str, torch.Tensor] = {}
        self._steps = 0

    def _add(self, name, value):
        v = value.detach().float()
        self._sums[name] = self._sums[name] + v if name in self._sums else v.clone()

    def expected_flops_ratio(self, choice: torch.Tensor) -> torch.Tensor:
        """Batch mean of the images' FLOPs under ``choice`` (N, K), predictor included, over ``reference_flops``."""
        per_image = choice.float() @ self.flops.to(choice.device) + self.predictor_flops
        return per_image.mean() / self.reference_flops

    def forward(self, out, y: torch.Tensor) -> torch.Tensor:
        self._steps += 1
        if isinstance(out, MultiResOutput):
            ces = torch.stack([F.cross_entropy(lg.float(), y, label_smoothing=self.label_smoothing)
                               for lg in out.logits])
            self._add("ce_per_resolution", ces)
            return ces.mean()
        if not isinstance(out, DRNetOutput):
            raise TypeError(f"DRNetLoss: expected a DRNet training output, got {type(out).__name__}")
        ce = F.cross_entropy(out.logits.float(), y, label_smoothing=self.label_smoothing)
        ratio = self.expected_flops_ratio(out.choice)
        penalty = flops_penalty(ratio, self.target, self.eta)
        self._add("ce", ce)
        self._add("flops_ratio", ratio)
        self._add("penalty", penalty)
        self._add("choice_fraction", out.choice.detach().float().mean(0))
        return ce + penalty

    def pop_stats(self) -> dict:
        """The epoch's means (this rank's steps), then reset."""
        n = max(self._steps, 1)
        stats = {}
        for k, v in self._sums.items():
            v = (v / n).cpu()
            stats[k] = v.tolist() if v.ndim else float(v)
        self._reset()
        return stats


__all__ = ["DRNetLoss", "flops_penalty"]
