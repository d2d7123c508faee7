"""Figures of the decisive study (``rubik.study``): top-1 against training epochs per FLOPs level,
the depth and resolution ladders at equal FLOPs, and the depth penalty's trend with the schedule."""
from __future__ import annotations

import matplotlib.pyplot as plt  # the backend is the caller's choice (inline in notebooks, Agg in tests)
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from .labels import _annotate, place_labels
from .style import COLORS, seeds, value_label

_FAMILY_LABELS = {"giant": "inversed giant formula", "tiny": "TinyNet dials (paper)", "ours": "our fitted formula",
                  "base": "EfficientNet-B0"}


def _mean_std_dots(ax, sub, x, y, color, label, offset=0.0, fmt="-o"):
    """Mean +- std over seeds at each ``x`` (error bars), the seeds as small dots."""
    agg = sub.groupby(x)[y].agg(["mean", "std", "count"]).reset_index().sort_values(x)
    xs = agg[x].to_numpy(float) * (1 + offset)
    ax.errorbar(xs, agg["mean"], yerr=agg["std"].fillna(0), fmt=fmt, color=color, capsize=4, lw=1.6,
                label=f"{label} (mean ± std, {seeds(int(agg['count'].max()))})")
    ax.scatter(sub[x].to_numpy(float) * (1 + offset), sub[y], color=color, s=9, alpha=0.45)


def _shared_legend(fig, axes, ncol: int | None = None, fontsize: float = 8):
    """One legend below the panels, with every label of ``axes`` once: off the data."""
    entries = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(lab, h)
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center",
                   ncol=ncol or min(len(entries), 4), fontsize=fontsize, frameon=False)


def plot_schedule_sensitivity(results: pd.DataFrame, y: str = "top1_test",
                              title: str | None = "Does the order change with longer training?"):
    """Top-1 against training epochs, one panel per FLOPs level (and one for EfficientNet-B0):
    each family's mean +- std over seeds (error bars), seeds as dots; one legend below the panels.
    ``results``: the finished ``experiment == "schedule"`` trials of a ``rubik.study`` sweep."""
    d = results[results["experiment"] == "schedule"]
    levels = sorted(int(v) for v in d["level"].unique() if int(v) > 0)
    has_b0 = (d["family"] == "base").any()
    n = len(levels) + int(has_b0)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.6), constrained_layout=True, squeeze=False)
    axes = axes[0]
    for ax, level in zip(axes, levels):
        sub = d[d["level"] == level]
        for i, fam in enumerate(f for f in ("giant", "tiny", "ours") if f in set(sub["family"])):
            _mean_std_dots(ax, sub[sub["family"] == fam], "epochs", y, COLORS[fam], _FAMILY_LABELS[fam],
                           offset=0.03 * (i - 1))
        c = sub["flops_ratio"].mean()
        ax.set_title(f"c = {c:.3g} ({sub['flops'].mean() / 1e6:.1f} MFLOPs)", fontsize=10)
    if has_b0:
        ax = axes[-1]
        _mean_std_dots(ax, d[d["family"] == "base"], "epochs", y, COLORS["reference"], _FAMILY_LABELS["base"])
        ax.set_title("EfficientNet-B0 (c = 1)", fontsize=10)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xticks(sorted(d["epochs"].unique()))
        ax.set_xlabel("training epochs (cosine to 0 over the run)")
        ax.grid(alpha=0.3)
        ax.margins(y=0.1)   # the error bars' caps inside the axes
    _shared_legend(fig, axes)
    axes[0].set_ylabel(value_label(y))
    if title:
        fig.suptitle(title)
    return fig


def plot_dial_ladders(results: pd.DataFrame, y: str = "top1_test", references: pd.DataFrame | None = None,
                      title: str | None = "What each dial buys at equal FLOPs"):
    """The two dial ladders of a ``rubik.study`` sweep: top-1 against blocks (depth ladder) and
    against r (resolution ladder), mean +- std over seeds, seeds as dots, w solved for the FLOPs
    (each rung labelled with its w and input px, placed clear of the markers). ``references``: rows
    (family, mean) drawn as horizontal lines, e.g. the claim-2 families at the ladders' FLOPs and
    schedule; one legend below the panels."""
    d = results[results["experiment"] == "ladder"]
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.8), constrained_layout=True, sharey=True)
    for ax, (flag, x, xlabel) in zip(axes, (("depth_ladder", "blocks", "blocks (B0: 16; floor: 7)"),
                                            ("resolution_ladder", "r", "resolution r (x 64 px)"))):
        sub = d[d[flag].astype(bool)]
        if not len(sub):
            ax.set_visible(False)
            continue
        _mean_std_dots(ax, sub, x, y, COLORS["tiny"], "ladder")
        first = sub.drop_duplicates("name").sort_values(x)
        means = sub.groupby(x)[y].mean()
        fixed = (f"r = {first['r'].iloc[0]:g}" if flag == "depth_ladder" else f"{int(first['blocks'].iloc[0])} blocks")
        _annotate(ax, first[x], [means[v] for v in first[x]],
                  [f"w={row['w']:.2f}, {int(row['resolution'])} px" for _, row in first.iterrows()], color="0.3")
        if references is not None:
            for _, ref in references.iterrows():
                ax.axhline(ref["mean"], color=COLORS.get(ref["family"], "0.5"), ls="--", lw=1,
                           label=f"{_FAMILY_LABELS.get(ref['family'], ref['family'])}"
                                 + (f" ({int(ref['epochs'])} epochs)" if "epochs" in ref else ""))
        ax.margins(x=0.15, y=0.08)  # room for the end rungs' labels inside the axes
        ax.set_xlabel(xlabel)
        ax.set_title(f"{'depth' if flag == 'depth_ladder' else 'resolution'} ladder ({fixed}, w solved, "
                     f"{sub['flops'].mean() / 1e6:.1f} MFLOPs)", fontsize=9)
        ax.grid(alpha=0.3)
    _shared_legend(fig, [a for a in axes if a.get_visible()], ncol=2)
    axes[0].set_ylabel(value_label(y))
    if title:
        fig.suptitle(title)
    return place_labels(fig)


def plot_depth_trend(depth: pd.DataFrame, title: str | None = "Does depth ever pay at equal FLOPs?"):
    """The penalty (or gain) for depth against training epochs, in points per doubling of blocks:
    the depth ladder's 16 vs 7 blocks and the 40-epoch ladder slope (r = 0.8, w solved, c ~ 0.25),
    and the TinyNet dials (15 blocks) against our formula (7 blocks) at c = 0.25. Each point with its
    conservative 95 % interval (the union of the own-seed, bootstrap and pooled intervals of
    ``rubik.study_stats``); zero is "depth neither pays nor costs"."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8), constrained_layout=True)
    styles = {"ladder ends": ("ladder: 16 vs 7 blocks", COLORS["tiny"], "o", -0.04),
              "ladder slope": ("ladder: slope over 7/10/13/16 blocks", COLORS["tiny"], "s", 0.0),
              "families": ("TinyNet dials (15 blocks) vs ours (7), c = 0.25", COLORS["ours"], "D", 0.04)}
    for series, (label, color, marker, offset) in styles.items():
        d = depth[(depth["series"] == series)].dropna(subset=["theta"]).sort_values("epochs")
        if not len(d):
            continue
        x = d["epochs"].to_numpy(float) * 2 ** offset
        y = d["theta"].to_numpy(float)
        err = np.vstack([y - d["cons_lo"].to_numpy(float), d["cons_hi"].to_numpy(float) - y])
        ax.errorbar(x, y, yerr=err, fmt=marker + ("-" if series != "ladder slope" else ""), color=color,
                    mfc="white" if series == "ladder slope" else color, capsize=3, lw=1.2, label=label)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xscale("log", base=2)
    epochs = sorted(depth.dropna(subset=["theta"])["epochs"].unique())
    ax.set_xticks(epochs)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlim(min(epochs) / 1.3, max(epochs) * 1.3)
    ax.set_xlabel("training epochs (cosine to 0 over the run)")
    ax.set_ylabel("top-1 on test per doubling of blocks (points)")
    ax.set_ylim(top=max(ax.get_ylim()[1], 1.0))   # zero ("depth pays" above it) always in view
    ax.margins(y=0.08)
    ax.grid(alpha=0.3)
    _shared_legend(fig, [ax], ncol=1)
    if title:
        ax.set_title(title, fontsize=11)
    return fig
