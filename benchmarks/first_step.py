"""Where a small model's GPU training time goes: the first step, and the steady step at the study's size.

On an H200 (benchmarks/results/h200_2026-11-27) our models' first training step took 11-23 s while
timm's, run next in the same process on the same shapes, took 0.05 s; and B0 at 64 px, batch 32 ran
~68 ms/step. This probe separates the suspects. Each variant runs in a fresh process (the first-step
cost is per process) and trains, with ``rubik.train``'s step (``gpu_throughput.make_step``), two models
of different widths one after the other (a second model with new conv shapes shows whether the cost is
per shape), then times steady steps on synthetic batches and through the tensor pipeline (a uint8
cache on the device). Variants:

  default          as ``rubik train``: bf16 autocast, channels_last, cuDNN heuristics
  eager_modules    CUDA_MODULE_LOADING=EAGER (all kernels loaded at start: lazy loading's share)
  cudnn_benchmark  torch.backends.cudnn.benchmark = True (autotuning per shape: slower first step?)
  no_cudnn         cuDNN off (native convolutions: is it cuDNN's per-shape plan building?)
  fp32             no autocast (bf16 channels_last kernels compiled at run time?)
  contiguous       NCHW instead of channels_last

    python benchmarks/first_step.py --out first_step.json        # GPU node, ~2-3 min
    python benchmarks/first_step.py --quick --device cpu         # smoke test
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "default": ({}, []),
    "eager_modules": ({"CUDA_MODULE_LOADING": "EAGER"}, []),
    "cudnn_benchmark": ({}, ["--cudnn-benchmark"]),
    "no_cudnn": ({}, ["--no-cudnn"]),
    "fp32": ({}, ["--fp32"]),
    "contiguous": ({}, ["--contiguous"]),
}
TWISTS = [(1.0, 1.0, 1.0), (0.8, 0.369, 0.7126)]   # B0 at base 64 px; a c ~ 0.25 study trial (51 px)


def child(args) -> dict:
    import torch

    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    from gpu_throughput import make_step, measure, synthetic_batches

    from rubik.data import TensorLoader
    from rubik.models import create_model
    from rubik.train import Recipe

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
        torch.backends.cudnn.enabled = not args.no_cudnn
    recipe = Recipe.named("proxy")
    fmt = torch.contiguous_format if args.contiguous else torch.channels_last
    out = {"models": []}
    t_start = time.perf_counter()
    for twist in TWISTS:
        torch.manual_seed(0)
        model = create_model("efficientnet_b0", 10, twist=twist, base_resolution=args.base_resolution)
        res = model.resolution
        model.to(device, memory_format=fmt)
        step = make_step(model, recipe, device, bf16=not args.fp32)
        row = {"twist": twist, "resolution": res}
        syn = measure(step, synthetic_batches(args.batch_size, res, device, not args.contiguous, 10), device,
                      warmup=args.warmup, steps=args.steps, repeats=args.repeats)
        row["first_step_s"] = syn["first_step_s"]
        row["synthetic_ms_per_step"] = 1000 * args.batch_size / syn["images_per_s"]
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (args.images, 3, int(res / 0.875), int(res / 0.875)), dtype=torch.uint8, generator=g)
        y = torch.randint(0, 10, (args.images,), generator=g)
        ld = TensorLoader(x, y, args.batch_size, image_size=res, train=True, device=device, seed=0,
                          channels_last=not args.contiguous)

        def batches():
            epoch = 0
            while True:
                ld.set_epoch(epoch)
                yield from ld
                epoch += 1

        ten = measure(step, batches(), device, warmup=args.warmup, steps=args.steps, repeats=args.repeats)
        row["tensor_ms_per_step"] = 1000 * args.batch_size / ten["images_per_s"]
        out["models"].append(row)
    out["process_s"] = time.perf_counter() - t_start
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--base-resolution", type=int, default=64)
    p.add_argument("--images", type=int, default=4096, help="uint8 cache size of the tensor-pipeline rows")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true", help="tiny: 2+3x1 steps, 256 images")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for flag in ("--cudnn-benchmark", "--no-cudnn", "--fp32", "--contiguous"):
        p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.warmup, args.steps, args.repeats, args.images = 2, 3, 1, 256
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return 0
    common = ["--device", args.device, "--batch-size", str(args.batch_size), "--base-resolution",
              str(args.base_resolution), "--images", str(args.images), "--warmup", str(args.warmup),
              "--steps", str(args.steps), "--repeats", str(args.repeats)]
    results = {}
    print(f"{'variant':<16}{'model':>8}{'px':>5}{'first step s':>14}{'synthetic ms/step':>19}{'tensor ms/step':>16}")
    for name in [v for v in args.variants.split(",") if v]:
        env_extra, flags = VARIANTS[name]
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, __file__, "--child", *common, *flags], capture_output=True, text=True,
                           env={**os.environ, **env_extra})
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            results[name] = {"error": (r.stderr.strip().splitlines() or ["no output"])[-1][:300]}
            print(f"{name:<16}  error: {results[name]['error']}")
            continue
        results[name] = dict(json.loads(line[7:]), wall_s=time.perf_counter() - t0)
        for k, m in enumerate(results[name]["models"]):
            print(f"{name:<16}{k + 1:>8}{m['resolution']:>5}{m['first_step_s']:>14.2f}"
                  f"{m['synthetic_ms_per_step']:>19.2f}{m['tensor_ms_per_step']:>16.2f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
