"""Reading a study's records (``rubik study report``): one table of the finished trials of one or
more study sweeps, the schedule and ladder tables, the paired gains over the giant with their
intervals and McNemar tests, and the report that writes them with the figures and, by the
pre-registered plan (``rubik.study_stats``), the ``prereg_*`` tables. The design and the sweep's
creation are ``rubik.study``'s.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from rubik.errors import ConfigError
from rubik.heldout import val_split
from rubik.report import mcnemar, paired_gains
from rubik.sweep import load_correct, load_results

__all__ = ["load_study", "schedule_table", "schedule_gains", "pooled_interval", "schedule_mcnemar", "ladder_table",
           "ladder_slopes", "report"]


def _dirs(sweep_dirs) -> list:
    if isinstance(sweep_dirs, (str, Path)):
        return [sweep_dirs]
    return list(sweep_dirs)


def load_study(sweep_dirs, *, split_seed: int | None = None) -> pd.DataFrame:
    """The finished trials of one or more study sweeps (``rubik.sweep.load_results``:
    ``top1_select`` / ``top1_test`` from the per-image records), one table (column ``sweep``: which)."""

    parts = []
    for d in _dirs(sweep_dirs):
        df = load_results(d, split_seed=split_seed)
        if "experiment" not in df.columns:

            raise ConfigError(f"{d} is a plain sweep, not a study (its trials have no 'experiment'; made by "
                              "`rubik study init`): use `rubik report` or `rubik sweep status` for it")
        parts.append(df[df["status"] == "done"].assign(sweep=str(d)))
    out = pd.concat(parts, ignore_index=True)
    if out["id"].duplicated().any():
        raise ValueError(f"study sweeps {_dirs(sweep_dirs)} share trial ids {sorted(out['id'][out['id'].duplicated()])}")
    return out


def schedule_table(results: pd.DataFrame, value: str = "top1_test", experiment: str = "schedule") -> pd.DataFrame:
    """Per level, family and epochs: mean, std, n of ``value`` over seeds, px, blocks, MFLOPs, params
    (of ``experiment``'s trials: ``schedule``, or ``ghostnet`` / ``resnet`` for the other bases' studies)."""
    d = results[results["experiment"] == experiment]
    out = d.groupby(["level", "family", "epochs"]).agg(
        mean=(value, "mean"), std=(value, "std"), n=(value, "count"), px=("resolution", "first"),
        blocks=("blocks", "first"), mflops=("flops", "first"), params=("params", "first")).reset_index()
    out["mflops"] /= 1e6
    out["params_m"] = out.pop("params") / 1e6
    return out


def schedule_gains(results: pd.DataFrame, value: str = "top1_test", reference: str = "giant") -> pd.DataFrame:
    """Paired by seed, per level and epochs: TinyNet dials - giant and our formula - giant, with the
    95 % t-interval (``rubik.report.paired_gains``); pooled rows per epochs over the levels."""

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

    import matplotlib.pyplot as plt   # matplotlib, the plots and the plan's statistics (torch): when reporting

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
    for other in ("ghostnet", "resnet"):   # the other bases' studies (issue 33)
        tables[f"study_{other}"] = schedule_table(done, value, experiment=other)
    sched = done[done["experiment"] == "schedule"]
    if {"tiny", "ours"} & set(sched["family"]) and "giant" in set(sched["family"]):
        tables["study_gains"] = schedule_gains(done, value)
        half = value.rsplit("_", 1)[-1] if value.endswith(("_select", "_test")) else None
        if half:
            tables["study_mcnemar"] = schedule_mcnemar(sweep_dir, done, half)
    for name, t in tables.items():
        if len(t):
            save_table(t, name, out / "tables")
            show(f"\n## {name} ({value})\n" + t.round({c: 3 for c in t.columns if c != "p"}).to_string(index=False))
    plan = None   # the plan's tables on all records (the depth-trend figure draws them)
    b0_plan = done["experiment"].isin(["schedule", "ladder"]).any()
    if preregistered and value in ("top1_test", "top1_select") and done["experiment"].isin(["ghostnet", "resnet"]).any():
        _base_transfer_plan(sweep_dir, value, tables, out, show)
    if preregistered and value in ("top1_test", "top1_select") and b0_plan:
        from rubik.study_stats import analyse

        half = value.rsplit("_", 1)[-1]
        for suffix, cpu_only in (("", False), ("_cpu", True)):
            tabs = analyse(_dirs(sweep_dir), half=half, cpu_only=cpu_only)
            for name in ("depth", "claim2", "base128"):
                tabs[name] = _undecided(tabs[name])
            for name in ("depth", "claim2", "trends", "resolution_rungs", "resolution_linearity", "b0", "pooled",
                         "base128"):
                t = tabs[name]
                tables[f"prereg_{name}{suffix}"] = t
                if len(t):
                    save_table(t, f"prereg_{name}{suffix}", out / "tables")
            show(_plan_summary(tabs, f"pre-registered analysis on {half}"
                                     + (", CPU records only" if cpu_only else ", all records")))
            if not cpu_only:
                plan = tabs
                if len(tabs["depth"]) and tabs["depth"]["theta"].notna().sum() >= 3:
                    # exploratory (issue 34, after the plan): trend models, detectable differences, two-stage test
                    from rubik.study_explore import explore

                    for name, t in explore(_dirs(sweep_dir), half=half, plan=tabs).items():
                        tables[f"explore_{name}"] = t
                        if len(t):
                            save_table(t, f"explore_{name}", out / "tables")
                            show(f"\n## explore_{name} (exploratory: not in the plan)\n"
                                 + t.round(3).to_string(index=False))
                    plan["models"] = tables.get("explore_trend_models")
    figures = []
    if (done["experiment"] == "schedule").any():
        fig = plot_schedule_sensitivity(done, y=value)
        figures += save_figure(fig, "fig_study_schedule", out / "figures")
        plt.close(fig)
    if plan is not None and plan["depth"]["theta"].notna().any():   # a few records: no estimate to draw yet
        from rubik.plots import plot_depth_trend

        fig = plot_depth_trend(plan["depth"], plan["trends"])
        figures += save_figure(fig, "fig_study_depth_trend", out / "figures")
        plt.close(fig)
        if plan.get("models") is not None and len(plan["models"]):
            fig = plot_depth_trend(plan["depth"], plan["trends"], models=plan["models"],
                                   title="Depth at equal FLOPs: the plan's line and a saturating curve")
            figures += save_figure(fig, "fig_study_depth_models", out / "figures")
            plt.close(fig)
    if (ladder_20["experiment"] == "ladder").any():
        lad = ladder_20[ladder_20["experiment"] == "ladder"]
        level, epochs = int(lad["level"].iloc[0]), int(lad["epochs"].iloc[0])
        refs = schedule_table(done, value)
        refs = refs[(refs["level"] == level) & (refs["epochs"] == epochs)]
        fig = plot_dial_ladders(ladder_20, y=value, references=refs if len(refs) else None)
        figures += save_figure(fig, "fig_study_ladders", out / "figures")
        plt.close(fig)
    for other in ("ghostnet", "resnet"):
        if (done["experiment"] == other).any():
            from rubik.plots import plot_base_accuracy_flops

            fig = plot_base_accuracy_flops(done[done["experiment"] == other], y=value,
                                           paper=_appendix_points() if other == "ghostnet" else None)
            figures += save_figure(fig, f"fig_study_{other}_flops", out / "figures")
            plt.close(fig)
    if copy_figures_to is not None:
        dest = Path(copy_figures_to)
        dest.mkdir(parents=True, exist_ok=True)
        for f in figures:
            shutil.copy2(f, dest / f.name)
    show(f"\n{len(done)} finished trials; figures: {', '.join(str(f) for f in figures)}")
    return tables


def _base_transfer_plan(sweep_dir, value: str, tables: dict, out: Path, show) -> None:
    """The GhostNet / ResNet plans (``rubik.base_transfer_stats``) on all records and on the CPU-only
    ones: tables ``prereg_ghostnet``, ``prereg_resnet`` (+ ``_cpu``), saved and printed."""
    from rubik.base_transfer_stats import analyse_base_transfer
    from rubik.plots import save_table

    half = value.rsplit("_", 1)[-1]
    for suffix, cpu_only in (("", False), ("_cpu", True)):
        try:
            tabs = analyse_base_transfer(_dirs(sweep_dir), half=half, cpu_only=cpu_only)
        except ValueError:   # no CPU record yet
            continue
        for name in ("ghostnet", "resnet"):
            if name not in tabs:
                continue
            t = tables[f"prereg_{name}{suffix}"] = _undecided(tabs[name])
            save_table(t, f"prereg_{name}{suffix}", out / "tables")
            show(_base_summary(t, f"pre-registered {name} analysis on {half}"
                                  + (", CPU records only" if cpu_only else ", all records")))


def _appendix_points() -> pd.DataFrame | None:
    """The appendix's GhostNet points (Table 1, ReLU rows: GhostNet-A..D and the width-only 0.5x/1.0x/1.5x)
    as ``family`` (recon / width), ``model``, ``mflops``, ``top1`` (ImageNet); None without the CSV."""
    from rubik.reproduce import REPO_ROOT

    path = REPO_ROOT / "data" / "paper" / "ghostnet_table1.csv"
    if not path.is_file():
        return None
    t = pd.read_csv(path)
    t = t[t["family"].isin(["GhostNet (tiny formula)", "GhostNet (width)"])]
    return pd.DataFrame({"family": np.where(t["family"] == "GhostNet (width)", "width", "recon"),
                         "model": t["model"], "mflops": t["flops_m"].astype(float), "top1": t["top1"].astype(float)})


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


def _estimate_line(r) -> str:
    """One estimand of a plan's table: estimate, the three intervals, the conservative interval and p,
    Holm p, decision, seeds and (where the table has it) the smallest detectable difference."""
    if not np.isfinite(r.get("theta", np.nan)):
        return f"{r['estimand']}: not measured yet (seeds {r['seeds']})"
    holm_p = r.get("holm_p", np.nan)
    return (f"{r['estimand']}: {r['theta']:+.2f} [{_fmt(r['own_lo'])}, {_fmt(r['own_hi'])}] | "
            f"[{_fmt(r['boot_lo'])}, {_fmt(r['boot_hi'])}] | [{_fmt(r['pooled_lo'])}, {_fmt(r['pooled_hi'])}]; "
            + (f"conservative [{_fmt(r['cons_lo'])}, {_fmt(r['cons_hi'])}], " if np.isfinite(r["cons_lo"]) else "")
            + f"p {_fmt(r['cons_p'], '.3g')}" + (f", Holm {holm_p:.3g}" if np.isfinite(holm_p) else "")
            + (f" -> {r['decision']}" if isinstance(r.get("decision"), str) and r.get("decision") else "")
            + f" (seeds {r['seeds']})"
            + (f"; mdd {r['mdd']:.2f}" + (f" / {r['mdd_measured']:.2f}" if np.isfinite(r.get("mdd_measured", np.nan))
                                          else "") if np.isfinite(r.get("mdd", np.nan)) else ""))


def _base_summary(table: pd.DataFrame, title: str) -> str:
    """The GhostNet or ResNet plan's table (``rubik.base_transfer_stats``) in a few lines."""
    lines = [f"\n## {title} (95 %: own seeds | bootstrap | pooled; conservative = their union, p = the largest of "
             "the three; Holm over the primary family; mdd: the smallest difference detected at 80 % power, "
             "planned 3 seeds / measured noise)"]
    return "\n".join(lines + [_estimate_line(r) for _, r in table.iterrows()])


def _plan_summary(plan: dict, title: str) -> str:
    """The plan's numbers in a few lines: each estimand with its estimate, the three intervals, the
    conservative p, Holm p and decision; then the trend lines (and crossovers), the resolution
    ladder rung by rung with its lack-of-fit test, B0's 40 - 20 epochs and the pooled seed noise."""
    lines = [f"\n## {title} (95 %: own seeds | bootstrap | pooled; conservative = their union, p = the "
             "largest of the three; Holm over the measured cells of family D or G)"]
    for name in ("depth", "claim2", "resolution_rungs", "b0", "base128"):
        if name == "base128":
            if not len(plan.get("base128", ())):
                continue
            lines.append("depth ladder at base 128 px, 20 epochs (data/results/imagenette_128/README.md; mdd: the "
                         "smallest difference the design detects, 80 % power, planned 3 seeds / measured noise):")
        if name == "resolution_rungs":
            lines.append("resolution ladder rung by rung (10 blocks, 20 epochs), top-1 change per step:")
        lines += [_estimate_line(r) for _, r in plan[name].iterrows()]
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
