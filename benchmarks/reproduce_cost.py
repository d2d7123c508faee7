"""Predict the wall time of ``rubik reproduce --preset NAME`` on a 2-core CPU, per notebook.

A cost model, not a measurement: it is how the ``cpu`` preset's budget was chosen on a machine too
busy to time the whole job. It predicted ~23 min; the timed run took 17.5 min
(``runs/reference/cpu/README.md``), so treat it as an upper estimate for sizing other budgets. Per trial (one process, one thread, channels_last):

    seconds = epochs x train images x t(model) + val images x t(model) x EVAL_FRACTION
              + (train + val images) x DECODE_MS   (every trial has its own resolution: its own cache)
              + TRIAL_OVERHEAD_S

with ``t(model) = a x MFLOPs + b x blocks + c`` ms per training image, a least-squares fit to the
fastest seed of each configuration in the committed CPU records of the Imagenette decisive study
(``data/results/imagenette_long/sweep/trials/*.json``: 1 thread per process, 2 processes,
channels_last, full training set, no EMA: a recipe with EMA costs more than predicted here). The trials of a sweep go to ``processes`` workers in spec order
(the next free worker takes the next trial); 05 runs one such sweep per seed. The other notebooks
and the kernel start-ups add NOTEBOOKS_OTHER_S (~1 min in the quiet clean rerun of the
previous preset, ``git show 97e0b70:runs/reference/cpu/timings.json``; 0.5 min in the current one).

    PYTHONPATH=. .venv/bin/python benchmarks/reproduce_cost.py                 # the cpu preset
    PYTHONPATH=. .venv/bin/python benchmarks/reproduce_cost.py --preset cpu -p n_models=32 -p epochs=3
"""
from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "data/results/imagenette_long/sweep/trials"
EVAL_FRACTION = 1 / 3     # a forward pass of an image costs about a third of a training step
DECODE_MS = 0.9           # JPEG decode + resize per image into the tensor cache (Imagenette-160, measured under load)
TRIAL_OVERHEAD_S = 1.0    # model build, latency probe, record (records: 0.7-1.4 s for cached small models)
NOTEBOOKS_OTHER_S = 90.0  # 01, 03, 04, 06, 07 and seven kernel start-ups
# images per class of Imagenette (v2, 160 px; `ls train/*/ | wc -l` in class order)
IMAGENETTE = {"train": [963, 955, 993, 858, 941, 956, 961, 931, 951, 960], "val": [387, 395, 357, 386, 409, 394, 389,
                                                                                  419, 399, 390]}


def blocks(repeats) -> int:
    return sum(int(x) for x in str(repeats).split(",") if x)


def fit_ms_per_image(pick=min, paths=None):
    """(a, b, c) of ``ms = a * MFLOPs + b * blocks + c`` and the number of configurations fitted.
    ``pick`` chooses among the seeds of a configuration: ``min`` (the fastest: the study's two
    workers with the least other load, our estimate of a quiet machine) or ``np.median``."""
    seeds = {}
    for f in paths or sorted(glob.glob(str(RECORDS / "*.json"))):
        r = json.load(open(f))
        if r.get("status") != "done":
            continue
        s, m = r["sample"], r["metrics"]
        seeds.setdefault((s["resolution"], s["r"], s["d"], s["w"]), []).append(
            (1000.0 / m["images_per_s"], s["flops"] / 1e6, s["blocks"]))
    y = np.array([pick([v[0] for v in runs]) for runs in seeds.values()])
    x = np.array([[runs[0][1], runs[0][2], 1.0] for runs in seeds.values()])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef, len(seeds)


def per_class(n, counts):
    return sum(counts) if n is None else sum(min(n, c) for c in counts)


def trial_seconds(flops, n_blocks, epochs, n_train, n_val, coef):
    ms = max(float(coef @ [flops / 1e6, n_blocks, 1.0]), 0.5)
    return (epochs * n_train * ms + n_val * ms * EVAL_FRACTION + (n_train + n_val) * DECODE_MS) / 1e3 + TRIAL_OVERHEAD_S


def schedule(seconds, processes):
    """Wall time when ``processes`` workers take the trials in order, each the next one when free."""
    free = [0.0] * processes
    for s in seconds:
        i = int(np.argmin(free))
        free[i] += s
    return max(free)


def main():
    from rubik.reproduce import load_preset
    from rubik.train import resolve_recipe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("-p", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    p = load_preset(args.preset, args.p)
    if p["tvg_tiny"] != "released":   # the formula's models are known only after notebook 04's fit
        ap.error("only tvg_tiny=released can be predicted")
    recipe = resolve_recipe(p["recipe"])
    epochs = p["epochs"] or recipe.epochs
    n_train = per_class(p["train_per_class"], IMAGENETTE["train"])
    n_val = per_class(p["val_per_class"], IMAGENETTE["val"])
    n_eval = int(np.ceil(epochs / recipe.eval_every)) if recipe.eval_every < epochs else 1
    print(f"{n_train} train images x {epochs} epochs, {n_val} val images x {n_eval} evaluation(s), "
          f"{p['processes']} processes")

    for label, pick in (("fastest seed (quiet)", min), ("median seed (loaded)", np.median)):
        coef, n_fit = fit_ms_per_image(pick)
        print(f"\n{label}: t(model) = {coef[0]:.3f} ms x MFLOPs + {coef[1]:.3f} ms x blocks {coef[2]:+.3f} ms "
              f"per training image (fit to {n_fit} configurations)")
        predict(p, coef, epochs, n_train, n_val * n_eval)


def predict(p, coef, epochs, n_train, n_val):
    from rubik.cube import Twist
    from rubik.tiny_vs_giant import tiny_vs_giant_trials
    from rubik.sampling import architecture
    from rubik.sweep import sample_twists

    s = sample_twists(p["n_models"], p["base"], seed=p["seed"], mode=p["sample_mode"], ranges=p["ranges"],
                      base_resolution=p["base_resolution"], num_classes=10)
    sec = [trial_seconds(f, blocks(r), epochs, n_train, n_val, coef) for f, r in zip(s.flops, s.repeats)]
    t02 = schedule(sec, p["processes"])
    print(f"02_sweep: {len(s)} trials, {sum(sec) / 60:.1f} worker-min, mean {np.mean(sec):.0f} s "
          f"(max {max(sec):.0f} s) -> {t02 / 60:.1f} min on {p['processes']} workers")

    tr = tiny_vs_giant_trials(p["tvg_phis"], tiny="released", match_flops=p["tvg_match_flops"], levels=p["tvg_levels"], base=p["base"],
                              base_resolution=p["base_resolution"], num_classes=10)
    tvg_epochs = p["tvg_epochs"] or epochs
    sec5 = [trial_seconds(f, blocks(architecture(p["base"], Twist(r, d, w))["repeats"]), tvg_epochs, n_train,
                          n_val, coef) for f, r, d, w in zip(tr.flops, tr.r, tr.d, tr.w)]
    t05 = len(p["tvg_seeds"]) * schedule(sec5, p["processes"])
    print(f"05_tiny_vs_giant: {len(tr)} trials x {len(p['tvg_seeds'])} seeds, {len(p['tvg_seeds']) * sum(sec5) / 60:.1f} "
          f"worker-min -> {t05 / 60:.1f} min")
    print(f"other notebooks: {NOTEBOOKS_OTHER_S / 60:.1f} min; total: {(t02 + t05 + NOTEBOOKS_OTHER_S) / 60:.1f} min")


if __name__ == "__main__":
    main()
