"""The app's threading contract: the Qt thread never touches the run history (SQLite) or a run file; that
work runs in a worker thread and its result arrives on the Qt thread."""
import threading

from PySide6 import QtCore

from mpgui.gui import runs_view
from mpgui.history import RunHistory


def test_the_runs_view_reads_the_history_off_the_qt_thread(qtbot, tmp_path, monkeypatch):
    home = str(tmp_path / "home")
    h = RunHistory(home)
    h.begin("abc123", str(tmp_path / "x.mpgrun"), "trace", title="trace x.py")
    h.finish("abc123", "done", "a lesson", 10, 0, 0)
    h.close()
    read_in = []
    real = runs_view.load_runs

    def spy(home, limit=200):
        read_in.append(threading.current_thread())
        return real(home, limit)

    monkeypatch.setattr(runs_view, "load_runs", spy)
    view = runs_view.RunsView(home)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.sigRefreshed, timeout=10_000):
        view.refresh()
    assert read_in and all(t is not threading.main_thread() for t in read_in)
    assert [r["id"] for r in view.runs] == ["abc123"]
    assert view.table.rowCount() == 1 and view.table.item(0, 1).text() == "trace x.py"
    assert QtCore.QThread.currentThread() is QtCore.QCoreApplication.instance().thread()


def test_an_unreadable_history_leaves_an_empty_table_that_says_why(qtbot, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "history.sqlite").write_bytes(b"this is not a database" * 100)
    view = runs_view.RunsView(str(home))
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.sigRefreshed, timeout=10_000):
        view.refresh()
    assert view.table.rowCount() == 0
    assert view.table.toolTip().startswith("The run history could not be read")


def test_work_that_ends_after_its_window_closed_says_nothing(qtbot, capfd):
    """A view's background job (say the contention figures) still running when its window closes ends quietly:
    no traceback on the terminal the app was started from."""
    import shiboken6
    from mpgui.gui.viewparts import BackgroundJob
    release = threading.Event()

    def work():
        release.wait(10)
        return 42

    job = BackgroundJob(work)
    pool = QtCore.QThreadPool()
    pool.start(job)
    shiboken6.delete(job.signals)           # what closing the window does to the job's receiver
    release.set()
    pool.waitForDone(10_000)
    assert "Traceback" not in capfd.readouterr().err
