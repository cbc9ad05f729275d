"""Makes the README's screenshots: runs real scenarios in the app (offscreen) and saves the window.

    python resources/make_screenshots.py [OUT_DIR]

Each picture is the whole main window after a real run, so what the README shows is what a user sees.
"""
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtWidgets  # noqa: E402

from mpgui.gui import theme  # noqa: E402
from mpgui.gui.main_window import MainWindow  # noqa: E402

def kill_a_worker(win, elapsed, state):
    """During the run: after 3 s, SIGKILL one busy pool worker from the process table (once)."""
    snap = win.source.snapshot
    if state.get("killed") or snap is None or elapsed < 3.0:
        return
    busy = [p for p in snap.procs if p.role == "worker" and p.state == "running"]
    if busy:
        win.processes.signal_process(busy[0].pid, kill=True)
        state["killed"] = True


SHOTS = (
    ("pool-gantt.png", "pool_methods", {"unit": "0.4", "review": "0.3"}, "Processes", None),
    ("pool-recovers.png", "pool_methods", {"method": "imap_unordered", "processes": "3", "tasks": "12",
                                           "unit": "0.3", "review": "0.05", "order": "fastest first"},
     "Processes", kill_a_worker),
    ("lock-contention.png", "lock_contention", {"processes": "3", "increments": "150", "hold_ms": "2",
                                                 "mode": "with lock"}, "Locks && objects", None),
    ("start-methods.png", "start_methods", {}, "CPU", None),
    ("events.png", "queues", {}, "Events", None),
)


def wait_for_end(app, win, during=None, timeout=180):
    t0 = time.time()
    state = {}
    while time.time() - t0 < timeout:
        app.processEvents()
        time.sleep(0.02)
        if during is not None:
            during(win, time.time() - t0, state)
        if win.source is not None and win.source.state in ("done", "failed", "cancelled", "error"):
            break
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    app.setStyle("Fusion")
    app.setStyleSheet(theme.STYLE)
    tmp = tempfile.mkdtemp(prefix="mpgui-shots-")
    settings = QtCore.QSettings(os.path.join(tmp, "settings.ini"), QtCore.QSettings.IniFormat)
    win = MainWindow(home=os.path.join(tmp, "home"), settings=settings)
    win.resize(1500, 950)
    win.show()
    for filename, scenario, params, tab, during in SHOTS:
        win.launcher.select(scenario)
        for k, v in params.items():
            win.launcher.fields[k].set_value(v)
        win.launcher.run_button.click()
        wait_for_end(app, win, during)
        for i in range(win.tabs.count()):
            if win.tabs.tabText(i) == tab:
                win.tabs.setCurrentIndex(i)
        win._refresh(force=True)
        app.processEvents()
        path = os.path.join(out_dir, filename)
        win.grab().save(path)
        print("%s: %s (%s)" % (path, win.source.state, scenario))
    win.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "resources", "screenshots"))
