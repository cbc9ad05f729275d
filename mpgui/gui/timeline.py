"""The timeline: one lane per process, pool tasks coloured by outcome, lock waits and holds, process lifetimes
with their start latency, results consumed by the main process, and moments (signals, shared-memory segments,
notifies, requests to end...) as ticks; under them a track per synchronisation object and queue (who holds
it, who waits, its counters, its moments); zoom and pan with the mouse.

Rows: the processes grouped by role (a group of several has a header row: click it to collapse it), each
followed by its threads' sub-lanes and, when "CPU & RSS" is on, a row of its counters; then the objects'
tracks, grouped too.  With more rows than fit, the view scrolls vertically (the scroll bar, Shift+wheel or
the wheel over the labels); the labels' column is as wide as the longest label needs (to a bound).

Signals for the views around it: ``sigCursor(seconds)`` as the mouse moves over the plot,
``sigRangeSelected(t0, t1)`` (seconds) when the user drags a range with Shift held, ``sigObjectSelected(uid)``
when an object's track is clicked, ``sigWaitSelected(dict)`` when a wait is clicked (``uid``, ``pid``,
``tid``, ``t0``, ``t1``: ns on the run's clock, as the contention tables have them; ``kind``: the span kind's
name; ``x0``, ``x1``: seconds from the run's start).  "Unblocked by" arrows, from each release (notify, set,
barrier completion, put) to the wait it ended, are drawn for the selected object or process (a click on its
track or lane; a second click lets it go), and a wait's details then name who let it go and the handoff's
length: the links come from ``core.trace.contention`` (``set_links``, or read from the run file in the
background).  ``TimelineView(tracks=False)`` (a comparison's) draws the process lanes alone, every one in view.

Drawing follows pyqtgraph's fast path (BarGraphItem): one ``drawRects`` call per colour with the rectangles in
a numpy-backed array, no pen.  Each frame asks every layer what is visible (``timeline_data``): while the view
holds few bars it gets them all, exactly, and merges those narrower than a pixel per lane, colour and pixel
column; otherwise it gets the bars at least a bin long exactly and, for the rest, the cells of the finest level
of detail whose bin is at least a pixel (lane, colour, bin: drawn lighter where they cover little of their
bin).  So a frame costs about the same for 1,000 bars or 10,000,000.

The view follows live data (the x range tracks the newest time) until the user pans or zooms; "Follow"
resumes it.  Hovering a bar shows its details; clicking selects it and shows them below the plot.  While a
live run outpaces the reader, the tool bar says the view is skipping detail.
"""
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import internals
from PySide6 import QtCore, QtGui, QtWidgets

from core.trace import contention, schema
from core.trace.events import Outcome
from core.trace.model import NO_TIME, Span, SpanEnd
from core.trace.units import fmt_s

from . import theme
from .timeline_data import (C_BARRIER_WAIT, C_BROKEN, C_ERROR, C_GENERATION, C_HOLD, C_IO, C_LIFE, C_LOST,
                            C_MANAGER, C_MOMENT, C_OK, C_OTHER_WAIT, C_PROC0, C_RUNNING, C_SEM_HOLD, C_SEND, C_SIGNAL,
                            C_STARTING, C_TIMEOUT, C_USED, C_WAIT, COLOR_KEYS, MARK_BROKEN, MARK_GENERATION,
                            PROC_COLORS, Bars, lane_keys)
from .viewparts import in_background

PALETTE = {C_LIFE: theme.LIFETIME, C_STARTING: theme.STARTING, C_RUNNING: theme.TASK_RUNNING, C_OK: theme.TASK_OK,
           C_ERROR: theme.TASK_ERROR, C_TIMEOUT: theme.TASK_TIMEOUT, C_LOST: theme.TASK_LOST, C_HOLD: theme.LOCK_HOLD,
           C_WAIT: theme.LOCK_WAIT, C_OTHER_WAIT: theme.OTHER_WAIT, C_IO: theme.BLOCKED_IO,
           C_MANAGER: theme.MANAGER_CALL, C_USED: theme.RESULT_USED, C_MOMENT: theme.MOMENT,
           C_SIGNAL: theme.SIGNAL_MOMENT, C_SEM_HOLD: theme.SEMAPHORE_HOLD, C_BARRIER_WAIT: theme.BARRIER_WAIT,
           C_GENERATION: theme.GENERATION, C_BROKEN: theme.BROKEN, C_SEND: theme.FEEDER_WRITE}
PALETTE.update({C_PROC0 + i: theme.PROCESS_COLORS[i % len(theme.PROCESS_COLORS)] for i in range(PROC_COLORS)})
assert len(PALETTE) <= COLOR_KEYS      # sub-pixel bars are merged per lane, colour key and pixel column

# Where each layer sits inside a lane of height 1 (lane i spans y = i .. i+1, drawn top-down).
LAYOUT = (("life", 0.04, 0.92), ("starting", 0.04, 0.92), ("tasks", 0.14, 0.50), ("waits", 0.66, 0.13),
          ("holds", 0.80, 0.13), ("used", 0.10, 0.58), ("moments", 0.02, 0.40),
          ("obj_holds", 0.08, 0.46), ("obj_mholds", 0.08, 0.46), ("obj_waits", 0.60, 0.30),
          ("obj_moments", 0.02, 0.96), ("sends", 0.10, 0.50))
HIT_ORDER = ("obj_moments", "moments", "sends", "used", "tasks", "obj_holds", "obj_mholds", "holds", "obj_waits",
             "waits", "starting", "life")
#: Layers of zero-length bars, drawn as ticks this many pixels wide.
TICK_PX = {"used": 2, "moments": 3, "obj_moments": 3, "sends": 2}
#: Where a counter draws inside its row: from the bottom (value 0) to the top (its ``vmax``).
COUNTER_BOTTOM, COUNTER_TOP = 0.94, 0.06
#: A counter with more points than this many per pixel column in view is drawn from each column's first,
#: lowest, highest and last point.
COUNTER_POINTS_PER_PX = 2
#: Rows are at least this many pixels high: with more rows than fit, the view scrolls.
MIN_ROW_PX = 18
#: The labels' column: as wide as the longest label, within these bounds (longer ones are elided).
LABEL_MIN_PX, LABEL_MAX_PX = 110, 340
#: "Unblocked by" arrows drawn at most (in view): beyond, the view asks to zoom in.
MAX_ARROWS = 3000
#: Phase labels are stacked on at most this many rows; one that fits on none is left out (its line stays).
PHASE_ROWS = 3
EMPTY_TEXT = ("No run shown.\nPick a scenario on the left and press Run (Ctrl+R), open a saved run (Ctrl+O), "
              "or trace a program of yours (Ctrl+T).")
#: Bars wider than this many pixels get an outline, so neighbours stay apart.
OUTLINE_MIN_PX = 5
#: Task bars wider than this get their index written inside.
TASK_LABEL_MIN_PX = 28
#: A cell of a level of detail that covers at least this share of its bin is drawn in full colour, at least
#: SHADE_HALF lighter, less lighter still: dense stretches look dense.
SHADE_FULL, SHADE_HALF = 0.5, 0.1
SHADE_ALPHA = (255, 170, 100)

WINDOWS = (("Whole run", None), ("Last 5 s", 5.0), ("Last 30 s", 30.0), ("Last 2 min", 120.0))

_OUTCOME_TEXT = {Outcome.OK: "finished", Outcome.ERROR: "raised an exception", Outcome.TIMEOUT: "timed out",
                 Outcome.LOST: "lost (its worker died)", Outcome.CANCELLED: "cancelled"}
_SPAN_TEXT = {Span.LOCK_WAIT: "waiting for", Span.LOCK_HOLD: "holding", Span.COND_WAIT: "waiting on condition",
              Span.EVENT_WAIT: "waiting for event", Span.BARRIER_WAIT: "waiting at barrier",
              Span.QUEUE_PUT: "blocked putting into", Span.QUEUE_GET: "blocked getting from",
              Span.QUEUE_JOIN: "joining", Span.PIPE_RECV: "blocked receiving on", Span.PIPE_SEND: "blocked sending on",
              Span.MANAGER_CALL: "manager call on", Span.PROC_JOIN: "joining process",
              Span.INITIALIZER: "running the initializer of"}
#: Span kinds that are waits (a click on one says which wait it was: ``sigWaitSelected``).
WAIT_KINDS = frozenset(k for k in Span if k not in (Span.LOCK_HOLD, Span.INITIALIZER))
_MARK_TEXT = {MARK_GENERATION: "released generation %d", MARK_BROKEN: "broken in generation %d"}


def _fields(record):
    """The field names of a record (a dict, or a numpy record)."""
    names = getattr(getattr(record, "dtype", None), "names", None)
    return names if names is not None else record.keys()


@dataclass
class Row:
    """One row of the timeline, top to bottom: a group's header, a process, a thread of one, a process's
    counters, an object's track or a semaphore's further holder slot."""
    key: int                    # the lane key its bars carry (a header's and a counters row's: none has it)
    label: str
    kind: str                   # header, process, thread, counters, object, slot
    group: str = ""
    uid: int = 0                # an object's
    pid: int = 0                # a process's, a thread's process, a counters row's process


class LaneAxis(pg.AxisItem):
    """Left axis: one label per row, at the row's middle; the wheel over it scrolls the rows."""

    def __init__(self):
        super().__init__("left")
        self.labels = []
        self.on_wheel = None            # (steps) -> None: set by the view
        self.setWidth(170)
        self.setStyle(tickLength=0, autoExpandTextSpace=False, hideOverlappingLabels=False)

    def wheelEvent(self, ev):
        if self.on_wheel is not None:
            self.on_wheel(-ev.delta() / 120.0)
            ev.accept()
        else:
            super().wheelEvent(ev)

    def needed_width(self):
        """How wide the longest label needs the column, within LABEL_MIN_PX..LABEL_MAX_PX."""
        fm = QtGui.QFontMetricsF(self.style.get("tickFont") or QtWidgets.QApplication.font())
        widest = max([fm.horizontalAdvance(t) for t in self.labels] + [0.0])
        return int(min(LABEL_MAX_PX, max(LABEL_MIN_PX, widest + self.style["tickTextOffset"][0] + 12)))

    def fit_width(self):
        """As wide as the longest label needs (a comparison sets one width for all its timelines instead)."""
        self.setWidth(self.needed_width())

    def tickValues(self, minVal, maxVal, size):
        n = len(self.labels)
        if not n:
            return []
        minVal, maxVal = min(minVal, maxVal), max(minVal, maxVal)      # the lanes' axis is inverted
        lo, hi = max(0, int(np.floor(minVal))), min(n - 1, int(np.ceil(maxVal)))
        visible = max(1, hi - lo + 1)
        step = max(1, int(np.ceil(visible * 14 / max(size, 1))))      # keep labels >= 14 px apart
        return [(1, [i + 0.5 for i in range(lo, hi + 1, step)])]

    def tickStrings(self, values, scale, spacing):
        # pyqtgraph drops a label that does not fit the axis: elide long process names instead.
        fm = QtGui.QFontMetricsF(self.style.get("tickFont") or QtWidgets.QApplication.font())
        room = self.width() - self.style["tickTextOffset"][0] - 6
        out = []
        for v in values:
            i = int(v)
            text = self.labels[i] if 0 <= i < len(self.labels) else ""
            out.append(fm.elidedText(text, QtCore.Qt.ElideMiddle, room))
        return out


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
        x, v = xs, vs
    elif c.step and len(x) > 1:
        x, v = np.repeat(x, 2)[1:], np.repeat(v, 2)[:-1]
    if c.step:
        end = min(vx1 + pw, t_end)
        if end > x[-1]:
            x, v = np.append(x, end), np.append(v, v[-1])
    return x, v


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
        order = np.lexsort((x, shade, color, lanes))
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
        for x0, x1 in self.data.dropping:
            if x1 >= vx0 and x0 <= vx1:
                self._draw(p, np.array([[x0, vy0, max(x1 - x0, pw), vy1 - vy0]]), self._skipped)
        bands = [i for i, r in enumerate(self.rows) if r.kind == "header" and vy0 - 1 <= i <= vy1]
        if bands:
            self._draw(p, np.array([[vx0, i, vx1 - vx0, 1.0] for i in bands]), self._band)
        for layer, y_off, height in LAYOUT:
            got = self.visible_rects(layer, y_off, height, vx0, vx1, vy0, vy1, pw)
            if got is None:
                continue
            rects, colors, refs, wide, shade = got
            self.drawn[layer] = (rects, colors)
            outline = wide & (rects[:, 2] >= OUTLINE_MIN_PX * pw)
            for c in np.unique(colors):
                sel = colors == c
                for s in np.unique(shade[sel]):
                    plain = sel & ~outline & (shade == s)
                    self._draw(p, rects[plain], self._brushes[(int(c), int(s))])
                framed = sel & outline
                if framed.any():
                    self._draw(p, rects[framed], self._brushes[(int(c), 0)], self._outline)
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
        x0, y0, x1, y1 = self.arrows
        keep = np.flatnonzero((np.maximum(x0, x1) >= vx0) & (np.minimum(x0, x1) <= vx1))
        if not len(keep) or len(keep) > MAX_ARROWS:
            return
        tr = p.transform()
        p.save()
        p.resetTransform()
        p.setPen(self._arrow_pen)
        head = 5.0
        for i in keep.tolist():
            a = tr.map(QtCore.QPointF(float(x0[i]), float(y0[i])))
            b = tr.map(QtCore.QPointF(float(x1[i]), float(y1[i])))
            p.drawLine(a, b)
            dx, dy = b.x() - a.x(), b.y() - a.y()
            n = max((dx * dx + dy * dy) ** 0.5, 1e-9)
            ux, uy = dx / n, dy / n
            p.drawLine(b, QtCore.QPointF(b.x() - head * (ux - 0.5 * uy), b.y() - head * (uy + 0.5 * ux)))
            p.drawLine(b, QtCore.QPointF(b.x() - head * (ux + 0.5 * uy), b.y() - head * (uy - 0.5 * ux)))
        p.restore()

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


_GROUP_TITLES = {"main": "main process", "manager": "managers", "worker": "pool workers", "process": "processes",
                 "other": "other processes", "forkserver": "forkserver", "resource tracker": "resource tracker",
                 "objects": "synchronisation objects", "queues": "queues"}
#: Keys of rows no bar is drawn on (headers, counters rows): far below every lane key.
_NO_BARS = -(1 << 60)


def _header_key(i):
    return _NO_BARS - 2 * i


def _counter_key(key):
    """The key of the counters row under the lane ``key`` (a process's: positive, or a track's: negative)."""
    return _NO_BARS - 4 * abs(int(key)) - (1 if key > 0 else 3)


def _fmt_value(v, unit):
    if unit == "B":
        for scale, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if v >= scale:
                return "%.1f %s" % (v / scale, name)
        return "%d B" % v
    if unit == "%":
        return "%.0f%%" % v
    return ("%d" % v) if float(v).is_integer() else "%.2f" % v


class TimelineViewBox(pg.ViewBox):
    """The timeline's view box: a drag with Shift held selects a range (``on_range(x0, x1, done)``); the
    wheel with Shift held scrolls the rows (``on_scroll(steps)``); otherwise as pyqtgraph's."""

    def __init__(self):
        super().__init__()
        self.on_range = None
        self.on_scroll = None

    def mouseDragEvent(self, ev, axis=None):
        if self.on_range is not None and ev.button() == QtCore.Qt.LeftButton and \
                ev.modifiers() & QtCore.Qt.ShiftModifier:
            ev.accept()
            a = self.mapSceneToView(ev.buttonDownScenePos()).x()
            b = self.mapSceneToView(ev.scenePos()).x()
            self.on_range(a, b, ev.isFinish())
            return
        super().mouseDragEvent(ev, axis)

    def wheelEvent(self, ev, axis=None):
        if self.on_scroll is not None and ev.modifiers() & QtCore.Qt.ShiftModifier:
            ev.accept()
            self.on_scroll(-ev.delta() / 120.0)
            return
        super().wheelEvent(ev, axis)


class TimelineView(QtWidgets.QWidget):
    """The timeline widget: toolbar, plot, details line."""

    sigSelected = QtCore.Signal(str)
    sigCursor = QtCore.Signal(float)
    sigRangeSelected = QtCore.Signal(float, float)
    sigObjectSelected = QtCore.Signal(object)        # uid (an int: 64 bits do not fit a Qt int)
    sigWaitSelected = QtCore.Signal(dict)

    def __init__(self, parent=None, tracks=True):
        super().__init__(parent)
        self.data = None
        self.follow = True
        self.window = None
        #: Rows beyond the processes' (group headers, threads, object tracks); without them (a comparison's
        #: small timelines, sized to their processes) a thread's bars are drawn on its process's lane.
        self.tracks = tracks
        self.collapsed = set()              # groups whose rows are hidden
        self.show_counters = False          # a row of CPU% and RSS under each process
        self.selected_object = None         # uid: its "unblocked by" arrows are drawn
        self.selected_process = None        # pid: its arrows (from it or to it) are drawn
        self.links = None                   # contention.LINK_DTYPE rows, or None: not read yet
        self._links_for = None              # (path, data version) the links were read at
        self._jobs = []
        self._rows_sig = None
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)

        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 0)
        self.follow_button = QtWidgets.QToolButton()
        self.follow_button.setText("Follow")
        self.follow_button.setCheckable(True)
        self.follow_button.setChecked(True)
        self.follow_button.setToolTip("Keep the newest data in view (panning or zooming turns this off)")
        self.follow_button.toggled.connect(self.set_follow)
        self.window_box = QtWidgets.QComboBox()
        for label, secs in WINDOWS:
            self.window_box.addItem(label, secs)
        self.window_box.setToolTip("How much time the view shows while following")
        self.window_box.currentIndexChanged.connect(self._window_changed)
        fit = QtWidgets.QToolButton()
        fit.setText("Fit")
        fit.setToolTip("Show the whole run")
        fit.clicked.connect(self.fit)
        self.counters_button = QtWidgets.QToolButton()
        self.counters_button.setText("CPU && RSS")
        self.counters_button.setCheckable(True)
        self.counters_button.setToolTip("A row under each process with its CPU% and RSS over time")
        self.counters_button.toggled.connect(self.set_show_counters)
        self.counters_button.setVisible(tracks)
        bar.addWidget(self.follow_button)
        bar.addWidget(self.window_box)
        bar.addWidget(fit)
        bar.addWidget(self.counters_button)
        bar.addSpacing(12)
        legend = QtWidgets.QHBoxLayout()
        legend.setSpacing(3)
        for text, color in (("running", theme.TASK_RUNNING), ("ok", theme.TASK_OK), ("error", theme.TASK_ERROR),
                            ("timed out", theme.TASK_TIMEOUT), ("lost", theme.TASK_LOST),
                            ("lock wait", theme.LOCK_WAIT), ("lock hold", theme.LOCK_HOLD),
                            ("semaphore hold", theme.SEMAPHORE_HOLD), ("barrier wait", theme.BARRIER_WAIT),
                            ("other wait", theme.OTHER_WAIT), ("blocked I/O", theme.BLOCKED_IO),
                            ("feeder write", theme.FEEDER_WRITE), ("starting", theme.STARTING),
                            ("result used", theme.RESULT_USED),
                            ("moment", theme.MOMENT), ("signal, kill", theme.SIGNAL_MOMENT),
                            ("broken", theme.BROKEN), ("unblocked by", theme.HANDOFF)):
            sw = QtWidgets.QLabel()
            sw.setFixedSize(10, 10)
            sw.setStyleSheet("background: %s; border-radius: 2px;" % color)
            legend.addWidget(sw)
            lbl = QtWidgets.QLabel(text)
            lbl.setObjectName("muted")
            legend.addWidget(lbl)
            legend.addSpacing(4)
        holder = QtWidgets.QWidget()
        holder.setLayout(legend)
        legend.setContentsMargins(0, 0, 0, 0)
        scroll_legend = QtWidgets.QScrollArea()       # the legend scrolls rather than widen the window
        scroll_legend.setWidget(holder)
        scroll_legend.setFrameShape(QtWidgets.QFrame.NoFrame)
        scroll_legend.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAsNeeded)
        scroll_legend.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        scroll_legend.setFixedHeight(holder.sizeHint().height() + 14)
        bar.addWidget(scroll_legend, 1)
        self.handoffs = QtWidgets.QLabel()
        self.handoffs.setObjectName("muted")
        self.handoffs.hide()
        bar.addWidget(self.handoffs)
        self.skipping = QtWidgets.QLabel("live view skipping detail: the run is read in full when it ends")
        self.skipping.setObjectName("muted")
        self.skipping.setToolTip("The run records faster than the view can follow every event: stretches whose "
                                 "detail was skipped are hatched; nothing is lost, the run file has it all")
        self.skipping.setStyleSheet("color: %s;" % theme.ERROR_TEXT)
        self.skipping.hide()
        bar.addWidget(self.skipping)
        lay.addLayout(bar)

        self.axis = LaneAxis()
        self.axis.on_wheel = self.scroll_rows
        self.vb = TimelineViewBox()
        self.vb.on_range = self._range_drag
        self.vb.on_scroll = self.scroll_rows
        self.plot = pg.PlotWidget(viewBox=self.vb, axisItems={"left": self.axis}, background=theme.BACKGROUND)
        self.plot.setObjectName("timelinePlot")
        self.plot.setLabel("bottom", "time", units="s")
        self.vb.invertY(True)
        self.vb.setMouseEnabled(x=True, y=False)
        self.vb.setLimits(xMin=-1.0)
        self.vb.setMenuEnabled(False)
        self.item = TimelineItem()
        self.plot.addItem(self.item)
        self.vb.sigRangeChangedManually.connect(self._manual_range)
        self.vb.sigXRangeChanged.connect(self._place_phase_labels)
        self.vb.sigXRangeChanged.connect(self._count_arrows)
        self.plot.scene().sigMouseMoved.connect(self._hover)
        self.plot.scene().sigMouseClicked.connect(self._click)
        self._marks = []
        self.scrollbar = QtWidgets.QScrollBar(QtCore.Qt.Vertical)
        self.scrollbar.setObjectName("timelineRows")
        self.scrollbar.valueChanged.connect(self._scrolled)
        self.scrollbar.hide()
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.plot, 1)
        row.addWidget(self.scrollbar)
        lay.addLayout(row, 1)
        self.empty = QtWidgets.QLabel(EMPTY_TEXT, self.plot)
        self.empty.setObjectName("muted")
        self.empty.setAlignment(QtCore.Qt.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setAttribute(QtCore.Qt.WA_TransparentForMouseEvents)

        self.details = QtWidgets.QLabel("Hover a bar for its details; click to select it.")
        self.details.setObjectName("muted")
        self.details.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.details.setContentsMargins(8, 2, 8, 4)
        lay.addWidget(self.details)

    # -- data --------------------------------------------------------------------------------------------------
    def set_data(self, data):
        if self.data is not None and data.path != self.data.path:
            self.links, self._links_for = None, None
            self.selected_object = self.selected_process = None
            self.item.arrows = None
        self.data = data
        self.item.data = data
        self._layout_rows()
        self.item.set_data(data)
        self._update_marks(data.marks)
        self.skipping.setVisible(bool(data.dropping))
        self.empty.setVisible(not data.lanes and not data.tracks)
        if self.follow:
            self._follow_now()
        if self.selected_object is not None or self.selected_process is not None:
            self._update_arrows()

    def clear(self):
        from .timeline_data import TimelineData
        self.item.selected = None
        self.collapsed = set()
        self.set_data(TimelineData([], {}, [], 0.0))
        self.details.setText("Hover a bar for its details; click to select it.")

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self.empty.setGeometry(self.plot.rect())
        if self.data is not None:
            self._fit_rows()

    # -- rows ---------------------------------------------------------------------------------------------------
    def rows(self):
        """The rows as they are laid out now (``Row``), top to bottom."""
        return self.item.rows

    def _layout_rows(self):
        d = self.data
        if not self.tracks:
            rows = [Row(lane.pid, lane.label, "process", lane.role, pid=lane.pid) for lane in d.lanes]
            at = {lane.pid: i for i, lane in enumerate(d.lanes)}
            aliases = {t.pid: at[t.parent] for t in d.threads if t.parent in at}
            self._set_rows(rows, {}, aliases)
            return
        threads = {}
        for t in d.threads:
            threads.setdefault(t.parent, []).append(t)
        groups = []                 # (group name, title, [rows])
        for lane in d.lanes:
            g = lane.role
            if not groups or groups[-1][0] != g:
                groups.append((g, _GROUP_TITLES.get(g, g + "s"), []))
            rows = groups[-1][2]
            rows.append(Row(lane.pid, lane.label, "process", g, pid=lane.pid))
            for t in threads.get(lane.pid, ()):
                rows.append(Row(t.pid, "  ↳ " + t.label, "thread", g, pid=lane.pid))
            if self.show_counters and lane.pid in d.proc_counters:
                rows.append(Row(_counter_key(lane.pid), "  CPU % · RSS", "counters", g, pid=lane.pid))
        tracks = list(d.tracks)
        for i, tr in enumerate(tracks):
            g = tr.group
            if not groups or groups[-1][0] != g:
                groups.append((g, _GROUP_TITLES.get(g, g), []))
            label = tr.label if tr.kind == "object" else "  " + tr.label
            groups[-1][2].append(Row(tr.pid, label, tr.kind, g, uid=tr.uid))
            if tr.kind == "object":
                owner = tr
            last = i + 1 == len(tracks) or tracks[i + 1].kind == "object"
            if last and owner.pid in d.counters:    # its counters: a row of their own under its holder rows
                names = " · ".join(c.name for c in d.counters[owner.pid])
                groups[-1][2].append(Row(_counter_key(owner.pid), "  " + names, "counters", g, uid=owner.uid,
                                         pid=owner.pid))
        out, counters = [], {}
        for g, title, rows in groups:
            members = sum(1 for r in rows if r.kind in ("process", "object"))
            if members > 1 or g in ("objects", "queues"):
                mark = "▸" if g in self.collapsed else "▾"
                out.append(Row(_header_key(len(out)), "%s %s (%d)" % (mark, title, members), "header", g))
                if g in self.collapsed:
                    continue
            for r in rows:
                if r.kind == "counters":
                    counters[len(out)] = d.counters.get(r.pid, []) if r.uid else d.proc_counters.get(r.pid, [])
                out.append(r)
        self._set_rows(out, counters)

    def _set_rows(self, out, counters, aliases=None):
        sig = [(r.key, r.label) for r in out]
        self.item.set_rows(out, counters, aliases)
        if sig != self._rows_sig:
            self._rows_sig = sig
            self.axis.labels = [r.label for r in out]
            if self.tracks:         # a comparison's timelines keep one width, so their time axes line up
                self.axis.fit_width()
            self.axis.picture = None
            self.axis.update()
            self._fit_rows()

    def _visible_rows(self):
        """How many rows fit in the plot at MIN_ROW_PX each."""
        h = self.vb.height() if self.vb.height() > 0 else self.plot.height() - 40
        return max(1, int(h // MIN_ROW_PX))

    def _fit_rows(self):
        n = max(len(self.item.rows), 1)
        fit = self._visible_rows()
        top = self.scrollbar.value() if self.scrollbar.isVisible() else 0
        if n <= fit or not self.tracks:         # without tracks (a comparison's) every lane is in view
            self.scrollbar.hide()
            self.vb.setLimits(yMin=0, yMax=n)
            self.vb.setYRange(0, n, padding=0)
            return
        self.scrollbar.blockSignals(True)
        self.scrollbar.setRange(0, n - fit)
        self.scrollbar.setPageStep(fit)
        self.scrollbar.setValue(min(top, n - fit))
        self.scrollbar.blockSignals(False)
        self.scrollbar.show()
        self.vb.setLimits(yMin=0, yMax=n)
        self._scrolled()

    def _scrolled(self, *_):
        fit = self._visible_rows()
        top = self.scrollbar.value()
        self.vb.setYRange(top, top + fit, padding=0)

    def scroll_rows(self, steps):
        """Scroll the rows by ``steps`` (3 rows a wheel step)."""
        if self.scrollbar.isVisible():
            self.scrollbar.setValue(self.scrollbar.value() + int(round(steps * 3)))

    def toggle_group(self, group):
        """Collapse a group of rows, or expand it."""
        self.collapsed.symmetric_difference_update({group})
        if self.data is not None:
            self._layout_rows()
            self._update_arrows()

    def set_show_counters(self, on):
        self.show_counters = bool(on)
        if self.counters_button.isChecked() != self.show_counters:
            self.counters_button.setChecked(self.show_counters)
        if self.data is not None:
            self._layout_rows()
            self._update_arrows()

    def _update_marks(self, marks):
        if [m.value() for m in self._marks] == [x for x, _ in marks]:
            return
        for m in self._marks:
            self.plot.removeItem(m)
        self._marks = []
        for x, label in marks:
            line = pg.InfiniteLine(pos=x, angle=90, movable=False,
                                   pen=pg.mkPen(theme.MUTED_TEXT, style=QtCore.Qt.DashLine),
                                   label=label, labelOpts={"position": 0.015, "color": theme.MUTED_TEXT,
                                                           "fill": (255, 255, 255, 200),
                                                           "anchors": [(0, 0), (0, 0)]})
            self.plot.addItem(line)
            self._marks.append(line)
        self._place_phase_labels()

    def _place_phase_labels(self, *_):
        """Stack the phase labels on up to PHASE_ROWS rows so none overlaps another; a label that fits on no
        row is hidden (its line stays, and hovering it... the details line names the phase)."""
        if not self._marks:
            return
        (vx0, vx1), _ = self.vb.viewRange()
        pw = self.vb.viewPixelSize()[0]
        if not np.isfinite(pw) or pw <= 0:
            return
        fm = QtGui.QFontMetricsF(QtWidgets.QApplication.font())
        ends = [-np.inf] * PHASE_ROWS
        for line in sorted(self._marks, key=lambda m: m.value()):
            px = (line.value() - vx0) / pw
            width = fm.horizontalAdvance(line.label.format) + 10
            row = next((r for r in range(PHASE_ROWS) if ends[r] <= px), None)
            if row is None:
                line.label.setVisible(False)
                continue
            ends[row] = px + width
            line.label.setVisible(True)
            line.label.setPosition(0.015 + 0.05 * row)

    # -- view range ---------------------------------------------------------------------------------------------
    def set_follow(self, on):
        self.follow = bool(on)
        if self.follow_button.isChecked() != self.follow:
            self.follow_button.setChecked(self.follow)
        if self.follow:
            self._follow_now()

    def _window_changed(self, *_):
        self.window = self.window_box.currentData()
        self.set_follow(True)

    def _follow_now(self):
        if self.data is None:
            return
        end = max(self.data.t_end, 0.1)
        if self.window is None:
            self.vb.setXRange(0, end * 1.02, padding=0)
        else:
            self.vb.setXRange(max(0.0, end - self.window), end + self.window * 0.02, padding=0)

    def fit(self):
        self.follow = False
        self.follow_button.setChecked(False)
        if self.data is not None:
            self.vb.setXRange(0, max(self.data.t_end, 0.1) * 1.02, padding=0)

    def stop_following(self):
        """The user moved the view (here or in a view linked to it): stop following the newest data."""
        self._manual_range()

    def _manual_range(self, *_):
        if self.follow:
            self.follow = False
            self.follow_button.blockSignals(True)
            self.follow_button.setChecked(False)
            self.follow_button.blockSignals(False)

    def _range_drag(self, a, b, done):
        self.item.region = (a, b)
        self.item.update()
        if done:
            lo, hi = sorted((max(a, 0.0), max(b, 0.0)))
            self.item.region = (lo, hi)
            self.details.setText("Selected %s to %s (%s)" % (fmt_s(lo), fmt_s(hi), fmt_s(hi - lo)))
            self.sigRangeSelected.emit(float(lo), float(hi))

    # -- hover and selection -----------------------------------------------------------------------------------
    def _hit_at(self, scene_pos):
        if not self.plot.sceneBoundingRect().contains(scene_pos) or self.data is None:
            return None
        pt = self.vb.mapSceneToView(scene_pos)
        return self.item.hit(pt.x(), pt.y(), self.vb.viewPixelSize()[0])

    def _row_at(self, scene_pos):
        """(row index, Row) under a scene point, over the plot or its labels, or None."""
        if self.data is None:
            return None
        y = self.vb.mapSceneToView(scene_pos).y()
        i = int(np.floor(y))
        rows = self.item.rows
        return (i, rows[i]) if 0 <= i < len(rows) else None

    def _hover(self, scene_pos):
        if self.data is not None and self.vb.sceneBoundingRect().contains(scene_pos):
            self.sigCursor.emit(float(self.vb.mapSceneToView(scene_pos).x()))
        hit = self._hit_at(scene_pos)
        if hit is None:
            text = self._describe_counters(scene_pos)
            if text:
                QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), text, self.plot)
            else:
                QtWidgets.QToolTip.hideText()
            return
        QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), self.describe(*hit), self.plot)

    def _describe_counters(self, scene_pos):
        """The counters of the row under the mouse, at the time under it."""
        found = self._row_at(scene_pos)
        if found is None or not self.vb.sceneBoundingRect().contains(scene_pos):
            return ""
        i, row = found
        counters = self.item.row_counters.get(i)
        if not counters:
            return ""
        x = self.vb.mapSceneToView(scene_pos).x()
        t = self.data.t0 + int(x * 1e9)
        parts = []
        for c in counters:
            k = int(np.searchsorted(c.t, t, side="right")) - 1
            if k >= 0:
                parts.append("%s: %s" % (c.name, _fmt_value(float(c.v[k]), c.unit)))
        return "%s at %s\n%s" % (row.label.strip(), fmt_s(x), ", ".join(parts)) if parts else ""

    def _click(self, ev):
        if ev.button() != QtCore.Qt.LeftButton:
            return
        found = self._row_at(ev.scenePos())
        if found is not None and found[1].kind == "header":
            self.toggle_group(found[1].group)
            return
        hit = self._hit_at(ev.scenePos())
        self.item.selected = hit
        self.item.region = None
        self.item.update()
        text = self.describe(*hit) if hit else "Hover a bar for its details; click to select it."
        self.details.setText(text.replace("\n", "   "))
        if found is not None:
            row = found[1]
            if row.kind in ("object", "slot") or (row.kind == "counters" and row.uid):
                if hit is None and self.selected_object == row.uid:
                    self.clear_selection()          # a second click on the track, off a bar: arrows off
                else:
                    self.select_object(row.uid)
            elif row.kind in ("process", "thread") and hit is None:
                if self.selected_process == row.pid:
                    self.clear_selection()
                else:
                    self.select_process(row.pid)
        if hit:
            self.sigSelected.emit(text)
            wait = self.wait_of(*hit)
            if wait is not None:
                self.sigWaitSelected.emit(wait)

    def wait_of(self, layer, ref):
        """The wait a bar is (``sigWaitSelected``'s dict), or None if it is no wait."""
        if layer not in ("waits", "obj_waits"):
            return None
        s = self.data.spans[ref]
        kind = Span(int(s["kind"]))
        if kind not in WAIT_KINDS:
            return None
        t0 = self.data.t0
        return {"uid": int(s["uid"]), "pid": int(s["pid"]), "tid": int(s["tid"]), "t0": int(s["t0"]),
                "t1": int(s["t1"]), "kind": kind.name.lower(), "x0": (int(s["t0"]) - t0) / 1e9,
                "x1": (int(s["t1"]) - t0) / 1e9}

    # -- "unblocked by" ----------------------------------------------------------------------------------------
    def select_object(self, uid):
        """Show the "unblocked by" arrows into waits on object ``uid`` (and tell the panel)."""
        self.selected_object, self.selected_process = int(uid), None
        self.sigObjectSelected.emit(int(uid))
        self._update_arrows(reload=True)

    def select_process(self, pid):
        """Show the "unblocked by" arrows from and to process ``pid``."""
        self.selected_object, self.selected_process = None, int(pid)
        self._update_arrows(reload=True)

    def clear_selection(self):
        """No object or process selected: no arrows."""
        self.selected_object = self.selected_process = None
        self._update_arrows()

    def set_links(self, links):
        """The run's "unblocked by" links (``contention.LINK_DTYPE``), e.g. from a contention report another
        view computed; without them the view reads them from the run file when first needed."""
        self.links = links
        self._links_for = (self.data.path, self.data.version) if self.data is not None else None
        self._update_arrows()

    def _update_arrows(self, reload=False):
        d = self.data
        if d is None or (self.selected_object is None and self.selected_process is None):
            self.item.arrows = None
            self.item.update()
            self._count_arrows()
            return
        if self.links is None or (reload and self._links_for != (d.path, d.version)):
            self._load_links()          # a live run's links are read again at each new selection
        if self.links is None:
            return
        links = self.links
        sel = np.ones(len(links), bool)
        if self.selected_object is not None:
            sel &= links["uid"] == np.uint64(self.selected_object)
        if self.selected_process is not None:
            sel &= (links["from_pid"] == self.selected_process) | (links["to_pid"] == self.selected_process)
        links = links[sel]
        self.item.arrows = self.arrows_of(links)
        self.item.update()
        self._count_arrows()

    def _count_arrows(self, *_):
        """Say what the arrows are, and when too many are in view to draw, that zooming in shows them."""
        arrows = self.item.arrows
        if arrows is None:
            self.handoffs.hide()
            return
        (vx0, vx1), _ = self.vb.viewRange()
        x0, _, x1, _ = arrows
        n = int(((np.maximum(x0, x1) >= vx0) & (np.minimum(x0, x1) <= vx1)).sum())
        what = (self.data.names.get(self.selected_object, "#%x" % self.selected_object)
                if self.selected_object is not None else "pid %d" % self.selected_process)
        if n > MAX_ARROWS:
            text = "%s: %d handoffs in view, zoom in to draw them" % (what, n)
        else:
            text = "%s: %d handoff%s in view (unblocked by)" % (what, n, "" if n == 1 else "s")
        self.handoffs.setText(text)
        self.handoffs.show()

    def arrows_of(self, links):
        """(x0, y0, x1, y1) arrays of the arrows drawing ``links``: from the releasing thread's row (its holds'
        band) at the release to the waiting thread's row (its waits' band) at the wait's end; links between
        rows not shown are left out."""
        d, item = self.data, self.item
        codes = np.array([(t.parent << 32) | (t.uid & 0xFFFFFFFF) for t in d.threads], np.int64)
        keys = np.array([t.pid for t in d.threads], np.int64)
        order = np.argsort(codes)
        codes, keys = codes[order], keys[order]
        src_keys = lane_keys(links["from_pid"], links["from_tid"], codes, keys)
        dst_keys = lane_keys(links["to_pid"], links["to_tid"], codes, keys)
        y0 = item.lanes_of(src_keys).astype(np.float64)
        y1 = item.lanes_of(dst_keys).astype(np.float64)
        keep = (y0 >= 0) & (y1 >= 0)
        x0 = (links["from_t"][keep] - d.t0) / 1e9
        x1 = (links["to_t"][keep] - d.t0) / 1e9
        return x0, y0[keep] + 0.86, x1, y1[keep] + 0.72

    def _load_links(self):
        d = self.data
        if not d.path or self._jobs:
            return
        path, version = d.path, d.version

        def work():
            from core.trace.store import RunFile
            with RunFile(path) as rf:
                return contention.handoffs(contention.Records(rf.iter_chunks(), read_only=True))

        def done(links):
            if self.data is not None and self.data.path == path:
                self.links, self._links_for = links, (path, version)
                self._update_arrows()

        def failed(exc):
            self.details.setText("Could not read the handoffs from the run file: %s" % exc)

        in_background(work, done, failed, self._jobs)

    def describe(self, layer, ref):
        """The details of bar ``ref`` of ``layer``, as text (tooltip and details line)."""
        d = self.data
        found = d.layers[layer].bar(ref)
        if found is None:
            return ""
        pid, x0, x1 = found             # pid: the bar's lane key
        ref = int(ref)
        tid = None
        if layer in ("holds", "waits", "obj_holds", "obj_waits"):
            pid, tid = int(d.spans[ref]["pid"]), int(d.spans[ref]["tid"])
        elif layer == "moments":
            pid = int(d.instants[ref]["pid"])
        elif layer == "obj_moments":
            pid = int(d.obj_marks[ref]["pid"])
        elif layer == "obj_mholds":
            pid, tid = int(d.managed[ref]["pid"]), int(d.managed[ref]["tid"])
        elif layer == "sends":
            pid, tid = int(d.messages[ref]["pid"]), int(d.messages[ref]["tid"])
        proc = d.procs.get(pid)
        who = "%s (pid %d%s)" % (proc.name if proc else "process", pid,
                                 ", thread %d" % tid if tid is not None and tid not in (pid, 0) else "")
        if layer == "obj_moments":
            return self._describe_mark(d.obj_marks[ref], who, x0)
        if layer == "sends":
            msg = d.messages[ref]
            name = d.names.get(int(msg["uid"]), "#%x" % int(msg["uid"]))
            size = int(msg["nbytes"])
            return "%s wrote a message%s into %s's pipe (the queue's feeder)\nat %s" % (
                who, " of %d bytes" % size if size >= 0 else "", name, fmt_s(x0))
        if layer == "obj_mholds":
            h = d.managed[ref]
            name = d.names.get(int(h["uid"]), "#%x" % int(h["uid"]))
            still = " — still going" if ref >= d.managed.n else ""
            return "%s holding %s (through its manager) for %s%s\nfrom %s: acquire() returned, to release()" % (
                who, name, fmt_s(x1 - x0), still, fmt_s(x0))
        if layer == "tasks":
            t = d.tasks[ref]
            state = "running" if t["end"] == NO_TIME else _OUTCOME_TEXT.get(int(t["outcome"]), "ended")
            lines = ["Task %d of job %d — %s" % (t["index"], t["job"], state),
                     "worker %s" % who,
                     "started at %s, ran %s" % (fmt_s(x0), fmt_s(x1 - x0))]
            if t["queued"] != NO_TIME and t["start"] != NO_TIME:
                lines.append("waited %s in the queue" % fmt_s((t["start"] - t["queued"]) / 1e9))
            if t["used"] != NO_TIME and t["end"] != NO_TIME:
                lines.append("result used by the caller %s after it was ready"
                             % fmt_s(max(0, t["used"] - t["end"]) / 1e9))
            return "\n".join(lines)
        if layer == "used":
            t = d.tasks[ref]
            return "Result of task %d used by %s at %s" % (t["index"], who, fmt_s(x0))
        if layer == "moments":
            return self._describe_moment(d.instants[ref], who, x0)
        if layer in ("holds", "waits", "obj_holds", "obj_waits"):
            s = d.spans[ref]
            kind = Span(int(s["kind"]))
            name = d.names.get(int(s["uid"]), "#%x" % int(s["uid"]))
            if kind == Span.MANAGER_CALL:
                name = "%s.%s()" % (name, d.strings.get(int(s["value"]), "?"))
            end = SpanEnd(int(s["end"]))
            extra = {SpanEnd.TIMEOUT: " — timed out", SpanEnd.OPEN: " — still going", SpanEnd.BROKEN: " — broken",
                     SpanEnd.OK: ""}[end]
            text = "%s %s %s for %s%s\nfrom %s" % (who, _SPAN_TEXT[kind], name, fmt_s(x1 - x0), extra, fmt_s(x0))
            site = int(s["site"]) if "site" in _fields(s) else 0
            if site:
                text += "\nblocked at %s" % d.strings.get(site, "#%x" % site)
            if kind in WAIT_KINDS:
                text += self._unblocked_by(s)
            return text
        if layer == "starting":
            return "%s starting (%s): %s from start() to its first instruction" % (
                who, proc.method if proc else "?", fmt_s(x1 - x0))
        if proc is None:
            return who
        status = proc.exit_text() or proc.state
        return "%s — %s, %s\nalive %s to %s (%s)" % (who, proc.role, status, fmt_s(x0), fmt_s(x1), fmt_s(x1 - x0))

    def _unblocked_by(self, s):
        """Who let a wait go and how long the handoff took, if the links are read (one line, or "")."""
        links = self.links
        if links is None or not len(links) or int(s["end"]) == SpanEnd.OPEN:
            return ""
        mine = np.flatnonzero((links["to_t"] == int(s["t1"])) & (links["to_pid"] == int(s["pid"]))
                              & (links["to_tid"] == int(s["tid"])) & (links["uid"] == np.uint64(int(s["uid"]))))
        if not len(mine):
            return ""
        link = links[int(mine[0])]
        by = self.data.procs.get(int(link["from_pid"]))
        what = schema.title(int(link["from_kind"])) if int(link["from_kind"]) in schema.SCHEMA else "release"
        return "\nunblocked by %s (pid %d): %s at %s, handoff %s" % (
            by.name if by else "process", int(link["from_pid"]), what,
            fmt_s((int(link["from_t"]) - self.data.t0) / 1e9), fmt_s(int(link["latency"]) / 1e9))

    def _describe_mark(self, r, who, x):
        """A mark on an object's track: a moment of it (a notify, a set...), a generation, a break."""
        kind = int(r["kind"])
        name = self.data.names.get(int(r["uid"]), "#%x" % int(r["uid"]))
        if kind in _MARK_TEXT:
            what = _MARK_TEXT[kind] % int(r["value"])
            by = "first waiter released" if kind == MARK_GENERATION else "first waiter broken"
            return "%s: %s\n%s: %s, at %s" % (name, what, by, who, fmt_s(x))
        return self._describe_moment(self.data.instants[int(r["instant"])], who, x)

    def _describe_moment(self, r, who, x):
        """A moment in words, from its kind's declaration: ``worker (pid 7): signal recv chan — handled SIGUSR1``."""
        d = self.data
        kind, a, b, c = int(r["kind"]), int(r["a"]), int(r["b"]), int(r["c"])
        obj = schema.subject_name(kind, int(r["uid"]), d.names, d.strings)
        lines = ["%s: %s%s" % (who, schema.title(kind), " " + obj if obj else ""),
                 schema.describe(kind, a, b, c, d.strings)]
        if int(r["by"]) != int(r["pid"]):
            by = d.procs.get(int(r["by"]))
            lines[-1] += ", by %s (pid %d)" % (by.name if by else "process", int(r["by"]))
        lines.append("at %s" % fmt_s(x))
        return "\n".join(lines)
