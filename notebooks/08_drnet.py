# ---
# jupyter:
#   kernelspec:
#     display_name: Python (rubik)
#     language: python
#     name: rubik
# ---

# %% [markdown]
# # 08 · DRNet: a per-image input resolution (issue 22)
#
# DRNet (Zhu, Han et al., NeurIPS 2021) lets a small predictor pick one of a few input resolutions per
# image; the classifier shares its weights across resolutions and keeps one BatchNorm set per resolution
# (`rubik.drnet`). The experiment (`rubik drnet run DIR --preset imagenette`) trains, on the study's
# c = 0.25 backbone, the backbone alone at each candidate resolution, the multi-resolution-BN classifier
# (DRNet's stage 1) and DRNet's joint stage at several FLOPs targets, then evaluates each image at its
# chosen resolution only. This notebook reports a finished experiment (default: the committed one); with
# `drnet_run = True` it first runs (or resumes) the preset's experiment in the run directory.

# %% tags=["parameters"]
# parameters (rubik reproduce passes a preset's values; defaults: the cpu preset;
# run_dir None: runs/interactive at the repository root, or $RUBIK_RUN_DIR)
run_dir = None
preset = 'cpu'
drnet_preset = 'imagenette'
drnet_run = False
drnet_results = None
data_dir = None
dataset = 'imagenette'

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
data_dir = R.find_data_dir(data_dir, dataset, required=drnet_run)
run

# %%
from pathlib import Path

from IPython.display import Image, display
from rubik.drnet.experiment import load_preset, run_experiment
from rubik.drnet.report import data_matches, load_evals, write_report

if drnet_run:
    exp = run.path("drnet")
    run_experiment(load_preset(drnet_preset), str(data_dir), exp)
else:   # a finished experiment: the committed one unless drnet_results names another
    exp = Path(drnet_results) if drnet_results else R.REPO_ROOT / "data" / "results" / "imagenette" / "drnet"
# the class names and the example-image grid need the experiment's own images: found ones that are not are left out
images = data_dir if data_matches(load_evals(exp), data_dir) else None
report = write_report(exp, run.path("drnet_report"), data_root=images)
report["files"]

# %% [markdown]
# ## Top-1 against mean FLOPs per image (test half)
# Black: the backbone trained alone at each candidate; blue: the multi-resolution-BN classifier at each
# candidate; red stars: DRNet (predictor included in the FLOPs); orange: the same classifier with DRNet's
# choices shuffled over the images (same resolution mix, same mean FLOPs).

# %%
run.table(pd.DataFrame(report["rows"]), "drnet_summary", floatfmt=".3g")
if "drnet_accuracy_flops.png" in report["files"]:
    display(Image(str(run.path("drnet_report", "drnet_accuracy_flops.png"))))

# %% [markdown]
# ## Which resolution each image gets

# %%
for name in ("drnet_resolution_histogram.png", "drnet_examples.png"):
    if name in report["files"]:
        display(Image(str(run.path("drnet_report", name))))

# %% [markdown]
# ## Across seeds: the registered analysis
# `data/results/imagenette/drnet/ANALYSIS.md` fixed this before seeds 1 and 2 trained: the primary is
# DRNet's gain over the fixed-resolution curve at equal FLOPs, averaged over the targets, one number per
# seed, with a Student-t interval over seeds; its decision words come from `rubik.drnet.report.decide`.

# %%
from IPython.display import Markdown

display(Markdown(run.path("drnet_report", "seeds.md").read_text()))
