"""What ``rubik.train``'s loop trains: :class:`Task` (plain classification) and the registry of others.

A task changes only the loop's hooks (the model it builds, its loss, what it adds to each epoch), so
every task keeps the recipes, schedules, EMA, checkpoints, ``--resume``, DDP and run-directory
guarantees. ``TrainConfig.task = {"kind": "drnet", ...}`` selects one (``TASKS``; imported only when used).
"""
from __future__ import annotations

import copy
from importlib import import_module
from typing import TYPE_CHECKING

from torch import nn

from rubik.errors import ConfigError
from rubik.flops import count_flops
from rubik.models import create_model

if TYPE_CHECKING:   # annotations only: rubik.config imports this module
    from rubik.config import TrainConfig
    from rubik.recipes import Recipe

__all__ = ["Task", "TASKS", "resolve_task", "make_model", "model_resolution"]


def make_model(cfg: "TrainConfig", num_classes: int) -> nn.Module:
    """The untrained model of a config: its ``arch``, built with ``num_classes`` outputs."""
    return create_model(cfg.arch, num_classes)


def model_resolution(model: nn.Module, cfg: "TrainConfig") -> int:
    """The input side: the model's own (``create_model`` sets it), else the config's Arch's."""
    res = getattr(model, "resolution", None)
    return int(res) if res else cfg.arch.input_size


class Task:
    """What ``train``'s loop trains: the model it builds, its loss, and what it adds to each epoch.

    The default is plain classification (``make_model``, cross-entropy with the recipe's label
    smoothing). Another task (``TrainConfig.task = {"kind": ..., ...}``, see ``TASKS``) changes only
    these hooks, so it keeps the loop's recipes, schedules, EMA, checkpoints, ``--resume``, DDP and
    run-directory guarantees. The model's forward in training mode may return any structure its
    ``criterion`` understands; in eval mode it must return logits (``evaluate`` scores them).
    """

    def check(self, cfg: "TrainConfig") -> None:
        """ConfigError for a bad setting; called by ``validate`` before any data is read."""

    def build_model(self, cfg: "TrainConfig", num_classes: int) -> nn.Module:
        return make_model(cfg, num_classes)

    def prepare(self, model: nn.Module) -> None:
        """After the recipe is applied to the model (its head init would overwrite loaded weights)."""

    def flops(self, model: nn.Module, resolution: int) -> int | None:
        """FLOPs of one image, as the run's summary reports them."""
        # on a CPU copy in eval mode: the counter's forward must not touch BN statistics or the RNG
        return int(count_flops(copy.deepcopy(model).cpu().eval(), resolution))

    def criterion(self, recipe: "Recipe", model: nn.Module, device) -> nn.Module:
        return nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)

    def start_epoch(self, model: nn.Module, epoch: int, epochs: int, steps_per_epoch: int) -> None:
        """Before each epoch's steps (also the first epoch after a resume): e.g. a temperature schedule."""

    def end_epoch(self, criterion) -> dict:
        """Extra numbers for the epoch's ``metrics.jsonl`` line (read after its steps)."""
        return {}


#: ``TrainConfig.task["kind"]`` -> "module:factory" (imported only when used); the factory takes the dict
TASKS = {"drnet": "rubik.drnet.task:DRNetTask.from_dict"}


def resolve_task(spec: dict | None) -> Task:
    """The :class:`Task` of a ``TrainConfig.task`` dict (None: plain classification); ConfigError if unknown."""
    if spec is None:
        return Task()
    if not isinstance(spec, dict) or spec.get("kind") not in TASKS:
        kind = spec.get("kind") if isinstance(spec, dict) else spec
        raise ConfigError(f"unknown task {kind!r}; expected a dict with kind one of {sorted(TASKS)}")
    module, _, attr = TASKS[spec["kind"]].partition(":")
    factory = import_module(module)
    for part in attr.split("."):
        factory = getattr(factory, part)
    return factory({k: v for k, v in spec.items() if k != "kind"})
