"""The contention panel: every lock, semaphore, condition, event, barrier, queue and pipe of a run, and who
held, waited and let whom go.

Four pages:

* State: each object now (live, from the snapshot) or at the cursor the user picked on the timeline
  (replayed by a worker): its holders, its waiters in arrival order with their wait so far, its value,
  depth, waiting count, set/clear state or broken barrier;
* Objects: per-object statistics for the whole run or the time range the user picked (acquisitions,
  contended share, wait and hold p50/p95/max, handoff latency), the most contended first; for the selected
  object its wait and hold histogram, its "unblocked by" links (who released it and how long the handoff
  took), who held it and for how long (per process, in the range), a barrier's generations, a semaphore's
  holders over time;
* Where it waited: the blocking profile, call sites ranked by total wait;
* Queues and pipes: puts and gets, bytes moved, time blocked on each side, and the selected queue's depth
  over time.

The Qt thread only draws: the figures come from a worker (``contention_data.Analysis`` over the run file),
asked for when the panel is shown, when the range changes and, live, at most every ``LIVE_ANALYSIS_S`` (or
``ANALYSIS_COST_FACTOR`` times what the last analysis took, if longer); the state at a cursor comes from a
worker too.  Nothing here reads a file or takes the model's lock.
"""
import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.trace import contention
from core.trace.events import Kind
from core.trace.units import fmt_bytes, fmt_ns, fmt_s

from . import contention_data, theme
from .viewparts import BackgroundJob, with_bar

#: Live, the figures are recomputed at most this often (seconds)...
LIVE_ANALYSIS_S = 2.0
#: ... and never more often than this many times what the last analysis took (it reads the whole file).
ANALYSIS_COST_FACTOR = 6.0
#: The detail tabs of the selected object, in order.
DETAIL_HISTOGRAM, DETAIL_LINKS, DETAIL_PROCESSES, DETAIL_GENERATIONS, DETAIL_OVER_TIME = range(5)
#: Rows the "unblocked by" table shows for an object (the latest).
LINK_ROWS = contention_data.LINKS_SHOWN
#: Tables of up to this many rows fit their columns to their contents (it costs a pass over every cell).
RESIZED_ROWS = 100
#: Bins of the histograms, labelled at their lower edge.
_EDGE_LABELS = ["<1 µs"] + [fmt_ns(int(e)) for e in contention.HIST_EDGES_NS]

OBJECT_COLUMNS = ("Object", "Kind", "Acquired", "Contended", "Share", "Timeouts", "Wait p50", "Wait p95",
                  "Wait max", "Total wait", "Hold p50", "Hold p95", "Hold max", "Handoff p50", "Handoff max")
SITE_COLUMNS = ("Call site", "Waits", "Total wait", "p50", "p95", "Max", "Objects", "Processes")
QUEUE_COLUMNS = ("Queue / pipe", "Kind", "Puts", "Gets", "Bytes in", "Bytes out", "Blocked puts",
                 "Time blocked in put", "Blocked gets", "Time blocked in get", "Timeouts", "Max depth")
LINK_COLUMNS = ("Waiter", "Wait began", "Waited", "Unblocked by", "By its", "At", "Handoff")
PROCESS_COLUMNS = ("Process", "Holds", "Held in all", "Longest hold", "Waits", "Waited in all", "Longest wait")
GEN_COLUMNS = ("Generation", "Parties", "Arrivals (pid at time)", "Released at", "Outcome")
STATE_COLUMNS = ("Object", "Kind", "State", "Holders", "Waiting")


class _Item(QtWidgets.QTableWidgetItem):
    """A cell that sorts by a number (``UserRole``) when it has one."""

    def __lt__(self, other):
        a, b = self.data(QtCore.Qt.UserRole), other.data(QtCore.Qt.UserRole)
        if a is not None and b is not None:
            return a < b
        return self.text() < other.text()       # (the base class's __lt__ recurses into this one)


def _cell(text, key=None, right=False):
    item = _Item(str(text))
    if key is not None:
        item.setData(QtCore.Qt.UserRole, key)
    if right:
        item.setTextAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
    return item


def _ns(v):
    """A figure in ns as a cell: ``-`` for none (-1)."""
    v = int(v)
    return _cell("-" if v < 0 else fmt_ns(v), v, right=True)


def _table(columns, name, sort_by=0, descending=False):
    """A read-only table, sorted by column ``sort_by`` until the user clicks another."""
    t = QtWidgets.QTableWidget(0, len(columns))
    t.setObjectName(name)
    t.setHorizontalHeaderLabels(columns)
    t.verticalHeader().hide()
    t.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
    t.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
    t.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
    t.horizontalHeader().setStretchLastSection(True)
    t.setWordWrap(False)
    t.verticalHeader().setDefaultSectionSize(t.fontMetrics().height() + 6)
    t.setSortingEnabled(True)
    t.sortByColumn(sort_by, QtCore.Qt.DescendingOrder if descending else QtCore.Qt.AscendingOrder)
    return t


def _fill(table, rows):
    """Put ``rows`` (lists of cells) into ``table``, keeping its sort order."""
    table.setSortingEnabled(False)
    table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, item in enumerate(cells):
            table.setItem(r, c, item)
    table.setSortingEnabled(True)
    if len(rows) <= RESIZED_ROWS:
        table.resizeColumnsToContents()


def _who(procs, pid):
    p = procs.get(pid)
    return "%s (pid %d)" % (p.name, pid) if p is not None and getattr(p, "name", "") else "pid %d" % pid


class ContentionView(QtWidgets.QWidget):
    """The panel (see the module's docstring).  Feed it ``set_snapshot``; the window tells it the range
    (``set_range``), the cursor (``set_cursor``) and a wait clicked on the timeline (``show_wait``)."""

    #: The figures arrived (tests wait for it): the Figures.
    sigFigures = QtCore.Signal(object)
    #: The state at the cursor arrived: the StatePicture.
    sigState = QtCore.Signal(object)
    #: An object was selected in a table: its uid (the timeline can show its tracks).
    sigObjectSelected = QtCore.Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("contentionView")
        self.source = None
        self.snapshot = None
        self.procs = {}
        self.range = None               # (t_from, t_to) seconds from the run's start, or None: the whole run
        self.cursor = None              # seconds from the run's start, or None: now
        self.figures = None
        self.picture = None             # the StatePicture shown
        self._analysis = None           # (path, contention_data.Analysis) of the last analysis
        self._reader = None             # the contention_data.RunAnalyser of the run shown
        self._analysed_at = 0.0
        self._analysis_cost = 0.0
        self._failed_at = -1e9
        self._busy = self._again = False
        self._state_busy = self._state_again = False
        self._cursor_shown = False      # the state at the cursor is on screen
        self._final = False             # the shown run is finished: its analysis is for good
        self._jobs = []
        #: The panel's worker: one thread, so that its jobs never run side by side (the state at a cursor
        #: waits for the figures) and never hold up the window's other work (exports) in Qt's pool.  Not at
        #: a lower priority: a thread the system runs less often while it holds the interpreter's lock would
        #: hold up the window more.
        self._pool = QtCore.QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._drawn = set()             # the pages drawn from the figures shown
        self._state_key = None
        self._selected_uid = None
        self._pending_wait = None

        lay, bar = with_bar(self)
        self.range_label = QtWidgets.QLabel("Figures for the whole run")
        self.range_label.setObjectName("contentionRange")
        self.whole_button = QtWidgets.QToolButton()
        self.whole_button.setText("Whole run")
        self.whole_button.setToolTip("Figures for the whole run again")
        self.whole_button.clicked.connect(lambda: self.set_range(None))
        self.visible_button = QtWidgets.QToolButton()
        self.visible_button.setText("Visible range")
        self.visible_button.setToolTip("Figures for the time the timeline shows now (zoom it to a second to "
                                       "ask who held the lock in that second)")
        self.cursor_label = QtWidgets.QLabel("State: now")
        self.cursor_label.setObjectName("contentionCursor")
        self.now_button = QtWidgets.QToolButton()
        self.now_button.setText("Now")
        self.now_button.setToolTip("Show the state now, or at the end of a finished run (click the timeline to "
                                   "see the state at that moment)")
        self.now_button.clicked.connect(lambda: self.set_cursor(None))
        self.busy_label = QtWidgets.QLabel("")
        self.busy_label.setObjectName("muted")
        for w in (self.range_label, self.whole_button, self.visible_button):
            bar.addWidget(w)
        bar.addSpacing(16)
        bar.addWidget(self.cursor_label)
        bar.addWidget(self.now_button)
        bar.addStretch(1)
        bar.addWidget(self.busy_label)

        self.pages = QtWidgets.QTabWidget()
        self.pages.setObjectName("contentionPages")
        self.pages.setDocumentMode(True)
        lay.addWidget(self.pages, 1)
        self.pages.currentChanged.connect(lambda *_: self._page_changed())

        # state
        self.state_tree = QtWidgets.QTreeWidget()
        self.state_tree.setObjectName("stateTree")
        self.state_tree.setColumnCount(len(STATE_COLUMNS))
        self.state_tree.setHeaderLabels(STATE_COLUMNS)
        self.state_tree.setRootIsDecorated(True)
        self.state_tree.setUniformRowHeights(True)
        self.pages.addTab(self.state_tree, "State")

        # objects
        self.objects_table = _table(OBJECT_COLUMNS, "objectsTable", OBJECT_COLUMNS.index("Total wait"), True)
        self.objects_table.itemSelectionChanged.connect(self._object_selected)
        self.details = QtWidgets.QTabWidget()
        self.details.setDocumentMode(True)
        self.hist = pg.PlotWidget(background=theme.BACKGROUND)
        self.hist.setObjectName("histogram")
        self.hist.setMenuEnabled(False)
        self.hist.setMouseEnabled(x=False, y=False)
        self.hist.addLegend(offset=(-10, 10))
        self.hist.setLabel("left", "count")
        ax = self.hist.getAxis("bottom")
        ax.setTicks([[(i, _EDGE_LABELS[i]) for i in range(0, len(_EDGE_LABELS), 3)]])
        self.links_table = _table(LINK_COLUMNS, "linksTable", LINK_COLUMNS.index("Wait began"), True)
        self.handoff_label = QtWidgets.QLabel("Click a wait on the timeline, or a row here, to see who let it go.")
        self.handoff_label.setObjectName("handoffText")
        self.handoff_label.setWordWrap(True)
        self.handoff_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.links_table.itemSelectionChanged.connect(self._link_selected)
        links_page = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(links_page)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.handoff_label)
        ll.addWidget(self.links_table, 1)
        self.gen_table = _table(GEN_COLUMNS, "generationsTable")
        self.process_table = _table(PROCESS_COLUMNS, "byProcessTable", PROCESS_COLUMNS.index("Held in all"), True)
        self.over_time = pg.PlotWidget(background=theme.BACKGROUND)
        self.over_time.setObjectName("overTime")
        self.over_time.setMenuEnabled(False)
        self.over_time.setLabel("bottom", "time", units="s")
        self.over_time.addLegend(offset=(-10, 10))
        self.details.addTab(self.hist, "Histogram")
        self.details.addTab(links_page, "Unblocked by")
        self.details.addTab(self.process_table, "Who held it")
        self.details.addTab(self.gen_table, "Generations")
        self.details.addTab(self.over_time, "Over time")
        self.details.currentChanged.connect(lambda *_: self._show_object(self._selected_uid))
        split = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        split.addWidget(self.objects_table)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 600])
        self.pages.addTab(split, "Objects")

        # where it waited
        self.sites_table = _table(SITE_COLUMNS, "sitesTable", SITE_COLUMNS.index("Total wait"), True)
        self.pages.addTab(self.sites_table, "Where it waited")

        # queues and pipes
        self.queues_table = _table(QUEUE_COLUMNS, "queuesTable", QUEUE_COLUMNS.index("Time blocked in get"), True)
        self.queues_table.itemSelectionChanged.connect(self._queue_selected)
        self.depth_plot = pg.PlotWidget(background=theme.BACKGROUND)
        self.depth_plot.setObjectName("depthPlot")
        self.depth_plot.setMenuEnabled(False)
        self.depth_plot.setLabel("bottom", "time", units="s")
        self.depth_plot.setLabel("left", "depth")
        qsplit = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        qsplit.addWidget(self.queues_table)
        qsplit.addWidget(self.depth_plot)
        qsplit.setSizes([300, 250])
        self.pages.addTab(qsplit, "Queues && pipes")

    # -- inputs ------------------------------------------------------------------------------------------------
    def clear(self):
        """A new run: forget the last one's figures and state."""
        self.source = self.snapshot = self.figures = self.picture = None
        self._analysis = self._reader = None
        self._final = False
        self.range = self.cursor = None
        self._state_key = self._selected_uid = self._pending_wait = None
        self._analysed_at, self._failed_at = 0.0, -1e9
        self.busy_label.setText("")
        self.range_label.setText("Figures for the whole run")
        self.cursor_label.setText("State: now")
        for t in (self.objects_table, self.sites_table, self.queues_table, self.links_table, self.gen_table,
                  self.process_table):
            t.setRowCount(0)
        self.state_tree.clear()
        self.hist.clear()
        self.over_time.clear()
        self.depth_plot.clear()

    def set_snapshot(self, snap, source, final=False):
        """The latest snapshot of ``source`` (a RunSource); ``final``: the run is finished."""
        if source is not self.source:
            self.clear()
            self.source = source
        self.snapshot = snap
        self.procs = {p.pid: p for p in snap.procs}
        if final and not self._final:
            self._final = True
            self._analysis = None           # the finished run is read again: analyse what it left
        self.refresh()

    def set_range(self, t_from, t_to=None):
        """Figures for [t_from, t_to) seconds from the run's start (``set_range(None)``: the whole run)."""
        if t_from is None:
            self.range = None
            self.range_label.setText("Figures for the whole run")
        else:
            lo, hi = sorted((float(t_from), float(t_to)))
            self.range = (lo, hi)
            self.range_label.setText("Figures for %s – %s" % (fmt_s(lo), fmt_s(hi)))
        self.figures = None
        self._ask_figures(force=True)

    def set_cursor(self, t):
        """Show the state at ``t`` seconds from the run's start (None: now)."""
        self.cursor = None if t is None else max(0.0, float(t))
        self.cursor_label.setText("State at %s" % fmt_s(self.cursor) if t is not None else
                                  "State at the end of the run" if self._final else "State: now")
        self._state_key = None
        self._cursor_shown = False
        if self.cursor is None:
            self._show_live_state()
        elif self.isVisible() and self.pages.currentIndex() == 0:
            self._ask_state()           # else when the state page is shown (``refresh``)

    def show_wait(self, uid, pid, tid, t_end_ns):
        """A wait clicked on the timeline (it ended at ``t_end_ns``): show who let it go."""
        self._pending_wait = (int(uid), int(pid), int(tid), int(t_end_ns))
        self.pages.setCurrentIndex(1)
        self.details.setCurrentIndex(DETAIL_LINKS)
        self._select_uid(int(uid))
        self._show_pending_wait()

    def _page_changed(self):
        self._draw_page()
        self.refresh()

    # -- refresh -------------------------------------------------------------------------------------------------
    def refresh(self):
        if self.snapshot is None:
            return
        if self.pages.currentIndex() == 0:
            if self.cursor is None:
                self._show_live_state()
            elif not self._cursor_shown:
                self._ask_state()
            if not self._final:
                return                  # live, the state page needs no figures: no analysis while it shows
        self._ask_figures()

    def _show_live_state(self):
        snap = self.snapshot
        picture = getattr(snap, "state", None) if snap is not None else None
        if picture is not None:
            self.cursor_label.setText("State at the end of the run" if self._final else "State: now")
            self._show_state(picture)

    def _ask_figures(self, force=False):
        src = self.source
        if src is None or self.snapshot is None:
            return
        if self._busy:
            self._again = self._again or force
            return
        now = time.monotonic()
        if now - self._failed_at < LIVE_ANALYSIS_S and not force:
            return                          # it just failed: not again at every refresh
        stale = self._analysis is None or self._analysis[0] != src.path
        if not stale and not self._final:
            interval = max(LIVE_ANALYSIS_S, ANALYSIS_COST_FACTOR * self._analysis_cost)
            stale = now - self._analysed_at > interval
        if not stale and not force and self.figures is not None:
            return
        path, t0 = src.path, self.snapshot.state.t0 if getattr(self.snapshot, "state", None) else 0
        analysis = None if stale else self._analysis[1]
        rng = None if self.range is None else (int(t0 + self.range[0] * 1e9), int(t0 + self.range[1] * 1e9))
        final = self._final
        if self._reader is None or self._reader.path != path:
            self._reader = contention_data.RunAnalyser(path)     # it reads each chunk once, live or not
        reader = self._reader

        def work():
            started = time.perf_counter()
            an = analysis
            if an is None:
                an = contention_data.Analysis.of(reader.report(), t0)
            figs = an.figures(*(rng or (None, None)))
            return path, an, figs, time.perf_counter() - started, analysis is None, final

        self._busy = True
        self.busy_label.setText("computing…")
        self._start(work, self._figures_done, self._figures_failed)

    def _start(self, fn, on_done, on_failed):
        """Run ``fn`` in the panel's own worker thread."""
        job = BackgroundJob(fn)

        def done(result, job=job):
            self._jobs.remove(job)
            on_done(result)

        def failed(exc, job=job):
            self._jobs.remove(job)
            on_failed(exc)

        job.signals.sigDone.connect(done)
        job.signals.sigFailed.connect(failed)
        self._jobs.append(job)
        self._pool.start(job)

    def _figures_done(self, result):
        path, an, figs, cost, fresh, final = result
        self._busy = False
        self.busy_label.setText("")
        if self.source is None or path != self.source.path:
            self._again = False
            self._ask_figures(force=True)   # another run is shown now: its own figures
            return
        if fresh:
            self._analysis = (path, an)
            self._analysed_at = time.monotonic()
            self._analysis_cost = cost
        if final != self._final:
            self._analysis = None           # the run ended while this was computed: read it again
        self._show_figures(figs)
        again, self._again = self._again, False
        if again or self._analysis is None:
            self._ask_figures(force=True)

    def _figures_failed(self, exc):
        self._busy = self._again = False
        self._failed_at = time.monotonic()
        reason = (str(exc).splitlines() or [exc.__class__.__name__])[0]
        self.busy_label.setText("The figures could not be computed (%s): open the run again." % reason)

    def close_jobs(self, timeout_ms=10_000):
        """Wait for the panel's worker to finish what it is doing (the window is closing)."""
        self._pool.clear()
        self._pool.waitForDone(timeout_ms)

    def _ask_state(self):
        src, snap = self.source, self.snapshot
        if src is None or snap is None or self.cursor is None:
            return
        if self._state_busy:
            self._state_again = True
            return
        model, t = src.model, int(snap.state.t0 + self.cursor * 1e9)
        self._state_busy = True
        self._start(lambda: contention_data.state_at(model, t), self._state_done, self._state_failed)

    def _state_done(self, picture):
        self._state_busy = False
        snap = self.snapshot
        wanted = None if self.cursor is None or snap is None else int(snap.state.t0 + self.cursor * 1e9)
        if wanted is not None and picture.t == wanted:
            self._cursor_shown = True
            self._show_state(picture)
            self.sigState.emit(picture)
        elif wanted is not None:
            self._state_again = True        # the cursor moved meanwhile
        if self._state_again:
            self._state_again = False
            self._ask_state()

    def _state_failed(self, exc):
        self._state_busy = False
        self.cursor_label.setText("The state could not be replayed (%s)" % exc)

    # -- drawing ------------------------------------------------------------------------------------------------
    def _show_state(self, pic):
        key = (pic.t if not pic.live else None,
               tuple((o.uid, o.state_text(), tuple((p.pid, p.tid, p.since) for p in o.holders),
                      tuple((p.pid, p.tid, p.since) for p in o.waiters)) for o in pic.objects))
        if key == self._state_key and pic.live:
            # the same holders and waiters: only their times so far changed
            self._update_state_times(pic)
            self.picture = pic
            return
        self._state_key = key
        self.picture = pic
        tree = self.state_tree
        tree.setUpdatesEnabled(False)
        expanded = {tree.topLevelItem(i).data(0, QtCore.Qt.UserRole)
                    for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).isExpanded()}
        tree.clear()
        for o in sorted(pic.objects, key=lambda o: (-len(o.waiters), -len(o.holders), o.name)):
            holders = ", ".join(_who(self.procs, p.pid) for p in o.holders)
            top = QtWidgets.QTreeWidgetItem([o.name, o.kind, o.state_text(), holders or "—",
                                             str(len(o.waiters)) if o.waiters else "—"])
            top.setData(0, QtCore.Qt.UserRole, o.uid)
            if o.broken:
                top.setForeground(2, QtGui.QBrush(QtGui.QColor(theme.ERROR_TEXT)))
            for p in o.holders:
                top.addChild(QtWidgets.QTreeWidgetItem(["holds: " + _who(self.procs, p.pid), "", "",
                                                        "for " + fmt_ns(max(0, pic.t - p.since)), ""]))
            for i, p in enumerate(o.waiters, 1):
                top.addChild(QtWidgets.QTreeWidgetItem(["waits #%d: %s" % (i, _who(self.procs, p.pid)), "",
                                                        "to " + p.what, "",
                                                        "for " + fmt_ns(max(0, pic.t - p.since))]))
            tree.addTopLevelItem(top)
            if o.uid in expanded or o.waiters or o.holders:
                top.setExpanded(True)
        for c in range(len(STATE_COLUMNS) - 1):
            tree.resizeColumnToContents(c)
        tree.setUpdatesEnabled(True)

    def _update_state_times(self, pic):
        tree = self.state_tree
        by_uid = {o.uid: o for o in pic.objects}
        for i in range(tree.topLevelItemCount()):
            top = tree.topLevelItem(i)
            o = by_uid.get(top.data(0, QtCore.Qt.UserRole))
            if o is None or top.childCount() != len(o.holders) + len(o.waiters):
                continue
            for j, p in enumerate(o.holders):
                top.child(j).setText(3, "for " + fmt_ns(max(0, pic.t - p.since)))
            for j, p in enumerate(o.waiters):
                top.child(len(o.holders) + j).setText(4, "for " + fmt_ns(max(0, pic.t - p.since)))

    def _show_figures(self, figs):
        self.figures = figs
        self._drawn = set()
        if self._selected_uid is None and len(figs.objects):
            self._selected_uid = int(figs.objects["uid"][0])
        self._draw_page()
        self.sigFigures.emit(figs)

    def _draw_page(self):
        """Draw the figures on the page shown, once per new figures (the others wait until shown)."""
        figs, page = self.figures, self.pages.currentIndex()
        if figs is None or page in self._drawn or page == 0:
            return
        self._drawn.add(page)
        if page == 1:
            self._draw_objects(figs)
        elif page == 2:
            self._draw_sites(figs)
        elif page == 3:
            self._draw_queues(figs)

    def _draw_objects(self, figs):
        rows = []
        for o in figs.objects:
            uid = int(o["uid"])
            name = _cell(figs.names.get(uid, "#%x" % uid))
            name.setData(QtCore.Qt.UserRole + 1, uid)
            rows.append([name, _cell(figs.kinds.get(uid, "") or contention.Family(int(o["family"])).name.title()),
                         _cell(int(o["acquired"]), int(o["acquired"]), True),
                         _cell(int(o["contended"]), int(o["contended"]), True),
                         _cell("%.0f%%" % (100 * o["share"]), float(o["share"]), True),
                         _cell(int(o["timeouts"]), int(o["timeouts"]), True),
                         _ns(o["wait_p50"]), _ns(o["wait_p95"]), _ns(o["wait_max"]), _ns(o["wait_total"]),
                         _ns(o["hold_p50"]), _ns(o["hold_p95"]), _ns(o["hold_max"]),
                         _ns(o["handoff_p50"]), _ns(o["handoff_max"])])
        self._fill_keeping_selection(self.objects_table, rows, self._selected_uid)
        self._show_object(self._selected_uid)
        self._show_pending_wait()

    def _draw_sites(self, figs):
        rows = []
        for s in figs.profile:
            rows.append([_cell(s.site), _cell(s.waits, s.waits, True), _ns(s.total_ns), _ns(s.p50_ns),
                         _ns(s.p95_ns), _ns(s.max_ns),
                         _cell(", ".join(figs.names.get(u, "#%x" % u) for u in s.objects[:4])
                               + (" …" if len(s.objects) > 4 else "")),
                         _cell(", ".join(str(p) for p in s.pids[:8]) + (" …" if len(s.pids) > 8 else ""))])
        _fill(self.sites_table, rows)

    def _draw_queues(self, figs):
        rows = []
        for q in figs.queues:
            uid = int(q["uid"])
            name = _cell(figs.names.get(uid, "#%x" % uid))
            name.setData(QtCore.Qt.UserRole + 1, uid)
            depth = int(q["max_depth"])
            rows.append([name, _cell(figs.kinds.get(uid, "") or ("Pipe" if q["family"] == contention.Family.PIPE
                                                                   else "Queue")),
                         _cell(int(q["puts"]), int(q["puts"]), True), _cell(int(q["gets"]), int(q["gets"]), True),
                         _cell(fmt_bytes(int(q["bytes_in"])), int(q["bytes_in"]), True),
                         _cell(fmt_bytes(int(q["bytes_out"])), int(q["bytes_out"]), True),
                         _cell(int(q["put_blocked"]), int(q["put_blocked"]), True), _ns(q["put_blocked_ns"]),
                         _cell(int(q["get_blocked"]), int(q["get_blocked"]), True), _ns(q["get_blocked_ns"]),
                         _cell(int(q["timeouts"]), int(q["timeouts"]), True),
                         _cell("-" if depth < 0 else depth, depth, True)])
        self._fill_keeping_selection(self.queues_table, rows, self._uid_of_row(self.queues_table))
        self._queue_selected()

    def _fill_keeping_selection(self, table, rows, selected):
        table.blockSignals(True)
        _fill(table, rows)
        if selected is not None:
            self._select_row_of(table, selected)
        table.blockSignals(False)

    @staticmethod
    def _uid_of_row(table):
        rows = table.selectionModel().selectedRows()
        if not rows:
            return None
        item = table.item(rows[0].row(), 0)
        return item.data(QtCore.Qt.UserRole + 1) if item is not None else None

    @staticmethod
    def _select_row_of(table, uid):
        for r in range(table.rowCount()):
            item = table.item(r, 0)
            if item is not None and item.data(QtCore.Qt.UserRole + 1) == uid:
                table.selectRow(r)
                return True
        return False

    def select_object(self, uid):
        """Select object ``uid`` (chosen elsewhere: its track on the timeline) without announcing it back."""
        if uid != self._selected_uid:
            self._select_uid(uid)

    def _select_uid(self, uid):
        """Show ``uid`` on the Objects page (as if its row were clicked)."""
        self._selected_uid = uid
        self.objects_table.blockSignals(True)
        self._select_row_of(self.objects_table, uid)
        self.objects_table.blockSignals(False)
        self._show_object(uid)

    def _object_selected(self):
        uid = self._uid_of_row(self.objects_table)
        if uid is None:
            return
        self._selected_uid = uid
        self._show_object(uid)
        self.sigObjectSelected.emit(uid)

    def _show_object(self, uid):
        """The selected object's details, on the detail tab shown (the others are drawn when shown)."""
        figs = self.figures
        tab = self.details.currentIndex()
        if figs is None or uid is None:
            return
        name = figs.names.get(uid, "#%x" % uid)
        if tab == DETAIL_HISTOGRAM:
            self._draw_histogram(figs, uid, name)
        elif tab == DETAIL_LINKS:
            self._draw_links(figs, uid)
        elif tab == DETAIL_PROCESSES:
            self._draw_processes(figs, uid)
        elif tab == DETAIL_GENERATIONS:
            self._draw_generations(figs, uid)
        else:
            self._draw_over_time(figs, uid, name)

    def _draw_processes(self, figs, uid):
        rows = []
        for r in figs.by_process.get(uid, ()):
            rows.append([_cell(_who(self.procs, int(r["pid"]))), _cell(int(r["holds"]), int(r["holds"]), True),
                         _ns(r["hold_total"]), _ns(r["hold_max"] if r["holds"] else -1),
                         _cell(int(r["waits"]), int(r["waits"]), True), _ns(r["wait_total"]),
                         _ns(r["wait_max"] if r["waits"] else -1)])
        _fill(self.process_table, rows)

    def _draw_histogram(self, figs, uid, name):
        self.hist.clear()
        row = figs.objects[figs.objects["uid"] == np.uint64(uid)]
        if len(row):
            x = np.arange(contention.HIST_BINS)
            for field, offset, color, label in (("wait_hist", -0.2, theme.LOCK_WAIT, "wait"),
                                                ("hold_hist", 0.2, theme.LOCK_HOLD, "hold")):
                h = row[field][0]
                if h.any():
                    self.hist.addItem(pg.BarGraphItem(x=x + offset, height=h, width=0.4, brush=color, name=label))
            self.hist.setTitle("%s: waits that blocked and holds, by duration" % name)

    def _draw_links(self, figs, uid):
        t0 = figs.t0
        links = figs.links.get(uid)
        rows = []
        if links is not None:
            for ln in links[::-1]:
                rows.append([_cell(_who(self.procs, int(ln["to_pid"]))),
                             _cell(fmt_s((int(ln["wait_t0"]) - t0) / 1e9), int(ln["wait_t0"]), True),
                             _ns(int(ln["to_t"]) - int(ln["wait_t0"])),
                             _cell(_who(self.procs, int(ln["from_pid"]))),
                             _cell(_kind_word(int(ln["from_kind"]))),
                             _cell(fmt_s((int(ln["from_t"]) - t0) / 1e9), int(ln["from_t"]), True),
                             _ns(ln["latency"])])
        self.links_table.blockSignals(True)
        _fill(self.links_table, rows)
        self.links_table.blockSignals(False)

    def _draw_generations(self, figs, uid):
        t0 = figs.t0
        gens = figs.generations.get(uid, [])
        rows = []
        for g in gens:
            arrivals = ", ".join("%d at %s" % (pid, fmt_s((t - t0) / 1e9)) for pid, t in g.arrivals)
            outcome = "broken" if g.broken else ("passed" if g.released is not None else "waiting")
            rows.append([_cell(g.generation, g.generation, True),
                         _cell("%d of %d" % (len(g.arrivals), g.parties), len(g.arrivals), True), _cell(arrivals),
                         _cell("-" if g.released is None else fmt_s((g.released - t0) / 1e9)), _cell(outcome)])
            if g.broken:
                rows[-1][-1].setForeground(QtGui.QBrush(QtGui.QColor(theme.ERROR_TEXT)))
        _fill(self.gen_table, rows)

    def _draw_over_time(self, figs, uid, name):
        self.over_time.clear()
        t0 = figs.t0
        held = figs.holders.get(uid)
        if held is not None and len(held):
            t = (held["t"] - t0) / 1e9
            # each figure holds until the next acquire or release: steps, not slopes
            self.over_time.plot(t, held["holders"], stepMode="right", pen=pg.mkPen(theme.LOCK_HOLD, width=2),
                                name="holders")
            self.over_time.plot(t, held["value"], stepMode="right", pen=pg.mkPen(theme.LOCK_WAIT, width=1),
                                name="value")
            self.over_time.setTitle("%s: holders and value after each acquire and release" % name)

    def _link_selected(self):
        rows = self.links_table.selectionModel().selectedRows()
        figs = self.figures
        if not rows or figs is None:
            return
        links = figs.links.get(self._selected_uid)
        if links is None:
            return
        # the table lists the latest first, unless the user sorted it: find the row by its wait's start
        item = self.links_table.item(rows[0].row(), 1)
        t = item.data(QtCore.Qt.UserRole) if item is not None else None
        match = links[links["wait_t0"] == t] if t is not None else links[:0]
        if len(match):
            self.handoff_label.setText(self._handoff_text(match[-1]))

    def _handoff_text(self, ln):
        figs = self.figures
        name = figs.names.get(int(ln["uid"]), "#%x" % int(ln["uid"]))
        return ("%s waited %s for %s from %s; unblocked by %s's %s at %s: handoff %s."
                % (_who(self.procs, int(ln["to_pid"])), fmt_ns(int(ln["to_t"]) - int(ln["wait_t0"])), name,
                   fmt_s((int(ln["wait_t0"]) - figs.t0) / 1e9), _who(self.procs, int(ln["from_pid"])),
                   _kind_word(int(ln["from_kind"])), fmt_s((int(ln["from_t"]) - figs.t0) / 1e9),
                   fmt_ns(int(ln["latency"]))))

    def _show_pending_wait(self):
        figs, pending = self.figures, self._pending_wait
        if figs is None or pending is None:
            return
        uid, pid, tid, t_end = pending
        links = self._all_links_of(uid)
        match = links[(links["to_pid"] == pid) & (links["to_tid"] == tid) & (links["to_t"] == t_end)]
        if len(match):
            self.handoff_label.setText(self._handoff_text(match[-1]))
        else:
            self.handoff_label.setText("No release is linked to that wait of %s: it did not block, or what let it "
                                       "go was not recorded." % figs.names.get(uid, "#%x" % uid))
        self._pending_wait = None

    def _all_links_of(self, uid):
        if self._analysis is not None:
            links = self._analysis[1].links
            return links[links["uid"] == np.uint64(uid)]
        return self.figures.links.get(uid, np.zeros(0, contention.LINK_DTYPE))

    def _queue_selected(self):
        figs = self.figures
        self.depth_plot.clear()
        if figs is None:
            return
        uid = self._uid_of_row(self.queues_table)
        if uid is None and len(figs.queues):
            uid = int(figs.queues["uid"][0])
        got = figs.depths.get(uid) if uid is not None else None
        if got is not None and len(got[0]):
            t, d = got
            x = (t - figs.t0) / 1e9
            self.depth_plot.plot(x, d, stepMode="right", pen=pg.mkPen(theme.LOCK_HOLD, width=1.5))
            self.depth_plot.setTitle("%s: depth after each put and get" % figs.names.get(uid, "#%x" % uid))


def _kind_word(kind):
    return _KIND_WORDS.get(kind, "record %d" % kind)


#: What a link's source record was, in a word.
_KIND_WORDS = {int(Kind.RELEASE): "release", int(Kind.COND_NOTIFY): "notify", int(Kind.EVENT_SET): "set",
               int(Kind.BARRIER_ARRIVE): "arrival", int(Kind.QUEUE_PUT): "put", int(Kind.MANAGER_CALL): "release()"}
