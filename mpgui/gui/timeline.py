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

The view follows live data (the x range tracks the newest time) until the user pans or zooms; "Follow"
resumes it.  Hovering a bar shows its details; clicking selects it and shows them below the plot.  While a
live run outpaces the reader, the tool bar says the view is skipping detail.

This module is the widget: its tool bar, the rows' scrolling and collapsing, the view range, hovering and
selection, and its signals.  Its parts: ``timeline_item`` draws (and says how a frame stays cheap at any
scale), ``timeline_rows`` lays out and labels the rows, ``timeline_details`` puts a bar in words and
``timeline_arrows`` reads, places and draws the "unblocked by" arrows.
"""
import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.trace.units import fmt_s

from . import theme, timeline_arrows, timeline_details
from .timeline_arrows import handoffs_text, in_view, read_links, selected_links
from .timeline_details import counters_text
from .timeline_item import TimelineItem
from .timeline_rows import MIN_ROW_PX, LaneAxis, layout_rows
from .viewparts import in_background

# The widget's parts have modules of their own; the names other modules and the tests import from here stay
# importable from here.
from .timeline_arrows import MAX_ARROWS  # noqa: F401
from .timeline_colors import PALETTE  # noqa: F401
from .timeline_details import WAIT_KINDS  # noqa: F401
from .timeline_item import (COUNTER_BOTTOM, COUNTER_POINTS_PER_PX, COUNTER_TOP, HIT_ORDER, LAYOUT,  # noqa: F401
                            OUTLINE_MIN_PX, SHADE_ALPHA, SHADE_FULL, SHADE_HALF, TASK_LABEL_MIN_PX, TICK_PX,
                            counter_points)
from .timeline_rows import LABEL_MAX_PX, LABEL_MIN_PX, Row  # noqa: F401

#: Phase labels are stacked on at most this many rows; one that fits on none is left out (its line stays).
PHASE_ROWS = 3
EMPTY_TEXT = ("No run shown.\nPick a scenario on the left and press Run (Ctrl+R), open a saved run (Ctrl+O), "
              "or trace a program of yours (Ctrl+T).")

WINDOWS = (("Whole run", None), ("Last 5 s", 5.0), ("Last 30 s", 30.0), ("Last 2 min", 120.0))


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
        self._set_rows(*layout_rows(self.data, self.tracks, self.show_counters, self.collapsed))

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
        # The view's transform now, not when the next paint begins: changed there, it asks for a second
        # paint of the whole timeline right after the first (twice the drawing for every new snapshot).
        self.vb.updateMatrix()

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
        return counters_text(row.label, counters, self.data.t0, self.vb.mapSceneToView(scene_pos).x())

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
        return timeline_details.wait_of(self.data, layer, ref)

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
        links = selected_links(self.links, self.selected_object, self.selected_process)
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
        n = int(in_view(arrows, vx0, vx1).sum())
        what = (self.data.names.get(self.selected_object, "#%x" % self.selected_object)
                if self.selected_object is not None else "pid %d" % self.selected_process)
        self.handoffs.setText(handoffs_text(what, n))
        self.handoffs.show()

    def arrows_of(self, links):
        """(x0, y0, x1, y1) arrays of the arrows drawing ``links`` on the rows shown (``timeline_arrows``)."""
        return timeline_arrows.arrows_of(self.data, self.item.lanes_of, links)

    def _load_links(self):
        d = self.data
        if not d.path or self._jobs:
            return
        path, version = d.path, d.version

        def work():
            return read_links(path)

        def done(links):
            if self.data is not None and self.data.path == path:
                self.links, self._links_for = links, (path, version)
                self._update_arrows()

        def failed(exc):
            self.details.setText("Could not read the handoffs from the run file: %s" % exc)

        in_background(work, done, failed, self._jobs)

    def describe(self, layer, ref):
        """The details of bar ``ref`` of ``layer``, as text (tooltip and details line)."""
        return timeline_details.describe(self.data, self.links, layer, ref)
