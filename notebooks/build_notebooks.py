"""Generate the study notebooks (``NN_name.ipynb``) from the cell sources below.

    python notebooks/build_notebooks.py          # rewrite every notebook
    python notebooks/build_notebooks.py --check  # exit 1 if a committed notebook is stale

The notebooks are thin: each cell calls ``rubik`` (the computations) and
``rubik.plots`` (the figures). They are committed without outputs; ``rubik
reproduce`` executes them with papermill into ``runs/<preset>/``. The
``parameters`` cell's defaults are the ``cpu`` preset's values (so a notebook
opened by hand runs the default study); ``rubik reproduce`` overrides them.
Cell ids are stable (``<notebook>-<n>``) so regenerating gives clean diffs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from rubik.reproduce import KERNEL_DISPLAY_NAME, KERNEL_NAME, load_preset  # noqa: E402

DEFAULTS = load_preset("cpu")
DEFAULTS["run_dir"] = None  # opened by hand: runs/interactive at the repository root (rubik.reproduce.RunDir)

DATA = ["data_dir", "dataset", "train_per_class", "val_per_class", "manifest", "pipeline", "workers", "cache_dir"]
TRAIN = ["recipe", "epochs", "batch_size", "device", "threads", "processes"]
COMMON = ["run_dir", "preset"]

_SETUP = """\
%matplotlib inline
import warnings

import pandas as pd
from rubik import plots
from rubik import reproduce as R

warnings.filterwarnings("ignore", message="IProgress not found")  # text progress bars are fine
pd.set_option("display.max_columns", 30, "display.width", 160)
run = R.RunDir(run_dir){extra}
run"""


def setup(data: str | None = None, needs: tuple[str, str] | None = None) -> str:
    """The first cell after the parameters. ``data``: the ``required`` argument of
    ``R.find_data_dir`` (the data is looked up as the CLI does, or the cell stops with one line
    saying what to set); ``needs``: (path in the run dir, notebook that makes it)."""
    extra = ""
    if data is not None:
        extra += (f"\n# data_dir None: $RUBIK_DATA_DIR, else ../shared/datasets/imagenette beside the repository"
                  f"\ndata_dir = R.find_data_dir(data_dir, dataset, required={data})")
    if needs:
        extra += f"\nrun.require({needs[0]!r}, made_by={needs[1]!r})"
    return _SETUP.format(extra=extra)


def md(text):
    return ("markdown", text)


def code(text):
    return ("code", text)


# --------------------------------------------------------------------------- 01
NB01 = dict(
    params=COMMON + ["base", "base_resolution", "n_models", "sample_mode", "ranges", "seed"] + DATA + TRAIN,
    cells=[
        md("""# 01 · Random sampling of twisted models

The paper twists EfficientNet-B0's three dials — resolution *r*, depth *d*, width *w* — at random
and keeps 100 models with FLOPs no larger than the base (Figure 1). Here we draw `n_models` such
`(r, d, w)` (`rubik.sweep.sample_twists`: ranges, sampling mode and the 24 px floor are documented
there), add the references (the base and the inversed giant formula B^-1..B^-4), and describe the
sweep that notebook 02 trains (`rubik.sweep.init_sweep`)."""),
        code(setup(data="True")),
        code("""from rubik.data import count_classes
from rubik.paper import label_trials
from rubik.sweep import sample_twists

num_classes = count_classes(data_dir, manifest)
samples = sample_twists(n_models, base, seed=seed, mode=sample_mode, ranges=ranges,
                        base_resolution=base_resolution, num_classes=num_classes)
samples = label_trials(samples)
print(f"{len(samples)} models ({(samples.kind == 'random').sum()} random) of {base} at base "
      f"{base_resolution} px, {num_classes} classes")
samples.groupby("kind").size()"""),
        md("""## The (r, d, w) cloud and the FLOPs distribution
Each point is one sampled model, coloured by its FLOPs (multiply-accumulates at the proxy
resolution); the stars are the references."""),
        code("""random = samples[samples.kind == "random"]
refs = samples[samples.kind != "random"]
run.figure(plots.plot_sampling(random, references=refs), "fig_sampling_rdw")
base_flops = float(samples.loc[samples.kind == "base", "flops"].iloc[0]) if (samples.kind == "base").any() else None
run.figure(plots.plot_flops_histogram(random, reference_flops=base_flops), "fig_sampling_flops_hist")"""),
        code("""cols = ["id", "name", "kind", "r", "d", "w", "resolution", "repeats", "channels", "params", "flops", "flops_ratio"]
run.table(samples[cols], "sampled_models", show=False)
samples[cols].describe().T[["mean", "min", "max"]]"""),
        md("""## The sweep
Every sampled model is one trial of the same training recipe. The sweep directory is resumable:
re-running notebook 02 skips the trials already recorded."""),
        code("""template = R.train_template(data_dir=data_dir, dataset=dataset, train_per_class=train_per_class,
                            val_per_class=val_per_class, manifest=manifest, pipeline=pipeline, workers=workers,
                            recipe=recipe, epochs=epochs, batch_size=batch_size, seed=seed, device=device,
                            threads=threads, cache_dir=cache_dir)
sweep_dir = run.path("sweep")
R.init_sweep_dir(sweep_dir, samples.drop(columns=["name"]), template,
                 meta={"preset": preset, "n_models": n_models, "sample_mode": sample_mode})
print("sweep:", sweep_dir)
template"""),
    ],
)

# --------------------------------------------------------------------------- 02
NB02 = dict(
    params=COMMON + ["processes", "threads"],
    cells=[
        md("""# 02 · Train the sampled models (the sweep)

`rubik.launcher.run_sweep` trains every trial of `runs/<preset>/sweep` that has no record yet
(finished trials are loaded, so a killed run resumes), with a progress bar. On several machines
or GPUs, run `rubik sweep run DIR --processes N` (or torchrun / SLURM, see `rubik.sweep`) and
re-run this notebook to collect the results."""),
        code(setup(needs=("sweep/sweep.json", "01_sampling"))),
        code("""from rubik.launcher import run_sweep
from rubik.sweep import load_results, sweep_status

sweep_dir = run.path("sweep")
print("before:", sweep_status(sweep_dir))
results = run_sweep(sweep_dir, processes=processes, threads=threads, progress=True)
print("after: ", sweep_status(sweep_dir))"""),
        code("""from rubik.paper import label_trials
from rubik.sweep import finished

results = label_trials(results)
failed = results[results.status == "failed"]
if len(failed):
    print(f"{len(failed)} trial(s) failed:")
    display(failed[["id", "error"]])
done = finished(results)
print(f"{len(done)} finished trials; training time {done.time_s.sum() / 60:.1f} min "
      f"(mean {done.time_s.mean():.1f} s per trial, {done.images_per_s.mean():.0f} img/s)")"""),
        md("## Results"),
        code("""cols = [c for c in ["id", "name", "kind", "r", "d", "w", "resolution", "params", "flops", "flops_ratio",
                    "top1", "top5", "ema_top1", "best_top1", "time_s"] if c in results]
run.table(results.sort_values("flops")[cols + ["status"]], "sweep_results")"""),
        code("""from rubik.sweep import sweep_histories

hist = sweep_histories(sweep_dir)
if len(hist):
    run.figure(plots.plot_training_curves(hist, run="run", color_by=results.set_index("id").flops / 1e6),
               "fig_sweep_curves")"""),
    ],
)

# --------------------------------------------------------------------------- 03
NB03 = dict(
    params=COMMON + ["metric", "n_boot"],
    cells=[
        md("""# 03 · The frontier (paper Figures 1 and 3) and which dial matters

* **Figure 1**: accuracy against FLOPs of the random models (grey), the inversed giant formula
  B^-1..B^-4 (green) and the Pareto frontier of the random models (red: no other model has fewer
  FLOPs *and* higher accuracy), `rubik.frontier.pareto_frontier`.
* **Figure 3**: *r*, *d*, *w* of the frontier models against FLOPs.
* **Dial importance**: at matched FLOPs, does more of a dial buy accuracy?
  (`rubik.frontier.dial_importance`: slope per doubling and partial rank correlation, bootstrap
  intervals). The paper's finding: resolution and depth matter more than width."""),
        code(setup(needs=("sweep/sweep.json", "01_sampling and 02_sweep"))),
        code("""from rubik.frontier import dial_importance, pareto_frontier
from rubik.paper import label_trials
from rubik.sweep import finished, load_results

results = label_trials(load_results(run.path("sweep")))
done = finished(results)
frontier = pareto_frontier(done, x="flops", y=metric, dropna=True, kinds=("random",))  # as the paper: over the random models
giant = done[done.kind == "giant"]
print(f"{len(done)} models, {len(frontier)} on the frontier")"""),
        code("""run.figure(plots.plot_frontier(done[done.kind == "random"], frontier, giant=giant,
                               references=done[done.kind == "base"], y=metric,
                               title=f"Figure 1: accuracy vs FLOPs ({preset}: {len(done)} models)"),
           "fig1_frontier")"""),
        code("""from rubik.frontier import frontier_gap

cols = [c for c in ["id", "name", "kind", "r", "d", "w", "resolution", "flops", "flops_ratio", metric] if c in frontier]
run.table(frontier[cols], "frontier")
if len(giant):
    run.table(frontier_gap(frontier, giant, y=metric), "frontier_vs_giant")"""),
        code("""run.figure(plots.plot_frontier_dials(frontier, giant=giant,
                                     title="Figure 3: resolution, depth and width of the frontier models"),
           "fig3_frontier_dials")"""),
        md("""## Which dial matters at fixed FLOPs?
A positive slope means: among models of equal FLOPs, those with more of this dial are more
accurate. Bars show the bootstrap 95% interval; with few models they are wide."""),
        code("""try:
    imp = dial_importance(done, y=metric, x="flops", n_boot=n_boot, dropna=True)
except ValueError as e:  # too few models, or accuracies that do not vary (training too short)
    imp = None
    print(f"dial importance not computed: {e}")
if imp is not None:
    run.table(imp, "dial_importance")
    run.figure(plots.plot_dial_importance(imp), "fig_dial_importance")
run.figure(plots.plot_dial_scatter(done, y=metric), "fig_dial_scatter")"""),
    ],
)

# --------------------------------------------------------------------------- 04
NB04 = dict(
    params=COMMON + ["base", "base_resolution", "metric", "formula_levels", "formula_min_points", "data_dir", "dataset",
                     "manifest"],
    cells=[
        md("""# 04 · The tiny formula

Gaussian process regressions of *r* and of *d* against the FLOPs ratio *c* on the frontier models
(`rubik.formula.TinyFormula`; kernel and its justification in the module docstring); the width
then follows from the FLOPs constraint, solved against the real, rounded architecture. We derive
TinyNet-like models at the FLOPs levels of the released TinyNet-A..E and compare them with the
released TinyNets and the inversed giant formula."""),
        code(setup(data="True", needs=("sweep/sweep.json", "01_sampling and 02_sweep"))),
        code("""from rubik.data import count_classes
from rubik.formula import fit_formula
from rubik.paper import label_trials
from rubik.sweep import finished, load_results

done = finished(label_trials(load_results(run.path("sweep"))))
num_classes = count_classes(data_dir, manifest)
formula, points = fit_formula(done, metric=metric, min_points=formula_min_points, base=base,
                              base_resolution=base_resolution, num_classes=num_classes)
print(f"fitting on {len(points)} models (frontier layers {sorted(points.layer.unique())})")
formula"""),
        code("""from rubik.formula import formula_curve
from rubik.tiny_vs_giant import reference_dials

refs = reference_dials()  # TinyNet-A..E and B^-1..B^-4 (FLOPs ratios at 224 px)
c_lo = min(points.flops_ratio.min(), refs.c.min())
curve = formula_curve(formula, c_min=c_lo, c_max=1.0)
run.table(curve, "tiny_formula_curve", show=False)
run.figure(plots.plot_formula_fit(curve, points.rename(columns={"flops_ratio": "c"}), marks=refs,
                                  title=f"Tiny formula: GP fits of r(c), d(c) on {len(points)} frontier models; "
                                        "w from the FLOPs constraint"),
           "fig_tiny_formula_gpr")"""),
        md("""## TinyNet-like models from our formula
At each FLOPs level of TinyNet-A..E (ratio of the released model's FLOPs to B0's, at 224 px), our
formula's model, the released TinyNet and the inversed giant formula model. Params and FLOPs are at
224 px and 1000 classes so they compare with the paper."""),
        code("""from rubik.formula import derive_levels
from rubik.paper import TINYNETS, registry_table
from rubik.tiny_vs_giant import compare_families

reg = registry_table(list(TINYNETS))
levels = formula_levels or dict(zip(reg.name, reg.flops_ratio.clip(upper=1.0)))
family = derive_levels(formula, levels, base_resolution=224)  # costs at 224 px, as the paper
table = compare_families(family)
run.table(family.drop(columns=["train_kwargs"]), "tiny_formula_family", show=False)
run.table(table, "tiny_formula_vs_tinynet_vs_giant")"""),
        code("""run.figure(plots.plot_frontier_dials(family[family.kind == "tiny"], label="our tiny formula",
                                     giant=refs[refs.family == "inversed giant formula"],
                                     tiny=refs[refs.family == "TinyNet (released)"],
                                     title="Dials of our tiny-formula models vs the released TinyNets and the giant formula (FLOPs at 224 px)"),
           "fig_tiny_formula_dials")"""),
    ],
)

# --------------------------------------------------------------------------- 05
NB05 = dict(
    params=COMMON + ["base", "base_resolution", "tvg_phis", "tvg_tiny", "tvg_levels", "tvg_match_flops", "tvg_seeds",
                     "tvg_epochs", "epochs", "formula_min_points",
                     "metric", "seed"] + DATA + TRAIN,
    cells=[
        md("""# 05 · Tiny formula vs inversed giant formula at matching FLOPs

The paper's ImageNet-100 comparison: for each FLOPs level, the inversed giant formula model
B^phi (EfficientNet's compound scaling run backwards) against TinyNet-B..E (`tvg_tiny: released`,
levels phi = 1..4 as the paper's B^-1..B^-4), our own tiny-formula model at the same FLOPs
(`tvg_tiny: formula`) or both (`tvg_tiny: both`). A level's FLOPs ratio is the released
TinyNet's (`tvg_levels: tinynet`) or exactly c = 2^-phi (`tvg_levels: c`; the TinyNet contender
then keeps its r and d and solves w, as the paper's tiny formula does). With `tvg_match_flops` (default) the giant's phi is solved so that its
real, rounded architecture has the tiny model's FLOPs: the nominal phi = -k keeps far more than
1/2^k of the FLOPs (fixed stem and head). Several seeds; mean ± std. Each seed is a resumable
sweep under `tiny_vs_giant/seed<k>`."""),
        code(setup(data="True")),
        code("""import json

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
trials[["id", "name", "family", "level", "phi", "r", "d", "w", "resolution", "params", "flops", "flops_ratio"]]"""),
        code("""from rubik.tiny_vs_giant import run_seeded_sweeps

template = R.train_template(data_dir=data_dir, dataset=dataset, train_per_class=train_per_class,
                            val_per_class=val_per_class, manifest=manifest, pipeline=pipeline, workers=workers,
                            recipe=recipe, epochs=tvg_epochs or epochs, batch_size=batch_size, seed=seed,
                            device=device, threads=threads, cache_dir=cache_dir)
runs = run_seeded_sweeps(run.path("tiny_vs_giant"), trials.drop(columns=["name", "family", "level"]), template,
                         tvg_seeds, processes=processes, threads=threads)
runs = runs.merge(trials[["id", "name", "family", "level"]], on="id")
failed = runs[runs.status != "done"]
if len(failed):
    display(failed[["id", "seed", "status", "error"]])"""),
        code("""from rubik.tiny_vs_giant import summarize_tiny_vs_giant

summary = summarize_tiny_vs_giant(runs, metric=metric)
run.table(runs[["id", "name", "family", "level", "seed", "resolution", "flops", metric, "time_s"]], "tiny_vs_giant_runs", show=False)
run.table(summary, "tiny_vs_giant")"""),
        code("""from rubik.tiny_vs_giant import TVG_LABELS

run.figure(plots.plot_tiny_vs_giant(runs[runs.status == "done"].assign(
    family=lambda x: x.family.map(TVG_LABELS)), y=metric,
    title=f"Tiny vs giant at matching FLOPs ({len(tvg_seeds)} seed(s), base {base_resolution} px)"),
    "fig_tiny_vs_giant")"""),
    ],
)

# --------------------------------------------------------------------------- 06
NB06 = dict(
    params=COMMON + ["imagenet_dir", "checkpoints", "eval_per_class", "nproc_per_node", "device", "data_dir",
                     "dataset", "results_dir"],
    cells=[
        md("""# 06 · TinyNet, GhostNet and ResNet on ImageNet

Full-scale training is a GPU job (the paper: 450 epochs on 8 V100s for each TinyNet). This
notebook (1) writes the `torchrun` launch commands with the paper's recipes, (2) evaluates released
or trained checkpoints given in `checkpoints` (`{model: path}`; timm-format TinyNet weights load
directly), and (3) assembles the appendix comparison (GhostNet-A..D, TinyNet-A..E vs baselines)
from the paper's numbers and whatever results exist."""),
        code(setup(data="bool(checkpoints) and not imagenet_dir")),
        code("""from rubik.paper import TINYNETS, launch_commands

models = list(TINYNETS) + ["efficientnet_b0", "efficientnet_b0_giant_m4", "ghostnet_a", "ghostnet_100", "resnet50"]
cmds = launch_commands(models, data=imagenet_dir or "/path/to/imagenet", nproc_per_node=nproc_per_node)
script = run.path("imagenet_launch.sh")
script.write_text("#!/bin/sh\\n# ImageNet-1k training with the paper's recipes (resumable: --resume)\\nset -e\\n"
                  + "\\n".join(cmds.command) + "\\n")
print(f"launch script: {script}")
run.table(cmds, "imagenet_launch_commands")"""),
        md("""## Our models vs the paper's numbers (architecture check)
Dials, input size, parameters and FLOPs (analytic count at 1000 classes) of every registered model
next to the numbers printed in the paper / official READMEs."""),
        code("""from rubik.paper import registry_table

reg = registry_table()
reg["params_vs_paper_%"] = 100 * (reg.params / 1e6 / reg.paper_params_m - 1)
reg["flops_vs_paper_%"] = 100 * (reg.flops / 1e6 / reg.paper_flops_m - 1)
run.table(reg, "registry_vs_paper")"""),
        md("## Evaluation of checkpoints"),
        code("""from rubik.paper import evaluate_checkpoint

# ImageNet-1k val when imagenet_dir is set, else this run's data (smoke: a plumbing check)
root, ds = (imagenet_dir, "imagenet") if imagenet_dir else (data_dir, dataset)
evals = []
for name, path in (checkpoints or {}).items():
    print(f"evaluating {name} ({path}) on {root} ({ds}) ...")
    evals.append(evaluate_checkpoint(name, path, data_dir=root, dataset=ds, val_per_class=eval_per_class,
                                     device=device))
evals = pd.DataFrame(evals)
if len(evals):
    evals["dataset"] = ds
    run.table(evals, "imagenet_eval")
else:
    print("no checkpoints given: pass -p 'checkpoints={tinynet_a: /path/to/tinynet_a.pth}'")"""),
        md("""## Released weights: the authors' TinyNet-A..E and GhostNet 1.0x
`create_model(name, pretrained=True)` downloads the authors' release files once (torch.hub's cache;
offline, the error says where to put them by hand) and `rubik.validate` evaluates them with the
models' own eval transform (resize floor(size / 0.875) bicubic, centre crop). With `imagenet_dir`
set this runs on its `val/` split; without it, the table holds the paper's top-1 and the command
that checks it."""),
        code("""from rubik.models import create_model, get_model_spec
from rubik.models.pretrained import RELEASES
from rubik.train import resolve_device
from rubik.validate import validate

released = []
for name in RELEASES:
    spec = get_model_spec(name)
    row = {"model": name, "resolution": spec.resolution, "paper_top1": (spec.paper or {}).get("top1"),
           "command": f"rubik validate --model {name} --pretrained --data {imagenet_dir or '/path/to/imagenet'}"}
    if imagenet_dir:
        m = validate(create_model(name, pretrained=True), imagenet_dir, per_class=eval_per_class,
                     device=resolve_device(device))
        row.update(top1=m["top1"], top5=m["top5"], images=m["images"])
    released.append(row)
released = pd.DataFrame(released)
run.table(released, "released_weights")
if not imagenet_dir:
    print("no imagenet_dir: the paper's top-1 only; check them with the commands above on a machine with ImageNet")"""),
        md("""## Appendix comparison (Table 1): GhostNet-A..D and TinyNet-A..E vs baselines
Paper numbers, with our measured ImageNet top-1 where a result exists (this run's evaluations or
CSVs under `data/results/` with `dataset == imagenet`)."""),
        code("""from rubik.paper import measured_results, paper_comparison, paper_table

imnet = measured_results(results_dir, dataset="imagenet")
if len(evals) and ds == "imagenet":
    imnet = pd.concat([imnet, evals.assign(file="this run")], ignore_index=True)
t1 = paper_table("ghostnet_table1")
main = paper_comparison()
table = pd.concat([main[main.family.str.startswith(("TinyNet", "EfficientNet"))], t1], ignore_index=True)
table = table.drop_duplicates(subset=["model"]).sort_values("flops_m", ascending=False)
if len(imnet) and "name" in imnet:
    ours = imnet.groupby("name")["top1"].max()
    table["our_top1"] = table.model.map(ours)
run.table(table, "appendix_comparison")"""),
    ],
)

# --------------------------------------------------------------------------- 07
NB07 = dict(
    params=COMMON + ["results_dir"],
    cells=[
        md("""# 07 · The paper's comparison figures and tables

Regenerated from the numbers transcribed in `data/paper/*.csv` (each row names its source: the
paper, its appendix, the official READMEs), with our measured ImageNet points overlaid (orange
diamonds) where we have them. Nothing here is re-measured except the FLOPs/params check."""),
        code(setup()),
        code("""from rubik.paper import imagenet_overlay, measured_results

measured = measured_results(results_dir, dataset="imagenet")
this_run = run.tables / "imagenet_eval.csv"
if this_run.exists():
    evals = pd.read_csv(this_run)
    measured = pd.concat([measured, evals[evals.dataset.astype(str) == "imagenet"].assign(file="this run")],
                         ignore_index=True)
print(f"{len(measured)} measured ImageNet result(s) to overlay")
overlay = imagenet_overlay(measured)"""),
        md("""## TinyNet-A..E vs EfficientNet-B0, the inversed giant formula and the baselines
(the paper's main ImageNet comparison; baselines as printed in appendix Table 1)"""),
        code("""from rubik.paper import paper_comparison

main = paper_comparison()
run.table(main, "paper_tinynet_comparison")
run.figure(plots.plot_accuracy_vs_flops(main, group="family", label="model", highlight=["TinyNet (tiny formula)"],
                                        overlay=overlay,
                                        title="TinyNets vs other small models on ImageNet (paper numbers)"),
           "fig_paper_tinynet_imagenet")"""),
        md("## Appendix Figure 1 / Table 1: GhostNet shrunk by the tiny formula"),
        code("""from rubik.paper import paper_table

t1 = paper_table("ghostnet_table1")
run.table(t1, "paper_appendix_table1")
run.figure(plots.plot_accuracy_vs_flops(t1, group="family", label="model", highlight=["GhostNet (tiny formula)"],
                                        label_groups=["GhostNet (tiny formula)", "GhostNet (width)", "MobileNetV3", "EfficientNet"],
                                        overlay=overlay,
                                        title="Appendix Fig. 1: GhostNet-A..D (tiny formula) vs width-scaled GhostNets"),
           "fig_paper_appendix_ghostnet")"""),
        md("## Latency on a phone (Huawei P40, MindSpore Lite; official README)"),
        code("""from rubik.paper import paper_table

lat = paper_table("latency_p40")
run.table(lat, "paper_latency_p40")
run.figure(plots.plot_latency(lat), "fig_paper_latency_p40")"""),
        md("""## Our FLOPs and parameter counts vs the paper's
Analytic multiply-accumulates of convolutions and linear layers at each model's input size, 1000
classes (the paper's convention: multiply-accumulates of convolutions and linear layers)."""),
        code("""from rubik.paper import registry_table

reg = registry_table()
chk = reg.dropna(subset=["paper_flops_m"]).assign(label=lambda x: x.model)
chk["flops_diff_%"] = 100 * (chk.flops / 1e6 / chk.paper_flops_m - 1)
chk["params_diff_%"] = 100 * (chk.params / 1e6 / chk.paper_params_m - 1)
run.table(chk[["name", "model", "r", "d", "w", "resolution", "params", "paper_params_m", "params_diff_%",
               "flops", "paper_flops_m", "flops_diff_%"]], "flops_check")
run.figure(plots.plot_flops_check(chk, paper="paper_flops_m", ours="flops", label="label"), "fig_flops_check")"""),
    ],
)

# --------------------------------------------------------------------------- 08
NB08 = dict(
    params=COMMON + ["drnet_preset", "drnet_run", "drnet_results", "data_dir", "dataset"],
    cells=[
        md("""# 08 · DRNet: a per-image input resolution (issue 22)

DRNet (Zhu, Han et al., NeurIPS 2021) lets a small predictor pick one of a few input resolutions per
image; the classifier shares its weights across resolutions and keeps one BatchNorm set per resolution
(`rubik.drnet`). The experiment (`rubik drnet run DIR --preset imagenette`) trains, on the study's
c = 0.25 backbone, the backbone alone at each candidate resolution, the multi-resolution-BN classifier
(DRNet's stage 1) and DRNet's joint stage at several FLOPs targets, then evaluates each image at its
chosen resolution only. This notebook reports a finished experiment (default: the committed one); with
`drnet_run = True` it first runs (or resumes) the preset's experiment in the run directory."""),
        code(setup(data="drnet_run")),
        code("""from pathlib import Path

from IPython.display import Image, display
from rubik.drnet.experiment import load_preset, run_experiment
from rubik.drnet.report import write_report

if drnet_run:
    exp = run.path("drnet")
    run_experiment(load_preset(drnet_preset), str(data_dir), exp)
else:   # a finished experiment: the committed one unless drnet_results names another
    exp = Path(drnet_results) if drnet_results else R.REPO_ROOT / "data" / "results" / "imagenette" / "drnet"
report = write_report(exp, run.path("drnet_report"), data_root=data_dir if drnet_run else None)
report["files"]"""),
        md("""## Top-1 against mean FLOPs per image (test half)
Black: the backbone trained alone at each candidate; blue: the multi-resolution-BN classifier at each
candidate; red stars: DRNet (predictor included in the FLOPs); orange: the same classifier with DRNet's
choices shuffled over the images (same resolution mix, same mean FLOPs)."""),
        code("""run.table(pd.DataFrame(report["rows"]), "drnet_summary", floatfmt=".3g")
if "drnet_accuracy_flops.png" in report["files"]:
    display(Image(str(run.path("drnet_report", "drnet_accuracy_flops.png"))))"""),
        md("## Which resolution each image gets"),
        code("""for name in ("drnet_resolution_histogram.png", "drnet_examples.png"):
    if name in report["files"]:
        display(Image(str(run.path("drnet_report", name))))"""),
    ],
)

NOTEBOOKS = {
    "01_sampling": NB01,
    "02_sweep": NB02,
    "03_frontier": NB03,
    "04_tiny_formula": NB04,
    "05_tiny_vs_giant": NB05,
    "06_imagenet": NB06,
    "07_paper_figures": NB07,
    "08_drnet": NB08,
}


def _param_cell(names):
    lines = ["# parameters (rubik reproduce passes a preset's values; defaults: the cpu preset;",
             "# run_dir None: runs/interactive at the repository root, or $RUBIK_RUN_DIR)"]
    for n in dict.fromkeys(names):
        if n not in DEFAULTS:
            raise KeyError(f"parameter {n!r} is in no preset (add it to rubik/presets/_base.yaml)")
        lines.append(f"{n} = {DEFAULTS[n]!r}")
    return "\n".join(lines)


def build(name, spec) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME, "language": "python"},
        "language_info": {"name": "python"},
    }
    cells = [spec["cells"][0], ("code", _param_cell(spec["params"]))] + spec["cells"][1:]
    for i, (kind, src) in enumerate(cells):
        cell = nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        cell.id = f"{name.split('_')[0]}-{i:02d}"
        if i == 1:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if a notebook differs from its generated version")
    ap.add_argument("--out", default=str(HERE), help="output folder (default: notebooks/)")
    args = ap.parse_args(argv)
    stale = []
    for name, spec in NOTEBOOKS.items():
        text = nbformat.writes(build(name, spec)) + "\n"
        path = Path(args.out) / f"{name}.ipynb"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
            continue
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(f"stale notebooks (run python notebooks/build_notebooks.py): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
