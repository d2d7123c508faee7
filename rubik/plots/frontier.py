"""Figures of the twisted-model sweep: the sampled (r, d, w) cloud, the accuracy/FLOPs frontier
and its dials, and the tiny formula's fit (notebooks 01, 03 and 04; the paper's Figures 1 and 3)."""
from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.colors  # the backend is the caller's choice (inline in notebooks, Agg in tests)
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .labels import _annotate, place_labels
from .style import COLORS, DIAL_COLORS, DIAL_NAMES, _log_flops_axis, _new, _percent, _plain_ticks, col, mflops

# --------------------------------------------------------------------------- 01 sampling

def plot_sampling(df: pd.DataFrame, color_by: str = "flops", references: pd.DataFrame | None = None,
                  title: str | None = "Randomly twisted models (r, d, w)"):
    """The (r, d, w) cloud as three pairwise scatter panels coloured by FLOPs.

    ``references`` (optional): named points (e.g. TinyNet-A..E, giant B^-phi)
    drawn as labelled markers.
    """
    r, d, w = col(df, "r"), col(df, "d"), col(df, "w")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.9), constrained_layout=True)
    c = mflops(df) if color_by == "flops" else df[color_by]
    pairs = [(r, d, "r", "d"), (r, w, "r", "w"), (d, w, "d", "w")]
    sc = None
    for ax, (xc, yc, xl, yl) in zip(axes, pairs):
        sc = ax.scatter(df[xc], df[yc], c=c, cmap="viridis", s=22, alpha=0.85, edgecolors="none",
                        norm=matplotlib.colors.LogNorm() if color_by == "flops" and (c > 0).all() else None)
        if references is not None and len(references):
            rx, ry = references[col(references, xl)], references[col(references, yl)]
            ax.scatter(rx, ry, marker="*", s=90, c=COLORS["frontier"], edgecolors="k", linewidths=0.4,
                       zorder=3, label="reference models")
            _annotate(ax, rx, ry, references[col(references, "name")])
        ax.set_xlabel(DIAL_NAMES[xl])
        ax.set_ylabel(DIAL_NAMES[yl])
        ax.grid(alpha=0.3)
    if references is not None and len(references):
        axes[0].legend(loc="best", fontsize=8)
    cb = _plain_ticks(fig.colorbar(sc, ax=axes, shrink=0.9, pad=0.01))
    cb.set_label("FLOPs (M)" if color_by == "flops" else color_by)
    if title:
        fig.suptitle(f"{title} — n = {len(df)}")
    return place_labels(fig)


def plot_flops_histogram(df: pd.DataFrame, reference_flops: float | None = None, bins: int = 20,
                         reference_label: str = "base (EfficientNet-B0)",
                         title: str | None = "FLOPs of the sampled models"):
    """Histogram of FLOPs (log-spaced bins); a dashed line marks the base model."""
    f = mflops(df).dropna()
    f = f[f > 0]
    fig, ax = _new()
    lo, hi = f.min(), f.max()
    if reference_flops:
        ref = reference_flops / 1e6 if reference_flops > 1e5 else reference_flops
        hi = max(hi, ref)
    edges = np.geomspace(lo * 0.95, hi * 1.05, bins + 1) if hi > lo else bins
    ax.hist(f, bins=edges, color=COLORS["random"], edgecolor="white")
    if reference_flops:
        ax.axvline(ref, ls="--", color=COLORS["reference"], lw=1.2, label=f"{reference_label}: {ref:.0f}M")
        ax.legend(fontsize=8)
    _log_flops_axis(ax)
    ax.set_xlabel("FLOPs (M, log scale)")
    ax.set_ylabel("number of models")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        ax.set_title(f"{title} (n = {len(f)})")
    ax.grid(alpha=0.3, axis="y")
    return fig


# --------------------------------------------------------------------------- 03 frontier

def plot_frontier(results: pd.DataFrame, frontier: pd.DataFrame | None = None,
                  giant: pd.DataFrame | None = None, tiny: pd.DataFrame | None = None,
                  references: pd.DataFrame | None = None, y: str | None = None, title: str | None = None,
                  ylabel: str = "top-1 accuracy (%)", label_points: bool = True,
                  frontier_label: str = "frontier of the random models"):
    """The paper's Figure 1: accuracy vs FLOPs of random models (grey), inversed
    giant formula models (green line), the frontier (red line), optionally
    TinyNet-like models (blue) and named references such as the base (black stars).

    ``frontier_label`` says what the frontier was computed over (the paper's, and the notebooks',
    is over the random models only, so a giant model may lie above it)."""
    yc = y or col(results, "top1")
    fig, ax = _new((6.8, 4.6))
    ax.scatter(mflops(results), _percent(results[yc]), s=18, color=COLORS["random"], alpha=0.8,
               label=f"random models (n = {len(results)})", zorder=1)
    if frontier is not None and len(frontier):
        fr = frontier.assign(_x=mflops(frontier), _y=_percent(frontier[col(frontier, "top1") if y is None else y]))
        fr = fr.sort_values("_x")
        ax.plot(fr["_x"], fr["_y"], "-o", color=COLORS["frontier"], ms=5, lw=1.6,
                label=f"{frontier_label} (n = {len(fr)})", zorder=3)
    for extra, key, lab, marker in ((giant, "giant", "inversed giant formula", "s"),
                                    (tiny, "tiny", "TinyNet-like (tiny formula)", "^")):
        if extra is None or not len(extra):
            continue
        e = extra.assign(_x=mflops(extra), _y=_percent(extra[col(extra, "top1") if y is None else y]))
        e = e.sort_values("_x")
        ax.plot(e["_x"], e["_y"], "-" + marker, color=COLORS[key], ms=6, lw=1.6, label=lab, zorder=4)
        if label_points and col(e, "name", required=False):
            _annotate(ax, e["_x"], e["_y"], e[col(e, "name")], color=COLORS[key])
    if references is not None and len(references):
        e = references.assign(_x=mflops(references), _y=_percent(references[col(references, "top1") if y is None else y]))
        ax.scatter(e["_x"], e["_y"], marker="*", s=120, color=COLORS["reference"], zorder=5, label="base model")
        if label_points and col(e, "name", required=False):
            _annotate(ax, e["_x"], e["_y"], e[col(e, "name")], color=COLORS["reference"])
    _log_flops_axis(ax)
    ax.set_xlabel("FLOPs (M, log scale)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or "Accuracy vs FLOPs of models twisted from EfficientNet-B0")
    return place_labels(fig)


def plot_frontier_dials(frontier: pd.DataFrame, giant: pd.DataFrame | None = None,
                        tiny: pd.DataFrame | None = None, label: str = "frontier models",
                        title: str | None = "Resolution, depth and width of the frontier models"):
    """The paper's Figure 3: r, d and w of the frontier models against FLOPs
    (one panel per dial), with the inversed giant formula for comparison."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharex=True, constrained_layout=True)
    fr = frontier.assign(_x=mflops(frontier)).sort_values("_x")
    for ax, dial in zip(axes, "rdw"):
        ax.plot(fr["_x"], fr[col(fr, dial)], "o-", color=COLORS["frontier"], label=label)
        for extra, key, lab, m in ((giant, "giant", "inversed giant formula", "s--"),
                                   (tiny, "tiny", "TinyNet (released)", "^:")):
            if extra is not None and len(extra):
                e = extra.assign(_x=mflops(extra)).sort_values("_x")
                ax.plot(e["_x"], e[col(e, dial)], m, color=COLORS[key], label=lab, ms=5)
        ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
        _log_flops_axis(ax, enclose=True)   # both ends of the FLOPs axis labelled
        ax.set_xlabel("FLOPs (M, log scale)")
        ax.set_ylabel(DIAL_NAMES[dial])
        ax.set_title(DIAL_NAMES[dial])
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_dial_importance(importance: pd.DataFrame, values: Sequence[str] = ("slope", "partial_spearman"),
                         title: str | None = "Which dial matters at fixed FLOPs?"):
    """One horizontal-bar panel per statistic of ``rubik.frontier.dial_importance``
    (``slope``: accuracy change per doubling of the dial at fixed FLOPs;
    ``partial_spearman``: rank partial correlation given FLOPs), with the
    bootstrap interval (``slope_lo/slope_hi``, ``rho_lo/rho_hi``) as error bars."""
    dcol = "dial" if "dial" in importance.columns else importance.columns[0]
    values = [v for v in values if v in importance.columns] or [importance.columns[1]]
    dials = [d for d in "rdw" if d in set(importance[dcol])] or list(importance[dcol])
    imp = importance.set_index(dcol).reindex(dials)
    fig, axes = plt.subplots(1, len(values), figsize=(4.6 * len(values), 0.9 + 0.75 * len(dials)),
                             constrained_layout=True, squeeze=False)
    labels = {"slope": "top-1 change per doubling of the dial (pp)",
              "partial_spearman": "partial Spearman correlation with top-1"}
    for ax, v in zip(axes[0], values):
        prefix = "rho" if v == "partial_spearman" else v
        lo, hi = f"{prefix}_lo", f"{prefix}_hi"
        xerr = None
        if lo in imp and hi in imp:
            xerr = np.vstack([(imp[v] - imp[lo]).clip(lower=0), (imp[hi] - imp[v]).clip(lower=0)])
            xerr = np.nan_to_num(xerr)
        colors = [DIAL_COLORS.get(str(d), "0.5") for d in dials]
        ax.barh(np.arange(len(dials)), imp[v], color=colors, xerr=xerr, capsize=4, alpha=0.9, height=0.6)
        ax.set_yticks(np.arange(len(dials)))
        ax.set_yticklabels([DIAL_NAMES.get(str(d), str(d)) for d in dials])
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(labels.get(v, v.replace("_", " ")) + ("\n(bars: bootstrap 95% interval)" if xerr is not None else ""))
        ax.grid(alpha=0.3, axis="x")
    if title:
        n = int(importance["n"].iloc[0]) if "n" in importance else None
        fig.suptitle(title + (f" (n = {n} models)" if n else ""))
    return fig


def plot_dial_scatter(results: pd.DataFrame, y: str | None = None, residual: str | None = None,
                      title: str | None = "Accuracy against each dial"):
    """Accuracy (or its residual after FLOPs, if ``residual`` names a column)
    against log r, log d, log w; one panel per dial, coloured by FLOPs."""
    yc = residual or y or col(results, "top1")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True, constrained_layout=True)
    c = mflops(results)
    sc = None
    for ax, dial in zip(axes, "rdw"):
        sc = ax.scatter(results[col(results, dial)], results[yc], c=c, cmap="viridis", s=18,
                        norm=matplotlib.colors.LogNorm() if (c > 0).all() else None)
        _log_flops_axis(ax)   # plain-number ticks that leave room for their labels
        ax.set_xlabel(DIAL_NAMES[dial] + " (log scale)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 residual at fixed FLOPs (pp)" if residual else "top-1 accuracy (%)")
    _plain_ticks(fig.colorbar(sc, ax=axes, shrink=0.9, pad=0.01)).set_label("FLOPs (M)")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- 04 tiny formula

def plot_formula_fit(curve: pd.DataFrame, points: pd.DataFrame | None = None,
                     marks: pd.DataFrame | None = None, dials: Iterable[str] = ("r", "d", "w"),
                     x: str = "c", n_sigma: float = 2.0,
                     title: str | None = "Tiny formula: Gaussian process fits on the frontier"):
    """GPR fits of each dial against the FLOPs ratio ``c`` with ``n_sigma`` bands.

    ``curve``: columns ``c``, ``r``, ``d``, ``w`` and optionally ``r_std``,
    ``d_std``... (the predictive mean and std). ``points``: the frontier models
    the GPs were fitted on (columns ``c`` and dials). ``marks``: named models to
    draw on top (TinyNet-A..E, giant B^-phi), with a ``name`` and optional
    ``family`` column.
    """
    dials = [d for d in dials if col(curve, d, required=False)]
    fig, axes = plt.subplots(1, len(dials), figsize=(4.1 * len(dials), 3.8), sharex=True,
                             constrained_layout=True, squeeze=False)
    cv = curve.sort_values(x)
    for ax, dial in zip(axes[0], dials):
        dc = col(cv, dial)
        std = f"{dial}_std" if f"{dial}_std" in cv else (f"{dc}_std" if f"{dc}_std" in cv else None)
        if std:   # a GP fit: its mean and band
            ax.plot(cv[x], cv[dc], "-", color=DIAL_COLORS[dial], lw=2, label=f"{dial}(c): GP mean")
            ax.fill_between(cv[x], cv[dc] - n_sigma * cv[std], cv[dc] + n_sigma * cv[std],
                            color=DIAL_COLORS[dial], alpha=0.18, lw=0, label=f"{dial}(c): ±{n_sigma:g}σ band")
        else:     # solved from the FLOPs at each c: a point per solve, which steps with the rounding
            ax.plot(cv[x], cv[dc], "o", color=DIAL_COLORS[dial], ms=3.5,
                    label=f"{dial}(c): solved for the FLOPs at each c on the rounded network "
                          "(input px, blocks, 8-channel steps: it jumps)")
        if points is not None and len(points):
            ax.scatter(points[x], points[col(points, dial)], color=COLORS["frontier"], s=22, zorder=3,
                       label="fitted (frontier) models")
        if marks is not None and len(marks):
            fams = marks["family"] if "family" in marks else pd.Series(["reference"] * len(marks))
            for fam in dict.fromkeys(fams):
                m = marks[fams.values == fam]
                key = "giant" if "giant" in str(fam).lower() else ("tiny" if "tiny" in str(fam).lower() else "reference")
                ax.scatter(m[x], m[col(m, dial)], marker="s" if key == "giant" else "^", s=30,
                           color=COLORS[key], zorder=4, label=str(fam))
                if col(m, "name", required=False):
                    _annotate(ax, m[x], m[col(m, dial)], m[col(m, "name")], color=COLORS[key], fontsize=6)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("FLOPs ratio c = FLOPs / FLOPs(B0) (log scale)")
        ax.set_ylabel(DIAL_NAMES[dial])
        ax.grid(alpha=0.3, which="both")
    entries = {}
    for ax in axes[0]:   # every panel's entries once, each swatch its artist's (a band in its dial's colour)
        for h, lab in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(lab, h)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncol=min(len(entries), 3),
               fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return place_labels(fig)
