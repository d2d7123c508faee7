"""The paper's models and numbers, and ours beside them: display names, the model registry as a
table, ``data/paper/`` tables (each row with its source in the paper), the measured results under
``data/results/``, and the ImageNet-1k runs of notebook 06 (launch commands, checkpoint evaluation).
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from rubik.models import Arch, create_model, get_model_spec, list_models

REPO_ROOT = Path(__file__).resolve().parents[1]
PAPER_DIR = REPO_ROOT / "data" / "paper"
RESULTS_DIR = REPO_ROOT / "data" / "results"

PRETTY = {"efficientnet_b0": "EfficientNet-B0", "base": "EfficientNet-B0 (base)",
          **{f"tinynet_{k}": f"TinyNet-{k.upper()}" for k in "abcde"},
          **{f"giant_m{k}": f"B^-{k}" for k in range(1, 5)},
          **{f"efficientnet_b0_giant_m{k}": f"EfficientNet-B^-{k}" for k in range(1, 5)},
          "ghostnet_a": "GhostNet-A", "ghostnet_a_hswish": "GhostNet-A + HSwish", "ghostnet_050": "GhostNet-0.5x",
          "ghostnet_100": "GhostNet-1.0x", "ghostnet_130": "GhostNet-1.3x", "ghostnet_150": "GhostNet-1.5x",
          "resnet50": "ResNet-50"}


TINYNETS = tuple(f"tinynet_{k}" for k in "abcde")


def pretty(name) -> str:
    return PRETTY.get(str(name), str(name))


def label_trials(df):
    """Adds a display ``name`` (``B^-2``, ``EfficientNet-B0 (base)``, ``r007``)."""
    df = df.copy()
    df["name"] = [pretty(i) for i in df["id"]]
    return df


def paper_table(name: str) -> pd.DataFrame:
    """``data/paper/<name>.csv`` as a DataFrame."""
    p = PAPER_DIR / (name if name.endswith(".csv") else f"{name}.csv")
    if not p.exists():
        raise FileNotFoundError(f"{p} not found (have: {', '.join(x.name for x in PAPER_DIR.glob('*.csv'))})")
    return pd.read_csv(p)


def measured_results(results_dir: str | os.PathLike | None = None,
                     dataset: str | None = None) -> pd.DataFrame:
    """Every CSV under ``results_dir`` (default ``data/results/``) concatenated, with a
    ``file`` column; an empty frame if there are none. With ``dataset``, only the rows whose
    ``dataset`` column equals it (tables without that column, such as a study's sweep tables,
    say nothing about the dataset and are left out)."""
    d = Path(results_dir) if results_dir else RESULTS_DIR
    frames = []
    for p in sorted(d.glob("**/*.csv")) if d.is_dir() else []:
        try:
            frame = pd.read_csv(p)
        except Exception:  # a malformed file is skipped, not fatal
            continue
        if dataset is not None:
            if "dataset" not in frame:
                continue
            frame = frame[frame["dataset"].astype(str) == dataset]
        if len(frame):
            frames.append(frame.assign(file=str(p.relative_to(d))))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def registry_table(names=None, *, base_resolution=None, num_classes: int = 1000):
    """Registered models with their dials, our analytic params/FLOPs and the paper's numbers."""

    rows = []
    for name in (names or list_models()):
        spec = get_model_spec(name)
        arch, t = Arch.from_spec(spec, base_resolution=base_resolution), spec.twist
        f = arch.flops(num_classes)
        f0 = arch.replace(twist=(1.0, 1.0, 1.0)).flops(num_classes)
        paper = spec.paper or {}
        rows.append(dict(name=name, model=pretty(name), base=spec.base, r=t.resolution, d=t.depth, w=t.width,
                         resolution=arch.input_size, params=arch.params(num_classes), flops=f, flops_ratio=f / f0,
                         paper_params_m=paper.get("params_m"), paper_flops_m=paper.get("flops_m"),
                         paper_top1=paper.get("top1")))
    df = pd.DataFrame(rows)
    for c in ("paper_params_m", "paper_flops_m", "paper_top1"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def paper_comparison():
    """The main comparison (TinyNet-A..E, EfficientNet-B0, B^-4 and the baselines of
    appendix Table 1) as one table: ``name, family, params_m, flops_m, top1, source``."""
    models = paper_table("models")
    fam = {"efficientnet_b0": "EfficientNet", "efficientnet_b1": "EfficientNet",
           **{t: "TinyNet (tiny formula)" for t in TINYNETS},
           "efficientnet_b0_giant_m4": "EfficientNet, inversed giant formula"}
    m = models[models["name"].isin(fam)].copy()
    m["family"] = m["name"].map(fam)
    m["model"] = m["name"].map(pretty).where(m["name"] != "efficientnet_b1", "EfficientNet-B1")
    extra = paper_table("tinynet_extra")
    t1 = paper_table("ghostnet_table1")
    base = t1[t1["family"].isin(["MobileNetV3", "GhostNet (width)"])]
    cols = ["model", "family", "params_m", "flops_m", "top1", "source"]
    return pd.concat([m[cols], extra[cols], base[cols]], ignore_index=True)


def launch_commands(models, *, data="/path/to/imagenet", nproc_per_node: int = 8, out_root="runs/imagenet",
                    extra: str = ""):
    """``torchrun`` commands that train ``models`` on ImageNet-1k with the paper's recipes.

    Each command has ``--resume auto``: it starts its run, or continues it after a kill, so one
    script (``launch_script``) serves the first run and every rerun. ``extra`` is appended to every
    command (e.g. ``--workers 12``; a repeated option's last value wins)."""

    rows = []
    for name in models:
        spec = get_model_spec(name)
        recipe = "resnet" if spec.base == "resnet50" else "efficientnet"
        # the paper: 128 images per GPU x 8 GPUs for EfficientNet-like models; ResNets batch 1024 total
        bs = 128 if recipe == "efficientnet" else max(1, 1024 // nproc_per_node)
        cmd = (f"torchrun --standalone --nproc_per_node={nproc_per_node} -m rubik train --model {name} "
               f"--recipe {recipe} --dataset imagenet --data {data} --batch-size {bs} "
               f"--out {out_root}/{name} --resume auto" + (f" {extra}" if extra else ""))
        rows.append(dict(model=name, name=pretty(name), base=spec.base, recipe=recipe,
                         epochs=450 if recipe == "efficientnet" else 90, batch_per_gpu=bs, command=cmd))
    return pd.DataFrame(rows)


def launch_script(commands) -> str:
    """A ``sh`` script running ``commands`` (``launch_commands``' frame, or a list of lines) in order,
    stopping at the first failure; rerun it after a kill: finished runs are skipped (each prints its
    result again) and a killed one continues from its last epoch."""
    lines = list(commands["command"] if hasattr(commands, "columns") else commands)
    return ("#!/bin/sh\n# ImageNet-1k training with the paper's recipes. Rerun this script after a kill:\n"
            "# --resume auto continues each run from its last epoch (finished runs only print their result)\n"
            "set -e\n" + "\n".join(lines) + "\n")


def evaluate_checkpoint(name, checkpoint, *, data_dir, dataset="imagenet", val_per_class=None, batch_size=64,
                        device="auto", workers=None):
    """Top-1/top-5 of a registered model on the validation set of ``data_dir`` (``rubik.validate``).

    ``checkpoint``: a state-dict path or URL (ours or timm/official format), ``"released"`` for the
    authors' released weights, or ``"random"`` for untrained weights (a plumbing check: accuracy at
    chance). ``dataset`` is only recorded: the val split is read as an ImageFolder."""
    # torch (rubik.train, rubik.validate, rubik.data): the tables above need none
    from rubik.data import count_classes
    from rubik.train import resolve_device
    from rubik.validate import validate

    n_cls = count_classes(data_dir)
    ckpt = None if str(checkpoint).lower() in ("random", "none") else str(checkpoint)
    pretrained = True if ckpt == "released" else (ckpt or False)
    if ckpt not in (None, "released") and "://" not in ckpt and not Path(ckpt).expanduser().is_file():
        raise FileNotFoundError(f"checkpoint for {name}: {ckpt} not found")
    if ckpt and n_cls != 1000:
        raise ValueError(f"{name}: a 1000-class checkpoint needs the full ImageNet val set "
                         f"({data_dir} has {n_cls} classes)")
    model = create_model(name, num_classes=1000 if ckpt else n_cls, pretrained=pretrained)
    m = validate(model, data_dir, per_class=val_per_class, batch_size=batch_size, device=resolve_device(device),
                 workers=workers)
    return {"model": name, "name": pretty(name), "checkpoint": str(checkpoint), "resolution": model.resolution,
            "top1": m["top1"], "top5": m["top5"], "eval_s": m["eval_s"], "images": m["images"]}


def imagenet_overlay(measured):
    """Measured ImageNet results (``measured_results(..., dataset="imagenet")`` rows, columns ``model``
    and ``name``) with our FLOPs count of each model (``flops_m``), shaped as
    ``rubik.plots.plot_accuracy_vs_flops``'s ``overlay``; None when there is none."""
    if measured is None or not len(measured):
        return None
    reg = registry_table()
    overlay = measured.merge(reg[["name", "flops"]].rename(columns={"name": "model", "flops": "flops_ours"}),
                             on="model", how="left")
    overlay["flops_m"] = overlay["flops_ours"] / 1e6
    return overlay.rename(columns={"model": "id"}).rename(columns={"name": "model"})
