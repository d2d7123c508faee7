"""Colours, column and unit lookups, and axis helpers shared by every figure of ``rubik.plots``.

Conventions (as in the paper's Figure 1): random models grey, inversed giant formula models
green, the accuracy/FLOPs frontier red, TinyNets / our formula blue; FLOPs on a log x axis, in
millions of multiply-accumulates ("MFLOPs"). Column names are looked up flexibly (``resolution``
or ``r``, ``flops`` or ``flops_m``...) so the same functions work on sweep results and on the
transcribed paper tables.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt  # the backend is the caller's choice (inline in notebooks, Agg in tests)
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

COLORS = {
    "random": "#9e9e9e",     # grey: randomly twisted models
    "giant": "#2ca02c",      # green: inversed giant formula (EfficientNet B^-phi)
    "frontier": "#d62728",   # red: accuracy/FLOPs frontier
    "tiny": "#1f77b4",       # blue: TinyNets / tiny formula
    "reference": "#000000",  # black: EfficientNet-B0 and other anchors
    "ours": "#ff7f0e",       # orange: our measured points overlaid on paper numbers
}
DIAL_COLORS = {"r": "#1f77b4", "d": "#ff7f0e", "w": "#9467bd"}
DIAL_NAMES = {"r": "resolution r", "d": "depth d", "w": "width w"}
# extra colours for other families (paper comparison figures)
_CYCLE = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#17becf", "#bcbd22", "#7f7f7f", "#ff7f0e"]

# --------------------------------------------------------------------------- columns and units

_ALIASES = {
    "r": ("r", "resolution", "res_mult"),
    "d": ("d", "depth", "depth_mult"),
    "w": ("w", "width", "width_mult"),
    "flops": ("flops", "macs", "flops_m", "mflops", "paper_flops", "paper_flops_m"),
    "params": ("params", "params_m", "paper_params", "paper_params_m"),
    "top1": ("top1", "top1_acc", "acc", "accuracy", "best_top1", "ema_top1", "paper_top1"),
    "name": ("name", "model", "label", "variant"),
}


def col(df: pd.DataFrame, key: str, required: bool = True) -> str | None:
    """The column of ``df`` that holds ``key`` (``"r"``, ``"flops"``, ``"top1"``...)."""
    if key in df.columns:
        return key
    for c in _ALIASES.get(key, ()):
        if c in df.columns:
            return c
    if required:
        raise KeyError(f"no column for {key!r} in {list(df.columns)} "
                       f"(accepted: {', '.join(_ALIASES.get(key, (key,)))})")
    return None


def mflops(df: pd.DataFrame, column: str | None = None) -> pd.Series:
    """FLOPs in millions, whatever the column's unit (``*_m`` columns are already M)."""
    c = column or col(df, "flops")
    s = pd.to_numeric(df[c], errors="coerce").astype(float)
    if c.endswith("_m") or c.startswith("m") or (s.dropna().abs().max() if s.notna().any() else 0) < 1e5:
        return s
    return s / 1e6


def _percent(s: pd.Series) -> pd.Series:
    """Accuracy in percent (accepts fractions in [0, 1])."""
    s = pd.to_numeric(s, errors="coerce").astype(float)
    if s.notna().any() and s.dropna().max() <= 1.0:
        return s * 100.0
    return s


# --------------------------------------------------------------------------- axes, titles and labels

def _log_flops_axis(ax, axis="x", enclose: bool = False):
    """Log scale with plain-number tick labels (10, 20, 50, 100, 200...), as many as the axis
    has room for: the labels of neighbouring ticks never touch. ``enclose``: widen the limits to
    the nearest ticks outside the data, so both ends of the axis have a labelled position."""
    set_scale = ax.set_xscale if axis == "x" else ax.set_yscale
    set_lim = ax.set_xlim if axis == "x" else ax.set_ylim
    a = ax.xaxis if axis == "x" else ax.yaxis
    set_scale("log")
    for _ in range(2 if enclose else 1):   # widening the limits may leave room for fewer ticks
        lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
        w, h = ax.get_position().size * ax.figure.get_size_inches()
        per_decade = (w if axis == "x" else h) / max(abs(math.log10(hi / lo)), 1e-3) if lo > 0 and hi > 0 else 0
        # the closest pair of ticks of each set is this many decades apart: keep >= ~0.45 inch
        for subs, gap in (((1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0), 0.097), ((1.0, 1.5, 2.0, 3.0, 5.0, 7.0), 0.146),
                          ((1.0, 2.0, 3.0, 5.0), 0.176), ((1.0, 2.0, 5.0), 0.30), ((1.0,), 1.0)):
            if per_decade * gap >= 0.45:
                break
        if enclose and 0 < lo < hi:
            ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2)
                     for m in subs]
            set_lim(max(t for t in ticks if t <= lo * (1 + 1e-9)), min(t for t in ticks if t >= hi * (1 - 1e-9)))
    a.set_major_locator(LogLocator(base=10, subs=subs))
    a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    a.set_minor_formatter(NullFormatter())


def seeds(n: int) -> str:
    """``"1 seed"``, ``"3 seeds"``: for titles and legends."""
    return f"{n} seed" + ("" if n == 1 else "s")


_VALUE_LABELS = {"top1_test": "top-1 (%) on the held-out test half of val",
                 "top1_select": "top-1 (%) on the select half of val", "top1": "top-1 (%) on val",
                 "ema_top1": "EMA top-1 (%) on val", "best_top1": "best-epoch top-1 (%) on val"}


def value_label(column: str) -> str:
    """The axis label of an accuracy column (``top1_test`` -> "top-1 (%) on the held-out test half of val")."""
    return _VALUE_LABELS.get(column, column.replace("_", " "))


def _plain_ticks(cb):
    """A colour bar with plain-number tick labels (``20``, not ``2 x 10^1``)."""
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    cb.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:e}"[0] in "25" else ""))
    return cb


def _new(figsize=(6.4, 4.4), **kw):
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True, **kw)
    return fig, ax
