"""A live run's file while the window reads it (pytest-qt, offscreen): the views that open and close the file
again and again as the run goes (the event log, every refresh) must never stop its writers.  Found by running
lock_contention with the Events tab shown: the run ended "cut short" ("database is locked") after a few
hundred events, every time."""
from PySide6 import QtCore

from core.trace.store import RunFile

RUN_TIMEOUT_MS = 120_000


def test_a_run_watched_on_the_events_tab_records_to_its_end(qtbot, window):
    w = window
    w.tabs.setCurrentWidget(w.events)
    w.launcher.select("lock_contention")
    for k, v in {"processes": "3", "increments": "150", "hold_ms": "2", "mode": "with lock"}.items():
        w.launcher.fields[k].set_value(v)
    qtbot.mouseClick(w.launcher.run_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: w.source is not None, timeout=10_000)
    qtbot.waitUntil(lambda: w.source.state in ("done", "failed", "cancelled", "error", "cut short"),
                    timeout=RUN_TIMEOUT_MS)
    path = w.source.path
    assert w.source.state == "done", w.source.error
    with RunFile(path) as rf:
        meta = rf.meta()
        assert meta["status"] == "done", meta.get("error")
        assert meta["events"] >= 3 * 150 * 2               # every acquisition and release of the counter lock
        assert any(line[1] == "stdout" for line in rf.iter_log())
