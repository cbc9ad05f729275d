"""Makes the README's screenshots: runs real scenarios in the app (offscreen) and saves the window.

    python resources/make_screenshots.py [OUT_DIR [PICTURE ...]]

Each picture is the whole main window after a real run (a comparison's: its own window once every run of it
finished), so what the README shows is what a user sees.  Naming pictures makes only those.
"""
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
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


def arrows_on_the_counter_lock(win):
    """After the run: the counter lock selected (its "unblocked by" arrows drawn), a tenth of a second in the
    middle of the run shown."""
    tl, snap = win.timeline, win.source.snapshot
    uid = [u for u, o in win.source.model.objects.items() if o.get("name") == "counter lock"][0]
    tl.stop_following()
    mid = snap.elapsed / 2
    tl.vb.setXRange(mid, mid + 0.1, padding=0)
    tl.select_object(uid)


SHOTS = (
    ("pool-gantt.png", "pool_methods", {"unit": "0.4", "review": "0.3"}, "Processes", None),
    ("pool-recovers.png", "pool_methods", {"method": "imap_unordered", "processes": "3", "tasks": "12",
                                           "unit": "0.3", "review": "0.05", "order": "fastest first"},
     "Processes", kill_a_worker),
    ("start-methods.png", "start_methods", {}, "CPU", None),
    ("events.png", "queues", {}, "Events", None),
    ("timeline-tracks.png", "barrier", {}, "Processes", None),
    ("timeline-arrows.png", "lock_contention", {"processes": "4", "increments": "100", "hold_ms": "2",
                                                "mode": "with lock"}, "Processes", None, arrows_on_the_counter_lock),
)


#: Pictures taken while a run records: picture, scenario, parameters, seconds into the run (at the first
#: snapshot after it that skipped detail, if one comes within the run).
LIVE_SHOTS = (
    ("live-skipping.png", "lock_contention", {"processes": "4", "increments": "300000", "hold_ms": "0",
                                             "mode": "with lock"}, 2.0),
)


#: Comparisons made with the launcher's Compare: picture, scenario, parameters, runs per start method.
COMPARE_SHOTS = (
    ("compare-start-methods.png", "start_methods", {}, 3),
    ("compare-pool-methods.png", "pool_methods", {"unit": "0.1", "review": "0.1"}, 2),
)


def cursor_in_the_thick_of_it(win, figs):
    """The state page in the middle of a hold of the most contended object that began with a handoff half-way
    through the run: a holder and a queue of waiters."""
    o = figs.objects[0]
    ends = np.sort(figs.links[int(o["uid"])]["to_t"])
    win.contention.pages.setCurrentIndex(0)
    win.contention.set_cursor((int(ends[len(ends) // 2]) + int(o["hold_p50"]) // 2 - figs.t0) / 1e9)


def semaphore_over_time(win, figs):
    """The Objects page, the semaphore's holders and value over time."""
    panel = win.contention
    panel.pages.setCurrentIndex(1)
    panel.details.setCurrentIndex(4)
    panel._select_uid([u for u, n in figs.names.items() if n == "resource slots"][0])


def objects_page(win, figs):
    """The Objects page: the most contended object's wait and hold histogram."""
    win.contention.pages.setCurrentIndex(1)
    win.contention.details.setCurrentIndex(0)


#: Pictures of the contention panel: picture, scenario, parameters, what to show once the figures are in.
CONTENTION_SHOTS = (
    ("lock-contention.png", "lock_contention", {"processes": "3", "increments": "150", "hold_ms": "2",
                                                 "mode": "with lock"}, objects_page),
    ("contention-state.png", "lock_contention", {"processes": "4", "increments": "60", "hold_ms": "5",
                                                  "mode": "with lock"}, cursor_in_the_thick_of_it),
    ("contention-semaphore.png", "semaphore", {"processes": "5", "slots": "2", "rounds": "6", "hold_ms": "15"},
     semaphore_over_time),
)


def contention_shot(app, win, out_dir, filename, scenario, params, show):
    win.launcher.select(scenario)
    for k, v in params.items():
        win.launcher.fields[k].set_value(v)
    win.launcher.run_button.click()
    wait_for_end(app, win)
    panel = win.contention
    win.tabs.setCurrentWidget(panel)
    panel.pages.setCurrentIndex(1)
    win._refresh(force=True)
    t0 = time.time()
    while time.time() - t0 < 60 and not (panel._final and panel.figures is not None and not panel._busy):
        app.processEvents()
        time.sleep(0.02)
    show(win, panel.figures)
    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    path = os.path.join(out_dir, filename)
    win.grab().save(path)
    print("%s: %s (%s)" % (path, win.source.state, scenario))


def compare_shot(app, win, out_dir, filename, scenario, params, repeat, timeout=900):
    win.launcher.select(scenario)
    for k, v in params.items():
        win.launcher.fields[k].set_value(v)
    for box in win.launcher.compare_checks.values():
        box.setChecked(True)
    win.launcher.repeat.setValue(repeat)
    win.launcher.compare_button.click()
    w = win.comparison
    w.resize(1500, 1100)
    t0 = time.time()
    while time.time() - t0 < timeout and (w.running or w._loading):
        app.processEvents()
        time.sleep(0.02)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    path = os.path.join(out_dir, filename)
    w.grab().save(path)
    print("%s: %d runs (%s)" % (path, len(w.view.runs), scenario))
    w.close()


def live_shot(app, win, out_dir, filename, scenario, params, at_s):
    """The window while a hot run records: the live view keeping up by skipping detail (hatched)."""
    win.launcher.select(scenario)
    for k, v in params.items():
        win.launcher.fields[k].set_value(v)
    win.launcher.run_button.click()
    path = os.path.join(out_dir, filename)
    state = {}

    def during(win, elapsed, state):
        snap = win.source.snapshot
        if "saved" not in state and elapsed >= at_s and snap is not None and snap.dropping:
            win._refresh(force=True)
            settle(app, 0.1)
            win.grab().save(path)
            state["saved"] = True

    wait_for_end(app, win, lambda w, e, s: during(w, e, state))
    print("%s: %s (%s)" % (path, "taken while recording" if state else "not taken: the view never skipped",
                           scenario))


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


def settle(app, seconds):
    """Let the window work for ``seconds`` (background reads deliver, views redraw)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main(out_dir, only=()):
    os.makedirs(out_dir, exist_ok=True)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    app.setStyle("Fusion")
    app.setStyleSheet(theme.STYLE)
    tmp = tempfile.mkdtemp(prefix="mpgui-shots-")
    settings = QtCore.QSettings(os.path.join(tmp, "settings.ini"), QtCore.QSettings.IniFormat)
    win = MainWindow(home=os.path.join(tmp, "home"), settings=settings)
    win.resize(1500, 950)
    win.show()
    for filename, scenario, params, tab, during, *after in SHOTS:
        if only and filename not in only:
            continue
        win.launcher.select(scenario)
        for k, v in params.items():
            win.launcher.fields[k].set_value(v)
        win.launcher.run_button.click()
        wait_for_end(app, win, during)
        for i in range(win.tabs.count()):
            if win.tabs.tabText(i) == tab:
                win.tabs.setCurrentIndex(i)
        win._refresh(force=True)
        settle(app, 1.5)                # a tab reads in the background (the event log from the run file)
        for step in after:
            step(win)
            settle(app, 1.5)            # the arrows are read in the background
        path = os.path.join(out_dir, filename)
        win.grab().save(path)
        print("%s: %s (%s)" % (path, win.source.state, scenario))
    for filename, scenario, params, show in CONTENTION_SHOTS:
        if not only or filename in only:
            contention_shot(app, win, out_dir, filename, scenario, params, show)
    for filename, scenario, params, at_s in LIVE_SHOTS:
        if not only or filename in only:
            live_shot(app, win, out_dir, filename, scenario, params, at_s)
    for filename, scenario, params, repeat in COMPARE_SHOTS:
        if not only or filename in only:
            compare_shot(app, win, out_dir, filename, scenario, params, repeat)
    win.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "resources", "screenshots"), sys.argv[2:])
