"""The collector process: a run's rings drained into its run file by a process of its own.

A traced run's collector is a process of its own (``collect_main``, started by the runner through
``CollectorProcess``), so that nothing else competes with draining: not the runner's threads (the program's
output, the resource monitor), not a model, not the GIL they share.  Its one job:

    runner  --stdin: output lines, samples, metadata, "stop"-->  collector process  --> run file (the writer)
            <--stdout: news (events stored, drops, progress, shared-memory segments, helpers, notes)--

It writes every event and registration into the run file while the program runs, and what the runner hands
it; the runner claims the file before and writes the final status after, so the file has one writer at a
time.  The runner learns what it needs (``RunWatch``: segments to unlink, helper pids, the scenario's result
note, progress, a write failure) from the collector's news, without modelling the run.  If the runner dies,
the collector drains what the program's processes (ended by the runner's guardian) recorded, leaves the
run's status as it is (readers call it interrupted), and removes the trace directory.  If the collector
dies, the runner drains what is left itself.

No Qt here.
"""
import collections
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List

from .events import Kind
from .procs import helper_path, helper_python, own_group
from .tracedir import hold_trace_dir

#: The hidden command that runs a collector process in the packaged app (main.py dispatches it).
COLLECT_COMMAND = "_run-collect"
#: How often, at most, the collector process sends its runner the run's counts (news it must act on, such as
#: a shared-memory segment or a write failure, go at once).
STATUS_INTERVAL = 0.05
#: After its runner is gone (its commands ended without "stop"), how long the collector process keeps
#: draining while the program's processes end (the runner's guardian ends them).
ORPHANED_DRAIN = 10.0
#: How long a runner waits for its collector process's last drain before it drains what is left itself.
STOP_TIMEOUT = 30.0
#: How long a runner gives its collector process to start before it starts the program anyway (the rings
#: keep what is recorded meanwhile).
READY_TIMEOUT = 10.0
#: The runner's last command: drain everything and end.
STOP_LINE = b"stop\n"


class RunWatch:
    """What a runner needs to know of its run, without modelling it: events stored and dropped, the
    program's progress, the stdlib's helper processes (pid -> role), shared-memory segments created and not
    unlinked (uid -> name), the program's result and error notes, a failure to write the run file, the size
    cap once reached (its ``size_cap`` metadata).

    The collector process ``see``s each batch and sends the news; the runner ``apply``s them (and so does a
    runner draining by itself).  ``listener(watch)`` is called after each change."""

    def __init__(self, listener=None):
        self.listener = listener
        self.events = 0
        self.dropped = 0
        self.progress = None
        self.helpers = {}
        self.shm_created = {}
        self.notes = []
        self.failure = None
        self.cap = None
        self.ready = False
        self.final = False

    def see(self, batch):
        """Take what the runner needs from one batch; returns the news (a dict, maybe empty)."""
        news: Dict[str, Any] = {}
        for m in batch.metas:
            t = m.get("t")
            if t == "obj" and m.get("kind") == "SharedMemory" and m.get("created"):
                news.setdefault("shm", []).append([m.get("uid"), m.get("name")])
            elif t == "extproc":
                news.setdefault("helpers", []).append([m.get("pid"), m.get("role")])
            elif t in ("result", "error"):
                news.setdefault("notes", []).append(m)
        ev = batch.events
        if len(ev):
            import numpy as np
            kinds = ev["kind"]
            unlinked = ev["uid"][kinds == Kind.SHM_UNLINK]
            if len(unlinked):
                news["unlinked"] = unlinked.tolist()
            progress = np.flatnonzero(kinds == Kind.PROGRESS)
            if len(progress):
                last = ev[progress[-1]]
                news["progress"] = [int(last["a"]), int(last["b"])]
        self.apply(news)
        return news

    def apply(self, news):
        """Take news (from ``see``, or a collector process's status line)."""
        for uid, name in news.get("shm", ()):
            self.shm_created[uid] = name
        for uid in news.get("unlinked", ()):
            self.shm_created.pop(uid, None)
        for pid, role in news.get("helpers", ()):
            self.helpers[pid] = role
        self.notes.extend(news.get("notes", ()))
        if news.get("progress") is not None:
            self.progress = tuple(news["progress"])
        for key in ("events", "dropped", "failure", "cap", "ready", "final"):
            if key in news:
                setattr(self, key, news[key])
        if news and self.listener is not None:
            self.listener(self)


def merge_news(into, news):
    """Add ``news`` to ``into`` (news not sent yet): lists add up, the rest is replaced by the newer."""
    for key, value in news.items():
        if isinstance(value, list) and key != "progress":
            into.setdefault(key, []).extend(value)
        else:
            into[key] = value
    return into


class _StatusOut:
    """The collector process's news to its runner, written by a thread of its own: a runner that does not
    read for a while (stopped, busy) must never stall draining.  News not yet written are merged."""

    def __init__(self, stream):
        self._stream = stream
        self._pending = None
        self._closing = False
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mpgui-collector-status", daemon=True)
        self._thread.start()

    def send(self, news):
        with self._lock:
            self._pending = merge_news(self._pending if self._pending is not None else {}, news)
        self._ready.set()

    def _run(self):
        while True:
            self._ready.wait()
            with self._lock:
                news, self._pending = self._pending, None
                self._ready.clear()
                closing = self._closing
            if news is not None:
                try:
                    self._stream.write(json.dumps(news, separators=(",", ":")).encode() + b"\n")
                    self._stream.flush()
                except (OSError, ValueError):
                    return                      # the runner is gone: nobody to tell
            if closing:
                return

    def close(self, timeout=5.0):
        """Write what is pending, then end."""
        with self._lock:
            self._closing = True
        self._ready.set()
        self._thread.join(timeout)


class _Inbox:
    """The runner's commands (one a line), read by a thread of their own: a pipe cannot be waited on with a
    timeout on every platform.  ``ended`` is set when the runner said stop or is gone."""

    def __init__(self, stream):
        self._stream = stream
        self._lines: "collections.deque[bytes]" = collections.deque()
        self.ended = threading.Event()
        self.stop_asked = False
        threading.Thread(target=self._read, name="mpgui-collector-commands", daemon=True).start()

    def _read(self):
        try:
            for line in iter(self._stream.readline, b""):
                if line == STOP_LINE:
                    self.stop_asked = True
                    break
                self._lines.append(line)
        except (OSError, ValueError):
            pass
        self.ended.set()

    def take(self):
        out = []
        while self._lines:
            out.append(self._lines.popleft())
        return out


def encode_log(t, kind, text):
    """A command line carrying one line of output: ``L<t>\\t<kind>\\t<text>`` (a line of a program's output
    has no newline; other texts go as JSON)."""
    if "\n" in text or "\t" in kind:
        return b"J" + json.dumps({"log": [[t, kind, text]]}).encode() + b"\n"
    return b"L%d\t%s\t%s\n" % (t, kind.encode(), text.encode("utf-8", "replace"))


def decode_commands(lines):
    """Command lines -> (log rows, samples, registrations, metadata)."""
    logs: List[Any] = []
    samples: List[Any] = []
    regs: List[Any] = []
    meta: Dict[str, Any] = {}
    for line in lines:
        try:
            if line.startswith(b"L"):
                t, kind, text = line[1:-1].split(b"\t", 2)
                logs.append((int(t), kind.decode(), text.decode("utf-8", "replace")))
                continue
            msg = json.loads(line[1:])
        except ValueError:
            continue                            # not from our runner: nothing to store
        if not isinstance(msg, dict):
            continue
        logs.extend(tuple(row) for row in msg.get("log", ()))
        samples.extend(tuple(row) for row in msg.get("samples", ()))
        regs.extend(msg.get("regs", ()))
        meta.update(msg.get("meta", {}))
    return logs, samples, regs, meta


class _BatchStore:
    """The collector process's writer thread: batches and the runner's hand-overs go into the run file in the
    order they came, while the draining loop goes on (compressing and writing release the GIL).  What waits
    to be written is merged into larger transactions; ``backlog`` counts its events (each counter has one
    writing thread)."""

    #: Events merged into one transaction at most (the chunks stay CHUNK_EVENTS each).
    MERGE_EVENTS = 1 << 18

    def __init__(self, writer):
        import queue
        self.writer = writer
        self._queued = 0
        self._written = 0
        self._q: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="mpgui-collector-writer", daemon=True)
        self._thread.start()

    @property
    def backlog(self):
        return self._queued - self._written

    def batch(self, batch):
        self._queued += len(batch.events)
        self._q.put(("batch", batch))

    def commands(self, logs, samples, regs, meta):
        if logs or samples or regs or meta:
            self._q.put(("commands", (logs, samples, regs, meta)))

    def close(self):
        """Write everything queued, then end the thread."""
        self._q.put(("end", None))
        self._thread.join()

    def _run(self):
        import queue
        held = None
        while True:
            kind, item = held if held is not None else self._q.get()
            held = None
            if kind == "end":
                return
            if kind == "commands":
                self._write_commands(*item)
                continue
            batches = [item]
            n = len(item.events)
            while n < self.MERGE_EVENTS:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt[0] != "batch":
                    held = nxt                  # keep the order: write these batches first
                    break
                batches.append(nxt[1])
                n += len(nxt[1].events)
            self._write_batches(batches)
            self._written += n

    def _write_batches(self, batches):
        if len(batches) > 1:
            import numpy as np
            from .collector import Batch
            events = [b.events for b in batches if len(b.events)]
            drops = {}
            for b in batches:
                drops.update(b.drops)
            batch = Batch(np.concatenate(events) if events else batches[0].events,
                          [m for b in batches for m in b.metas], drops)
        else:
            batch = batches[0]
        self.writer.add_batch(batch)

    def _write_commands(self, logs, samples, regs, meta):
        self.writer.add_logs(logs)
        self.writer.add_samples(samples)
        if regs:
            self.writer.add_registrations(regs)
        if meta:
            self.writer.set_meta(**meta)


#: Events the collector process may hold waiting to be written (about 100 MB): past it, it stops draining
#: until the disk catches up, and the rings hold (or drop and count) what comes meanwhile.
MAX_BACKLOG = 1 << 21


class _Collection:
    """The collector process's work: drain the rings (this thread), store the batches and what the runner
    hands over (a writer thread), tell the runner the news, until the runner says stop or is gone."""

    def __init__(self, trace_dir, writer, inbox, out):
        self.trace_dir = trace_dir
        self.writer = writer
        self.inbox = inbox
        self.out = out
        self.watch = RunWatch()
        self.store = _BatchStore(writer)
        from .collector import Collector
        self.collector = Collector(trace_dir, self._store, own_dir=False)
        self._unsent = {}
        self._last_status = 0.0

    def _store(self, batch):
        merge_news(self._unsent, self.watch.see(batch))
        self.store.batch(batch)

    def _tell(self, final=False):
        now = time.monotonic()
        urgent = any(k in self._unsent for k in ("shm", "unlinked", "helpers", "notes"))
        failure = self.writer.failure
        if not (final or urgent or now - self._last_status >= STATUS_INTERVAL
                or (failure is not None and self.watch.failure is None)):
            return
        counts = {"events": self.writer.events_written, "dropped": self.writer.dropped,
                  "failure": None if failure is None else str(failure),
                  "cap": dict(self.writer.cap) if self.writer.capped else None}
        self.watch.apply(counts)
        self._unsent.update(counts)
        if final:
            self._unsent["final"] = True
        self.out.send(self._unsent)
        self._unsent = {}
        self._last_status = now

    def _commands(self):
        self.store.commands(*decode_commands(self.inbox.take()))

    def run(self):
        from .collector import BUSY_FILL
        self.out.send({"ready": True})
        next_poll = 0.0
        while not self.inbox.ended.is_set():
            now = time.monotonic()
            if now >= next_poll and self.store.backlog < MAX_BACKLOG:
                self.collector.poll()
                # a ring filling fast: drain again at once rather than let it fill
                next_poll = now if self.collector.fullest >= BUSY_FILL else now + self.collector.poll_interval
            elif now >= next_poll:
                next_poll = now + self.collector.poll_interval
            self._commands()
            self._tell()
            wait = next_poll - time.monotonic()
            if wait > 0:
                self.inbox.ended.wait(wait)
        orphaned = not self.inbox.stop_asked
        if orphaned:
            self._drain_while_processes_end()
        self.collector.stop()                  # the last drain
        self._commands()
        self.store.close()
        if orphaned:
            # Nobody will write the final status: the counts at least (readers call the run interrupted).
            self.writer.finish(events=self.writer.events_written, dropped=self.writer.dropped)
        self.writer.close()
        self._tell(final=True)                 # the file is the runner's again
        if orphaned:
            shutil.rmtree(self.trace_dir, ignore_errors=True)
        self.out.close()
        return 0

    def _drain_while_processes_end(self):
        deadline = time.monotonic() + ORPHANED_DRAIN
        while (self.collector.rings or self.collector.losts) and time.monotonic() < deadline:
            if self.store.backlog < MAX_BACKLOG:
                self.collector.poll()
            self._tell()
            time.sleep(self.collector.poll_interval)


def collect_main(argv):
    """The collector process: ``--trace-dir D --run-file F [--max-size BYTES]``, or ``--spare`` (the same,
    handed over later as the first line on stdin: ``A`` and a JSON object of those three).  Drains D's rings
    into F (which its runner claimed) until a line ``stop`` on stdin, or stdin's end (the runner is gone); its
    news go to stdout, one JSON object a line.  It shares the ownership of D (``tracedir.hold_trace_dir``),
    so D is never taken for stale while this process drains it, even after the runner died."""
    import argparse
    from .store import RunFileError, RunWriter
    parser = argparse.ArgumentParser(prog=COLLECT_COMMAND)
    parser.add_argument("--spare", action="store_true")
    parser.add_argument("--trace-dir")
    parser.add_argument("--run-file")
    parser.add_argument("--max-size", type=int, default=0)
    args = parser.parse_args(argv)
    # Its runner decides when collection ends (Ctrl+C in a terminal reaches the runner, which says stop).
    for sig in (signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
    if args.spare:
        from . import collector  # noqa: F401  (numpy: what makes a collector slow to start, loaded before the run)
        line = sys.stdin.buffer.readline()
        if not line.startswith(b"A"):
            os._exit(0)                         # never handed a run: its starter ended or changed its mind
        run = json.loads(line[1:])
        args.trace_dir, args.run_file, args.max_size = run["trace_dir"], run["run_file"], run["max_size"]
    if not args.trace_dir or not args.run_file:
        parser.error("--trace-dir and --run-file are required")
    hold_trace_dir(args.trace_dir)
    try:
        writer = RunWriter.attach(args.run_file, args.max_size or None)
    except RunFileError as e:
        print(e, file=sys.stderr)              # the runner keeps it in the run's log, and drains by itself
        return 1
    out = _StatusOut(sys.stdout.buffer)
    code = _Collection(args.trace_dir, writer, _Inbox(sys.stdin.buffer), out).run()
    # Everything is written, closed and said: end now, without the interpreter's teardown (tens of ms with
    # numpy loaded), which its runner would wait for.
    sys.stderr.flush()
    os._exit(code)


def _helper_command(args):
    if getattr(sys, "frozen", False):
        return [sys.executable, COLLECT_COMMAND] + args
    code = ("import sys; sys.path[:] = %r; from core.trace.collect_process import collect_main; "
            "sys.exit(collect_main(sys.argv[1:]))" % helper_path())
    return helper_python() + ["-c", code] + args


def collect_command(trace_dir, run_file, max_size=None):
    """The command line of a collector process (see ``collect_main``)."""
    return _helper_command(["--trace-dir", trace_dir, "--run-file", run_file, "--max-size", str(int(max_size or 0))])


def _collector_env(env=None):
    from .recorder import TRACE_ENV
    return {k: v for k, v in (env or os.environ).items() if k != TRACE_ENV}      # it is not traced


def _start(argv, env):
    # A group of its own: a Ctrl+C or a signal to the runner's group is for the runner, which then stops it.  In
    # the runner's session, as the program: one scheduling group on Linux (see procs.own_group).
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            **own_group())


#: The spare collector process (``start_spare``), until a run takes it.
_spare: Any = None


def start_spare():
    """Start a collector process for this process's next run now: it loads its modules (numpy above all,
    about 0.1 s of CPU) while its starter loads its own, and the run's collector is ready sooner after the
    program starts, so its last drain is sooner after the program ends.  The next ``CollectorProcess.start()``
    takes it (where no other environment is asked for); unused, it is ended when this process exits."""
    global _spare
    if _spare is not None:
        return
    try:
        _spare = _start(_helper_command(["--spare"]), _collector_env())
    except OSError:
        return                                  # the run will start its collector as usual
    import atexit
    atexit.register(_end_spare)


def _take_spare():
    global _spare
    proc, _spare = _spare, None
    return proc if proc is not None and proc.poll() is None else None


def _end_spare():
    proc = _take_spare()
    if proc is not None:
        _discard(proc)


def _discard(proc):
    proc.kill()
    proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        try:
            f.close()
        except OSError:                         # a pipe to a process that died with data unread
            pass


class CollectorProcess:
    """A runner's collector process: started with ``start()``, handed the run's output lines, samples,
    registrations and metadata, stopped with ``stop()``.  ``watch`` (a ``RunWatch``) is what it reported.

    Every hand-over returns False once the process is gone (it died, or could not start): the runner then
    writes the run file itself."""

    def __init__(self, trace_dir, run_file, max_size=None, listener=None, env=None):
        self.trace_dir = trace_dir
        self.run_file = run_file
        self.max_size = max_size
        self.env = env
        self.watch = RunWatch(listener)
        self.proc: Any = None
        self.alive = False
        #: What the process wrote on stderr (a bug's traceback): the runner keeps it in the run's log.
        self.errors = []
        self._lock = threading.Lock()
        self._threads = []
        self._ready = threading.Event()
        self._final = threading.Event()

    def start(self):
        """Start the process, or hand the run to the spare one (``start_spare``); OSError if it cannot be
        started."""
        spare = _take_spare() if self.env is None else None
        if spare is not None:
            self.proc = spare
            self.alive = True
            if self._send(b"A" + json.dumps({"trace_dir": self.trace_dir, "run_file": self.run_file,
                                             "max_size": int(self.max_size or 0)}).encode() + b"\n"):
                self._read_in_threads()
                return self
            _discard(spare)                     # it died meanwhile: a new one
        self.proc = _start(collect_command(self.trace_dir, self.run_file, self.max_size), _collector_env(self.env))
        self.alive = True
        self._read_in_threads()
        return self

    def _read_in_threads(self):
        for target, name in ((self._read_news, "news"), (self._read_errors, "errors")):
            t = threading.Thread(target=target, name="mpgui-collector-" + name, daemon=True)
            t.start()
            self._threads.append(t)

    def _read_news(self):
        for raw in iter(self.proc.stdout.readline, b""):
            try:
                news = json.loads(raw)
            except ValueError:
                continue
            if isinstance(news, dict):
                self.watch.apply(news)
                if news.get("ready") or news.get("final"):
                    self._ready.set()
                if news.get("final"):
                    self._final.set()
        self._ready.set()
        self._final.set()

    def _read_errors(self):
        for raw in iter(self.proc.stderr.readline, b""):
            self.errors.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Wait until the process drains (or is gone); True if it drains."""
        self._ready.wait(timeout)
        return self.watch.ready and not self.watch.final

    def _send(self, line):
        with self._lock:
            if not self.alive:
                return False
            try:
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
                return True
            except (OSError, ValueError):
                self.alive = False
                return False

    def log(self, t, kind, text):
        return self._send(encode_log(t, kind, text))

    def _send_json(self, **msg):
        return self._send(b"J" + json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    def samples(self, samples):
        return self._send_json(samples=[[t, s] for t, s in samples])

    def registrations(self, records):
        return self._send_json(regs=list(records))

    def meta(self, **items):
        return self._send_json(meta=items)

    def stop(self, timeout=STOP_TIMEOUT):
        """Ask for the last drain and wait until the process says it is done with the run file (it is killed
        if it does not within ``timeout``).  True if it drained everything and said so; ``reap()`` waits for
        the process to end."""
        if self.proc is None:
            return False
        self._send(STOP_LINE)
        with self._lock:
            self.alive = False
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if not self._final.wait(timeout):
            self.proc.kill()
        return bool(self.watch.final)

    def reap(self, timeout=5.0):
        """Wait for the stopped process to end (killed after ``timeout``)."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join(5.0)
