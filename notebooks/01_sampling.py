# ---
# jupyter:
#   kernelspec:
#     display_name: Python (rubik)
#     language: python
#     name: rubik
# ---

# %% [markdown]
# # 01 · Random sampling of twisted models
#
# The paper twists EfficientNet-B0's three dials — resolution *r*, depth *d*, width *w* — at random
# and keeps 100 models with FLOPs no larger than the base (Figure 1). Here we draw `n_models` such
# `(r, d, w)` (`rubik.sweep.sample_twists`: ranges, sampling mode and the 24 px floor are documented
# there), add the references (the base and the inversed giant formula B^-1..B^-4), and describe the
# sweep that notebook 02 trains (`rubik.sweep.init_sweep`).

# %% tags=["parameters"]
# parameters (rubik reproduce passes a preset's values; defaults: the cpu preset;
# run_dir None: runs/interactive at the repository root, or $RUBIK_RUN_DIR)
run_dir = None
preset = 'cpu'
base = 'efficientnet_b0'
base_resolution = 64
n_models = 28
sample_mode = 'stratified'
ranges = None
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
epochs = 3
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
from rubik.data import count_classes
from rubik.paper import label_trials
from rubik.sweep import sample_twists

num_classes = count_classes(data_dir, manifest)
samples = sample_twists(n_models, base, seed=seed, mode=sample_mode, ranges=ranges,
                        base_resolution=base_resolution, num_classes=num_classes)
samples = label_trials(samples)
print(f"{len(samples)} models ({(samples.kind == 'random').sum()} random) of {base} at base "
      f"{base_resolution} px, {num_classes} classes")
samples.groupby("kind").size()

# %% [markdown]
# ## The (r, d, w) cloud and the FLOPs distribution
# Each point is one sampled model, coloured by its FLOPs (multiply-accumulates at the proxy
# resolution); the stars are the references.

# %%
random = samples[samples.kind == "random"]
refs = samples[samples.kind != "random"]
run.figure(plots.plot_sampling(random, references=refs), "fig_sampling_rdw")
base_flops = float(samples.loc[samples.kind == "base", "flops"].iloc[0]) if (samples.kind == "base").any() else None
run.figure(plots.plot_flops_histogram(random, reference_flops=base_flops), "fig_sampling_flops_hist")

# %%
cols = ["id", "name", "kind", "r", "d", "w", "resolution", "repeats", "channels", "params", "flops", "flops_ratio"]
run.table(samples[cols], "sampled_models", show=False)
samples[cols].describe().T[["mean", "min", "max"]]

# %% [markdown]
# ## The sweep
# Every sampled model is one trial of the same training recipe. The sweep directory is resumable:
# re-running notebook 02 skips the trials already recorded.

# %%
template = R.template_from(globals())   # data, recipe, epochs, device... from the parameters above
sweep_dir = run.path("sweep")
R.init_sweep_dir(sweep_dir, samples.drop(columns=["name"]), template,
                 meta={"preset": preset, "n_models": n_models, "sample_mode": sample_mode},
                 trial_checkpoints=trial_checkpoints)   # the imagenet100 preset's: killed trials resume
print("sweep:", sweep_dir)
template
