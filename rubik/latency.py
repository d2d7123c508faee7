"""Measured inference latency: ``rubik.measure_latency(model, 224)`` and ``rubik latency``.

FLOPs are a proxy; this measures the time of one forward pass on the machine at hand: eval mode,
``torch.no_grad``, a random input of ``batch x 3 x resolution x resolution``, a few warm-up passes,
then ``repeats`` timed passes (``time.perf_counter``; on CUDA with a synchronize around each), and
reports the median and the inter-quartile range (robust to the odd slow pass when the machine is
shared). The torch thread count is set to ``threads`` for the measurement and restored after.

    rubik latency --model tinynet_e                       # 1 thread, batch 1, CPU
    rubik latency --twist 0.5,0.6,0.5 --base efficientnet_b0 --threads 4
    rubik latency --sweep data/results/imagenette/sweep --out latency.csv --repeats 20 --rounds 3

``--sweep`` re-measures every finished trial of a sweep from its dials (the architecture only; the
weights do not change the time) and writes one CSV row per trial. ``--rounds`` measures all models
once per round in a shuffled order and pools the repeats, so a burst of load from other processes
is spread over many models instead of landing on a few.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from rubik.config import model_from_config   # torch-free at import (re-exported: rubik.latency.model_from_config)
from rubik.errors import ConfigError
from rubik.frontier import frontier_agreement, pareto_frontier
from rubik.models import Arch, create_model
from rubik.sweep import load_results, load_spec, trial_arch, trial_config

if TYPE_CHECKING:  # torch is imported where it is used: a sweep with latency off need not load it
    from torch import nn

#: what a sweep trial measures after training by default (``init_sweep(..., latency=...)`` overrides
#: it per sweep). ``RUBIK_TRIAL_LATENCY=off`` turns it off in a process (the test suite does, so sweeps
#: of fake trainers need not import torch); ``RUBIK_TRIAL_LATENCY=repeats=10,threads=2`` overrides fields.
TRIAL_LATENCY = {"repeats": 30, "warmup": 5, "threads": 1, "batch": 1, "device": "cpu"}
TRIAL_LATENCY_ENV = "RUBIK_TRIAL_LATENCY"


def trial_latency_options(spec_option=True) -> dict | None:
    """The measurement a sweep trial makes (None: none), from the spec's ``latency`` and the environment."""
    env = os.environ.get(TRIAL_LATENCY_ENV, "").strip()
    if not spec_option or env.lower() in ("off", "0", "false", "no"):
        return None
    o = dict(TRIAL_LATENCY)
    for item in filter(None, env.split(",")):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in TRIAL_LATENCY:
            raise ValueError(f"${TRIAL_LATENCY_ENV}: unknown key {key!r}; expected 'off' or {sorted(TRIAL_LATENCY)}")
        o[key] = value.strip() if key == "device" else int(value)
    if isinstance(spec_option, dict):
        o.update(spec_option)
    return o


@dataclass
class Latency:
    median_ms: float
    iqr_ms: float
    q1_ms: float
    q3_ms: float
    resolution: int
    batch: int
    threads: int
    device: str
    times_ms: list[float] = field(repr=False, default_factory=list)

    def as_dict(self, times: bool = False) -> dict:
        d = asdict(self)
        if not times:
            d.pop("times_ms")
        return d


def summarize(times_ms, *, resolution: int, batch: int, threads: int, device: str) -> Latency:
    """Median and inter-quartile range (``statistics.quantiles``, inclusive method) of timings in ms."""
    times_ms = [float(t) for t in times_ms]
    if not times_ms:
        raise ValueError("no timings to summarize")
    if len(times_ms) == 1:
        q1 = q3 = times_ms[0]
    else:
        q1, _, q3 = statistics.quantiles(times_ms, n=4, method="inclusive")
    return Latency(statistics.median(times_ms), q3 - q1, q1, q3, resolution, batch, threads, device, times_ms)


@contextmanager
def torch_threads(threads: int | None):
    """Temporarily set torch's intra-op thread count (None: leave it)."""
    import torch

    if threads is None:
        yield
        return
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def time_forward(model: nn.Module, resolution: int, *, batch: int = 1, device="cpu", warmup: int = 5,
                 repeats: int = 30, threads: int | None = 1) -> list[float]:
    """``repeats`` timings (ms) of one forward pass, after ``warmup`` untimed ones (eval, no grad)."""
    import torch

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if batch < 1 or resolution < 1:
        raise ValueError(f"batch and resolution must be >= 1, got batch={batch}, resolution={resolution}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    was_training = model.training
    model.eval()
    x = torch.randn(batch, 3, int(resolution), int(resolution), device=device)
    times = []
    try:
        with torch_threads(threads), torch.no_grad():
            for i in range(warmup + repeats):
                if cuda:
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                model(x)
                if cuda:
                    torch.cuda.synchronize(device)
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * 1e3)
    finally:
        model.train(was_training)
    return times


def measure_latency(model: nn.Module, resolution: int | None = None, batch: int = 1, threads: int | None = 1,
                    device=None, *, warmup: int = 5, repeats: int = 30) -> Latency:
    """Median and IQR (ms) of ``model``'s forward pass on ``batch`` random images.

    resolution: input side in px (default: ``model.resolution``, set by ``rubik.create_model``).
    threads: torch intra-op threads during the measurement (restored after; None leaves it).
    device: where to run (default: where the model's parameters are); the model is not moved.
    """
    import torch

    if resolution is None:
        resolution = getattr(model, "resolution", None)
        if resolution is None:
            raise ValueError("measure_latency needs a resolution (the model has no .resolution)")
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    times = time_forward(model, resolution, batch=batch, device=device, warmup=warmup, repeats=repeats,
                         threads=threads)
    return summarize(times, resolution=int(resolution), batch=batch,
                     threads=torch.get_num_threads() if threads is None else int(threads), device=str(device))


# ----------------------------------------------------------------------------- sweeps

def sweep_num_classes(spec: dict) -> int:
    """Classes the sweep's models were built with: the spec's ``num_classes`` or the sampling meta, else solved from a trial's
    recorded parameter count (the classifier is the only part that depends on it), else the data's
    class folders."""
    n = spec.get("num_classes") or ((spec.get("meta") or {}).get("sampling") or {}).get("num_classes")
    if n:
        return int(n)
    trial = next((t for t in spec.get("trials", []) if t.get("params")), None)
    if trial is not None:
        n = trial_arch(trial).num_classes_from_params(int(trial["params"]))
        if n is not None:
            return n
    from rubik.data import count_classes   # torch (rubik.data): only for a spec without num_classes

    data = spec["template"].get("data") or {}
    return count_classes(data.get("root"), data.get("manifest"))


def trial_latency(config: dict, num_classes: int, options: dict | None = None) -> dict:
    """``{"latency_ms", "latency_iqr_ms", "latency_threads", ...}`` of one sweep trial's architecture."""
    o = {**TRIAL_LATENCY, **(options or {})}
    model = model_from_config(config, num_classes).to(o["device"])
    lat = measure_latency(model, batch=o["batch"], threads=o["threads"], device=o["device"], warmup=o["warmup"],
                          repeats=o["repeats"])
    return {"latency_ms": lat.median_ms, "latency_iqr_ms": lat.iqr_ms, "latency_threads": lat.threads,
            "latency_batch": lat.batch, "latency_device": lat.device, "latency_repeats": len(lat.times_ms)}


def sweep_latency(sweep_dir, *, repeats: int = 20, warmup: int = 3, rounds: int = 3, threads: int = 1, batch: int = 1,
                  device="cpu", num_classes: int | None = None, seed: int = 0, progress: bool = True):
    """Re-measure every finished trial of a sweep from its dials; one row per trial (a DataFrame).

    Each of ``rounds`` rounds times every model ``repeats`` times, in a fresh random order; the
    median and IQR are over all ``rounds * repeats`` timings of a model. ``latency_half1_ms`` /
    ``latency_half2_ms`` are the medians of the even and of the odd rounds alone (two independent
    measurements: how far they disagree shows the noise), ``latency_min_ms`` the fastest pass.
    """
    from rubik._progress import tqdm


    spec = load_spec(sweep_dir)
    results = load_results(sweep_dir)
    done = results[results.status == "done"]
    trials = {str(t["id"]): t for t in spec["trials"]}
    n_cls = num_classes or sweep_num_classes(spec)
    models = {}
    for tid in done["id"].astype(str):
        m = model_from_config(trial_config(spec, trials[tid]), n_cls).to(device).eval()
        params = sum(p.numel() for p in m.parameters())
        expected = trials[tid].get("params")
        if expected is not None and int(expected) != params:
            raise ValueError(f"trial {tid}: the rebuilt model has {params} parameters, its record {expected} "
                             f"(wrong num_classes={n_cls}? pass --num-classes)")
        models[tid] = m
    times: dict[str, list[float]] = {tid: [] for tid in models}
    halves: dict[str, tuple[list, list]] = {tid: ([], []) for tid in models}
    rng = random.Random(seed)
    bar = tqdm(total=rounds * len(models), desc="latency", disable=not progress)
    for k in range(rounds):
        order = list(models)
        rng.shuffle(order)
        for tid in order:
            m = models[tid]
            t = time_forward(m, m.resolution, batch=batch, device=device, warmup=warmup, repeats=repeats,
                             threads=threads)
            times[tid] += t
            halves[tid][k % 2].extend(t)
            bar.update()
    bar.close()
    rows = []
    for _, row in done.iterrows():
        tid = str(row["id"])
        lat = summarize(times[tid], resolution=models[tid].resolution, batch=batch, threads=threads, device=str(device))
        rows.append({"id": tid, "kind": row.get("kind"), "r": row["r"], "d": row["d"], "w": row["w"],
                     "resolution": lat.resolution, "params": row.get("params"), "flops": row.get("flops"),
                     "top1": row.get("top1"), "latency_ms": round(lat.median_ms, 4),
                     "latency_iqr_ms": round(lat.iqr_ms, 4), "latency_q1_ms": round(lat.q1_ms, 4),
                     "latency_q3_ms": round(lat.q3_ms, 4), "latency_min_ms": round(min(lat.times_ms), 4),
                     # medians of the even and the odd rounds: two independent estimates (test-retest)
                     **{f"latency_half{i + 1}_ms": round(statistics.median(h), 4) if h else None
                        for i, h in enumerate(halves[tid])},
                     "timings": len(lat.times_ms), "threads": threads,
                     "batch": batch, "device": str(device)})
    return pd.DataFrame(rows)


def frontier_report(sweep_dir, latency_csv, out_dir, *, metric: str = "top1", kinds=("random",)) -> dict:
    """Accuracy-FLOPs vs accuracy-latency frontiers of a sweep (latency from ``latency_csv``, a
    ``--sweep`` measurement): writes ``figures/fig_latency_frontier`` and ``tables/latency_frontier``
    under ``out_dir`` and returns :func:`rubik.frontier.frontier_agreement` (plus the table).
    ``kinds``: the frontier is over these trials (default the random models, as notebook 03)."""
    import matplotlib

    from rubik import plots   # matplotlib: only for the figure

    results = load_results(sweep_dir)
    results = results[results.status == "done"].drop(columns=["latency_ms"], errors="ignore")
    lat = pd.read_csv(latency_csv, dtype={"id": str})
    lat = lat[[c for c in lat.columns if c == "id" or c.startswith("latency_")]]
    df = results.astype({"id": str}).merge(lat, on="id", how="inner")
    if kinds is not None:
        df = df[df["kind"].isin(kinds)]
    agree = frontier_agreement(df, ("flops", "latency_ms"), metric)
    ff = pareto_frontier(df, "flops", metric)
    fl = pareto_frontier(df, "latency_ms", metric)
    table = df.assign(on_flops_frontier=df.id.isin(agree["first"]), on_latency_frontier=df.id.isin(agree["second"]))
    table = table[table.on_flops_frontier | table.on_latency_frontier]
    cols = ["id", "kind", "r", "d", "w", "resolution", "flops", "latency_ms", "latency_iqr_ms", metric,
            "on_flops_frontier", "on_latency_frontier"]
    table = table[cols].sort_values("flops")
    out = Path(out_dir)
    with matplotlib.rc_context({"backend": "Agg"}):
        fig = plots.plot_latency_frontier(df, ff, fl, y=metric, title=(
            f"Frontiers by FLOPs and by measured latency ({len(df)} {'+'.join(kinds) if kinds else ''} models; "
            f"{int(lat.shape[0])} re-measured, CPU, 1 thread, batch 1)"))
        plots.save_figure(fig, "fig_latency_frontier", out / "figures")
        matplotlib.pyplot.close(fig)
    plots.save_table(table, "latency_frontier", out / "tables")
    extra = {}
    halves = ["latency_half1_ms", "latency_half2_ms"]
    if set(halves) <= set(df.columns) and df[halves].notna().all(axis=None):   # test-retest: is the front stable?
        extra["retest"] = frontier_agreement(df, ("latency_half1_ms", "latency_half2_ms"), metric)
    if "latency_min_ms" in df.columns:                                # the fastest pass instead of the median
        extra["flops_vs_min"] = frontier_agreement(df, ("flops", "latency_min_ms"), metric)
    return {**agree, **extra, "table": table, "models": len(df)}


# ----------------------------------------------------------------------------- CLI

def _parse_twist(text: str):
    try:
        r, d, w = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--twist {text!r}: expected three comma-separated numbers R,D,W (e.g. 0.5,0.6,0.5)") from None
    return r, d, w


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="registered model name (rubik models)")
    what.add_argument("--twist", help="R,D,W dials of --base (e.g. 0.5,0.6,0.5)")
    what.add_argument("--sweep", metavar="DIR", help="re-measure every finished trial of a sweep (needs --out)")
    parser.add_argument("--base", default="efficientnet_b0", help="base family for --twist (default efficientnet_b0)")
    parser.add_argument("--base-resolution", type=int, default=None, help="px at r=1 (default: the family's)")
    parser.add_argument("--resolution", type=int, default=None, help="input side in px (default: the model's)")
    parser.add_argument("--num-classes", type=int, default=None, help="classifier outputs (default 1000; sweeps: theirs)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50, help="timed passes (per round with --sweep)")
    parser.add_argument("--rounds", type=int, default=3, help="--sweep: passes over all models, shuffled each time")
    parser.add_argument("--out", help="--sweep: CSV to write; otherwise a JSON file with the result")
    parser.add_argument("--report", metavar="DIR", help="--sweep: also write the FLOPs-vs-latency frontier figure "
                        "and table under DIR/figures, DIR/tables")
    parser.add_argument("--from-csv", action="store_true", help="--sweep: use the timings already in --out")
    parser.add_argument("--metric", default="top1", help="--report: accuracy column (default top1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args) -> int:
    if args.sweep:
        if not args.out:
            raise ConfigError("--sweep needs --out CSV")


        if args.from_csv:
            df = pd.read_csv(args.out)
        else:
            df = sweep_latency(args.sweep, repeats=args.repeats, warmup=args.warmup, rounds=args.rounds,
                               threads=args.threads, batch=args.batch, device=args.device,
                               num_classes=args.num_classes, progress=not args.quiet)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            from rubik.plots.output import CSV_DIGITS   # committed tables: no last-digit noise

            df.to_csv(args.out, index=False, float_format=f"%.{CSV_DIGITS}g")
        print(f"{len(df)} models, median latency {df.latency_ms.min():.3g}-{df.latency_ms.max():.3g} ms "
              f"({df.threads.iloc[0]} thread(s), batch {df.batch.iloc[0]}, {df.device.iloc[0]}) -> {args.out}")
        if args.report:
            rep = frontier_report(args.sweep, args.out, args.report, metric=args.metric)
            print(f"frontiers over {rep['models']} random models: FLOPs {len(rep['first'])}, latency "
                  f"{len(rep['second'])}, both {len(rep['both'])} (Jaccard {rep['jaccard']:.2f}); "
                  f"Spearman(FLOPs, latency) = {rep['spearman']:.3f}")
            print(f"  only on the FLOPs frontier: {', '.join(map(str, rep['only_first'])) or '-'}")
            print(f"  only on the latency frontier: {', '.join(map(str, rep['only_second'])) or '-'}")
            if "retest" in rep:
                r = rep["retest"]
                print(f"test-retest (even vs odd rounds): latency fronts {len(r['first'])} / {len(r['second'])} "
                      f"models, {len(r['both'])} shared (Jaccard {r['jaccard']:.2f}); Spearman {r['spearman']:.3f}")
            if "flops_vs_min" in rep:
                r = rep["flops_vs_min"]
                print(f"with the fastest pass instead of the median: latency front {len(r['second'])} models, "
                      f"{len(r['both'])} shared with the FLOPs front (Jaccard {r['jaccard']:.2f}); "
                      f"Spearman(FLOPs, min latency) = {r['spearman']:.3f}")
        return 0
    from rubik.train import check_model_size   # torch: this module loads it only to time models

    for name in ("batch", "threads", "repeats", "num_classes"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {v}")
    try:   # checked (and sized) before anything is allocated
        arch = (Arch.named(args.model, base_resolution=args.base_resolution) if args.model else
                Arch.named(args.base, twist=_parse_twist(args.twist), base_resolution=args.base_resolution))
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"--{'model' if args.model else 'twist'}: {e}") from None
    check_model_size(arch, args.num_classes or 1000)
    if args.model:
        model = create_model(args.model, args.num_classes or 1000, base_resolution=args.base_resolution)
    else:
        model = create_model(args.base, args.num_classes or 1000, twist=_parse_twist(args.twist),
                             base_resolution=args.base_resolution)
    model.to(args.device)
    lat = measure_latency(model, args.resolution, batch=args.batch, threads=args.threads, device=args.device,
                          warmup=args.warmup, repeats=args.repeats)
    result = {"model": args.model or args.base, "twist": list(model.twist.as_tuple()), **lat.as_dict()}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


__all__ = ["frontier_report", "Latency", "measure_latency", "sweep_num_classes", "trial_latency_options", "TRIAL_LATENCY_ENV", "time_forward", "summarize", "trial_latency", "sweep_latency",
           "model_from_config", "TRIAL_LATENCY"]
