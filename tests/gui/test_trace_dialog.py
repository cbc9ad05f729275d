"""File ▸ Trace a program…: the dialog's checks and memory, and a program that knows nothing of mpgui run live
from the window (processes, pool tasks, queues, its output, the history), stopped with Stop."""
import os

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from core.trace.events import Outcome
from core.trace.store import RunFile
from mpgui.gui.timeline_data import C_OK
from mpgui.gui.trace_dialog import RECENT_MAX, TraceDialog, TraceTarget, recent_targets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAMS = os.path.join(ROOT, "tests", "programs")
RUN_TIMEOUT_MS = 90_000


@pytest.fixture
def dialog(qtbot, settings):
    d = TraceDialog(settings)
    qtbot.addWidget(d)
    return d


def test_trace_stays_disabled_until_the_program_can_run_and_says_why(dialog):
    assert not dialog.trace_button.isEnabled() and "Name the program" in dialog.error.text()
    dialog.cwd.setText(PROGRAMS)
    dialog.program.setText("nope.py")
    assert not dialog.trace_button.isEnabled() and "No such script" in dialog.error.text()
    dialog.program.setText("pool_docs.py")
    assert dialog.trace_button.isEnabled() and dialog.error.text() == ""
    dialog.args.setText('one "two')
    assert not dialog.trace_button.isEnabled() and "check the quotes" in dialog.error.text()
    dialog.args.setText('one "two three"')
    dialog.env.setPlainText("DEBUG=1\nnot a variable")
    assert not dialog.trace_button.isEnabled() and "NAME=VALUE" in dialog.error.text()
    dialog.env.setPlainText("DEBUG=1\n\nMODE=a=b")
    dialog.method.setCurrentText("spawn")
    assert dialog.trace_button.isEnabled()
    target = dialog.target()
    assert target == TraceTarget("pool_docs.py", False, ["one", "two three"], PROGRAMS, "spawn",
                                 {"DEBUG": "1", "MODE": "a=b"})
    assert target.command_args() == ["--cwd", PROGRAMS, "--start-method", "spawn", "--env", "DEBUG=1",
                                     "--env", "MODE=a=b", "pool_docs.py", "one", "two three"]
    dialog.as_module.setChecked(True)
    assert not dialog.trace_button.isEnabled() and "names a file" in dialog.error.text()
    dialog.program.setText("mpmodule/squares")
    assert not dialog.trace_button.isEnabled() and "not a module name" in dialog.error.text()
    dialog.program.setText("mpmodule.squares")
    assert dialog.trace_button.isEnabled()
    assert dialog.target().command_args()[-4:] == ["-m", "mpmodule.squares", "one", "two three"]
    dialog.cwd.setText(os.path.join(PROGRAMS, "no such folder"))
    assert not dialog.trace_button.isEnabled() and "is not a folder" in dialog.error.text()


def test_traced_programs_are_remembered_most_recent_first(qtbot, settings):
    for name in ("pool_docs.py", "lock_queue_event.py", "pool_docs.py"):
        d = TraceDialog(settings)
        qtbot.addWidget(d)
        d.cwd.setText(PROGRAMS)
        d.program.setText(name)
        d.trace_button.click()
        assert d.result() == QtWidgets.QDialog.Accepted
    assert [t.program for t in recent_targets(settings)] == ["pool_docs.py", "lock_queue_event.py"]
    d = TraceDialog(settings)
    qtbot.addWidget(d)
    assert d.program.text() == "pool_docs.py" and d.cwd.text() == PROGRAMS      # the last one, ready to go
    assert d.recent.count() == 1 + 2
    d.recent.activated.emit(2)
    assert d.program.text() == "lock_queue_event.py" and d.trace_button.isEnabled()
    for i in range(RECENT_MAX + 3):
        d.args.setText(str(i))
        d.trace_button.click()
    assert len(recent_targets(settings)) == RECENT_MAX
    settings.setValue("trace/recent", "not json")
    assert recent_targets(settings) == []


def _wait_for_end(qtbot, window):
    qtbot.waitUntil(lambda: window.source is not None and window.source.state in
                    ("done", "failed", "cancelled", "error"), timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.source.snapshot is not None and not window.launcher.stop_button.isEnabled())
    return window.source


def test_a_program_run_from_the_window_is_shown_live_and_kept(qtbot, window):
    window.start_trace(TraceTarget("executor_error.py", cwd=PROGRAMS, start_method="spawn"))
    assert window.launcher.stop_button.isEnabled()                    # Stop ends it, as it ends a scenario
    src = _wait_for_end(qtbot, window)
    assert src.state == "failed"                                      # the program raised: exit code 1
    assert "exit code 1" in window.launcher.lesson.text()
    with RunFile(src.path) as rf:
        model = rf.model()
        meta = rf.meta()
    assert meta["kind"] == "trace" and meta["start_method"] == "spawn" and meta["script"].endswith("executor_error.py")
    workers = {p.pid for p in window.processes.model.rows if p.role == "worker"}
    assert workers and workers <= {lane.pid for lane in window.timeline.data.lanes}
    tasks = model.tasks_array()
    assert (tasks["outcome"] == Outcome.ERROR).sum() == 1
    assert len(window.timeline.data.layers["tasks"]) >= len(tasks) - 2  # a task bar each (one never ran)
    assert "ProcessPoolExecutor#1 call queue" in window.timeline.data.names.values()
    window.tabs.setCurrentWidget(window.output)
    qtbot.waitUntil(lambda: "1099726899285419 is prime: False" in window.output.toPlainText())
    with qtbot.waitSignal(window.runs.sigRefreshed, timeout=10_000):
        window.runs.refresh()
    assert any(r["path"] == src.path and r["kind"] == "trace" for r in window.runs.runs)


def test_stop_ends_a_traced_program_and_keeps_what_was_recorded(qtbot, window):
    window.start_trace(TraceTarget("executor_sleeps.py", args=["2000", "0.05"], cwd=PROGRAMS))
    # four tasks shown finished (not merely running: the live view can be quicker than the tasks)
    qtbot.waitUntil(lambda: window.source.snapshot is not None and
                    np.count_nonzero(window.source.snapshot.timeline.layers["tasks"].color == C_OK) >= 4,
                    timeout=RUN_TIMEOUT_MS)
    qtbot.mouseClick(window.launcher.stop_button, QtCore.Qt.LeftButton)
    src = _wait_for_end(qtbot, window)
    assert src.state == "cancelled"
    with RunFile(src.path) as rf:
        tasks = rf.model().tasks_array()
    assert np.count_nonzero(tasks["outcome"] == Outcome.OK) >= 4
