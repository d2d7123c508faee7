"""Point labels placed clear of the data, and the checks that a figure reads cleanly.

``_annotate`` labels points; ``place_labels`` then moves each label to the nearest free spot
around its point (greedy, after a draw: text sizes are known only then). ``text_overlaps`` and
``layout_problems`` say what keeps a drawn figure from reading cleanly (texts over texts, over
markers or error bars, legends over data, points cut off by the axes); the tests run them on
every figure the presets draw.
"""
from __future__ import annotations

import math

import matplotlib.text  # the backend is the caller's choice (inline in notebooks, Agg in tests)
import numpy as np
from matplotlib.collections import LineCollection, PathCollection


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
