"""The app on runs that are still being recorded, on files that are not runs, and on pools that end badly or
normally (pytest-qt, offscreen)."""
import os
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
from PySide6 import QtCore, QtGui

from core.trace.arrays import EVENT_DTYPE
from core.trace.collector import Batch
from core.trace.events import Kind
from core.trace.store import RunWriter
from mpgui.gui import theme
from mpgui.gui.timeline_data import C_LOST, C_RUNNING

RUN_TIMEOUT_MS = 90_000


# -- a run file written by another runner --------------------------------------------------------------------

def marks(t0, n, pid=4242):
    """A batch of ``n`` MARK events from process ``pid``, 1 ms apart from ``t0`` (perf_counter ns)."""
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = t0 + np.arange(n) * 1_000_000
    ev["kind"] = int(Kind.MARK)
    ev["pid"] = ev["tid"] = pid
    ev["b"] = np.arange(n)
    return Batch(ev, [{"t": "proc", "pid": pid, "ppid": 1, "role": "main", "name": "MainProcess"}])


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_run_still_being_recorded_is_followed_live(qtbot, window, tmp_path):
    """Opened while its runner (here: this process) writes it, a run is followed until it ends."""
    path = str(tmp_path / "recording.mpgrun")
    writer = RunWriter(path, {"runner_pid": os.getpid(), "kind": "trace", "title": "followed"})
    try:
        t0 = time.perf_counter_ns()
        writer.add_batch(marks(t0, 10))
        window.open_run(path)
        qtbot.waitUntil(lambda: window.source.state == "running" and window.source.snapshot is not None
                        and window.source.snapshot.events == 10, timeout=10_000)
        # what the runner writes next appears, without reopening
        writer.add_batch(marks(t0 + 50_000_000, 15))
        qtbot.waitUntil(lambda: window.source.snapshot.events == 25 and window.events_label.text() == "events: 25",
                        timeout=10_000)
        assert window.source.state == "running"
        writer.set_meta(status="done")
    finally:
        writer.close()
    qtbot.waitUntil(lambda: window.source.state == "done", timeout=10_000)
    assert window.state_label.text() == "done"


def test_data_that_arrives_just_after_a_snapshot_is_shown_without_more_data(qtbot, window, tmp_path, monkeypatch):
    """Snapshots are rebuilt at most every SNAPSHOT_INTERVAL: a batch read sooner than that after one must
    still be shown when nothing follows it (a program that goes quiet)."""
    import mpgui.gui.runsource as runsource
    monkeypatch.setattr(runsource, "SNAPSHOT_INTERVAL", 1.0)
    path = str(tmp_path / "quiet.mpgrun")
    writer = RunWriter(path, {"runner_pid": os.getpid(), "kind": "trace"})
    try:
        t0 = time.perf_counter_ns()
        window.open_run(path)
        qtbot.waitUntil(lambda: window.source.state == "running" and window.source.snapshot is not None,
                        timeout=10_000)
        writer.add_batch(marks(t0, 6))           # read well within a second of the first snapshot
        qtbot.waitUntil(lambda: window.source.snapshot.events == 6, timeout=10_000)
    finally:
        writer.close()


def test_a_followed_run_does_not_keep_the_app_busy(qtbot, window, tmp_path):
    """While following a run another runner records, Run and Open still work (there is nothing to Stop)."""
    path = str(tmp_path / "recording.mpgrun")
    other = str(tmp_path / "other.mpgrun")
    writer = RunWriter(path, {"runner_pid": os.getpid(), "kind": "trace"})
    done = RunWriter(other, {"runner_pid": dead_pid(), "kind": "trace"})
    done.add_batch(marks(time.perf_counter_ns(), 3))
    done.set_meta(status="done")
    done.close()
    try:
        writer.add_batch(marks(time.perf_counter_ns(), 5))
        window.open_run(path)
        qtbot.waitUntil(lambda: window.source.state == "running", timeout=10_000)
        assert not window.launcher.stop_button.isEnabled()
        window.open_run(other)
        qtbot.waitUntil(lambda: window.source.path == other and window.source.state == "done", timeout=10_000)
    finally:
        writer.close()


def test_a_run_whose_runner_is_gone_is_interrupted(qtbot, window, tmp_path):
    path = str(tmp_path / "orphan.mpgrun")
    writer = RunWriter(path, {"runner_pid": dead_pid(), "kind": "trace"})
    writer.add_batch(marks(time.perf_counter_ns(), 7))
    writer.close()                       # status stays "running": the runner died without saying so
    window.open_run(path)
    qtbot.waitUntil(lambda: window.source.state == "interrupted", timeout=10_000)
    assert window.source.snapshot.events == 7


def test_a_followed_run_whose_runner_dies_becomes_interrupted(qtbot, window, tmp_path):
    path = str(tmp_path / "dies.mpgrun")
    writer = RunWriter(path, {"kind": "trace"})
    # a stand-in runner: holds the run file open, as a runner does, until its stdin closes
    runner = subprocess.Popen([sys.executable, "-c", "import sys; f = open(sys.argv[1], 'rb'); sys.stdin.read()",
                               path], stdin=subprocess.PIPE)
    writer.set_meta(runner_pid=runner.pid)
    qtbot.waitUntil(lambda: any(f.path == path for f in psutil.Process(runner.pid).open_files()), timeout=10_000)
    try:
        writer.add_batch(marks(time.perf_counter_ns(), 4))
        window.open_run(path)
        qtbot.waitUntil(lambda: window.source.state == "running", timeout=10_000)
    finally:
        writer.close()
        runner.stdin.close()
        runner.wait()
    qtbot.waitUntil(lambda: window.source.state == "interrupted", timeout=10_000)
    assert window.source.snapshot.events == 4


def test_a_process_is_the_runner_only_if_it_writes_the_run_file(tmp_path):
    from mpgui.gui.runsource import runner_alive
    path = str(tmp_path / "mine.mpgrun")
    other = str(tmp_path / "other.mpgrun")
    RunWriter(other, {"kind": "trace"}).close()
    writer = RunWriter(path, {"runner_pid": os.getpid(), "kind": "trace"})
    try:
        meta = {"runner_pid": os.getpid(), "created_wall": time.time()}
        assert runner_alive(meta, path)
        assert not runner_alive(meta, other), "this process does not write that file"
        long_ago = dict(meta, created_wall=psutil.Process().create_time() - 3600)
        assert not runner_alive(long_ago, path), "a process younger than the run file reused the runner's pid"
        assert not runner_alive({"runner_pid": dead_pid()}, path)
        assert not runner_alive({}, path)
    finally:
        writer.close()


# -- what is not a run file ------------------------------------------------------------------------------------

def assert_one_sentence_error(window, qtbot, must_mention):
    qtbot.waitUntil(lambda: window.source.state == "error", timeout=10_000)
    err = window.source.error
    assert err and "\n" not in err and "Traceback" not in err and err.endswith(".")
    assert must_mention in err
    assert window.state_label.text() == "error"
    assert window.launcher.lesson.isVisible() and window.launcher.lesson.text() == err


def test_a_folder_is_not_a_run_file(qtbot, window, tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    window.open_run(str(folder))
    assert_one_sentence_error(window, qtbot, "folder")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_not_a_run_file(qtbot, window, tmp_path):
    """Opening a named pipe for reading waits for a writer: the reader must not go there at all."""
    fifo = str(tmp_path / "pipe.mpgrun")
    os.mkfifo(fifo)
    window.open_run(fifo)
    assert_one_sentence_error(window, qtbot, "not a regular file")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_says_so(qtbot, window, tmp_path):
    path = str(tmp_path / "secret.mpgrun")
    RunWriter(path, {"kind": "trace"}).close()
    os.chmod(path, 0)
    window.open_run(path)
    assert_one_sentence_error(window, qtbot, "permission")


def test_a_file_that_cannot_be_read_says_so(qtbot, window, tmp_path, monkeypatch):
    """Whatever the operating system refuses while opening a run (here a denied read, simulated so that it
    also happens for root), the window says so in one sentence and the reader does not die silently."""
    import mpgui.gui.runsource as runsource
    path = str(tmp_path / "refused.mpgrun")
    RunWriter(path, {"kind": "trace"}).close()

    def refuse(p):
        raise PermissionError(13, "Permission denied", p)
    monkeypatch.setattr(runsource, "RunFile", refuse)
    window.open_run(path)
    assert_one_sentence_error(window, qtbot, "permission")


# -- pools that end badly, or normally -------------------------------------------------------------------------

def lanes_end(tl, pid):
    life = tl.layers["life"]
    return float(life.x1[life.pid == pid].max())


def test_tasks_end_with_their_workers_after_a_kill_and_a_stop(qtbot, window):
    """A killed worker's lost task ends at its death; after Stop no task stays running, none outlives its
    worker."""
    window.launcher.select("pool_methods")
    for k, v in dict(method="imap", processes="3", tasks="6", unit="2.0", review="0.05").items():
        window.launcher.fields[k].set_value(v)
    qtbot.mouseClick(window.launcher.run_button, QtCore.Qt.LeftButton)

    def long_tasks_running():
        snap = window.source.snapshot
        if snap is None:
            return False
        tasks = snap.timeline.layers["tasks"]
        return int((tasks.color == C_RUNNING).sum()) >= 3
    qtbot.waitUntil(long_tasks_running, timeout=RUN_TIMEOUT_MS)
    tl = window.source.snapshot.timeline
    tasks = tl.layers["tasks"]
    victim = int(tasks.pid[tasks.color == C_RUNNING][0])
    window.processes.signal_process(victim, kill=True)

    def lost_task_shown():
        t = window.source.snapshot.timeline.layers["tasks"]
        return bool(((t.pid == victim) & (t.color == C_LOST)).any())
    qtbot.waitUntil(lost_task_shown, timeout=10_000)

    def lost_task_ends_with_its_worker():
        tl = window.source.snapshot.timeline
        t = tl.layers["tasks"]
        lost = t.x1[(t.pid == victim) & (t.color == C_LOST)]
        assert lost.max() <= lanes_end(tl, victim) + 1e-9
    # the monitor's last samples of the worker arrive up to a quarter of a second after the pool's records
    qtbot.waitUntil(lost_task_ends_with_its_worker, timeout=5_000)

    qtbot.mouseClick(window.launcher.stop_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.source.state == "cancelled", timeout=10_000)
    tl = window.source.snapshot.timeline
    t = tl.layers["tasks"]
    assert len(t) and not (t.color == C_RUNNING).any(), "a task is still running after the run was stopped"
    for pid in set(t.pid.tolist()):
        assert t.x1[t.pid == pid].max() <= lanes_end(tl, pid) + 1e-9, "a task outlives its worker"
    window._refresh(force=True)
    row = next(p for p in window.processes.model.rows if p.pid == victim)
    assert row.exit_text() == "killed by SIGKILL (died)"


def test_workers_the_pool_stopped_are_not_shown_as_killed(qtbot, window):
    window.launcher.select("pool_methods")
    for k, v in dict(method="imap", processes="2", tasks="2", unit="0.05", review="0.01").items():
        window.launcher.fields[k].set_value(v)
    qtbot.mouseClick(window.launcher.run_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.source.state in ("done", "failed", "cancelled", "error"),
                    timeout=RUN_TIMEOUT_MS)
    assert window.source.state == "done", window.source.error
    window._refresh(force=True)
    model = window.processes.model
    workers = [r for r, p in enumerate(model.rows) if p.role == "worker"]
    assert len(workers) >= 2
    for r in workers:
        text = model.data(model.index(r, 9), QtCore.Qt.DisplayRole)
        assert text == "stopped by the pool"
        color = model.data(model.index(r, 9), QtCore.Qt.ForegroundRole)
        assert color is None or color.name().lower() != QtGui.QColor(theme.ERROR_TEXT).name().lower()
