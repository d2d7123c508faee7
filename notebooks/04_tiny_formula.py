# ---
# jupyter:
#   kernelspec:
#     display_name: Python (rubik)
#     language: python
#     name: rubik
# ---

# %% [markdown]
# # 04 · The tiny formula
#
# Gaussian process regressions of *r* and of *d* against the FLOPs ratio *c* on the frontier models
# (`rubik.formula.TinyFormula`; kernel and its justification in the module docstring); the width
# then follows from the FLOPs constraint, solved against the real, rounded architecture. We derive
# TinyNet-like models at the FLOPs levels of the released TinyNet-A..E and compare them with the
# released TinyNets and the inversed giant formula.

# %% tags=["parameters"]
# parameters (rubik reproduce passes a preset's values; defaults: the cpu preset;
# run_dir None: runs/interactive at the repository root, or $RUBIK_RUN_DIR)
run_dir = None
preset = 'cpu'
base = 'efficientnet_b0'
base_resolution = 64
metric = 'top1'
formula_levels = None
formula_min_points = 4
data_dir = None
dataset = 'imagenette'
manifest = None

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
run.require('sweep/sweep.json', made_by='01_sampling and 02_sweep')
run

# %%
from rubik.data import count_classes
from rubik.formula import fit_formula
from rubik.paper import label_trials
from rubik.sweep import finished, load_results

done = finished(label_trials(load_results(run.path("sweep"))))
num_classes = count_classes(data_dir, manifest)
formula, points = fit_formula(done, metric=metric, min_points=formula_min_points, base=base,
                              base_resolution=base_resolution, num_classes=num_classes)
print(f"fitting on {len(points)} models (frontier layers {sorted(points.layer.unique())})")
# a GP hyperparameter at a bound is reported, not warned (rubik.formula's docstring says why the
# bounds are where they are): a length_scale at its 0.5 floor means the dial's frontier points
# change faster in log c than the smoothness floor lets the curve follow (the fit is as smooth as
# allowed, and the difference goes to the noise term); a constant at its floor means no trend in c
for dial, notes in formula.bounds_hit_.items():
    if notes:
        print(f"{dial}(c): {'; '.join(notes)}")
formula

# %%
from rubik.formula import formula_curve
from rubik.tiny_vs_giant import reference_dials

refs = reference_dials()  # TinyNet-A..E and B^-1..B^-4 (FLOPs ratios at 224 px)
c_lo = min(points.flops_ratio.min(), refs.c.min())
curve = formula_curve(formula, c_min=c_lo, c_max=1.0)
run.table(curve, "tiny_formula_curve", show=False)
run.figure(plots.plot_formula_fit(curve, points.rename(columns={"flops_ratio": "c"}), marks=refs,
                                  title=f"Tiny formula: GP fits of r(c), d(c) on {len(points)} frontier models; "
                                        "w from the FLOPs constraint"),
           "fig_tiny_formula_gpr")

# %% [markdown]
# ## TinyNet-like models from our formula
# At each FLOPs level of TinyNet-A..E (ratio of the released model's FLOPs to B0's, at 224 px), our
# formula's model, the released TinyNet and the inversed giant formula model. Params and FLOPs are at
# 224 px and 1000 classes so they compare with the paper.

# %%
from rubik.formula import derive_levels
from rubik.paper import TINYNETS, registry_table
from rubik.tiny_vs_giant import compare_families

reg = registry_table(list(TINYNETS))
levels = formula_levels or dict(zip(reg.name, reg.flops_ratio.clip(upper=1.0)))
family = derive_levels(formula, levels, base_resolution=224)  # costs at 224 px, as the paper
table = compare_families(family)
run.table(family.drop(columns=["train_kwargs"]), "tiny_formula_family", show=False)
run.table(table, "tiny_formula_vs_tinynet_vs_giant")

# %%
run.figure(plots.plot_frontier_dials(family[family.kind == "tiny"], label="our tiny formula",
                                     giant=refs[refs.family == "inversed giant formula"],
                                     tiny=refs[refs.family == "TinyNet (released)"],
                                     title="Dials of our tiny-formula models vs the released TinyNets and the giant formula (FLOPs at 224 px)"),
           "fig_tiny_formula_dials")
