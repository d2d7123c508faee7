"""channels_last vs contiguous (NCHW) memory format for the full training step, on CPU (or CUDA).

Which layout should ``rubik.train`` use by default? This measures images/s of the whole step as
``train()`` runs it -- ``TensorLoader`` batch (uint8 cache -> crop/flip/resize -> normalise) ->
forward -> label-smoothed loss -> backward -> ``build_optimizer("rmsproptf")`` step -> lr schedule
-> ``ModelEMA`` update -- for

* layouts: ``contiguous`` (model and batches NCHW) and ``channels_last`` (both NHWC), plus, with
  ``--mismatch``, the two mixed cases (model NHWC fed NCHW batches, and the reverse: then every
  convolution converts its weight each call),
* torch threads 1 and 2,
* EfficientNet-B0 and a small twist, at base 64 px,

on a synthetic uint8 cache (pixel values do not change the cost). Every (model, threads) pair is
measured in alternating order (ABBA...) for ``--rounds`` rounds and the best round of each layout
is kept, so a shared machine's load hits both layouts alike; ratios come from the same run.

    PYTHONPATH=. .venv/bin/python benchmarks/channels_last.py            # ~3 min on a 2-core box
    PYTHONPATH=. .venv/bin/python benchmarks/channels_last.py --mismatch --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch import nn

LAYOUTS = {   # name: (model memory format is channels_last, loader yields channels_last)
    "contiguous": (False, False),
    "channels_last": (True, True),
    "model_cl_input_nchw": (True, False),
    "model_nchw_input_cl": (False, True),
}


def make_train_step(model, device, steps, batch_size, *, lr_per_1024=0.016):
    """The ops of one ``rubik.train`` step (proxy recipe), as a closure ``step(x, y) -> loss``."""
    from rubik.optim import LRSchedule, ModelEMA, build_optimizer, param_groups
    from rubik.train import Recipe

    r = Recipe.named("proxy")
    lr = r.lr_per_1024 * batch_size / 1024
    opt = build_optimizer(r.optimizer, param_groups(model, r.weight_decay), lr=lr, momentum=r.momentum,
                          alpha=r.rmsprop_decay, eps=r.rmsprop_eps)
    schedule = LRSchedule(opt, lr=lr, steps_per_epoch=max(steps, 1), epochs=1, kind=r.schedule,
                          warmup_epochs=0.0)
    ema = ModelEMA(model, 0.99, warmup=True)
    criterion = nn.CrossEntropyLoss(label_smoothing=r.label_smoothing)
    amp_dtype = torch.bfloat16 if device.type == "cuda" else None
    model.train()

    def step(x, y):
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = criterion(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        ema.update(model)
        return loss.detach()

    return step


def measure(name, twist, base_res, layout, threads, args, device) -> float:
    """images/s of ``args.steps`` timed steps (after 2 warm-up steps), loader time included."""
    from rubik.data import TensorLoader
    from rubik.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model_cl, input_cl = LAYOUTS[layout]
    model = create_model(name, 10, twist=twist, base_resolution=base_res)
    model.to(device, memory_format=torch.channels_last if model_cl else torch.contiguous_format)
    size = model.resolution
    store = int(size / 0.875)
    n = args.batch_size * (args.steps + 2)
    g = torch.Generator().manual_seed(0)
    cache = torch.randint(0, 256, (n, 3, store, store), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    loader = TensorLoader(cache, labels, args.batch_size, image_size=size, train=True, device=device,
                          scale=(0.25, 1.0), channels_last=input_cl)
    step = make_train_step(model, device, len(loader), args.batch_size)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    it = iter(loader)
    for _ in range(2):
        step(*next(it))
    sync()
    seen, t0 = 0, time.perf_counter()
    for x, y in it:
        step(x, y)
        seen += len(y)
    sync()
    return seen / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_b0")
    ap.add_argument("--small-twist", type=float, nargs=3, default=(0.8, 0.5, 0.5), metavar=("R", "D", "W"))
    ap.add_argument("--base-resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32, help="the proxy recipe's batch (default 32)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per measurement (default 5)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--mismatch", action="store_true", help="also the two mixed layouts")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    device = torch.device(args.device)
    layouts = list(LAYOUTS) if args.mismatch else ["contiguous", "channels_last"]
    print(f"torch {torch.__version__}, device {device}, batch {args.batch_size}, {args.steps} steps x "
          f"{args.rounds} rounds, load average {tuple(round(v, 1) for v in os.getloadavg())}", flush=True)
    results = []
    for tag, twist in (("b0", None), ("small", tuple(args.small_twist))):
        for threads in args.threads:
            best = dict.fromkeys(layouts, 0.0)
            for r in range(args.rounds):
                order = layouts if r % 2 == 0 else layouts[::-1]   # alternate: ABBA
                for layout in order:
                    v = measure(args.model, twist, args.base_resolution, layout, threads, args, device)
                    best[layout] = max(best[layout], v)
            row = {"model": tag, "twist": list(twist or (1, 1, 1)), "threads": threads,
                   **{f"{k}_img_s": round(v, 1) for k, v in best.items()},
                   "channels_last_over_contiguous": round(best["channels_last"] / best["contiguous"], 2)}
            results.append(row)
            others = "  ".join(f"{k} {v:6.1f}" for k, v in best.items() if k not in ("contiguous", "channels_last"))
            print(f"{tag:5s} twist {row['twist']} {threads} thread(s): contiguous {best['contiguous']:6.1f} img/s"
                  f"  channels_last {best['channels_last']:6.1f} img/s  -> x{row['channels_last_over_contiguous']:.2f}"
                  + (f"   ({others})" if others else ""), flush=True)
    print(f"load average after: {tuple(round(v, 1) for v in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
