"""Runs one traced program (a scenario's main process, or a user's script) and records it into a run file.

    runner (this process)                            traced program: its own process group
      monitor thread   --- psutil 10 Hz --->           main  --start method-->  workers, manager, forkserver...
      output threads   --- stdout/stderr -->           (every process writes its events into the trace dir)
           \\-> collector process: drains the rings  <- the trace dir
                  \\-> run file (SQLite WAL)          <- the app tails this file while it is written
           \\-> observers (the app's run history): told when the run starts and when it ends

A run is described by a ``RunSpec`` (what to run, where to record it, what to call it, its size cap) and
carried out by a ``TracedRun``: nothing happens before ``start()``, which claims the run file, starts the
collector process (``collect_process.CollectorProcess``), the program and its guardian.  Its ``status`` is a
``RunStatus``.

The runner writes the run file before the collector process starts (the claim, the run's description) and
after it ended (the final status); meanwhile the collector is its only writer, and the runner hands it the
program's output and the monitor's samples.  The runner learns what it must act on (segments to unlink,
helper processes, the scenario's result, progress, a failed write) from the collector's news (``sink``, a
``collect_process.RunWatch``); it never models the run.  Should the collector process die, the runner writes
what it hands over itself and drains what is left at the end.

The program runs in a process tree of its own (never inside the app, never inside this process: the runner
has threads, and forking a threaded process is the deadlock the notes warn about).  ``cancel()`` (Stop,
Ctrl+C, SIGTERM to the runner) ends the whole tree within 2 seconds: SIGTERM, then SIGKILL for what is left,
the stdlib's resource tracker last so it can release semaphores; shared-memory segments the program created
and did not unlink are unlinked; the run file keeps everything recorded and is marked ``cancelled``.

If the runner itself dies (SIGKILL, a crash), the program's tree must not live on, and the program cannot be
asked to help (a user's script owns its stdin and may never import core's watchers).  So every run has a
guardian (``procs.guard_main``): a small process in a session of its own that blocks reading a pipe only the
runner holds, and ends the tree unless the runner said it is done.

No Qt here.
"""
import enum
import functools
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from . import recorder
from .procs import (GUARD_RELEASE, SOURCE_ROOT, but_trackers, group_members, guard_command, kill_tree, own_group,
                    own_session, unlink_segment)
from .store import DEFAULT_MAX_SIZE

#: After the main process ends, how long its children get to end on their own before they are killed ...
ORPHAN_GRACE = 1.0
#: ... and how often the runner looks (a look reads a few bytes per process on Linux).
ORPHAN_POLL = 0.01
#: How often ``wait`` checks whether the program ended (and calls its ``on_tick``).
WAIT_POLL = 0.01
#: How long the runner waits for its released guardian to exit.
GUARD_EXIT_TIMEOUT = 5.0

#: Words of the RuntimeError a spawned (or forkserver) child raises when it runs the main module's
#: process-starting code again: the script has no main guard (they are in the stdlib's message in 3.10-3.13).
BOOTSTRAP_MARK = "finished its bootstrapping phase"
MAIN_GUARD_ADVICE = ("The script starts processes at its top level, so each spawned child ran that code again and "
                     "failed (the RuntimeError about the bootstrapping phase in its output): put the code that "
                     "starts processes under 'if __name__ == \"__main__\":'.")


class RunStatus(str, enum.Enum):
    """Where a run stands.  A ``str``, so it is stored, printed and compared as its value (``"done"``)."""
    CREATED = "created"          # described, not started
    RUNNING = "running"          # the program runs (or the runner died: see INTERRUPTED)
    DONE = "done"                # the program ended with exit code 0
    FAILED = "failed"            # it ended otherwise, or could not start
    CANCELLED = "cancelled"      # stopped on request (Stop, Ctrl+C, SIGTERM)
    CUT_SHORT = "cut short"      # the run file could not be written (a full disk): stopped, what was recorded kept
    INTERRUPTED = "interrupted"  # the file says running but its runner is gone (said by readers, never written)

    def __str__(self):
        return self.value

    @property
    def final(self):
        return self not in (RunStatus.CREATED, RunStatus.RUNNING)


def machine_facts():
    """What a run's figures depend on: cores, OS, Python, the start methods the platform has."""
    import multiprocessing
    return {"cpu_count": os.cpu_count(), "os": _os_name(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "machine": platform.machine(),
            "start_methods": multiprocessing.get_all_start_methods()}


@functools.lru_cache(maxsize=None)
def _os_name():
    """``platform.platform()`` without what costs a run's start: on Linux that asks ``uname -p`` in a
    subprocess (about 12 ms) for the processor, which the name does not even show there."""
    if sys.platform.startswith("linux"):
        name = "%s-%s-%s" % (platform.system(), platform.release(), platform.machine())
        try:
            libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
        except (ValueError, OSError):
            libc = ""
        return name + ("-with-" + libc.replace(" ", "") if libc else "")
    return platform.platform()


def child_env(trace_dir, extra=None, stand_in=False):
    """The traced program's environment: this process's, then ``extra`` (a PYTHONPATH there is kept, after
    core's), then the trace directory; with ``stand_in``, core stands in for multiprocessing in the program
    and every process it starts (``core.standin``)."""
    env = dict(os.environ)
    if extra:
        env.update(extra)
    env[recorder.TRACE_ENV] = trace_dir
    paths = [SOURCE_ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if stand_in:
        from .. import standin
        standin.environment(env)
    return env


@dataclass
class RunSpec:
    """What to run and how to record it."""
    argv: Sequence[str]                      # the program's command line
    out_path: str                            # the run file to write
    kind: str = "trace"                      # "scenario" or "trace"
    title: Optional[str] = None
    scenario: Optional[str] = None
    params: Dict[str, Any] = field(default_factory=dict)
    start_method: Optional[str] = None
    meta: Dict[str, Any] = field(default_factory=dict)     # more keys for the run file's metadata
    env: Optional[Dict[str, str]] = None     # more environment variables for the program
    cwd: Optional[str] = None
    #: The program's stdin: nothing by default; ``None`` passes this process's own stdin on (``trace``).
    stdin: Any = subprocess.DEVNULL
    #: Which of the program's streams to pass through to ours (they are always kept in the run file).
    echo_output: Sequence[str] = ("stdout", "stderr")
    #: Replace ``out_path`` if it holds another run (``--force``); otherwise that is refused.
    replace: bool = False
    #: core stands in for the stdlib's multiprocessing in the program's tree (``trace``: programs that import
    #: multiprocessing are recorded unmodified).
    stand_in: bool = False
    #: The run file's size cap in bytes (``--max-size``; None: no cap): past it, events are dropped and
    #: counted, and the run goes on.
    max_size: Optional[int] = DEFAULT_MAX_SIZE


class RunObserver(Protocol):
    """Told when a run starts and when it is finalized (the app's run history is one).  An observer may also
    have ``program_ended(run)``: the program's main process ended, and the runner is finishing the run (the
    stdlib's helpers end, the collector drains its last records), a moment to prepare what comes after."""

    def run_started(self, run: "TracedRun") -> None: ...

    def run_finished(self, run: "TracedRun") -> None: ...


class TracedRun:
    """One traced program run.  ``start()``, then ``wait()``; ``cancel()`` from any thread.

    Creating it has no effect outside the object.  ``claim()`` (or ``start()``) claims the run file first
    (``RunFileError`` with one sentence if ``out_path`` is another run's file, unless the spec says ``replace``,
    or is no run file at all), and only then starts anything."""

    def __init__(self, spec: RunSpec, *, observers: Sequence[RunObserver] = (),
                 listener: Optional[Callable[[Any], None]] = None):
        self.spec = spec
        self.argv: List[str] = list(spec.argv)
        self.out_path = os.path.abspath(spec.out_path)
        self.kind = spec.kind
        self.run_id = uuid.uuid4().hex[:12]
        self.observers = list(observers)
        self.echo_output = (("stdout", "stderr") if spec.echo_output is True else tuple(spec.echo_output or ()))
        self._cancel = threading.Event()
        self.status = RunStatus.CREATED
        self.cancel_signal: Optional[int] = None
        #: A traced script's children failed for want of the main guard (seen in their stderr).
        self.missing_main_guard = False
        #: True once the run is over and its file and observers are told.
        self.finalized = False
        self.exit_code: Optional[int] = None
        self.lesson: Optional[str] = None
        self.proc: Optional[subprocess.Popen] = None
        self.started_at: Optional[float] = None
        self.listener = listener
        #: What the collector process reported (a ``collect_process.RunWatch``): events, drops, progress, helpers,
        #: segments, notes; ``listener(watch)`` is called after each change.  These exist once ``claim()`` ran.
        self.sink: Any = None
        self.writer: Any = None
        self.collector: Any = None
        self.trace_dir: Optional[str] = None
        self._totals: Optional[Tuple[int, int]] = None
        self.monitor: Any = None
        self.guard: Optional[subprocess.Popen] = None
        self._out_threads: List[threading.Thread] = []
        self._collecting_stopped = False
        #: Held while the collector process lets go of the run file (see ``_stop_collecting``).
        self._handover = threading.Lock()

    # Shorthands for what observers and callers read.
    title = property(lambda self: self.spec.title)
    scenario = property(lambda self: self.spec.scenario)
    params = property(lambda self: self.spec.params)
    start_method = property(lambda self: self.spec.start_method)

    def claim(self):
        """Claim the run file (RunFileError with one sentence if ``out_path`` is another run's file, unless
        ``replace``, or no run file at all) and prepare the collector; nothing is started yet.  ``start()``
        does it if it was not done: a caller that must know first (to say so before anything else) calls it."""
        if self.writer is not None:
            return self
        from .tracedir import make_trace_dir
        from .collect_process import CollectorProcess
        from .store import RunWriter
        spec = self.spec
        base = {"run_id": self.run_id, "kind": spec.kind, "command": self.argv, "title": spec.title,
                "scenario": spec.scenario, "params": spec.params, "start_method": spec.start_method,
                "machine": machine_facts(), "started_wall": time.time(), "runner_pid": os.getpid()}
        base.update(spec.meta or {})
        self.writer = RunWriter(self.out_path, base, replace=spec.replace, max_size=spec.max_size)
        self.trace_dir = make_trace_dir()
        self.collector = CollectorProcess(self.trace_dir, self.out_path, spec.max_size, listener=self.listener)
        self.sink = self.collector.watch
        return self

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self):
        self.claim()
        for o in self.observers:
            self._tell(o.run_started)
        try:
            self.collector.start()
        except OSError as e:                   # the runner will write the run file itself
            self.writer.add_log("error", "could not start the collector process: %s" % e)
        self.started_at = time.monotonic()
        try:
            self.proc = subprocess.Popen(self.argv, env=child_env(self.trace_dir, self.spec.env, self.spec.stand_in),
                                         cwd=self.spec.cwd, stdin=self.spec.stdin, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, **own_group(self.spec.stdin))
        except OSError as e:
            self._log("error", "could not start %s: %s" % (self.argv[0], e))
            self._finish(RunStatus.FAILED, 127)
            raise
        self.status = RunStatus.RUNNING
        self._start_guard()
        if not self.collector.meta(program_pid=self.proc.pid):
            self.writer.set_meta(program_pid=self.proc.pid)
        for stream, label in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr")):
            t = threading.Thread(target=self._pump, args=(stream, label), daemon=True, name="mpgui-" + label)
            t.start()
            self._out_threads.append(t)
        from .monitor import ResourceMonitor
        self.monitor = ResourceMonitor(self.proc.pid, self._samples, exclude={os.getpid()}).start()
        return self

    # -- what the runner records: through the collector process, or itself once that is gone -----------------
    def _log(self, kind, text, t=None):
        t = time.perf_counter_ns() if t is None else t
        if not self.collector.log(t, kind, text):
            with self._handover:
                self.writer.add_log(kind, text, t)

    def _samples(self, samples):
        if not self.collector.samples(samples):
            self.writer.add_samples(samples)

    def _start_guard(self):
        env = {k: v for k, v in os.environ.items() if k != recorder.TRACE_ENV}      # the guardian is not traced
        assert self.proc is not None
        try:
            self.guard = subprocess.Popen(guard_command(self.proc.pid), stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                          **own_session())
        except OSError as e:
            self._log("error", "could not start the guardian that ends the program if this runner dies: %s" % e)

    def _release_guard(self):
        """The program's tree is over: the guardian may go without doing anything (it reads this whenever it
        gets to it; ``_reap_helpers`` waits for it to end)."""
        if self.guard is None:
            return
        try:
            if self.guard.stdin is not None:
                self.guard.stdin.write(GUARD_RELEASE)
                self.guard.stdin.close()
        except OSError:
            pass

    def _reap_helpers(self):
        """Wait for the guardian and the collector process to end, now that their work is done."""
        if self.guard is not None:
            try:
                self.guard.wait(GUARD_EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.guard.kill()
                self.guard.wait()
        self.collector.reap()

    def _pump(self, stream, label):
        out = sys.stdout if label == "stdout" else sys.stderr
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if BOOTSTRAP_MARK in line and self.kind == "trace":
                self.missing_main_guard = True
            try:
                self._log(label, line)
            except Exception:
                pass
            if label in self.echo_output:
                try:
                    out.write(line + "\n")
                    out.flush()
                except (OSError, ValueError):
                    pass
        stream.close()

    def cancel(self, signum=None):
        """Ask the run to stop; ``wait()`` ends the tree and returns ``cancelled``.  ``signum``: the signal that
        asked for it, if one did (see ``cancel_exit_code``)."""
        if signum is not None and self.cancel_signal is None:
            self.cancel_signal = signum
        self._cancel.set()

    @property
    def cancel_exit_code(self):
        """A cancelled run's exit code, as a shell gives it: 128 + the signal (130 for Ctrl+C or Stop, 143 for
        SIGTERM)."""
        return 128 + int(self.cancel_signal or signal.SIGINT)

    def signal_process(self, pid: int, kill: bool = True) -> str:
        """Kill (SIGKILL) or terminate (SIGTERM) one process of this run's tree, as a user asked (to watch a
        Pool notice a dead worker).  Refuses a pid outside the tree.  Returns one sentence saying what was
        done, which is also kept in the run file's log."""
        from .procs import tree_pids
        how = "SIGKILL" if kill else "SIGTERM"
        if self.proc is None or self.proc.poll() is not None:
            said = "The run is over: pid %d was not signalled." % pid
        elif pid == self.proc.pid:
            said = "pid %d is the program's main process: stop the run instead." % pid
        elif pid not in tree_pids(self.proc.pid, self.proc.pid if os.name == "posix" else None):
            said = "pid %d is not a process of this run: nothing was signalled." % pid
        else:
            try:
                os.kill(pid, signal.SIGKILL if kill and hasattr(signal, "SIGKILL") else signal.SIGTERM)
                said = "%s sent to pid %d at the user's request." % (how, pid)
            except OSError as e:
                said = "Could not send %s to pid %d: %s." % (how, pid, e.strerror or e)
        try:
            self.writer.add_log("control", said)
        except Exception:
            pass
        return said

    @property
    def cancelled(self):
        return self._cancel.is_set()

    def wait(self, poll=WAIT_POLL, on_tick=None):
        """Wait for the program to end (or for ``cancel``); finalize the run; return the status."""
        assert self.proc is not None, "wait() before start()"
        try:
            while True:
                code = self.proc.poll()
                if code is not None:
                    break
                if self._cancel.is_set():
                    break
                if self._write_failure is not None:
                    # Nothing more can be recorded: stop the program rather than let it run unobserved.
                    self._cancel.set()
                    break
                if on_tick is not None:
                    on_tick(self)
                self._cancel.wait(poll)
        except BaseException:
            # Whatever went wrong here (a bug in on_tick, KeyboardInterrupt), the tree must not outlive us.
            self._cancel.set()
            self._end(cancelled=True)
            raise
        return self._end(self._cancel.is_set())

    def _end(self, cancelled):
        assert self.proc is not None
        pgid = self.proc.pid if os.name == "posix" else None
        if cancelled and self.proc.poll() is None:
            kill_tree(self.proc.pid, pgid, spare_roles=self.sink.helpers, child=self.proc)
            status = RunStatus.CANCELLED
        else:
            status = None
        code = self.proc.wait()
        self._main_ended = time.perf_counter_ns()
        for o in self.observers:
            ended = getattr(o, "program_ended", None)
            if ended is not None:
                self._tell(ended)
        # Orphans (workers of a main process that died, daemon leftovers): a moment to end, then killed.  A
        # resource tracker is waited for only after the collector's last drain, which goes on meanwhile (it
        # records nothing, and its start-up, tens of ms, often outlasts the program's last instructions).
        deadline = time.monotonic() + ORPHAN_GRACE
        self._end_group(pgid, deadline, but_trackers)
        self._stop_collecting()
        self._end_group(pgid, deadline)
        self._release_guard()
        for t in self._out_threads:             # all the output read: it can change the status
            t.join(timeout=2.0)
        if self._write_failure is not None:
            status = RunStatus.CUT_SHORT
        elif status is None:
            status = RunStatus.CANCELLED if self._cancel.is_set() else \
                (RunStatus.DONE if code == 0 and not self.missing_main_guard else RunStatus.FAILED)
        self._finish(status, code)
        return status

    def _end_group(self, pgid, deadline, which=list):
        """Wait until ``which`` of the program's process group (all of them by default) have ended; what is
        left at ``deadline`` is killed."""
        assert self.proc is not None
        left = which(group_members(pgid))
        while left and time.monotonic() < deadline:
            time.sleep(ORPHAN_POLL)
            left = which(group_members(pgid))
        if left:
            kill_tree(self.proc.pid, pgid, spare_roles=self.sink.helpers, child=self.proc)

    def _stop_collecting(self):
        """The monitor's last samples and the collector's last drain (once): from here on the runner is the
        run file's only writer.  Output that comes meanwhile waits for the collector to let go of the file."""
        if self._collecting_stopped:
            return
        self._collecting_stopped = True
        if self.monitor is not None:
            self.monitor.stop()                 # its last samples go to the collector
        with self._handover:
            if not self.collector.stop():
                self._drain_here()

    def _finish(self, status, code):
        self._stop_collecting()
        # From here on the runner is the run file's only writer.
        leaked = [name for name in self.sink.shm_created.values() if unlink_segment(name)]
        if leaked:
            self.writer.add_log("cleanup", "unlinked shared memory left by the program: %s" % ", ".join(leaked))
        from .tracedir import release_trace_dir
        release_trace_dir(self.trace_dir)
        self.status = status
        self.exit_code = code
        result = self.result
        lesson = result.get("lesson") if result else None
        message = self.storage_problem or (MAIN_GUARD_ADVICE if self.missing_main_guard else None) or self.error
        self._totals = self.writer.totals() or (self.sink.events, self.sink.dropped)
        # The program's exit goes in with the final status: both fit in the room the writer kept for them.
        exits = [] if self.proc is None or code is None else \
            [{"t": "exit", "pid": self.proc.pid, "exitcode": code,
              "time": getattr(self, "_main_ended", time.perf_counter_ns())}]
        self.writer.finish(exits, status=status.value, exit_code=code, ended_wall=time.time(),
                           ended_perf=time.perf_counter_ns(), dropped=self._totals[1], events=self._totals[0],
                           lesson=lesson, result=result, error=message)
        self.lesson = lesson
        self.writer.close()
        for o in self.observers:
            self._tell(o.run_finished)
        self._reap_helpers()
        self.finalized = True

    def _drain_here(self):
        """The collector process is gone without its last drain (it died, or never started): what its runner
        handed it may be lost, what the rings still hold is not."""
        from .collector import Collector
        errors = [line for line in self.collector.errors if line.strip()]
        self.writer.add_log("error", "the collector process ended before the run did%s; the runner stored what "
                            "was left" % (": %s" % errors[-1] if errors else ""))
        if self.sink.cap:
            self.writer.adopt_cap(self.sink.cap)

        def store(batch):
            self.sink.see(batch)
            self.writer.add_batch(batch)
        Collector(self.trace_dir, store, own_dir=False).stop()

    def _tell(self, call):
        """Observers (the history) are secondary to the run file: one that fails (the disk is full) is noted
        in the run file, if that can still be written, and does not stop the run."""
        try:
            call(self)
        except (sqlite3.Error, OSError) as e:
            try:
                if self.finalized or self.collector is None:
                    self.writer.add_log("error", "the run history could not be updated: %s" % e)
                else:
                    self._log("error", "the run history could not be updated: %s" % e)
            except Exception:
                pass

    @property
    def events_written(self):
        """Events stored in the run file (as the collector reported them while the run goes)."""
        if self._totals is not None:
            return self._totals[0]
        return self.sink.events if self.sink is not None else 0

    @property
    def dropped(self):
        """Events dropped: by the rings, and past the run file's size cap."""
        if self._totals is not None:
            return self._totals[1]
        return self.sink.dropped if self.sink is not None else 0

    @property
    def size_cap(self):
        """The run file's ``size_cap`` metadata once it reached its cap (what was dropped), else None."""
        return self.sink.cap if self.sink is not None else None

    @property
    def _write_failure(self):
        """Why the run file could not be written (by the collector process or the runner), or None."""
        if self.sink is not None and self.sink.failure:
            return self.sink.failure
        return self.writer.failure if self.writer is not None else None

    @property
    def storage_problem(self):
        """One sentence if the run file could not be written and the run was cut short, else None."""
        failure = self._write_failure
        if failure is None:
            return None
        return ("Writing the run file %s failed (%s; is the disk full?), so the run was stopped: the file keeps "
                "what was recorded until then; free some space and run it again." % (self.out_path, failure))

    @property
    def result(self):
        return next((n for n in reversed(self.sink.notes) if n.get("t") == "result"), None)

    @property
    def error(self):
        e = next((n for n in reversed(self.sink.notes) if n.get("t") == "error"), None)
        return e.get("message") if e else None


def install_cancel_handlers(run):
    """SIGTERM and SIGINT (Ctrl+C) to the runner cancel the run cleanly instead of killing the runner, until the
    run is finalized.  After that (the command's summary of a long run) they interrupt as they always do:
    Ctrl+C raises KeyboardInterrupt, SIGTERM exits with 128 + 15."""
    def handler(signum, frame):
        if not run.finalized:
            run.cancel(signum)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise SystemExit(128 + signum)
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGBREAK", None)):
        if sig is not None:
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):
                pass
