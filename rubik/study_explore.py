"""Exploratory analyses of the decisive study, added in issue 34 after every record had been read.

Not in the 40/80-epoch plan (``rubik.study_stats``, ``data/results/imagenette_longer/README.md``):
REPORT labels what these give *exploratory*, and no decision of the plan changes. ``explore``
returns the ``explore_*`` tables ``rubik study report`` writes:

* ``trend_models``: the plan's straight line in log2(epochs) against a saturating curve
  ``a + b / epochs`` for the depth penalty, with an out-of-sample check (both fitted on 5-20 epochs,
  predicting 40 and 80) and the curve's asymptote with a bootstrap interval;
* ``detectable``: the smallest difference each decided cell of families D and G could detect;
* ``v2_claim2_holm18``: v2's 12 claim-2 cells adjusted by Holm over the plan's 18 cells;
* ``two_stage``: the 20-epoch cell whose seeds were extended after a look, tested as a two-stage design.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from rubik.study_stats import (ALPHA, DEPTH_RUNG, GIANT, LADDER_BLOCKS, N_BOOT, OURS, TINY, Bootstrap, Cells,
                               _satterthwaite, _slope_coef, _t_interval, analyse, claim2_estimands, decide,
                               detectable_difference, holm, noise_group, pooled_variance)

__all__ = ["trend_models", "explore_trends", "explore_detectable", "v2_claim2_holm18", "two_stage", "explore"]


def _wls(X, y, w):
    """Weighted least squares: (coefficients, the operator A with coefficients = A @ y, chi^2)."""
    A = np.linalg.solve(X.T @ (w[:, None] * X), X.T * w)
    beta = A @ y
    return beta, A, float((w * (y - X @ beta) ** 2).sum())


def trend_models(table: pd.DataFrame, coefs: dict, cells: Cells, boot: Bootstrap, pooled: dict,
                 fit_upto: int = 20) -> dict:
    """Two models of a series of estimates against the schedule E, fitted alike (weights 1 / the
    pooled-noise variance, as the plan's line): the plan's line ``theta = alpha + beta log2 E`` and a
    saturating curve ``theta = a + b / E`` (its asymptote ``a`` is the effect of depth at an endless
    schedule). For each: its weighted chi^2 on all points, and an out-of-sample check: both fitted on
    the points with ``E <= fit_upto`` only, their predictions for the longer schedules. ``a`` gets a
    bootstrap percentile interval (the curve refitted in every resample of the plan's bootstrap)."""
    t = table.dropna(subset=["theta"]).sort_values("epochs")
    if len(t) < 3:
        return dict(points=len(t))
    E = t["epochs"].to_numpy(float)
    y = t["theta"].to_numpy(float)
    w = 1 / np.asarray([sum(a * a * pooled.get(noise_group(k), (np.nan, 0))[0] / cells.n(k)
                            for k, a in coefs[int(e)].items()) for e in E], float)
    designs = {"line": lambda e: np.column_stack([np.ones_like(e), np.log2(e)]),
               "saturating": lambda e: np.column_stack([np.ones_like(e), 1 / e])}
    out = dict(points=len(t), epochs=",".join(str(int(e)) for e in E))
    dist = np.stack([boot.contrast(coefs[int(e)]) for e in E])
    for name, X in designs.items():
        beta, A, chi2 = _wls(X(E), y, w)
        out[f"{name}_chi2"] = chi2
        out[f"{name}_p0"], out[f"{name}_p1"] = (float(b) for b in beta)
        if name == "saturating":
            lo, hi = np.percentile((A @ dist)[0], [2.5, 97.5])
            out.update(asymptote=float(beta[0]), asymptote_lo=float(lo), asymptote_hi=float(hi))
        inside = E <= fit_upto
        if inside.sum() >= 2 and (~inside).any():
            b_in, _, _ = _wls(X(E[inside]), y[inside], w[inside])
            pred = X(E[~inside]) @ b_in
            out[f"{name}_predicted"] = ", ".join(f"{int(e)}: {p:+.2f}" for e, p in zip(E[~inside], pred))
            out[f"{name}_oos_chi2"] = float((w[~inside] * (y[~inside] - pred) ** 2).sum())
    out["measured_beyond"] = ", ".join(f"{int(e)}: {v:+.2f}" for e, v in zip(E[E > fit_upto], y[E > fit_upto]))
    return out


def explore_trends(depth: pd.DataFrame, cells: Cells, boot, pooled) -> pd.DataFrame:
    """``trend_models`` for the two depth series of the plan (ladder ends 20/40/80, families 5-80)."""
    ends = 1 / math.log2(16 / 7)
    per = 1 / math.log2(15 / 7)
    lad = depth[depth["series"] == "ladder ends"]
    fam = depth[depth["series"] == "families"]
    return pd.DataFrame([
        dict(series="depth: ladder 16 vs 7 blocks (per doubling)",
             **trend_models(lad, {e: {(DEPTH_RUNG.format(16), e): ends, (DEPTH_RUNG.format(7), e): -ends}
                                  for e in lad["epochs"]}, cells, boot, pooled)),
        dict(series="depth: TinyNet dials vs ours, c = 0.25 (per doubling)",
             **trend_models(fam, {e: {(TINY.format(2), e): per, (OURS.format(2), e): -per} for e in fam["epochs"]},
                            cells, boot, pooled))])


def explore_detectable(depth: pd.DataFrame, claim2: pd.DataFrame, cells: Cells, pooled: dict,
                       power: float = 0.8) -> pd.DataFrame:
    """The smallest difference each decided estimand of families D and G could detect
    (``detectable_difference``) with the seeds it has and its schedule's pooled seed std: at the
    strictest Holm step (alpha / m, m the family's size) and at alpha itself. A cell that "ties" or
    shows "no detectable difference" is *not decided*: effects smaller than this may be there."""
    rows = []
    specs = [(r, "D") for _, r in depth[depth["family"] == "D"].iterrows()] + [(r, "G") for _, r in claim2.iterrows()]
    m = {"D": int((depth["family"] == "D").sum()), "G": len(claim2)}
    for r, fam in specs:
        e = int(r["epochs"])
        if fam == "G":
            who = TINY if r["contender"] == "TinyNet dials" else OURS
            coef = {(who.format(int(r["level"])), e): 1.0, (GIANT.format(int(r["level"])), e): -1.0}
        elif r["estimand"].startswith("D40"):
            coef = _slope_coef([(b, (DEPTH_RUNG.format(b), e)) for b in LADDER_BLOCKS])
        else:
            ends = 1 / math.log2(16 / 7)
            coef = {(DEPTH_RUNG.format(16), e): ends, (DEPTH_RUNG.format(7), e): -ends}
        if not all(k in cells.correct for k in coef):
            continue
        sd = math.sqrt(pooled[e][0]) if e in pooled else float("nan")
        cn = {k: (a, cells.n(k)) for k, a in coef.items()}
        strict = detectable_difference(cn, sd, alpha=ALPHA / m[fam], power=power)
        plain = detectable_difference(cn, sd, alpha=ALPHA, power=power)
        rows.append(dict(estimand=r["estimand"], family=fam, seeds=r["seeds"], theta=r["theta"],
                         cons_lo=r["cons_lo"], cons_hi=r["cons_hi"], decision=r["decision"], seed_std=sd,
                         mdd_holm=strict["mdd"], mdd=plain["mdd"], df=strict["mdd_df"]))
    return pd.DataFrame(rows)


def two_stage(cells: Cells, contender, reference, stage1: list, stage2: list) -> dict:
    """A cell whose seeds were extended after a look (stage 1: seeds ``stage1``; stage 2: seeds
    ``stage2``, added once stage 1 had been seen), tested as a two-stage design should be: the
    inverse-normal combination of the two stages' own Welch tests, ``Z = w1 z1 + w2 z2`` with
    ``w_i = sqrt(n_i / (n1 + n2))`` (fixed by the seeds per stage, not by the data), ``z_i`` the
    normal quantile of each stage's one-sided p; two-sided p = 2 (1 - Phi(|Z|)). Its type I error
    holds whatever the look decided, because each stage's p is uniform under the null whatever
    happened before. Also each stage's own estimate and Welch interval."""
    out = {}
    zs, ns = [], []
    for label, seeds in (("stage1", stage1), ("stage2", stage2)):
        ya = [cells.correct[contender][cells.seeds[contender].index(s)].mean() * 100 for s in seeds]
        yb = [cells.correct[reference][cells.seeds[reference].index(s)].mean() * 100 for s in seeds]
        ya, yb = np.asarray(ya), np.asarray(yb)
        diff = ya.mean() - yb.mean()
        va, vb = ya.var(ddof=1) / len(ya), yb.var(ddof=1) / len(yb)
        se = math.sqrt(va + vb)
        df = _satterthwaite([(va, len(ya) - 1), (vb, len(yb) - 1)])
        lo, hi, p = _t_interval(diff, se, df)
        p_one = float(stats.t.sf(diff / se, df))      # H1: contender above the reference
        zs.append(float(stats.norm.isf(p_one)))
        ns.append(len(seeds))
        out.update({f"{label}_seeds": ",".join(map(str, seeds)), f"{label}_theta": float(diff),
                    f"{label}_lo": lo, f"{label}_hi": hi, f"{label}_p": p, f"{label}_df": df})
    w = np.sqrt(np.asarray(ns, float) / sum(ns))
    z = float(w @ np.asarray(zs))
    out.update(combined_z=z, combined_p=float(2 * stats.norm.sf(abs(z))), weights=",".join(f"{x:.3f}" for x in w))
    return out


def v2_claim2_holm18(cells: Cells, claim2: pd.DataFrame, n_boot: int = N_BOOT) -> pd.DataFrame:
    """REPORT v3's corrections restate v2's 12 claim-2 cells from the v2 records alone (seeds 0-2
    of every cell of at most 20 epochs, exactly ``imagenette_long``'s records); the plan's Holm
    runs over all 18 G cells. This adjusts the 12 v2 cells' conservative p jointly with the six
    40/80-epoch cells' (all records), as the plan says, instead of over the 12 alone."""
    sub = Cells()
    for k, c in cells.correct.items():
        if k[1] > 20:
            continue
        keep = [i for i, s in enumerate(cells.seeds[k]) if s <= 2]
        sub.correct[k] = c[keep]
        sub.seeds[k] = [cells.seeds[k][i] for i in keep]
        sub.devices[k] = [cells.devices[k][i] for i in keep]
    if not sub.correct:
        return pd.DataFrame()
    v2 = claim2_estimands(sub, Bootstrap(sub, n=n_boot), pooled_variance(sub))
    v2 = v2[v2["theta"].notna()].copy()
    later = claim2[claim2["epochs"] > 20]
    p = np.r_[v2["cons_p"].to_numpy(float), later["cons_p"].to_numpy(float)]
    v2["holm_p_12"] = v2["holm_p"]
    v2["holm_p"] = holm(p)[:len(v2)]
    v2["decision"] = [decide(r, positive="beats the giant", negative="loses to the giant", neutral="not decided")
                      for _, r in v2.iterrows()]
    return v2[["estimand", "seeds", "theta", "cons_lo", "cons_hi", "cons_p", "holm_p_12", "holm_p", "decision"]]


def explore(sweep_dirs, *, half: str = "test", cpu_only: bool = False, n_boot: int = N_BOOT, plan: dict | None = None) -> dict:
    """The exploratory tables of issue 34 (``explore_*``): the two trend models with their
    out-of-sample check, each decided cell's smallest detectable difference, and the two-stage
    test of the one cell whose seeds were extended after a look (our formula - giant, c = 0.25,
    20 epochs: seeds 0-2 in v2, seeds 3-4 added by the 40/80-epoch study)."""
    plan = plan or analyse(sweep_dirs, half=half, cpu_only=cpu_only, n_boot=n_boot)
    cells = plan["cells"]
    pooled = pooled_variance(cells)
    boot = Bootstrap(cells, n=n_boot)
    tables = dict(trend_models=explore_trends(plan["depth"], cells, boot, pooled),
                  detectable=explore_detectable(plan["depth"], plan["claim2"], cells, pooled))
    v2 = v2_claim2_holm18(cells, plan["claim2"], n_boot=n_boot)
    if len(v2):
        tables["v2_claim2_holm18"] = v2
    a, b = (OURS.format(2), 20), (GIANT.format(2), 20)
    if a in cells.correct and b in cells.correct and {3, 4} <= set(cells.seeds[a]) & set(cells.seeds[b]):
        row = two_stage(cells, a, b, [0, 1, 2], [3, 4])
        g = plan["claim2"]
        others = g[~((g["level"] == 2) & (g["contender"] == "our formula") & (g["epochs"] == 20))]["cons_p"]
        # the combination p in place of the cell's conservative p, Holm over the 18 cells as planned
        p = max(row["combined_p"], float(g[(g["level"] == 2) & (g["contender"] == "our formula")
                                           & (g["epochs"] == 20)]["cons_p"].iloc[0]))
        row["combined_or_conservative_p"] = p
        row["holm_p"] = float(holm(np.r_[p, others.to_numpy(float)])[0])
        tables["two_stage"] = pd.DataFrame([dict(cell="our formula - giant, c = 0.25, 20 epochs", **row)])
    return tables
