"""Train one (twisted) model: ``train(TrainConfig) -> dict``, the ``rubik train`` CLI, torchrun-ready.

Read top to bottom: processes and devices, the recipe's settings on a model, evaluation, then the
loop: ``train`` runs a handful of named steps (device -> model -> data -> optimizer, schedule, EMA
-> resume -> epochs of train/eval/checkpoint -> summary) over one ``_Run`` value that holds the
run's objects, and ``train_one_epoch`` is the step loop. What a run *is* lives elsewhere, one idea
per module: the config and its checks (``rubik.config``), the recipes (``rubik.recipes``), what is
trained (``rubik.tasks``), the run directory and its checkpoint (``rubik.runstate``).

``batch_size`` is per process; the learning rate is ``lr_per_1024 * batch_size * world_size / 1024``.
Outputs in ``out_dir``: ``checkpoint.pt`` (every epoch, atomic), ``metrics.jsonl`` (one JSON line per
epoch), ``config.json``, ``result.json`` (``status`` ``done`` or ``diverged``), guarded by ``run.lock``.
Why each recipe is what it is (with the measurements behind it), the devices and the step's design,
and the resume guarantees: ``docs/TRAINING.md``.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torchvision.ops import StochasticDepth

from rubik.config import MAX_PARAMS, TrainConfig, check_device, check_model_size, upgrade_config, validate
from rubik.data import DataConfig, DataError, build_loaders, data_fingerprint, data_difference, dataset_samples, \
    pack_correct
from rubik.errors import ConfigError, Interrupted, RunDirError, UserError
from rubik.models import Arch, get_model_spec
from rubik.models.spconv import ConvSpec
from rubik.optim import LRSchedule, ModelEMA, build_optimizer, param_groups
from rubik.recipes import RECIPES, Recipe, parse_override, resolve_recipe
from rubik.rundir import append_line, atomic_torch_save, atomic_write, atomic_write_json, dumps
from rubik.runstate import (RUN_FILES, kept_after_interrupt, load_run_checkpoint, load_training_state, open_run_dir,
                            rng_state, run_signature, seed_everything, set_rng_state, training_state)
from rubik.tasks import TASKS, Task, make_model, model_resolution, resolve_task

# re-exported: the names this module held before the config, recipes, tasks and run state had modules
__all__ = ["train", "TrainConfig", "Recipe", "RECIPES", "Task", "TASKS", "validate", "evaluate", "resolve_recipe",
           "resolve_task", "resolve_device", "check_device", "check_model_size", "MAX_PARAMS", "make_model",
           "model_resolution", "apply_recipe_to_model", "run_signature", "open_run_dir", "training_state",
           "load_training_state", "load_run_checkpoint", "RUN_FILES", "seed_everything", "rng_state",
           "set_rng_state", "upgrade_config", "train_one_epoch", "save_checkpoint", "add_arguments", "main"]


# ----------------------------------------------------------------------------- processes and devices

def setup_distributed():
    """``(rank, world_size, local_rank, initialised_here)`` from torchrun's environment."""
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
    sds = [m for m in model.modules() if isinstance(m, StochasticDepth)]
    for i, m in enumerate(sds):   # torchvision's rule: p grows linearly with the block index
        m.p = r.drop_connect * i / len(sds)


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
    from rubik._progress import tqdm

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
    """Train ``cfg.arch`` (or the given ``model``, for tests) with ``cfg.recipe``; see docs/TRAINING.md.

    Returns ``{"status", "top1", "top5", "ema_top1", "ema_top5", "best_top1", "epochs", "train_time_s",
    "images_per_s", "params", "flops", "resolution", "history", "first_step_s", "val_correct"}``
    (accuracies in %; the ema_* are None when the recipe has no EMA; ``first_step_s`` is the wall time
    of the run's first step, which holds ``torch.compile``'s compilation when ``compile`` is on).
    ``val_correct`` (and ``ema_val_correct`` with EMA) is the last evaluation's per-image top-1 hits,
    ``rubik.data.pack_correct``'s dict. ``status`` is ``"done"``, or ``"diverged"`` when the training
    loss became NaN / infinite: the run stopped there and its accuracies are None.

    Bad settings raise ``ConfigError`` and an unusable ``out_dir`` ``RunDirError`` before any data is
    read (see ``rubik.config.validate`` and ``rubik.runstate.open_run_dir``).
    """
    # --- setup: settings, processes, run directory
    recipe = validate(cfg, model_given=model is not None)
    rank, world, local_rank, own_pg = setup_distributed()
    out = Path(cfg.out_dir) if cfg.out_dir else None
    made_out = rank == 0 and out is not None and not out.exists()   # removed again if the setup fails
    lock, ck = None, None
    try:
        error = None
        try:
            if rank == 0 and out is not None:
                lock, ck = open_run_dir(cfg, out)
        except UserError as e:
            error = e
        _agree_on_setup(error, world)   # rank 0 refused the folder: every rank stops here, together
        if rank != 0 and out is not None and cfg.resume and (out / "checkpoint.pt").is_file():
            ck = load_run_checkpoint(out / "checkpoint.pt", cfg)
        run = _Run(cfg, recipe, rank, world, local_rank, out, ck)
        _setup_device(run)
        error = None
        try:
            _build_model(run, model)
        except UserError as e:
            error = e
        _agree_on_setup(error, world)   # the data check, before the first collective (DDP's broadcast)
        _build_data(run)
        _build_optimization(run)
        _resume(run)
        for epoch in range(run.start_epoch, recipe.epochs):
            if not _run_epoch(run, epoch):
                break
        return _summary(run)
    finally:
        if lock is not None:
            lock.release()
        if made_out and out.is_dir() and not any(out.iterdir()):   # a failed data check leaves no empty --out
            out.rmdir()
        if own_pg:
            torch.distributed.destroy_process_group()


def _agree_on_setup(error: UserError | None, world: int) -> None:
    """Raise ``error`` (this rank's setup refusal) on every rank of a multi-process run: without it,
    a refusal on rank 0 (a finished run in ``--out``) leaves the other ranks waiting in their first
    collective until torchrun kills them with a wall of tracebacks. The ranks exchange their errors
    (one small ``all_gather``, before anything else uses the process group); each then raises the
    first failing rank's error, marked with ``reported_by`` so that ``rubik.cli`` prints it once."""
    if world > 1:
        errors = [None] * world
        dist.all_gather_object(errors, None if error is None else str(error))
        first = next((k for k, e in enumerate(errors) if e is not None), None)
        if first is None:
            return
        if error is None:
            error = RunDirError(errors[first])
        error.reported_by = first
    if error is not None:
        raise error


@dataclass
class _Run:
    """Everything one training holds, filled step by step by ``train``'s helpers below."""
    cfg: TrainConfig
    recipe: Recipe
    rank: int
    world: int
    local_rank: int
    out: Path | None
    ck: dict | None                  # the checkpoint to resume from (read before any data)
    device: Any = None
    amp_dtype: Any = None
    channels_last: bool = True
    task: Task | None = None
    model: nn.Module | None = None
    train_model: nn.Module | None = None   # what the steps call: compiled / DDP-wrapped ``model``
    resolution: int = 0
    params: int = 0
    flops: int | None = None
    data_fp: dict | None = None
    train_loader: Any = None
    val_loader: Any = None
    steps_per_epoch: int = 0
    optimizer: Any = None
    schedule: Any = None
    ema: Any = None
    criterion: Any = None
    start_epoch: int = 0
    history: list = field(default_factory=list)
    best_top1: float = 0.0
    train_time: float = 0.0
    per_image: dict = field(default_factory=dict)
    first_step_s: float | None = None
    status: str = "done"

    @property
    def master(self) -> bool:
        return self.rank == 0

    @property
    def show(self) -> bool:
        return bool(self.cfg.progress) and self.master

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out / "checkpoint.pt" if self.out else None


def _setup_device(run: _Run) -> None:
    cfg = run.cfg
    run.device = resolve_device(cfg.device, run.local_rank)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run.amp_dtype = torch.bfloat16 if run.device.type == "cuda" else None
    # faster on CPU too (benchmarks/channels_last.py); an earlier "2x slower on CPU" could not be reproduced
    run.channels_last = cfg.channels_last is not False
    seed_everything(cfg.seed)


def _build_model(run: _Run, model: nn.Module | None) -> None:
    """The model (built before the loaders: its resolution sets the image size), the recipe's BN,
    dropout and head settings on it, its size; checks the data's classes and, on resume, its files."""
    cfg = run.cfg
    root, classes, _ = dataset_samples(cfg.data, "val")
    if len(classes) < 2:
        raise DataError(f"{root}: {len(classes)} class folder(s) ({', '.join(classes)}); classification needs "
                        "at least 2 (every model would score 100 %)")
    run.data_fp = data_fingerprint(cfg.data) if run.out is not None else None
    if run.ck is not None and isinstance(run.ck.get("data"), dict):   # checkpoints older than this check carry none
        why = data_difference(run.ck["data"], run.data_fp or data_fingerprint(cfg.data))
        if why:
            raise RunDirError(f"--resume: {run.out} was trained on other data than {root} holds now: {why}; resume "
                              "with the data it started on, or --overwrite to start over")
    run.task = resolve_task(cfg.task)
    if model is None:
        model = run.task.build_model(cfg, len(classes))
    run.resolution = model_resolution(model, cfg)
    apply_recipe_to_model(model, run.recipe)
    run.task.prepare(model)
    run.params = sum(p.numel() for p in model.parameters())
    try:
        run.flops = run.task.flops(model, run.resolution)
    except Exception:  # FLOPs are informative here; a model the counter cannot handle still trains
        pass
    model.to(run.device, memory_format=torch.channels_last if run.channels_last else torch.contiguous_format)
    torch.manual_seed(cfg.seed * 1000 + 1 + run.rank)   # dropout / drop-connect stream, per rank
    run.model = model


def _build_data(run: _Run) -> None:
    cfg, r = run.cfg, run.recipe
    run.train_loader, run.val_loader, _ = build_loaders(
        cfg.data, run.resolution, r.batch_size, device=run.device, distributed=run.world > 1,
        rand_augment=r.rand_augment, color_jitter=r.color_jitter, scale=tuple(r.crop_scale), progress=run.show,
        channels_last=run.channels_last, seed=cfg.seed)
    run.steps_per_epoch = len(run.train_loader)
    if run.steps_per_epoch == 0:
        raise ConfigError(f"batch size {r.batch_size} is larger than the training set "
                          f"({len(run.train_loader.dataset)} images)")


def _build_optimization(run: _Run) -> None:
    """Optimizer, learning-rate schedule, EMA and loss; lr = lr_per_1024 x global batch / 1024."""
    r, model = run.recipe, run.model
    lr = r.lr_per_1024 * r.batch_size * run.world / 1024
    run.optimizer = build_optimizer(r.optimizer, param_groups(model, r.weight_decay), lr=lr, momentum=r.momentum,
                                    alpha=r.rmsprop_decay, eps=r.rmsprop_eps)
    run.schedule = LRSchedule(run.optimizer, lr=lr, steps_per_epoch=run.steps_per_epoch, epochs=r.epochs,
                              kind=r.schedule, warmup_epochs=r.warmup_epochs, warmup_lr=r.warmup_lr,
                              decay_rate=r.decay_rate, decay_epochs=r.decay_epochs, min_lr=r.min_lr)
    if r.ema:
        total_steps = run.steps_per_epoch * r.epochs
        decay = r.ema_decay if r.ema_decay is not None else 1 - 1 / max(1.0, r.ema_horizon * total_steps)
        run.ema = ModelEMA(model, decay, warmup=r.ema_warmup)
    run.criterion = run.task.criterion(r, model, run.device)


def _resume(run: _Run) -> None:
    """Load the checkpoint (read and checked by open_run_dir before any data was loaded), write the
    run's config and metrics so far, then wrap the model for speed / several processes (after
    loading: state dicts keep plain names)."""
    if run.ck is not None:
        run.start_epoch, run.history, run.best_top1, run.train_time = load_training_state(
            run.ck, run.model, run.ema, run.optimizer, run.schedule, rank=run.rank, path=run.checkpoint_path)
        if run.show:
            print(f"[rubik.train] resumed from {run.checkpoint_path} at epoch {run.start_epoch}/{run.recipe.epochs}")
    if run.master and run.out is not None:
        atomic_write_json(run.out / "config.json", run.cfg.to_dict())
        # metrics.jsonl always mirrors the checkpoint's history (a run killed mid-epoch leaves no stray line)
        atomic_write(run.out / "metrics.jsonl", lambda f: f.write("".join(dumps(h) + "\n" for h in run.history)),
                     binary=False)
    run.train_model = run.model
    if run.world > 1:
        run.train_model = DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    if run.cfg.compile:
        mode = run.cfg.compile if isinstance(run.cfg.compile, str) and run.cfg.compile != "default" else None
        run.train_model = torch.compile(run.train_model, mode=mode)


def _run_epoch(run: _Run, epoch: int) -> bool:
    """Train one epoch, evaluate the raw and EMA weights, checkpoint; False when the run must stop
    (a non-finite loss)."""
    r, epochs = run.recipe, run.recipe.epochs
    run.train_loader.set_epoch(epoch)
    run.task.start_epoch(run.model, epoch, epochs, run.steps_per_epoch)
    stats = train_one_epoch(run.train_model, run.model, run.train_loader, run.criterion, run.optimizer,
                            run.schedule, run.ema, device=run.device, amp_dtype=run.amp_dtype,
                            grad_clip=r.grad_clip, world=run.world, desc=f"epoch {epoch + 1}/{epochs}",
                            show=run.show, time_first_step=run.first_step_s is None)
    if run.first_step_s is None:   # the run's first step: torch.compile's compilation when it is on
        run.first_step_s = stats["first_step_s"]
    train_loss, epoch_time = stats["loss"], stats["time_s"]
    run.train_time += epoch_time
    rec = {"epoch": epoch + 1, "train_loss": train_loss, "lr": run.schedule.get_last_lr()[0],
           "epoch_time_s": epoch_time,
           "images_per_s": run.steps_per_epoch * r.batch_size * run.world / epoch_time,
           **run.task.end_epoch(run.criterion)}
    if not math.isfinite(train_loss):   # NaN / inf: checked where the loop syncs anyway (the epoch's loss)
        run.history.append(rec)
        run.status = _stop_diverged(rec, run.out if run.master else None, run.show)
        return False
    if (epoch + 1) % r.eval_every == 0 or epoch + 1 == epochs:
        _evaluate_epoch(run, rec)
    run.history.append(rec)
    if run.show:
        acc = f" top1 {rec['top1']:.2f} top5 {rec['top5']:.2f}" if "top1" in rec else ""
        acc += f" | ema top1 {rec['ema_top1']:.2f}" if "ema_top1" in rec else ""
        print(f"[rubik.train] epoch {epoch + 1}/{epochs} loss {train_loss:.4f}{acc}"
              f" | {rec['images_per_s']:.0f} img/s", flush=True)
    _checkpoint(run, epoch, rec)
    return True


def _evaluate_epoch(run: _Run, rec: dict) -> None:
    m = evaluate(run.model, run.val_loader, run.device, run.amp_dtype, run.world)
    rec.update(top1=m["top1"], top5=m["top5"], val_loss=m["loss"])
    run.per_image = {"val_correct": pack_correct(m["correct"], m["labels"])}
    if run.ema is not None:
        m = evaluate(run.ema.module, run.val_loader, run.device, run.amp_dtype, run.world)
        rec.update(ema_top1=m["top1"], ema_top5=m["top5"], ema_val_loss=m["loss"])
        run.per_image["ema_val_correct"] = pack_correct(m["correct"], m["labels"])
    run.best_top1 = max(run.best_top1, rec["top1"], rec.get("ema_top1", 0.0))


def _checkpoint(run: _Run, epoch: int, rec: dict) -> None:
    """The checkpoint (atomic), then the metrics line; every rank's RNG state goes in."""
    rngs = [rng_state()]
    if run.world > 1 and run.out is not None:
        rngs = [None] * run.world
        torch.distributed.all_gather_object(rngs, rng_state())
    if not (run.master and run.out is not None):
        return
    try:
        save_checkpoint(run.checkpoint_path, training_state(
            run.model, run.ema, run.optimizer, run.schedule, rngs=rngs, epoch=epoch + 1, history=run.history,
            best_top1=run.best_top1, train_time=run.train_time, cfg=run.cfg, recipe=run.recipe, data=run.data_fp))
    except OSError as e:
        kept = f"the checkpoint of epoch {epoch} is kept; fix it, then rerun with --resume" if epoch else \
            "no epoch was saved"
        raise RunDirError(f"cannot write {e.filename or run.checkpoint_path}: {e.strerror}; {kept}") from e
    append_line(run.out / "metrics.jsonl", rec)


def _summary(run: _Run) -> dict:
    """The run's result (per-image outcomes of the last evaluation in this process; none after a
    resume that had nothing left to train), written to result.json."""
    history = run.history
    last = next((h for h in reversed(history) if "top1" in h), {}) if run.status == "done" else {}
    result = {
        "status": run.status,   # "diverged": stopped on a non-finite loss; no accuracies (the weights are lost)
        "top1": last.get("top1"), "top5": last.get("top5"),
        "ema_top1": last.get("ema_top1"), "ema_top5": last.get("ema_top5"),
        "best_top1": run.best_top1, "epochs": run.recipe.epochs, "train_time_s": run.train_time,
        "images_per_s": (sum(h["epoch_time_s"] * h["images_per_s"] for h in history) / run.train_time)
        if run.train_time else None,
        "params": run.params, "flops": run.flops, "resolution": run.resolution, "history": history,
        "first_step_s": run.first_step_s, **run.per_image,
    }
    if run.master and run.out is not None:
        atomic_write_json(run.out / "result.json", {k: v for k, v in result.items() if k != "history"})
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
    p.add_argument("--resume", nargs="?", const=True, default=False, choices=["auto"], metavar="auto",
                   help="continue the run in --out (needs its checkpoint.pt); --resume auto: continue it if "
                   "there is one, else start (launch scripts: the same line runs first and after a kill)")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out (without it, a run there is "
                   "an error)")
    p.add_argument("--compile", nargs="?", const=True, default=False, metavar="MODE",
                   help="torch.compile the model; optional MODE, e.g. reduce-overhead (CUDA graphs)")
    p.add_argument("--quiet", action="store_true")


def _arch_from_args(args) -> Arch:
    """``--model`` with ``--twist``, ``--base-resolution`` and (ResNet/VGG) ``--conv`` / ``--alpha``."""
    twist = tuple(args.twist) if args.twist else None
    try:
        conv = None
        if getattr(args, "conv", None) is not None or getattr(args, "alpha", None) is not None:
            spec_conv = get_model_spec(args.model).conv
            conv = ConvSpec.from_any(args.conv if args.conv is not None else (spec_conv or "spconv"), args.alpha)
        return Arch.named(args.model, twist=twist, base_resolution=args.base_resolution, conv=conv)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from None


def main(args) -> int:
    try:
        cfg = _config_from_args(args)
        validate(cfg)   # before anything is read: a typo costs nothing
    except UserError as e:
        e.reported_by = 0   # the same on every rank under torchrun: printed once
        raise
    try:
        result = train(cfg)
    except KeyboardInterrupt:
        raise Interrupted(kept_after_interrupt(cfg)) from None
    if int(os.environ.get("RANK", "0")) == 0:
        skip = ("history", "val_correct", "ema_val_correct")
        print(dumps({k: v for k, v in result.items() if k not in skip}, indent=1))
    if result["status"] == "diverged":
        raise ConfigError(f"training diverged (non-finite loss at epoch {len(result['history'])}); "
                          "lower the learning rate (-o lr_per_1024=...)")
    return 0


def _config_from_args(args) -> TrainConfig:
    recipe = Recipe.named(args.recipe)
    changes = dict(parse_override(recipe, o) for o in args.override)
    changes.update({k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v is not None})
    cfg = TrainConfig(
        arch=_arch_from_args(args),
        data=DataConfig(root=args.data, name=args.dataset, train_per_class=args.train_per_class,
                        val_per_class=args.val_per_class, manifest=args.manifest, pipeline=args.pipeline,
                        cache_dir=args.cache_dir, workers=args.workers, seed=args.seed, download=args.download),
        recipe=dataclasses.replace(recipe, **changes), seed=args.seed, device=args.device,
        threads=args.threads, out_dir=args.out, resume=args.resume, overwrite=args.overwrite, compile=args.compile,
        progress=not args.quiet)
    return cfg

