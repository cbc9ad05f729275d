"""The comparison in the app: runs stacked on one time axis (aligned at their start, or at their first task),
panning together; figures per start method with their spread; runs picked in the history side by side with
what differs; Compare in the launcher runs every method and opens the comparison, Stop ends it; a reopened
run says what it ran in the window title and the launcher."""
import json
import os
import subprocess
import sys

import psutil
import pytest
from PySide6 import QtCore

from mpgui.gui.compare_view import ALIGN_FIRST_TASK, ALIGN_START, SHOW_ALL, SHOW_ONE, CompareWindow
from mpgui.history import RunHistory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")
SMALL = {"processes": "2", "increments": "200", "mode": "with lock"}
RUN_TIMEOUT_MS = 120_000


def cli(args, home):
    env = dict(os.environ, MPGUI_HOME=str(home))
    env.pop("QT_QPA_PLATFORM", None)
    r = subprocess.run([sys.executable, MAIN] + [str(a) for a in args], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r


def history(home):
    h = RunHistory(str(home), readonly=True)
    try:
        return sorted(h.list(limit=1000), key=lambda r: r["started"])
    finally:
        h.close()


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """A comparison made by the command line: lock_contention under fork and spawn, twice each."""
    home = tmp_path_factory.mktemp("home")
    sets = [a for k, v in SMALL.items() for a in ("--set", "%s=%s" % (k, v))]
    r = cli(["compare", "lock_contention", "--methods", "fork,spawn", "--repeat", "2", "--json", "--quiet"] + sets,
            home)
    return home, json.loads(r.stdout.strip().splitlines()[-1])


def open_comparison(qtbot, rows, home):
    w = CompareWindow.for_runs(rows, home=str(home))
    qtbot.addWidget(w)
    w.resize(1300, 900)
    w.show()
    qtbot.waitUntil(lambda: len(w.view.runs) == len(rows), timeout=30_000)
    return w


def test_the_aligned_view_puts_each_runs_start_at_zero_and_pans_them_together(qtbot, compared):
    home, out = compared
    w = open_comparison(qtbot, history(home), home)
    view = w.view
    assert len(view.timelines) == 4 and view.align == ALIGN_START
    # every view shows the same range, from 0: each run's start (0 on its own timeline) at the same place
    assert all(view.offset(run) == 0.0 for run, _ in view.timelines)
    ranges = [tl.vb.viewRange()[0] for _, tl in view.timelines]
    assert all(r == pytest.approx(ranges[0]) for r in ranges) and ranges[0][0] == pytest.approx(0.0, abs=1e-9)
    xs = [tl.vb.mapViewToScene(QtCore.QPointF(0.0, 0)).x() for _, tl in view.timelines]
    assert max(xs) - min(xs) < 1.0
    # one label column for all
    assert len({tl.axis.maximumWidth() for _, tl in view.timelines}) == 1
    # pan and zoom one: the others follow
    view.timelines[2][1].vb.setXRange(0.25, 0.75, padding=0)
    for _, tl in view.timelines:
        assert tl.vb.viewRange()[0] == pytest.approx([0.25, 0.75])


def test_aligned_at_the_first_task_each_view_is_shifted_by_its_own_offset(qtbot, compared):
    home, out = compared
    w = open_comparison(qtbot, history(home), home)
    view = w.view
    view.set_align(ALIGN_FIRST_TASK)
    offsets = [run.first_task_s for run, _ in view.timelines]
    assert all(o > 0 for o in offsets) and max(offsets) > min(offsets)
    view.timelines[0][1].vb.setXRange(offsets[0] - 0.1, offsets[0] + 0.4, padding=0)
    for i, (run, tl) in enumerate(view.timelines):
        x0, x1 = tl.vb.viewRange()[0]
        assert (x0 - run.first_task_s, x1 - run.first_task_s) == pytest.approx((-0.1, 0.4))
        assert view.aligned_range(i) == pytest.approx((-0.1, 0.4))
    # each run's first task is at the same place on screen
    xs = [tl.vb.mapViewToScene(QtCore.QPointF(run.first_task_s, 0)).x() for run, tl in view.timelines]
    assert max(xs) - min(xs) < 1.0


def test_the_figures_have_one_column_per_method_with_the_spread_of_its_repeats(qtbot, compared):
    home, out = compared
    w = open_comparison(qtbot, history(home), home)
    t = w.view.groups_table
    headers = [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())]
    assert headers == ["figure", "fork (2 runs)", "spawn (2 runs)"]
    rows = {t.item(r, 0).text(): [t.item(r, c).text() for c in (1, 2)] for r in range(t.rowCount())}
    fork, spawn = rows["start latency p50 (ms)"]
    assert "±" in fork and "±" in spawn
    assert float(fork.split()[0]) == pytest.approx(out["methods"]["fork"]["start_latency_ms_p50"], abs=0.051)
    assert "spawn started processes" in w.view.differences.text()
    assert w.view.runs_table.rowCount() == 4
    # one timeline per method: the run with the median makespan of each
    w.view.set_show(SHOW_ONE)
    assert [run.method for run, _ in w.view.timelines] == ["fork", "spawn"]
    w.view.set_show(SHOW_ALL)
    assert len(w.view.timelines) == 4


def test_two_history_runs_side_by_side_show_their_parameter_differences(qtbot, window, tmp_path):
    home = tmp_path / "home"
    for processes in ("2", "3"):
        cli(["run", "lock_contention", "--quiet", "--start-method", "fork", "--set", "processes=" + processes,
             "--set", "increments=100", "--set", "mode=with lock"], home)
    with qtbot.waitSignal(window.runs.sigRefreshed, timeout=10_000):
        window.runs.refresh()
    assert not window.runs.compare_button.isEnabled()
    window.runs.table.selectAll()
    assert window.runs.compare_button.isEnabled()
    qtbot.mouseClick(window.runs.compare_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.compare_windows and len(window.compare_windows[-1].view.runs) == 2,
                    timeout=30_000)
    view = window.compare_windows[-1].view
    p = view.params_table
    rows = {p.item(r, 0).text(): [p.item(r, c).text() for c in range(1, p.columnCount())] for r in range(p.rowCount())}
    assert rows == {"processes": ["3", "2"]}               # the history lists the newest first
    headers = [view.groups_table.horizontalHeaderItem(c).text() for c in range(view.groups_table.columnCount())]
    assert headers == ["figure", "processes=3 (1 run)", "processes=2 (1 run)"]


def test_compare_in_the_launcher_runs_each_checked_method_and_opens_the_comparison(qtbot, window, tmp_path):
    window.launcher.select("lock_contention")
    for k, v in SMALL.items():
        window.launcher.fields[k].set_value(v)
    window.launcher.compare_checks["forkserver"].setChecked(False)
    window.launcher.repeat.setValue(1)
    assert window.launcher.compare_button.isEnabled()
    qtbot.mouseClick(window.launcher.compare_button, QtCore.Qt.LeftButton)
    assert window.comparison is not None and not window.launcher.run_button.isEnabled()
    w = window.comparison
    qtbot.waitUntil(lambda: not w.running and len(w.view.runs) == 2, timeout=RUN_TIMEOUT_MS)
    assert [r.method for r in w.view.runs] == ["fork", "spawn"] and all(r.status == "done" for r in w.view.runs)
    assert window.comparison is None and window.launcher.run_button.isEnabled()
    rows = history(tmp_path / "home")
    assert len(rows) == 2 and len({r["comparison"] for r in rows}) == 1
    assert all(r["params"]["increments"] == 200 for r in rows)


def start_a_long_comparison(qtbot, window, repeat):
    """A comparison of lock_contention runs that would take minutes, started from the launcher: its window
    and the process tree of its first run, once that run's program has its workers."""
    window.launcher.select("lock_contention")
    for k, v in {"processes": "2", "increments": "1000000", "hold_ms": "1"}.items():
        window.launcher.fields[k].set_value(v)
    window.launcher.repeat.setValue(repeat)
    qtbot.mouseClick(window.launcher.compare_button, QtCore.Qt.LeftButton)
    w = window.comparison
    qtbot.waitUntil(lambda: w.source.comparison is not None, timeout=RUN_TIMEOUT_MS)
    runner = w.source.process.processId()
    qtbot.waitUntil(lambda: len(psutil.Process(runner).children(recursive=True)) >= 4, timeout=RUN_TIMEOUT_MS)
    tree = [runner] + [c.pid for c in psutil.Process(runner).children(recursive=True)]
    return w, tree


def test_stop_ends_the_comparison_and_leaves_nothing_running(qtbot, window):
    w, tree = start_a_long_comparison(qtbot, window, repeat=3)
    qtbot.mouseClick(window.launcher.stop_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: not w.running, timeout=30_000)
    qtbot.waitUntil(lambda: not [p for p in tree if psutil.pid_exists(p)
                                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE], timeout=10_000)
    assert window.comparison is None and window.launcher.compare_button.isEnabled()
    assert "cancelled" in w.view.status.text()
    assert [r["status"] for r in history(window.home)] == ["cancelled"]


def test_a_reopened_run_says_what_it_ran_in_the_title_and_the_launcher(qtbot, window, tmp_path):
    import multiprocessing
    home = tmp_path / "home"
    cli(["run", "start_methods", "--quiet", "--set", "processes=1", "--set", "tasks=1", "--set", "task_ms=1",
         "--set", "list_items=10"], home)
    (row,) = history(home)
    window.launcher.select("lock_contention")
    window.open_run(row["path"])
    qtbot.waitUntil(lambda: window.source.state == "done" and window.source.snapshot is not None, timeout=30_000)
    window._refresh(force=True)
    methods = ", ".join(multiprocessing.get_all_start_methods())
    title = window.windowTitle()
    assert "start_methods" in title and "processes=1" in title and title.endswith(methods)
    assert window.launcher.scenario.name == "start_methods"
    assert window.launcher.fields["list_items"].raw() == "10" and window.launcher.fields["methods"].raw() == "all"
    assert window.launcher.context.isVisible()
    assert methods in window.launcher.context.text() and row["id"] in window.launcher.context.text()
    # the history's list says every method too
    with qtbot.waitSignal(window.runs.sigRefreshed, timeout=10_000):
        window.runs.refresh()
    assert window.runs.table.item(0, 2).text() == methods
    assert "list_items=10" in window.runs.table.item(0, 3).text()


def test_closing_a_comparison_window_cancels_its_runs(qtbot, window):
    w, tree = start_a_long_comparison(qtbot, window, repeat=2)
    w.close()
    qtbot.waitUntil(lambda: not [p for p in tree if psutil.pid_exists(p)
                                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE], timeout=15_000)
    qtbot.waitUntil(lambda: window.comparison is None and window.launcher.run_button.isEnabled(), timeout=10_000)
    assert [r["status"] for r in history(window.home)] == ["cancelled"]


def test_a_comparisons_timelines_share_a_label_column_wide_enough_for_every_name(qtbot):
    from mpgui.gui.compare_view import share_label_width
    from mpgui.gui.timeline import TimelineView
    short, long_ = TimelineView(tracks=False), TimelineView(tracks=False)
    for v in (short, long_):
        qtbot.addWidget(v)
    short.axis.labels = ["main · 4116", "worker · 4117"]
    long_.axis.labels = ["main · 4116", "ForkServerPoolWorker-12 · 4151"]
    width = share_label_width([short, long_])
    assert short.axis.maximumWidth() == long_.axis.maximumWidth() == width == long_.axis.needed_width()
    assert width > short.axis.needed_width()
    # once laid out, every label is drawn whole (the axis elides only what does not fit)
    long_.resize(900, 300)
    long_.show()
    qtbot.waitUntil(lambda: long_.axis.width() == width)
    assert long_.axis.tickStrings([1.5], 1, 1) == ["ForkServerPoolWorker-12 · 4151"]
