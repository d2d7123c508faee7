# ---
# jupyter:
#   kernelspec:
#     display_name: Python (rubik)
#     language: python
#     name: rubik
# ---

# %% [markdown]
# # 05 · Tiny formula vs inversed giant formula at matching FLOPs
#
# The paper's ImageNet-100 comparison: for each FLOPs level, the inversed giant formula model
# B^phi (EfficientNet's compound scaling run backwards) against TinyNet-B..E (`tvg_tiny: released`,
# levels phi = 1..4 as the paper's B^-1..B^-4), our own tiny-formula model at the same FLOPs
# (`tvg_tiny: formula`) or both (`tvg_tiny: both`). A level's FLOPs ratio is the released
# TinyNet's (`tvg_levels: tinynet`) or exactly c = 2^-phi (`tvg_levels: c`; the TinyNet contender
# then keeps its r and d and solves w, as the paper's tiny formula does). With `tvg_match_flops` (default) the giant's phi is solved so that its
# real, rounded architecture has the tiny model's FLOPs: the nominal phi = -k keeps far more than
# 1/2^k of the FLOPs (fixed stem and head). Several seeds; mean ± std. Each seed is a resumable
# sweep under `tiny_vs_giant/seed<k>`.

# %% tags=["parameters"]
# parameters (rubik reproduce passes a preset's values; defaults: the cpu preset;
# run_dir None: runs/interactive at the repository root, or $RUBIK_RUN_DIR)
run_dir = None
preset = 'cpu'
base = 'efficientnet_b0'
base_resolution = 64
tvg_phis = [1, 3]
tvg_tiny = 'released'
tvg_levels = 'tinynet'
tvg_match_flops = True
tvg_seeds = [0, 1, 2]
tvg_epochs = None
epochs = 3
formula_min_points = 4
metric = 'top1'
seed = 0
data_dir = None
dataset = 'imagenette'
train_per_class = 500
val_per_class = None
manifest = None
pipeline = 'tensor'
workers = 2
cache_dir = None
recipe = {'name': 'proxy', 'lr_per_1024': 0.008, 'warmup_epochs': 0.3, 'ema': False, 'eval_every': 1000}
batch_size = None
device = 'cpu'
threads = 1
processes = 2
trial_checkpoints = False

# %%
# %matplotlib inline
import warnings

import pandas as pd
from rubik import plots
from rubik import reproduce as R

warnings.filterwarnings("ignore", message="IProgress not found")  # text progress bars are fine
pd.set_option("display.max_columns", 30, "display.width", 160)
run = R.RunDir(run_dir)
# data_dir None: $RUBIK_DATA_DIR, else ../shared/datasets/imagenette beside the repository
data_dir = R.find_data_dir(data_dir, dataset, required=True)
run

# %%
import json

from rubik.data import count_classes
from rubik.formula import fit_formula
from rubik.sweep import finished, load_results
from rubik.tiny_vs_giant import tiny_vs_giant_trials

num_classes = count_classes(data_dir, manifest)
formula = None
if tvg_tiny in ("formula", "both"):   # the same fit as notebook 04's
    formula, _ = fit_formula(finished(load_results(run.path("sweep"))), metric=metric,
                             min_points=formula_min_points, base=base, base_resolution=base_resolution,
                             num_classes=num_classes)
trials = tiny_vs_giant_trials(tvg_phis, tiny=tvg_tiny, formula=formula, match_flops=tvg_match_flops,
                              levels=tvg_levels, base=base, base_resolution=base_resolution, num_classes=num_classes)
trials[["id", "name", "family", "level", "phi", "r", "d", "w", "resolution", "params", "flops", "flops_ratio"]]

# %%
from rubik.tiny_vs_giant import run_seeded_sweeps

template = R.template_from(globals(), epochs=tvg_epochs or epochs)
runs = run_seeded_sweeps(run.path("tiny_vs_giant"), trials.drop(columns=["name", "family", "level"]), template,
                         tvg_seeds, processes=processes, threads=threads,
                         trial_checkpoints=trial_checkpoints)
runs = runs.merge(trials[["id", "name", "family", "level"]], on="id")
failed = runs[runs.status != "done"]
if len(failed):
    display(failed[["id", "seed", "status", "error"]])

# %%
from rubik.tiny_vs_giant import summarize_tiny_vs_giant

summary = summarize_tiny_vs_giant(runs, metric=metric)
run.table(runs[["id", "name", "family", "level", "seed", "resolution", "flops", metric, "time_s"]], "tiny_vs_giant_runs", show=False)
run.table(summary, "tiny_vs_giant")

# %%
from rubik.tiny_vs_giant import TVG_LABELS

run.figure(plots.plot_tiny_vs_giant(runs[runs.status == "done"].assign(
    family=lambda x: x.family.map(TVG_LABELS)), y=metric,
    title=f"Tiny vs giant at matching FLOPs ({plots.seeds(len(tvg_seeds))}, base {base_resolution} px)"),
    "fig_tiny_vs_giant")
