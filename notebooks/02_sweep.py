# ---
# jupyter:
#   kernelspec:
#     display_name: Python (rubik)
#     language: python
#     name: rubik
# ---

# %% [markdown]
# # 02 · Train the sampled models (the sweep)
#
# `rubik.launcher.run_sweep` trains every trial of `runs/<preset>/sweep` that has no record yet
# (finished trials are loaded, so a killed run resumes), with a progress bar. On several machines
# or GPUs, run `rubik sweep run DIR --processes N` (or torchrun / SLURM, see `rubik.sweep`) and
# re-run this notebook to collect the results.

# %% tags=["parameters"]
# parameters (rubik reproduce passes a preset's values; defaults: the cpu preset;
# run_dir None: runs/interactive at the repository root, or $RUBIK_RUN_DIR)
run_dir = None
preset = 'cpu'
processes = 2   # None: one per GPU present (device cuda/auto), else 1
threads = 1

# %%
# %matplotlib inline
import warnings

import pandas as pd
from rubik import plots
from rubik import reproduce as R

warnings.filterwarnings("ignore", message="IProgress not found")  # text progress bars are fine
pd.set_option("display.max_columns", 30, "display.width", 160)
run = R.RunDir(run_dir)
run.require('sweep/sweep.json', made_by='01_sampling')
run

# %%
from rubik.launcher import run_sweep
from rubik.sweep import load_results, sweep_status

sweep_dir = run.path("sweep")
print("before:", sweep_status(sweep_dir))
results = run_sweep(sweep_dir, processes=processes, threads=threads, progress=True)
print("after: ", sweep_status(sweep_dir))

# %%
from rubik.paper import label_trials
from rubik.sweep import finished

results = label_trials(results)
failed = results[results.status == "failed"]
if len(failed):
    print(f"{len(failed)} trial(s) failed:")
    display(failed[["id", "error"]])
done = finished(results)
print(f"{len(done)} finished trials; training time {done.time_s.sum() / 60:.1f} min "
      f"(mean {done.time_s.mean():.1f} s per trial, {done.images_per_s.mean():.0f} img/s)")

# %% [markdown]
# ## Results

# %%
cols = [c for c in ["id", "name", "kind", "r", "d", "w", "resolution", "params", "flops", "flops_ratio",
                    "top1", "top5", "ema_top1", "best_top1", "time_s"] if c in results]
run.table(results.sort_values("flops")[cols + ["status"]], "sweep_results")

# %%
from rubik.sweep import sweep_histories

hist = sweep_histories(sweep_dir)
if len(hist):
    run.figure(plots.plot_training_curves(hist, run="run", color_by=results.set_index("id").flops / 1e6),
               "fig_sweep_curves")
