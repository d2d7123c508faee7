"""The accuracy-FLOPs frontier of a sweep, and which dial matters most.

``pareto_frontier(df)`` keeps the models that no other model beats on both
axes (fewer-or-equal FLOPs *and* higher-or-equal accuracy, one of them
strictly). ``x`` may be any cost column (``"flops"``, ``"params"``, a measured
``"latency_ms"``); ``y`` any score column (``"top1"``, ``"ema_top1"``).

Importance analysis (the paper's "resolution and depth matter more than
width"): two views, both *at matched FLOPs*.

* ``flops_bands(df)`` cuts log-FLOPs into equal-count bands, so a plot of
  accuracy against each dial within a band compares models of similar cost.
* ``dial_importance(df)`` quantifies it. For each dial ``k`` it controls for
  log FLOPs by the Frisch-Waugh route: residualise the score and ``log2 k``
  on ``log2 FLOPs`` (ordinary least squares), then report

  - ``slope``: the score change per doubling of the dial at fixed FLOPs
    (i.e. the coefficient of ``log2 k`` in ``y ~ 1 + log2 FLOPs + log2 k``);
    a positive value means "spend the budget on this dial",
  - ``partial_spearman``: the rank (Spearman) partial correlation of the score
    with the dial given log FLOPs (the same residualisation on ranks),

  each with a percentile bootstrap confidence interval (resampling models).
  One dial at a time answers "among models of equal cost, do the ones with
  more of this dial do better?", but each slope mixes in the other two dials
  (at equal FLOPs, more resolution means less depth or width).
* ``joint_dial_effects(df)`` separates them. The three log dials cannot all
  enter one regression with log FLOPs (``2 log r + log d + 2 log w`` is
  almost log FLOPs: collinear), so width is left implied by the FLOPs::

      y = a + g_r log2 r + g_d log2 d + g_F log2 FLOPs

  ``g_r`` is a doubling of r at equal FLOPs *and equal depth* (width pays:
  w about halves), ``g_d`` a doubling of d at equal FLOPs and resolution
  (w / sqrt 2), ``g_r - 2 g_d`` a doubling of r at equal FLOPs and width
  (depth pays: d / 4), and ``2 g_F`` a doubling of w at equal r and d (4x
  the FLOPs). Depth may be given in blocks (``d_col="blocks"``): below the
  depth floor every d builds the same network, and blocks say what was built.

Winner's curse: the frontier is the best of many noisy trainings, so its
accuracy is biased upward. ``frontier_bias`` re-noises the sweep's scores by
the measured seed std, re-takes the frontier and reports how much higher it
reads, at given FLOPs (``frontier_at`` interpolates the frontier linearly in
log FLOPs between its models; there is no trained model at those FLOPs).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

DIALS = ("r", "d", "w")


def _check_columns(df, cols, what="frontier"):
    if df is None:
        raise ValueError(f"{what}: got None instead of a DataFrame")
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; have {list(df.columns)}")
    return df


def _finite_rows(df, cols, dropna, what):
    """Rows whose ``cols`` are all finite; raise (naming the rows) unless ``dropna``."""
    vals = df[list(cols)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(vals).all(axis=1)
    if not ok.all() and not dropna:
        bad = df.index[~ok].tolist()
        raise ValueError(
            f"{what}: {len(bad)} row(s) have NaN/inf in {list(cols)} (index {bad[:10]}"
            f"{'...' if len(bad) > 10 else ''}); pass dropna=True to ignore them "
            "(e.g. failed or unfinished trials)"
        )
    return df[ok]


def pareto_frontier(df, x: str = "flops", y: str = "top1", *, dropna: bool = False,
                    kinds=None) -> pd.DataFrame:
    """Models on the Pareto front of ``y`` (higher is better) vs ``x`` (lower is better).

    Returns the front's rows (all original columns, original index kept) sorted by
    ``x`` ascending, so ``y`` is strictly increasing along it. Among exact
    duplicates in both ``x`` and ``y`` the first row is kept.

    ``kinds``: keep only rows whose ``kind`` column is in it first (e.g. ``("random",)``: the
    paper's frontier is over the random models; the base and giant references are compared
    against it).

    Raises ``ValueError`` for an empty table, missing columns, negative ``x``
    or NaN values (unless ``dropna=True``, which drops those rows first).
    """
    df = _check_columns(df, [x, y], "pareto_frontier")
    if kinds is not None:
        df = _check_columns(df, ["kind"], "pareto_frontier")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        df = df[df["kind"].isin(kinds)]
    if len(df) == 0:
        raise ValueError("pareto_frontier: the table is empty (no finished trials?)")
    df = _finite_rows(df, [x, y], dropna, "pareto_frontier")
    if len(df) == 0:
        raise ValueError(f"pareto_frontier: no row has finite {x!r} and {y!r}")
    xs = df[x].astype(float).to_numpy()
    ys = df[y].astype(float).to_numpy()
    if (xs < 0).any():
        raise ValueError(f"pareto_frontier: negative {x!r} values")
    # sort by x ascending, then y descending, so the best of equal-x points comes first
    order = np.lexsort((-ys, xs))
    keep, best = [], -math.inf
    for i in order:
        if ys[i] > best:
            keep.append(i)
            best = ys[i]
    return df.iloc[keep]


def on_frontier(df, x: str = "flops", y: str = "top1", *, dropna: bool = True) -> pd.Series:
    """Boolean Series over ``df.index``: is this row on the Pareto front?"""
    df = _check_columns(df, [x, y], "on_frontier")
    front = pareto_frontier(df, x, y, dropna=dropna)
    return pd.Series(df.index.isin(front.index), index=df.index, name="on_frontier")


def frontier_agreement(df, costs=("flops", "latency_ms"), y: str = "top1", *, kinds=None,
                       dropna: bool = True, key: str = "id") -> dict:
    """Do two cost axes pick the same models? The Pareto fronts of ``y`` against each cost.

    Returns ``{"first", "second", "both", "only_first", "only_second", "jaccard", "spearman"}``:
    the ``key`` values (or index labels) on each front, in cost order, and their overlap;
    ``spearman`` is the rank correlation of the two costs over the rows considered.
    """
    a, b = costs
    fa = pareto_frontier(df, a, y, dropna=dropna, kinds=kinds)
    fb = pareto_frontier(df, b, y, dropna=dropna, kinds=kinds)
    ids = (lambda f: list(f[key]) if key in f.columns else list(f.index))
    first, second = ids(fa), ids(fb)
    both = [i for i in first if i in set(second)]
    union = set(first) | set(second)
    rows = df if kinds is None else df[df["kind"].isin([kinds] if isinstance(kinds, str) else list(kinds))]
    rows = _finite_rows(rows, [a, b], True, "frontier_agreement")
    rho = float(rows[a].rank().corr(rows[b].rank())) if len(rows) > 2 else math.nan
    return {"first": first, "second": second, "both": both,
            "only_first": [i for i in first if i not in set(second)],
            "only_second": [i for i in second if i not in set(first)],
            "jaccard": len(both) / len(union) if union else math.nan, "spearman": rho}


def flops_bands(df, n_bands: int = 4, x: str = "flops", *, edges=None) -> pd.Series:
    """Band label for each row: equal-count bands of log ``x`` (or given ``edges``).

    Labels are strings like ``"12M-25M"``; use them to facet accuracy-vs-dial
    plots so that each panel compares models of similar cost.
    """
    df = _check_columns(df, [x], "flops_bands")
    if len(df) == 0:
        raise ValueError("flops_bands: the table is empty")
    v = df[x].astype(float)
    if not np.isfinite(v).all() or (v <= 0).any():
        raise ValueError(f"flops_bands: {x!r} must be finite and > 0")
    if edges is None:
        if n_bands < 1:
            raise ValueError(f"flops_bands: n_bands must be >= 1, got {n_bands}")
        q = np.quantile(np.log(v), np.linspace(0, 1, n_bands + 1))
        edges = np.exp(q)
    edges = np.unique(np.asarray(edges, dtype=float))
    edges[0], edges[-1] = min(edges[0], v.min()), max(edges[-1], v.max())
    labels = [f"{_human(a)}-{_human(b)}" for a, b in zip(edges[:-1], edges[1:])]
    if len(labels) == 0:  # all values equal
        return pd.Series([_human(v.iloc[0])] * len(v), index=df.index, name="band")
    cut = pd.cut(v, edges, labels=labels, include_lowest=True, duplicates="drop")
    return cut.astype(str).rename("band")


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def _residualise(v, z):
    """OLS residuals of ``v`` on ``[1, z]``."""
    A = np.column_stack([np.ones_like(z), z])
    coef, *_ = np.linalg.lstsq(A, v, rcond=None)
    return v - A @ coef


def _rank(a):
    return pd.Series(a).rank().to_numpy(dtype=float)


def _stats(y, logx, logk):
    ry, rk = _residualise(y, logx), _residualise(logk, logx)
    den = float(rk @ rk)
    slope = float(ry @ rk) / den if den > 1e-12 else float("nan")
    ryr, rkr = _residualise(_rank(y), _rank(logx)), _residualise(_rank(logk), _rank(logx))
    nrm = math.sqrt(float(ryr @ ryr) * float(rkr @ rkr))
    rho = float(ryr @ rkr) / nrm if nrm > 1e-12 else float("nan")
    return slope, rho


def dial_importance(df, y: str = "top1", x: str = "flops", dials=DIALS, *, n_boot: int = 1000,
                    ci: float = 0.95, seed: int = 0, dropna: bool = False) -> pd.DataFrame:
    """How much each dial buys at matched FLOPs (see the module docstring).

    Returns one row per dial: ``dial, slope, slope_lo, slope_hi,
    partial_spearman, rho_lo, rho_hi, n``; ``slope`` is in units of ``y`` per
    doubling of the dial at fixed ``x``; ``*_lo/*_hi`` are the bootstrap
    percentile interval at level ``ci``. Rows are sorted by ``slope``
    (largest first), so the first row is the dial to spend FLOPs on.
    """
    df = _check_columns(df, [y, x, *dials], "dial_importance")
    df = _finite_rows(df, [y, x, *dials], dropna, "dial_importance")
    n = len(df)
    if n < 4:
        raise ValueError(f"dial_importance: need at least 4 models with finite values, got {n}")
    if (df[[x, *dials]].astype(float) <= 0).to_numpy().any():
        raise ValueError(f"dial_importance: {x!r} and the dials must be > 0")
    yv = df[y].astype(float).to_numpy()
    if np.ptp(yv) == 0:
        raise ValueError(f"dial_importance: every model has the same {y!r} ({yv[0]:g}); nothing to explain "
                         "(trained too briefly?)")
    logx = np.log2(df[x].astype(float).to_numpy())
    rng = np.random.default_rng(seed)
    boots = rng.integers(0, n, size=(n_boot, n))
    a = (1 - ci) / 2
    rows = []
    for k in dials:
        logk = np.log2(df[k].astype(float).to_numpy())
        slope, rho = _stats(yv, logx, logk)
        bs = np.array([_stats(yv[b], logx[b], logk[b]) for b in boots]) if n_boot else np.empty((0, 2))
        with warnings.catch_warnings():  # degenerate resamples give NaN; all-NaN columns stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            lo = np.nanquantile(bs, a, axis=0) if n_boot else [np.nan, np.nan]
            hi = np.nanquantile(bs, 1 - a, axis=0) if n_boot else [np.nan, np.nan]
        rows.append(dict(dial=k, slope=slope, slope_lo=lo[0], slope_hi=hi[0],
                         partial_spearman=rho, rho_lo=lo[1], rho_hi=hi[1], n=n))
    return pd.DataFrame(rows).sort_values("slope", ascending=False, ignore_index=True)


def dial_table(df, y: str = "top1", x: str = "flops", dials=DIALS, n_bands: int = 4) -> pd.DataFrame:
    """Long table ``band, dial, value, y`` for accuracy-vs-dial plots per FLOPs band."""
    df = _check_columns(df, [y, x, *dials], "dial_table")
    band = flops_bands(df, n_bands, x)
    parts = [pd.DataFrame({"band": band, "dial": k, "value": df[k].astype(float), y: df[y]})
             for k in dials]
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- dials jointly

#: the effects ``joint_dial_effects`` reports: name -> (coefficients on (log2 r, log2 d, log2 FLOPs), meaning)
JOINT_EFFECTS = {
    "r for w": ((1, 0, 0), "doubling r at equal FLOPs and depth (width pays, w ~ /2)"),
    "d for w": ((0, 1, 0), "doubling d at equal FLOPs and resolution (width pays, w ~ /1.41)"),
    "r for d": ((1, -2, 0), "doubling r at equal FLOPs and width (depth pays, d ~ /4)"),
    "w at equal r, d": ((0, 0, 2), "doubling w at equal r and d (FLOPs ~ x4)"),
}


def _joint_fit(y, X):
    A = np.column_stack([np.ones(len(y)), X])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return coef, y - A @ coef


def joint_dial_effects(df, y: str = "top1", x: str = "flops", *, r_col: str = "r", d_col: str = "d",
                       n_boot: int = 1000, ci: float = 0.95, seed: int = 0, dropna: bool = False) -> pd.DataFrame:
    """Per-dial effects at equal FLOPs from one joint regression (see the module docstring):
    ``y ~ 1 + log2 r + log2 d + log2 FLOPs``, width implied.

    Returns one row per effect of ``JOINT_EFFECTS``: ``effect, value, lo, hi, meaning`` (``value`` in
    units of ``y`` per doubling, ``lo/hi`` percentile-bootstrap interval at ``ci`` over models), plus
    the fit's ``n``, ``r2``, ``resid_std`` and ``max_vif`` (variance inflation of the three
    regressors: ~1 means they vary independently in the sample, >10 is collinear) on every row.
    """
    cols = [y, x, r_col, d_col]
    df = _check_columns(df, cols, "joint_dial_effects")
    df = _finite_rows(df, cols, dropna, "joint_dial_effects")
    n = len(df)
    if n < 6:
        raise ValueError(f"joint_dial_effects: need at least 6 models with finite values, got {n}")
    if (df[[x, r_col, d_col]].astype(float) <= 0).to_numpy().any():
        raise ValueError(f"joint_dial_effects: {x!r}, {r_col!r} and {d_col!r} must be > 0")
    yv = df[y].astype(float).to_numpy()
    X = np.log2(df[[r_col, d_col, x]].astype(float).to_numpy())
    if np.linalg.matrix_rank(np.column_stack([np.ones(n), X])) < 4:
        raise ValueError("joint_dial_effects: log2 r, log2 d and log2 FLOPs are collinear in this table "
                         "(e.g. one dial never varies)")
    coef, resid = _joint_fit(yv, X)
    vif = []
    for j in range(3):
        _, rj = _joint_fit(X[:, j], np.delete(X, j, axis=1))
        tot = X[:, j] - X[:, j].mean()
        vif.append(float(tot @ tot / max(rj @ rj, 1e-300)))
    weights = np.array([w for w, _ in JOINT_EFFECTS.values()], dtype=float)   # effects x (r, d, F)
    est = weights @ coef[1:]
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        b = rng.integers(0, n, n)
        if np.linalg.matrix_rank(np.column_stack([np.ones(n), X[b]])) == 4:
            boots.append(weights @ _joint_fit(yv[b], X[b])[0][1:])
    a = (1 - ci) / 2
    lo, hi = (np.quantile(boots, [a, 1 - a], axis=0) if boots else np.full((2, len(est)), np.nan))
    ss = float(((yv - yv.mean()) ** 2).sum())
    return pd.DataFrame(dict(effect=list(JOINT_EFFECTS), value=est, lo=lo, hi=hi,
                             meaning=[m for _, m in JOINT_EFFECTS.values()], n=n,
                             r2=1 - float(resid @ resid) / ss if ss > 0 else np.nan,
                             resid_std=float(np.sqrt(resid @ resid / max(n - 4, 1))), max_vif=max(vif)))


# ----------------------------------------------------------------------------- winner's curse

def frontier_at(frontier, at, x: str = "flops", y: str = "top1") -> np.ndarray:
    """The frontier's ``y`` at cost(s) ``at``, interpolated linearly in log ``x`` between its models
    (NaN outside their range): what the frontier *would* reach there, not a trained model."""
    f = frontier.sort_values(x)
    lx = np.log(f[x].astype(float).to_numpy())
    xs = np.log(np.atleast_1d(np.asarray(at, dtype=float)))
    inside = (xs >= lx.min()) & (xs <= lx.max())
    return np.where(inside, np.interp(xs, lx, f[y].astype(float).to_numpy()), np.nan)


def frontier_bias(df, at, *, noise_std: float, x: str = "flops", y: str = "top1", kinds=("random",),
                  n_rep: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Winner's-curse estimate of the frontier's ``y`` at costs ``at``.

    Adds independent N(0, ``noise_std``^2) to every model's ``y`` (the seed-to-seed noise of one
    training), re-takes the Pareto frontier over ``kinds`` and interpolates it at ``at`` (in log
    ``x``), ``n_rep`` times. ``bias`` = mean re-noised frontier - the frontier of the table as
    measured: how much one more layer of training noise lifts the frontier. The measured frontier
    carries one such layer over the (unknown) noise-free one, so ``bias`` estimates how far it
    reads above what its models would average over seeds (a parametric bootstrap; it assumes
    equal noise for all models). Columns ``at, frontier, renoised_mean, renoised_std, bias``.
    """
    if noise_std < 0:
        raise ValueError(f"frontier_bias: noise_std must be >= 0, got {noise_std}")
    df = _check_columns(df, [x, y], "frontier_bias")
    df = df[df["kind"].isin(list(kinds))] if kinds is not None and "kind" in df else df
    df = _finite_rows(df, [x, y], True, "frontier_bias")
    at = np.atleast_1d(np.asarray(at, dtype=float))
    base = frontier_at(pareto_frontier(df, x, y), at, x, y)
    rng = np.random.default_rng(seed)
    yv = df[y].astype(float).to_numpy()
    reps = np.empty((n_rep, len(at)))
    noisy = df[[x]].copy()
    for i in range(n_rep):
        noisy[y] = yv + rng.normal(0.0, noise_std, len(yv))
        reps[i] = frontier_at(pareto_frontier(noisy, x, y), at, x, y)
    with warnings.catch_warnings():   # a cost outside every replicate's frontier stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, sd = np.nanmean(reps, axis=0), np.nanstd(reps, axis=0, ddof=1)
    return pd.DataFrame(dict(at=at, frontier=base, renoised_mean=mean, renoised_std=sd, bias=mean - base))


# ----------------------------------------------------------------------------- frontier layers and gaps

def pareto_layers(df, x="flops", y="top1", min_points: int = 3):
    """The Pareto frontier, plus the next frontier layers while it has fewer than
    ``min_points`` models (a GP fit needs a few points; tiny sweeps have short fronts).
    Adds a ``layer`` column (0 = the frontier itself)."""
    rest, parts, layer = df, [], 0
    while len(rest) and sum(len(p) for p in parts) < min_points:
        front = pareto_frontier(rest, x=x, y=y, dropna=True)
        parts.append(front.assign(layer=layer))
        rest = rest.drop(front.index)
        layer += 1
    return pd.concat(parts).sort_values(x) if parts else df.iloc[:0].assign(layer=[])


def frontier_gap(frontier, others, x="flops", y="top1"):
    """For each model in ``others`` (e.g. the giant formula): the frontier's accuracy
    interpolated (in log FLOPs) at its FLOPs, and the gap frontier - model; ``note`` says why
    they are blank (the model's FLOPs lie outside the frontier's range: no extrapolation)."""
    out = others[[c for c in ("id", "name", x, y) if c in others]].copy()
    out["frontier_" + y] = frontier_at(frontier, out[x].to_numpy(), x, y)
    out["gap"] = out["frontier_" + y] - out[y]
    lo, hi = float(frontier[x].min()), float(frontier[x].max())
    xs = out[x].astype(float).to_numpy()
    out["note"] = np.where(xs < lo, f"fewer FLOPs than any frontier model ({lo / 1e6:.3g}-{hi / 1e6:.3g}M)",
                           np.where(xs > hi, f"more FLOPs than any frontier model "
                                                   f"({lo / 1e6:.3g}-{hi / 1e6:.3g}M)", ""))
    return out
