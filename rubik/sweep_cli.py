"""``rubik sweep init|run|status``: the command line of ``rubik.sweep`` (launch recipes: its docstring)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys

from rubik.config import TrainConfig
from rubik.data import DataConfig, count_classes
from rubik.errors import ConfigError, Interrupted, RunDirError
from rubik.launcher import env_worker, pop_torchrun_env, run_sweep
from rubik.rundir import STALE_AFTER_S
from rubik.sweep import (ORDERS, check_template, init_sweep, load_results, load_spec, remaining_work, sample_twists,
                         sweep_status, times_per_epoch)

__all__ = ["add_arguments", "main", "training_budget", "sweep_budget"]


def _parse_ranges(text):
    """``r=0.5:1.4,d=0.3:1.6`` -> {"r": (0.5, 1.4), "d": (0.3, 1.6)}."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        try:
            k, _, v = part.partition("=")
            lo, _, hi = v.partition(":")
            out[k.strip()] = (float(lo), float(hi))
        except ValueError:
            raise ConfigError(f"--ranges: cannot parse {part!r}; expected e.g. r=0.5:1.4,d=0.3:1.6") from None
    return out


def _parse_value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="sweep_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("init", help="sample twisted models and write DIR/sweep.json")
    p.add_argument("dir")
    p.add_argument("--n", type=int, default=100, help="random models (default 100)")
    p.add_argument("--base", default="efficientnet_b0", help="efficientnet_b0 | ghostnet_a | resnet50 | ...")
    p.add_argument("--base-resolution", type=int, default=None, help="px at r=1 (proxy runs: 64); default the family's")
    p.add_argument("--rules", default=None,
                   help="EfficientNet family: tinynet (default) | efficientnet rounding; every trial trains with it")
    p.add_argument("--mode", default="uniform", choices=["uniform", "stratified"])
    p.add_argument("--ranges", default=None, help="dial ranges, e.g. r=0.5:1.4,d=0.3:1.6,w=0.3:1.4")
    p.add_argument("--c-min", type=float, default=None, help="smallest FLOPs ratio kept (default 0.05)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the sampling")
    p.add_argument("--no-references", action="store_true", help="no base / inversed-giant reference models")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classes for the FLOPs count (default: class folders under DATA/train, else 1000)")
    p.add_argument("--data", default=None, help="ImageFolder root (train/, val/); default $RUBIK_DATA_DIR")
    p.add_argument("--dataset", default="imagenette", help="DataConfig.name")
    p.add_argument("--train-per-class", type=int, default=None)
    p.add_argument("--val-per-class", type=int, default=None)
    p.add_argument("--recipe", default="proxy")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="training seed (the same for every trial)")
    p.add_argument("--device", default="auto")
    p.add_argument("-p", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other TrainConfig field (data.KEY for DataConfig, recipe.KEY for a recipe field), "
                        "JSON-parsed; repeatable")
    p.add_argument("--trial-checkpoints", action="store_true",
                   help="checkpoint every trial in DIR/runs/<id> so a killed trial resumes mid-way")
    p.add_argument("--force", action="store_true", help="overwrite a sweep.json that has no finished trials")
    p.add_argument("--no-latency", action="store_true",
                   help="do not measure each trial's CPU latency after training (1 thread, batch 1)")

    p = sub.add_parser("run", help="train the sweep's unfinished trials (resumable, parallel-safe)")
    p.add_argument("dir")
    p.add_argument("--worker", type=int, default=None, help="this worker's index (default torchrun/SLURM env, else 0)")
    p.add_argument("--workers", type=int, default=None, help="number of workers across machines")
    p.add_argument("--processes", type=int, default=None,
                   help="local worker processes (default: one per GPU present, torch.cuda.device_count(), when "
                        "the device is cuda or auto; else 1); on GPUs spread round-robin, several per GPU if more")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per worker (default: cores / processes on CPU, 1-2 per GPU worker)")
    p.add_argument("--device", default=None,
                   help="device for every trial, overriding the template's: cpu, cuda (spread over the GPUs), cuda:1")
    p.add_argument("--devices", default=None, help="comma list, one per local process (default cuda:k if GPUs)")
    p.add_argument("--order", default="spec", choices=ORDERS,
                   help="which trials first: spec (sweep.json's order), short-first / long-first by training "
                        "cost, FLOPs x epochs (short-first: most records from a run cut short by a deadline)")
    p.add_argument("--no-steal", action="store_true", help="train only this worker's share")
    p.add_argument("--retry-failed", action="store_true", help="train trials whose record says failed again")
    p.add_argument("--stale-after", type=float, default=STALE_AFTER_S,
                   help="seconds without heartbeat after which another host's claim is stale")
    p.add_argument("--train-fn", default=None, help="module:function replacing rubik.train.train (testing)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-wait", action="store_true",
                   help="return when nothing is left to claim here, without waiting for trials running elsewhere "
                        "(exit status 2 while any trial is unfinished)")

    p = sub.add_parser("status", help="progress and the best trials so far")
    p.add_argument("dir")
    p.add_argument("--top", type=int, default=10, help="show this many best trials")


def _cmd_init(args) -> int:
    import pandas as pd

    data = DataConfig(root=args.data, name=args.dataset, train_per_class=args.train_per_class,
                      val_per_class=args.val_per_class)
    tmpl = TrainConfig(data=data, recipe=args.recipe, seed=args.seed, device=args.device, progress=False).to_dict()
    # the schedule is the recipe's; a bad value (--epochs 0) is refused by check_template below, in one line
    tmpl["recipe"].update({k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size))
                           if v is not None})
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"-p {item!r}: expected KEY=VALUE")
        if key.startswith("recipe."):
            target, field = tmpl["recipe"], key[7:]   # -p recipe.eval_every=4: one field of the recipe
        elif key.startswith("data."):
            target, field = tmpl["data"], key[5:]
        else:
            target, field = tmpl, key
        if field not in target:
            raise ConfigError(f"-p {key}: unknown field {field!r}; expected one of {sorted(target)} "
                             f"(data.KEY for DataConfig, recipe.KEY for the recipe)")
        target[field] = _parse_value(value)
    check_template(tmpl)   # --epochs 0, --train-per-class 0 ...: refused before sampling
    num_classes = args.num_classes or (count_classes(args.data, quiet=True) if args.data else 1000)
    # every trial's arch replaces the template's, so what the template says of the network beyond the
    # dials (the convolution: -p 'arch={base: resnet50, conv: spconv}') must reach the samples
    given = any(item.partition("=")[0] == "arch" for item in args.set)   # the template's own arch is B0's default
    arch = tmpl.get("arch") if given and isinstance(tmpl.get("arch"), dict) else {}
    if arch.get("base", args.base) != args.base:
        raise ConfigError(f"-p arch: base {arch.get('base')!r} differs from --base {args.base!r}; the samples "
                          "are twists of --base")
    kw = dict(mode=args.mode, ranges=_parse_ranges(args.ranges), base_resolution=args.base_resolution,
              num_classes=num_classes, include_references=not args.no_references, seed=args.sample_seed,
              rules=args.rules)
    if arch.get("conv") is not None:
        kw["conv"] = arch["conv"]
    if args.c_min is not None:
        kw["c_min"] = args.c_min
    try:   # the sampler's ValueErrors are about these arguments (unknown base, impossible ranges)
        samples = sample_twists(args.n, args.base, **kw)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    meta = {"sampling": dict(kw, n=args.n, base=args.base), "command": " ".join(sys.argv)}
    path = init_sweep(args.dir, samples, tmpl, meta=meta, trial_checkpoints=args.trial_checkpoints, force=args.force,
                      latency=not args.no_latency)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        cols = [c for c in ("id", "kind", "r", "d", "w", "resolution", "params", "flops", "flops_ratio") if c in samples]
        print(samples[cols].to_string(index=False, max_rows=20))
    print(f"\n{len(samples)} trials ({(samples['kind'] == 'random').sum()} random) -> {path}")
    print(training_budget(samples, tmpl, num_classes))
    return 0


#: the one measured GPU training rate this projection rests on: EfficientNet-B0 at 224 px, synthetic
#: batches of 256, bf16 + channels_last, one H200 (benchmarks/GPU_NOTES.md, throughput.json)
B0_224_H200_IMAGES_PER_S = 4484


def training_budget(samples, template: dict, num_classes: int) -> str:
    """What a sweep costs, said at init: trial-epochs, training images and FLOPs, and GPU-hours
    projected from the measured B0-224 rate on one H200 with time proportional to FLOPs. Small
    models run below that rate on a GPU (launch-bound), so the projection is a lower bound; the
    sweep's own records give the real one (``rubik sweep status``: remaining worker-hours)."""
    from rubik.models import Arch
    from rubik.recipes import resolve_recipe

    epochs = resolve_recipe(template["recipe"]).epochs
    per_class = (template.get("data") or {}).get("train_per_class")
    line = f"budget: {len(samples)} trials x {epochs} epochs = {len(samples) * epochs} trial-epochs"
    if not per_class or "flops" not in samples:
        return line + ("; give --train-per-class (or time a few trials with `rubik sweep run`, then "
                       "`rubik sweep status`) for a time estimate")
    images = int(per_class) * int(num_classes) * epochs
    b0 = Arch.named("efficientnet_b0").flops(num_classes)
    gpu_s = sum(images * float(f) / b0 / B0_224_H200_IMAGES_PER_S for f in samples["flops"])
    return (f"{line}, {images:,} training images each ({per_class}/class x {num_classes} classes x {epochs}), "
            f"{3 * images * float(samples['flops'].sum()) / 1e15:.3g} PFLOPs (forward + backward); >= "
            f"{gpu_s / 3600:.3g} GPU-hours projected from B0-224's measured {B0_224_H200_IMAGES_PER_S:,} img/s on "
            "one H200 scaled by FLOPs (a lower bound: small models are launch-bound; `rubik sweep status` "
            "fits the real time once trials finish)")


def sweep_budget(sweep_dir) -> str:
    """``training_budget`` of an initialised sweep (what ``rubik reproduce`` prints once notebook 01 has
    made it): its trials, its template and the head size it was sampled for."""
    import pandas as pd

    from rubik.latency import sweep_num_classes

    spec = load_spec(sweep_dir)
    return training_budget(pd.DataFrame(spec["trials"]), spec["template"], sweep_num_classes(spec) or 1000)


def _cmd_run(args) -> int:
    ew, ewn, local_rank = env_worker()
    worker = args.worker if args.worker is not None else ew
    workers = args.workers if args.workers is not None else ewn
    devices = args.devices
    if devices is None and args.device in (None, "auto", "cuda") and local_rank is not None and "LOCAL_RANK" in os.environ:
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                devices = f"cuda:{local_rank % torch.cuda.device_count()}"
    pop_torchrun_env()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # scancel / kill: release the claim first
    try:
        df = run_sweep(args.dir, worker=worker, workers=workers, processes=args.processes, threads=args.threads,
                       devices=devices, device=args.device, train_fn=args.train_fn, steal=not args.no_steal,
                       retry_failed=args.retry_failed, stale_after=args.stale_after, progress=not args.no_progress,
                       wait=not args.no_wait, order=args.order)
    except KeyboardInterrupt:
        raise Interrupted(_kept(args.dir)) from None
    counts = df["status"].value_counts().to_dict()
    print(f"sweep {args.dir}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    unfinished = df[df["status"].isin(["pending", "running", "corrupt", "mismatch"])]
    if len(unfinished):   # never report success while trials are left
        raise RunDirError(f"{len(unfinished)} trial(s) not finished ({', '.join(unfinished['id'].astype(str)[:5])}"
                          f"{', ...' if len(unfinished) > 5 else ''}): other workers hold them or they are not "
                          f"this worker's share; rerun `rubik sweep run {args.dir}` to finish them")
    return 0


def _kept(sweep_dir) -> str:
    """What a Ctrl-C in ``sweep run`` kept and how to go on (one line, printed by ``rubik.cli``)."""
    try:
        st = sweep_status(sweep_dir)
        ckpt = bool(load_spec(sweep_dir).get("trial_checkpoints"))
    except Exception:  # an unreadable sweep still gets its line
        return f"finished trials keep their records in {sweep_dir}/trials; rerun `rubik sweep run {sweep_dir}`"
    restart = "continue from their last epoch (trial checkpoints)" if ckpt else "start over (no trial checkpoints)"
    return (f"{st['done']}/{st['total']} trials done and recorded in {sweep_dir}/trials; the interrupted ones "
            f"{restart}: rerun `rubik sweep run {sweep_dir}` to go on")


def _cmd_status(args) -> int:
    st = sweep_status(args.dir)
    print(f"{args.dir}: {st['done']}/{st['total']} done, {st['running']} running, {st['failed']} failed, "
          + "".join(f"{st[k]} {k}, " for k in ("diverged", "corrupt") if st[k])
          + (f"{st['mismatch']} stale (records of another design: set aside and retrained by the next run), "
             if st["mismatch"] else "") + f"{st['left']} left" + (f" ({st['stale']} with stale claims)" if st["stale"] else ""))
    df = load_results(args.dir)
    done = df[df.status == "done"]
    if len(done):
        if "time_s" in done and done["time_s"].notna().any() and st["left"] + st["running"]:
            left_s = remaining_work(df)
            per_epoch = " per epoch" if times_per_epoch(df) else ""
            print(f"mean trial time {float(done['time_s'].mean()):.1f} s; remaining work ~{left_s / 3600:.1f} "
                  f"worker-hours (time{per_epoch} fitted against FLOPs on {int(done['time_s'].notna().sum())} "
                  "finished trials)")
        cols = [c for c in ("id", "kind", "r", "d", "w", "resolution", "flops_ratio", "top1", "ema_top1", "time_s")
                if c in done]
        print(done.sort_values("top1", ascending=False)[cols].head(args.top).to_string(index=False))
    for row in df[df.status.isin(["failed", "diverged", "corrupt", "mismatch"])].itertuples():
        why = row.error if isinstance(row.error, str) else "non-finite training loss" if row.status == "diverged" else ""
        print(f"{row.status} {row.id}: {why}")
    return 0


def main(args) -> int:
    return {"init": _cmd_init, "run": _cmd_run, "status": _cmd_status}[args.sweep_command](args)
