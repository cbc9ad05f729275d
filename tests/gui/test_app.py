"""The desktop app, driven through its own widgets (pytest-qt, offscreen)."""

import numpy as np
import psutil
from PySide6 import QtCore, QtWidgets

from mpgui.gui.main_window import MainWindow
from core.trace.store import RunFile

RUN_TIMEOUT_MS = 90_000


def configure(window, scenario, **params):
    window.launcher.select(scenario)
    for k, v in params.items():
        window.launcher.fields[k].set_value(v)


def run_to_end(qtbot, window, scenario, **params):
    configure(window, scenario, **params)
    assert window.launcher.run_button.isEnabled(), window.launcher.error.text()
    qtbot.mouseClick(window.launcher.run_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.source is not None and window.source.state in
                    ("done", "failed", "cancelled", "error"), timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.source.snapshot is not None and not window.launcher.stop_button.isEnabled())
    return window.source


def test_run_a_scenario_from_the_launcher(qtbot, window):
    src = run_to_end(qtbot, window, "lock_contention", processes="2", increments="300")
    assert src.state == "done", src.error
    # the lesson is shown, with this run's figures
    assert window.launcher.lesson.isVisible()
    assert "With the lock the total was 600 of 600" in window.launcher.lesson.text()
    # the status bar counts what was recorded
    assert window.events_label.text() == "events: %d" % src.snapshot.events and src.snapshot.events > 1000
    # process table and timeline lanes match the run's processes
    with RunFile(src.path) as rf:
        model = rf.model()
    traced = {p.pid for p in model.procs.values() if p.traced}
    table = {p.pid for p in window.processes.model.rows}
    lanes = {lane.pid for lane in window.timeline.data.lanes}
    assert traced <= table and traced <= lanes
    assert window.processes.model.rowCount() == len(window.timeline.data.lanes)
    workers = [p for p in window.processes.model.rows if p.name.startswith("incrementer")]
    assert len(workers) == 4 and all(p.exit_text() == "exit 0" for p in workers)
    # lock holds are drawn
    assert len(window.timeline.data.layers["holds"]) == 600
    # the run is in the history
    with qtbot.waitSignal(window.runs.sigRefreshed, timeout=10_000):
        window.runs.refresh()
    assert any(r["path"] == src.path and r["status"] == "done" for r in window.runs.runs)


def test_invalid_parameters_keep_run_disabled_with_the_reason(qtbot, window):
    configure(window, "lock_contention")
    field = window.launcher.fields["processes"]
    field.set_value("many")
    assert not window.launcher.run_button.isEnabled()
    assert "must be a whole number" in window.launcher.error.text()
    assert field.editor.property("invalid") is True
    field.set_value("1000")
    assert not window.launcher.run_button.isEnabled()
    assert "at most 64" in window.launcher.error.text()
    field.set_value("3")
    assert window.launcher.run_button.isEnabled()
    assert window.launcher.error.text() == ""


def test_only_available_start_methods_are_offered(window):
    import multiprocessing
    configure(window, "lock_contention")
    offered = [window.launcher.method.itemText(i) for i in range(window.launcher.method.count())]
    assert offered and set(offered) <= set(multiprocessing.get_all_start_methods())


def test_tooltip_of_a_task_bar_shows_the_task(qtbot, window):
    src = run_to_end(qtbot, window, "pool_methods", method="imap", processes="2", tasks="4", unit="0.05",
                     review="0.01")
    assert src.state == "done", src.error
    tl = window.timeline
    tl.fit()
    qtbot.wait(50)
    tasks = tl.data.layers["tasks"]
    assert len(tasks) == 4 + 2                 # the scenario's 4 tasks and its 2 warm-up tasks
    ref = int(tasks.ref[np.argmax(tasks.x1 - tasks.x0)])          # a bar is known by its task's row
    rect = tl.item.rect_of("tasks", ref)
    view_pt = QtCore.QPointF(rect[0] + rect[2] / 2, rect[1] + rect[3] / 2)
    scene_pt = tl.vb.mapViewToScene(view_pt)
    tl._hover(scene_pt)
    text = QtWidgets.QToolTip.text()
    index = int(tl.data.tasks[ref]["index"])
    assert ("Task %d of job" % index) in text and "worker" in text
    # clicking selects it and shows the same details below the plot
    assert tl.item.hit(view_pt.x(), view_pt.y(), tl.vb.viewPixelSize()[0]) == ("tasks", ref)


def test_stop_ends_the_run_and_leaves_nothing(qtbot, window):
    configure(window, "lock_contention", processes="2", increments="1000000", hold_ms="1")
    qtbot.mouseClick(window.launcher.run_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.source.state == "running" and window.source.snapshot is not None
                    and window.source.snapshot.events > 500, timeout=RUN_TIMEOUT_MS)
    runner = window.source.process.processId()
    tree = [runner] + [c.pid for c in psutil.Process(runner).children(recursive=True)]
    assert len(tree) >= 4
    assert window.launcher.stop_button.isEnabled()
    qtbot.mouseClick(window.launcher.stop_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.source.state == "cancelled", timeout=10_000)
    qtbot.waitUntil(lambda: not [p for p in tree if psutil.pid_exists(p)
                                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE], timeout=5_000)
    assert window.launcher.run_button.isEnabled()
    with RunFile(window.source.path) as rf:
        assert rf.meta()["status"] == "cancelled"


def test_a_saved_run_shows_the_same_bars(qtbot, window):
    src = run_to_end(qtbot, window, "lock_contention", processes="2", increments="200")
    live = src.snapshot.timeline
    path = src.path
    window.open_run(path)
    qtbot.waitUntil(lambda: window.source.path == path and window.source.state == "done"
                    and window.source.snapshot is not None)
    saved = window.source.snapshot.timeline
    assert [lane.pid for lane in saved.lanes] == [lane.pid for lane in live.lanes]
    for name in ("life", "tasks", "holds", "waits", "used"):
        a, b = live.layers[name], saved.layers[name]
        assert len(a) == len(b), name
        assert np.array_equal(a.pid, b.pid) and np.allclose(a.x0, b.x0) and np.allclose(a.x1, b.x1)


def test_killing_a_worker_from_the_process_table(qtbot, window, monkeypatch):
    configure(window, "lock_contention", processes="2", increments="1000000", hold_ms="1")
    qtbot.mouseClick(window.launcher.run_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.source.snapshot is not None and
                    len([p for p in window.source.snapshot.procs if p.name.startswith("incrementer")
                         and p.state == "running"]) == 2, timeout=RUN_TIMEOUT_MS)
    window._refresh(force=True)
    victim = next(p for p in window.processes.model.rows if p.name.startswith("incrementer"))
    window.processes.signal_process(victim.pid, kill=True)
    qtbot.waitUntil(lambda: any(p.pid == victim.pid and p.exitcode == -9 for p in window.source.snapshot.procs),
                    timeout=10_000)
    qtbot.mouseClick(window.launcher.stop_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.source.state == "cancelled", timeout=10_000)
    window._refresh(force=True)
    row = next(p for p in window.processes.model.rows if p.pid == victim.pid)
    assert row.exit_text() == "killed by SIGKILL"


def test_settings_remember_the_last_choices(qtbot, tmp_path, window):
    configure(window, "pool_methods", tasks="7")
    window.launcher._run_clicked()        # stores the parameters as a run would
    window.stop_run()
    qtbot.waitUntil(lambda: window.source.state in ("cancelled", "done", "failed", "error"), timeout=RUN_TIMEOUT_MS)
    window.close()
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.IniFormat)
    again = MainWindow(home=str(tmp_path / "home"), settings=settings)
    qtbot.addWidget(again)
    assert again.launcher.scenario.name == "pool_methods"
    assert again.launcher.fields["tasks"].raw() == "7"
    again.close()


def test_the_line_about_a_shown_run_names_what_it_knows_of_it(qtbot, window):
    """A scenario's run names its id, scenario and start method; a run file that recorded neither an id nor a
    start method (written by another tool) says so instead of leaving blanks."""
    window.launcher.show_run({"run_id": "0123456789abcdef", "scenario": "lock_contention",
                              "start_method": "spawn"}, ["spawn"])
    assert window.launcher.context.text().startswith("Showing run 0123456789ab: lock_contention, start method "
                                                     "spawn. Its scenario and parameters are set above")
    window.launcher.show_run({"title": "synthetic"}, [])
    assert window.launcher.context.text() == "Showing run: synthetic, no start method recorded."
    window.launcher.show_run({"title": "my program"}, ["fork", "spawn"])
    assert window.launcher.context.text() == "Showing run: my program, start methods fork, spawn."
