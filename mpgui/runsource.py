"""Where a run's data comes from: a live run (the runner started as a child program) or a saved run file.

Either way a reader thread tails the run file and feeds a ``RunModel`` (``core.trace.model``): the same code
path for live and saved runs, so a saved run looks exactly as it looked live.  The Qt thread never touches
the disk or ingests events: views poll ``model.version`` on a timer and copy what they draw under
``model.lock``.

The runner is ``main.py run SCENARIO ... --control-stdin`` in a QProcess; Stop writes ``cancel`` to its
stdin (the same on every platform), and closing the app closes stdin, which cancels the run too.
"""
import os
import threading
import time

from PySide6 import QtCore

from core.history import RunHistory
from core.scenario_cli import self_command
from core.trace.model import RunModel
from core.trace.store import RunFile, RunFileError

from .snapshot import SNAPSHOT_INTERVAL, build as build_snapshot

#: How often the reader thread looks for new data in the run file.
POLL_INTERVAL = 0.05
#: How long to wait for a starting runner to create its run file.
START_TIMEOUT = 30.0


class RunSource(QtCore.QObject):
    """One run being watched.  ``state`` is one of: starting, running, loading, done, failed, cancelled,
    interrupted, error."""

    sigStateChanged = QtCore.Signal(str)
    sigMessage = QtCore.Signal(str)

    def __init__(self, path, live=False, parent=None, title=""):
        super().__init__(parent)
        self.path = os.path.abspath(path)
        self.live = live
        self.title = title
        self.model = RunModel(keep_events=True)
        self.state = "starting" if live else "loading"
        self.error = None
        self.problems = []
        self.process = None
        self.started_at = time.monotonic()
        self._stop_reading = threading.Event()
        self._process_done = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name="mpgui-reader", daemon=True)
        self._pending_state = None
        self._lock = threading.Lock()
        #: The latest Snapshot for the views (replaced whole by the reader thread).
        self.snapshot = None
        # State changes found by the reader thread are delivered on the Qt thread by this timer.
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(50)
        self._timer.timeout.connect(self._deliver)
        self._timer.start()

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def open_file(cls, path, parent=None):
        src = cls(path, live=False, parent=parent, title=os.path.basename(path))
        src._reader.start()
        return src

    @classmethod
    def start_scenario(cls, scenario, params, method, home=None, parent=None):
        history = RunHistory(home)
        out = history.new_run_path(scenario.name)
        history.close()
        src = cls(out, live=True, parent=parent, title=scenario.title)
        args = ["run", scenario.name, "--start-method", method, "--out", out, "--quiet", "--control-stdin"]
        for k, v in params.items():
            args += ["--set", "%s=%s" % (k, str(v).lower() if isinstance(v, bool) else v)]
        cmd = self_command(*args)
        proc = QtCore.QProcess(src)
        env = QtCore.QProcessEnvironment.systemEnvironment()
        if home:
            env.insert("MPGUI_HOME", home)
        env.remove("QT_QPA_PLATFORM")
        proc.setProcessEnvironment(env)
        proc.setProcessChannelMode(QtCore.QProcess.SeparateChannels)
        proc.finished.connect(src._on_finished)
        proc.errorOccurred.connect(src._on_error)
        src.process = proc
        proc.start(cmd[0], cmd[1:])
        src._reader.start()
        return src

    # -- control -----------------------------------------------------------------------------------------------
    @property
    def running(self):
        return self.state in ("starting", "running")

    def stop(self):
        """Cancel a live run: the runner ends the whole tree and marks the run file cancelled."""
        if self.process is not None and self.process.state() != QtCore.QProcess.NotRunning:
            self.process.write(b"cancel\n")
            self.process.waitForBytesWritten(1000)
            self._set_state("stopping")

    def close(self, wait=True):
        """Stop reading; a live runner is cancelled (closing its stdin) and, if ``wait``, waited for."""
        self._timer.stop()
        if self.process is not None and self.process.state() != QtCore.QProcess.NotRunning:
            self.process.closeWriteChannel()
            if wait and not self.process.waitForFinished(5000):
                self.process.kill()
                self.process.waitForFinished(2000)
        self._stop_reading.set()
        if self._reader.is_alive():
            self._reader.join(timeout=5)

    def elapsed(self):
        m = self.model
        with m.lock:
            if m.t_last is not None:
                return max(0.0, (m.t_last - m.t0) / 1e9)
        return 0.0

    # -- the reader thread ---------------------------------------------------------------------------------
    def _open(self):
        deadline = time.monotonic() + START_TIMEOUT
        while not self._stop_reading.is_set():
            try:
                return RunFile(self.path)
            except RunFileError as e:
                if not self.live or time.monotonic() > deadline or self._process_done.is_set():
                    if self.live and self._process_done.is_set():
                        self._fail(self._runner_error() or str(e))
                    else:
                        self._fail(str(e))
                    return None
            time.sleep(POLL_INTERVAL)
        return None

    def _read_loop(self):
        rf = self._open()
        if rf is None:
            return
        try:
            last_meta = last_snapshot = 0.0
            while True:
                finished = self._process_done.is_set() or not self.live
                changed = self._pull(rf)
                now = time.monotonic()
                if finished:
                    self._pull(rf)                      # anything written at the very end
                    status = self._pull_meta(rf).get("status", "running")
                    if status == "running":
                        status = "interrupted" if not self.live else ("failed" if self._exit_code() else "done")
                    self.problems = list(rf.problems)
                    self.snapshot = build_snapshot(self.model)
                    self._set_state(status)
                    return
                if now - last_meta > 0.25:
                    last_meta = now
                    self._pull_meta(rf)
                    if self.live:
                        self._set_state("running" if self.state != "stopping" else "stopping")
                if (changed or self.snapshot is None) and now - last_snapshot > SNAPSHOT_INTERVAL:
                    last_snapshot = now
                    self.snapshot = build_snapshot(self.model)
                if self._stop_reading.wait(POLL_INTERVAL):
                    return
        except Exception as e:          # a damaged file mid-way: keep what was read, say what happened
            self._fail("Reading %s stopped: %s" % (self.path, e))
        finally:
            rf.close()

    def _pull(self, rf):
        """Ingest what the run file gained since the last pull; whether there was anything."""
        events, regs, samples, logs = rf.read_new()
        if len(events) or regs or samples or logs:
            self.model.ingest(events, regs, samples, logs)
            return True
        return False

    def _pull_meta(self, rf):
        meta = rf.meta()
        with self.model.lock:
            self.model.set_meta(meta)
            self.model.dropped = rf.dropped()
        return meta

    def _fail(self, message):
        self.error = message
        self._set_state("error")

    def _set_state(self, state):
        with self._lock:
            self._pending_state = state

    def _deliver(self):
        with self._lock:
            state, self._pending_state = self._pending_state, None
        if state and state != self.state:
            self.state = state
            self.sigStateChanged.emit(state)
            if state == "error" and self.error:
                self.sigMessage.emit(self.error)

    # -- the runner process (Qt thread) ----------------------------------------------------------------------
    def _exit_code(self):
        return self.process.exitCode() if self.process is not None else 0

    def _runner_error(self):
        if self.process is None:
            return None
        err = bytes(self.process.readAllStandardError()).decode("utf-8", "replace").strip()
        lines = [l for l in err.splitlines() if l.startswith("mpgui:")]
        return lines[-1][len("mpgui:"):].strip() if lines else (err.splitlines()[-1] if err else None)

    def _on_finished(self, code, status):
        err = self._runner_error()
        if err and code not in (0, 130):
            self.error = err
            self.sigMessage.emit(err)
        self._process_done.set()

    def _on_error(self, err):
        if err == QtCore.QProcess.FailedToStart:
            self.error = "Could not start the runner (%s): check the installation." % self.process.program()
            self.sigMessage.emit(self.error)
            self._process_done.set()
