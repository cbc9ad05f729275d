"""Runs one traced program (a scenario's main process, or a user's script) and records it into a run file.

    runner (this process)                       traced program: its own session / process group
      collector thread --- drains rings --->      main  --start method-->  workers, manager, forkserver...
      monitor thread   --- psutil 10 Hz --->      (every process writes its events into the trace dir)
      output threads   --- stdout/stderr -->
           \\-> RunWriter (SQLite WAL run file)  <- the GUI tails this file while it is written
           \\-> RunHistory (one row per run)

The program runs in a process tree of its own (never inside the GUI, never inside this process: the runner
has threads, and forking a threaded process is the deadlock the notes warn about).  ``cancel()`` (Stop,
Ctrl+C, SIGTERM to the runner) ends the whole tree within 2 seconds: SIGTERM, then SIGKILL for what is left,
the stdlib's resource tracker last so it can release semaphores; shared-memory segments the program created
and did not unlink are unlinked; the run file keeps everything recorded and is marked ``cancelled``.

If the runner itself dies (SIGKILL, a crash), the program's tree must not live on, and the program cannot be
asked to help (a user's script owns its stdin and may never import core's watchers).  So every run has a
guardian: a small process in a session of its own, started with ``GUARD_COMMAND``, that blocks reading a
pipe only the runner holds.  A runner that ends normally writes ``done`` first; end of file without it means
the runner is gone, and the guardian ends the tree as ``cancel()`` would (``kill_tree``).  It imports this
module, so the module's top level imports only what the guardian needs (the rest is imported where used).

No Qt here.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import psutil

from .trace import recorder
from .trace.events import Kind

#: How long processes get to end after SIGTERM before SIGKILL.
TERM_GRACE = 0.8
#: After the main process ends, how long its children get to end on their own before they are killed.
ORPHAN_GRACE = 1.0

#: How long the runner waits for its released guardian to exit.
GUARD_EXIT_TIMEOUT = 5.0
#: The hidden command that runs the guardian in the packaged app (main.py dispatches it).
GUARD_COMMAND = "_run-guard"
#: What a runner that ends normally tells its guardian before closing the pipe.
GUARD_RELEASE = b"done"
#: Command-line marks of the stdlib's helper processes: they go last when a tree is ended (the resource
#: tracker releases what the program left once every other process is gone).
HELPER_MARKS = {"resource_tracker": "resource tracker", "forkserver": "forkserver"}

#: Words of the RuntimeError a spawned (or forkserver) child raises when it runs the main module's
#: process-starting code again: the script has no main guard (they are in the stdlib's message in 3.10-3.13).
BOOTSTRAP_MARK = "finished its bootstrapping phase"
MAIN_GUARD_ADVICE = ("The script starts processes at its top level, so each spawned child ran that code again and "
                     "failed (the RuntimeError about the bootstrapping phase in its output): put the code that "
                     "starts processes under 'if __name__ == \"__main__\":'.")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env(trace_dir, extra=None):
    env = dict(os.environ)
    env[recorder.TRACE_ENV] = trace_dir
    paths = [ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


class _RunObserver:
    """Sees every batch after it was stored, and keeps what the runner itself needs."""

    def __init__(self, listener=None):
        self.listener = listener
        self.notes = []               # registrations of kind result/error/progress from the program
        self.shm_created = {}         # uid -> segment name
        self.helpers = {}             # pid -> role (forkserver, resource tracker)
        self.events = 0
        self.progress = None

    def __call__(self, batch):
        self.events += len(batch.events)
        for m in batch.metas:
            t = m.get("t")
            if t == "obj" and m.get("kind") == "SharedMemory" and m.get("created"):
                self.shm_created[m["uid"]] = m["name"]
            elif t == "extproc":
                self.helpers[m["pid"]] = m.get("role")
            elif t in ("result", "error"):
                self.notes.append(m)
        ev = batch.events
        if len(ev):
            unl = ev[ev["kind"] == Kind.SHM_UNLINK]
            for uid in unl["uid"].tolist():
                self.shm_created.pop(uid, None)
            prog = ev[ev["kind"] == Kind.PROGRESS]
            if len(prog):
                last = prog[-1]
                self.progress = (int(last["a"]), int(last["b"]))
        if self.listener is not None:
            self.listener(batch)


def unlink_segment(name):
    """Remove a POSIX shared-memory segment by name (no-op where segments die with their handles)."""
    if os.name != "posix":
        return False
    try:
        import _posixshmem
        _posixshmem.shm_unlink(name if name.startswith("/") else "/" + name)
        return True
    except (OSError, ImportError):
        return False


def _group_members(pgid):
    out = []
    if pgid is None or os.name != "posix":
        return out
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.pid != os.getpid():
                out.append(p)
        except (OSError, psutil.Error):
            pass
    return out


def _stdlib_helpers(procs):
    """pid -> role of the stdlib's helper processes among ``procs``, told by their command lines."""
    out = {}
    for p in procs:
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        for mark, role in HELPER_MARKS.items():
            if "multiprocessing.%s" % mark in cmd:
                out[p.pid] = role
    return out


def kill_tree(root_pid, pgid=None, grace=TERM_GRACE, spare_roles=None):
    """End ``root_pid``, its descendants and its process group: SIGTERM, then SIGKILL after ``grace``.
    Processes named in ``spare_roles`` (pid -> role, e.g. the resource tracker) go last, so they can clean up.
    Returns the pids that were still alive and had to be signalled."""
    procs = {}
    try:
        root = psutil.Process(root_pid)
        procs[root.pid] = root
        for c in root.children(recursive=True):
            procs[c.pid] = c
    except psutil.Error:
        pass
    for p in _group_members(pgid):
        procs.setdefault(p.pid, p)
    procs.pop(os.getpid(), None)
    spare_roles = {**(spare_roles or {}), **_stdlib_helpers(procs.values())}
    spare = {pid: p for pid, p in procs.items() if pid in spare_roles}
    first = [p for pid, p in procs.items() if pid not in spare]
    for p in first:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(first, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)
    if spare:
        # The resource tracker exits by itself once every process holding its pipe is gone.
        _, left = psutil.wait_procs(list(spare.values()), timeout=0.5)
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=grace)
    return list(procs)


def guard_command(program_pid):
    """The command line of a guardian for the program ``program_pid`` (see the module docstring)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, GUARD_COMMAND, str(program_pid)]
    # ROOT first on the path: the current directory (first for -c) may hold another package named core.
    code = "import sys; sys.path.insert(0, %r); from core.runner import guard_main; sys.exit(guard_main(sys.argv[1:]))"
    return [sys.executable, "-c", code % ROOT, str(program_pid)]


def guard_main(argv):
    """The guardian: wait for the runner's pipe (stdin) to end; unless the runner said ``done``, end the
    program's tree."""
    for sig in (signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
    program_pid = int(argv[0])
    said = b""
    try:
        while True:
            chunk = os.read(0, 64)
            if not chunk:
                break
            said += chunk
    except OSError:
        pass
    if GUARD_RELEASE not in said:
        kill_tree(program_pid, program_pid if os.name == "posix" else None)
    return 0


class TracedRun:
    """One traced program run.  ``start()``, then ``wait()``; ``cancel()`` from any thread.

    Creating it claims the run file (``RunFileError`` with one sentence if ``out_path`` is another run's
    file, unless ``replace``, or is no run file at all); nothing is started before ``start()``."""

    def __init__(self, argv, out_path, *, kind="trace", meta=None, history=None, env=None, cwd=None,
                 echo_output=("stdout", "stderr"), listener=None, title=None, scenario=None, params=None,
                 start_method=None, replace=False, stdin=subprocess.DEVNULL):
        from .history import machine_facts
        from .trace.collector import Collector, make_trace_dir
        from .trace.store import BackgroundWriter, RunWriter
        self.argv = list(argv)
        self.out_path = os.path.abspath(out_path)
        self.kind = kind
        self.run_id = uuid.uuid4().hex[:12]
        self.history = history
        self.extra_env = env
        self.cwd = cwd
        # which of the program's streams to pass through to ours (they are always kept in the run file)
        self.echo_output = (("stdout", "stderr") if echo_output is True else tuple(echo_output or ()))
        self.title = title
        self.scenario = scenario
        self.params = params or {}
        self.start_method = start_method
        # the program's stdin: nothing by default; ``None`` passes this process's own stdin on (``trace``)
        self.stdin = stdin
        self._cancel = threading.Event()
        self.status = "created"
        self.cancel_signal = None
        #: A traced script's children failed for want of the main guard (seen in their stderr).
        self.missing_main_guard = False
        #: True once the run is over and its file and history entry are written.
        self.finalized = False
        self.exit_code = None
        self.proc = None
        self.started_at = None
        base = {"run_id": self.run_id, "kind": kind, "command": self.argv, "title": title, "scenario": scenario,
                "params": self.params, "start_method": start_method, "machine": machine_facts(),
                "started_wall": time.time(), "runner_pid": os.getpid()}
        base.update(meta or {})
        # First, so a path that cannot take this run (another run's file, not a run file) stops it here.
        self.writer = RunWriter(self.out_path, base, replace=replace)
        self.sink = _RunObserver(listener)
        self.store = BackgroundWriter(self.writer, listener=self.sink)
        self.trace_dir = make_trace_dir()
        self.collector = Collector(self.trace_dir, self.store)
        self.monitor = None
        self.guard = None
        self._out_threads = []

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self):
        if self.history is not None:
            self._enter_in_history(self.history.begin, self.run_id, self.out_path, self.kind, self.scenario,
                                   self.title, self.params, self.start_method)
        self.collector.start()
        kwargs = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True
        else:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        self.started_at = time.monotonic()
        try:
            self.proc = subprocess.Popen(self.argv, env=child_env(self.trace_dir, self.extra_env), cwd=self.cwd,
                                         stdin=self.stdin, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, **kwargs)
        except OSError as e:
            self.writer.add_log("error", "could not start %s: %s" % (self.argv[0], e))
            self._finish("failed", 127)
            raise
        self.status = "running"
        self._start_guard()
        self.writer.set_meta(program_pid=self.proc.pid)
        for stream, label in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr")):
            t = threading.Thread(target=self._pump, args=(stream, label), daemon=True, name="mpgui-" + label)
            t.start()
            self._out_threads.append(t)
        from .monitor import ResourceMonitor
        self.monitor = ResourceMonitor(self.proc.pid, self.writer.add_samples,
                                       exclude={os.getpid()}).start()
        return self

    def _start_guard(self):
        env = {k: v for k, v in os.environ.items() if k != recorder.TRACE_ENV}      # the guardian is not traced
        kwargs = {"start_new_session": True} if os.name == "posix" else \
            {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        try:
            self.guard = subprocess.Popen(guard_command(self.proc.pid), stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, **kwargs)
        except OSError as e:
            self.writer.add_log("error", "could not start the guardian that ends the program if this runner "
                                         "dies: %s" % e)

    def _release_guard(self):
        """The program's tree is over: the guardian may go without doing anything."""
        if self.guard is None:
            return
        try:
            self.guard.stdin.write(GUARD_RELEASE)
            self.guard.stdin.close()
        except OSError:
            pass
        try:
            self.guard.wait(GUARD_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.guard.kill()
            self.guard.wait()

    def _pump(self, stream, label):
        out = sys.stdout if label == "stdout" else sys.stderr
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if BOOTSTRAP_MARK in line and self.kind == "trace":
                self.missing_main_guard = True
            try:
                self.writer.add_log(label, line)
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

    @property
    def cancelled(self):
        return self._cancel.is_set()

    def wait(self, poll=0.05, on_tick=None):
        """Wait for the program to end (or for ``cancel``); finalize the run; return the status."""
        try:
            while True:
                code = self.proc.poll()
                if code is not None:
                    break
                if self._cancel.is_set():
                    break
                if self.writer.failure is not None:
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
        pgid = self.proc.pid if os.name == "posix" else None
        if cancelled and self.proc.poll() is None:
            kill_tree(self.proc.pid, pgid, spare_roles=self.sink.helpers)
            status = "cancelled"
        else:
            status = None
        code = self.proc.wait()
        self._main_ended = time.perf_counter_ns()
        # Orphans (workers of a main process that died, daemon leftovers): a moment to end, then killed.
        deadline = time.monotonic() + ORPHAN_GRACE
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_members(pgid):
            kill_tree(self.proc.pid, pgid, spare_roles=self.sink.helpers)
        self._release_guard()
        for t in self._out_threads:             # all the output read: it can change the status
            t.join(timeout=2.0)
        if self.writer.failure is not None:
            status = "cut short"
        elif status is None:
            status = "cancelled" if self._cancel.is_set() else \
                ("done" if code == 0 and not self.missing_main_guard else "failed")
        self._finish(status, code)
        return status

    def _finish(self, status, code):
        if self.monitor is not None:
            self.monitor.stop()
        self.collector.stop()
        self.store.close()
        if self.proc is not None and code is not None:
            self.writer.add_registrations([{"t": "exit", "pid": self.proc.pid, "exitcode": code,
                                            "time": getattr(self, "_main_ended", time.perf_counter_ns())}])
        leaked = [name for name in self.sink.shm_created.values() if unlink_segment(name)]
        if leaked:
            self.writer.add_log("cleanup", "unlinked shared memory left by the program: %s" % ", ".join(leaked))
        self.status = status
        self.exit_code = code
        result = next((n for n in reversed(self.sink.notes) if n.get("t") == "result"), None)
        error = next((n for n in reversed(self.sink.notes) if n.get("t") == "error"), None)
        lesson = result.get("lesson") if result else None
        message = self.storage_problem or (MAIN_GUARD_ADVICE if self.missing_main_guard else None) or \
            (error.get("message") if error else None)
        self.writer.finish(status=status, exit_code=code, ended_wall=time.time(), ended_perf=time.perf_counter_ns(),
                           dropped=self.writer.dropped, events=self.writer.events_written, lesson=lesson,
                           result=result, error=message)
        self.writer.close()
        if self.history is not None:
            self._enter_in_history(self.history.finish, self.run_id, status, lesson, self.writer.events_written,
                                   self.writer.dropped, code)
        self.finalized = True

    def _enter_in_history(self, call, *args):
        """The history is secondary to the run file: a write to it that fails (the disk is full) is noted in
        the run file, if that can still be written, and does not stop the run."""
        try:
            call(*args)
        except (sqlite3.Error, OSError) as e:
            self.writer.add_log("error", "the run history could not be updated: %s" % e)

    @property
    def storage_problem(self):
        """One sentence if the run file could not be written and the run was cut short, else None."""
        if self.writer.failure is None:
            return None
        return ("Writing the run file %s failed (%s; is the disk full?), so the run was stopped: the file keeps "
                "what was recorded until then; free some space and run it again."
                % (self.out_path, self.writer.failure))

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
