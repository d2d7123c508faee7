"""The statistics REPORT.md quotes, as functions (``runs/imagenette_study/report_numbers.py`` prints them).

* ``t_interval``: mean, standard error and the t-interval of a sample (paired gains over seeds).
* ``mcnemar``: two models on the same images, image by image (per-image records).
* ``paired_gains``: a family's accuracy minus a reference family's, paired by seed, per level
  and pooled, with t-intervals.
* ``add_blocks`` / ``depth_floor_summary``: depth in blocks (what the network has), and where the
  depth floor binds (every d below ~0.375 builds B0's 7-block minimum).
* ``family_table``: per level and family, mean and std of top-1 over seeds, input px, FLOPs,
  parameters and a measured CPU latency.

The dial analysis (``rubik.frontier.joint_dial_effects``) and the winner's curse of the frontier
(``rubik.frontier.frontier_bias``) live with the frontier.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


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
    column (blocks per stage) where it has one, else from ``d`` (``rubik.study.total_blocks``)."""
    out = df.copy()
    if "repeats" in out and out["repeats"].notna().all() and (out["repeats"].astype(str) != "").all():
        out["blocks"] = [sum(int(x) for x in str(s).split(",")) for s in out["repeats"]]
    else:
        from rubik.study import total_blocks

        out["blocks"] = [total_blocks(base, float(d)) for d in out["d"]]
    return out


def depth_floor_summary(df: pd.DataFrame, frontier: pd.DataFrame | None = None,
                        base: str = "efficientnet_b0") -> dict:
    """Where the depth floor binds: the fewest blocks and the d below which every model has them,
    how many of ``df``'s models (and of the ``frontier``'s) sit there, and their d range."""
    from rubik.study import depth_floor

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

def model_latency(base: str, twist, *, base_resolution: int, num_classes: int, repeats: int = 20) -> tuple[float, str]:
    """``(milliseconds, how)``: median forward time of one image on 1 CPU thread, with
    ``rubik.measure_latency`` where the package has it, else a local ``time.perf_counter`` timer of
    the same measurement (``how`` says which)."""
    import torch

    from rubik.models import create_model

    model = create_model(base, num_classes, twist=tuple(twist), base_resolution=base_resolution).eval()
    try:
        from rubik.latency import measure_latency
    except ImportError:
        measure_latency = None
    if measure_latency is not None:
        return float(measure_latency(model, threads=1, repeats=repeats).median_ms), "rubik.measure_latency"
    import time

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.randn(1, 3, model.resolution, model.resolution)
        times = []
        with torch.no_grad():
            for i in range(repeats + 3):
                t0 = time.perf_counter()
                model(x)
                if i >= 3:
                    times.append((time.perf_counter() - t0) * 1e3)
    finally:
        torch.set_num_threads(threads)
    return float(np.median(times)), "local timer (rubik.report.model_latency)"


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
        ms, how = zip(*(model_latency(b, (r, d, w), base_resolution=int(br), num_classes=num_classes, repeats=repeats)
                        for b, r, d, w, br in zip(agg["base"], agg["r"], agg["d"], agg["w"], agg["base_resolution"])))
        agg["latency_ms"], agg["latency_how"] = ms, how
    return agg.drop(columns=["base", "base_resolution"])
