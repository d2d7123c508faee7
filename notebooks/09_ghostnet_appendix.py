# ---
# jupyter:
#   kernelspec:
#     display_name: Python (rubik)
#     language: python
#     name: rubik
# ---

# %% [markdown]
# # 09 · The GhostNet appendix: GhostNet-B/C/D reconstructed, the study, the comparison (issue 33)
#
# The TinyNet appendix (Table 1) shrinks GhostNet-A (591M FLOPs) "by the tiny formula" into GhostNet-B/C/D and
# reports that they beat the original GhostNets, which change width only. The authors never released
# B/C/D's dials: **rubik's models are reconstructions** from the two numbers the appendix prints, params and
# FLOPs (`rubik.ghostnet_family`). This notebook shows the reconstruction (the candidates, the committed rule's
# choice and its residuals), the design of the `ghostnet_appendix` study (`rubik.study`), and, once the study
# has records, the pre-registered comparison (`rubik study report`, plan in
# `data/results/ghostnet_appendix/README.md`). It trains nothing: the study runs with
# `rubik study init` + `rubik sweep run`.

# %% tags=["parameters"]
# parameters (defaults: the cpu preset's; run_dir None: runs/interactive at the repository root, or
# $RUBIK_RUN_DIR; study_dir None: the committed data/results/ghostnet_appendix/sweep if it exists)
run_dir = None
preset = 'cpu'
study_dir = None

# %%
# %matplotlib inline
import pandas as pd
from rubik import reproduce as R
from rubik.ghostnet_family import peers, reconstruct_all, summary

run = R.RunDir(run_dir)   # tables go to its tables/, the study's report to ghostnet_appendix/
pd.set_option("display.max_columns", 30, "display.width", 160)
run

# %% [markdown]
# ## 1. The reconstruction
# For each level, every GhostNet-A (blocks, width step, px) whose real params and FLOPs are within 2 % of the
# appendix's is a candidate; the rule (fixed before any accuracy existed) takes the one nearest TinyNet's
# r(c), d(c) at the same FLOPs ratio. One row per level: the appendix's numbers, the formula's point, how many
# candidates there were, the choice and its residuals (`data/paper/ghostnet_reconstruction.csv`).

# %%
recs = reconstruct_all()
run.table(summary(recs).drop(columns=["source", "channels"]), "ghostnet_reconstruction")

# %% [markdown]
# The five candidates nearest the formula's point at each level (the first is the choice; `distance` 0: the
# formula's own dials build that network).

# %%
nearest = pd.concat([rec.ranked.head(5).assign(level=level) for level, rec in recs.items()], ignore_index=True)
run.table(nearest[["level", "blocks", "px", "r", "d", "w", "params", "flops", "params_resid", "flops_resid",
                   "distance", "rounds_to_paper"]], "ghostnet_reconstruction_nearest")

# %% [markdown]
# Their peers at each reconstruction's real FLOPs (paper scale: GhostNet-A at 240 px, 1000 classes): the
# inversed giant on GhostNet-A, the original GhostNet changing width only, GhostNet-A changing width only.

# %%
run.table(peers(), "ghostnet_peers")

# %% [markdown]
# ## 2. The study's design
# `rubik study init DIR --preset ghostnet_appendix --data ...` makes these trials: base GhostNet-A at 53 px,
# every model of a level at the reconstruction's real FLOPs there, 20 epochs x seeds 0, 1, 2, with the
# projected CPU cost.

# %%
from rubik.study import cost_model, design_cost, projected_core_hours, study_design

cfg = R.load_preset("ghostnet_appendix")
design = study_design(cfg["study"], base=cfg["base"], base_resolution=int(cfg["base_resolution"]), num_classes=10)
models = design.drop_duplicates("name")[["level", "family", "name", "base", "r", "d", "w", "blocks", "resolution",
                                         "params", "flops", "flops_ratio"]]
run.table(models.sort_values(["level", "family"], ignore_index=True), "ghostnet_study_design")
cost = design_cost(design)
hours = projected_core_hours(design, cost_model())
print(f"{cost['trials']} trials, {cost['epochs']} trial-epochs"
      + (f", ~{hours:.1f} core-hours projected (B0-family CPU fit)" if hours else ""))

# %% [markdown]
# ## 3. The comparison
# From a finished (or partly finished) study folder: the plan's estimands per level (A_width = recon - width,
# A_giant = recon - giant, A_ours = ours - giant, Holm over the 9; secondary S_dials, S_base, S_ours), each with
# its smallest detectable difference, and accuracy against FLOPs with the appendix's points beside it.

# %%
from pathlib import Path

from IPython.display import Image, display

sweep = Path(study_dir) if study_dir else R.REPO_ROOT / "data" / "results" / "ghostnet_appendix" / "sweep"
if not (sweep / "sweep.json").is_file():
    print(f"no records yet: {sweep} does not exist (run the study, then copy its records there or set study_dir)")
else:
    from rubik.study import report

    try:
        tables = report(sweep, out_dir=run.path("ghostnet_appendix"))
    except ValueError as e:   # a study with no finished trial yet
        print(f"no records yet: {e}")
    else:
        fig = run.path("ghostnet_appendix", "figures", "fig_study_ghostnet_flops.png")
        if fig.is_file():
            display(Image(str(fig)))
