"""The timeline: one lane per process, pool tasks coloured by outcome, lock waits and holds, process lifetimes
with their start latency, results consumed by the main process, and moments (signals, shared-memory segments,
notifies, requests to end...) as ticks; zoom and pan with the mouse.

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
import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import internals
from PySide6 import QtCore, QtGui, QtWidgets

from core.trace import schema
from core.trace.events import Outcome
from core.trace.model import NO_TIME, Span, SpanEnd
from core.trace.units import fmt_s

from . import theme
from .timeline_data import (C_ERROR, C_HOLD, C_IO, C_LIFE, C_LOST, C_MANAGER, C_MOMENT, C_OK, C_OTHER_WAIT,
                            C_RUNNING, C_SIGNAL, C_STARTING, C_TIMEOUT, C_USED, C_WAIT, COLOR_KEYS, Bars)

PALETTE = {C_LIFE: theme.LIFETIME, C_STARTING: theme.STARTING, C_RUNNING: theme.TASK_RUNNING, C_OK: theme.TASK_OK,
           C_ERROR: theme.TASK_ERROR, C_TIMEOUT: theme.TASK_TIMEOUT, C_LOST: theme.TASK_LOST, C_HOLD: theme.LOCK_HOLD,
           C_WAIT: theme.LOCK_WAIT, C_OTHER_WAIT: theme.OTHER_WAIT, C_IO: theme.BLOCKED_IO,
           C_MANAGER: theme.MANAGER_CALL, C_USED: theme.RESULT_USED, C_MOMENT: theme.MOMENT,
           C_SIGNAL: theme.SIGNAL_MOMENT}
assert len(PALETTE) <= COLOR_KEYS      # sub-pixel bars are merged per lane, colour key and pixel column

# Where each layer sits inside a lane of height 1 (lane i spans y = i .. i+1, drawn top-down).
LAYOUT = (("life", 0.04, 0.92), ("starting", 0.04, 0.92), ("tasks", 0.14, 0.50), ("waits", 0.66, 0.13),
          ("holds", 0.80, 0.13), ("used", 0.10, 0.58), ("moments", 0.02, 0.40))
HIT_ORDER = ("moments", "used", "tasks", "holds", "waits", "starting", "life")
#: Layers of zero-length bars, drawn as ticks this many pixels wide.
TICK_PX = {"used": 2, "moments": 3}
#: Bars wider than this many pixels get an outline, so neighbours stay apart.
OUTLINE_MIN_PX = 5
#: Task bars wider than this get their index written inside.
LABEL_MIN_PX = 28
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


def _fields(record):
    """The field names of a record (a dict, or a numpy record)."""
    names = getattr(getattr(record, "dtype", None), "names", None)
    return names if names is not None else record.keys()


class LaneAxis(pg.AxisItem):
    """Left axis: one label per lane, at the lane's middle."""

    def __init__(self):
        super().__init__("left")
        self.labels = []
        self.setWidth(170)
        self.setStyle(tickLength=0, autoExpandTextSpace=False, hideOverlappingLabels=False)

    def tickValues(self, minVal, maxVal, size):
        n = len(self.labels)
        if not n:
            return []
        minVal, maxVal = min(minVal, maxVal), max(minVal, maxVal)      # the lanes' axis is inverted
        lo, hi = max(0, int(np.floor(minVal))), min(n - 1, int(np.ceil(maxVal)))
        visible = max(1, hi - lo + 1)
        step = max(1, int(np.ceil(visible * 16 / max(size, 1))))      # keep labels >= 16 px apart
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


class TimelineItem(pg.GraphicsObject):
    """Draws every layer of a TimelineData; culls to the view and merges sub-pixel bars."""

    def __init__(self):
        super().__init__()
        self.data = None
        self._lane_pids = np.zeros(0, np.int64)
        self._lane_sorted = np.zeros(0, np.int64)
        self._lane_index = np.zeros(0, np.int64)
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

    def set_data(self, data):
        self.prepareGeometryChange()
        self.data = data
        self._lane_pids = data.lane_pids()
        order = np.argsort(self._lane_pids, kind="stable")
        self._lane_sorted = self._lane_pids[order]
        self._lane_index = order
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
        return QtCore.QRectF(0.0, 0.0, max(self.data.t_end, 1e-3), max(len(self.data.lanes), 1))

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
                big = np.nonzero((rects[:, 2] >= LABEL_MIN_PX * pw) & (refs >= 0))[0]
                if 0 < len(big) <= 400:
                    tasks = self.data.tasks
                    labels.extend((rects[i], str(int(tasks[refs[i]]["index"]))) for i in big)
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
        self.lanes_drawn = len(self.data.lanes)

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
        if lane < 0 or lane >= len(self.data.lanes):
            return None
        pid = self.data.lanes[lane].pid
        t = self.data.t0 + int(x * 1e9)
        tol = max(int(3 * pw * 1e9), 1)
        for layer in HIT_ORDER:
            y_off, height = next((yy, h) for name, yy, h in LAYOUT if name == layer)
            if not (y_off <= frac <= y_off + height):
                continue
            bars = self.data.layers.get(layer)
            if bars is None or not len(bars):
                continue
            ref = bars.near(pid, t, tol)
            if ref is not None:
                return layer, ref
        return None


class TimelineView(QtWidgets.QWidget):
    """The timeline widget: toolbar, plot, details line."""

    sigSelected = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.data = None
        self.follow = True
        self.window = None
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
        bar.addWidget(self.follow_button)
        bar.addWidget(self.window_box)
        bar.addWidget(fit)
        bar.addSpacing(12)
        for text, color in (("running", theme.TASK_RUNNING), ("ok", theme.TASK_OK), ("error", theme.TASK_ERROR),
                            ("timed out", theme.TASK_TIMEOUT), ("lost", theme.TASK_LOST),
                            ("lock wait", theme.LOCK_WAIT), ("lock hold", theme.LOCK_HOLD),
                            ("other wait", theme.OTHER_WAIT), ("blocked I/O", theme.BLOCKED_IO),
                            ("starting", theme.STARTING), ("result used", theme.RESULT_USED),
                            ("moment", theme.MOMENT), ("signal, kill", theme.SIGNAL_MOMENT)):
            sw = QtWidgets.QLabel()
            sw.setFixedSize(10, 10)
            sw.setStyleSheet("background: %s; border-radius: 2px;" % color)
            bar.addWidget(sw)
            lbl = QtWidgets.QLabel(text)
            lbl.setObjectName("muted")
            bar.addWidget(lbl)
        bar.addStretch(1)
        self.skipping = QtWidgets.QLabel("live view skipping detail: the run is read in full when it ends")
        self.skipping.setObjectName("muted")
        self.skipping.setToolTip("The run records faster than the view can follow every event: stretches whose "
                                 "detail was skipped are hatched; nothing is lost, the run file has it all")
        self.skipping.setStyleSheet("color: %s;" % theme.ERROR_TEXT)
        self.skipping.hide()
        bar.addWidget(self.skipping)
        lay.addLayout(bar)

        self.axis = LaneAxis()
        self.plot = pg.PlotWidget(axisItems={"left": self.axis}, background=theme.BACKGROUND)
        self.plot.setObjectName("timelinePlot")
        self.plot.setLabel("bottom", "time", units="s")
        self.vb = self.plot.getViewBox()
        self.vb.invertY(True)
        self.vb.setMouseEnabled(x=True, y=False)
        self.vb.setLimits(xMin=-1.0)
        self.vb.setMenuEnabled(False)
        self.item = TimelineItem()
        self.plot.addItem(self.item)
        self.vb.sigRangeChangedManually.connect(self._manual_range)
        self.plot.scene().sigMouseMoved.connect(self._hover)
        self.plot.scene().sigMouseClicked.connect(self._click)
        self._marks = []
        lay.addWidget(self.plot, 1)

        self.details = QtWidgets.QLabel("Hover a bar for its details; click to select it.")
        self.details.setObjectName("muted")
        self.details.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.details.setContentsMargins(8, 2, 8, 4)
        lay.addWidget(self.details)

    # -- data --------------------------------------------------------------------------------------------------
    def set_data(self, data):
        self.data = data
        self.item.set_data(data)
        self.axis.labels = [lane.label for lane in data.lanes]
        n = max(len(data.lanes), 1)
        self.vb.setLimits(yMin=0, yMax=n)
        self.vb.setYRange(0, n, padding=0)
        self.axis.picture = None
        self.axis.update()
        self._update_marks(data.marks)
        self.skipping.setVisible(bool(data.dropping))
        if self.follow:
            self._follow_now()

    def clear(self):
        from .timeline_data import TimelineData
        self.item.selected = None
        self.set_data(TimelineData([], {}, [], 0.0))
        self.details.setText("Hover a bar for its details; click to select it.")

    def _update_marks(self, marks):
        if [m.value() for m in self._marks] == [x for x, _ in marks]:
            return
        for m in self._marks:
            self.plot.removeItem(m)
        self._marks = []
        for k, (x, label) in enumerate(marks):
            # labels on three staggered rows, so phases that follow each other closely stay readable
            line = pg.InfiniteLine(pos=x, angle=90, movable=False,
                                   pen=pg.mkPen(theme.MUTED_TEXT, style=QtCore.Qt.DashLine),
                                   label=label, labelOpts={"position": 0.015 + 0.045 * (k % 3),
                                                           "color": theme.MUTED_TEXT, "fill": (255, 255, 255, 200),
                                                           "anchors": [(0, 0), (0, 0)]})
            self.plot.addItem(line)
            self._marks.append(line)

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

    def _manual_range(self, *_):
        if self.follow:
            self.follow = False
            self.follow_button.blockSignals(True)
            self.follow_button.setChecked(False)
            self.follow_button.blockSignals(False)

    # -- hover and selection -----------------------------------------------------------------------------------
    def _hit_at(self, scene_pos):
        if not self.plot.sceneBoundingRect().contains(scene_pos) or self.data is None:
            return None
        pt = self.vb.mapSceneToView(scene_pos)
        return self.item.hit(pt.x(), pt.y(), self.vb.viewPixelSize()[0])

    def _hover(self, scene_pos):
        hit = self._hit_at(scene_pos)
        if hit is None:
            QtWidgets.QToolTip.hideText()
            return
        QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), self.describe(*hit), self.plot)

    def _click(self, ev):
        hit = self._hit_at(ev.scenePos())
        self.item.selected = hit
        self.item.update()
        text = self.describe(*hit) if hit else "Hover a bar for its details; click to select it."
        self.details.setText(text.replace("\n", "   "))
        if hit:
            self.sigSelected.emit(text)

    def describe(self, layer, ref):
        """The details of bar ``ref`` of ``layer``, as text (tooltip and details line)."""
        d = self.data
        found = d.layers[layer].bar(ref)
        if found is None:
            return ""
        pid, x0, x1 = found
        ref = int(ref)
        proc = d.procs.get(pid)
        who = "%s (pid %d)" % (proc.name if proc else "process", pid)
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
        if layer in ("holds", "waits"):
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
            return text
        if layer == "starting":
            return "%s starting (%s): %s from start() to its first instruction" % (
                who, proc.method if proc else "?", fmt_s(x1 - x0))
        if proc is None:
            return who
        status = proc.exit_text() or proc.state
        return "%s — %s, %s\nalive %s to %s (%s)" % (who, proc.role, status, fmt_s(x0), fmt_s(x1), fmt_s(x1 - x0))

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
