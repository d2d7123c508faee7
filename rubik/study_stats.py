"""The pre-registered analysis of the decisive study (``data/results/imagenette_longer/README.md``).

Every estimand is a linear contrast ``theta = sum_k a_k mu_k`` of *cell* means, a cell being one
model trained for one schedule (``name``, ``epochs``) and ``mu_k`` its mean top-1 on the held-out
``test`` half over seeds. Each estimand gets three 95 % intervals and three p-values:

* ``own``: Welch, each cell's own seed std, Welch-Satterthwaite degrees of freedom;
* ``boot``: a bootstrap over seeds (within each cell) and images (one draw shared by all cells);
* ``pooled``: one seed std pooled over every cell of the same schedule length (the ANOVA error term).

The *conservative* interval is their union and the conservative p the largest of the three; yes/no
decisions use it, with Holm over a family of estimands (``holm``). ``analyse`` reads one or more
study sweeps and returns the tables REPORT v3 quotes; ``rubik study report DIR [DIR ...]`` prints
them. Nothing here is fitted or chosen on the data: the contrasts are fixed by the design.
"""
from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from rubik.data import val_split
from rubik.sweep import load_correct, load_results, read_record

#: bootstrap resamples and generator seed (fixed in the analysis plan)
N_BOOT = 10_000
BOOT_SEED = 0
ALPHA = 0.05
#: the families of claim 2 and the models of the ladder, by trial ``name``
GIANT, TINY, OURS = "giant_m{}", "tiny_m{}", "ours_m{}"
DEPTH_RUNG = "r=0.8, {} blocks"


# ----------------------------------------------------------------------------- the data

@dataclass
class Cells:
    """Per-seed, per-image outcomes of every finished trial on one half, grouped into cells.

    ``correct[(name, epochs)]`` is a bool array (seeds x images); ``seeds`` and ``devices`` the
    matching seed numbers and ``device_name`` of each row; ``info`` a table of one row per cell."""
    correct: dict = field(default_factory=dict)
    seeds: dict = field(default_factory=dict)
    devices: dict = field(default_factory=dict)
    info: pd.DataFrame | None = None

    def mean(self, key) -> float:
        return float(self.correct[key].mean(axis=1).mean() * 100)

    def n(self, key) -> int:
        return int(self.correct[key].shape[0])


def is_cpu_device(name) -> bool:
    """Whether a record's ``device_name`` is a CPU (the study's reference engine: fp32 on CPU)."""
    return not any(tag in str(name).upper() for tag in ("NVIDIA", "CUDA", "GPU", "H100", "H200", "A100"))


def load_cells(sweep_dirs, *, half: str = "test", cpu_only: bool = False) -> Cells:
    """The finished trials of ``sweep_dirs`` (one or more study sweeps), scored per image on
    ``half`` of ``rubik.data.val_split``, as cells. ``cpu_only`` drops records trained on a GPU."""
    if isinstance(sweep_dirs, (str, bytes)) or not hasattr(sweep_dirs, "__iter__"):
        sweep_dirs = [sweep_dirs]
    rows, per = [], {}
    labels_ref = None
    for d in sweep_dirs:
        res = load_results(d)
        res = res[res["status"] == "done"]
        bits = load_correct(d)
        for _, t in res.iterrows():
            tid = str(t["id"])
            if tid not in bits:
                continue
            correct, labels = bits[tid]
            if labels_ref is None:
                labels_ref = labels
            elif len(labels) != len(labels_ref) or (labels != labels_ref).any():
                raise ValueError(f"{d}: trial {tid} was scored on another val set than the other records")
            device = (read_record(Path(d), tid) or {}).get("device_name", "")
            if cpu_only and not is_cpu_device(device):
                continue
            key = (str(t["name"]), int(t["epochs"]))
            per.setdefault(key, []).append((int(t["seed"]), correct, device))
            rows.append(dict(name=key[0], epochs=key[1], experiment=t["experiment"], family=t["family"],
                             level=int(t["level"]), blocks=int(t["blocks"]), r=float(t["r"]),
                             resolution=int(t["resolution"]), flops=float(t["flops"])))
    if labels_ref is None:
        raise ValueError(f"{', '.join(map(str, sweep_dirs))}: no finished trial with per-image outcomes")
    idx = val_split(labels_ref)[half]
    cells = Cells()
    for key, items in per.items():
        items.sort(key=lambda x: x[0])
        seeds = [s for s, _, _ in items]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"cell {key}: seed(s) recorded twice {seeds} (the same trial in two sweeps?)")
        cells.correct[key] = np.stack([c[idx] for _, c, _ in items]).astype(bool)
        cells.seeds[key] = seeds
        cells.devices[key] = [dev for _, _, dev in items]
    cells.info = pd.DataFrame(rows).drop_duplicates(["name", "epochs"]).sort_values(["name", "epochs"],
                                                                                  ignore_index=True)
    return cells


# ----------------------------------------------------------------------------- one contrast, three intervals

def noise_group(key):
    """The pooled-noise group of a cell ``(name, epochs)``: its schedule length, and for a cell of a
    study at another base resolution (``cell_suffix``: "r=0.8, 7 blocks @128px") also that suffix,
    so 128-px cells pool with 128-px cells only. Base-64-px cells keep the plain ``epochs`` key."""
    name, epochs = key
    return (epochs, name.split(" @", 1)[1]) if " @" in str(name) else epochs


def pooled_variance(cells: Cells) -> dict:
    """``{group: (s_p^2, degrees of freedom)}``: the seed variance of a cell's per-seed top-1,
    pooled over every cell of that schedule length (``noise_group``) with at least 2 seeds."""
    acc = {}
    for key, c in cells.correct.items():
        if c.shape[0] >= 2:
            v = np.var(c.mean(axis=1) * 100, ddof=1)
            g = noise_group(key)
            s, df = acc.get(g, (0.0, 0))
            acc[g] = (s + v * (c.shape[0] - 1), df + c.shape[0] - 1)
    return {e: (s / df, df) for e, (s, df) in acc.items()}


def _t_interval(theta, se, df, ci=0.95):
    if not np.isfinite(se) or not np.isfinite(df) or df < 1 or se <= 0:
        return float("nan"), float("nan"), float("nan")
    half = stats.t.ppf(0.5 + ci / 2, df) * se
    p = float(2 * stats.t.sf(abs(theta) / se, df))
    return theta - half, theta + half, p


def _satterthwaite(terms):
    """Degrees of freedom of a sum of variance terms ``[(variance, df), ...]``."""
    num = sum(v for v, _ in terms) ** 2
    den = sum(v * v / df for v, df in terms if df > 0)
    return num / den if den > 0 else float("nan")


class Bootstrap:
    """Per-seed top-1 of every cell under ``n`` resamples of the images (multinomial weights, one
    draw shared by all cells) and of each cell's seeds: ``cell_means(key)`` is an array of ``n``
    resampled cell means, the same resamples for every contrast (so contrasts and their trend lines
    are computed on one joint bootstrap distribution)."""

    def __init__(self, cells: Cells, n: int = N_BOOT, seed: int = BOOT_SEED, chunk: int = 1000):
        rng = np.random.default_rng(seed)
        keys = sorted(cells.correct)
        n_img = next(iter(cells.correct.values())).shape[1]
        stacked = np.concatenate([cells.correct[k] for k in keys]).astype(np.float32)   # (all seeds, images)
        per_seed = np.empty((n, stacked.shape[0]), np.float32)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            w = rng.multinomial(n_img, np.full(n_img, 1.0 / n_img), size=m).astype(np.float32)
            per_seed[start:start + m] = w @ stacked.T / n_img * 100
        self._means, row = {}, 0
        for k in keys:
            s = cells.correct[k].shape[0]
            pick = rng.integers(0, s, size=(n, s))
            self._means[k] = per_seed[:, row:row + s][np.arange(n)[:, None], pick].mean(axis=1).astype(float)
            row += s
        self.n = n

    def cell_means(self, key) -> np.ndarray:
        return self._means[key]

    def contrast(self, coef: dict) -> np.ndarray:
        return sum(a * self._means[k] for k, a in coef.items())


#: the numbers ``estimate`` gives every estimand
_NUMBERS = ("theta", "own_lo", "own_hi", "own_p", "own_df", "boot_lo", "boot_hi", "boot_p", "pooled_lo", "pooled_hi",
            "pooled_p", "pooled_df", "cons_lo", "cons_hi", "cons_p")


def estimate(name: str, coef: dict, cells: Cells, boot: Bootstrap, pooled: dict, ci: float = 0.95, **extra) -> dict:
    """One estimand ``sum a_k mu_k`` (``coef``: ``{(name, epochs): a_k}``) with its three intervals,
    p-values and the conservative union. Cells missing from the data make every number NaN."""
    row = dict(estimand=name, **extra)
    missing = [k for k in coef if k not in cells.correct]
    row["seeds"] = " / ".join(str(cells.n(k)) if k in cells.correct else "0" for k in coef)
    if missing:   # every number there, NaN: a table of such rows reads "not yet measured", not a KeyError
        return {**row, **dict.fromkeys(_NUMBERS, float("nan")), "note": f"missing cells {missing}"}
    theta = sum(a * cells.mean(k) for k, a in coef.items())
    row["theta"] = theta
    # 1. own seeds, Welch
    terms = []
    for k, a in coef.items():
        c = cells.correct[k].mean(axis=1) * 100
        if len(c) >= 2:
            terms.append((a * a * np.var(c, ddof=1) / len(c), len(c) - 1))
        else:
            terms.append((float("nan"), 0))
    if all(np.isfinite(v) for v, _ in terms):
        se = math.sqrt(sum(v for v, _ in terms))
        df = _satterthwaite(terms)
    else:
        se, df = float("nan"), float("nan")
    row["own_lo"], row["own_hi"], row["own_p"] = _t_interval(theta, se, df, ci)
    row["own_df"] = df
    # 2. bootstrap over seeds and images
    dist = boot.contrast(coef)
    row["boot_lo"], row["boot_hi"] = (float(x) for x in np.percentile(dist, [50 - ci * 50, 50 + ci * 50]))
    row["boot_p"] = max(1.0 / boot.n, float(min(1.0, 2 * min((dist <= 0).mean(), (dist >= 0).mean()))))
    # 3. pooled seed noise per schedule length
    terms = []
    for k, a in coef.items():
        sp2, dfe = pooled.get(noise_group(k), (float("nan"), 0))
        terms.append((a * a * sp2 / cells.n(k), dfe))
    # cells of one schedule share one pooled variance: add their terms before Satterthwaite
    by_e = {}
    for (k, _a), (v, dfe) in zip(coef.items(), terms):
        s, _ = by_e.get(noise_group(k), (0.0, dfe))
        by_e[noise_group(k)] = (s + v, dfe)
    se_p = math.sqrt(sum(v for v, _ in by_e.values())) if all(np.isfinite(v) for v, _ in by_e.values()) else float("nan")
    df_p = _satterthwaite(list(by_e.values()))
    row["pooled_lo"], row["pooled_hi"], row["pooled_p"] = _t_interval(theta, se_p, df_p, ci)
    row["pooled_df"] = df_p
    los = [row["own_lo"], row["boot_lo"], row["pooled_lo"]]
    his = [row["own_hi"], row["boot_hi"], row["pooled_hi"]]
    ps = [row["own_p"], row["boot_p"], row["pooled_p"]]
    row["cons_lo"] = float(np.min(los)) if not np.isnan(los).any() else float("nan")
    row["cons_hi"] = float(np.max(his)) if not np.isnan(his).any() else float("nan")
    row["cons_p"] = float(np.max(ps)) if not np.isnan(ps).any() else float("nan")
    return row


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (step-down, monotone, capped at 1); NaN stays NaN."""
    p = np.asarray(pvalues, float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m, running = len(order), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def decide(row, *, positive: str, negative: str, neutral: str, alpha: float = ALPHA) -> str:
    """The plan's decision: ``positive`` iff Holm-adjusted conservative p < alpha and the
    conservative interval is above 0, ``negative`` likewise below 0, else ``neutral``."""
    p, lo, hi = row.get("holm_p", float("nan")), row.get("cons_lo", float("nan")), row.get("cons_hi", float("nan"))
    if not np.isfinite(p):
        return "not yet measured"
    if p < alpha and lo > 0:
        return positive
    if p < alpha and hi < 0:
        return negative
    return neutral


# ----------------------------------------------------------------------------- the estimands of the plan

def _slope_coef(points) -> dict:
    """Least-squares slope of cell means against ``log2(x)`` as a contrast: ``{key: a_k}``."""
    x = np.log2([float(v) for v, _ in points])
    a = (x - x.mean()) / ((x - x.mean()) ** 2).sum()
    return {k: float(ak) for (_, k), ak in zip(points, a)}


def depth_estimands(cells: Cells, boot, pooled) -> pd.DataFrame:
    """D40 and D80 (family D, Holm over the two), the like-with-like end contrasts E20 / E40 and the
    within-families contrast F_E (supporting, unadjusted), in points per doubling of blocks."""
    rows = []
    ladder40 = [(b, (DEPTH_RUNG.format(b), 40)) for b in (7, 10, 13, 16)]
    rows.append(estimate("D40: depth slope, ladder, 40 epochs", _slope_coef(ladder40), cells, boot, pooled,
                         family="D", epochs=40, series="ladder slope"))
    ends = 1 / math.log2(16 / 7)
    for e in (20, 40, 80):
        coef = {(DEPTH_RUNG.format(16), e): ends, (DEPTH_RUNG.format(7), e): -ends}
        rows.append(estimate(f"{'D' if e == 80 else 'E'}{e}: 16 vs 7 blocks, ladder, {e} epochs", coef, cells,
                             boot, pooled, family="D" if e == 80 else "", epochs=e, series="ladder ends"))
    per = 1 / math.log2(15 / 7)
    for e in (5, 10, 20, 40, 80):
        coef = {(TINY.format(2), e): per, (OURS.format(2), e): -per}
        rows.append(estimate(f"F{e}: TinyNet dials (15 blocks) vs ours (7 blocks), c = 0.25, {e} epochs", coef,
                             cells, boot, pooled, family="", epochs=e, series="families"))
    out = pd.DataFrame(rows)
    fam = out["family"] == "D"
    out["holm_p"] = np.nan
    out.loc[fam, "holm_p"] = holm(out.loc[fam, "cons_p"])
    out["decision"] = [decide(r, positive="depth pays", negative="depth costs", neutral="no detectable difference")
                       if r["family"] == "D" else "" for _, r in out.iterrows()]
    return out


def detectable_difference(coef_n: dict, sd: float, *, alpha: float = ALPHA, power: float = 0.8) -> dict:
    """The smallest true effect a contrast ``sum a_k mu_k`` detects with probability ``power`` at
    two-sided level ``alpha``, when every cell has seed std ``sd``: ``coef_n`` is ``{key: (a_k, n_k)}``
    (coefficient, seeds). The binding interval of the conservative rule is the own-seeds (Welch) one,
    whose degrees of freedom are few, so its equal-variance Satterthwaite df is used:
    ``mdd = (t_{1-alpha/2, df} + t_{power, df}) * sd * sqrt(sum a_k^2 / n_k)`` (the usual normal-theory
    approximation with t quantiles). A "no detectable difference" then means: an effect this large
    would most likely have been detected; smaller ones may be there."""
    var = sum(a * a / n for a, n in coef_n.values())
    den = sum((a * a / n) ** 2 / (n - 1) for a, n in coef_n.values() if n > 1)
    df = var * var / den if den > 0 else float("nan")
    if not np.isfinite(df) or sd is None or not np.isfinite(sd):
        return dict(mdd=float("nan"), mdd_df=df, mdd_sd=sd)
    q = stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)
    return dict(mdd=float(q * sd * math.sqrt(var)), mdd_df=float(df), mdd_sd=float(sd))


#: the base-128-px study's cells (data/results/imagenette_128/README.md)
DEPTH_RUNG_128 = DEPTH_RUNG + " @128px"
LADDER_BLOCKS = (7, 10, 13, 16)


def base128_estimands(cells: Cells, boot, pooled, *, planned_seeds: int = 3, power: float = 0.8) -> pd.DataFrame:
    """The plan of the base-128-px depth ladder (20 epochs): family P, Holm over its two,
    P128 (the ladder slope per doubling of blocks at 128 px) and dP (P128 minus the same slope at
    64 px, from imagenette_long's 20-epoch ladder; positive: depth costs less, or pays more, at
    128 px); supporting, unadjusted: E128 (16 vs 7 blocks at 128 px), dE (E128 - E20 at 64 px) and
    P64. Each row also gives the smallest difference the design detects (``mdd``, at Holm's
    first-step level alpha/2 for family P, alpha for the rest; ``planned_seeds`` a cell; the seed
    std of the 64-px 20-epoch cells for the planning value, and, once 128-px cells have 2+ seeds,
    ``mdd_measured`` from their pooled std and the 64-px one)."""
    e = 20
    p128 = _slope_coef([(b, (DEPTH_RUNG_128.format(b), e)) for b in LADDER_BLOCKS])
    p64 = _slope_coef([(b, (DEPTH_RUNG.format(b), e)) for b in LADDER_BLOCKS])
    ends = 1 / math.log2(16 / 7)
    e128 = {(DEPTH_RUNG_128.format(16), e): ends, (DEPTH_RUNG_128.format(7), e): -ends}
    e64 = {(DEPTH_RUNG.format(16), e): ends, (DEPTH_RUNG.format(7), e): -ends}

    def minus(a, b):
        return {**a, **{k: -v for k, v in b.items()}}

    spec = [("P128: depth slope, ladder, base 128 px, 20 epochs", p128, "P"),
            ("dP: P128 - the same slope at base 64 px", minus(p128, p64), "P"),
            ("E128: 16 vs 7 blocks, ladder, base 128 px, 20 epochs", e128, ""),
            ("dE: E128 - E20 (16 vs 7 blocks at base 64 px)", minus(e128, e64), ""),
            ("P64: depth slope, ladder, base 64 px, 20 epochs", p64, "")]
    sd64 = math.sqrt(pooled[e][0]) if e in pooled else float("nan")
    sd128 = math.sqrt(pooled[(e, "128px")][0]) if (e, "128px") in pooled else float("nan")
    n_primary = sum(1 for *_, fam in spec if fam == "P")
    rows = []
    for name, coef, fam in spec:
        row = estimate(name, coef, cells, boot, pooled, family=fam, epochs=e)
        alpha = ALPHA / n_primary if fam else ALPHA
        planned = {k: (a, planned_seeds if k[0].endswith("@128px") else cells.n(k) if k in cells.correct
                       else planned_seeds) for k, a in coef.items()}
        row.update(detectable_difference(planned, sd64, alpha=alpha, power=power))
        if np.isfinite(sd128) and all(k in cells.correct for k in coef):
            # the measured noise of each side: a 128-px cell's pooled std, a 64-px cell's its own pool's
            measured = {k: (a, cells.n(k)) for k, a in coef.items()}
            var = sum(a * a * (sd128 if k[0].endswith("@128px") else sd64) ** 2 / n for k, (a, n) in measured.items())
            eq = detectable_difference(measured, 1.0, alpha=alpha, power=power)
            plain = math.sqrt(sum(a * a / n for a, n in measured.values()))
            row["mdd_measured"] = eq["mdd"] / plain * math.sqrt(var) if plain > 0 else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows)
    fam = out["family"] == "P"
    out["holm_p"] = np.nan
    out.loc[fam, "holm_p"] = holm(out.loc[fam, "cons_p"])
    words = {"P128": dict(positive="depth pays at 128 px", negative="depth costs at 128 px"),
             "dP": dict(positive="depth costs less (or pays more) at 128 px than at 64 px",
                        negative="depth costs more at 128 px than at 64 px")}
    out["decision"] = [decide(r, neutral="no detectable difference", **words[r["estimand"].split(":")[0]])
                       if r["family"] == "P" else "" for _, r in out.iterrows()]
    return out


def claim2_estimands(cells: Cells, boot, pooled) -> pd.DataFrame:
    """G(level, E, contender): contender - inversed giant at c = 0.25 (level 2; 5..80 epochs) and
    c = 0.0625 (level 4; 5..40 epochs); Holm over all 18."""
    rows = []
    for level, epochs in ((2, (5, 10, 20, 40, 80)), (4, (5, 10, 20, 40))):
        for contender, label in ((TINY, "TinyNet dials"), (OURS, "our formula")):
            for e in epochs:
                coef = {(contender.format(level), e): 1.0, (GIANT.format(level), e): -1.0}
                rows.append(estimate(f"G: {label} - giant, c = {0.25 if level == 2 else 0.0625}, {e} epochs", coef,
                                     cells, boot, pooled, family="G", level=level, contender=label, epochs=e))
    out = pd.DataFrame(rows)
    out["holm_p"] = holm(out["cons_p"])
    out["decision"] = [decide(r, positive="beats the giant", negative="loses to the giant", neutral="ties")
                       for _, r in out.iterrows()]
    return out


def trend(table: pd.DataFrame, coefs: dict, cells: Cells, boot: Bootstrap, pooled: dict) -> dict:
    """The plan's trend line ``theta(E) = alpha + beta log2 E`` through a series of estimates
    (``table`` rows with ``epochs`` and ``theta``; ``coefs[epochs]`` their contrasts), weighted by
    1 / (pooled variance); ``beta`` and the crossover ``E* = 2^(-alpha/beta)`` with bootstrap
    percentile intervals (the line refitted in every resample)."""
    t = table.dropna(subset=["theta"])
    if len(t) < 2:   # no line yet: its numbers NaN (a table's columns do not depend on how far the study got)
        return dict(points=len(t), **dict.fromkeys(("alpha", "beta", "beta_lo", "beta_hi", "beta_p"), float("nan")))
    x = np.log2(t["epochs"].to_numpy(float))
    var = []
    for e in t["epochs"]:
        v = sum(a * a * pooled.get(noise_group(k), (np.nan, 0))[0] / cells.n(k) for k, a in coefs[int(e)].items())
        var.append(v)
    w = 1 / np.asarray(var, float)
    if not np.isfinite(w).all():
        w = np.ones(len(t))
    X = np.column_stack([np.ones_like(x), x])
    A = np.linalg.solve(X.T @ (w[:, None] * X), X.T * w)          # (2, points): the WLS operator
    alpha, beta = A @ t["theta"].to_numpy(float)
    dist = np.stack([boot.contrast(coefs[int(e)]) for e in t["epochs"]])   # (points, resamples)
    ab = A @ dist
    b_lo, b_hi = np.percentile(ab[1], [2.5, 97.5])
    out = dict(points=len(t), epochs=",".join(str(int(e)) for e in t["epochs"]), alpha=float(alpha),
               beta=float(beta), beta_lo=float(b_lo), beta_hi=float(b_hi),
               beta_p=max(1 / boot.n, float(min(1.0, 2 * min((ab[1] <= 0).mean(), (ab[1] >= 0).mean())))))
    # the crossover is reported only where the slope's interval excludes 0 (the plan)
    if (b_lo > 0 or b_hi < 0) and beta != 0:
        cross = -ab[0] / ab[1]
        same = np.sign(ab[1]) == np.sign(beta)
        lo, hi = np.percentile(cross[same], [2.5, 97.5])
        out.update(crossover_epochs=float(2 ** (-alpha / beta)), crossover_lo=float(2 ** lo),
                   crossover_hi=float(2 ** hi))
    return out


def trends(depth: pd.DataFrame, claim2: pd.DataFrame, cells: Cells, boot, pooled) -> pd.DataFrame:
    rows = []
    ends = 1 / math.log2(16 / 7)
    per = 1 / math.log2(15 / 7)
    lad = depth[depth["series"] == "ladder ends"]
    rows.append(dict(series="depth: ladder 16 vs 7 blocks (per doubling)",
                     **trend(lad, {e: {(DEPTH_RUNG.format(16), e): ends, (DEPTH_RUNG.format(7), e): -ends}
                                   for e in lad["epochs"]}, cells, boot, pooled)))
    fam = depth[depth["series"] == "families"]
    rows.append(dict(series="depth: TinyNet dials vs ours, c = 0.25 (per doubling)",
                     **trend(fam, {e: {(TINY.format(2), e): per, (OURS.format(2), e): -per} for e in fam["epochs"]},
                             cells, boot, pooled)))
    for (level, contender), g in claim2.groupby(["level", "contender"], sort=False):
        who = TINY if contender == "TinyNet dials" else OURS
        rows.append(dict(series=f"claim 2: {contender} - giant, c = {0.25 if level == 2 else 0.0625}",
                         **trend(g, {e: {(who.format(level), e): 1.0, (GIANT.format(level), e): -1.0}
                                     for e in g["epochs"]}, cells, boot, pooled)))
    return pd.DataFrame(rows)


def resolution_rungs(cells: Cells, boot, pooled, epochs: int = 20) -> tuple[pd.DataFrame, dict]:
    """The resolution ladder rung by rung (adjacent differences, three intervals each) and the
    lack-of-fit F test of a straight line in ``log2 r`` against the rung means."""
    rs = [0.6, 0.8, 1.0, 1.2]
    keys = [(f"r={r:g}, 10 blocks", epochs) for r in rs]
    rows = [estimate(f"r {a:g} -> {b:g}", {kb: 1.0, ka: -1.0}, cells, boot, pooled, epochs=epochs)
            for (a, ka), (b, kb) in zip(zip(rs, keys), zip(rs[1:], keys[1:]))]
    lof = {}
    if all(k in cells.correct for k in keys) and sum(cells.n(k) for k in keys) > len(keys):   # seed noise to test by
        y = np.concatenate([cells.correct[k].mean(axis=1) * 100 for k in keys])
        x = np.concatenate([[math.log2(r)] * cells.n(k) for r, k in zip(rs, keys)])
        fit = np.polyfit(x, y, 1)
        sse = float(((y - np.polyval(fit, x)) ** 2).sum())
        means = {r: cells.correct[k].mean(axis=1).mean() * 100 for r, k in zip(rs, keys)}
        pure = float(sum(((cells.correct[k].mean(axis=1) * 100 - means[r]) ** 2).sum() for r, k in zip(rs, keys)))
        df_lof, df_pure = len(rs) - 2, len(y) - len(rs)
        f = ((sse - pure) / df_lof) / (pure / df_pure) if pure > 0 else float("nan")
        lof = dict(F=f, df=(df_lof, df_pure), p=float(stats.f.sf(f, df_lof, df_pure)))
    return pd.DataFrame(rows), lof


def analyse(sweep_dirs, *, half: str = "test", cpu_only: bool = False, n_boot: int = N_BOOT) -> dict:
    """Every table of the plan: ``depth``, ``claim2``, ``trends``, ``resolution_rungs`` (+ its
    lack-of-fit test in ``resolution_linearity``), ``b0`` and ``pooled`` (the seed noise per schedule)."""
    cells = load_cells(sweep_dirs, half=half, cpu_only=cpu_only)
    pooled = pooled_variance(cells)
    boot = Bootstrap(cells, n=n_boot)
    depth = depth_estimands(cells, boot, pooled)
    claim2 = claim2_estimands(cells, boot, pooled)
    rungs, lof = resolution_rungs(cells, boot, pooled)
    b0 = pd.DataFrame([estimate("B0: 40 - 20 epochs", {("EfficientNet-B0", 40): 1.0, ("EfficientNet-B0", 20): -1.0},
                                cells, boot, pooled)])
    base128 = base128_estimands(cells, boot, pooled) if any(k[0].endswith("@128px") for k in cells.correct) else None
    plain = {e: v for e, v in pooled.items() if not isinstance(e, tuple)}   # base-64-px cells (the v3 plan's table)
    noise = pd.DataFrame([dict(epochs=e, seed_std=math.sqrt(v), df=df) for e, (v, df) in sorted(plain.items())])
    return dict(depth=depth, claim2=claim2, trends=trends(depth, claim2, cells, boot, pooled),
                resolution_rungs=rungs, resolution_linearity=pd.DataFrame([lof]) if lof else pd.DataFrame(),
                b0=b0, pooled=noise, cells=cells,
                base128=base128 if base128 is not None else pd.DataFrame())

