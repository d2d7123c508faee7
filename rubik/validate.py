"""``rubik validate``: top-1 / top-5 of a model on an ImageFolder split, with the model's own eval transform.

The transform is the one the paper's numbers use (timm's default for these models): resize the
shorter side to ``floor(size / 0.875)`` px (bicubic), centre-crop ``size`` (the model's input
resolution), normalise with the ImageNet mean/std.

    # the authors' released weights on your ImageNet val (ROOT/val/<wnid>/*.JPEG)
    rubik validate --model tinynet_a --pretrained --data /data/imagenet
    rubik validate --model ghostnet_100 --weights /path/ghostnet_1x.pth --data /data/imagenet
    # a model we trained (the model and dials are read from the checkpoint); --ema for its EMA weights
    rubik validate --checkpoint runs/b0/checkpoint.pt --ema --data /data/imagenette

Labels are the sorted class folder names of ``ROOT/train`` (as in training) or, without a train
folder, of ``ROOT/<split>``; for ImageNet that is the usual 0..999 order of the wnids.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn
from rubik._progress import tqdm

from rubik.config import TrainConfig, model_from_config
from rubik.data import DataError, FolderDataset, folder_transforms, list_classes, list_split, subsample, \
    worker_errors
from rubik.errors import ConfigError, UserError
from rubik.models import Arch, create_model
from rubik.models.checkpoints import load_checkpoint, read_state_dict
from rubik.rundir import load_torch_file
from rubik.train import check_device, evaluate, resolve_device


def eval_classes(root, split: str = "val") -> list[str]:
    """Class names in label order: ``ROOT/train``'s folders if it exists, else ``ROOT/<split>``'s."""
    root = Path(root).expanduser()
    if not (root / split).is_dir():
        raise DataError(f"data root {str(root)!r} has no {split}/ folder: expected ROOT/{split}/<class>/<images>")
    if (root / "train").is_dir():
        return list_classes(root)
    classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{str(root / split)!r} contains no class folders")
    return classes


#: loader processes by default: 4, or fewer on a machine with fewer CPUs (more processes than cores
#: only contend for them)
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


def eval_loader(root, resolution: int, *, split: str = "val", batch_size: int = 64, workers: int | None = None,
                per_class: int | None = None, seed: int = 0):
    """A DataLoader of ``(images, labels)`` through the eval transform, and the class list
    (``workers`` None: ``DEFAULT_WORKERS``, the CPUs present up to 4)."""
    root = Path(root).expanduser()
    classes = eval_classes(root, split)
    samples = subsample(list_split(root, split, classes, check_extra=True), per_class, seed)
    ds = FolderDataset(root, samples, folder_transforms(int(resolution), train=False))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=DEFAULT_WORKERS if workers is None else workers)
    return loader, classes


def input_resolution(model: nn.Module) -> int:
    """The input side in px ``model`` expects: ``model.resolution`` (every rubik model has it), else the
    ``input_size`` of a timm-style ``pretrained_cfg`` / ``default_cfg``; ValueError naming the fix otherwise
    (guessing 224 would silently mis-score a model trained at another size)."""
    if getattr(model, "resolution", None):
        return int(model.resolution)
    for attr in ("pretrained_cfg", "default_cfg"):
        size = (getattr(model, attr, None) or {}).get("input_size")
        if size:
            return int(size[-1])
    raise ValueError(f"cannot tell the input size of {type(model).__name__}: it has no .resolution and no "
                     "pretrained_cfg/default_cfg input_size; pass resolution=PX")


def validate(model: nn.Module, root, *, split: str = "val", resolution: int | None = None, batch_size: int = 64,
             device="cpu", workers: int | None = None, per_class: int | None = None, progress: bool = True) -> dict:
    """Top-1/top-5 (%) and mean loss of ``model`` on ``ROOT/<split>`` with the eval transform at its resolution."""

    resolution = int(resolution or input_resolution(model))
    loader, classes = eval_loader(root, resolution, split=split, batch_size=batch_size, workers=workers,
                                  per_class=per_class)
    out_features = _num_outputs(model)
    if out_features is not None and out_features != len(classes):
        raise ValueError(f"the model has {out_features} outputs but {root}/{split} has {len(classes)} classes")
    device = torch.device(device)
    model.to(device)

    def batches():
        with worker_errors():   # an unreadable image in a worker: one line naming the file
            for x, y in tqdm(loader, desc=f"validate {getattr(model, 'variant', '')}".rstrip(), disable=not progress):
                yield x.to(device), y.to(device)

    t0 = time.perf_counter()
    m = evaluate(model, batches(), device)
    return {"top1": m["top1"], "top5": m["top5"], "loss": m["loss"], "images": len(loader.dataset),
            "classes": len(classes), "resolution": resolution, "crop_pct": 0.875, "interpolation": "bicubic",
            "split": split, "data": str(root), "eval_s": round(time.perf_counter() - t0, 2)}


def _num_outputs(model: nn.Module) -> int | None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def model_from_checkpoint(path, *, ema: bool = False, name: str | None = None, num_classes: int | None = None):
    """Rebuild a model trained by ``rubik train`` from its ``checkpoint.pt`` (model, dials and base
    resolution from the stored config; a task's model, e.g. a DRNet, through its task); ``ema`` loads the
    EMA weights. A plain state dict (ours or
    timm format) needs ``name``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        ck = load_torch_file(path)
    except UserError:   # objects that would run code: refused in one line, with how to convert a trusted file
        raise
    except Exception as e:
        raise ConfigError(f"cannot read checkpoint {str(path)!r}: {type(e).__name__}: {' '.join(str(e).split())[:200]} "
                          "(not a torch checkpoint, or damaged)") from None
    config = ck.get("config") if isinstance(ck, dict) else None
    if ema:
        if not (isinstance(ck, dict) and isinstance(ck.get("ema"), dict)):
            raise ValueError(f"{path} has no EMA weights (trained with ema=False?)")
        sd = ck["ema"].get("module", ck["ema"])
    else:
        sd = read_state_dict(ck)
    if num_classes is None:
        weights = [v for k, v in sd.items() if k.endswith("weight") and v.ndim == 2]
        num_classes = weights[-1].shape[0] if weights else 1000
    recipe = ck.get("recipe") if isinstance(ck, dict) else None
    if config:
        stored = config.get("model")   # the name a config stored before ``arch`` kept (None: an Arch)
        cfg = TrainConfig.from_dict(config)
        if name is not None and name not in (stored, cfg.arch.base):
            raise ConfigError(f"--model {name} but {path} holds a trained {stored or cfg.arch.base!r} ({cfg.arch}); "
                              "leave out --model (the checkpoint names its model) or give its own")
        model = model_from_config(cfg, num_classes)
        _set_batchnorm(model, recipe)
        if cfg.task:   # e.g. a DRNet: its state dict is its own
            model.load_state_dict(sd)
        else:
            load_checkpoint(model, sd)
        return model
    if name is None:
        raise ValueError(f"{path} is a plain state dict: pass the model name (--model NAME)")
    model = create_model(name, num_classes)
    _set_batchnorm(model, recipe)
    load_checkpoint(model, sd)
    return model


def _set_batchnorm(model: nn.Module, recipe: dict | None) -> None:
    """BatchNorm eps and momentum as the run trained them (``rubik.train`` applies its recipe's, which the
    state dict does not keep: a proxy-trained model rebuilt with PyTorch's eps 1e-5 instead of the recipe's
    1e-3 scores several points lower)."""
    if not recipe:
        return
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if recipe.get("bn_eps") is not None:
                m.eps = recipe["bn_eps"]
            if recipe.get("bn_momentum") is not None:
                m.momentum = recipe["bn_momentum"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="registered model name (optional with a rubik-train --checkpoint)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--pretrained", action="store_true", help="the authors' released ImageNet weights")
    src.add_argument("--weights", metavar="PATH_OR_URL", help="weights file or URL (ours or timm/official layout)")
    src.add_argument("--checkpoint", metavar="PATH", help="a checkpoint.pt written by rubik train (or a state dict)")
    parser.add_argument("--ema", action="store_true", help="with --checkpoint: evaluate the EMA weights")
    parser.add_argument("--data", required=True, help="dataset root with <split>/<class>/<images>")
    parser.add_argument("--split", default="val")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"image-decoding loader processes (default: the CPUs present, at most 4: {DEFAULT_WORKERS})")
    parser.add_argument("--per-class", type=int, default=None, help="evaluate on a seeded subsample per class")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", help="also write the JSON result to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args) -> int:
    check_device(args.device)   # a missing GPU: one line, before the weights or any data are read
    if args.ema and not args.checkpoint:
        raise ConfigError("--ema needs --checkpoint")
    for name in ("per_class", "batch_size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {v}")
    if args.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {args.workers}")
    if args.model and not args.checkpoint:
        try:
            Arch.named(args.model)
        except (ValueError, KeyError) as e:
            raise ConfigError(str(e)) from None
    if args.checkpoint:
        model = model_from_checkpoint(args.checkpoint, ema=args.ema, name=args.model)
        source = args.checkpoint + (" (ema)" if args.ema else "")
    else:
        if not args.model:
            raise ConfigError("--model NAME is needed (with --pretrained, --weights or untrained weights)")
        pretrained = True if args.pretrained else (args.weights or False)
        n_cls = 1000 if pretrained else len(eval_classes(args.data, args.split))
        model = create_model(args.model, n_cls, pretrained=pretrained)   # WeightsError: a UserError, one line
        source = "released" if args.pretrained else (args.weights or "untrained")
    result = {"model": getattr(model, "variant", args.model), "twist": list(model.twist.as_tuple()),
              "weights": source}
    result.update(validate(model, args.data, split=args.split, batch_size=args.batch_size,
                           device=resolve_device(args.device), workers=args.workers, per_class=args.per_class,
                           progress=not args.quiet))
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


__all__ = ["validate", "eval_loader", "eval_classes", "model_from_checkpoint"]
