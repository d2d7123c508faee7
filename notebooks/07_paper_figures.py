# ---
# jupyter:
#   kernelspec:
#     display_name: Python (rubik)
#     language: python
#     name: rubik
# ---

# %% [markdown]
# # 07 · The paper's comparison figures and tables
#
# Regenerated from the numbers transcribed in `data/paper/*.csv` (each row names its source: the
# paper, its appendix, the official READMEs), with our measured ImageNet points overlaid (orange
# diamonds) where we have them. Nothing here is re-measured except the FLOPs/params check.

# %% tags=["parameters"]
# parameters (rubik reproduce passes a preset's values; defaults: the cpu preset;
# run_dir None: runs/interactive at the repository root, or $RUBIK_RUN_DIR)
run_dir = None
preset = 'cpu'
results_dir = None

# %%
# %matplotlib inline
import warnings

import pandas as pd
from rubik import plots
from rubik import reproduce as R

warnings.filterwarnings("ignore", message="IProgress not found")  # text progress bars are fine
pd.set_option("display.max_columns", 30, "display.width", 160)
run = R.RunDir(run_dir)
run

# %%
from rubik.paper import imagenet_overlay, measured_results

measured = measured_results(results_dir, dataset="imagenet")
this_run = run.tables / "imagenet_eval.csv"
if this_run.exists():
    evals = pd.read_csv(this_run)
    measured = pd.concat([measured, evals[evals.dataset.astype(str) == "imagenet"].assign(file="this run")],
                         ignore_index=True)
print(f"{len(measured)} measured ImageNet result(s) to overlay")
overlay = imagenet_overlay(measured)

# %% [markdown]
# ## TinyNet-A..E vs EfficientNet-B0, the inversed giant formula and the baselines
# (the paper's main ImageNet comparison; baselines as printed in appendix Table 1)

# %%
from rubik.paper import paper_comparison

main = paper_comparison()
run.table(main, "paper_tinynet_comparison")
run.figure(plots.plot_accuracy_vs_flops(main, group="family", label="model", highlight=["TinyNet (tiny formula)"],
                                        overlay=overlay,
                                        title="TinyNets vs other small models on ImageNet (paper numbers)"),
           "fig_paper_tinynet_imagenet")

# %% [markdown]
# ## Appendix Figure 1 / Table 1: GhostNet shrunk by the tiny formula

# %%
from rubik.paper import paper_table

t1 = paper_table("ghostnet_table1")
run.table(t1, "paper_appendix_table1")
run.figure(plots.plot_accuracy_vs_flops(t1, group="family", label="model", highlight=["GhostNet (tiny formula)"],
                                        label_groups=["GhostNet (tiny formula)", "GhostNet (width)", "MobileNetV3", "EfficientNet"],
                                        overlay=overlay,
                                        title="Appendix Fig. 1: GhostNet-A..D (tiny formula) vs width-scaled GhostNets"),
           "fig_paper_appendix_ghostnet")

# %% [markdown]
# ## Latency on a phone (Huawei P40, MindSpore Lite; official README)

# %%
from rubik.paper import paper_table

lat = paper_table("latency_p40")
run.table(lat, "paper_latency_p40")
run.figure(plots.plot_latency(lat), "fig_paper_latency_p40")

# %% [markdown]
# ## Our FLOPs and parameter counts vs the paper's
# Analytic multiply-accumulates of convolutions and linear layers at each model's input size, 1000
# classes (the paper's convention: multiply-accumulates of convolutions and linear layers).

# %%
from rubik.paper import registry_table

reg = registry_table()
chk = reg.dropna(subset=["paper_flops_m"]).assign(label=lambda x: x.model)
chk["flops_diff_%"] = 100 * (chk.flops / 1e6 / chk.paper_flops_m - 1)
chk["params_diff_%"] = 100 * (chk.params / 1e6 / chk.paper_params_m - 1)
run.table(chk[["name", "model", "r", "d", "w", "resolution", "params", "paper_params_m", "params_diff_%",
               "flops", "paper_flops_m", "flops_diff_%"]], "flops_check")
run.figure(plots.plot_flops_check(chk, paper="paper_flops_m", ours="flops", label="label"), "fig_flops_check")
