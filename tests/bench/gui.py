"""GUI figures (offscreen Qt):

* frame_ms_100k: median time to render one frame of the timeline while panning and zooming over 100,000 task
  bars in 16 lanes (also the worst frame), against pyqtgraph's own BarGraphItem drawing the same bars on its
  fast path (one item per colour) in the same run;
* max_stall_ms: the longest stall of the Qt event loop while the app ingests a live run growing by 20,000
  events per second (a 5 ms timer measures the gaps);
* cold_start_s: process start to the first painted main window, against a bare Qt window in the same run.

Prints its figures as one JSON line, last.  Goals: <= 16 ms per frame, <= 50 ms stall, <= 1.5 s cold start.
"""
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, report  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

from core.trace.arrays import EVENT_DTYPE  # noqa: E402
from core.trace.collector import Batch  # noqa: E402
from core.trace.events import Kind  # noqa: E402
from core.trace.store import RunWriter  # noqa: E402
from mpgui.gui.timeline import TimelineView  # noqa: E402
from mpgui.gui.timeline_data import C_OK, C_RUNNING, Bars, Lane, TimelineData  # noqa: E402

N_BARS = 100_000
N_LANES = 16
SPAN_S = 200.0


def synthetic_timeline():
    rng = np.random.default_rng(1)
    lane = rng.integers(0, N_LANES, N_BARS)
    start = np.sort(rng.uniform(0, SPAN_S, N_BARS))
    dur = rng.exponential(SPAN_S * N_LANES / N_BARS * 0.8, N_BARS)
    pids = 1000 + lane
    color = np.where(rng.random(N_BARS) < 0.05, C_RUNNING, C_OK).astype(np.int8)
    tasks = Bars(pids.astype(np.int64), start, start + dur, color, np.arange(N_BARS))
    lanes = [Lane(1000 + i, "worker %d" % i, "worker", "running") for i in range(N_LANES)]
    task_table = np.zeros(N_BARS, dtype=[("index", "<i8")])
    task_table["index"] = np.arange(N_BARS)
    layers = {"tasks": tasks, "life": Bars.empty(), "starting": Bars.empty(), "holds": Bars.empty(),
              "waits": Bars.empty(), "used": Bars.empty()}
    return TimelineData(lanes, layers, [], SPAN_S, task_table), (lane, start, dur)


def ranges():
    """A pan/zoom path: whole run, then zooming in on a moving centre, then panning at a fine zoom."""
    out = []
    for k in range(12):
        width = SPAN_S / (2 ** k)
        centre = SPAN_S * (0.3 + 0.04 * k)
        out.append((centre - width / 2, centre + width / 2))
    for k in range(12):
        x0 = 10 + k * 7.5
        out.append((x0, x0 + 20.0))
    return out


def time_frames(widget, set_range):
    times = []
    for x0, x1 in ranges():
        set_range(x0, x1)
        QtWidgets.QApplication.processEvents()
        t0 = time.perf_counter()
        widget.viewport().repaint()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def frame_benchmark(app):
    data, (lane, start, dur) = synthetic_timeline()
    view = TimelineView()
    view.resize(1400, 700)
    view.show()
    view.set_data(data)
    view.set_follow(False)
    app.processEvents()
    ours = time_frames(view.plot, lambda a, b: view.vb.setXRange(a, b, padding=0))
    view.close()

    # baseline: pyqtgraph's own BarGraphItem on its fast path (one item per colour, one brush, no pen), which
    # draws every bar each frame.  (A brush per bar, its slow path, crashes PySide6 6.12 at 100,000 bars.)
    plot = pg.PlotWidget()
    plot.resize(1400, 700)
    color = data.layers["tasks"].color
    for c, hex_ in ((C_OK, "#3aa76d"), (C_RUNNING, "#4c8ef7")):
        sel = color == c
        plot.addItem(pg.BarGraphItem(x0=start[sel], y0=lane[sel] + 0.14, width=dur[sel], height=0.5,
                                     brush=pg.mkBrush(hex_), pen=None))
    plot.show()
    app.processEvents()
    base = time_frames(plot, lambda a, b: plot.setXRange(a, b, padding=0))
    plot.close()
    return float(np.median(ours)), float(np.max(ours)), float(np.median(base))


def stall_benchmark(app):
    """A live run file growing by 20,000 events/s while the main window shows it."""
    from mpgui.gui.main_window import MainWindow
    from mpgui.gui.runsource import RunSource
    tmp = tempfile.mkdtemp(prefix="mpgui-bench-")
    path = os.path.join(tmp, "live.mpgrun")
    writer = RunWriter(path, {"created_perf": time.perf_counter_ns()})
    writer.add_batch(Batch(np.zeros(0, EVENT_DTYPE), [
        {"t": "proc", "pid": 1000 + i, "ppid": 999, "role": "worker", "name": "worker %d" % i} for i in range(16)] +
        [{"t": "obj", "uid": 7, "kind": "Lock", "name": "L"}], {}))
    stop = threading.Event()
    rate = 20_000
    per_batch = rate // 20

    def produce():
        job, index = 1, 0
        while not stop.is_set():
            t = time.perf_counter_ns()
            ev = np.zeros(per_batch, EVENT_DTYPE)
            half = per_batch // 2
            # lock acquire/release pairs and pool task start/end pairs, spread over 16 workers
            pid = 1000 + (np.arange(per_batch) // 2) % 16
            ev["pid"] = pid
            ev["tid"] = pid
            ev["t"] = t + np.arange(per_batch) * 1000
            ev["uid"][:half] = 7
            ev["kind"][:half] = np.where(np.arange(half) % 2 == 0, Kind.ACQ_OK, Kind.RELEASE)
            ev["c"][:half] = np.where(np.arange(half) % 2 == 0, 1, 0)
            ev["b"][:half] = -1
            ev["uid"][half:] = 99
            ev["kind"][half:] = np.where(np.arange(per_batch - half) % 2 == 0, Kind.POOL_TASK_T0, Kind.POOL_TASK)
            ev["a"][half:] = job
            ev["b"][half:] = index + np.arange(per_batch - half) // 2
            index += (per_batch - half) // 2
            writer.add_batch(Batch(ev, [], {}))
            stop.wait(0.05)

    settings = QtCore.QSettings(os.path.join(tmp, "s.ini"), QtCore.QSettings.IniFormat)
    win = MainWindow(home=os.path.join(tmp, "home"), settings=settings)
    win.resize(1400, 900)
    win.show()
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    src = RunSource(path, live=True, parent=win, title="bench")
    win._replace_source(src)
    src._reader.start()
    gaps = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QtCore.QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    t_end = time.perf_counter() + 6.0
    while time.perf_counter() < t_end:
        app.processEvents(QtCore.QEventLoop.AllEvents, 5)
    timer.stop()
    stop.set()
    producer.join()
    ingested = src.model.events_seen
    src._process_done.set()
    win.close()
    writer.close()
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    return max(gaps[20:]) * 1e3, ingested


def cold_start():
    app_code = ("import time, sys; t0 = time.perf_counter(); sys.path.insert(0, %r)\n"
                "from PySide6 import QtWidgets, QtCore\n"
                "from mpgui.gui.app import main\n"
                "import mpgui.gui.main_window as mw\n"
                "orig = mw.MainWindow.show\n"
                "def show(self):\n"
                "    orig(self)\n"
                "    QtCore.QTimer.singleShot(0, lambda: (self.repaint(), print('painted', flush=True),"
                " QtWidgets.QApplication.quit()))\n"
                "mw.MainWindow.show = show\n"
                "main(['--home', %r])\n") % (ROOT, tempfile.mkdtemp(prefix="mpgui-home-"))
    bare_code = ("from PySide6 import QtWidgets, QtCore\n"
                 "app = QtWidgets.QApplication([]); w = QtWidgets.QMainWindow(); w.resize(1400, 880); w.show()\n"
                 "QtCore.QTimer.singleShot(0, lambda: (w.repaint(), print('painted', flush=True), app.quit()))\n"
                 "app.exec()\n")

    def measure(code):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                                 env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
            for line in p.stdout:
                if line.startswith("painted"):
                    best = min(best, time.perf_counter() - t0)
                    break
            p.wait()
        return best

    return measure(app_code), measure(bare_code)


def main():
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    frame, frame_max, base = frame_benchmark(app)
    stall, ingested = stall_benchmark(app)
    cold, bare = cold_start()
    report({"frame_ms_100k": frame, "frame_ms_100k_worst": frame_max, "baseline_bargraph_frame_ms": base,
            "frame_ratio_vs_bargraph": frame / base if base else None,
            "max_stall_ms": stall, "events_ingested": ingested,
            "cold_start_s": cold, "bare_qt_window_s": bare})


if __name__ == "__main__":
    main()
