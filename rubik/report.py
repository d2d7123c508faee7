"""The numbers REPORT.md quotes about a finished ``rubik reproduce`` run, and ``rubik report`` that prints them.

    rubik report data/results/imagenette --b0-runs runs/imagenette_study/budget/b0_e5_seed*

The statistics, as functions:

* ``t_interval``: mean, standard error and the t-interval of a sample (paired gains over seeds).
* ``mcnemar``: two models on the same images, image by image (per-image records).
* ``paired_gains``: a family's accuracy minus a reference family's, paired by seed, per level
  and pooled, with t-intervals.
* ``add_blocks`` / ``depth_floor_summary``: depth in blocks (what the network has), and where the
  depth floor binds (every d below ~0.375 builds B0's 7-block minimum).
* ``family_table``: per level and family, mean and std of top-1 over seeds, input px, FLOPs,
  parameters and a measured CPU latency.
* ``b0_seeds`` / ``spread_at_equal_flops``: one training's seed noise against the spread between
  the sweep's models at equal FLOPs; ``winners_curse``: the frontier's upward bias at the giant
  models' FLOPs; ``tiny_vs_giant_runs``: every seed's tiny-vs-giant records; ``released_vs_fitted``:
  the fitted r(c), d(c) against the released TinyNet dials; ``num_classes_of``: the head size
  a run's records were counted with.

``report(run_dir)`` prints them all, then the run's committed tables as they are. The dial analysis
(``rubik.frontier.joint_dial_effects``) and the winner's curse of the frontier
(``rubik.frontier.frontier_bias``) live with the frontier.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from rubik.config import upgrade_config
from rubik.errors import ConfigError, RunDirError
from rubik.frontier import frontier_bias, joint_dial_effects, pareto_frontier
from rubik.latency import measure_latency
from rubik.models import get_model_spec
from rubik.models.arch import depth_floor, total_blocks
from rubik.recipes import resolve_recipe
from rubik.sweep import finished, load_results, load_spec, trial_arch


def t_interval(values, ci: float = 0.95) -> tuple[float, float, float]:
    """``(mean, sem, half-width)`` of the ``ci`` t-interval of ``values`` (NaNs dropped; NaN sem and
    half-width with fewer than 2 values)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    if len(v) < 2:
        return float(v.mean()), float("nan"), float("nan")
    sem = float(v.std(ddof=1) / math.sqrt(len(v)))
    return float(v.mean()), sem, float(stats.t.ppf(0.5 + ci / 2, len(v) - 1) * sem)


def paired_gains(runs: pd.DataFrame, family: str, reference: str = "giant", *, value: str = "top1",
                 by=("level",), pair=("seed",), ci: float = 0.95) -> pd.DataFrame:
    """``family - reference`` in ``value``, paired on ``pair`` (same seed) within each group of ``by``
    (e.g. level, or level and epochs), plus a pooled row (``by`` columns "all"). Columns: the ``by``
    columns, ``n``, ``mean``, ``std``, ``lo``, ``hi`` (t-interval at ``ci``), ``positive`` (pairs > 0).
    """
    by, pair = list(by), list(pair)
    d = runs[runs["family"].isin([family, reference])]
    wide = d.pivot_table(index=by + pair, columns="family", values=value, aggfunc="mean")
    if family not in wide or reference not in wide:
        raise ValueError(f"paired_gains: need rows of families {family!r} and {reference!r}; have "
                         f"{sorted(runs['family'].unique())}")
    gains = (wide[family] - wide[reference]).dropna().rename("gain").reset_index()

    def row(g):
        mean, _, half = t_interval(g, ci)
        return dict(n=len(g), mean=mean, std=float(g.std(ddof=1)) if len(g) > 1 else float("nan"),
                    lo=mean - half, hi=mean + half, positive=int((g > 0).sum()))

    rows = [dict(zip(by, key if isinstance(key, tuple) else (key,)), **row(sub["gain"]))
            for key, sub in gains.groupby(by)]
    if len(rows) > 1:
        rows.append(dict({k: "all" for k in by}, **row(gains["gain"])))
    return pd.DataFrame(rows)


def add_blocks(df: pd.DataFrame, base: str = "efficientnet_b0") -> pd.DataFrame:
    """``df`` with a ``blocks`` column: the network's total blocks, from the sweep's ``repeats``
    column (blocks per stage) where it has one, else from ``d`` (``rubik.models.arch.total_blocks``)."""
    out = df.copy()
    if "repeats" in out and out["repeats"].notna().all() and (out["repeats"].astype(str) != "").all():
        out["blocks"] = [sum(int(x) for x in str(s).split(",")) for s in out["repeats"]]
    else:
        out["blocks"] = [total_blocks(base, float(d)) for d in out["d"]]
    return out


def depth_floor_summary(df: pd.DataFrame, frontier: pd.DataFrame | None = None,
                        base: str = "efficientnet_b0") -> dict:
    """Where the depth floor binds: the fewest blocks and the d below which every model has them,
    how many of ``df``'s models (and of the ``frontier``'s) sit there, and their d range."""
    n_min, d_max = depth_floor(base)
    d = add_blocks(df, base)
    at = d[d["blocks"] == n_min]
    out = {"floor_blocks": n_min, "floor_d_max": d_max, "models": len(d), "models_at_floor": len(at),
           "models_d_below_floor": int((d["d"] <= d_max).sum()),
           "d_range_at_floor": (float(at["d"].min()), float(at["d"].max())) if len(at) else None}
    if frontier is not None:
        f = add_blocks(frontier, base)
        out.update(frontier_models=len(f), frontier_at_floor=int((f["blocks"] == n_min).sum()),
                   frontier_blocks=sorted(int(b) for b in f["blocks"]))
    return out


def mcnemar(a, b) -> dict:
    """Exact McNemar test of two classifiers scored on the same images (boolean hit arrays): ``only_a``
    (a right, b wrong), ``only_b``, and the two-sided binomial p-value of ``only_a`` out of the
    discordant images under "equally good"."""
    from scipy import stats

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mcnemar: the two hit arrays differ in shape, {a.shape} vs {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = float(stats.binomtest(only_a, n, 0.5).pvalue) if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "p": p}


# ----------------------------------------------------------------------------- the families' table

def model_latency(arch, *, num_classes: int, repeats: int = 20) -> tuple[float, str]:
    """``(milliseconds, how)``: median forward time of one image of ``arch`` (a
    :class:`rubik.models.Arch`) on 1 CPU thread (``rubik.measure_latency``)."""
    model = arch.build(num_classes).eval()
    return float(measure_latency(model, threads=1, repeats=repeats).median_ms), "rubik.measure_latency"


def family_table(runs: pd.DataFrame, *, value: str = "top1", by=("level", "family"), latency: bool = False,
                 num_classes: int = 10, repeats: int = 20) -> pd.DataFrame:
    """Per group of ``by``: mean and std of ``value`` over seeds, n, input px, FLOPs (M), parameters
    (M), and with ``latency`` the median CPU forward time of one image (ms, 1 thread; see
    ``model_latency``; measured on the machine at hand, so compare within one table only)."""
    by = list(by)
    agg = runs.groupby(by).agg(mean=(value, "mean"), std=(value, "std"), n=(value, "count"),
                               px=("resolution", "first"), mflops=("flops", "first"), params=("params", "first"),
                               r=("r", "first"), d=("d", "first"), w=("w", "first"),
                               base=("base", "first"), base_resolution=("base_resolution", "first")).reset_index()
    agg["mflops"] = agg["mflops"] / 1e6
    agg["params_m"] = agg.pop("params") / 1e6
    if latency:
        # the architecture each group trained (its record's Arch: rules included), one model per group
        firsts = runs.groupby(by, sort=True).head(1).set_index(by).loc[agg.set_index(by).index]
        ms, how = zip(*(model_latency(trial_arch(row), num_classes=num_classes, repeats=repeats)
                        for row in firsts.reset_index().to_dict(orient="records")))
        agg["latency_ms"], agg["latency_how"] = ms, how
    return agg.drop(columns=["base", "base_resolution"])


# ----------------------------------------------------------------------------- seed noise vs spread

def b0_seeds(done: pd.DataFrame, runs=()) -> pd.DataFrame:
    """The base model trained at the sweep's budget with several seeds: the sweep's ``base`` trial
    (seed 0) and each of ``runs``, ``rubik train`` output folders (``config.json``, ``result.json``)
    trained with the sweep's recipe and epochs (ConfigError naming the folder and the first
    difference otherwise). Columns ``seed``, ``top1``, ``time_s``, ``source``."""
    rows = []
    base = done[done["id"] == "base"]
    if len(base):
        rows.append(dict(seed="0 (sweep base trial)", top1=float(base["top1"].iloc[0]),
                         time_s=float(base["time_s"].iloc[0]), source="sweep"))
    for d in map(Path, runs):
        cfg_file, res_file = d / "config.json", d / "result.json"
        for f in (cfg_file, res_file):
            if not f.is_file():
                raise ConfigError(f"--b0-runs {d}: no {f.name} (expected a finished `rubik train` run folder)")
        cfg, res = json.loads(cfg_file.read_text()), json.loads(res_file.read_text())
        rows.append(dict(seed=str(cfg.get("seed", "?")), top1=float(res["top1"]), time_s=float(res["train_time_s"]),
                         source=str(d), _config=cfg))
    out = pd.DataFrame(rows, columns=["seed", "top1", "time_s", "source", "_config"])
    return out


def check_same_budget(b0: pd.DataFrame, sweep_spec: dict) -> None:
    """Each extra B0 run of ``b0_seeds`` was trained as the sweep's trials were: the base model at the
    sweep's base resolution, the same recipe and epochs (ConfigError naming what differs). Both configs
    are read in today's layout (``rubik.config.upgrade_config``), whichever they were stored in."""
    tmpl = upgrade_config(sweep_spec.get("template") or {})
    base = next((t for t in sweep_spec.get("trials", []) if t.get("id") == "base"), None)
    want_arch = trial_arch(base).to_dict() if base is not None else tmpl.get("arch") or {}
    theirs = dataclasses.asdict(resolve_recipe(tmpl.get("recipe") or "proxy"))
    for _, row in b0[b0["_config"].notna()].iterrows():
        cfg, where = upgrade_config(row["_config"]), f"--b0-runs {row['source']}"
        arch = cfg.get("arch") or {}
        for key in ("base", "base_resolution"):
            if want_arch.get(key) is not None and arch.get(key) != want_arch.get(key):
                raise ConfigError(f"{where}: {key} {arch.get(key)!r}, the sweep's {want_arch.get(key)!r}: "
                                  "not the study's budget")
        if list(arch.get("twist") or [1.0, 1.0, 1.0]) != [1.0, 1.0, 1.0]:
            raise ConfigError(f"{where}: twist {arch.get('twist')!r}: not the base model")
        ours = dataclasses.asdict(resolve_recipe(cfg.get("recipe") or "proxy"))
        diff = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        if "epochs" in diff:
            raise ConfigError(f"{where}: epochs {ours['epochs']!r}, the sweep's {theirs['epochs']!r}: "
                              "not the study's budget")
        if diff:
            k = diff[0]
            raise ConfigError(f"{where}: recipe {k} {ours.get(k)!r}, the sweep's {theirs.get(k)!r}: "
                              f"not the study's budget")


def spread_at_equal_flops(models: pd.DataFrame, y: str = "top1") -> dict:
    """How far apart the models are: total std of ``y``, and the std left at equal FLOPs (residual
    of a straight line of ``y`` against log2 FLOPs, 2 dof used), with the line's slope per doubling."""
    x, v = np.log2(models["flops"].to_numpy(float)), models[y].to_numpy(float)
    slope, icpt = np.polyfit(x, v, 1)
    resid = v - (slope * x + icpt)
    return dict(n=len(v), min=float(v.min()), max=float(v.max()), std=float(v.std(ddof=1)),
                slope=float(slope), resid_std=float(resid.std(ddof=2)))


def winners_curse(done: pd.DataFrame, noise_std: float, *, n_rep: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The frontier of the random models at each giant model's FLOPs, its upward bias from re-noising
    the scores by ``noise_std`` (``rubik.frontier.frontier_bias``), and the giant's gap below it,
    raw and with the bias subtracted."""
    giant = done[done["kind"] == "giant"].sort_values("flops")
    wc = frontier_bias(done, giant["flops"].to_numpy(), noise_std=noise_std, n_rep=n_rep, seed=seed)
    wc.insert(0, "id", giant["id"].to_numpy())
    wc["giant_top1"] = giant["top1"].to_numpy()
    wc["gap"] = wc["frontier"] - wc["giant_top1"]
    wc["gap_corrected"] = wc["gap"] - wc["bias"]
    return wc


def tiny_vs_giant_runs(root) -> pd.DataFrame:
    """The finished tiny-vs-giant runs under ``root/seed<k>/``: one row per run with ``seed``, and
    ``level`` and ``family`` read from the trial id (``giant_m2``, ``tiny_m2``, ``ours_m2``)."""
    frames = [load_results(d).assign(seed=int(d.name[4:])) for d in sorted(Path(root).glob("seed*"))
              if d.name[4:].isdigit()]
    if not frames:
        return pd.DataFrame()
    runs = pd.concat(frames, ignore_index=True)
    runs = runs[runs["status"] == "done"].copy()
    runs["level"] = runs["id"].str.extract(r"_m(\d+)$")[0].astype(int)
    runs["family"] = runs["id"].str.extract(r"^(\w+?)_m")[0]
    return runs


def released_vs_fitted(family: pd.DataFrame) -> pd.DataFrame:
    """Claim 3: per TinyNet level of ``tiny_formula_family.csv``, the fitted r and d (GP mean +- std)
    against the released TinyNet's, the gap in predictive stds, the solved and released width and
    the blocks each depth builds."""
    rows = []
    for _, f in family[family["kind"] == "tiny"].iterrows():
        released = get_model_spec(f["name"]).twist
        row = {"model": f["name"], "c": f["target_c"]}
        for dial, value in (("r", released.resolution), ("d", released.depth)):
            gap = (value - f[dial]) / f[f"{dial}_std"]
            row |= {f"{dial} fitted": f"{f[dial]:.3f} +- {f[f'{dial}_std']:.3f}",
                    f"{dial} released": value, f"{dial} gap (std)": round(float(gap), 1)}
        row |= {"w solved": round(float(f["w"]), 3), "w released": released.width,
                "blocks fitted": total_blocks("efficientnet_b0", f["d"]),
                "blocks released": total_blocks("efficientnet_b0", released.depth)}
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the printed report

def require_run_dir(run_dir) -> Path:
    """``run_dir`` as a Path if it is a ``rubik reproduce`` output folder (it has ``sweep/sweep.json``),
    else a RunDirError saying what is missing."""
    run = Path(run_dir)
    if not run.is_dir():
        raise RunDirError(f"{run}: no such folder")
    if not (run / "sweep" / "sweep.json").is_file():
        hint = " (give the run folder, its parent)" if (run / "sweep.json").is_file() else ""
        raise RunDirError(f"{run}: no sweep records (expected {run / 'sweep' / 'sweep.json'}, as `rubik reproduce` "
                          f"writes){hint}")
    return run


TABLES = ("dial_importance", "frontier", "tiny_formula_vs_tinynet_vs_giant", "tiny_vs_giant")
"""The run's committed tables ``report`` prints as they are (``tables/<name>.csv``)."""


def _section(show, title):
    show(f"\n## {title}")


def report(run_dir, *, b0_runs=(), latency: bool = True, show=print) -> None:
    """Print every number REPORT.md quotes about the run in ``run_dir`` (a ``rubik reproduce`` output
    folder: ``sweep/``, optionally ``tiny_vs_giant/seed*/`` and ``tables/``), recomputed from its
    records: seed noise against the spread between models, depth in blocks, the joint dial effects,
    the winner's curse, the tiny-vs-giant gains, sizes and latencies, the fitted vs released dials.
    ``b0_runs``: extra seeds of the base model at the sweep's budget (``b0_seeds``). ``latency``:
    measure the tiny-vs-giant models' CPU latency (on this machine, now)."""
    run = require_run_dir(run_dir)
    res = load_results(run / "sweep")
    done = finished(res, run / "sweep")
    b0 = b0_seeds(done, b0_runs)
    check_same_budget(b0, load_spec(run / "sweep"))

    versions = sorted(done["code_version"].dropna().unique()) if "code_version" in done else "?"
    show(f"run: {run}\nsweep: {len(done)}/{len(res)} trials done, {int((res['status'] == 'failed').sum())} failed; "
         f"code versions: {versions}")

    _section(show, "B0 seed noise at the study budget")
    for row in b0.itertuples():
        show(f"seed {row.seed}: top-1 {row.top1:.2f}  ({row.time_s / 60:.1f} min)")
    b0_std = float(b0["top1"].std(ddof=1)) if len(b0) > 1 else float("nan")
    if len(b0):
        show(f"B0: mean {b0['top1'].mean():.2f}, std {b0_std:.2f} over {len(b0)} seeds")

    rnd = done[done["kind"] == "random"]
    if len(rnd) > 2:
        _section(show, "spread between the sweep's models")
        s = spread_at_equal_flops(rnd)
        show(f"{s['n']} random models: top-1 {s['min']:.1f}..{s['max']:.1f}, std {s['std']:.2f}; "
             f"{s['slope']:.2f} points per doubling of FLOPs; std at equal FLOPs (residual) {s['resid_std']:.2f}")
        if b0_std == b0_std:
            show(f"B0 seed std / residual std = {b0_std / s['resid_std']:.2f}")
        show(f"sweep time: {done['time_s'].sum() / 3600:.2f} core-hours ({len(done)} trials)")

        _section(show, "depth in blocks: where the floor binds")
        rnd = add_blocks(rnd)
        floor = depth_floor_summary(rnd, frontier=pareto_frontier(done, kinds=("random",)))
        show(f"B0 has 16 blocks; a twisted stage keeps max(1, round(n d)) of its n, so every d <= "
             f"{floor['floor_d_max']:.3f} builds the same {floor['floor_blocks']}-block network")
        lo, hi = floor["d_range_at_floor"] or (float("nan"), float("nan"))
        show(f"random models at the floor: {floor['models_at_floor']}/{floor['models']} (d sampled "
             f"{lo:.3f}..{hi:.3f}); frontier: {floor['frontier_at_floor']}/{floor['frontier_models']} at the floor, "
             f"blocks {floor['frontier_blocks']}")
        show(f"blocks of the random models: {rnd['blocks'].value_counts().sort_index().to_dict()}")

        _section(show, f"claim 1, jointly: top1 ~ log2 r + log2 depth + log2 FLOPs (width implied), {len(rnd)} random "
                       f"models, 95% bootstrap over models (1000)")
        for depth in ("d", "blocks"):
            j = joint_dial_effects(rnd, d_col=depth, n_boot=1000, seed=0)
            show(f"depth as {depth}: n {j.n[0]}, R2 {j.r2[0]:.3f}, residual std {j.resid_std[0]:.2f}, "
                 f"max VIF {j.max_vif[0]:.2f}")
            for row in j.itertuples():
                show(f"  {row.effect:>16}: {row.value:+.2f} [{row.lo:+.2f}, {row.hi:+.2f}]  {row.meaning}")

        if (done["kind"] == "giant").any() and b0_std == b0_std:
            _section(show, "winner's curse: the frontier at the giant models' FLOPs, re-noised by the B0 seed std "
                           "(interpolated in log FLOPs between frontier models)")
            wc = winners_curse(done, b0_std)
            show(wc.round(2).to_string(index=False))
            show(f"noise std {b0_std:.2f}; mean bias {wc.bias.mean():.2f}; gap {wc.gap.min():.1f}..{wc.gap.max():.1f} "
                 f"-> {wc.gap_corrected.min():.1f}..{wc.gap_corrected.max():.1f} after subtracting it")

    tvg = tiny_vs_giant_runs(run / "tiny_vs_giant")
    if len(tvg):
        _section(show, "tiny vs giant: seed noise of every model")
        per = tvg.groupby("id")["top1"].agg(["mean", "std", "count"])
        show(per.round(2).to_string())
        show(f"median per-model seed std: {per['std'].median():.2f}")

    for name in TABLES:
        f = run / "tables" / f"{name}.csv"
        if f.is_file():
            _section(show, f"table {name} ({f})")
            show(pd.read_csv(f).round(3).to_string(index=False))

    if len(tvg):
        _tiny_vs_giant_gains(tvg, show)
        _section(show, "tiny vs giant: parameters, blocks and CPU latency of each model (1 image, 1 thread, "
                       "median ms; measured now, on this machine)" if latency else
                       "tiny vs giant: parameters and blocks of each model")
        tab = add_blocks(family_table(tvg, latency=latency, num_classes=num_classes_of(tvg)))
        giant_params = tab["level"].map(tab[tab["family"] == "giant"].set_index("level")["params_m"])
        tab["params vs giant"] = tab["params_m"] / giant_params - 1
        show(tab.round(3).to_string(index=False))

    family_csv = run / "tables" / "tiny_formula_family.csv"
    if family_csv.is_file():
        _section(show, "claim 3: fitted r(c), d(c) (GP mean +- std) against the released TinyNet dials")
        show(released_vs_fitted(pd.read_csv(family_csv)).to_string(index=False))
        show("(gap: released minus fitted, in GP predictive standard deviations (the fitted noise included); "
             "|gap| > 2 means the released dial lies outside our fit's 95% predictive band)")


def num_classes_of(runs: pd.DataFrame) -> int:
    """The head size the records' parameter counts were made with, read from the first row's ``base``,
    ``r``, ``d``, ``w`` and ``params`` (params are affine in the number of classes; no dataset needed)."""
    t = runs.iloc[0]
    k = trial_arch(t.to_dict()).num_classes_from_params(float(t["params"]))
    if k is None:
        raise ValueError(f"num_classes_of: {t['params']} params fit no head size of {t['base']} at "
                         f"({t['r']}, {t['d']}, {t['w']})")
    return k


def _tiny_vs_giant_gains(tvg: pd.DataFrame, show) -> None:
    _section(show, "tiny vs giant: paired gains (same seed, same level), mean +- std over seeds, 95% t-interval")
    for fam in [f for f in ("tiny", "ours") if f in set(tvg["family"])]:
        gains = paired_gains(tvg, fam)
        for row in gains.itertuples():
            if row.n < 2:
                continue
            if row.level == "all":
                sem = row.std / math.sqrt(row.n)
                show(f"{fam:>4} - giant, all levels: {row.mean:+.2f} +- {sem:.2f} (sem; 95% CI "
                     f"{row.lo:+.2f}..{row.hi:+.2f}), {row.positive}/{row.n} pairs positive")
            else:
                show(f"{fam:>4} - giant, level {row.level}: {row.mean:+.2f} +- {row.std:.2f} "
                     f"(95% CI {row.lo:+.2f}..{row.hi:+.2f}, {row.n} seeds)")

    _section(show, "tiny vs giant: REPORT's table (top-1 mean +- std over seeds, input px)")
    agg = tvg.groupby(["level", "family"]).agg(top1=("top1", "mean"), std=("top1", "std"), n=("top1", "size"),
                                               px=("resolution", "first"), flops=("flops", "first"),
                                               c=("flops_ratio", "first"))
    fams = [f for f in ("giant", "tiny", "ours") if f in agg.index.get_level_values("family")]
    show("| level (c) | MFLOPs | " + " | ".join(fams) + " |")
    for level, sub in agg.groupby(level="level"):
        sub = sub.droplevel("level")
        best = sub["top1"].idxmax()
        cells = [f"{'**' if f == best else ''}{sub['top1'][f]:.2f}{'**' if f == best else ''} +- {sub['std'][f]:.2f} "
                 f"({sub['px'][f]}, n={sub['n'][f]})" for f in fams if f in sub.index]
        show(f"| {sub['c']['giant']:.3g} | {sub['flops']['giant'] / 1e6:.1f} | " + " | ".join(cells) + " |")


# ----------------------------------------------------------------------------- the command

def add_arguments(parser) -> None:
    parser.add_argument("results_dir", metavar="RESULTS_DIR",
                        help="a rubik reproduce output folder (sweep/, tiny_vs_giant/, tables/), e.g. "
                             "data/results/imagenette")
    parser.add_argument("--b0-runs", nargs="*", default=[], metavar="DIR",
                        help="rubik train folders of the base model at the sweep's budget with other seeds "
                             "(e.g. runs/imagenette_study/budget/b0_e5_seed*)")
    parser.add_argument("--no-latency", action="store_true",
                        help="skip measuring the tiny-vs-giant models' CPU latency")


def main(args) -> int:
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    report(args.results_dir, b0_runs=args.b0_runs, latency=not args.no_latency)
    return 0
