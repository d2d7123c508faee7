"""Figures of the decisive study (``rubik.study``): top-1 against training epochs per FLOPs level,
the depth and resolution ladders at equal FLOPs, and the depth penalty's trend with the schedule."""
from __future__ import annotations

import matplotlib.pyplot as plt  # the backend is the caller's choice (inline in notebooks, Agg in tests)
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from .labels import _annotate, place_labels
from .style import COLORS, _log_flops_axis, seeds, value_label

_FAMILY_LABELS = {"giant": "inversed giant formula", "tiny": "TinyNet dials (paper)", "ours": "our fitted formula",
                  "base": "EfficientNet-B0"}


def _mean_std_dots(ax, sub, x, y, color, label, offset=0.0, fmt="-o"):
    """Mean +- std over seeds at each ``x`` (error bars), the seeds as small dots. A point with one
    seed so far is drawn open (no error bar) and joined to its neighbours by a dashed line: it is
    exploratory until its cell has 2+ seeds. Returns whether any point is such (for the legend);
    ``label`` names the family once, whatever the seed counts (``_seed_note`` says them)."""
    agg = sub.groupby(x)[y].agg(["mean", "std", "count"]).reset_index().sort_values(x)
    xs = agg[x].to_numpy(float) * (1 + offset)
    many = agg["count"].to_numpy() >= 2
    marker = fmt.lstrip("-")
    # lines: solid between points with 2+ seeds, dashed to a 1-seed point
    for i in range(len(xs) - 1):
        ax.plot(xs[i:i + 2], agg["mean"].iloc[i:i + 2], color=color, lw=1.6,
                ls="-" if many[i] and many[i + 1] else "--", zorder=2)
    if many.any():
        ax.errorbar(xs[many], agg["mean"][many], yerr=agg["std"][many].fillna(0), fmt=marker, color=color,
                    capsize=4, lw=1.6, zorder=3)
    if (~many).any():
        ax.plot(xs[~many], agg["mean"][~many], marker, color=color, mfc="white", mew=1.6, zorder=3)
    ax.plot([], [], "-" + marker, color=color, lw=1.6, label=label)   # the legend's handle: line + marker
    ax.scatter(sub[x].to_numpy(float) * (1 + offset), sub[y], color=color, s=9, alpha=0.45, zorder=2)
    return bool((~many).any())


def _seed_note(d: pd.DataFrame, y: str, by=("level", "family", "epochs")):
    """A legend entry ``(handle, label)`` for the error bars: mean +- std over seeds, with the
    seed counts of the cells drawn (e.g. "3 seeds per cell; B0: 2")."""
    from matplotlib.lines import Line2D

    n = d.groupby(list(by))[y].count()
    fams = n.groupby(level="family").agg(lambda v: sorted(set(int(x) for x in v if x >= 2)))
    main = sorted(set(sum((v for f, v in fams.items() if f != "base"), [])))
    text = "filled: mean ± std over seeds (" + ("/".join(map(str, main)) + " seeds per cell" if main else "")
    if "base" in fams and fams["base"]:
        text += ("; " if main else "") + "B0: " + "/".join(map(str, fams["base"])) + " seeds"
    handle = Line2D([], [], marker="o", color="0.35", ls="none")
    return handle, text + "); dots: single seeds"


def _open_marker_note(text: str = "open marker, dashed line: 1 seed so far (exploratory)", ls: str = "--"):
    """A legend entry ``(handle, label)`` explaining open markers (cells with one seed so far)."""
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="o", color="0.35", mfc="white", ls=ls, lw=1.2), text


def _epoch_axis(ax, epochs):
    """A log-2 epoch axis with a tick at each of ``epochs`` and room at both ends."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(epochs)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlim(min(epochs) / 1.25, max(epochs) * 1.25)


def _shared_legend(fig, axes, ncol: int | None = None, fontsize: float = 8, extra=()):
    """One legend below the panels, with every label of ``axes`` once (then ``extra``: pairs
    ``(handle, label)``): off the data."""
    entries = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if not lab.startswith("_"):
                entries.setdefault(lab, h)
    for h, lab in extra:
        entries.setdefault(lab, h)
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center",
                   ncol=ncol or min(len(entries), 4), fontsize=fontsize, frameon=False)


def plot_schedule_sensitivity(results: pd.DataFrame, y: str = "top1_test",
                              title: str | None = "Does the order change with longer training?",
                              epochs=None):
    """Top-1 against training epochs (log-2 axis), one panel per FLOPs level (and one for
    EfficientNet-B0): each family's mean +- std over seeds (error bars), seeds as dots; a cell with
    one seed so far open and joined by a dashed line; one legend below the panels.
    ``results``: the finished ``experiment == "schedule"`` trials of one or more ``rubik.study``
    sweeps (other rows are ignored); ``epochs``: the ticks of the shared epoch axis (default: every
    schedule in ``results``, ladders included, e.g. 5, 10, 20, 40, 80 for both decisive studies)."""
    d = results[results["experiment"] == "schedule"]
    epochs = sorted(int(e) for e in (epochs if epochs is not None else results["epochs"].unique()))
    levels = sorted(int(v) for v in d["level"].unique() if int(v) > 0)
    has_b0 = (d["family"] == "base").any()
    n = len(levels) + int(has_b0)
    fig, axes = plt.subplots(1, n, figsize=(4.3 * n, 4.8), constrained_layout=True, squeeze=False, sharex=True)
    axes = axes[0]
    open_points = False
    for ax, level in zip(axes, levels):
        sub = d[d["level"] == level]
        for i, fam in enumerate(f for f in ("giant", "tiny", "ours") if f in set(sub["family"])):
            open_points |= _mean_std_dots(ax, sub[sub["family"] == fam], "epochs", y, COLORS[fam],
                                          _FAMILY_LABELS[fam], offset=0.04 * (i - 1))
        c = sub["flops_ratio"].mean()
        ax.set_title(f"c = {c:.3g} ({sub['flops'].mean() / 1e6:.1f} MFLOPs)", fontsize=10)
    if has_b0:
        ax = axes[-1]
        open_points |= _mean_std_dots(ax, d[d["family"] == "base"], "epochs", y, COLORS["reference"],
                                      _FAMILY_LABELS["base"])
        ax.set_title("EfficientNet-B0 (c = 1)", fontsize=10)
    for ax in axes:
        _epoch_axis(ax, epochs)
        ax.set_xlabel("training epochs (log 2; cosine to 0 over each run)")
        ax.grid(alpha=0.3)
        ax.margins(y=0.1)   # the error bars' caps inside the axes
    notes = [_seed_note(d, y)] + ([_open_marker_note()] if open_points else [])
    _shared_legend(fig, axes, ncol=2, extra=notes)
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
        _mean_std_dots(ax, sub, x, y, COLORS["tiny"], f"ladder ({int(sub['epochs'].iloc[0])} epochs)")
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
    _shared_legend(fig, [a for a in axes if a.get_visible()], ncol=2,
                   extra=[_seed_note(d, y, by=("family", "name", "epochs"))])
    axes[0].set_ylabel(value_label(y))
    if title:
        fig.suptitle(title)
    return place_labels(fig)


_TREND_SERIES = {"ladder ends": "depth: ladder 16 vs 7 blocks (per doubling)",
                 "families": "depth: TinyNet dials vs ours, c = 0.25 (per doubling)"}


def _fmt_trend(t) -> str:
    """``+1.29 per doubling of epochs [+0.37, +2.25]``, and the crossover where the plan reports one."""
    text = f"slope {t['beta']:+.2f} per doubling of epochs [{t['beta_lo']:+.2f}, {t['beta_hi']:+.2f}]"
    if np.isfinite(t.get("crossover_epochs", np.nan)):
        text += (f"; crosses 0 at {t['crossover_epochs']:.0f} epochs "
                 f"[{t['crossover_lo']:.0f}, {t['crossover_hi']:.0f}]")
    return text


def plot_depth_trend(depth: pd.DataFrame, trends: pd.DataFrame | None = None,
                     title: str | None = "Does depth ever pay at equal FLOPs?", models: pd.DataFrame | None = None):
    """The penalty (or gain) for depth against training epochs (log-2 axis), in points per doubling
    of blocks: the depth ladder's 16 vs 7 blocks and the 40-epoch ladder slope (r = 0.8, w solved,
    c ~ 0.25), and the TinyNet dials (15 blocks) against our formula (7 blocks) at c = 0.25
    (``depth``: ``rubik.study_stats.depth_estimands``). Each point with its conservative 95 %
    interval (the union of the own-seed, bootstrap and pooled intervals); a point whose cells have
    one seed so far has no such interval: it is drawn open, with the bootstrap interval over images
    alone (thin bar), and is exploratory. ``trends`` (``rubik.study_stats.trends``): the plan's
    weighted line ``theta = alpha + beta log2 E`` through each series, dashed, its slope (and the
    crossover, where the plan reports one) in the legend. Zero is "depth neither pays nor costs".
    ``models`` (``rubik.study_stats.explore_trends``, exploratory): also the saturating curve
    ``theta = a + b / E`` of each series (dotted, with its asymptote ``a``), and both curves drawn
    on to twice the longest schedule, where the two disagree."""
    fig, ax = plt.subplots(figsize=(7.6, 6.6), constrained_layout=True)
    styles = {"ladder ends": ("ladder: 16 vs 7 blocks (r = 0.8, w solved)", COLORS["tiny"], "o", -0.05),
              "ladder slope": ("ladder: slope over 7/10/13/16 blocks", COLORS["tiny"], "s", 0.05),
              "families": ("TinyNet dials (15 blocks) vs our formula (7), c = 0.25", COLORS["ours"], "D", 0.0)}
    open_points = False
    for series, (label, color, marker, offset) in styles.items():
        d = depth[(depth["series"] == series)].dropna(subset=["theta"]).sort_values("epochs")
        if not len(d):
            continue
        x = d["epochs"].to_numpy(float) * 2 ** offset
        y = d["theta"].to_numpy(float)
        full = np.isfinite(d["cons_lo"].to_numpy(float))
        if full.any():
            err = np.vstack([y - d["cons_lo"].to_numpy(float), d["cons_hi"].to_numpy(float) - y])[:, full]
            ax.errorbar(x[full], y[full], yerr=err, fmt=marker, color=color, capsize=3, lw=1.4, ms=7, zorder=3)
        if (~full).any():
            open_points = True
            err = np.vstack([y - d["boot_lo"].to_numpy(float), d["boot_hi"].to_numpy(float) - y])[:, ~full]
            ax.errorbar(x[~full], y[~full], yerr=err, fmt=marker, color=color, mfc="white", mew=1.4, ms=7,
                        capsize=2, elinewidth=0.8, alpha=0.9, zorder=3)
        # legend handles in drawing order: the series, then its trend line
        ax.plot([], [], marker, color=color, ms=7, mfc=color if full.any() else "white", label=label)
        if trends is not None and series in _TREND_SERIES:
            t = trends[trends["series"] == _TREND_SERIES[series]]
            if len(t) and np.isfinite(t["beta"].iloc[0]):
                t = t.iloc[0]
                xs = np.geomspace(d["epochs"].min(), d["epochs"].max() * (2 if models is not None else 1), 50)
                exploratory = "; through 1-seed points: exploratory" if (~full).any() else ""
                ax.plot(xs, t["alpha"] + t["beta"] * np.log2(xs), "--", color=color, lw=1.1, alpha=0.8, zorder=2,
                        label=f"   the plan's trend line (in log2 epochs{exploratory}):\n   {_fmt_trend(t)}")
        if models is not None and series in _TREND_SERIES:
            m = models[models["series"] == _TREND_SERIES[series]]
            if len(m) and np.isfinite(m["asymptote"].iloc[0]):
                m = m.iloc[0]
                xs = np.geomspace(d["epochs"].min(), d["epochs"].max() * 2, 50)
                ax.plot(xs, m["saturating_p0"] + m["saturating_p1"] / xs, ":", color=color, lw=1.8, zorder=2,
                        label=f"   saturating a + b / epochs (exploratory): never crosses 0 if a < 0;\n"
                              f"   a = {m['asymptote']:+.2f} [{m['asymptote_lo']:+.2f}, {m['asymptote_hi']:+.2f}], "
                              f"chi2 {m['saturating_chi2']:.2f} (line {m['line_chi2']:.2f})")
    ax.axhline(0, color="0.3", lw=0.8)
    epochs = sorted(int(e) for e in depth.dropna(subset=["theta"])["epochs"].unique())
    if models is not None and epochs:
        epochs.append(2 * epochs[-1])
    _epoch_axis(ax, epochs)
    ax.set_xlabel("training epochs (log 2; cosine to 0 over each run)")
    ax.set_ylabel("top-1 on test per doubling of blocks (points)")
    ax.set_ylim(top=max(ax.get_ylim()[1], 1.0))   # zero ("depth pays" above it) always in view
    ax.margins(y=0.08)
    ax.grid(alpha=0.3)
    extra = [_open_marker_note("open marker: a side with 1 seed so far (no conservative interval); "
                               "thin bar = bootstrap (exploratory)", ls="none")]
    _shared_legend(fig, [ax], ncol=1, extra=extra if open_points else ())
    if title:
        ax.set_title(title + " (filled: conservative 95 % interval)", fontsize=11)
    return fig


#: the other bases' studies (issue 33): family -> (colour, legend label)
_BASE_FAMILIES = {
    "recon": (COLORS["tiny"], "tiny formula: GhostNet-B/C/D (reconstructed)"),
    "tiny": (COLORS["tiny"], "tiny formula: TinyNet dials"),
    "ours": (COLORS["ours"], "our fitted formula (B0 sweep)"),
    "giant": (COLORS["giant"], "inversed giant formula"),
    "width": ("#9467bd", "width only (original GhostNet / the base)"),
    "width_a": ("#8c564b", "width only on GhostNet-A"),
}


def plot_base_accuracy_flops(results: pd.DataFrame, y: str = "top1_test", paper: pd.DataFrame | None = None,
                             title: str | None = None):
    """Accuracy against FLOPs on another base (the ``ghostnet`` or ``resnet`` trials of a
    ``rubik.study`` sweep): each family's mean +- std over seeds at each level's real MFLOPs (log x),
    seeds as dots, a 1-seed cell open. ``paper``: reference points (columns ``family`` recon / width,
    ``model``, ``mflops``, ``top1``; the appendix's GhostNets on ImageNet at 240/224 px) drawn on a
    second panel with its own axes, since their accuracies are ImageNet's, not the proxy's."""
    d = results[results["experiment"].isin(["ghostnet", "resnet"])].assign(mflops=lambda t: t["flops"] / 1e6)
    has_paper = bool(paper is not None and len(paper))
    fig, axes = plt.subplots(1, 1 + int(has_paper), figsize=(6.2 + 4.6 * has_paper, 4.8), constrained_layout=True,
                             squeeze=False, gridspec_kw={"width_ratios": [1.35, 1][:1 + int(has_paper)]})
    axes = axes[0]
    ax = axes[0]
    open_points = False
    fams = [f for f in _BASE_FAMILIES if f in set(d["family"])]
    for i, fam in enumerate(fams):
        color, label = _BASE_FAMILIES[fam]
        open_points |= _mean_std_dots(ax, d[d["family"] == fam], "mflops", y, color, label,
                                      offset=0.012 * (i - (len(fams) - 1) / 2))
    ax.set_xlabel("real MFLOPs at the study's scale (log)")
    ax.set_ylabel(value_label(y))
    base = d["base"].iloc[0] if "base" in d and len(d) else ""
    px = int(d["base_resolution"].iloc[0]) if "base_resolution" in d and len(d) else 0
    ax.set_title(f"proxy (Imagenette), base {base} at {px} px", fontsize=10)
    ax.margins(x=0.08, y=0.12)
    ax.grid(alpha=0.3)
    if has_paper:
        pax = axes[1]
        for fam, marker in (("recon", "s"), ("width", "D")):
            p = paper[paper["family"] == fam].sort_values("mflops")
            if not len(p):
                continue
            color, label = _BASE_FAMILIES[fam]
            pax.plot(p["mflops"], p["top1"], marker, ls=":", color=color, mfc="white", mew=1.5)
            short = [str(m).replace("GhostNet-", "").replace("GhostNet ", "") for m in p["model"]]
            _annotate(pax, p["mflops"], p["top1"], short, fontsize=7)
        pax.plot([], [], "s:", color="0.35", mfc="white", label="paper, appendix Table 1 (ImageNet)")
        pax.set_xlabel("paper MFLOPs (GhostNet-A 240 px, GhostNet 224 px; log)")
        pax.set_ylabel("ImageNet top-1 (%), paper")
        pax.set_title("reference: the appendix's GhostNets (not trained here)", fontsize=10)
        pax.margins(x=0.12, y=0.12)
        pax.grid(alpha=0.3)
    notes = [_seed_note(d, y, by=("level", "family"))] + ([_open_marker_note()] if open_points else [])
    _shared_legend(fig, axes, ncol=2, extra=notes)
    for a in axes:   # after the layout: tick labels as many as fit
        _log_flops_axis(a)
    if title is None:
        title = "Accuracy against FLOPs: tiny formula, inversed giant and width only at equal FLOPs"
    if title:
        fig.suptitle(title)
    if has_paper:
        place_labels(fig)
    return fig
