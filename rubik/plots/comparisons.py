"""Comparison figures: tiny vs giant formula at matching FLOPs, accuracy vs FLOPs of named model
families (the paper's tables with our points overlaid), latency, our FLOPs count against the
paper's, and per-epoch training curves."""
from __future__ import annotations

import math

from typing import Iterable, Sequence

import matplotlib.cm  # the backend is the caller's choice (inline in notebooks, Agg in tests)
import matplotlib.colors
import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .labels import _annotate, place_labels
from .style import COLORS, _CYCLE, _log_flops_axis, _new, _percent, _plain_ticks, col, mflops, seeds


def plot_accuracy_vs_flops(df: pd.DataFrame, group: str = "family", y: str | None = None,
                           label: str | None = "name", overlay: pd.DataFrame | None = None,
                           overlay_label: str = "ours (measured)", connect: Iterable[str] | None = None,
                           highlight: Sequence[str] = (), label_groups: Iterable[str] | None = None,
                           title: str | None = None, ylabel: str = "ImageNet top-1 accuracy (%)",
                           logx: bool = True):
    """Accuracy vs FLOPs, one colour per ``group``; families listed in
    ``connect`` (default: every family with more than one model) are joined by a
    line. ``overlay``: our measured points (same columns) in orange.
    ``highlight``: families drawn thicker (e.g. the TinyNets)."""
    yc = y or col(df, "top1")
    d = df.assign(_x=mflops(df), _y=_percent(df[yc])).dropna(subset=["_x", "_y"])
    fig, ax = _new((7.2, 5.0))
    groups = list(dict.fromkeys(d[group])) if group in d else [None]
    cycle = [c for c in _CYCLE if c != COLORS["tiny"]] if highlight else _CYCLE
    label_groups = None if label_groups is None else set(label_groups)
    k = 0
    for g in groups:
        sub = (d if g is None else d[d[group] == g]).sort_values("_x")
        hl = g in highlight
        if hl and len(highlight) == 1:
            color = COLORS["tiny"]
        else:
            color, k = cycle[k % len(cycle)], k + 1
        join = (len(sub) > 1) if connect is None else (g in connect)
        ax.plot(sub["_x"], sub["_y"], ("-" if join else "") + ("o" if not hl else "*"), color=color,
                lw=2.2 if hl else 1.2, ms=10 if hl else 6, label=str(g) if g is not None else None,
                zorder=4 if hl else 2)
        if label and label in sub and (label_groups is None or g in label_groups):
            _annotate(ax, sub["_x"], sub["_y"], sub[label], color=color, fontsize=6.5)
    if overlay is not None and len(overlay):
        o = overlay.assign(_x=mflops(overlay), _y=_percent(overlay[col(overlay, "top1")]))
        ax.scatter(o["_x"], o["_y"], marker="D", s=40, color=COLORS["ours"], edgecolors="k",
                   linewidths=0.5, zorder=5, label=overlay_label)
        if label and label in o:
            _annotate(ax, o["_x"], o["_y"], o[label], color=COLORS["ours"], fontsize=6.5, offset=(4, -9))
    if logx:
        _log_flops_axis(ax)
        ax.set_xlabel("FLOPs (M, log scale)")
    else:
        ax.set_xlabel("FLOPs (M)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title)
    return place_labels(fig)


def plot_tiny_vs_giant(runs: pd.DataFrame, group: str = "family", x: str | None = None,
                       y: str | None = None, title: str | None = "Tiny formula vs inversed giant formula"):
    """Mean ± std (over seeds) accuracy of each family at matching FLOPs.

    ``runs``: one row per trained model and seed, with the family, FLOPs and
    accuracy; individual seeds are drawn as small dots."""
    yc = y or col(runs, "top1")
    d = runs.assign(_x=mflops(runs, x), _y=_percent(runs[yc]))
    key = "level" if "level" in d else "_x"
    fig, ax = _new((6.8, 4.6))
    for i, (fam, sub) in enumerate(d.groupby(group, sort=False)):
        name = str(fam).lower()
        k = next((k for k, words in (("giant", ("giant",)), ("ours", ("ours", "our ")), ("tiny", ("tiny",)))
                  if any(w in name for w in words)), None)
        color = COLORS[k] if k else _CYCLE[(i + 3) % len(_CYCLE)]
        agg = sub.groupby(key).agg(x=("_x", "mean"), m=("_y", "mean"), s=("_y", "std"), n=("_y", "size"))
        agg = agg.sort_values("x")
        ax.errorbar(agg["x"], agg["m"], yerr=agg["s"].fillna(0), fmt="-o", color=color, capsize=4,
                    lw=1.6, label=f"{fam} (mean ± std, {seeds(int(agg['n'].max()))})")
        ax.scatter(sub["_x"], sub["_y"], color=color, s=8, alpha=0.5)
    _log_flops_axis(ax)
    ax.set_xlabel("FLOPs (M, log scale)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title)
    return fig


def plot_latency(df: pd.DataFrame, value: str = "latency_ms", label: str = "name",
                 title: str | None = "Latency on Huawei P40 (MindSpore Lite)"):
    """Horizontal bars of latency per model (paper/README numbers), coloured by family (a legend
    says which), each bar labelled with its latency and FLOPs (inside the long bars)."""
    d = df.sort_values(value)
    fig, ax = _new((6.4, 1.3 + 0.45 * len(d)))

    def family(n):
        n = str(n).lower()
        if "giant" in n or "^-" in n or "b-" in n:
            return "giant", "inversed giant formula"
        if "tinynet" in n:
            return "tiny", "TinyNet (tiny formula)"
        return "reference", "EfficientNet-B0 (base)" if "b0" in n else "baseline"

    fams = [family(n) for n in d[label]]
    bars = ax.barh(d[label].astype(str), d[value], color=[COLORS[k] for k, _ in fams], alpha=0.85)
    ax.set_axisbelow(True)   # the grid behind the bars
    fc = col(d, "flops", required=False)
    longest = float(d[value].max())
    for b, (_, row) in zip(bars, d.iterrows()):
        txt = f"{row[value]:.2f} ms"
        if fc and pd.notna(row[fc]):
            txt += f"  ({mflops(d.loc[[_]]).iloc[0]:.0f}M FLOPs)"
        inside = b.get_width() > 0.55 * longest
        ax.annotate(txt, (b.get_width(), b.get_y() + b.get_height() / 2), xytext=(-4 if inside else 3, 0),
                    textcoords="offset points", va="center", ha="right" if inside else "left", fontsize=8,
                    color="white" if inside else "black")
    ax.set_xlabel("latency (ms)")
    ax.set_xlim(0, longest * 1.05)
    ax.grid(alpha=0.3, axis="x")
    handles = {lab: matplotlib.patches.Patch(color=COLORS[k], alpha=0.85) for k, lab in fams}
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    if title:
        ax.set_title(title)
    return fig


def plot_latency_frontier(results: pd.DataFrame, flops_frontier: pd.DataFrame, latency_frontier: pd.DataFrame,
                          y: str | None = None, latency: str = "latency_ms", key: str = "id",
                          title: str | None = None, ylabel: str = "top-1 accuracy (%)"):
    """Accuracy vs FLOPs (left) beside accuracy vs measured latency (right), the same models.

    Each panel draws its own Pareto frontier as a line and rings the models on the *other*
    panel's frontier, so models picked by both cost axes are ringed points on a line."""
    yc = y or col(results, "top1")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True, sharey=True)
    lat_blue = COLORS["tiny"]
    panels = ((axes[0], "flops", flops_frontier, latency_frontier, COLORS["frontier"], lat_blue,
               "FLOPs frontier", "on the latency frontier"),
              (axes[1], latency, latency_frontier, flops_frontier, lat_blue, COLORS["frontier"],
               "latency frontier", "on the FLOPs frontier"))
    for ax, xcol, own, other, c_own, c_other, lab_own, lab_other in panels:
        xs = (lambda d: mflops(d)) if xcol == "flops" else (lambda d: pd.to_numeric(d[xcol], errors="coerce"))
        ax.scatter(xs(results), _percent(results[yc]), s=16, color=COLORS["random"], alpha=0.8,
                   label=f"models (n = {len(results)})", zorder=1)
        fr = own.assign(_x=xs(own), _y=_percent(own[yc])).sort_values("_x")
        ax.plot(fr["_x"], fr["_y"], "-o", color=c_own, ms=4, lw=1.6, label=f"{lab_own} (n = {len(fr)})", zorder=3)
        ids = set(other[key]) if key in other.columns else set(other.index)
        ringed = results[results[key].isin(ids)] if key in results.columns else results.loc[list(ids)]
        ax.scatter(xs(ringed), _percent(ringed[yc]), s=70, facecolors="none", edgecolors=c_other, lw=1.3,
                   label=f"{lab_other} (n = {len(ringed)})", zorder=4)
        _log_flops_axis(ax)
        ax.set_xlabel("FLOPs (M, log scale)" if xcol == "flops" else "measured latency (ms, log scale; median)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel(ylabel)
    axes[0].set_title("accuracy vs FLOPs")
    axes[1].set_title("accuracy vs measured CPU latency")
    if title:
        fig.suptitle(title)
    return fig


def plot_flops_check(df: pd.DataFrame, paper: str = "paper_flops", ours: str = "flops",
                     label: str = "name", title: str | None = "Our FLOPs count vs the paper's"):
    """Scatter of our counted FLOPs against the paper's, with the y = x line."""
    d = df.dropna(subset=[paper, ours])
    px, oy = mflops(d, paper), mflops(d, ours)
    fig, ax = _new((5.2, 4.8))
    lo, hi = min(px.min(), oy.min()) * 0.6, max(px.max(), oy.max()) * 1.3   # room for the labels
    ax.plot([lo, hi], [lo, hi], "--", color="0.5", lw=1, label="y = x")
    ax.scatter(px, oy, color=COLORS["ours"], edgecolors="k", linewidths=0.5, zorder=3, label="models")
    if label in d:
        # models at (nearly) the same point share one label: GhostNet-A with and without HSwish, and
        # GhostNet-1.5x / GhostNet-B (both 300M in the paper, 298M and 302M counted): within 3 % on both axes
        groups: list[list[int]] = []
        xs, ys, names = px.to_numpy(float), oy.to_numpy(float), d[label].astype(str).tolist()
        for i in range(len(xs)):
            for g in groups:
                j = g[0]
                if abs(math.log(xs[i] / xs[j])) < 0.03 and abs(math.log(ys[i] / ys[j])) < 0.03:
                    g.append(i)
                    break
            else:
                groups.append([i])
        _annotate(ax, [float(np.exp(np.mean(np.log(xs[g])))) for g in groups],
                  [float(np.exp(np.mean(np.log(ys[g])))) for g in groups],
                  [" / ".join(dict.fromkeys(names[i] for i in g)) for g in groups], fontsize=7)
    _log_flops_axis(ax, "x")
    _log_flops_axis(ax, "y")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("paper FLOPs (M)")
    ax.set_ylabel("our FLOPs (M)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    if title:
        ax.set_title(title)
    return place_labels(fig)


def plot_training_curves(history: pd.DataFrame, run: str = "run", x: str = "epoch", y: str | None = None,
                         color_by: pd.Series | dict | None = None, color_label: str = "FLOPs (M)",
                         max_runs: int | None = None, title: str | None = None):
    """Per-epoch curves, one line per run (the first ``max_runs``; default all).

    ``color_by``: a value per run (``{run: FLOPs}``, e.g. ``results.set_index("id").flops / 1e6``):
    the lines take a colour of a (log) colour map with a colour bar, which reads for any number
    of runs; without it, distinct colours and a legend (up to 10 runs).

    ``y=None`` picks validation top-1 when some run was evaluated at two epochs or more, and the
    training loss otherwise: a budget that evaluates once, at the end, leaves one top-1 point per
    run, which draws no curve.
    """
    if y is None:
        evaluated = history.groupby(run)["top1"].count().max() if "top1" in history else 0
        y = "top1" if evaluated > 1 or "train_loss" not in history else "train_loss"
    is_accuracy = y in ("top1", "top5", "ema_top1", "ema_top5")
    runs = list(history.dropna(subset=[y]).groupby(run, sort=False))[:max_runs]
    if color_by is None and len(runs) > len(_CYCLE):
        raise ValueError(f"{len(runs)} runs but {len(_CYCLE)} distinct colours: pass color_by (a value per run)")
    fig, ax = _new()
    values = None
    if color_by is not None:
        values = pd.Series(color_by, dtype=float)
        v = values.reindex([name for name, _ in runs]).dropna()
        norm = (matplotlib.colors.LogNorm if len(v) and (v > 0).all() else matplotlib.colors.Normalize)(
            vmin=v.min() if len(v) else 0, vmax=v.max() if len(v) else 1)
        cmap = plt.get_cmap("viridis")
    for i, (name, sub) in enumerate(runs):
        ys = _percent(sub[y]) if is_accuracy else sub[y]
        if values is None:
            color = _CYCLE[i]
        else:
            color = cmap(norm(values[name])) if name in values.index and np.isfinite(values[name]) else "0.6"
        ax.plot(sub[x], ys, "-o", ms=3, lw=1, label=str(name), color=color)
    ax.set_xlabel(x)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{y.replace('_', '-')} accuracy (%)" if is_accuracy else y.replace("_", " "))
    ax.grid(alpha=0.3)
    if values is not None:
        sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        _plain_ticks(fig.colorbar(sm, ax=ax, pad=0.01)).set_label(color_label)
    elif runs:
        ax.legend(fontsize=6, ncol=2)
    if title is None:
        title = "Validation accuracy per epoch" if is_accuracy else f"{y.replace('_', ' ').capitalize()} per epoch"
    if title:
        ax.set_title(title + (f" ({len(runs)} runs)" if values is not None else ""))
    return fig
