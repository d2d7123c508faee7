"""The decisive experiments: does "shallower wins" survive longer training, on held-out images?

The committed Imagenette study (``rubik reproduce --preset imagenette``) trained every model for 5
epochs at base 64 px. This module lays out the experiments that test its two headline results
where they could flip, as *one* resumable sweep (``rubik.sweep``), so one command creates them and
any number of worker processes train them::

    rubik study init runs/study --preset imagenette_long --data /data/imagenette
    rubik study cache runs/study --workers 16          # decode the tensor caches once, in parallel
    rubik sweep run runs/study --device cuda --processes 12   # 12 trials at once on one GPU
    rubik study report runs/study                       # tables and figures (see ``summarize``)

The design (the preset's ``study`` mapping; every number below is a parameter):

* **Schedule sensitivity.** The three families of claim 2 at two FLOPs levels (``levels``: 2 and 4,
  i.e. c = 0.25 and 0.0625): the inversed giant formula at the FLOPs-matched phi, the released
  TinyNet r and d with w solved, and our tiny formula fitted on the committed 5-epoch sweep. Their
  dials are read from the committed tiny-vs-giant sweep (``families_from``), so these are exactly
  the models claim 2 compared. Each is trained for ``epochs`` (5, 10, 20) x ``seeds`` (0, 1, 2),
  cosine to 0 over each run; EfficientNet-B0 at ``b0_epochs`` (20) x ``b0_seeds`` (0, 1) says how
  far the short schedules are from converged.
* **Controlled dial ladders at fixed FLOPs** (the FLOPs of the giant model of ``ladder_level``,
  c ~ 0.25). Depth: ``depth_ladder_blocks`` (7, 10, 13, 16 blocks) at ``depth_ladder_r`` (0.8), w
  solved; resolution: ``resolution_ladder_r`` (0.6 .. 1.2) at ``resolution_ladder_blocks`` (10), w
  solved; ``ladder_seeds`` x ``ladder_epochs``. The rung both ladders share is one trial.

Every trial row carries its own ``epochs`` and ``seed`` (``rubik.sweep.trial_config`` merges them
into the template), and every record its per-image val outcomes, so ``load_results`` scores it on
the ``select`` and ``test`` halves of ``rubik.data.val_split``; the claims are read on ``test``.

Depth in blocks: EfficientNet-B0 has 16 blocks in 7 stages (1, 2, 2, 3, 3, 4, 1) and a twisted
stage keeps ``max(1, round(n * d))`` of its ``n``, so no depth has fewer than 7 blocks and every
``d`` below ``depth_floor(...)`` (~0.375) builds the same 7-block network (``total_blocks``,
``depth_for_blocks``).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rubik.models.arch import depth_floor, depth_for_blocks, total_blocks  # noqa: F401  (study API)
from rubik.reproduce import REPO_ROOT
from rubik.sweep import training_cost

#: the schedule families, in the order tables and plots show them (legend labels: rubik.tiny_vs_giant.TVG_LABELS)
FAMILIES = ("giant", "tiny", "ours")
#: the sweep columns a study trial has beyond ``rubik.sampling``'s
DESIGN_COLUMNS = ("id", "experiment", "kind", "family", "level", "name", "epochs", "seed", "base", "base_resolution",
                  "r", "d", "w", "blocks", "resolution", "params", "flops", "flops_ratio", "depth_ladder",
                  "resolution_ladder", "arch")


# ----------------------------------------------------------------------------- the design

def _read_families(path, levels) -> pd.DataFrame:
    path = Path(path)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if path.is_dir():
        path = path / "sweep.json"
    if not path.is_file():
        raise ValueError(f"study families_from: {path} not found (the committed tiny-vs-giant sweep.json)")
    trials = pd.DataFrame(json.loads(path.read_text())["trials"])
    trials["level"] = trials["id"].str.extract(r"_m(\d+)$")[0].astype(int)
    trials["family"] = trials["id"].str.extract(r"^(\w+?)_m")[0]
    missing = sorted(set(int(x) for x in levels) - set(trials["level"]))
    if missing:
        raise ValueError(f"study levels {missing} are not in {path} (have {sorted(trials['level'].unique())})")
    return trials[trials["level"].isin([int(x) for x in levels]) & trials["family"].isin(FAMILIES)]


def _describe(base, r, d, w, *, base_resolution, num_classes, f0):
    from rubik.cube import Twist
    from rubik.models import Arch
    from rubik.sampling import arch_columns

    arch = Arch(base, Twist(r, d, w), base_resolution)
    cols = arch_columns(arch, num_classes=num_classes, base_flops=f0)
    return dict(r=float(r), d=float(d), w=float(w), blocks=arch.blocks,
                **{k: cols[k] for k in ("resolution", "params", "flops", "flops_ratio", "arch")})


def study_design(study: dict, *, base: str = "efficientnet_b0", base_resolution: int = 64,
                 num_classes: int = 10) -> pd.DataFrame:
    """The trials of the decisive experiments (``rubik.sweep.init_sweep`` samples), one row per
    (model, epochs, seed); see the module docstring for ``study``'s keys. Ordered seed by seed (a
    sweep stopped early still has every model and schedule with the first seeds), and within a
    seed by training cost (FLOPs x epochs), largest first, so parallel workers finish together."""
    from rubik.flops import analytic_flops

    f0 = analytic_flops(base, (1.0, 1.0, 1.0), num_classes=num_classes, base_resolution=base_resolution)
    kw = dict(base_resolution=base_resolution, num_classes=num_classes, f0=f0)
    rows = []
    part_of = []   # the index of the ``parts`` entry each row came from (the queue's priority)

    def add(model: dict, *, experiment, kind, family, level, name, epochs, seeds, tag, part=0, **flags):
        for e in ([epochs] if np.isscalar(epochs) else epochs):
            for s in seeds:
                part_of.append(part)
                rows.append(dict(id=f"{tag}_e{int(e)}_s{int(s)}" if experiment != "ladder" else f"{tag}_s{int(s)}",
                                 experiment=experiment, kind=kind, family=family, level=level, name=name,
                                 epochs=int(e), seed=int(s), base=base, base_resolution=int(base_resolution),
                                 **model, depth_ladder=flags.get("depth", False),
                                 resolution_ladder=flags.get("resolution", False)))

    if study.get("parts"):
        _add_parts(study, add, base=base, kw=kw, num_classes=num_classes, base_resolution=base_resolution)
    else:
        _add_grid(study, add, base=base, kw=kw, num_classes=num_classes, base_resolution=base_resolution)
    df = pd.DataFrame(rows, columns=list(DESIGN_COLUMNS))
    if df["id"].duplicated().any():
        raise ValueError(f"study design: duplicate trial ids {df['id'][df['id'].duplicated()].tolist()}")
    cost = -training_cost(df["flops"], df["epochs"]).to_numpy(float)
    if study.get("parts"):
        # the parts are listed in priority order: within a seed, part by part, largest first in each
        order = np.lexsort((cost, np.asarray(part_of, int), df["seed"].to_numpy()))
    else:
        order = np.lexsort((cost, df["seed"].to_numpy()))
    return df.iloc[order].reset_index(drop=True)


def _ladder_target(study, fams, base, *, num_classes, base_resolution):
    """The FLOPs every ladder rung is solved for: the giant model's at ``ladder_level``."""
    from rubik.flops import analytic_flops

    giant = fams[(fams.family == "giant") & (fams.level == int(study["ladder_level"]))]
    if not len(giant):
        raise ValueError(f"study ladder_level {study['ladder_level']} is not among the levels read from "
                         f"{study['families_from']}")
    g = giant.iloc[0]
    return analytic_flops(base, (g.r, g.d, g.w), num_classes=num_classes, base_resolution=base_resolution)


def _add_rungs(rungs, add, base, target, kw, *, level, epochs, seeds, tag_epochs: bool, part: int = 0):
    """One ladder trial per rung ``(r, blocks) -> {"depth", "resolution"}``, w solved for ``target``."""
    from rubik.flops import solve_width

    for (r, b), which in sorted(rungs.items()):
        d = depth_for_blocks(base, b)
        try:
            w = solve_width(base, r, d, target, num_classes=kw["num_classes"], base_resolution=kw["base_resolution"])
        except ValueError as e:
            raise ValueError(f"ladder rung r={r:g}, {b} blocks: {e}") from None
        tag = f"ladder_r{r:.2f}_b{b:02d}" + (f"_e{int(epochs)}" if tag_epochs else "")
        add(_describe(base, r, d, w, **kw), experiment="ladder", kind="ladder", family="ladder",
            level=int(level), name=f"r={r:g}, {b} blocks", epochs=int(epochs),
            seeds=seeds, tag=tag, part=part, **{k: True for k in which})


def _add_grid(study, add, *, base, kw, num_classes, base_resolution):
    """The ``imagenette_long`` layout: every family x level x epochs x seed, B0, and both ladders at
    one schedule (ladder trial ids carry no epochs)."""
    fams = _read_families(study["families_from"], study["levels"])
    for _, t in fams.iterrows():
        model = _describe(base, t.r, t.d, t.w, **kw)
        add(model, experiment="schedule", kind=t.family, family=t.family, level=int(t.level), name=t.id,
            epochs=study["epochs"], seeds=study["seeds"], tag=t.id)
    if study.get("b0_epochs"):
        add(_describe(base, 1.0, 1.0, 1.0, **kw), experiment="schedule", kind="base", family="base",
            level=0, name="EfficientNet-B0", epochs=study["b0_epochs"], seeds=study["b0_seeds"], tag="b0")
    target = _ladder_target(study, fams, base, num_classes=num_classes, base_resolution=base_resolution)
    rungs = {}   # (r, blocks) -> which ladders
    for b in study.get("depth_ladder_blocks") or []:
        rungs.setdefault((float(study["depth_ladder_r"]), int(b)), set()).add("depth")
    for r in study.get("resolution_ladder_r") or []:
        rungs.setdefault((float(r), int(study["resolution_ladder_blocks"])), set()).add("resolution")
    _add_rungs(rungs, add, base, target, kw, level=study["ladder_level"], epochs=study["ladder_epochs"],
               seeds=study["ladder_seeds"], tag_epochs=False)


#: the keys one entry of a study's ``parts`` list may have
PART_KEYS = ("families", "levels", "b0", "depth_ladder_blocks", "resolution_ladder_r", "epochs", "seeds")


def _add_parts(study, add, *, base, kw, num_classes, base_resolution):
    """The ``parts`` layout (``imagenette_longer``): a list of cells, each ``{families, levels}``,
    ``{b0: true}`` or ``{depth_ladder_blocks}`` / ``{resolution_ladder_r}``, with its own ``epochs``
    and ``seeds``, so a study can add schedules and seeds to some cells only. The list is in
    priority order: the queue runs seed by seed, and within a seed part by part. Ladder trial ids
    carry their epochs (``ladder_r0.80_b07_e40_s0``)."""
    parts = study["parts"]
    if not isinstance(parts, list):
        raise ValueError(f"study parts: expected a list of mappings, got {type(parts).__name__}")
    all_levels = sorted({int(lv) for p in parts if isinstance(p, dict) for lv in (p.get("levels") or [])}
                        | {int(study["ladder_level"])})
    fams = _read_families(study["families_from"], all_levels)
    target = None
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise ValueError(f"study parts[{i}]: expected a mapping, got {part!r}")
        unknown = sorted(set(part) - set(PART_KEYS))
        if unknown:
            raise ValueError(f"study parts[{i}]: unknown key(s) {unknown}; known: {list(PART_KEYS)}")
        for key in ("epochs", "seeds"):
            if not part.get(key):
                raise ValueError(f"study parts[{i}]: needs a non-empty {key!r} list")
        epochs = [int(e) for e in (part["epochs"] if isinstance(part["epochs"], list) else [part["epochs"]])]
        if min(epochs) < 1:
            raise ValueError(f"study parts[{i}]: epochs must be >= 1, got {epochs}")
        seeds = [int(s) for s in part["seeds"]]
        if part.get("families"):
            wanted = [str(f) for f in part["families"]]
            bad = sorted(set(wanted) - set(FAMILIES))
            if bad:
                raise ValueError(f"study parts[{i}]: unknown families {bad}; known: {list(FAMILIES)}")
            levels = [int(lv) for lv in part.get("levels") or []]
            if not levels:
                raise ValueError(f"study parts[{i}]: families need 'levels'")
            sub = fams[fams.family.isin(wanted) & fams.level.isin(levels)]
            for _, t in sub.iterrows():
                add(_describe(base, t.r, t.d, t.w, **kw), experiment="schedule", kind=t.family, family=t.family,
                    level=int(t.level), name=t.id, epochs=epochs, seeds=seeds, tag=t.id, part=i)
        if part.get("b0"):
            add(_describe(base, 1.0, 1.0, 1.0, **kw), experiment="schedule", kind="base", family="base",
                level=0, name="EfficientNet-B0", epochs=epochs, seeds=seeds, tag="b0", part=i)
        rungs = {}
        for b in part.get("depth_ladder_blocks") or []:
            rungs.setdefault((float(study["depth_ladder_r"]), int(b)), set()).add("depth")
        for r in part.get("resolution_ladder_r") or []:
            rungs.setdefault((float(r), int(study["resolution_ladder_blocks"])), set()).add("resolution")
        if rungs:
            if target is None:
                target = _ladder_target(study, fams, base, num_classes=num_classes, base_resolution=base_resolution)
            for e in epochs:
                _add_rungs(rungs, add, base, target, kw, level=study["ladder_level"], epochs=e, seeds=seeds,
                           tag_epochs=True, part=i)


def design_cost(design: pd.DataFrame, train_images: int | None = None, batch_size: int | None = None) -> dict:
    """What the design costs: trials, trial-epochs, sum of FLOPs x epochs, and (with the number of
    training images) the training compute, 3 x FLOPs per image (forward + backward) x images x epochs,
    and (with the batch size) the optimizer steps of all trials together."""
    fe = float(training_cost(design["flops"], design["epochs"]).sum())
    out = {"trials": int(len(design)), "epochs": int(design["epochs"].sum()), "flops_x_epochs": fe}
    if train_images:
        out["train_flops"] = 3.0 * fe * int(train_images)
        if batch_size:
            out["steps"] = int(design["epochs"].sum()) * (int(train_images) // int(batch_size))
    return out


# ----------------------------------------------------------------------------- creating the sweep

def study_config(preset: str = "imagenette_long", data: str | None = None, overrides=None, run_dir=".") -> dict:
    """The preset's parameters with ``data`` resolved (``rubik.reproduce.load_preset``; a
    ``synthetic`` data set is generated in ``run_dir/data``)."""
    from rubik.reproduce import load_preset, parse_overrides, resolve_data

    ov = parse_overrides(overrides)
    study_ov = {k[len("study."):]: v for k, v in ov.items() if k.startswith("study.")}
    cfg = load_preset(preset, {k: v for k, v in ov.items() if not k.startswith("study.")})
    if not cfg.get("study"):
        raise ValueError(f"preset {cfg['preset']!r} has no 'study' mapping (use --preset imagenette_long)")
    unknown = sorted(set(study_ov) - set(cfg["study"]))
    if unknown:
        raise ValueError(f"unknown study parameter(s) {unknown}; known: {sorted(cfg['study'])}")
    cfg["study"] = {**cfg["study"], **study_ov}
    return resolve_data(cfg, data, Path(run_dir))


def init_study(sweep_dir, preset: str = "imagenette_long", *, data: str | None = None, overrides=None,
               force: bool = False):
    """Create the study's sweep in ``sweep_dir``: ``(path of sweep.json, design table, cost dict)``."""
    from rubik.data import count_classes
    from rubik.reproduce import template_from
    from rubik.sweep import init_sweep

    cfg = study_config(preset, data, overrides, run_dir=sweep_dir)
    num_classes = count_classes(cfg["data_dir"], cfg.get("manifest"))
    design = study_design(cfg["study"], base=cfg["base"], base_resolution=int(cfg["base_resolution"]),
                          num_classes=num_classes)
    template = template_from(cfg)
    meta = {"study": cfg["study"], "preset": cfg["preset"], "command": " ".join(sys.argv)}
    # long trials (the 80-epoch ones take about an hour on one CPU core) keep a checkpoint per epoch,
    # so a sweep killed with the session resumes each trial where it stopped
    path = init_sweep(sweep_dir, design, template, meta=meta, force=force,
                      trial_checkpoints=bool(cfg["study"].get("trial_checkpoints", False)))
    from rubik.data import DataConfig, dataset_samples

    try:
        n_train = len(dataset_samples(DataConfig(**{**vars(template.data)}), "train")[2])
    except Exception:  # the cost estimate is informative; a data problem shows up when training
        n_train = None
    from rubik.train import resolve_recipe

    batch = template.batch_size or resolve_recipe(template.recipe).batch_size
    return path, design, design_cost(design, n_train, batch)


def prepare_caches(sweep_dir, workers: int = 8, progress: bool = True) -> list[int]:
    """Build the tensor caches (train and val) of every input size the sweep trains at, with
    ``workers`` decoding threads, so parallel trials don't each decode the data set on one
    thread at the start. Returns the sizes."""
    from rubik.data import DataConfig, tensor_cache
    from rubik.sweep import load_spec

    spec = load_spec(sweep_dir)
    data = DataConfig(**{**spec["template"]["data"], "workers": int(workers)})
    sizes = sorted({int(t["resolution"]) for t in spec["trials"]})
    for px in sizes:
        for split in ("train", "val"):
            tensor_cache(data, split, px, progress=progress)
        if progress:
            print(f"cached {data.name} train/val at {px} px")
    return sizes


# ----------------------------------------------------------------------------- reading the results

def _dirs(sweep_dirs) -> list:
    if isinstance(sweep_dirs, (str, Path)):
        return [sweep_dirs]
    return list(sweep_dirs)


def load_study(sweep_dirs, *, split_seed: int | None = None) -> pd.DataFrame:
    """The finished trials of one or more study sweeps (``rubik.sweep.load_results``:
    ``top1_select`` / ``top1_test`` from the per-image records), one table (column ``sweep``: which)."""
    from rubik.sweep import load_results

    parts = []
    for d in _dirs(sweep_dirs):
        df = load_results(d, split_seed=split_seed)
        if "experiment" not in df.columns:
            from rubik.errors import ConfigError

            raise ConfigError(f"{d} is a plain sweep, not a study (its trials have no 'experiment'; made by "
                              "`rubik study init`): use `rubik report` or `rubik sweep status` for it")
        parts.append(df[df["status"] == "done"].assign(sweep=str(d)))
    out = pd.concat(parts, ignore_index=True)
    if out["id"].duplicated().any():
        raise ValueError(f"study sweeps {_dirs(sweep_dirs)} share trial ids {sorted(out['id'][out['id'].duplicated()])}")
    return out


def schedule_table(results: pd.DataFrame, value: str = "top1_test") -> pd.DataFrame:
    """Per level, family and epochs: mean, std, n of ``value`` over seeds, px, blocks, MFLOPs, params."""
    d = results[results["experiment"] == "schedule"]
    out = d.groupby(["level", "family", "epochs"]).agg(
        mean=(value, "mean"), std=(value, "std"), n=(value, "count"), px=("resolution", "first"),
        blocks=("blocks", "first"), mflops=("flops", "first"), params=("params", "first")).reset_index()
    out["mflops"] /= 1e6
    out["params_m"] = out.pop("params") / 1e6
    return out


def schedule_gains(results: pd.DataFrame, value: str = "top1_test", reference: str = "giant") -> pd.DataFrame:
    """Paired by seed, per level and epochs: TinyNet dials - giant and our formula - giant, with the
    95 % t-interval (``rubik.report.paired_gains``); pooled rows per epochs over the levels."""
    from rubik.report import paired_gains

    d = results[(results["experiment"] == "schedule") & (results["family"] != "base")]
    parts = []
    for fam in ("tiny", "ours"):
        if fam not in set(d["family"]):
            continue
        both = d.groupby(["level", "epochs"])["family"].transform(lambda f: {fam, reference} <= set(f))
        per = paired_gains(d[both], fam, reference, value=value, by=("level", "epochs"))
        per = per[per["level"] != "all"]
        # pooled over the levels: each (level, seed) is one pair
        # a partly run study may have one family at some schedule only: pair where both are
        pooled = [paired_gains(sub, fam, reference, value=value, by=("epochs",), pair=("level", "seed"))
                  .assign(level="all") for _, sub in d.groupby("epochs") if {fam, reference} <= set(sub["family"])]
        parts.append(pd.concat([per] + pooled, ignore_index=True).assign(comparison=f"{fam} - {reference}"))
    out = pd.concat(parts, ignore_index=True)
    # With 2-3 seeds a cell's own t-interval is very wide (t = 4.3 at 2 degrees of freedom). The
    # seed noise of a paired difference is a property of the recipe, not of the cell, so pool it
    # over every cell of the same comparison (the usual ANOVA error term, assuming one noise level):
    # many more degrees of freedom, an interval that reflects the noise actually measured.
    pooled = []
    for _, g in out.groupby("comparison", sort=False):
        cells = g[g["level"] != "all"]
        lo, hi, sd, df = pooled_interval(g["mean"], g["n"], cells["std"], cells["n"])
        pooled.append(pd.DataFrame({"lo_pooled": lo, "hi_pooled": hi, "std_pooled": sd, "df_pooled": df},
                                   index=g.index))
    out = out.join(pd.concat(pooled))
    cols = ["comparison", "level", "epochs", "n", "mean", "std", "lo", "hi", "std_pooled", "df_pooled",
            "lo_pooled", "hi_pooled", "positive"]
    return out[cols]


def pooled_interval(means, ns, cell_stds, cell_ns, ci: float = 0.95):
    """t-intervals for ``means`` (each the mean of ``ns`` values) with one noise std pooled over the
    cells (``cell_stds`` with ``cell_ns`` values each): ``s_p^2 = sum((n_i - 1) s_i^2) / sum(n_i - 1)``
    on ``sum(n_i - 1)`` degrees of freedom; half-width ``t * s_p / sqrt(n)``. Returns arrays
    ``(lo, hi)`` and the scalars ``s_p`` and degrees of freedom (NaN intervals if no cell has 2 values)."""
    from scipy import stats

    means, ns = np.asarray(means, float), np.asarray(ns, float)
    s, k = np.asarray(cell_stds, float), np.asarray(cell_ns, float)
    ok = np.isfinite(s) & (k >= 2)
    df = float((k[ok] - 1).sum())
    if df < 1:
        nan = np.full(len(means), np.nan)
        return nan, nan, float("nan"), 0.0
    sp = float(np.sqrt(((k[ok] - 1) * s[ok] ** 2).sum() / df))
    half = stats.t.ppf(0.5 + ci / 2, df) * sp / np.sqrt(ns)
    return means - half, means + half, sp, df


def schedule_mcnemar(sweep_dir, results: pd.DataFrame, half: str = "test", reference: str = "giant") -> pd.DataFrame:
    """Image by image on one half of val (``rubik.report.mcnemar``): TinyNet dials and our formula
    against the giant, per level, epochs and seed (``only_a``: images the contender gets right and
    the giant wrong), plus a row per level and epochs with the counts summed over seeds (its p-value
    treats every image-seed pair as independent: descriptive, the seed-level t-interval of
    ``schedule_gains`` is the test)."""
    from rubik.data import val_split
    from rubik.report import mcnemar
    from rubik.sweep import load_correct

    bits = {}
    for sd in _dirs(sweep_dir):
        bits.update(load_correct(sd))
    d = results[(results["experiment"] == "schedule") & results["id"].isin(bits)]
    key = d.set_index(["family", "level", "epochs", "seed"])["id"]
    rows = []
    for fam in ("tiny", "ours"):
        for (level, epochs, seed), tid in key.get(fam, pd.Series(dtype=object)).items():
            ref = key.get((reference, level, epochs, seed))
            if ref is None:
                continue
            (a, labels), (b, _) = bits[tid], bits[ref]
            idx = val_split(labels)[half]
            rows.append(dict(comparison=f"{fam} - {reference}", level=level, epochs=epochs, seed=seed,
                             **mcnemar(a[idx], b[idx])))
    out = pd.DataFrame(rows)
    if not len(out):
        return out
    from scipy import stats

    summed = out.groupby(["comparison", "level", "epochs"])[["only_a", "only_b"]].sum().reset_index()
    summed["seed"] = "all"
    summed["p"] = [float(stats.binomtest(int(x), int(x + y), 0.5).pvalue) if x + y else 1.0
                   for x, y in zip(summed["only_a"], summed["only_b"])]
    return pd.concat([out, summed], ignore_index=True).sort_values(["comparison", "level", "epochs"],
                                                                  kind="stable", ignore_index=True)


def ladder_table(results: pd.DataFrame, value: str = "top1_test") -> pd.DataFrame:
    """Each rung of the two ladders: which ladder, r, blocks, w, px, MFLOPs, params, mean/std/n."""
    d = results[results["experiment"] == "ladder"]
    rows = []
    for flag, ladder in (("depth_ladder", "depth"), ("resolution_ladder", "resolution")):
        sub = d[d[flag].astype(bool)]
        for name, g in sub.groupby("name"):
            f = g.iloc[0]
            rows.append(dict(ladder=ladder, rung=name, r=f.r, blocks=int(f.blocks), w=f.w, px=int(f.resolution),
                             mflops=f.flops / 1e6, params_m=f.params / 1e6, epochs=int(f.epochs),
                             mean=g[value].mean(), std=g[value].std(), n=int(g[value].count())))
    out = pd.DataFrame(rows)
    if not len(out):
        return out
    # one seed-noise std pooled over the distinct rungs (the r = 0.8, 10-block rung is on both ladders:
    # count it once), as in ``schedule_gains``
    rungs = out.drop_duplicates("rung")
    lo, hi, sd, df = pooled_interval(out["mean"], out["n"], rungs["std"], rungs["n"])
    out = out.assign(std_pooled=sd, df_pooled=df, lo_pooled=lo, hi_pooled=hi)
    return out.sort_values(["ladder", "blocks", "r"], ignore_index=True)


def ladder_slopes(results: pd.DataFrame, value: str = "top1_test") -> pd.DataFrame:
    """Per ladder, the least-squares slope of ``value`` per doubling of its dial (blocks or r), over
    every trained model and seed, with the 95 % t-interval of the slope (no model: just the line)."""
    from scipy import stats

    d = results[results["experiment"] == "ladder"]
    rows = []
    for flag, ladder, x in (("depth_ladder", "depth", "blocks"), ("resolution_ladder", "resolution", "r")):
        sub = d[d[flag].astype(bool)].dropna(subset=[value])
        if sub[x].nunique() < 2:
            continue
        fit = stats.linregress(np.log2(sub[x].astype(float)), sub[value].astype(float))
        half = stats.t.ppf(0.975, len(sub) - 2) * fit.stderr if len(sub) > 2 else float("nan")
        rows.append(dict(ladder=ladder, per_doubling_of=x, slope=fit.slope, lo=fit.slope - half,
                         hi=fit.slope + half, n=len(sub)))
    return pd.DataFrame(rows)


def report(sweep_dir, *, value: str = "top1_test", out_dir=None, copy_figures_to=None, show=print,
           preregistered: bool = True) -> dict:
    """Tables and figures of one or more (finished or partly finished) study sweeps, read as one.

    Writes ``tables/`` (CSV + Markdown: study_schedule, study_gains, study_mcnemar, study_ladders,
    study_ladder_slopes, and with ``preregistered`` the plan's tables ``prereg_*`` from
    ``rubik.study_stats``: on all records and on the CPU-only ones, ``prereg_*_cpu``)
    and ``figures/`` (fig_study_schedule, fig_study_ladders, and with ladders at several schedules
    fig_study_depth_trend; PNG + PDF) under ``out_dir`` (default: the first sweep directory), copies
    the figures to ``copy_figures_to`` (e.g. the repository's ``figures/``), prints the tables with
    ``show`` and returns them."""
    import shutil

    import matplotlib.pyplot as plt

    from rubik.plots import plot_dial_ladders, plot_schedule_sensitivity, save_figure, save_table

    done = load_study(sweep_dir)
    if not len(done):
        raise ValueError(f"{sweep_dir}: no finished trial yet")
    if done[value].isna().all():
        raise ValueError(f"{sweep_dir}: no record has per-image outcomes, so there is no {value!r}; "
                         "use --value top1 (the whole val split)")
    out = Path(out_dir or _dirs(sweep_dir)[0])
    ladder_20 = done[~((done["experiment"] == "ladder") & (done["epochs"] != 20))]   # the v2 ladder tables: 20 epochs
    tables = {"study_schedule": schedule_table(done, value), "study_ladders": ladder_table(ladder_20, value),
              "study_ladder_slopes": ladder_slopes(ladder_20, value)}
    if {"tiny", "ours"} & set(done["family"]) and "giant" in set(done["family"]):
        tables["study_gains"] = schedule_gains(done, value)
        half = value.rsplit("_", 1)[-1] if value.endswith(("_select", "_test")) else None
        if half:
            tables["study_mcnemar"] = schedule_mcnemar(sweep_dir, done, half)
    for name, t in tables.items():
        if len(t):
            save_table(t, name, out / "tables")
            show(f"\n## {name} ({value})\n" + t.round({c: 3 for c in t.columns if c != "p"}).to_string(index=False))
    plan = None   # the plan's tables on all records (the depth-trend figure draws them)
    if preregistered and value in ("top1_test", "top1_select"):
        from rubik.study_stats import analyse

        half = value.rsplit("_", 1)[-1]
        for suffix, cpu_only in (("", False), ("_cpu", True)):
            tabs = analyse(_dirs(sweep_dir), half=half, cpu_only=cpu_only)
            for name in ("depth", "claim2"):
                tabs[name] = _undecided(tabs[name])
            for name in ("depth", "claim2", "trends", "resolution_rungs", "resolution_linearity", "b0", "pooled"):
                t = tabs[name]
                tables[f"prereg_{name}{suffix}"] = t
                if len(t):
                    save_table(t, f"prereg_{name}{suffix}", out / "tables")
            show(_plan_summary(tabs, f"pre-registered analysis on {half}"
                                     + (", CPU records only" if cpu_only else ", all records")))
            if not cpu_only:
                plan = tabs
    figures = []
    if (done["experiment"] == "schedule").any():
        fig = plot_schedule_sensitivity(done, y=value)
        figures += save_figure(fig, "fig_study_schedule", out / "figures")
        plt.close(fig)
    if plan is not None:
        from rubik.plots import plot_depth_trend

        fig = plot_depth_trend(plan["depth"], plan["trends"])
        figures += save_figure(fig, "fig_study_depth_trend", out / "figures")
        plt.close(fig)
    if (ladder_20["experiment"] == "ladder").any():
        lad = ladder_20[ladder_20["experiment"] == "ladder"]
        level, epochs = int(lad["level"].iloc[0]), int(lad["epochs"].iloc[0])
        refs = schedule_table(done, value)
        refs = refs[(refs["level"] == level) & (refs["epochs"] == epochs)]
        fig = plot_dial_ladders(ladder_20, y=value, references=refs if len(refs) else None)
        figures += save_figure(fig, "fig_study_ladders", out / "figures")
        plt.close(fig)
    if copy_figures_to is not None:
        dest = Path(copy_figures_to)
        dest.mkdir(parents=True, exist_ok=True)
        for f in figures:
            shutil.copy2(f, dest / f.name)
    show(f"\n{len(done)} finished trials; figures: {', '.join(str(f) for f in figures)}")
    return tables


def _undecided(t: pd.DataFrame) -> pd.DataFrame:
    """The plan's ``decision`` column, with "not yet measured" split in two: a cell with no record
    yet stays "not yet measured"; an estimate whose cells have records but fewer than 2 seeds
    somewhere (no own-seed or pooled interval, so no conservative p) is "not decidable yet (1 seed)".
    Wording only: the rule (``rubik.study_stats.decide``) is the plan's."""
    if "decision" not in t or "theta" not in t:
        return t
    t = t.copy()
    pending = (t["decision"] == "not yet measured") & np.isfinite(t["theta"].astype(float))
    t.loc[pending, "decision"] = "not decidable yet (1 seed)"
    return t


def _fmt(v, spec="+.2f") -> str:
    return format(v, spec) if v is not None and np.isfinite(v) else "n/a"


def _plan_summary(plan: dict, title: str) -> str:
    """The plan's numbers in a few lines: each estimand with its estimate, the three intervals, the
    conservative p, Holm p and decision; then the trend lines (and crossovers), the resolution
    ladder rung by rung with its lack-of-fit test, B0's 40 - 20 epochs and the pooled seed noise."""
    lines = [f"\n## {title} (95 %: own seeds | bootstrap | pooled; conservative = their union, p = the "
             "largest of the three; Holm over the measured cells of family D or G)"]
    for name in ("depth", "claim2", "resolution_rungs", "b0"):
        if name == "resolution_rungs":
            lines.append("resolution ladder rung by rung (10 blocks, 20 epochs), top-1 change per step:")
        for _, r in plan[name].iterrows():
            if not np.isfinite(r.get("theta", np.nan)):
                lines.append(f"{r['estimand']}: not measured yet (seeds {r['seeds']})")
                continue
            holm_p = r.get("holm_p", np.nan)
            lines.append(
                f"{r['estimand']}: {r['theta']:+.2f} [{_fmt(r['own_lo'])}, {_fmt(r['own_hi'])}] | "
                f"[{_fmt(r['boot_lo'])}, {_fmt(r['boot_hi'])}] | [{_fmt(r['pooled_lo'])}, {_fmt(r['pooled_hi'])}]; "
                + (f"conservative [{_fmt(r['cons_lo'])}, {_fmt(r['cons_hi'])}], " if np.isfinite(r["cons_lo"]) else "")
                + f"p {_fmt(r['cons_p'], '.3g')}" + (f", Holm {holm_p:.3g}" if np.isfinite(holm_p) else "")
                + (f" -> {r['decision']}" if isinstance(r.get("decision"), str) and r.get("decision") else "")
                + f" (seeds {r['seeds']})")
    lin = plan.get("resolution_linearity")
    if lin is not None and len(lin):
        r = lin.iloc[0]
        lines.append(f"resolution ladder, straight line in log2 r: lack-of-fit F {r['F']:.2f} on {r['df']} "
                     f"degrees of freedom, p {r['p']:.3g}")
    lines.append("trend lines theta(E) = alpha + beta log2 E (beta: per doubling of epochs, bootstrap 95 %; "
                 "crossover only where beta's interval excludes 0):")
    for _, r in plan["trends"].iterrows():
        if not np.isfinite(r.get("beta", np.nan)):
            lines.append(f"{r['series']}: fewer than 2 points")
            continue
        line = (f"{r['series']} ({r['epochs']} epochs): beta {r['beta']:+.2f} [{r['beta_lo']:+.2f}, "
                f"{r['beta_hi']:+.2f}], p {r['beta_p']:.3g}")
        if np.isfinite(r.get("crossover_epochs", np.nan)):
            line += (f"; crosses 0 at {r['crossover_epochs']:.0f} epochs "
                     f"[{r['crossover_lo']:.0f}, {r['crossover_hi']:.0f}]")
        lines.append(line)
    noise = ", ".join(f"{int(r['epochs'])} epochs {r['seed_std']:.2f} ({int(r['df'])} df)"
                      for _, r in plan["pooled"].iterrows())
    lines.append(f"pooled seed std of a cell's top-1: {noise}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="study_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("init", help="write DIR/sweep.json with the study's trials; then `rubik sweep run DIR`")
    p.add_argument("dir")
    p.add_argument("--preset", default="imagenette_long", help="a preset with a 'study' mapping")
    p.add_argument("--data", default=None, help="ImageFolder root (train/, val/); default the preset's / $RUBIK_DATA_DIR")
    p.add_argument("-p", "--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset parameter (YAML value), e.g. -p device=cuda, or one of the study's: "
                        "-p study.seeds=[0,1] -p study.epochs=[10,20]")
    p.add_argument("--force", action="store_true", help="overwrite a sweep.json that has no finished trials")
    p = sub.add_parser("cache", help="decode the data set once per input size the sweep needs (parallel)")
    p.add_argument("dir")
    p.add_argument("--workers", type=int, default=8, help="decoding threads (default 8)")
    p = sub.add_parser("report", help="tables and figures of the study (finished trials so far)")
    p.add_argument("dir", nargs="+", help="one or more study sweeps, read as one (e.g. imagenette_longer and "
                                          "imagenette_long: the plan's trend runs across both)")
    p.add_argument("--value", default="top1_test",
                   help="score: top1_test (held-out half, default), top1_select, or top1 (whole val split)")
    p.add_argument("--out", default=None, help="where tables/ and figures/ go (default DIR)")
    p.add_argument("--copy-figures-to", default=None, metavar="DIR", help="also copy the figures here, e.g. figures")


def _print_design(design: pd.DataFrame, cost: dict, path) -> None:
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        models = design.drop_duplicates("name")[["experiment", "name", "level", "r", "d", "blocks", "w",
                                                  "resolution", "params", "flops", "flops_ratio"]]
        print(models.sort_values(["experiment", "level", "name"]).to_string(index=False))
        print()
        print(design.groupby(["experiment", "family", "epochs"]).size().rename("trials").to_string())
    line = (f"\n{cost['trials']} trials ({cost['epochs']} trial-epochs), sum of FLOPs x epochs "
            f"{cost['flops_x_epochs'] / 1e9:.2f} GFLOPs")
    if "train_flops" in cost:
        line += f"; training compute ~{cost['train_flops'] / 1e15:.2f} PFLOPs (3 x FLOPs x images x epochs)"
    if "steps" in cost:
        line += f"; {cost['steps']:,} optimizer steps in all"
    print(line + f" -> {path}", flush=True)


def main(args) -> int:
    try:
        if args.study_command == "init":
            path, design, cost = init_study(args.dir, args.preset, data=args.data, overrides=args.params,
                                            force=args.force)
            _print_design(design, cost, path)
            from rubik.sweep import code_version

            version = code_version()
            if version.endswith("-dirty") or version.startswith("rubik-"):
                print(f"warning: code version {version!r} names no commit (uncommitted changes, or a copy without "
                      "git): commit first, or set RUBIK_CODE_VERSION=<commit the copy was made from> for "
                      "`rubik sweep run`", file=sys.stderr)
        elif args.study_command == "cache":
            prepare_caches(args.dir, workers=args.workers)
        elif args.study_command == "report":
            import matplotlib

            matplotlib.use("Agg")
            report(args.dir, value=args.value, out_dir=args.out, copy_figures_to=args.copy_figures_to)
        return 0
    except Exception as e:
        from rubik.data import DataError
        from rubik.reproduce import ReproduceError

        if isinstance(e, (ValueError, ReproduceError, DataError)):
            print(f"rubik study {args.study_command}: error: {e}", file=sys.stderr)
            return 2
        raise
