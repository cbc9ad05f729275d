"""CPU: the run's own processes, each and summed, with the whole machine's load as a faint reference.

While a run is shown, the curves are the run's own samples (recorded by the runner's monitor, so a saved run
shows them too): each process's CPU (100% is one core busy; its colour is the one its owner slices have on
the timeline's object tracks), their sum, and the machine's total in the same unit (all its cores: another
program's load shows there, not in the run's curves).  Per-core curves are optional.  Linked to the timeline
(``link_x``), the time axis is the timeline's: the same origin, each moment at the same place on the screen,
panned and zoomed together; its window box then has nothing to do and hides.  While the timeline follows a
live run by itself, this plot follows it at most every FOLLOW_SYNC_MS (a repaint of the plot takes the GIL
back from the reader thread a few times a frame); what the user does, it follows at once.  With no run, the
view samples this machine itself, per core, so the app never shows a dead plot.
"""
import collections
import time

import numpy as np
import psutil
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from . import theme
from .viewparts import with_bar

WINDOWS = (("Last 10 s", 10.0), ("Last 30 s", 30.0), ("Last 2 min", 120.0), ("Whole run", None))
#: Processes drawn one curve each, at most (the busiest); the sum counts them all.
MAX_PROCESS_CURVES = 24
#: The legend's columns hold this many entries each (more processes, more columns).
LEGEND_ROWS = 8
#: Processes the legend names, at most (the busiest): more would cover the curves they name.
LEGEND_PROCESSES = 5
#: While the linked timeline moves by itself (following a live run), this plot follows it this often at most.
FOLLOW_SYNC_MS = 100


def run_cpu(snapshot):
    """The run's CPU from a snapshot: (times s, summed %, {pid: (times s, %)}), 100% = one core."""
    tl = snapshot.timeline
    t0 = getattr(tl, "t0", 0)
    per = {}
    for pid, counters in (getattr(tl, "proc_counters", None) or {}).items():
        for c in counters:
            if c.name == "CPU" and len(c.t):
                per[pid] = ((np.asarray(c.t) - t0) / 1e9, np.asarray(c.v, np.float64))
    if not per:
        return np.zeros(0), np.zeros(0), per
    # the monitor samples every process at once: points of one sample share their time
    t = np.concatenate([x for x, _ in per.values()])
    v = np.concatenate([y for _, y in per.values()])
    times, at = np.unique(t, return_inverse=True)
    return times, np.bincount(at, weights=v, minlength=len(times)), per


class CpuView(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay, bar = with_bar(self)
        self.title = QtWidgets.QLabel("CPU load per core")
        self.source_label = QtWidgets.QLabel("this machine")
        self.source_label.setObjectName("muted")
        self.window_box = QtWidgets.QComboBox()
        for label, secs in WINDOWS:
            self.window_box.addItem(label, secs)
        self.window_box.setCurrentIndex(1)
        self.window_box.setToolTip("How much history the plot shows")
        self.window_box.currentIndexChanged.connect(self._redraw)
        self.cores_box = QtWidgets.QCheckBox("cores")
        self.cores_box.setToolTip("Also draw each CPU core's load (the whole machine's, not only the run's)")
        self.cores_box.toggled.connect(self._redraw)
        self.cores_box.hide()
        bar.addWidget(self.title)
        bar.addWidget(self.source_label)
        bar.addStretch(1)
        bar.addWidget(self.cores_box)
        bar.addWidget(self.window_box)
        self.plot = pg.PlotWidget(background=theme.BACKGROUND)
        self.plot.setObjectName("cpuPlot")
        self.plot.setLabel("left", "load", units="%")
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.setYRange(0, 105, padding=0)
        self.plot.setMouseEnabled(x=True, y=False)
        # no pyqtgraph grid: its translucent lines across the plot cost milliseconds a frame, and this plot
        # repaints with every pan of the timeline; a solid line per core's worth (100%, 200%...) instead
        self.core_lines = []
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextColor=theme.LANE_TEXT,
                                          brush=pg.mkBrush(255, 255, 255, 215))
        lay.addWidget(self.plot, 1)
        self.curves = []
        self.machine_curve = self.plot.plot(pen=pg.mkPen(theme.CPU_MACHINE, width=1.5,
                                                         style=QtCore.Qt.DashLine),
                                            clipToView=True, autoDownsample=True)
        self.total_curve = self.plot.plot(pen=pg.mkPen(theme.CPU_TOTAL, width=2.5), clipToView=True,
                                          autoDownsample=True)
        self.proc_curves = {}             # pid -> its curve
        self._in_legend = {}              # curve -> its name, while the legend lists it
        self.linked = None                # the plot this one's x axis follows
        self.on_pan = None                # () -> None: the user panned this plot (the timeline stops following)
        self._syncing = False
        self._last_sync = 0.0
        self._sync_timer = QtCore.QTimer(self)
        self._sync_timer.setSingleShot(True)
        self._sync_timer.timeout.connect(self._sync_from_linked)
        self.plot.getViewBox().sigRangeChangedManually.connect(self._panned)
        self.showing_run = False
        self._t = np.zeros(0)
        self._cores = []
        self._total = np.zeros(0)
        self._run = (np.zeros(0), np.zeros(0), {})
        self._names = {}
        self._ncores = 1
        # idle sampling of this machine (when no run is shown)
        self._idle = collections.deque(maxlen=1200)
        self._idle_t0 = time.monotonic()
        self._idle_timer = QtCore.QTimer(self)
        self._idle_timer.setInterval(100)
        self._idle_timer.timeout.connect(self._sample_machine)
        psutil.cpu_percent(percpu=True)
        self.show_machine()

    def link_x(self, plot, on_pan=None):
        """Share ``plot``'s time axis (the timeline's) while a run is shown: same origin, each moment at the
        same place on the screen, panned and zoomed together; ``on_pan()`` when the user pans this plot."""
        self.linked = plot
        self.on_pan = on_pan
        vb = plot.getViewBox()
        vb.sigXRangeChanged.connect(self._linked_moved)
        vb.sigRangeChangedManually.connect(lambda *_: self._sync_from_linked())
        if self.showing_run:
            self.window_box.hide()
            self._sync_from_linked()

    def showEvent(self, ev):
        super().showEvent(ev)
        self._sync_from_linked()        # while hidden it could not line up (no place on the screen)

    def _linked_moved(self, *_):
        if not self.showing_run or self._syncing or self._sync_timer.isActive():
            return
        wait = FOLLOW_SYNC_MS / 1000.0 - (time.monotonic() - self._last_sync)
        self._sync_timer.start(max(0, int(wait * 1000)))

    def _sync_from_linked(self):
        """Take the linked plot's time range, aligned on the screen (as pyqtgraph links views)."""
        if self.linked is None or not self.showing_run or self._syncing:
            return
        self._sync_timer.stop()
        self._last_sync = time.monotonic()
        self._syncing = True
        try:
            self.plot.getViewBox().linkedViewChanged(self.linked.getViewBox(), pg.ViewBox.XAxis)
        finally:
            self._syncing = False

    def _panned(self, *_):
        """The user panned or zoomed this plot: the timeline takes its range."""
        if self.linked is None or not self.showing_run or self._syncing:
            return
        self._syncing = True
        try:
            self.linked.getViewBox().linkedViewChanged(self.plot.getViewBox(), pg.ViewBox.XAxis)
        finally:
            self._syncing = False
        if self.on_pan is not None:
            self.on_pan()

    def _ensure_curves(self, n):
        while len(self.curves) < n:
            i = len(self.curves)
            c = self.plot.plot(pen=pg.mkPen(theme.CORE_COLORS[i % len(theme.CORE_COLORS)], width=1.0),
                               clipToView=True, autoDownsample=True)
            self.curves.append(c)
        for i, c in enumerate(self.curves):
            c.setVisible(i < n)
            self._legend(c, "core %d" % i, i < n)

    def _legend(self, curve, name, on):
        """List ``curve`` in the legend, or not (a hidden curve is not listed)."""
        if on and curve not in self._in_legend:
            self.legend.addItem(curve, name)
            self._in_legend[curve] = name
        elif not on and curve in self._in_legend:
            self.legend.removeItem(curve)
            del self._in_legend[curve]

    # -- sources -----------------------------------------------------------------------------------------------
    def show_machine(self):
        self.showing_run = False
        self.title.setText("CPU load per core")
        self.source_label.setText("— this machine, no run shown")
        self.plot.setLabel("left", "load", units="%")
        self.window_box.show()
        self.cores_box.hide()
        for c in self.proc_curves.values():
            self.plot.removeItem(c)
        self.proc_curves = {}
        self._run = (np.zeros(0), np.zeros(0), {})
        self.machine_curve.setVisible(False)
        self._legend(self.machine_curve, "whole machine", False)
        self._legend(self.total_curve, "", False)
        self._legend(self.total_curve, "total", True)
        self.legend.setColumnCount(1)
        self._idle_timer.start()

    def show_run(self, snapshot):
        if self._idle_timer.isActive():
            self._idle_timer.stop()
        if not self.showing_run:
            self.showing_run = True
            self.title.setText("CPU of the run's processes")
            self.source_label.setText("— 100%% is one core; dashed: the whole machine (other programs too); the "
                                      "legend names the %d busiest processes" % LEGEND_PROCESSES)
            self.plot.setLabel("left", "CPU", units="% of a core")
            self.cores_box.show()
            if self.linked is not None:
                self.window_box.hide()
                QtCore.QTimer.singleShot(0, self._sync_from_linked)
        self._t, self._cores, self._total = snapshot.cpu_t, snapshot.cpu_cores, snapshot.cpu_total
        self._ncores = max(len(self._cores), 1)
        self._run = run_cpu(snapshot)
        self._names = {p.pid: p.name or p.role for p in snapshot.procs}
        self._redraw()

    def _sample_machine(self):
        self._idle.append((time.monotonic() - self._idle_t0, psutil.cpu_percent(percpu=True)))
        t = np.array([s[0] for s in self._idle])
        cores = np.array([s[1] for s in self._idle], dtype=np.float64)
        self._t = t
        self._cores = [cores[:, i] for i in range(cores.shape[1])] if len(cores) else []
        self._total = cores.mean(axis=1) if len(cores) else np.zeros(0)
        self._redraw()

    def _redraw(self, *_):
        if self.showing_run:
            self._redraw_run()
            return
        t = self._t
        self._ensure_curves(len(self._cores))
        for c, v in zip(self.curves, self._cores):
            c.setData(t, v)
        self.total_curve.setData(t, self._total)
        self.plot.setYRange(0, 105, padding=0)
        self._core_lines(1)
        self._window(t)

    def _core_lines(self, n):
        """Solid horizontal lines at 100%, 200%... (n of them): one core busy, two..."""
        while len(self.core_lines) < n:
            line = pg.InfiniteLine(pos=100.0 * (len(self.core_lines) + 1), angle=0, movable=False,
                                   pen=pg.mkPen(theme.GRID_LINE, width=1))
            self.plot.addItem(line, ignoreBounds=True)
            self.core_lines.append(line)
        for i, line in enumerate(self.core_lines):
            line.setVisible(i < n)

    def _window(self, t):
        window = self.window_box.currentData()
        end = float(t[-1]) if len(t) else 1.0
        if window is None:
            self.plot.setXRange(0, max(end, 1.0), padding=0.01)
        else:
            self.plot.setXRange(max(0.0, end - window), max(end, window * 0.1), padding=0.01)

    def _redraw_run(self):
        times, total, per = self._run
        cores = self.cores_box.isChecked()
        self._ensure_curves(len(self._cores) if cores else 0)
        if cores:
            for c, v in zip(self.curves, self._cores):
                c.setData(self._t, v)
        # the machine in the run's unit: its mean load times its cores (100% = one core busy)
        machine = np.asarray(self._total, np.float64) * self._ncores
        self.machine_curve.setVisible(True)
        self.machine_curve.setData(self._t, machine)
        self.total_curve.setData(times, np.minimum(total, 100.0 * self._ncores))
        busiest = sorted(per, key=lambda pid: -float(per[pid][1].sum()))[:MAX_PROCESS_CURVES]
        self._legend(self.machine_curve, "whole machine", True)
        if self._in_legend.get(self.total_curve) != "the run (sum)":
            self._legend(self.total_curve, "", False)
            self._legend(self.total_curve, "the run (sum)", True)
        for pid in list(self.proc_curves):
            if pid not in busiest:
                c = self.proc_curves.pop(pid)
                self._legend(c, "", False)
                self.plot.removeItem(c)
        # a process's load cannot pass all the cores' (the monitor's first reading of a new process can)
        most = 100.0 * self._ncores
        named = set(busiest[:LEGEND_PROCESSES])
        for pid in busiest:
            c = self.proc_curves.get(pid)
            if c is None:
                color = theme.PROCESS_COLORS[pid % len(theme.PROCESS_COLORS)]
                c = self.proc_curves[pid] = self.plot.plot(pen=pg.mkPen(color, width=1.2), clipToView=True,
                                                           autoDownsample=True)
            name = "%s · %d" % (self._names.get(pid, "process"), pid)
            if self._in_legend.get(c) not in (None, name):
                self._legend(c, "", False)
            self._legend(c, name, pid in named)
            c.setData(per[pid][0], np.minimum(per[pid][1], most))
        self.legend.setColumnCount(1 + len(self._in_legend) // LEGEND_ROWS)
        top = min(max([float(total.max()) if len(total) else 0.0, float(machine.max()) if len(machine) else 0.0,
                       100.0]), most)
        self.plot.setYRange(0, top * 1.05, padding=0)
        self._core_lines(int(top // 100))
        if self.linked is None:
            self._window(times if len(times) else self._t)
