"""Straight-through Gumbel-softmax over K candidates, and its temperature schedule.

Forward: a hard one-hot sample of ``softmax((logits + g) / tau)`` (g Gumbel noise from torch's RNG,
so a checkpoint's RNG state makes it repeat); backward: the gradient of the soft sample. With it the
classifier's K outputs can be mixed by a choice that is discrete in the forward pass and still
differentiable for the predictor (Jang et al. 2017; DRNet Sec. 3.2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError


def st_gumbel_softmax(logits: torch.Tensor, tau: float, *, noise: bool = True) -> torch.Tensor:
    """One-hot rows (forward) carrying the soft sample's gradient (backward); ``noise=False``: argmax."""
    if noise:
        u = torch.rand_like(logits, dtype=torch.float32).clamp_(1e-10, 1 - 1e-7)   # no log(0)
        logits = logits.float() - torch.log(-torch.log(u))
    soft = torch.softmax(logits.float() / tau, dim=-1)
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    return hard - soft.detach() + soft


@dataclass(frozen=True)
class TemperatureSchedule:
    """``tau`` from ``start`` to ``end`` over a run, geometric in the step (``start == end``: constant)."""

    start: float = 1.0
    end: float = 1.0

    def __post_init__(self):
        for name in ("start", "end"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"Gumbel temperature {name}={v!r}: must be a finite number > 0")

    def at(self, progress: float) -> float:
        """The temperature at ``progress`` in [0, 1] (fraction of the run's steps done)."""
        p = min(max(float(progress), 0.0), 1.0)
        return float(self.start * (self.end / self.start) ** p)


__all__ = ["st_gumbel_softmax", "TemperatureSchedule"]
