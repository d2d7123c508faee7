"""Training throughput on a GPU: images/s of the full training step, by input pipeline and by mode.

The step is ``rubik.train``'s: forward under bf16 autocast (CUDA), label-smoothed cross-entropy,
backward, the recipe's optimizer (TF-RMSProp for ``efficientnet``), lr schedule, EMA update, on a
channels_last model. For each model (B0 at 224 px, TinyNet-E at 106 px, GhostNet-A at 240 px;
1,000 classes) it measures

  synthetic   the same random batch on the device every step (the limit of the step itself)
  tensor      ``pipeline="tensor"``: uint8 cache on the device, batched crop/flip/jitter there
  gpu_jpeg    ``pipeline="gpu_jpeg"``: file bytes from DataLoader workers, nvJPEG batch decode
  folder      ``pipeline="folder"``: PIL decode + torchvision transforms in DataLoader workers
  compiled    synthetic input, ``torch.compile(model)``; its compile time is reported apart
  timm        synthetic input, timm's model of the same name (a sanity row for our model code)

The JPEG rows read a set of synthetic ~500x375 JPEGs (smooth random colour fields plus noise, so they
compress like photos) written into a temporary folder at the start; the tensor rows cache that same
set. Every row: ``--warmup`` steps, then ``--repeats`` timed runs of ``--steps`` steps (synchronised
wall clock, loader included); the median run is reported. Rows run in order of importance -- every kind
for the first model (``--models``, TinyNet-E by default) first, so a short budget still gives each
pipeline's ratio to the synthetic limit, then the other models -- and are skipped once ``--budget-s`` is
spent; each row prints its time (model build included) and the elapsed total; the JSON is rewritten after
every row.

    python benchmarks/gpu_throughput.py --out results/throughput.json          # on a GPU node
    python benchmarks/gpu_throughput.py --quick --device cpu                    # tiny, for CI
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing

# (our registered model, timm's model of the same architecture or None)
MODELS = {
    "tinynet_e": "tinynet_e",
    "efficientnet_b0": "efficientnet_b0",
    "ghostnet_a": None,          # timm has GhostNet 1.0x at 224 px, not the TinyNet paper's GhostNet-A
}


# ----------------------------------------------------------------------------- synthetic JPEG set

def _write_jpeg(args):
    import numpy as np
    from PIL import Image

    path, w, h, seed = args
    rng = np.random.default_rng(seed)
    # a smooth random colour field (bilinear upsampling of a coarse grid) plus mild noise: photo-like size
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    im = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR), dtype=np.int16)
    im = np.clip(im + rng.normal(0, 12, im.shape), 0, 255).astype(np.uint8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(im).save(path, quality=90)


def make_jpeg_set(root: Path, n_train: int, n_val: int, size=(500, 375), classes: int = 10, workers: int = 8):
    """An ImageFolder of synthetic JPEGs (landscape and portrait, like ImageNet's 500x375 / 375x500)."""
    from concurrent.futures import ProcessPoolExecutor

    tasks = []
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            w, h = size if i % 4 else size[::-1]
            tasks.append((str(root / split / f"c{i % classes:02d}" / f"{split}_{i:06d}.JPEG"), w, h, i))
    if workers <= 1:
        for t in tasks:
            _write_jpeg(t)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_jpeg, tasks, chunksize=16))
    return root


# ----------------------------------------------------------------------------- the training step

def make_step(model, recipe, device, *, steps_per_epoch=1000, compile_model=False, compile_mode=None, bf16=True):
    """One training step of ``rubik.train`` (autocast, loss, backward, optimizer, schedule, EMA); ``bf16=False``
    turns autocast off on CUDA too."""
    from torch import nn

    from rubik.optim import LRSchedule, ModelEMA, build_optimizer, param_groups

    r = recipe
    amp = torch.bfloat16 if device.type == "cuda" and bf16 else None
    lr = r.lr_per_1024 * 256 / 1024
    opt = build_optimizer(r.optimizer, param_groups(model, r.weight_decay), lr=lr, momentum=r.momentum,
                          alpha=r.rmsprop_decay, eps=r.rmsprop_eps)
    sched = LRSchedule(opt, lr=lr, steps_per_epoch=steps_per_epoch, epochs=r.epochs, kind=r.schedule,
                       warmup_epochs=r.warmup_epochs, warmup_lr=r.warmup_lr, decay_rate=r.decay_rate,
                       decay_epochs=r.decay_epochs, min_lr=r.min_lr)
    ema = ModelEMA(model, r.ema_decay or 0.9999, warmup=r.ema_warmup) if r.ema else None
    criterion = nn.CrossEntropyLoss(label_smoothing=r.label_smoothing)
    fwd = torch.compile(model, mode=compile_mode) if compile_model else model
    model.train()

    def step(x, y):
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = criterion(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update(model)
        return loss

    return step


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(step, batches, device, *, warmup, steps, repeats) -> dict:
    """Median images/s over ``repeats`` runs of ``steps`` steps after ``warmup`` steps; first-step time too."""
    it = iter(batches)
    t0 = time.perf_counter()
    x, y = next(it)
    step(x, y)
    _sync(device)
    first_s = time.perf_counter() - t0
    for _ in range(max(0, warmup - 1)):
        x, y = next(it)
        step(x, y)
    _sync(device)
    rates = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        for _ in range(steps):
            x, y = next(it)
            step(x, y)
            n += len(y)
        _sync(device)
        rates.append(n / (time.perf_counter() - t0))
    return {"images_per_s": statistics.median(rates), "runs": rates, "first_step_s": first_s}


def synthetic_batches(batch, size, device, channels_last, num_classes=1000):
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch,), device=device)
    while True:
        yield x, y


def loader_batches(loader):
    """Endless batches from a rubik loader, epoch after epoch."""
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


# ----------------------------------------------------------------------------- rows

def build_ours(name, device, channels_last, recipe):
    from rubik.models import create_model
    from rubik.train import apply_recipe_to_model

    torch.manual_seed(0)
    m = create_model(name, 1000)
    apply_recipe_to_model(m, recipe)
    return m.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format), m.resolution


def build_timm(name, device, channels_last, recipe):
    import timm

    from rubik.train import apply_recipe_to_model

    torch.manual_seed(0)
    m = timm.create_model(name, pretrained=False, num_classes=1000)
    apply_recipe_to_model(m, recipe)
    return m.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def run_row(row, args, device, channels_last, recipe, jpeg_root):
    from rubik.data import DataConfig, build_loaders

    model_name, kind = row["model"], row["kind"]
    res = None
    if kind == "timm":
        model = build_timm(row["timm"], device, channels_last, recipe)
        _, res = build_ours(model_name, "cpu", False, recipe)
    else:
        model, res = build_ours(model_name, device, channels_last, recipe)
    if args.resolution:
        res = args.resolution
    row["resolution"] = res
    step = make_step(model, recipe, device, compile_model=kind == "compiled", compile_mode=args.compile_mode)
    if kind in ("synthetic", "compiled", "timm"):
        batches = synthetic_batches(args.batch_size, res, device, channels_last)
        loader = None
    else:
        data = DataConfig(root=str(jpeg_root), name="folder", pipeline=kind, workers=args.workers,
                          cache_dir=str(jpeg_root.parent / "cache"))
        loader, _, _ = build_loaders(data, res, args.batch_size, device=device, color_jitter=recipe.color_jitter,
                                     scale=tuple(recipe.crop_scale), progress=False, channels_last=channels_last)
        row["pipeline_used"] = getattr(loader, "pipeline", kind)
        batches = loader_batches(loader)
    t0 = time.perf_counter()
    out = measure(step, batches, device, warmup=args.warmup, steps=args.steps, repeats=args.repeats)
    row.update(out, status="ok", measure_s=round(time.perf_counter() - t0, 2))
    if kind == "compiled":
        row["compile_s"] = out["first_step_s"]   # first call = trace + compile (+ one step)
    del model, step, batches, loader
    if device.type == "cuda":
        torch.cuda.empty_cache()


#: the first model's rows, in this order, come before every other row: a short budget still measures each
#: input pipeline against the synthetic limit on one model (the ratios the targets are about)
LEAD_KINDS = ["synthetic", "tensor", "gpu_jpeg", "folder", "compiled", "timm"]
#: then the other models, kind by kind in order of importance
KIND_ORDER = ["synthetic", "timm", "tensor", "gpu_jpeg", "folder", "compiled"]


def plan_rows(models, kinds, compile_models=None):
    """The rows in the order they run: every kind for ``models[0]`` (TinyNet-E by default) first, then
    the other models kind by kind."""
    def wanted(m, kind):
        return (kind in kinds and not (kind == "timm" and not MODELS.get(m))
                and not (kind == "compiled" and compile_models is not None and m not in compile_models))

    order = [(models[0], k) for k in LEAD_KINDS] if models else []
    order += [(m, k) for k in KIND_ORDER for m in models[1:]]
    return [{"model": m, "kind": k, "timm": MODELS.get(m) if k == "timm" else None}
            for m, k in order if wanted(m, k)]


def summarise(rows):
    by = {(r["model"], r["kind"]): r.get("images_per_s") for r in rows if r.get("status") == "ok"}
    ratios = {}
    for m in dict.fromkeys(r["model"] for r in rows):
        syn = by.get((m, "synthetic"))

        def ratio(a, b):
            return round(a / b, 3) if a and b else None

        ratios[m] = {"tensor/synthetic": ratio(by.get((m, "tensor")), syn),
                     "gpu_jpeg/folder": ratio(by.get((m, "gpu_jpeg")), by.get((m, "folder"))),
                     "ours/timm": ratio(syn, by.get((m, "timm"))),
                     "compiled/eager": ratio(by.get((m, "compiled")), syn)}
    return ratios


def print_table(result):
    rows = result["rows"]
    print(f"\n{'model':<16}{'px':>5} {'input':<10}{'img/s':>10}{'first step s':>14}  status")
    for r in rows:
        ips = f"{r['images_per_s']:.0f}" if r.get("images_per_s") else "-"
        fs = f"{r['first_step_s']:.1f}" if r.get("first_step_s") is not None else "-"
        st = r.get("status", "")
        if r.get("pipeline_used") and r["pipeline_used"] != r["kind"]:
            st += f" (ran {r['pipeline_used']})"
        print(f"{r['model']:<16}{r.get('resolution') or '':>5} {r['kind']:<10}{ips:>10}{fs:>14}  {st[:60]}")
    print("ratios: " + "; ".join(f"{m}: " + ", ".join(f"{k} {v}" for k, v in d.items() if v is not None)
                                 for m, d in result["ratios"].items()))


def _write(path, obj):
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--models", default=",".join(MODELS), help="comma list of our model names")
    p.add_argument("--kinds", default="synthetic,timm,tensor,gpu_jpeg,folder,compiled")
    p.add_argument("--compile-models", default=None, help="comma list: compiled rows only for these (default all)")
    p.add_argument("--recipe", default="efficientnet")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=16, help="DataLoader workers (folder, gpu_jpeg)")
    p.add_argument("--jpeg-images", type=int, default=4096, help="synthetic train JPEGs")
    p.add_argument("--warmup", type=int, default=8)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--resolution", type=int, default=None, help="override every model's resolution")
    p.add_argument("--budget-s", type=float, default=240.0, help="skip the remaining rows after this many seconds")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. reduce-overhead (CUDA graphs)")
    p.add_argument("--compile-reserve-s", type=float, default=60.0,
                   help="start a compiled row only with this much budget left")
    p.add_argument("--out", default=None, help="JSON file (rewritten after every row)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes for a CPU smoke test: batch 8, 32 px, 2+2x1 steps, 48 JPEGs, 2 workers")
    args = p.parse_args(argv)
    if args.quick:
        args.batch_size, args.resolution, args.jpeg_images, args.workers = 8, 32, 48, 2
        args.warmup, args.steps, args.repeats = 2, 2, 1
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    channels_last = True
    from rubik.train import Recipe

    recipe = Recipe.named(args.recipe)
    models = [m for m in args.models.split(",") if m]
    kinds = [k for k in args.kinds.split(",") if k]
    if args.quick and device.type != "cuda":
        kinds = [k for k in kinds if k != "compiled"]   # torch.compile on CPU takes minutes
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    result = {"gpu": gpu, "device": str(device), "torch": torch.__version__, "batch_size": args.batch_size,
              "recipe": args.recipe, "channels_last": channels_last, "compile_mode": args.compile_mode,
              "amp": "bf16" if device.type == "cuda" else None, "workers": args.workers,
              "warmup": args.warmup, "steps": args.steps, "repeats": args.repeats,
              "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
              "rows": plan_rows(models, kinds, args.compile_models.split(",") if args.compile_models else None)}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rubik-jpeg-") as tmp:
        jpeg_root = Path(tmp) / "jpeg"
        if any(r["kind"] in ("tensor", "gpu_jpeg", "folder") for r in result["rows"]):
            t0 = time.perf_counter()
            size = (100, 75) if args.quick else (500, 375)
            make_jpeg_set(jpeg_root, args.jpeg_images, max(16, args.jpeg_images // 64), size=size,
                          workers=min(args.workers, os.cpu_count() or 1))
            result["jpeg_set"] = {"train": args.jpeg_images, "size": list(size),
                                  "seconds": round(time.perf_counter() - t0, 1)}
        for row in result["rows"]:
            # a compiled row needs ~a minute (compilation); do not start one that would overrun the budget
            need = args.compile_reserve_s if row["kind"] == "compiled" else 0.0
            if time.perf_counter() - t_start + need > args.budget_s:
                row["status"] = "skipped (budget)"
                continue
            t_row = time.perf_counter()
            try:
                run_row(row, args, device, channels_last, recipe, jpeg_root)
            except Exception as e:  # one failing row (no Triton, no nvJPEG, OOM) must not lose the others
                row["status"] = f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            row["seconds"] = round(time.perf_counter() - t_row, 2)   # model build, loader and measurement
            ok = row.get("status") == "ok"
            print(f"[gpu_throughput] {row['model']:<16} {row['kind']:<10} "
                  + (f"{row['images_per_s']:.0f} img/s" if ok else row["status"])
                  + (f"  (row {row['seconds']:.1f} s" + (f", first step {row['first_step_s']:.1f} s" if ok else "")
                     + f"; elapsed {time.perf_counter() - t_start:.0f} s)" if "seconds" in row else ""), flush=True)
            result["ratios"] = summarise(result["rows"])
            result["seconds"] = round(time.perf_counter() - t_start, 1)
            _write(args.out, result)
    result["ratios"] = summarise(result["rows"])
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    _write(args.out, result)
    print_table(result)
    return 0 if any(r.get("status") == "ok" for r in result["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
