"""Training throughput on CPU: is the cached-tensor pipeline as fast as the model allows?

Measures images/s of the *full* training step (channels_last, as ``rubik.train``) (forward, backward, RMSpropTF step, EMA update,
lr schedule) of EfficientNet-B0 at base 64 px on Imagenette:

  (a) our tensor pipeline end to end (uint8 cache, batched crop/flip on tensors),
  (b) the same step on synthetic in-memory tensors (the compute limit),
  (c) plain torchvision ImageFolder + PIL transforms + DataLoader workers,

and prints (a)/(b) (target >= 0.9) and (a)/(c) (target >= 2). Then, for a sweep of small models,
aggregate images/s of 1 process x N threads vs N processes x 1 thread.

    .venv/bin/python benchmarks/train_throughput.py --data ../shared/datasets/imagenette

The machine may be shared: methods are measured in alternation (``--rounds``) and the best round
of each is kept; the load average is printed.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

import torch
import torch.nn.functional as F


def make_step(model, lr=0.006):
    from rubik.optim import ModelEMA, RMSpropTF, param_groups

    opt = RMSpropTF(param_groups(model, 1e-5), lr=lr, alpha=0.9, eps=1e-3, momentum=0.9)
    ema = ModelEMA(model, 0.999)
    model.train()

    def step(x, y):
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model)
        return loss

    return step


def timed(step, batches, warmup=2):
    """images/s over ``batches`` (an iterator of (x, y)) after ``warmup`` batches; loader time included."""
    it = iter(batches)
    for _ in range(warmup):
        x, y = next(it)
        step(x, y)
    n, t0 = 0, time.perf_counter()
    for x, y in it:
        step(x, y)
        n += len(y)
    return n / (time.perf_counter() - t0)


def take(loader, k):
    for i, b in enumerate(loader):
        if i >= k:
            return
        yield b


def build_model(name, twist, base_res, threads):
    from rubik.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(name, 10, twist=twist, base_resolution=base_res)
    return model.to(memory_format=torch.channels_last)   # as rubik.train (benchmarks/channels_last.py)


def bench_a(args, model, steps):
    from rubik.data import DataConfig, build_loaders

    data = DataConfig(root=args.data, pipeline="tensor", workers=2, train_per_class=args.train_per_class)
    tr, _, _ = build_loaders(data, model.resolution, args.batch_size, device="cpu", scale=(0.25, 1.0),
                             channels_last=True, progress=True)
    tr.set_epoch(args.round_seed)
    return timed(make_step(model), take(tr, steps + 2))


def bench_b(args, model, steps):
    x = torch.randn(args.batch_size, 3, model.resolution, model.resolution).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch_size,))
    return timed(make_step(model), ((x, y) for _ in range(steps + 2)))


_FOLDER_LOADER = {}


def bench_c(args, model, steps):
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms as T

    key = (model.resolution, args.batch_size)
    if key not in _FOLDER_LOADER:   # persistent workers: the worker start-up is not charged to the step
        tf = T.Compose([T.RandomResizedCrop(model.resolution, scale=(0.25, 1.0),
                                            interpolation=T.InterpolationMode.BICUBIC),
                        T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
        ds = datasets.ImageFolder(os.path.join(args.data, "train"), transform=tf)
        _FOLDER_LOADER[key] = DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                                         drop_last=True, persistent_workers=args.workers > 0)
    return timed(make_step(model), take(_FOLDER_LOADER[key], steps + 2))


def _sweep_worker(q, name, twist, base_res, threads, batch_size, seconds, start):
    model = build_model(name, twist, base_res, threads)
    step = make_step(model)
    x = torch.randn(batch_size, 3, model.resolution, model.resolution).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,))
    step(x, y)
    start.wait()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step(x, y)
        n += batch_size
    q.put(n / (time.perf_counter() - t0))


def sweep_layout(name, twist, base_res, procs, threads, batch_size, seconds):
    ctx = mp.get_context("spawn")
    q, start = ctx.Queue(), ctx.Event()
    ps = [ctx.Process(target=_sweep_worker, args=(q, name, twist, base_res, threads, batch_size, seconds, start))
          for _ in range(procs)]
    for p in ps:
        p.start()
    time.sleep(8)   # let every worker import torch and build its model before the clock starts
    start.set()
    rates = [q.get() for _ in ps]
    for p in ps:
        p.join()
    return sum(rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RUBIK_DATA_DIR", "../shared/datasets/imagenette"))
    ap.add_argument("--model", default="efficientnet_b0")
    ap.add_argument("--base-resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for (a)/(b)/(c) (default 1: on a shared box, OpenMP threads that lose "
                         "their core stall the whole step)")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers for (c)")
    ap.add_argument("--steps", type=int, default=15, help="timed steps per method and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--train-per-class", type=int)
    ap.add_argument("--sweep-twist", type=float, nargs=3, default=(0.5, 0.5, 0.5),
                    help="small model (also measured for (a)/(b)/(c)) for the processes-vs-threads comparison")
    ap.add_argument("--sweep-seconds", type=float, default=20)
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--skip-small", action="store_true", help="only B0 for (a)/(b)/(c)")
    args = ap.parse_args()

    res = {}
    cases = [("b0", None)] + ([] if args.skip_small else [("small", tuple(args.sweep_twist))])
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch_size}, "
          f"load average {os.getloadavg()}")
    for tag, twist in cases:
        model = build_model(args.model, twist, args.base_resolution, args.threads)
        print(f"[{tag}] {args.model} twist {twist or (1, 1, 1)} @ {model.resolution}px")
        best = {"a": 0.0, "b": 0.0, "c": 0.0}
        fns = {"b": bench_b, "a": bench_a, "c": bench_c}
        for r in range(args.rounds):
            args.round_seed = r
            for k, fn in fns.items():
                v = fn(args, model, args.steps)
                best[k] = max(best[k], v)
                print(f"  round {r + 1}: ({k}) {v:7.1f} img/s", flush=True)
        res[tag] = {"resolution": model.resolution, "a_tensor_pipeline": best["a"], "b_synthetic": best["b"],
                    "c_imagefolder_pil": best["c"], "a_over_b": best["a"] / best["b"],
                    "a_over_c": best["a"] / best["c"]}
        print(f"[{tag}] (a) tensor pipeline      {best['a']:7.1f} img/s")
        print(f"[{tag}] (b) synthetic tensors    {best['b']:7.1f} img/s")
        print(f"[{tag}] (c) ImageFolder + PIL    {best['c']:7.1f} img/s  ({args.workers} workers)")
        print(f"[{tag}] (a)/(b) = {res[tag]['a_over_b']:.2f}  (target >= 0.9)   "
              f"(a)/(c) = {res[tag]['a_over_c']:.2f}  (target >= 2)", flush=True)

    if not args.skip_sweep:
        n = os.cpu_count() or 2
        tw = tuple(args.sweep_twist)
        one = sweep_layout(args.model, tw, args.base_resolution, 1, n, args.batch_size, args.sweep_seconds)
        many = sweep_layout(args.model, tw, args.base_resolution, n, 1, args.batch_size, args.sweep_seconds)
        res.update(sweep_1proc_nthreads=one, sweep_nprocs_1thread=many)
        print(f"sweep model twist {tw} @ base {args.base_resolution}: 1 process x {n} threads {one:7.1f} img/s | "
              f"{n} processes x 1 thread {many:7.1f} img/s (aggregate) -> "
              f"{'processes' if many > one else 'threads'} win by {max(one, many) / min(one, many):.2f}x")
    print(f"load average after: {os.getloadavg()}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
