"""Where a run's data comes from: a live run (the runner started as a child program) or a saved run file.

Either way a reader thread reads the run file into a ``RunModel`` (``core.trace.model``) and builds the views'
snapshots (``snapshot.build``, with the run's ``timeline_data.TimelineBuilder``); the Qt thread never touches
the disk, ingests events or takes the model's lock: views draw the latest snapshot.

A saved run is read a chunk at a time in time order (``model.in_time_order``), with a snapshot now and then so
a large run appears as it loads.  A run being recorded (started here, or another runner's that is followed
until that runner finishes it, or dies: then the run is "interrupted") is tailed: every ``POLL_INTERVAL``
the reader takes the chunks written since, and a snapshot follows.  The live view trails the run by a few
polls whatever its rate: if the chunks waiting would take more than ``READ_BUDGET_S`` to read and show (at
the rate the reader measured), the oldest of them are skipped (counted, and shown hatched on the timeline).  When
the recording ends, the run is read again from its file, whole and in time order, so what a live run leaves
on screen is exactly what opening its file shows.

Whatever goes wrong while reading (a folder, a file the system refuses, damage), the reader ends in state
"error" with one sentence saying what to do; it never dies silently and leaves the window "loading".

The runner is ``main.py run SCENARIO ... --control-stdin`` (or ``main.py trace ... --control-stdin`` for a
user's program) in a QProcess; Stop writes ``cancel`` to its stdin (the same on every platform), and closing
the app closes stdin, which cancels the run too.
"""
import ctypes
import os
import threading
import time

import psutil
from PySide6 import QtCore

from mpgui.history import RunHistory
from mpgui.program import self_command
import numpy as np

from core.trace.model import RunModel, in_time_order
from core.trace.store import RunFile, RunFileError

from .contention_data import LiveTracker
from .snapshot import SNAPSHOT_INTERVAL, build as build_snapshot
from .timeline_data import TimelineBuilder

#: How often the reader thread looks for new data in the run file.
POLL_INTERVAL = 0.025
#: The most a reader cycle spends on what it pulled: what would take longer is skipped (the oldest chunks), so
#: the live view stays within a few cycles of the run (see the module's docstring).  A busy reader's cycle is
#: a pull, a snapshot and the views drawing it (they hold the GIL), and its speed is measured over all of it:
#: measured over the model's ingest alone (a third of it at a million events a second) the reader took on
#: three times what it could show in time, and the lag's 95th percentile was 300 to 670 ms.  Over the whole
#: cycle, at a million events a second on two cores: 50 ms gives a lag of 160 ms (95th percentile; a quarter of
#: the events drawn live, all of them once the run ends), 80 and 100 ms 200 to 220 ms (40 to 80% drawn).
READ_BUDGET_S = 0.05
#: The reader's guess of its speed (events per second, a whole cycle: pull and snapshot) until it has
#: measured it.
FIRST_RATE = 1_000_000
#: How long to wait for a starting runner to create its run file.
START_TIMEOUT = 30.0
#: How often the reader rereads the run's meta (its status) and, for a run another runner writes, checks
#: that the runner is still alive.
META_INTERVAL = 0.25
#: While a saved run loads, a snapshot at most this often (seconds): a large run appears as it is read.
LOAD_SNAPSHOT_INTERVAL = 0.5
#: A process with the runner's pid created this long after the run file is another process that reused the
#: pid (process start times are coarse, and wall clocks can step a little).
PID_REUSE_SLACK = 1.0


def give_back_memory():
    """Return the memory freed while reading a run to the system (glibc keeps freed heap for reuse: after a
    large run is read a chunk at a time, that is the temporaries of every chunk).  Linux with glibc only; a
    no-op elsewhere."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def runner_alive(meta, path):
    """Whether the runner that writes the run file ``path`` (``runner_pid`` in its meta) is still running.

    A process with that pid is the runner only if it is older than the file and, where the system lets us
    look, holds the file open (the runner keeps its connection open until it has written the final status):
    a file copied from another machine, or a pid reused since, is not followed forever."""
    try:
        proc = psutil.Process(int(meta["runner_pid"]))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = meta.get("created_wall")
        if created is not None and proc.create_time() > float(created) + PID_REUSE_SLACK:
            return False
        try:
            return any(_same_file(f.path, path) for f in proc.open_files())
        except psutil.AccessDenied:
            return True                 # another user's process: its pid and age are all we can check
    except (KeyError, TypeError, ValueError, psutil.Error):
        return False


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def unreadable(path, error=None):
    """One sentence for a ``path`` that cannot be opened as a run file: not a regular file, or an
    operating-system ``error`` met opening it."""
    if os.path.isdir(path):
        return "%s is a folder, not a run file: open a .mpgrun file." % path
    if os.path.exists(path) and not os.path.isfile(path):
        return "%s is not a regular file (a pipe or a device): open a .mpgrun file." % path
    if isinstance(error, PermissionError):
        return ("%s cannot be read (permission denied): check its permissions, or open another run file."
                % path)
    reason = getattr(error, "strerror", None) or (error.__class__.__name__ if error is not None else "unknown")
    return "%s cannot be read (%s): check the file, or open another run file." % (path, reason)


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
        self.model = RunModel()
        self.model.path = self.path
        self.builder = TimelineBuilder(self.model)
        #: What the contention panel's state of every object needs beyond the model (latest values...).
        self.tracker = LiveTracker()
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
        self._stderr_lines = []
        self._chunk_cursor = 0
        self._rate = FIRST_RATE
        self._pulled = 0               # events ingested by the latest pull
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
        args = ["run", scenario.name, "--start-method", method]
        for k, v in params.items():
            args += ["--set", "%s=%s" % (k, str(v).lower() if isinstance(v, bool) else v)]
        return cls._start_runner(args, scenario.name, scenario.title, home, parent)

    @classmethod
    def start_trace(cls, trace_args, stem, title, home=None, parent=None):
        """A user's program, traced by ``main.py trace ... TRACE_ARGS`` (its options, then the program and its
        arguments: ``TraceTarget.command_args()``)."""
        return cls._start_runner(["trace"], stem, title, home, parent, after=trace_args)

    @classmethod
    def _start_runner(cls, args, stem, title, home, parent, after=()):
        """``main.py ARGS --out RUNFILE --quiet --control-stdin AFTER`` in a QProcess, followed live."""
        history = RunHistory(home)
        out = history.new_run_path(stem)
        history.close()
        src = cls(out, live=True, parent=parent, title=title)
        cmd = self_command(*args, "--out", out, "--quiet", "--control-stdin", *after)
        proc = QtCore.QProcess(src)
        env = QtCore.QProcessEnvironment.systemEnvironment()
        if home:
            env.insert("MPGUI_HOME", home)
        env.remove("QT_QPA_PLATFORM")
        proc.setProcessEnvironment(env)
        proc.setProcessChannelMode(QtCore.QProcess.SeparateChannels)
        proc.readyReadStandardError.connect(src._on_stderr)
        proc.finished.connect(src._on_finished)
        proc.errorOccurred.connect(src._on_error)
        src.process = proc
        proc.start(cmd[0], cmd[1:])
        src._reader.start()
        return src

    # -- control -----------------------------------------------------------------------------------------------
    @property
    def running(self):
        """The run is being recorded now: started here, or written by another runner and followed."""
        return self.state in ("starting", "running")

    @property
    def controls_run(self):
        """A run this window started and can stop (its runner is our child); a followed run is not."""
        return self.live and self.running

    def signal_process(self, pid, kill=True):
        """Ask the runner of a run this window started to kill (or terminate) one process of its tree;
        False if there is no such runner (a saved or followed run)."""
        if not self.controls_run or self.process is None or self.process.state() == QtCore.QProcess.NotRunning:
            return False
        self.process.write(("%s %d\n" % ("kill" if kill else "term", int(pid))).encode())
        return True

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
        snap = self.snapshot
        return snap.elapsed if snap is not None else 0.0

    # -- the reader thread ---------------------------------------------------------------------------------
    def _open(self):
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            # a folder cannot be opened; a named pipe can, and reading it would wait for a writer forever
            self._fail(unreadable(self.path))
            return None
        deadline = time.monotonic() + START_TIMEOUT
        while not self._stop_reading.is_set():
            try:
                return RunFile(self.path)
            except (RunFileError, OSError) as e:
                message = unreadable(self.path, e) if isinstance(e, OSError) else str(e)
                if not self.live or time.monotonic() > deadline or self._process_done.is_set():
                    if self.live and self._process_done.is_set():
                        self._fail(self._runner_error() or message)
                    else:
                        self._fail(message)
                    return None
            time.sleep(POLL_INTERVAL)
        return None

    def _read_loop(self):
        rf = None
        try:
            rf = self._open()
            if rf is not None:
                self._tail(rf)
        except Exception as e:          # a damaged file mid-way: keep what was read, say what happened
            try:
                self._snap()
            except Exception:           # the error below says what happened; the views keep what they had
                pass
            reason = (str(e).splitlines() or [e.__class__.__name__])[0]
            self._fail("Reading %s stopped (%s): what was read is shown; check the file and open it again."
                       % (self.path, reason))
        finally:
            if rf is not None:
                rf.close()

    def _snap(self):
        self.snapshot = build_snapshot(self.model, self.builder, dropping=bool(self.model.skipped),
                                       tracker=self.tracker)

    def _tail(self, rf):
        """Read until the run is finished: a live run's runner exits; a run file opened here is read to its
        end at once, or followed while another runner is still recording it."""
        meta = self._pull_meta(rf)
        if not self.live and not (meta.get("status") == "running" and runner_alive(meta, self.path)):
            self._load(rf)
            self._finish(rf, "interrupted")
            return
        last_meta = last_snapshot = None
        recording = True
        unseen = True                   # the model changed since the last snapshot
        while True:
            now = time.monotonic()
            if last_meta is None or now - last_meta > META_INTERVAL:
                last_meta = now
                meta = self._pull_meta(rf)
                if not self.live:
                    recording = meta.get("status") == "running" and runner_alive(meta, self.path)
                if recording:
                    self._set_state("stopping" if self.state == "stopping" else "running")
            finished = self._process_done.is_set() if self.live else not recording
            pulled = time.perf_counter()
            self._pulled = 0
            unseen = self._pull(rf) or unseen
            busy = time.perf_counter() - pulled > READ_BUDGET_S / 2      # a backlog: read on without a pause
            if finished:
                self._pull(rf, budget=None)                 # anything written at the very end
                self._reread(rf)
                status = self._pull_meta(rf).get("status", "running")
                if status == "running":
                    status = "interrupted" if not self.live else ("failed" if self._exit_code() else "done")
                self._finish(rf, status)
                return
            # Data that arrives just after a snapshot waits for the next one, even if nothing follows it.
            if unseen and (last_snapshot is None or now - last_snapshot > SNAPSHOT_INTERVAL):
                last_snapshot = now
                unseen = False
                self._snap()
            if self._pulled > 10_000:
                # the reader's speed, what a cycle takes whole: reading, the model, the snapshot, and the GIL
                # the views hold while they draw it (they cost as much again as the model at a high rate)
                rate = self._pulled / max(time.perf_counter() - pulled, 1e-6)
                self._rate = 0.7 * self._rate + 0.3 * rate
            if self._stop_reading.wait(0 if busy else POLL_INTERVAL):
                return

    def _finish(self, rf, status):
        if status == "interrupted":
            status = self._pull_meta(rf).get("status", "running")
            if status == "running":
                status = "interrupted"
        self.problems = list(rf.problems)
        self._snap()
        self._set_state(status)

    def _load(self, rf):
        """A saved run, a chunk at a time in time order, with a snapshot now and then."""
        m = self.model
        last = time.monotonic()
        with m.lock:
            for reg in rf.iter_registrations():
                m._registration(reg)
        for events, order in in_time_order(rf):
            if self._stop_reading.is_set():
                return
            with m.lock:
                m._ingest_events(events, order)
            if time.monotonic() - last > LOAD_SNAPSHOT_INTERVAL:
                with m.lock:
                    m._settle()
                self._snap()
                last = time.monotonic()
        with m.lock:
            for t, sample in rf.iter_samples():
                m._sample(t, sample)
            m.logs.extend(rf.iter_log())
            m.set_meta(rf.meta())
            m.dropped = rf.dropped()
            m._settle()
            m.trim()
            # the timeline's tables take the last rows and are trimmed before the snapshot shares them: trimmed
            # after, the snapshot would keep the untrimmed ones alive beside the copies
            self.builder.update()
            self.builder.trim()
        self._snap()
        give_back_memory()

    def _reread(self, rf):
        """The recording ended: read the whole run again, in time order (see the module's docstring)."""
        fresh = RunModel.from_run_file(rf)
        builder = TimelineBuilder(fresh)
        with fresh.lock:
            fresh.dropped = rf.dropped()
        self.model, self.builder, self.tracker = fresh, builder, LiveTracker()
        self._snap()
        builder.trim()
        give_back_memory()

    def _pull(self, rf, budget=READ_BUDGET_S):
        """Ingest what the run file gained since the last pull (skipping the oldest chunks past ``budget``);
        whether there was anything."""
        index = rf.chunk_index(after=self._chunk_cursor)
        _, regs, samples, logs = rf.read_new(events=False)
        if not index and not (regs or samples or logs):
            return False
        keep = index
        if index:
            self._chunk_cursor = index[-1][0]
            pending = sum(n for _, n, _, _ in index)
            if budget is not None and pending > budget * self._rate:
                # the newest chunks that fit the budget are read; the older ones are skipped
                room, k = budget * self._rate, len(index)
                while k > 0 and room >= index[k - 1][1]:
                    room -= index[k - 1][1]
                    k -= 1
                skipped, keep = index[:k], index[k:]
                for _, n, t0, t1 in skipped:
                    self.model.note_skipped(n, t0, t1)
        parts = list(rf.iter_chunks(ids=[cid for cid, _, _, _ in keep])) if keep else []
        events = np.concatenate(parts) if parts else None
        self.model.ingest(events, regs, samples, logs)
        self._pulled += 0 if events is None else len(events)
        return True

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

    def _on_stderr(self):
        """The runner's stderr, as it comes: kept for its last word, and its ``mpgui:`` sentences (answers to
        kill/term requests) shown while the run goes."""
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if line.strip()]
        with self._lock:
            self._stderr_lines.extend(lines)
            del self._stderr_lines[:-200]
        for line in lines:
            if line.startswith("mpgui:") and self.process.state() != QtCore.QProcess.NotRunning:
                self.sigMessage.emit(line[len("mpgui:"):].strip())

    def _runner_error(self):
        """The runner's last ``mpgui:`` sentence (or its last line of stderr): safe from any thread."""
        with self._lock:
            lines = list(self._stderr_lines)
        said = [line for line in lines if line.startswith("mpgui:")]
        return said[-1][len("mpgui:"):].strip() if said else (lines[-1] if lines else None)

    def _on_finished(self, code, status):
        self._on_stderr()
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
