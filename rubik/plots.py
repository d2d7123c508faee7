"""Figures and tables for the study.

Every ``plot_*`` function takes pandas DataFrames and returns a matplotlib
``Figure`` (nothing is shown or written here). ``save_figure`` writes it as PNG
and PDF under stable names; ``save_table`` writes a DataFrame as CSV and
Markdown. The notebooks only glue these together.

Conventions (as in the paper's Figure 1): random models grey, inversed giant
formula models green, the accuracy/FLOPs frontier red, TinyNets / our formula
blue; FLOPs on a log x axis, in millions of multiply-accumulates ("MFLOPs").
Column names are looked up flexibly (``resolution`` or ``r``, ``flops`` or
``flops_m``...) so the same functions work on sweep results and on the
transcribed paper tables.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib  # the backend is the caller's choice (inline in notebooks, Agg in tests)
import matplotlib.cm
import matplotlib.colors
import matplotlib.patches
import matplotlib.text
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

__all__ = [
    "COLORS", "save_figure", "save_table", "to_markdown", "mflops",
    "plot_sampling", "plot_flops_histogram", "plot_frontier", "plot_frontier_dials",
    "plot_dial_importance", "plot_dial_scatter", "plot_formula_fit", "plot_accuracy_vs_flops",
    "plot_tiny_vs_giant", "plot_latency", "plot_latency_frontier", "plot_flops_check", "plot_training_curves",
    "plot_schedule_sensitivity", "plot_dial_ladders", "place_labels", "text_overlaps", "layout_problems",
    "seeds", "value_label",
]

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

# --------------------------------------------------------------------------- helpers

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


def _annotate(ax, xs, ys, labels, fontsize=7, color="0.2", offset=(4, 3)):
    """Label points; ``place_labels`` later moves each label to a free spot around its point
    (a thin leader line joins the labels that end up further away)."""
    for x, y, t in zip(xs, ys, labels):
        if t is None or (isinstance(t, float) and math.isnan(t)) or not np.isfinite([x, y]).all():
            continue
        a = ax.annotate(str(t), (x, y), textcoords="offset points", xytext=offset, fontsize=fontsize, color=color,
                        arrowprops=dict(arrowstyle="-", lw=0.5, color=color, alpha=0.7, shrinkA=0, shrinkB=2))
        a.arrow_patch.set_visible(False)
        a._rubik_point_label = True


# where a label may go around its point: (dx, dy) in points, its alignment, and how much further
# away it is (the rings further out cost more and get a leader line); nearest first
_NEAR = [((4, 3), "left", "bottom"), ((4, -3), "left", "top"), ((-4, 3), "right", "bottom"),
         ((-4, -3), "right", "top"), ((0, 6), "center", "bottom"), ((0, -6), "center", "top"),
         ((7, 0), "left", "center"), ((-7, 0), "right", "center")]
_SPOTS = [(xy, ha, va, 0) for xy, ha, va in _NEAR] + [
    ((dx * k, dy * k), ha, va, ring) for ring, k in ((1, 3.0), (2, 5.0)) for (dx, dy), ha, va in _NEAR]
_RELPOS = {"left": 0.0, "center": 0.5, "right": 1.0, "bottom": 0.0, "top": 1.0}


def _box(t, renderer):
    """The window extent of the text itself (an annotation's extent also covers its leader line)."""
    if isinstance(t, matplotlib.text.Annotation):
        t.update_positions(renderer)
    return matplotlib.text.Text.get_window_extent(t, renderer)


def _text_boxes(fig, renderer, skip=()):
    """Window extents of the fixed texts of ``fig`` (ticks, axis labels, titles, legends), and
    of the legend frames."""
    boxes = []
    for t in _figure_texts(fig, renderer):
        if t not in skip:
            boxes.append(_box(t, renderer))
    for leg in [ax.get_legend() for ax in fig.axes] + list(fig.legends):
        if leg is not None and leg.get_visible():
            boxes.append(leg.get_window_extent(renderer))
    return boxes


def _marks(ax):
    """What a label should not cover, in display coordinates: the markers and scatter points,
    and points every few pixels along the lines."""
    markers, lines = [], []
    for line in ax.get_lines():
        if not line.get_visible():
            continue
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if line.get_linestyle() not in ("None", "", " ", "none") and len(xy) > 1:
            for a, b in zip(xy[:-1], xy[1:]):
                n = max(2, int(np.hypot(*(b - a)) / 3))
                lines.append(a + np.linspace(0, 1, n)[:, None] * (b - a))
        if line.get_marker() not in (None, "None", "", " ", "none"):
            markers.append(xy)
    for coll in ax.collections:
        off = coll.get_offsets()
        if len(off) and coll.get_visible():
            markers.append(coll.get_offset_transform().transform(np.asarray(off, float)))

    def stack(parts):
        parts = [p for p in parts if len(p)]
        return np.vstack(parts) if parts else np.zeros((0, 2))

    return stack(markers), stack(lines)


def _set_spot(a, spot):
    (dx, dy), ha, va, ring = spot
    a.set_position((dx, dy))
    a.set_horizontalalignment(ha)
    a.set_verticalalignment(va)
    if getattr(a, "arrow_patch", None) is not None:
        a.arrowprops["relpos"] = (_RELPOS[ha], _RELPOS[va])   # the leader starts at the corner nearest the point
        a.arrow_patch.set_visible(ring > 0)


def place_labels(fig, passes: int = 2):
    """Move every point label (``_annotate``) to the nearest spot around its point where it
    covers no other text and no legend, as few markers and lines as possible, and stays inside
    the axes; greedy, in drawing order. Needs a draw (text sizes are known only then); run twice
    because the layout engine may shift the axes after the labels move."""
    for _ in range(passes):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            labels = [t for t in ax.texts if getattr(t, "_rubik_point_label", False) and t.get_visible()]
            if not labels:
                continue
            fixed = _text_boxes(fig, renderer, skip=set(labels))
            _, lines = _marks(ax)
            markers, radii = _data_points(ax)
            pad = renderer.points_to_pixels(2.0)   # as layout_problems asks: 2 pt clear of other markers
            frame = ax.get_window_extent(renderer)
            placed = []
            anchors = np.array([ax.transData.transform(t.xy) for t in labels])
            for a, own in zip(labels, anchors):
                mine = np.hypot(*(markers - own).T) <= 2.0 if len(markers) else np.zeros(0, bool)
                others, other_radii = markers[~mine], radii[~mine]
                rivals = anchors[np.hypot(*(anchors - own).T) > 1.0]   # other labelled points
                best = None
                for i, spot in enumerate(_SPOTS):
                    _set_spot(a, spot)
                    bb = _box(a, renderer)
                    grown = bb.padded(1.5 * renderer.points_to_pixels(1.0))
                    score = 100 * sum(grown.overlaps(b) for b in placed + fixed)
                    score += 10 * _near_box(others, other_radii, bb, pad) + 3 * _count_inside(lines, grown)
                    if len(rivals) and _box_distance(rivals, bb).min() < _box_distance(own[None], bb)[0]:
                        score += 20   # nearer another labelled point than its own: it would read as that one's
                    if not (frame.x0 <= bb.x0 and bb.x1 <= frame.x1 and frame.y0 <= bb.y0 and bb.y1 <= frame.y1):
                        score += 30
                    score += 8 * spot[3] + 0.01 * i   # nearer spots first
                    if best is None or score < best[0]:
                        best = (score, spot)
                    if score < 1:
                        break
                _set_spot(a, best[1])
                placed.append(_box(a, renderer))
    return fig


def _box_distance(points, bbox):
    """Distance of each point to ``bbox`` (0 inside)."""
    dx = np.maximum(np.maximum(bbox.x0 - points[:, 0], points[:, 0] - bbox.x1), 0)
    dy = np.maximum(np.maximum(bbox.y0 - points[:, 1], points[:, 1] - bbox.y1), 0)
    return np.hypot(dx, dy)


def _count_inside(points, bbox) -> int:
    if not len(points):
        return 0
    return int(((points[:, 0] > bbox.x0) & (points[:, 0] < bbox.x1)
                & (points[:, 1] > bbox.y0) & (points[:, 1] < bbox.y1)).sum())


def _figure_texts(fig, renderer):
    """The drawn, non-empty texts of ``fig``: texts and annotations of every axes, tick labels,
    axis labels, titles, legend entries, figure texts."""
    out = []
    for ax in fig.axes:
        out += list(ax.texts)
        for axis, k in ((ax.xaxis, 0), (ax.yaxis, 1)):   # the tick labels drawn: those inside the view
            lo, hi = sorted(axis.get_view_interval())
            eps = 1e-9 * (abs(lo) + abs(hi))
            out += [t for t in axis.get_ticklabels(which="both") if lo - eps <= t.get_position()[k] <= hi + eps]
            out.append(axis.label)
        out += [ax.title, ax._left_title, ax._right_title]
        if ax.get_legend() is not None:
            out += list(ax.get_legend().get_texts()) + [ax.get_legend().get_title()]
    for leg in fig.legends:
        out += list(leg.get_texts()) + [leg.get_title()]
    out += list(fig.texts) + [t for t in (fig._suptitle, fig._supxlabel, fig._supylabel) if t is not None]
    keep = []
    for t in dict.fromkeys(out):   # once each (the suptitle is also one of fig.texts)
        if not t.get_visible() or not t.get_text().strip():
            continue
        if isinstance(t, matplotlib.text.Annotation) and not t._check_xy(renderer):
            continue   # an annotation whose point is outside the axes is not drawn
        bb = _box(t, renderer)
        if bb.width > 0 and bb.height > 0 and np.isfinite([bb.x0, bb.y0, bb.x1, bb.y1]).all():
            keep.append(t)
    return keep


def text_overlaps(fig, tolerance: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of texts of ``fig`` that overlap once drawn (point labels, tick labels, axis labels,
    titles, legend entries), as ``(text, text)``; empty for a clean figure. ``tolerance``: pixels
    two boxes may share (glyph boxes that merely touch are fine)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = _figure_texts(fig, renderer)
    boxes = [_box(t, renderer).padded(-tolerance) for t in texts]
    hits = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if boxes[i].overlaps(boxes[j]):
                hits.append((texts[i].get_text(), texts[j].get_text()))
    return hits


def _data_points(ax):
    """What a text or a legend must not hide and the axes must not cut, in display coordinates:
    the markers (error-bar caps included) and scatter points of ``ax`` and both ends of its error
    bars, as ``(points, radii)``: a marker's radius in pixels (0 for an error bar's end)."""
    from matplotlib.collections import LineCollection, PathCollection

    px = ax.figure.dpi / 72.0
    parts, radii = [], []

    def add(xy, r):
        xy = np.asarray(xy, float).reshape(-1, 2)
        keep = np.isfinite(xy).all(axis=1)
        parts.append(xy[keep])
        radii.append(np.broadcast_to(np.asarray(r, float), (len(xy),))[keep])

    for line in ax.get_lines():
        if line.get_visible() and line.get_marker() not in (None, "None", "", " ", "none"):
            add(line.get_transform().transform(np.asarray(line.get_xydata(), float)), line.get_markersize() / 2 * px)
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            sizes = coll.get_sizes() if len(coll.get_sizes()) else np.array([36.0])
            xy = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), float))
            add(xy, np.resize(np.sqrt(sizes) / 2 * px, len(xy)))
        elif isinstance(coll, LineCollection):   # error bars: both ends of every bar
            for seg in coll.get_segments():
                if len(seg):
                    add(coll.get_transform().transform(np.asarray(seg, float)), 0.0)
    if not parts:
        return np.zeros((0, 2)), np.zeros(0)
    return np.vstack(parts), np.concatenate(radii)


def _near_box(points, radii, bbox, pad: float = 0.0):
    """How many of the marks (points with radii) reach into ``bbox`` (grown by ``pad`` pixels)."""
    if not len(points):
        return 0
    return int((_box_distance(points, bbox) < radii + pad).sum())


def _panel_name(ax, i):
    return ax.get_title() or ax.get_ylabel() or f"panel {i + 1}"


def layout_problems(fig, tolerance: float = 0.5) -> list[str]:
    """What keeps ``fig`` from reading cleanly, one line each; empty for a clean figure:

    - texts that overlap each other (``text_overlaps``: point labels, ticks, axis labels, legends);
    - two point labels naming the same point (stacked: write them as one label);
    - a text drawn over a marker or an error bar other than its own point's (it reads as that
      point's label, or hides it);
    - a legend over a marker or an error bar of the axes (the legend hides data);
    - a marker or an error bar's end outside its axes (the axis cuts it off).

    ``tolerance``: pixels two boxes may share (glyph boxes that merely touch are fine)."""
    problems = [f"texts overlap: {a!r} / {b!r}" for a, b in text_overlaps(fig, tolerance)]
    renderer = fig.canvas.get_renderer()
    pad = renderer.points_to_pixels(2.0)   # a text keeps 2 pt from the markers it does not label
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        name = _panel_name(ax, i)
        pts, radii = _data_points(ax)
        frame = ax.get_window_extent(renderer)
        if len(pts):
            out = ((pts[:, 0] < frame.x0 - tolerance) | (pts[:, 0] > frame.x1 + tolerance)
                   | (pts[:, 1] < frame.y0 - tolerance) | (pts[:, 1] > frame.y1 + tolerance))
            if out.any():
                x, y = ax.transData.inverted().transform(pts[out][0])
                problems.append(f"{name}: {int(out.sum())} data point(s) outside the axes (clipped), "
                                f"e.g. at ({x:.3g}, {y:.3g})")
        for leg in [ax.get_legend()] + list(fig.legends):
            if leg is not None and leg.get_visible():
                n = _near_box(pts, radii, leg.get_window_extent(renderer).padded(-tolerance))
                if n:
                    problems.append(f"{name}: the legend covers {n} data point(s)")
        texts = [t for t in ax.texts if t.get_visible() and t.get_text().strip()
                 and not (isinstance(t, matplotlib.text.Annotation) and not t._check_xy(renderer))]
        anchors = {}
        for t in texts:
            own = None
            if isinstance(t, matplotlib.text.Annotation):
                own = ax.transData.transform(t.xy)
                for other, xy in anchors.items():
                    if np.hypot(*(xy - own)) <= 2.0:
                        problems.append(f"{name}: the labels {other!r} and {t.get_text()!r} name the same point")
                anchors[t.get_text()] = own
            keep = np.ones(len(pts), bool) if own is None else np.hypot(*(pts - own).T) > 2.0
            n = _near_box(pts[keep], radii[keep], _box(t, renderer), pad)
            if n:
                problems.append(f"{name}: the text {t.get_text()!r} covers {n} data point(s)")
    return problems


# --------------------------------------------------------------------------- output

def save_figure(fig, name: str, out_dir, formats: Sequence[str] = ("png", "pdf"), dpi: int = 150):
    """Write ``fig`` as ``out_dir/name.png`` and ``.pdf``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem if Path(name).suffix in (".png", ".pdf") else name
    paths = []
    for fmt in formats:
        p = out / f"{stem}.{fmt}"
        # no creation date in the PDF: the same figure from the same records is the same file
        meta = {"CreationDate": None} if fmt == "pdf" else None
        fig.savefig(p, dpi=dpi, bbox_inches="tight", metadata=meta)
        paths.append(p)
    return paths


def _fmt(v, floatfmt):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating)):
        return format(float(v), floatfmt)
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_fmt(x, floatfmt) for x in v) + ")"
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4g", index: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no dependency on ``tabulate``)."""
    d = df.reset_index() if index else df
    head = [str(c) for c in d.columns]
    rows = [[_fmt(v, floatfmt) for v in r] for r in d.itertuples(index=False, name=None)]
    num = [pd.api.types.is_numeric_dtype(d[c]) for c in d.columns]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if n else "---" for n in num) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def save_table(df: pd.DataFrame, name: str, out_dir, floatfmt: str = ".4g", index: bool = False):
    """Write ``df`` as ``out_dir/name.csv`` and ``name.md``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv, md = out / f"{name}.csv", out / f"{name}.md"
    df.to_csv(csv, index=index)
    md.write_text(to_markdown(df, floatfmt=floatfmt, index=index))
    return [csv, md]


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
    band = f"±{n_sigma:g}σ band of the GP"
    for ax, dial in zip(axes[0], dials):
        dc = col(cv, dial)
        std = f"{dial}_std" if f"{dial}_std" in cv else (f"{dc}_std" if f"{dc}_std" in cv else None)
        if std:   # a GP fit: its mean and band
            ax.plot(cv[x], cv[dc], "-", color=DIAL_COLORS[dial], lw=2, label=f"{dial}(c): GP mean")
            ax.fill_between(cv[x], cv[dc] - n_sigma * cv[std], cv[dc] + n_sigma * cv[std],
                            color=DIAL_COLORS[dial], alpha=0.18, lw=0, label=band)
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
    for ax in axes[0]:   # every panel's entries once: r(c) and d(c) are GP fits, w(c) is solved
        for h, lab in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(lab, matplotlib.patches.Patch(color="0.5", alpha=0.3) if lab == band else h)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncol=min(len(entries), 3),
               fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return place_labels(fig)


# --------------------------------------------------------------------------- comparisons

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
    if label in d:   # models with the same FLOPs (GhostNet-A with and without HSwish): one label
        same = pd.DataFrame({"x": px.round(6).values, "y": oy.round(6).values, "t": d[label].astype(str).values})
        merged = same.groupby(["x", "y"], sort=False)["t"].agg(lambda t: " / ".join(dict.fromkeys(t))).reset_index()
        _annotate(ax, merged["x"], merged["y"], merged["t"], fontsize=7)
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


# --------------------------------------------------------------------------- the decisive experiments (rubik.study)

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
