"""Multi-tensor (``foreach``) vs per-parameter TF-RMSProp: does the fused update cost anything on CPU,
and how much does it save where launches matter (CUDA)?

For EfficientNet-B0 (and a small twist) at base 64 px, channels_last, measures in alternating order
(best of ``--rounds``):

* the update alone (``RMSpropTF.step``, then ``ModelEMA.update`` which is multi-tensor in both; the
  gradients of the last step),
  ``foreach=True`` vs ``foreach=False``, in ms per step;
* the full training step (forward, backward, update, EMA) with each, in images/s.

    PYTHONPATH=. .venv/bin/python benchmarks/optimizer_step.py                 # CPU, ~1 min
    PYTHONPATH=. .venv/bin/python benchmarks/optimizer_step.py --device cuda --batch-size 256
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F


def setup(twist, args, device, foreach):
    from rubik.models import create_model
    from rubik.optim import ModelEMA, RMSpropTF, param_groups

    torch.manual_seed(0)
    model = create_model(args.model, 10, twist=twist, base_resolution=args.base_resolution)
    model.to(device, memory_format=torch.channels_last).train()
    opt = RMSpropTF(param_groups(model, 1e-5), lr=1e-3, alpha=0.9, eps=1e-3, momentum=0.9, foreach=foreach)
    ema = ModelEMA(model, 0.999)
    x = torch.randn(args.batch_size, 3, model.resolution, model.resolution, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    amp = torch.bfloat16 if device.type == "cuda" else None
    return model, opt, ema, x, y, amp


def bench(twist, args, device, foreach):
    model, opt, ema, x, y, amp = setup(twist, args, device, foreach)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def full_step():
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model)

    for _ in range(2):
        full_step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        full_step()
    sync()
    full = args.steps * args.batch_size / (time.perf_counter() - t0)
    # the update alone, on the gradients of the last step
    t0 = time.perf_counter()
    for _ in range(args.update_steps):
        opt.step()
        ema.update(model)
    sync()
    update_ms = 1000 * (time.perf_counter() - t0) / args.update_steps
    return full, update_ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_b0")
    ap.add_argument("--small-twist", type=float, nargs=3, default=(0.8, 0.5, 0.5))
    ap.add_argument("--base-resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5, help="timed full steps per measurement")
    ap.add_argument("--update-steps", type=int, default=20, help="timed optimizer+EMA updates per measurement")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {device}, {args.threads} thread(s), batch {args.batch_size}, "
          f"load average {tuple(round(v, 1) for v in os.getloadavg())}", flush=True)
    rows = []
    for tag, twist in (("b0", None), ("small", tuple(args.small_twist))):
        best = {True: [0.0, float("inf")], False: [0.0, float("inf")]}
        for r in range(args.rounds):
            for fe in ((True, False) if r % 2 == 0 else (False, True)):
                full, upd = bench(twist, args, device, fe)
                best[fe] = [max(best[fe][0], full), min(best[fe][1], upd)]
        row = {"model": tag, "foreach_img_s": round(best[True][0], 1), "loop_img_s": round(best[False][0], 1),
               "foreach_update_ms": round(best[True][1], 3), "loop_update_ms": round(best[False][1], 3)}
        rows.append(row)
        print(f"{tag:5s} full step: foreach {row['foreach_img_s']:7.1f} img/s, loop {row['loop_img_s']:7.1f} img/s"
              f" (x{best[True][0] / best[False][0]:.2f}) | optimizer+EMA update: foreach {row['foreach_update_ms']:.2f}"
              f" ms, loop {row['loop_update_ms']:.2f} ms (x{best[False][1] / best[True][1]:.2f} faster)", flush=True)
    print(f"load average after: {tuple(round(v, 1) for v in os.getloadavg())}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
