"""The item that draws the timeline: every layer of a ``timeline_data.TimelineData`` on the rows the view gives
it (``timeline_rows.Row``: a lane key's bars on its row), the counters' lines, the "unblocked by" arrows, the
selection and a range being selected; it finds the bar under a point (``hit``) and a bar's rectangle.

Drawing follows pyqtgraph's fast path (BarGraphItem): one ``drawRects`` call per colour with the rectangles in
a numpy-backed array, no pen.  Each frame asks every layer what is visible (``timeline_layers``): while the
view holds few bars it gets them all, exactly, and merges those narrower than a pixel per lane, colour and
pixel column; otherwise it gets the bars at least a bin long exactly and, for the rest, the cells of the finest
level of detail whose bin is at least a pixel (lane, colour, bin: drawn lighter where they cover little of
their bin).  So a frame costs about the same for 1,000 bars or 10,000,000.  A counter with more points than
pixels is drawn from each pixel column's first, lowest, highest and last value.
"""
import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import internals
from PySide6 import QtCore, QtGui

from . import theme
from .timeline_arrows import paint_arrows
from .timeline_colors import COLOR_KEYS, PALETTE
from .timeline_layers import Bars
from .timeline_rows import Row

# Where each layer sits inside a lane of height 1 (lane i spans y = i .. i+1, drawn top-down).
LAYOUT = (("life", 0.04, 0.92), ("starting", 0.04, 0.92), ("tasks", 0.14, 0.50), ("waits", 0.66, 0.13),
          ("holds", 0.80, 0.13), ("used", 0.10, 0.58), ("moments", 0.02, 0.40),
          ("obj_holds", 0.08, 0.46), ("obj_mholds", 0.08, 0.46), ("obj_waits", 0.60, 0.30),
          ("obj_moments", 0.02, 0.96), ("sends", 0.10, 0.50))
#: The stretches a live view skipped are hatched before this layer: over the lanes' lifetimes, under every bar.
SKIPPED_UNDER = "tasks"
HIT_ORDER = ("obj_moments", "moments", "sends", "used", "tasks", "obj_holds", "obj_mholds", "holds", "obj_waits",
             "waits", "starting", "life")
#: Layers of zero-length bars, drawn as ticks this many pixels wide.
TICK_PX = {"used": 2, "moments": 3, "obj_moments": 3, "sends": 2}
#: Where a counter draws inside its row: from the bottom (value 0) to the top (its ``vmax``).
COUNTER_BOTTOM, COUNTER_TOP = 0.94, 0.06
#: A counter with more points than this many per pixel column in view is drawn from each column's first,
#: lowest, highest and last point.
COUNTER_POINTS_PER_PX = 2
#: Bars wider than this many pixels get an outline, so neighbours stay apart.
OUTLINE_MIN_PX = 5
#: Task bars wider than this get their index written inside.
TASK_LABEL_MIN_PX = 28
#: A cell of a level of detail that covers at least this share of its bin is drawn in full colour, at least
#: SHADE_HALF lighter, less lighter still: dense stretches look dense.
SHADE_FULL, SHADE_HALF = 0.5, 0.1
SHADE_ALPHA = (255, 170, 100)


def counter_points(c, t0, vx0, vx1, pw, ncols, t_end):
    """(x, value) of the polyline drawing counter ``c`` over [vx0, vx1] (seconds from ``t0``, ns), or None:
    a step function's points as steps, up to the run's end; with more points than COUNTER_POINTS_PER_PX per
    pixel column, each column's first, lowest, highest and last value at the column's first point."""
    t, v = c.t, c.v
    if not len(t):
        return None
    a, b = t0 + int((vx0 - pw) * 1e9), t0 + int((vx1 + pw) * 1e9)
    lo = max(int(np.searchsorted(t, a, side="right")) - 1, 0)          # the value holding at the left edge
    hi = min(int(np.searchsorted(t, b, side="right")) + 1, len(t))
    if hi <= lo:
        return None
    x, v = (t[lo:hi] - t0) / 1e9, np.asarray(v[lo:hi], np.float64)
    if len(x) > COUNTER_POINTS_PER_PX * ncols:
        col = np.floor((x - vx0) / pw).astype(np.int64)
        starts = np.flatnonzero(np.concatenate(([True], col[1:] != col[:-1])))
        ends = np.append(starts[1:], len(x)) - 1
        xs = np.repeat(x[starts], 4)
        vs = np.stack((v[starts], np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts), v[ends]),
                      axis=1).ravel()
        if c.step and len(starts) > 1:
            # each column's last value holds until the next column's first point: a flat line across columns
            # without points (a stretch where nothing changed, or a live view skipped), not a slope
            at = np.arange(4, 4 * len(starts), 4)
            xs, vs = np.insert(xs, at, x[starts[1:]]), np.insert(vs, at, v[ends[:-1]])
        x, v = xs, vs
    elif c.step and len(x) > 1:
        x, v = np.repeat(x, 2)[1:], np.repeat(v, 2)[:-1]
    if c.step:
        end = min(vx1 + pw, t_end)
        if end > x[-1]:
            x, v = np.append(x, end), np.append(v, v[-1])
    return x, v


def _group_order(group, x):
    """The order sorting by ``group`` (non-negative integers), then ``x``.  Cells come in order of time: a
    stable sort by group alone keeps it (a radix sort, for groups that fit 16 bits), checked in one pass."""
    if len(group) and int(group.max()) < (1 << 15):
        order = np.argsort(group.astype(np.int16), kind="stable")
        g, xs = group[order], x[order]
        if len(g) < 2 or ((g[1:] != g[:-1]) | (xs[1:] >= xs[:-1])).all():
            return order
    return np.lexsort((x, group))


class TimelineItem(pg.GraphicsObject):
    """Draws every layer of a TimelineData; culls to the view and merges sub-pixel bars."""

    def __init__(self):
        super().__init__()
        self.data = None
        self._lane_pids = np.zeros(0, np.int64)
        self._lane_sorted = np.zeros(0, np.int64)
        self._lane_index = np.zeros(0, np.int64)
        self._aliases = {}             # row index -> the other lane keys drawn on it
        self._rects = internals.PrimitiveArray(QtCore.QRectF, 4)
        self._brushes = {}
        for k, v in PALETTE.items():
            for shade, alpha in enumerate(SHADE_ALPHA):
                c = QtGui.QColor(v)
                c.setAlpha(alpha)
                self._brushes[(k, shade)] = QtGui.QBrush(c)
        self._skipped = QtGui.QBrush(QtGui.QColor(theme.MUTED_TEXT), QtCore.Qt.BDiagPattern)
        self.drawn = {}                # layer -> (rects, colours) of the last frame (tests, the benchmark)
        self._outline = QtGui.QPen(QtGui.QColor(theme.BACKGROUND))
        self._outline.setCosmetic(True)
        self._outline.setWidthF(1.0)
        self._sel_pen = QtGui.QPen(QtGui.QColor(theme.SELECTION))
        self._sel_pen.setCosmetic(True)
        self._sel_pen.setWidthF(2.0)
        self.selected = None           # (layer, index in layer)
        self.lanes_drawn = 0           # statistics of the last frame (for tests and the benchmark)
        self.rects_drawn = 0
        self.rows = []                 # Row, top to bottom
        self.row_counters = {}         # row index -> [tracks.Counter]
        self.arrows = None             # (x0, y0, x1, y1) arrays, view coordinates: "unblocked by"
        self.region = None             # (x0, x1) of a range being selected
        self.counters_drawn = 0
        self._band = QtGui.QBrush(QtGui.QColor(theme.GROUP_BAND))
        self._region_brush = QtGui.QBrush(QtGui.QColor(47, 111, 214, 40))
        self._arrow_pen = QtGui.QPen(QtGui.QColor(theme.HANDOFF))
        self._arrow_pen.setCosmetic(True)
        self._arrow_pen.setWidthF(1.3)
        self._counter_pens = {}

    def set_data(self, data):
        self.prepareGeometryChange()
        self.data = data
        if not self.rows:              # until the view gives its rows: the process lanes
            self.set_rows([Row(lane.pid, lane.label, "process", pid=lane.pid) for lane in data.lanes])
        self.update()

    def set_rows(self, rows, row_counters=None, aliases=None):
        """The rows drawn, top to bottom, the counters drawn on some of them (row index -> counters), and
        lane keys drawn on another's row (``aliases``: key -> row index; a thread's on its process's)."""
        self.prepareGeometryChange()
        self.rows = list(rows)
        self.row_counters = row_counters or {}
        keys = [r.key for r in self.rows] + list((aliases or {}).keys())
        index = list(range(len(self.rows))) + list((aliases or {}).values())
        self._lane_pids = np.array(keys, np.int64)
        order = np.argsort(self._lane_pids, kind="stable")
        self._lane_sorted = self._lane_pids[order]
        self._lane_index = np.array(index, np.int64)[order]
        self._aliases = {}
        for key, i in (aliases or {}).items():
            self._aliases.setdefault(i, []).append(key)
        self.update()

    def lanes_of(self, pids):
        """Lane index of each pid (-1 for pids without a lane)."""
        if not len(self._lane_sorted) or not len(pids):
            return np.full(len(pids), -1, np.int64)
        pos = np.searchsorted(self._lane_sorted, pids)
        pos = np.clip(pos, 0, len(self._lane_sorted) - 1)
        hit = self._lane_sorted[pos] == pids
        return np.where(hit, self._lane_index[pos], -1)

    def boundingRect(self):
        if self.data is None:
            return QtCore.QRectF()
        return QtCore.QRectF(0.0, 0.0, max(self.data.t_end, 1e-3), max(len(self.rows), 1))

    def _draw(self, p, rects, brush, pen=None):
        n = len(rects)
        if not n:
            return
        self._rects.resize(n)
        self._rects.ndarray()[:] = rects
        p.setPen(pen if pen is not None else QtCore.Qt.NoPen)
        p.setBrush(brush)
        p.drawRects(*self._rects.drawargs())
        self.rects_drawn += n

    def _draw_groups(self, p, rects, colors, shade, outline):
        """One ``drawRects`` per colour and shade, outlined bars (in full colour) after the plain ones: the rects
        grouped by one sort, not a pass over all of them per group."""
        group = (colors.astype(np.int64) * len(SHADE_ALPHA) + shade) * 2 + outline
        order = np.argsort(group, kind="stable")
        group = group[order]
        rects = rects[order]
        starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
        ends = np.append(starts[1:], len(group))
        for lo, hi in zip(starts.tolist(), ends.tolist()):
            g = int(group[lo])
            framed, shade_color = g & 1, g >> 1
            c, s = divmod(shade_color, len(SHADE_ALPHA))
            if framed:
                self._draw(p, rects[lo:hi], self._brushes[(c, 0)], self._outline)
            else:
                self._draw(p, rects[lo:hi], self._brushes[(c, s)])

    def visible_rects(self, layer, y_off, height, vx0, vx1, vy0, vy1, pw):
        """(rects Nx4, colours N, refs N, wide mask N, shade N) of a layer's bars inside the view; ``shade``
        0 for a bar or a full cell, 1 or 2 for cells that cover less of their bin (drawn lighter)."""
        bars = self.data.layers.get(layer)
        if bars is None or not len(bars):
            return None
        t0 = self.data.t0
        lo, hi = np.floor(vy0) - 1, vy1 + 1
        parts = []
        if isinstance(bars, Bars):              # a small layer, in seconds already
            sel = np.flatnonzero((bars.x1 >= vx0 - pw) & (bars.x0 <= vx1 + pw))
            pid, x0, x1, color, ref = bars.pid[sel], bars.x0[sel], bars.x1[sel], bars.color[sel], bars.ref[sel]
            vis = None
        else:
            vis = bars.visible(t0 + int(vx0 * 1e9), t0 + int(vx1 * 1e9), max(int(pw * 1e9), 1))
            pid, x0n, x1n, color, ref = vis.bars
            x0, x1 = (x0n - t0) / 1e9, (x1n - t0) / 1e9
        if len(pid):
            lanes = self.lanes_of(pid)
            keep = (lanes >= 0) & (lanes >= lo) & (lanes <= hi)
            if keep.any():
                parts.extend(self._bar_rects(layer, lanes[keep], x0[keep], x1[keep], color[keep], ref[keep], y_off,
                                             height, vx0, vx1, pw))
        if vis is not None and vis.cells is not None and len(vis.cells[0]):
            cpid, start, width, ccolor, cover = vis.cells
            lanes = self.lanes_of(cpid)
            keep = (lanes >= 0) & (lanes >= lo) & (lanes <= hi)
            if keep.any():
                parts.append(self._cell_rects(layer, lanes[keep], (start[keep] - t0) / 1e9, width[keep] / 1e9,
                                              ccolor[keep], cover[keep], y_off, height, pw))
        if not parts:
            return None
        return tuple(np.concatenate(x) for x in zip(*parts))

    def _bar_rects(self, layer, lanes, x0, x1, color, ref, y_off, height, vx0, vx1, pw):
        x0 = np.maximum(x0, vx0 - pw)
        x1 = np.minimum(x1, vx1 + pw)
        wide = (x1 - x0) >= 2 * pw
        out = []
        if wide.any():
            r = np.empty((int(wide.sum()), 4))
            r[:, 0] = x0[wide]
            r[:, 1] = lanes[wide] + y_off
            r[:, 2] = x1[wide] - x0[wide]
            r[:, 3] = height
            out.append((r, color[wide], ref[wide], np.ones(len(r), bool), np.zeros(len(r), np.int8)))
        narrow = ~wide
        if narrow.any():
            # Merge what shares a lane, a colour and a pixel column: at most lanes x width x colours rects.
            ncols = int((vx1 - vx0) / pw) + 8
            col = np.clip(np.floor((x0[narrow] - vx0) / pw).astype(np.int64) + 2, 0, ncols - 1)
            key = (lanes[narrow] * COLOR_KEYS + color[narrow]) * ncols + col
            space = (int(lanes.max()) + 1) * COLOR_KEYS * ncols
            if space <= 8_000_000:          # a bitmap of occupied cells: linear time, no sort
                cells = np.zeros(space, bool)
                cells[key] = True
                uniq = np.flatnonzero(cells)
            else:
                uniq = np.unique(key)
            lane_col = uniq // ncols
            r = np.empty((len(uniq), 4))
            r[:, 0] = vx0 + (uniq % ncols - 2) * pw
            r[:, 1] = lane_col // COLOR_KEYS + y_off
            r[:, 2] = pw * TICK_PX.get(layer, 1)
            r[:, 3] = height
            out.append((r, (lane_col % COLOR_KEYS).astype(np.int8), np.full(len(uniq), -1, np.int64),
                        np.zeros(len(r), bool), np.zeros(len(r), np.int8)))
        return out

    def _cell_rects(self, layer, lanes, x, w, color, cover, y_off, height, pw):
        """Cells of a level of detail, consecutive ones of a lane, colour and shade joined into one rect."""
        shade = np.where(cover >= SHADE_FULL, 0, np.where(cover >= SHADE_HALF, 1, 2)).astype(np.int8)
        tick = TICK_PX.get(layer)
        if tick:
            w = np.full(len(w), tick * pw)
            shade[:] = 0
        order = _group_order((lanes * COLOR_KEYS + color) * len(SHADE_ALPHA) + shade, x)
        lanes, x, w, color, shade = lanes[order], x[order], w[order], color[order], shade[order]
        n = len(x)
        joins = np.zeros(n, bool)
        if n > 1:
            joins[1:] = ((lanes[1:] == lanes[:-1]) & (color[1:] == color[:-1]) & (shade[1:] == shade[:-1])
                         & (x[1:] <= x[:-1] + w[:-1] + 1e-12))
        starts = np.flatnonzero(~joins)
        ends = np.append(starts[1:], n) - 1
        r = np.empty((len(starts), 4))
        r[:, 0] = x[starts]
        r[:, 1] = lanes[starts] + y_off
        r[:, 2] = np.maximum(x[ends] + w[ends] - x[starts], pw)
        r[:, 3] = height
        return (r, color[starts], np.full(len(starts), -1, np.int64), np.zeros(len(starts), bool), shade[starts])

    def paint(self, p, *args):
        vb = self.getViewBox()
        if vb is None or self.data is None:
            return
        (vx0, vx1), (vy0, vy1) = vb.viewRange()
        pw = vb.viewPixelSize()[0]
        if not np.isfinite(pw) or pw <= 0:
            return
        self.rects_drawn = 0
        self.drawn = {}
        labels = []
        bands = [i for i, r in enumerate(self.rows) if r.kind == "header" and vy0 - 1 <= i <= vy1]
        if bands:
            self._draw(p, np.array([[vx0, i, vx1 - vx0, 1.0] for i in bands]), self._band)
        for layer, y_off, height in LAYOUT:
            if layer == SKIPPED_UNDER:
                self._paint_skipped(p, vx0, vx1, vy0, vy1, pw)
            got = self.visible_rects(layer, y_off, height, vx0, vx1, vy0, vy1, pw)
            if got is None:
                continue
            rects, colors, refs, wide, shade = got
            self.drawn[layer] = (rects, colors)
            self._draw_groups(p, rects, colors, shade, wide & (rects[:, 2] >= OUTLINE_MIN_PX * pw))
            if layer == "tasks" and self.data.tasks is not None:
                big = np.nonzero((rects[:, 2] >= TASK_LABEL_MIN_PX * pw) & (refs >= 0))[0]
                if 0 < len(big) <= 400:
                    tasks = self.data.tasks
                    labels.extend((rects[i], str(int(tasks[refs[i]]["index"]))) for i in big)
        self._paint_counters(p, vx0, vx1, vy0, vy1, pw)
        self._paint_arrows(p, vx0, vx1, pw)
        if self.region is not None:
            a, b = sorted(self.region)
            self._draw(p, np.array([[a, vy0, max(b - a, pw), vy1 - vy0]]), self._region_brush)
        if self.selected is not None:
            r = self.rect_of(*self.selected)
            if r is not None:
                p.setPen(self._sel_pen)
                p.setBrush(QtCore.Qt.NoBrush)
                p.drawRect(QtCore.QRectF(r[0], r[1], max(r[2], pw * 2), r[3]))
        if labels:
            tr = p.transform()
            p.save()
            p.resetTransform()
            p.setPen(QtGui.QColor("white"))
            font = p.font()
            font.setPointSizeF(8.0)
            p.setFont(font)
            for r, text in labels:
                dev = tr.mapRect(QtCore.QRectF(r[0], r[1], r[2], r[3]))
                p.drawText(dev, QtCore.Qt.AlignCenter, text)
            p.restore()
        self.lanes_drawn = len(self.rows)

    def _paint_skipped(self, p, vx0, vx1, vy0, vy1, pw):
        """Hatch the stretches whose detail the live view skipped, over the lanes' backgrounds.  In one call: a
        live run skips one at almost every read, and a call each (hundreds a frame, each handing the reader
        thread the GIL) tripled a frame's time."""
        if not self.data.dropping:
            return
        x = np.array(self.data.dropping, np.float64).reshape(-1, 2)
        x = x[(x[:, 1] >= vx0) & (x[:, 0] <= vx1)]
        if len(x):
            self._draw(p, np.column_stack((x[:, 0], np.full(len(x), vy0), np.maximum(x[:, 1] - x[:, 0], pw),
                                           np.full(len(x), vy1 - vy0))), self._skipped)

    def _counter_pen(self, color):
        pen = self._counter_pens.get(color)
        if pen is None:
            pen = self._counter_pens[color] = QtGui.QPen(QtGui.QColor(getattr(theme, color, theme.LANE_TEXT)))
            pen.setCosmetic(True)
            pen.setWidthF(1.0)          # a one-pixel line: Qt strokes a wider one much slower
        return pen

    def _paint_counters(self, p, vx0, vx1, vy0, vy1, pw):
        self.counters_drawn = 0
        if not self.row_counters:
            return
        t0 = self.data.t0
        ncols = max(int((vx1 - vx0) / pw), 1)
        p.setBrush(QtCore.Qt.NoBrush)
        for i, counters in self.row_counters.items():
            if i < vy0 - 1 or i > vy1:
                continue
            for c in counters:
                xy = counter_points(c, t0, vx0, vx1, pw, ncols, self.data.t_end)
                if xy is None:
                    continue
                x, v = xy
                y = i + COUNTER_BOTTOM - (COUNTER_BOTTOM - COUNTER_TOP) * np.clip(v / max(c.vmax, 1e-12), 0, 1)
                p.setPen(self._counter_pen(c.color))
                p.drawPath(pg.arrayToQPath(x, y, connect="all"))
                self.counters_drawn += 1

    def _paint_arrows(self, p, vx0, vx1, pw):
        if self.arrows is None:
            return
        paint_arrows(p, self.arrows, self._arrow_pen, vx0, vx1)

    def row_of(self, key):
        """The row index of a lane key (-1: not shown)."""
        return int(self.lanes_of(np.array([key], np.int64))[0])

    def rect_of(self, layer, ref):
        bars = self.data.layers.get(layer) if self.data is not None else None
        found = bars.bar(ref) if bars is not None else None
        if found is None:
            return None
        pid, x0, x1 = found
        lane = self.lanes_of(np.array([pid]))[0]
        if lane < 0:
            return None
        y_off, height = next((y, h) for name, y, h in LAYOUT if name == layer)
        return (x0, lane + y_off, x1 - x0, height)

    def hit(self, x, y, pw):
        """(layer, ref) of the bar under view point (x, y), or None."""
        if self.data is None:
            return None
        lane = int(np.floor(y))
        frac = y - lane
        if lane < 0 or lane >= len(self.rows) or self.rows[lane].kind in ("header", "counters"):
            return None
        keys = [self.rows[lane].key] + self._aliases.get(lane, [])
        t = self.data.t0 + int(x * 1e9)
        tol = max(int(3 * pw * 1e9), 1)
        for layer in HIT_ORDER:
            y_off, height = next((yy, h) for name, yy, h in LAYOUT if name == layer)
            if not (y_off <= frac <= y_off + height):
                continue
            bars = self.data.layers.get(layer)
            if bars is None or not len(bars):
                continue
            for key in keys:
                ref = bars.near(key, t, tol)
                if ref is not None:
                    return layer, ref
        return None
