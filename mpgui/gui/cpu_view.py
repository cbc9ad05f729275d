"""Per-core CPU load and the total, 10 Hz, in a rolling window the user can widen.

While a run is shown, the curves are the run's own samples (recorded by the runner's monitor, so a saved run
shows them too).  With no run, the view samples this machine itself, so the app never shows a dead plot.
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


class CpuView(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay, bar = with_bar(self)
        self.source_label = QtWidgets.QLabel("this machine")
        self.source_label.setObjectName("muted")
        self.window_box = QtWidgets.QComboBox()
        for label, secs in WINDOWS:
            self.window_box.addItem(label, secs)
        self.window_box.setCurrentIndex(1)
        self.window_box.setToolTip("How much history the plot shows")
        self.window_box.currentIndexChanged.connect(self._redraw)
        bar.addWidget(QtWidgets.QLabel("CPU load per core"))
        bar.addWidget(self.source_label)
        bar.addStretch(1)
        bar.addWidget(self.window_box)
        self.plot = pg.PlotWidget(background=theme.BACKGROUND)
        self.plot.setObjectName("cpuPlot")
        self.plot.setLabel("left", "load", units="%")
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.setYRange(0, 105, padding=0)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextColor=theme.LANE_TEXT)
        lay.addWidget(self.plot, 1)
        self.curves = []
        self.total_curve = self.plot.plot(pen=pg.mkPen(theme.CPU_TOTAL, width=2.5), name="total",
                                          clipToView=True, autoDownsample=True)
        self._t = np.zeros(0)
        self._cores = []
        self._total = np.zeros(0)
        # idle sampling of this machine (when no run is shown)
        self._idle = collections.deque(maxlen=1200)
        self._idle_t0 = time.monotonic()
        self._idle_timer = QtCore.QTimer(self)
        self._idle_timer.setInterval(100)
        self._idle_timer.timeout.connect(self._sample_machine)
        psutil.cpu_percent(percpu=True)
        self.show_machine()

    def _ensure_curves(self, n):
        while len(self.curves) < n:
            i = len(self.curves)
            c = self.plot.plot(pen=pg.mkPen(theme.CORE_COLORS[i % len(theme.CORE_COLORS)], width=1.2),
                               name="core %d" % i, clipToView=True, autoDownsample=True)
            self.curves.append(c)
        for i, c in enumerate(self.curves):
            c.setVisible(i < n)

    # -- sources -----------------------------------------------------------------------------------------------
    def show_machine(self):
        self.source_label.setText("— this machine, no run shown")
        self._idle_timer.start()

    def show_run(self, snapshot):
        if self._idle_timer.isActive():
            self._idle_timer.stop()
        self.source_label.setText("— the run's processes and cores")
        self._t, self._cores, self._total = snapshot.cpu_t, snapshot.cpu_cores, snapshot.cpu_total
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
        t = self._t
        self._ensure_curves(len(self._cores))
        for c, v in zip(self.curves, self._cores):
            c.setData(t, v)
        self.total_curve.setData(t, self._total)
        window = self.window_box.currentData()
        end = float(t[-1]) if len(t) else 1.0
        if window is None:
            self.plot.setXRange(0, max(end, 1.0), padding=0.01)
        else:
            self.plot.setXRange(max(0.0, end - window), max(end, window * 0.1), padding=0.01)
