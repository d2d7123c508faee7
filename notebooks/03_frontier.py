# ---
# jupyter:
#   kernelspec:
#     display_name: Python (rubik)
#     language: python
#     name: rubik
# ---

# %% [markdown]
# # 03 · The frontier (paper Figures 1 and 3) and which dial matters
#
# * **Figure 1**: accuracy against FLOPs of the random models (grey), the inversed giant formula
#   B^-1..B^-4 (green) and the Pareto frontier of the random models (red: no other model has fewer
#   FLOPs *and* higher accuracy), `rubik.frontier.pareto_frontier`.
# * **Figure 3**: *r*, *d*, *w* of the frontier models against FLOPs.
# * **Dial importance**: at matched FLOPs, does more of a dial buy accuracy?
#   (`rubik.frontier.dial_importance`: slope per doubling and partial rank correlation, bootstrap
#   intervals). The paper's finding: resolution and depth matter more than width.

# %% tags=["parameters"]
# parameters (rubik reproduce passes a preset's values; defaults: the cpu preset;
# run_dir None: runs/interactive at the repository root, or $RUBIK_RUN_DIR)
run_dir = None
preset = 'cpu'
metric = 'top1'
n_boot = 500

# %%
# %matplotlib inline
import warnings

import pandas as pd
from rubik import plots
from rubik import reproduce as R

warnings.filterwarnings("ignore", message="IProgress not found")  # text progress bars are fine
pd.set_option("display.max_columns", 30, "display.width", 160)
run = R.RunDir(run_dir)
run.require('sweep/sweep.json', made_by='01_sampling and 02_sweep')
run

# %%
from rubik.frontier import dial_importance, pareto_frontier
from rubik.paper import label_trials
from rubik.sweep import finished, load_results

results = label_trials(load_results(run.path("sweep")))
done = finished(results)
frontier = pareto_frontier(done, x="flops", y=metric, dropna=True, kinds=("random",))  # as the paper: over the random models
giant = done[done.kind == "giant"]
print(f"{len(done)} models, {len(frontier)} on the frontier")

# %%
run.figure(plots.plot_frontier(done[done.kind == "random"], frontier, giant=giant,
                               references=done[done.kind == "base"], y=metric,
                               title=f"Figure 1: accuracy vs FLOPs ({preset}: {len(done)} models)"),
           "fig1_frontier")

# %%
from rubik.frontier import frontier_gap

cols = [c for c in ["id", "name", "kind", "r", "d", "w", "resolution", "flops", "flops_ratio", metric] if c in frontier]
run.table(frontier[cols], "frontier")
if len(giant):
    run.table(frontier_gap(frontier, giant, y=metric), "frontier_vs_giant")

# %%
run.figure(plots.plot_frontier_dials(frontier, giant=giant,
                                     title="Figure 3: resolution, depth and width of the frontier models"),
           "fig3_frontier_dials")

# %% [markdown]
# ## Which dial matters at fixed FLOPs?
# A positive slope means: among models of equal FLOPs, those with more of this dial are more
# accurate. Bars show the bootstrap 95% interval; with few models they are wide.

# %%
try:
    imp = dial_importance(done, y=metric, x="flops", n_boot=n_boot, dropna=True)
except ValueError as e:  # too few models, or accuracies that do not vary (training too short)
    imp = None
    print(f"dial importance not computed: {e}")
if imp is not None:
    run.table(imp, "dial_importance")
    run.figure(plots.plot_dial_importance(imp), "fig_dial_importance")
run.figure(plots.plot_dial_scatter(done, y=metric), "fig_dial_scatter")
