"""Train one (twisted) model: ``train(TrainConfig) -> dict``, the ``rubik train`` CLI, torchrun-ready.

Read top to bottom: recipes (``efficientnet``, ``resnet``: the paper's; ``proxy``, ``proxy_resnet``:
short schedules for ranking many small models; ``smoke``: tests), config, helpers, the run directory
and its checkpoint (``training_state`` / ``load_training_state``: one state dict for checkpoint and
resume), then the loop: ``train_one_epoch`` and ``train`` (setup -> data -> model -> optimizer ->
resume -> epochs of train/eval/checkpoint -> summary).

``batch_size`` is per process; the learning rate is ``lr_per_1024 * batch_size * world_size / 1024``.
Outputs in ``out_dir``: ``checkpoint.pt`` (every epoch, atomic), ``metrics.jsonl`` (one JSON line per
epoch), ``config.json``, ``result.json`` (``status`` ``done`` or ``diverged``), guarded by ``run.lock``.
Why each recipe is what it is (with the measurements behind it), the devices and the step's design,
and the resume guarantees: ``docs/TRAINING.md``.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rubik.data import (DataConfig, DataError, build_loaders, data_difference, data_fingerprint, dataset_samples,
                        pack_correct)
from rubik.errors import ConfigError, RunDirError
from rubik.optim import LRSchedule, ModelEMA, build_optimizer, param_groups
from rubik.rundir import (acquire, append_line, atomic_torch_save, atomic_write, atomic_write_json, clean_stale_tmp,
                          dumps, jsonable, lock_info, read_lock)


# ----------------------------------------------------------------------------- recipes

@dataclass
class Recipe:
    name: str = "custom"
    epochs: int = 450
    batch_size: int = 128                # per process
    optimizer: str = "rmsproptf"         # "rmsproptf" | "sgd" | "adamw"
    lr_per_1024: float = 0.048           # lr = lr_per_1024 * global_batch / 1024
    momentum: float = 0.9
    rmsprop_decay: float = 0.9
    rmsprop_eps: float = 1e-3
    weight_decay: float = 1e-5           # not on BN parameters and biases
    schedule: str = "step"               # "step" | "exp" | "cosine" | "constant"
    decay_rate: float = 0.97
    decay_epochs: float = 2.4
    min_lr: float = 0.0                  # cosine floor
    warmup_epochs: float = 3.0
    warmup_lr: float = 1e-6
    bn_momentum: float | None = 0.01     # PyTorch convention (TF 0.99); None -> leave the model's
    bn_eps: float | None = 1e-3
    dropout: float | None = 0.2          # before the classifier; None -> leave the model's
    drop_connect: float = 0.0            # stochastic depth, max prob (linear over blocks)
    label_smoothing: float = 0.1
    head_init: str | None = None         # "zero": zero the classifier (weights, bias); None: the model's init
    ema_decay: float | None = 0.9999     # None -> from the run length (time constant = ema_horizon * steps)
    ema: bool = True
    ema_warmup: bool = False
    ema_horizon: float = 0.1
    crop_scale: tuple[float, float] = (0.08, 1.0)
    color_jitter: float = 0.4
    rand_augment: bool = False
    grad_clip: float | None = None
    eval_every: int = 1                  # the last epoch is always evaluated

    @classmethod
    def named(cls, name: str, **overrides) -> "Recipe":
        if name not in RECIPES:
            raise ConfigError(f"unknown recipe {name!r}; expected one of {sorted(RECIPES)}")
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown recipe fields {sorted(unknown)}")
        return dataclasses.replace(RECIPES[name], **overrides)

    def check(self) -> "Recipe":
        """ConfigError naming the first field outside its range (``ema_decay=1.5``, ``lr_per_1024=nan``)."""
        def bad(name, want):
            raise ConfigError(f"recipe field {name}={getattr(self, name)!r}: {want}")

        def num(name, lo=None, hi=None, lo_open=False, hi_open=False, none=False):
            v = getattr(self, name)
            if v is None and none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                bad(name, "expected a finite number" + (" or None" if none else ""))
            if lo is not None and (v < lo or (lo_open and v == lo)):
                bad(name, f"must be {'>' if lo_open else '>='} {lo}")
            if hi is not None and (v > hi or (hi_open and v == hi)):
                bad(name, f"must be {'<' if hi_open else '<='} {hi}")

        for name in ("epochs", "batch_size", "eval_every"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int) \
                    or getattr(self, name) < 1:
                bad(name, "expected a positive integer")
        num("lr_per_1024", 0, lo_open=True)
        num("ema_decay", 0, 1, hi_open=True, none=True)        # 1 would never move
        num("ema_horizon", 0, lo_open=True)
        for name in ("momentum", "rmsprop_decay", "label_smoothing", "drop_connect"):
            num(name, 0, 1, hi_open=True)
        num("dropout", 0, 1, hi_open=True, none=True)
        num("bn_momentum", 0, 1, none=True)
        num("bn_eps", 0, lo_open=True, none=True)
        num("grad_clip", 0, lo_open=True, none=True)
        for name in ("rmsprop_eps", "decay_rate", "decay_epochs"):
            num(name, 0, lo_open=True)
        for name in ("weight_decay", "warmup_epochs", "warmup_lr", "min_lr", "color_jitter"):
            num(name, 0)
        if self.optimizer not in ("rmsproptf", "sgd", "adamw"):
            bad("optimizer", "expected rmsproptf, sgd or adamw")
        if self.schedule not in ("step", "exp", "cosine", "constant"):
            bad("schedule", "expected step, exp, cosine or constant")
        if self.head_init not in (None, "zero"):
            bad("head_init", "expected None or 'zero'")
        lo, hi = (tuple(self.crop_scale) + (None, None))[:2]
        if not all(isinstance(v, (int, float)) for v in (lo, hi)) or not 0 < lo <= hi <= 1:
            bad("crop_scale", "expected (lo, hi) with 0 < lo <= hi <= 1")
        return self


RECIPES = {
    "efficientnet": Recipe(name="efficientnet"),
    "resnet": Recipe(name="resnet", epochs=90, optimizer="sgd", lr_per_1024=0.4, weight_decay=1e-4,
                     schedule="step", decay_rate=0.1, decay_epochs=30, warmup_epochs=0, bn_momentum=0.1,
                     bn_eps=1e-5, dropout=None, label_smoothing=0.0, ema=False, color_jitter=0.4),
    "proxy": Recipe(name="proxy", epochs=10, batch_size=32, lr_per_1024=0.016, schedule="cosine", warmup_epochs=1.0,
                    bn_momentum=0.1, head_init="zero", ema_decay=None, ema_warmup=True, crop_scale=(0.25, 1.0),
                    color_jitter=0.0),
    "proxy_resnet": Recipe(name="proxy_resnet", epochs=10, batch_size=32, optimizer="sgd", lr_per_1024=0.8,
                           weight_decay=5e-5, schedule="cosine", warmup_epochs=1.0, bn_momentum=0.1, bn_eps=1e-5,
                           head_init="zero", dropout=None,
                           ema_decay=None, ema_warmup=True, crop_scale=(0.25, 1.0), color_jitter=0.0),
    "smoke": Recipe(name="smoke", epochs=2, batch_size=16, lr_per_1024=0.2, schedule="cosine", warmup_epochs=0.0,
                    bn_momentum=0.5, head_init="zero", dropout=0.0, label_smoothing=0.0, ema_decay=0.9, ema_warmup=True,
                    crop_scale=(0.35, 1.0), color_jitter=0.0),
}


@dataclass
class TrainConfig:                   # JSON-serialisable (dataclasses.asdict); the sweep stores it
    model: str | dict = "efficientnet_b0"   # registered name or base, or an Arch (kept as Arch.to_dict())
    twist: tuple[float, float, float] | None = None   # with a name: its dials (an Arch has its own)
    base_resolution: int | None = None   # with a name: r scales from this (proxy runs: 64); default the family's
    data: DataConfig = field(default_factory=DataConfig)
    recipe: str | Recipe = "proxy"
    epochs: int | None = None        # None -> the recipe's
    batch_size: int | None = None    # per process; None -> the recipe's
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    out_dir: str | None = None       # checkpoints + metrics.jsonl; None -> no checkpoints
    resume: bool | str = False       # True: continue out_dir's run (error if it has no checkpoint);
                                     # "auto": continue if there is a checkpoint, else start (sweeps)
    overwrite: bool = False          # replace the run in out_dir (without it, a run there is an error)
    compile: bool | str = False      # torch.compile the model: True, or a mode ("reduce-overhead": CUDA graphs)
    progress: bool = True
    channels_last: bool | None = True    # NHWC model and batches (None, in older configs: the same)
    task: dict | None = None         # what the loop trains besides plain classification, e.g. {"kind": "drnet",
                                     # ...} (rubik.drnet); None: a classifier at the model's resolution

    def __post_init__(self):
        if hasattr(self.model, "to_dict"):   # an Arch is stored as its dict, as sweeps and run dirs keep it
            self.model = self.model.to_dict()

    def arch(self):
        """The :class:`rubik.models.Arch` this config trains (ValueError if the fields disagree)."""
        from rubik.models import Arch

        if isinstance(self.model, dict):
            if self.twist is not None or self.base_resolution is not None:
                raise ValueError("model is an Arch, which has its own twist and base_resolution: leave those unset")
            return Arch.from_dict(self.model)
        return Arch.named(self.model, twist=self.twist, base_resolution=self.base_resolution)


# ----------------------------------------------------------------------------- tasks

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
        from rubik.flops import count_flops

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
    from importlib import import_module

    module, _, attr = TASKS[spec["kind"]].partition(":")
    factory = import_module(module)
    for part in attr.split("."):
        factory = getattr(factory, part)
    return factory({k: v for k, v in spec.items() if k != "kind"})


# ----------------------------------------------------------------------------- helpers

def resolve_recipe(recipe) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, dict):
        # {"name": "proxy", "epochs": 4, ...}: a named recipe with some fields changed (a full
        # asdict(Recipe) round-trips too); an unregistered name starts from Recipe's defaults
        d = dict(recipe)
        if "crop_scale" in d:
            d["crop_scale"] = tuple(d["crop_scale"])
        name = d.pop("name", "custom")
        if name in RECIPES:
            return Recipe.named(name, **d)
        unknown = set(d) - {f.name for f in dataclasses.fields(Recipe)}
        if unknown:
            raise ValueError(f"unknown recipe fields {sorted(unknown)}")
        return Recipe(name=name, **d)
    return Recipe.named(recipe)


def setup_distributed():
    """``(rank, world_size, local_rank, initialised_here)`` from torchrun's environment."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return 0, 1, 0, False
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), local_rank, False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), local_rank, True


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    return torch.device(name)


def check_device(name, fix: str = "--device cpu") -> None:
    """ConfigError unless the device ``name`` exists on this machine (``auto`` and ``cpu`` always do):
    ``cuda``/``cuda:N`` need CUDA and N below the device count, ``mps`` Apple's backend. Run it
    before any data is read, so a job asking for a missing GPU stops at once, in one line; ``fix`` is
    the setting the message suggests instead."""
    name = str(name or "auto")
    if name in ("auto", "cpu"):
        return
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"device {name!r}: {e} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: no CUDA device is available here (torch.cuda.is_available() is "
                              f"False: no NVIDIA driver or GPU, or a CPU-only torch build); use {fix}, "
                              "or run on a GPU node")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ConfigError(f"device {name!r}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r}: Apple's MPS backend is not available here; use {fix}")


def seed_everything(seed: int):
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np
        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def rng_state() -> dict:
    import numpy as np
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict):
    import numpy as np
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def apply_recipe_to_model(model: nn.Module, r: Recipe):
    """BN momentum/eps, classifier dropout and drop-connect (stochastic depth) from the recipe."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if r.bn_momentum is not None:
                m.momentum = r.bn_momentum
            if r.bn_eps is not None:
                m.eps = r.bn_eps
        elif isinstance(m, nn.Dropout) and r.dropout is not None:
            m.p = r.dropout
    if r.head_init == "zero":
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(head.weight)
        if head.bias is not None:
            nn.init.zeros_(head.bias)
    elif r.head_init is not None:
        raise ValueError(f"unknown head_init {r.head_init!r}; expected None or 'zero'")
    try:
        from torchvision.ops import StochasticDepth
    except ImportError:
        return
    sds = [m for m in model.modules() if isinstance(m, StochasticDepth)]
    for i, m in enumerate(sds):   # torchvision's rule: p grows linearly with the block index
        m.p = r.drop_connect * i / len(sds)


def make_model(cfg: TrainConfig, num_classes: int) -> nn.Module:
    from rubik.models import create_model

    return create_model(cfg.model, num_classes, twist=cfg.twist, base_resolution=cfg.base_resolution)


def model_resolution(model: nn.Module, cfg: TrainConfig) -> int:
    """The input side: the model's own (``create_model`` sets it), else the config's Arch's."""
    res = getattr(model, "resolution", None)
    return int(res) if res else cfg.arch().input_size


@torch.no_grad()
def evaluate(model: nn.Module, loader, device, amp_dtype=None, world_size: int = 1) -> dict:
    """Top-1 / top-5 (%) and mean loss over the loader (summed over ranks), plus ``correct`` and
    ``labels``: the top-1 hit and label of every image in the loader's order (CPU tensors; gathered
    from the ranks' strided shards), which ``rubik.data.pack_correct`` stores per image."""
    was_training = model.training
    model.eval()
    stats = torch.zeros(4, dtype=torch.float64, device=device)   # correct1, correct5, loss_sum, n
    hits, labels = [], []
    for x, y in loader:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x)
        logits = logits.float()
        k = min(5, logits.shape[1])
        topk = logits.topk(k, dim=1).indices
        hit = topk.eq(y[:, None])
        stats[0] += hit[:, 0].sum()
        stats[1] += hit.any(1).sum()
        stats[2] += F.cross_entropy(logits, y, reduction="sum")
        stats[3] += len(y)
        hits.append(hit[:, 0])
        labels.append(y)
    correct = torch.cat(hits).cpu() if hits else torch.zeros(0, dtype=torch.bool)
    labels = torch.cat(labels).cpu() if labels else torch.zeros(0, dtype=torch.int64)
    if world_size > 1:
        torch.distributed.all_reduce(stats)
        correct, labels = _gather_strided(correct, labels, world_size)
    model.train(was_training)
    n = max(stats[3].item(), 1)
    return {"top1": 100 * stats[0].item() / n, "top5": 100 * stats[1].item() / n, "loss": stats[2].item() / n,
            "correct": correct, "labels": labels}


def _gather_strided(correct, labels, world_size):
    """Every rank's eval shard (images ``rank, rank + world, ...``) back in loader order."""
    shards = [None] * world_size
    torch.distributed.all_gather_object(shards, (correct, labels))
    n = sum(len(c) for c, _ in shards)
    out_c, out_y = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.int64)
    for rank, (c, y) in enumerate(shards):
        out_c[rank::world_size], out_y[rank::world_size] = c, y
    return out_c, out_y


def save_checkpoint(path, state: dict):
    """Atomic (temp file + os.replace). A module-level function so tests can interrupt a run here."""
    atomic_torch_save(state, path)


def _jsonable(cfg: TrainConfig) -> dict:
    d = dataclasses.asdict(cfg)
    return json.loads(json.dumps(d, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


#: the largest model ``rubik train`` / ``latency`` build (parameters): 10x ResNet-50, 40x the largest
#: registered EfficientNet twist; larger dials (up to the dial limit of 8) would allocate tens of GB first
MAX_PARAMS = 250_000_000


def check_model_size(arch, num_classes: int = 1000) -> None:
    """ConfigError when ``arch`` (a :class:`rubik.models.Arch`) has more than ``MAX_PARAMS`` parameters
    (counted from its plan, nothing allocated): the message gives its size and FLOPs."""
    n = arch.params(num_classes=num_classes)
    if n > MAX_PARAMS:
        raise ConfigError(f"{arch.base} with twist {tuple(arch.twist.as_tuple())} has {n / 1e6:,.0f}M parameters "
                          f"({4 * n / 2**30:.1f} GiB of float32 weights) and {arch.flops(num_classes=num_classes) / 1e9:,.1f}"
                          f" GFLOPs at {arch.input_size} px: more than rubik builds (MAX_PARAMS = {MAX_PARAMS / 1e6:.0f}M)")


def validate(cfg: TrainConfig, *, model_given: bool = False) -> Recipe:
    """The resolved recipe, after checking every setting that can be checked without data: the model
    name and dials, epochs, batch size, threads, the recipe's fields. ConfigError on the first bad one,
    before anything expensive runs."""
    try:
        r = resolve_recipe(cfg.recipe)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"recipe: {e}") from None
    for name in ("epochs", "batch_size", "threads"):
        v = getattr(cfg, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    r = dataclasses.replace(r, epochs=cfg.epochs or r.epochs, batch_size=cfg.batch_size or r.batch_size).check()
    if cfg.resume not in (False, True, "auto"):
        raise ConfigError(f"resume must be True, False or 'auto', got {cfg.resume!r}")
    check_device(cfg.device)
    data = cfg.data if isinstance(cfg.data, DataConfig) else None
    for name in ("train_per_class", "val_per_class"):
        v = getattr(data, name, None)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConfigError(f"data.{name} (--{name.replace('_', '-')}) must be a positive integer, got {v!r}")
    if not model_given:
        try:
            arch = cfg.arch()
        except (ValueError, TypeError) as e:
            raise ConfigError(str(e)) from None
        check_model_size(arch)
    resolve_task(cfg.task).check(cfg)
    return r


# a run is the same run when these agree (device, threads, paths and data loading are not part of it)
_RUN_KEYS = ("model", "twist", "base_resolution", "seed")
_RUN_DATA_KEYS = ("name", "train_per_class", "val_per_class", "manifest", "seed")


def run_signature(config: dict) -> dict:
    """What must match for ``resume`` to continue a run: model, dials, seed, data subset, effective
    epochs and batch size and every recipe field (a stored ``TrainConfig`` dict in, flat dict out)."""
    r = resolve_recipe(config.get("recipe", "proxy"))
    sig = {k: config.get(k) for k in _RUN_KEYS}
    sig.update({f"data.{k}": (config.get("data") or {}).get(k) for k in _RUN_DATA_KEYS})
    sig["epochs"] = config.get("epochs") or r.epochs
    sig["batch_size"] = config.get("batch_size") or r.batch_size
    sig.update({f"recipe.{k}": v for k, v in dataclasses.asdict(r).items() if k not in ("name", "epochs", "batch_size")})
    if config.get("task") is not None:   # only then: runs from before tasks existed keep their signature
        sig["task"] = config["task"]
    return jsonable(sig)


RUN_FILES = ("checkpoint.pt", "metrics.jsonl", "result.json", "config.json")


def _holds_run(out: Path) -> str | None:
    """What in ``out`` shows a run that has done work (None if nothing: a run killed in its first
    epoch lost nothing)."""
    if (out / "result.json").is_file():
        return "a finished run (result.json)"
    if (out / "checkpoint.pt").is_file():
        return "a run with a checkpoint"
    m = out / "metrics.jsonl"
    if m.is_file() and m.stat().st_size:
        return "a run's metrics.jsonl"
    return None


def open_run_dir(cfg: TrainConfig, out: Path):
    """Lock ``out`` for this run and decide how to use it: ``(lock, checkpoint or None)``.

    Refuses (RunDirError) a folder that another live process is training into, or that holds a
    run unless ``resume`` (continue it) or ``overwrite`` (delete it) is given; ``resume=True``
    without a checkpoint, a checkpoint that cannot be read, and a checkpoint made with other
    settings (``run_signature``) are errors too. Orphan temp files of killed writes are removed.
    """
    out.mkdir(parents=True, exist_ok=True)
    lock = acquire(out / "run.lock", lock_info(out_dir=str(out)))
    if lock is None:
        who = read_lock(out / "run.lock") or {}
        raise RunDirError(f"{out} is in use by another training (pid {who.get('pid')} on {who.get('host')}, "
                          f"since {who.get('time')}); wait for it, or give another --out")
    try:
        clean_stale_tmp(out)
        ckpt_path = out / "checkpoint.pt"
        if cfg.overwrite:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
            return lock, None
        if cfg.resume is True and not ckpt_path.is_file():
            raise RunDirError(f"--resume: no checkpoint.pt in {out}, nothing to resume (start without --resume)")
        if cfg.resume and ckpt_path.is_file():
            return lock, load_run_checkpoint(ckpt_path, cfg)
        held = _holds_run(out)
        if held and not cfg.resume:
            raise RunDirError(f"{out} holds {held}; pass --resume to continue it or --overwrite to replace it")
        for name in RUN_FILES:   # resume="auto" without a checkpoint: start clean
            (out / name).unlink(missing_ok=True)
        return lock, None
    except BaseException:
        lock.release()
        raise


_CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "rng", "epoch", "history", "best_top1", "train_time_s")


def training_state(model, ema, optimizer, schedule, *, rngs, epoch, history, best_top1, train_time, cfg, recipe,
                   data=None) -> dict:
    """The checkpoint of a run after ``epoch`` epochs: the weights (raw and EMA), the optimizer and
    schedule, every rank's RNG state, the history, the settings and ``data`` (``rubik.data.data_fingerprint``:
    the class list and the files, checked on resume); ``load_training_state`` reads it."""
    return {"model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
            "rng": rngs, "epoch": epoch, "history": history, "best_top1": best_top1,
            "train_time_s": train_time, "config": _jsonable(cfg), "recipe": dataclasses.asdict(recipe),
            "data": data}


def load_training_state(ck: dict, model, ema, optimizer, schedule, *, rank: int = 0, path=None) -> tuple:
    """Put a ``training_state`` checkpoint back into the run's objects and this rank's RNGs; returns
    ``(epoch, history, best_top1, train_time_s)``. A checkpoint of another model is a ``RunDirError``."""
    try:
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        schedule.load_state_dict(ck["scheduler"])
        if ema is not None and ck.get("ema") is not None:
            ema.load_state_dict(ck["ema"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise RunDirError(f"{path} does not fit this model ({' '.join(str(e).split())[:300]}); "
                          "--overwrite starts the run over") from None
    rngs = ck["rng"] if isinstance(ck["rng"], list) else [ck["rng"]]
    set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0])
    return ck["epoch"], ck["history"], ck["best_top1"], ck["train_time_s"]


def load_run_checkpoint(path: Path, cfg: TrainConfig) -> dict:
    """A ``train`` checkpoint on the CPU, checked: readable, complete, made with the same settings."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise RunDirError(f"cannot read checkpoint {path}: {type(e).__name__}: {e} (damaged? --overwrite "
                          "starts the run over)") from None
    missing = [k for k in _CHECKPOINT_KEYS if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise RunDirError(f"{path} is not a rubik.train checkpoint (no {', '.join(missing)}); --overwrite "
                          "starts the run over")
    if isinstance(ck.get("config"), dict):
        before, now = run_signature(ck["config"]), run_signature(_jsonable(cfg))
        diff = [f"{k} {before.get(k)!r} -> {now.get(k)!r}" for k in now if before.get(k) != now.get(k)]
        if diff:
            raise RunDirError(f"--resume: {path.parent} was trained with other settings ({'; '.join(diff)}); "
                              "resume with the same settings, or --overwrite to start over")
    return ck


def _stop_diverged(rec: dict, out: Path | None, show: bool) -> str:
    """A non-finite training loss: the weights are lost, so stop. The epoch's line is written (loss
    null), the last good checkpoint is kept, and the run's status is ``diverged``."""
    if out is not None:
        append_line(out / "metrics.jsonl", rec)
    print(f"[rubik.train] epoch {rec['epoch']}: training loss is {rec['train_loss']}; the run diverged "
          "(lower the learning rate); stopping", file=sys.stderr, flush=True)
    return "diverged"


# ----------------------------------------------------------------------------- the loop

LOG_EVERY = 50   # steps between progress-bar loss readings (each one waits for the GPU)


def train_one_epoch(train_model, model, loader, criterion, optimizer, schedule, ema, *, device, amp_dtype=None,
                    grad_clip: float = 0.0, world: int = 1, desc: str = "", show: bool = False,
                    time_first_step: bool = False) -> dict:
    """One pass over ``loader``: forward (autocast), backward, clip, step, schedule, EMA.

    ``train_model`` is what runs forward (DDP- or ``torch.compile``-wrapped); ``model`` is the plain
    module whose parameters are clipped and averaged. Returns ``{"loss": the mean training loss over
    the epoch's steps (averaged over ranks), "time_s", "first_step_s"}`` (``first_step_s``: the wall
    time of the first step, torch.compile's compilation included, with ``time_first_step``; else None).
    """
    from tqdm.auto import tqdm

    train_model.train()
    t0 = time.perf_counter()
    first_step_s = None
    # no host sync inside the loop (a GPU runs ahead of Python): the loss is summed on the device and
    # read once per epoch, and by the progress bar once every LOG_EVERY steps
    loss_sum = torch.zeros((), device=device)
    bar = tqdm(loader, desc=desc, disable=not show, leave=False, unit="batch")
    for i, (x, y) in enumerate(bar):
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = criterion(train_model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip, foreach=True)
        optimizer.step()
        schedule.step()
        if ema is not None:
            ema.update(model)
        loss_sum += loss.detach()
        if time_first_step and first_step_s is None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            first_step_s = time.perf_counter() - t0
        if show and i % LOG_EVERY == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{schedule.get_last_lr()[0]:.2e}")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    epoch_time = time.perf_counter() - t0
    train_loss = loss_sum.item() / len(loader)
    if world > 1:
        t = torch.tensor([train_loss], device=device)
        torch.distributed.all_reduce(t)
        train_loss = t.item() / world
    return {"loss": train_loss, "time_s": epoch_time, "first_step_s": first_step_s}


def train(cfg: TrainConfig, *, model: nn.Module | None = None) -> dict:
    """Train ``cfg.model`` (or the given ``model``, for tests) with ``cfg.recipe``; see docs/TRAINING.md.

    Returns ``{"status", "top1", "top5", "ema_top1", "ema_top5", "best_top1", "epochs", "train_time_s",
    "images_per_s", "params", "flops", "resolution", "history", "first_step_s", "val_correct"}``
    (accuracies in %; the ema_* are None when the recipe has no EMA; ``first_step_s`` is the wall time
    of the run's first step, which holds ``torch.compile``'s compilation when ``compile`` is on).
    ``val_correct`` (and ``ema_val_correct`` with EMA) is the last evaluation's per-image top-1 hits,
    ``rubik.data.pack_correct``'s dict. ``status`` is ``"done"``, or ``"diverged"`` when the training
    loss became NaN / infinite: the run stopped there and its accuracies are None.

    Bad settings raise ``ConfigError`` and an unusable ``out_dir`` ``RunDirError`` before any data is
    read (see ``validate`` and ``open_run_dir``).
    """
    # --- setup: settings, run directory, processes, device, threads, seeds
    r = validate(cfg, model_given=model is not None)
    epochs, batch_size = r.epochs, r.batch_size
    rank, world, local_rank, own_pg = setup_distributed()
    master = rank == 0
    out = Path(cfg.out_dir) if cfg.out_dir else None
    lock, ck = None, None
    if master and out is not None:
        lock, ck = open_run_dir(cfg, out)
    elif out is not None and cfg.resume and (out / "checkpoint.pt").is_file():
        ck = load_run_checkpoint(out / "checkpoint.pt", cfg)
    try:
        return _train(cfg, r, model, epochs, batch_size, rank, world, local_rank, out, ck)
    finally:
        if lock is not None:
            lock.release()
        if own_pg:
            torch.distributed.destroy_process_group()


def _train(cfg, r, model, epochs, batch_size, rank, world, local_rank, out, ck) -> dict:
    device = resolve_device(cfg.device, local_rank)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    amp_dtype = torch.bfloat16 if device.type == "cuda" else None
    # faster on CPU too (benchmarks/channels_last.py); an earlier "2x slower on CPU" could not be reproduced
    channels_last = cfg.channels_last is not False
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    master = rank == 0
    show = cfg.progress and master
    seed_everything(cfg.seed)

    # --- model (built before the loaders: its resolution sets the image size)
    root, classes, _ = dataset_samples(cfg.data, "val")
    if len(classes) < 2:
        raise DataError(f"{root}: {len(classes)} class folder(s) ({', '.join(classes)}); classification needs "
                        "at least 2 (every model would score 100 %)")
    data_fp = data_fingerprint(cfg.data) if out is not None else None
    if ck is not None and isinstance(ck.get("data"), dict):   # checkpoints older than this check carry none
        why = data_difference(ck["data"], data_fp or data_fingerprint(cfg.data))
        if why:
            raise RunDirError(f"--resume: {out} was trained on other data than {root} holds now: {why}; resume "
                              "with the data it started on, or --overwrite to start over")
    task = resolve_task(cfg.task)
    if model is None:
        model = task.build_model(cfg, len(classes))
    resolution = model_resolution(model, cfg)
    apply_recipe_to_model(model, r)
    task.prepare(model)
    params = sum(p.numel() for p in model.parameters())
    flops = None
    try:
        flops = task.flops(model, resolution)
    except Exception:  # FLOPs are informative here; a model the counter cannot handle still trains
        pass
    model.to(device, memory_format=memory_format)
    torch.manual_seed(cfg.seed * 1000 + 1 + rank)   # dropout / drop-connect stream, per rank

    # --- data
    train_loader, val_loader, num_classes = build_loaders(
        cfg.data, resolution, batch_size, device=device, distributed=world > 1, rand_augment=r.rand_augment,
        color_jitter=r.color_jitter, scale=tuple(r.crop_scale), progress=show, channels_last=channels_last,
        seed=cfg.seed)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ConfigError(f"batch size {batch_size} is larger than the training set ({len(train_loader.dataset)} images)")
    total_steps = steps_per_epoch * epochs

    # --- optimizer, schedule, EMA, loss
    lr = r.lr_per_1024 * batch_size * world / 1024
    optimizer = build_optimizer(r.optimizer, param_groups(model, r.weight_decay), lr=lr, momentum=r.momentum,
                                alpha=r.rmsprop_decay, eps=r.rmsprop_eps)
    schedule = LRSchedule(optimizer, lr=lr, steps_per_epoch=steps_per_epoch, epochs=epochs, kind=r.schedule,
                          warmup_epochs=r.warmup_epochs, warmup_lr=r.warmup_lr, decay_rate=r.decay_rate,
                          decay_epochs=r.decay_epochs, min_lr=r.min_lr)
    ema = None
    if r.ema:
        decay = r.ema_decay if r.ema_decay is not None else 1 - 1 / max(1.0, r.ema_horizon * total_steps)
        ema = ModelEMA(model, decay, warmup=r.ema_warmup)
    criterion = task.criterion(r, model, device)

    # --- resume
    start_epoch, history, best_top1, train_time, per_image = 0, [], 0.0, 0.0, {}
    ckpt_path = out / "checkpoint.pt" if out else None
    if ck is not None:   # read and checked by open_run_dir before any data was loaded
        start_epoch, history, best_top1, train_time = load_training_state(ck, model, ema, optimizer, schedule,
                                                                          rank=rank, path=ckpt_path)
        if show:
            print(f"[rubik.train] resumed from {ckpt_path} at epoch {start_epoch}/{epochs}")
    if master and out is not None:
        atomic_write_json(out / "config.json", _jsonable(cfg))
        # metrics.jsonl always mirrors the checkpoint's history (a run killed mid-epoch leaves no stray line)
        atomic_write(out / "metrics.jsonl", lambda f: f.write("".join(dumps(h) + "\n" for h in history)),
                     binary=False)

    # --- wrap for speed / several processes (after loading: state dicts keep plain names)
    train_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        train_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        mode = cfg.compile if isinstance(cfg.compile, str) and cfg.compile != "default" else None
        train_model = torch.compile(train_model, mode=mode)

    first_step_s, status = None, "done"
    for epoch in range(start_epoch, epochs):
        train_loader.set_epoch(epoch)
        task.start_epoch(model, epoch, epochs, steps_per_epoch)
        stats = train_one_epoch(train_model, model, train_loader, criterion, optimizer, schedule, ema, device=device,
                                amp_dtype=amp_dtype, grad_clip=r.grad_clip, world=world,
                                desc=f"epoch {epoch + 1}/{epochs}", show=show, time_first_step=first_step_s is None)
        if first_step_s is None:   # the run's first step: torch.compile's compilation when it is on
            first_step_s = stats["first_step_s"]
        train_loss, epoch_time = stats["loss"], stats["time_s"]
        train_time += epoch_time

        # --- evaluate raw and EMA weights
        rec = {"epoch": epoch + 1, "train_loss": train_loss, "lr": schedule.get_last_lr()[0],
               "epoch_time_s": epoch_time, "images_per_s": steps_per_epoch * batch_size * world / epoch_time,
               **task.end_epoch(criterion)}
        if not math.isfinite(train_loss):   # NaN / inf: checked where the loop syncs anyway (the epoch's loss)
            history.append(rec)
            status = _stop_diverged(rec, out if master else None, show)
            break
        if (epoch + 1) % r.eval_every == 0 or epoch + 1 == epochs:
            m = evaluate(model, val_loader, device, amp_dtype, world)
            rec.update(top1=m["top1"], top5=m["top5"], val_loss=m["loss"])
            per_image = {"val_correct": pack_correct(m["correct"], m["labels"])}
            if ema is not None:
                m = evaluate(ema.module, val_loader, device, amp_dtype, world)
                rec.update(ema_top1=m["top1"], ema_top5=m["top5"], ema_val_loss=m["loss"])
                per_image["ema_val_correct"] = pack_correct(m["correct"], m["labels"])
            best_top1 = max(best_top1, rec["top1"], rec.get("ema_top1", 0.0))
        history.append(rec)
        if show:
            acc = f" top1 {rec['top1']:.2f} top5 {rec['top5']:.2f}" if "top1" in rec else ""
            acc += f" | ema top1 {rec['ema_top1']:.2f}" if "ema_top1" in rec else ""
            print(f"[rubik.train] epoch {epoch + 1}/{epochs} loss {train_loss:.4f}{acc}"
                  f" | {rec['images_per_s']:.0f} img/s", flush=True)

        # --- checkpoint (atomic) then the metrics line; every rank's RNG state goes in
        rngs = [rng_state()]
        if world > 1 and out is not None:
            rngs = [None] * world
            torch.distributed.all_gather_object(rngs, rng_state())
        if master and out is not None:
            try:
                save_checkpoint(ckpt_path, training_state(model, ema, optimizer, schedule, rngs=rngs, epoch=epoch + 1,
                                                          history=history, best_top1=best_top1,
                                                          train_time=train_time, cfg=cfg, recipe=r,
                                                          data=data_fp))
            except OSError as e:
                kept = f"the checkpoint of epoch {epoch} is kept; fix it, then rerun with --resume" if epoch else \
                    "no epoch was saved"
                raise RunDirError(f"cannot write {e.filename or ckpt_path}: {e.strerror}; {kept}") from e
            append_line(out / "metrics.jsonl", rec)

    # --- summary (per-image outcomes of the last evaluation in this process; none after a resume
    # that had nothing left to train)
    last = next((h for h in reversed(history) if "top1" in h), {}) if status == "done" else {}
    result = {
        "status": status,   # "diverged": stopped on a non-finite loss; no accuracies (the weights are lost)
        "top1": last.get("top1"), "top5": last.get("top5"),
        "ema_top1": last.get("ema_top1"), "ema_top5": last.get("ema_top5"),
        "best_top1": best_top1, "epochs": epochs, "train_time_s": train_time,
        "images_per_s": (sum(h["epoch_time_s"] * h["images_per_s"] for h in history) / train_time) if train_time else None,
        "params": params, "flops": flops, "resolution": resolution, "history": history,
        "first_step_s": first_step_s, **per_image,
    }
    if master and out is not None:
        atomic_write_json(out / "result.json", {k: v for k, v in result.items() if k != "history"})
    return result


# ----------------------------------------------------------------------------- CLI

def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--model", default="efficientnet_b0", help="registered model name or base (default efficientnet_b0)")
    p.add_argument("--twist", type=float, nargs=3, metavar=("R", "D", "W"), help="resolution, depth, width dials")
    p.add_argument("--base-resolution", type=int, help="r scales from this instead of 224 (proxy runs, e.g. 64)")
    p.add_argument("--conv", choices=["dense", "spconv"],
                   help="the 3x3 convolutions of ResNet/VGG models (default: the model's own; spconv_* are SPConv)")
    p.add_argument("--alpha", type=float, help="SPConv's split ratio (implies --conv spconv; the paper's 0.5)")
    p.add_argument("--data", help="dataset root with train/ and val/ (default $RUBIK_DATA_DIR)")
    p.add_argument("--dataset", default="imagenette", choices=["imagenette", "imagenet", "imagenet100", "folder"])
    p.add_argument("--manifest", help="ImageNet-100 manifest JSON")
    p.add_argument("--train-per-class", type=int)
    p.add_argument("--val-per-class", type=int)
    p.add_argument("--pipeline", default="auto", choices=["auto", "tensor", "folder", "gpu_jpeg"],
                   help="gpu_jpeg: nvJPEG batch decode + augmentation on the GPU (full-size ImageNet)")
    p.add_argument("--cache-dir")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--download", action="store_true", help="download Imagenette with torchvision if no data is found")
    p.add_argument("--recipe", default="proxy", help="efficientnet | resnet | proxy | proxy_resnet | smoke")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="recipe field override, e.g. -o lr_per_1024=0.1 -o ema_decay=0.999 (repeatable)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="per process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int)
    p.add_argument("--out", help="output folder (checkpoint.pt, metrics.jsonl)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (needs its checkpoint.pt)")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out (without it, a run there is "
                   "an error)")
    p.add_argument("--compile", nargs="?", const=True, default=False, metavar="MODE",
                   help="torch.compile the model; optional MODE, e.g. reduce-overhead (CUDA graphs)")
    p.add_argument("--quiet", action="store_true")


def _parse_override(recipe: Recipe, item: str):
    key, sep, value = item.partition("=")
    if not sep:
        raise ConfigError(f"-o {item!r}: expected KEY=VALUE")
    fields = {f.name: f for f in dataclasses.fields(Recipe)}
    if key not in fields:
        raise ConfigError(f"-o {item}: unknown recipe field {key!r}; known: {', '.join(fields)}")
    cur = getattr(recipe, key)
    if value.lower() == "none":
        return key, None
    try:
        if isinstance(cur, bool):
            if value.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError("expected true or false")
            return key, value.lower() in ("1", "true", "yes", "on")
        if isinstance(cur, tuple):
            return key, tuple(float(v) for v in value.split(","))
        if isinstance(cur, int):
            return key, int(value)
        if isinstance(cur, float) or cur is None:
            try:
                return key, float(value)
            except ValueError:
                if isinstance(cur, float):
                    raise
                return key, value
    except ValueError as e:
        raise ConfigError(f"-o {item}: {e}") from None
    return key, value


def main(args) -> int:
    recipe = Recipe.named(args.recipe)
    recipe = dataclasses.replace(recipe, **dict(_parse_override(recipe, o) for o in args.override))
    model, twist = args.model, tuple(args.twist) if args.twist else None
    base_resolution = args.base_resolution
    if getattr(args, "conv", None) is not None or getattr(args, "alpha", None) is not None:
        from rubik.models import Arch, get_model_spec
        from rubik.models.spconv import ConvSpec

        try:   # the swapped model is stored as its Arch (which has its twist and base resolution)
            spec_conv = get_model_spec(model).conv
            conv = ConvSpec.from_any(args.conv if args.conv is not None else (spec_conv or "spconv"), args.alpha)
            model = Arch.named(model, twist=twist, base_resolution=base_resolution, conv=conv).to_dict()
        except (ValueError, TypeError) as e:
            raise ConfigError(str(e)) from None
        twist = base_resolution = None
    cfg = TrainConfig(
        model=model, twist=twist, base_resolution=base_resolution,
        data=DataConfig(root=args.data, name=args.dataset, train_per_class=args.train_per_class,
                        val_per_class=args.val_per_class, manifest=args.manifest, pipeline=args.pipeline,
                        cache_dir=args.cache_dir, workers=args.workers, seed=args.seed, download=args.download),
        recipe=recipe, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, device=args.device,
        threads=args.threads, out_dir=args.out, resume=args.resume, overwrite=args.overwrite, compile=args.compile,
        progress=not args.quiet)
    validate(cfg)   # before anything is read: a typo costs nothing
    result = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        skip = ("history", "val_correct", "ema_val_correct")
        print(dumps({k: v for k, v in result.items() if k not in skip}, indent=1))
    if result["status"] == "diverged":
        raise ConfigError(f"training diverged (non-finite loss at epoch {len(result['history'])}); "
                          "lower the learning rate (-o lr_per_1024=...)")
    return 0
