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

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rubik.models.arch import depth_floor, depth_for_blocks, total_blocks  # noqa: F401  (study API)
from rubik.cube import Twist
from rubik.models import Arch
from rubik.recipes import resolve_recipe
from rubik.reproduce import REPO_ROOT, ReproduceError, load_preset, parse_overrides, resolve_data, template_from
from rubik.sampling import arch_columns
from rubik.study_report import (ladder_slopes, ladder_table, load_study, pooled_interval, report,  # noqa: F401
                                schedule_gains, schedule_mcnemar, schedule_table)  # (re-exported: rubik.study's API)
from rubik.sweep import init_sweep, load_spec, training_cost

#: the schedule families, in the order tables and plots show them (legend labels: rubik.tiny_vs_giant.TVG_LABELS)
__all__ = ["FAMILIES", "study_design", "design_cost", "study_config", "init_study", "prepare_caches", "depth_floor",
           "depth_for_blocks", "total_blocks", "load_study", "schedule_table", "schedule_gains", "pooled_interval",
           "schedule_mcnemar", "ladder_table", "ladder_slopes", "report", "add_arguments", "main"]

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

    # a study at another base resolution names its cells apart (``cell_suffix: 128px`` -> "r=0.8, 7 blocks
    # @128px", ``ladder_r0.80_b07_e20_128px_s0``), so its records and the 64-px study's can be read as one
    suffix = study.get("cell_suffix")
    if suffix is not None and not (isinstance(suffix, str) and re.fullmatch(r"[A-Za-z0-9]+", suffix)):
        raise ValueError(f"study cell_suffix: expected letters and digits (e.g. 128px), got {suffix!r}")

    def add(model: dict, *, experiment, kind, family, level, name, epochs, seeds, tag, part=0, **flags):
        if suffix:
            name, tag = f"{name} @{suffix}", f"{tag}_{suffix}"
        for e in ([epochs] if np.isscalar(epochs) else epochs):
            for s in seeds:
                part_of.append(part)
                # a model may carry its own base (the GhostNet study's width-only peer is the original GhostNet)
                row = dict(id=f"{tag}_e{int(e)}_s{int(s)}" if experiment != "ladder" else f"{tag}_s{int(s)}",
                           experiment=experiment, kind=kind, family=family, level=level, name=name,
                           epochs=int(e), seed=int(s), base=base, base_resolution=int(base_resolution))
                row.update(model)
                rows.append(dict(row, depth_ladder=flags.get("depth", False),
                                 resolution_ladder=flags.get("resolution", False)))

    if study.get("parts"):
        _add_parts(study, add, base=base, kw=kw, num_classes=num_classes, base_resolution=base_resolution)
    else:
        _add_grid(study, add, base=base, kw=kw, num_classes=num_classes, base_resolution=base_resolution)
    if study.get("queue", "seeds") not in ("seeds", "parts"):
        raise ValueError(f"study queue: expected 'seeds' or 'parts', got {study.get('queue')!r}")
    df = pd.DataFrame(rows, columns=list(DESIGN_COLUMNS))
    if df["id"].duplicated().any():
        raise ValueError(f"study design: duplicate trial ids {df['id'][df['id'].duplicated()].tolist()}")
    cost = -training_cost(df["flops"], df["epochs"]).to_numpy(float)
    if study.get("parts") and study.get("queue", "seeds") == "parts":
        # ``queue: parts``: every seed of a part before the next part (a part that answers alone, such
        # as a ladder's two ends, is finished first); within a part seed by seed, largest first
        order = np.lexsort((cost, df["seed"].to_numpy(), np.asarray(part_of, int)))
    elif study.get("parts"):
        # the parts are listed in priority order: within a seed, part by part, largest first in each
        order = np.lexsort((cost, np.asarray(part_of, int), df["seed"].to_numpy()))
    else:
        order = np.lexsort((cost, df["seed"].to_numpy()))
    return df.iloc[order].reset_index(drop=True)


def _ladder_target(study, fams, base, *, num_classes, base_resolution):
    """The FLOPs every ladder rung is solved for: the giant model's at ``ladder_level``, or
    ``ladder_flops_ratio`` x the base's when the study sets it (the level-2 giant is c = 0.256 at
    base 64 px but 0.18 at base 128 px: its rounded input size costs relatively less there)."""
    from rubik.flops import analytic_flops

    if study.get("ladder_flops_ratio") is not None:
        c = float(study["ladder_flops_ratio"])
        if not 0 < c <= 1:
            raise ValueError(f"study ladder_flops_ratio: expected a FLOPs ratio in (0, 1], got {c}")
        return c * analytic_flops(base, (1.0, 1.0, 1.0), num_classes=num_classes, base_resolution=base_resolution)

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
PART_KEYS = ("families", "ghostnet", "resnet", "levels", "b0", "depth_ladder_blocks", "resolution_ladder_r", "epochs",
             "seeds")


def _add_parts(study, add, *, base, kw, num_classes, base_resolution):
    """The ``parts`` layout (``imagenette_longer``): a list of cells, each ``{families, levels}``,
    ``{b0: true}`` or ``{depth_ladder_blocks}`` / ``{resolution_ladder_r}``, with its own ``epochs``
    and ``seeds``, so a study can add schedules and seeds to some cells only. The list is in
    priority order: the queue runs seed by seed, and within a seed part by part. Ladder trial ids
    carry their epochs (``ladder_r0.80_b07_e40_s0``)."""
    parts = study["parts"]
    if not isinstance(parts, list):
        raise ValueError(f"study parts: expected a list of mappings, got {type(parts).__name__}")
    needs_families = any(isinstance(p, dict) and (p.get("families") or p.get("depth_ladder_blocks")
                                                  or p.get("resolution_ladder_r")) for p in parts)
    fams = None
    if needs_families:   # the EfficientNet-B0 families and ladders read the committed tiny-vs-giant sweep
        own = ("ghostnet", "resnet")   # part kinds with their own levels
        all_levels = sorted({int(lv) for p in parts if isinstance(p, dict) and not any(p.get(k) for k in own)
                             for lv in (p.get("levels") or [])} | {int(study["ladder_level"])})
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
        if part.get("ghostnet") or part.get("resnet"):
            kind = "ghostnet" if part.get("ghostnet") else "resnet"
            if part.get("families") or (part.get("ghostnet") and part.get("resnet")):
                raise ValueError(f"study parts[{i}]: '{kind}' and 'families' / 'ghostnet' / 'resnet' are kinds of "
                                 "part; use one per part")
            if kind == "ghostnet":
                from rubik.ghostnet_study import ghostnet_models as models
            else:
                from rubik.resnet_study import resnet_models as models

            for m in models(study, part, base=base, base_resolution=base_resolution,
                            num_classes=num_classes, where=f"study parts[{i}]"):
                add(m.pop("model"), experiment=kind, part=i, epochs=epochs, seeds=seeds, **m)
            continue
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


#: committed CPU records the core-hour projection is fitted on (``projected_core_hours``)
COST_FROM = "data/results/imagenette_long/sweep"


def cost_model(records=COST_FROM) -> dict:
    """Seconds per trial-epoch on one CPU core as ``a + b x MFLOPs``, least squares over the finished
    CPU records (one thread each) of a committed sweep: ``{"a", "b", "n", "source"}``; None without
    records. A B0-family fit: other families (GhostNet's ghost modules, ResNet's dense convolutions) run
    at other speeds per FLOP, so a projection for them is a scale, not a promise."""
    path = Path(records)
    path = path if path.is_absolute() else REPO_ROOT / path
    xs, ys = [], []
    for f in sorted((path / "trials").glob("*.json")):
        try:
            rec = json.loads(f.read_text())
            if rec.get("status") != "done" or "NVIDIA" in str(rec.get("device_name", "")) \
                    or int((rec.get("config") or {}).get("threads") or 1) != 1:
                continue
            xs.append(float(rec["sample"]["flops"]) / 1e6)
            ys.append(float(rec["time_s"]) / int(rec["sample"]["epochs"]))
        except (ValueError, KeyError, TypeError):
            continue
    if len(xs) < 3:
        return None
    b, a = np.polyfit(np.asarray(xs), np.asarray(ys), 1)
    return {"a": float(a), "b": float(b), "n": len(xs), "source": str(records)}


def projected_core_hours(design: pd.DataFrame, model: dict | None, mflop_scale: float = 1.0) -> float | None:
    """Core-hours of the design under ``cost_model``'s fit: sum over trials of epochs x (a + b x s x MFLOPs),
    ``s = mflop_scale`` the family's measured time per FLOP relative to the fit's (a study's ``cost_mflop_scale``:
    dense ResNet convolutions run ~4x faster per FLOP than B0's depth-wise ones on one core)."""
    if not model:
        return None
    per_epoch = model["a"] + model["b"] * float(mflop_scale) * design["flops"].to_numpy(float) / 1e6
    return float((design["epochs"].to_numpy(float) * per_epoch).sum() / 3600.0)


# ----------------------------------------------------------------------------- creating the sweep

def study_config(preset: str = "imagenette_long", data: str | None = None, overrides=None, run_dir=".") -> dict:
    """The preset's parameters with ``data`` resolved (``rubik.reproduce.load_preset``; a
    ``synthetic`` data set is generated in ``run_dir/data``)."""

    ov = parse_overrides(overrides)
    study_ov = {k[len("study."):]: v for k, v in ov.items() if k.startswith("study.")}
    cfg = load_preset(preset, {k: v for k, v in ov.items() if not k.startswith("study.")})
    if not cfg.get("study"):
        raise ValueError(f"preset {cfg['preset']!r} has no 'study' mapping (use --preset imagenette_long)")
    unknown = sorted(set(study_ov) - set(cfg["study"]))
    if unknown:
        raise ValueError(f"unknown study parameter(s) {unknown}; known: {sorted(cfg['study'])}")
    for key, value in study_ov.items():   # a list the design loops over: an empty one designs nothing
        old = cfg["study"][key]
        if isinstance(old, list) and old and all(isinstance(x, int) for x in old) and not (
                isinstance(value, list) and value and all(type(x) is int and x >= (not key.endswith("seeds")) for x in value)):
            least = "non-negative" if key.endswith("seeds") else "positive"
            raise ValueError(f"-p study.{key}={value!r}: expected a non-empty list of {least} integers, like {old}")
    cfg["study"] = {**cfg["study"], **study_ov}
    return resolve_data(cfg, data, Path(run_dir))


def init_study(sweep_dir, preset: str = "imagenette_long", *, data: str | None = None, overrides=None,
               force: bool = False):
    """Create the study's sweep in ``sweep_dir``: ``(path of sweep.json, design table, cost dict)``."""
    from rubik.data import count_classes

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

    batch = template.batch_size or resolve_recipe(template.recipe).batch_size
    cost = design_cost(design, n_train, batch)
    model = cost_model(cfg["study"].get("cost_from", COST_FROM))
    if model:
        scale = float(cfg["study"].get("cost_mflop_scale", 1.0))
        cost["core_hours"] = projected_core_hours(design, model, scale)
        cost["core_hours_model"] = {**model, "mflop_scale": scale}
    return path, design, cost


def prepare_caches(sweep_dir, workers: int = 8, progress: bool = True) -> list[int]:
    """Build the tensor caches (train and val) of every input size the sweep trains at, with
    ``workers`` decoding threads, so parallel trials don't each decode the data set on one
    thread at the start. Returns the sizes."""
    from rubik.data import DataConfig, tensor_cache

    spec = load_spec(sweep_dir)
    data = DataConfig(**{**spec["template"]["data"], "workers": int(workers)})
    sizes = sorted({int(t["resolution"]) for t in spec["trials"]})
    for px in sizes:
        for split in ("train", "val"):
            tensor_cache(data, split, px, progress=progress)
        if progress:
            print(f"cached {data.name} train/val at {px} px")
    return sizes


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="study_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("init", help="write DIR/sweep.json with the study's trials; then rubik sweep run DIR")
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
    if cost.get("core_hours") is not None:
        m = cost["core_hours_model"]
        print(f"estimated CPU cost: ~{cost['core_hours']:.1f} core-hours (~{cost['core_hours'] / 2:.1f} h on 2 cores), "
              f"from {m['n']} committed CPU records of {m['source']}: {m['a']:.1f} s + {m['b']:.2f} s per MFLOP per "
              "trial-epoch on one core (fitted on EfficientNet-B0-family trials; other families' speed per FLOP "
              "differs" + (f"; per-MFLOP time scaled by the study's cost_mflop_scale {m['mflop_scale']:g}"
                           if m.get("mflop_scale", 1.0) != 1.0 else "") + ")", flush=True)


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

        if isinstance(e, (ValueError, ReproduceError, DataError)):
            print(f"rubik study {args.study_command}: error: {e}", file=sys.stderr)
            return 2
        raise
