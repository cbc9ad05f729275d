"""Collecting side of the trace pipeline: draining every process's rings into batches, and the collector
process that stores them in the run file.

A ``Collector`` drains a run's trace directory.  Each poll (10 ms by default) it finds new ring and meta
files, copies the records each ring has gained since the last poll, tells the writer how far it read (so the
ring can be reused), and hands one ``Batch`` to its sink: the run file's writer, a live consumer, a test.
A poll that finds a ring filling fast polls again at once.

A record is taken only when it is whole.  The writer stores a record's body first and its sequence number
last; the collector reads sequence numbers first (to find how far the ring is written) and copies bodies
after, so on CPUs that keep stores and loads in order (x86, and what CPython's own memory model assumes)
a sequence number it saw always covers a finished body.  The copy is checked once more against the
expected numbers, which also catches a writer that lapped the ring.  Rings that are closed (their thread
ended or moved to a larger ring) or whose process is gone are drained one last time and deleted, which
also gives back the file descriptor their mapping holds.

The run's drops are every ring's dropped count plus every process's lost-records file (``<pid>.lost``:
records lost because no ring could be made for their thread).

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

No Qt here; numpy for the copies.
"""
import collections
import json
import mmap
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List

import numpy as np

from .arrays import EVENT_DTYPE, RECORD_DTYPE
from .events import RECORD_SIZE, Kind
from .procs import ROOT, own_session, pid_alive
from .recorder import (HEADER_FORMAT, HEADER_SIZE, LOST_FILE_SIZE, LOST_FORMAT, LOST_MAGIC, LOST_SUFFIX, MAGIC,
                       OFF_CLOSED, OFF_DROPPED, OFF_LOST, OFF_READ_IDX)

#: How often the collector looks at the rings.  Short enough for a live view and for the 50 ms
#: SIGKILL promise (a ring outlives its process anyway), long enough to copy in large slices.
POLL_INTERVAL = 0.010
#: How often to check whether the process behind a silent ring is still alive.
LIVENESS_INTERVAL = 0.5
#: A poll that finds a ring at least this full (a fraction of its capacity) polls again at once instead of
#: waiting POLL_INTERVAL: its thread records faster than a poll every POLL_INTERVAL drains.
BUSY_FILL = 0.25

_u64 = struct.Struct("<Q")


@dataclass
class Batch:
    """What one poll gathered: events (``EVENT_DTYPE``, each ring's in order), registrations (dicts from
    meta files), and the dropped-record totals per ring that changed."""
    events: np.ndarray
    metas: list = field(default_factory=list)
    drops: dict = field(default_factory=dict)     # ring or lost-records file name -> total dropped so far
    ended: list = field(default_factory=list)     # pids whose rings were all retired this poll

    def __bool__(self):
        return bool(len(self.events) or self.metas or self.drops or self.ended)


class RingReader:
    """The collector's view of one ring file."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        with open(path, "r+b") as f:
            self.mm = mmap.mmap(f.fileno(), 0)
        head = struct.unpack_from(HEADER_FORMAT, self.mm, 0)
        magic, _version, rsize, cap, pid, tid = head[:6]
        if magic != MAGIC or rsize != RECORD_SIZE or cap <= 0:
            self.mm.close()
            raise ValueError("not a trace ring: %s" % path)
        self.cap = cap
        self.pid = pid
        self.tid = tid
        self.records = np.frombuffer(self.mm, dtype=RECORD_DTYPE, count=cap, offset=HEADER_SIZE)
        self.read_idx = _u64.unpack_from(self.mm, OFF_READ_IDX)[0]
        self.dropped = 0
        self.last_data = time.monotonic()
        self.last_liveness = 0.0

    def _window(self, start, n):
        """Copy ``n`` records starting at sequence index ``start`` (handles the wrap)."""
        pos = start % self.cap
        first = min(n, self.cap - pos)
        if first == n:
            return self.records[pos:pos + n].copy()
        return np.concatenate((self.records[pos:], self.records[:n - first]))

    def read(self):
        """Return the new whole records (RECORD_DTYPE) and publish the new read index."""
        seq = self.records["seq"]
        start = self.read_idx
        cap = self.cap
        # Records form a written prefix (one writer, in order; a signal handler recording in the middle of a
        # record can leave one slot briefly behind, which the check of the copy below catches): binary-search.
        if seq[start % cap] != start + 1:
            return None
        lo, hi = 1, cap      # lo records are known written; find the largest n <= cap written
        if seq[(start + cap - 1) % cap] == start + cap:
            lo = cap
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if seq[(start + mid - 1) % cap] == start + mid:
                    lo = mid
                else:
                    hi = mid
        n = lo
        c1 = self._window(start, n)
        ok = c1["seq"] == np.arange(start + 1, start + n + 1, dtype=np.uint64)
        if not ok.all():
            n = int(np.argmin(ok))
            if n == 0:
                return None
            c1 = c1[:n]
        self.read_idx = start + n
        _u64.pack_into(self.mm, OFF_READ_IDX, self.read_idx)
        self.last_data = time.monotonic()
        return c1

    def read_dropped(self):
        return _u64.unpack_from(self.mm, OFF_DROPPED)[0]

    def is_closed(self):
        return _u64.unpack_from(self.mm, OFF_CLOSED)[0] != 0

    def close(self, delete=True):
        try:
            del self.records
            self.mm.close()
        except (BufferError, AttributeError):
            pass
        if delete:
            try:
                os.unlink(self.path)
            except OSError:
                pass


class LostReader:
    """The collector's view of one process's lost-records file."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        with open(path, "rb") as f:
            self.mm = mmap.mmap(f.fileno(), LOST_FILE_SIZE, access=mmap.ACCESS_READ)
        magic, _version, _pad, pid, _lost = struct.unpack_from(LOST_FORMAT, self.mm, 0)
        if magic != LOST_MAGIC:
            self.mm.close()
            raise ValueError("not a lost-records file: %s" % path)
        self.pid = pid
        self.dropped = 0
        self.last_liveness = 0.0

    def read_dropped(self):
        return _u64.unpack_from(self.mm, OFF_LOST)[0]

    def close(self, delete=True):
        self.mm.close()
        if delete:
            try:
                os.unlink(self.path)
            except OSError:
                pass


class MetaReader:
    """Tails one process's JSON-lines meta file."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self):
        try:
            if os.stat(self.path).st_size <= self.offset:      # nothing new: no need to open it
                return []
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        if not data:
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        out = []
        for line in lines:
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


def _ring_order(name):
    """Sort key of a ring file name ``pid-tid-seq.ring``: by thread, then in the order the thread made them."""
    parts = name[:-len(".ring")].split("-")
    try:
        return tuple(int(x) for x in parts)
    except ValueError:
        return (float("inf"),)


def to_events(records, pid, tid):
    """Ring records (a private copy) -> stored events, in place: ``seq``'s bytes become pid and tid."""
    ev = records.view(EVENT_DTYPE)
    ev["pid"] = pid
    ev["tid"] = tid
    return ev


TRACE_DIR_PREFIX = "mpgui-trace-"
#: A file in every trace directory that its owner keeps locked (flock) for as long as it lives.
OWNER_LOCK = ".owner"

#: Locks on the trace directories this process owns (kept open: closing one releases the lock).
_owned: Dict[str, int] = {}


def make_trace_dir():
    """A fresh trace directory, in RAM where the OS has it (/dev/shm), else the temp directory.

    Its owner (this process) holds a lock on a file in it until the directory is removed or the owner dies,
    so a directory whose lock can be taken belongs to a collector that was killed and could not remove it:
    those are removed here.  Directories of live owners are never touched, whoever and wherever they are
    (another user's session, another PID namespace)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    remove_stale_trace_dirs(base)
    d = tempfile.mkdtemp(prefix="%s%d-" % (TRACE_DIR_PREFIX, os.getpid()), dir=base)
    fd = os.open(os.path.join(d, OWNER_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    if not _try_lock(fd):                  # pragma: no cover - a fresh file nobody else knows of
        os.close(fd)
    else:
        _owned[d] = fd
    return d


def release_trace_dir(d):
    """Remove a trace directory this process made, and drop its lock."""
    shutil.rmtree(d, ignore_errors=True)
    fd = _owned.pop(d, None)
    if fd is not None:
        os.close(fd)


def _try_lock(fd):
    """Take an exclusive lock on ``fd`` without waiting; True if taken (or if the OS has no flock)."""
    try:
        import fcntl
    except ImportError:                    # Windows: a directory in use cannot be removed anyway
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def remove_stale_trace_dirs(base):
    """Remove trace directories under ``base`` whose owner is gone (its lock is free)."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(TRACE_DIR_PREFIX):
            continue
        d = os.path.join(base, name)
        if d in _owned:
            continue
        try:
            fd = os.open(os.path.join(d, OWNER_LOCK), os.O_RDONLY)
        except FileNotFoundError:
            # Made by a version without the lock file, or being created right now: judge by the pid in the
            # name, and leave it alone unless that pid is gone and the directory is older than a minute.
            owner = name[len(TRACE_DIR_PREFIX):].split("-", 1)[0]
            try:
                old = time.time() - os.stat(d).st_mtime > 60
            except OSError:
                continue
            if old and owner.isdigit() and not pid_alive(int(owner)):
                shutil.rmtree(d, ignore_errors=True)
            continue
        except OSError:
            continue
        try:
            if _try_lock(fd):
                shutil.rmtree(d, ignore_errors=True)
        finally:
            os.close(fd)


class Collector:
    """Drains a trace directory into ``sink(batch)`` from a background thread (or by calling ``poll``)."""

    def __init__(self, trace_dir, sink, poll_interval=POLL_INTERVAL, own_dir=True):
        self.trace_dir = trace_dir
        self.sink = sink
        self.poll_interval = poll_interval
        self.own_dir = own_dir
        self.rings = {}        # file name -> RingReader
        self.losts = {}        # file name -> LostReader
        self.metas = {}        # file name -> MetaReader
        self.retired = set()   # ring and lost-records file names already drained and deleted
        self.dropped_total = 0
        #: How full the fullest ring was at the last poll (a fraction of its capacity).
        self.fullest = 0.0
        self._drops_seen = {}
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()
        self.error = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, name="mpgui-collector", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self.poll()
            except Exception as e:          # a sink failure must not kill collection silently
                self.error = e
            dt = time.monotonic() - t0
            self._stop.wait(max(0.0, self.poll_interval - dt))

    def stop(self):
        """Stop the thread, drain everything that is left, and remove the trace directory."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.poll(final=True)
        for r in list(self.rings.values()) + list(self.losts.values()):
            r.close(delete=True)
        self.rings.clear()
        self.losts.clear()
        if self.own_dir:
            release_trace_dir(self.trace_dir)

    # -- one poll -------------------------------------------------------------------------------------------
    def _scan(self):
        try:
            names = os.listdir(self.trace_dir)
        except OSError:
            return
        # A thread that fills its ring moves to a new one ("pid-tid-seq.ring", seq counting up): readers are
        # made, and so read in each poll, in that order, and a ring that cannot be opened yet holds back its
        # thread's later ones, so a thread's events always come in the order it recorded them.
        held_back = set()
        for name in sorted((n for n in names if n.endswith(".ring")), key=_ring_order):
            thread = name.rsplit("-", 1)[0]
            if name in self.rings or name in self.retired:
                continue
            if thread in held_back:
                continue
            try:
                self.rings[name] = RingReader(os.path.join(self.trace_dir, name))
            except OSError:
                held_back.add(thread)         # out of file descriptors, say: next poll
            except (ValueError, struct.error):
                continue                      # not a ring: nothing to wait for
        for name in names:
            if name.endswith(".meta") and name not in self.metas:
                self.metas[name] = MetaReader(os.path.join(self.trace_dir, name))
            elif name.endswith(LOST_SUFFIX) and name not in self.losts and name not in self.retired:
                try:
                    self.losts[name] = LostReader(os.path.join(self.trace_dir, name))
                except (OSError, ValueError, struct.error):
                    continue

    def poll(self, final=False):
        """Gather everything new into one batch and hand it to the sink.  Returns the batch."""
        with self._lock:
            self._scan()
            metas = []
            for m in self.metas.values():
                metas.extend(m.read())
            parts = []
            drops = {}
            now = time.monotonic()
            fullest = 0.0
            for name, r in list(self.rings.items()):
                while True:        # a full ring can hold more than one window's worth after a wrap
                    recs = r.read()
                    if recs is None:
                        break
                    parts.append(to_events(recs, r.pid, r.tid))
                    fullest = max(fullest, len(recs) / r.cap)
                    if len(recs) < r.cap:
                        break
                d = r.read_dropped()
                if d != r.dropped:
                    self.dropped_total += d - r.dropped
                    r.dropped = d
                    drops[name] = d
                if self._finished(r, now, final):
                    recs = r.read()           # last look after deciding
                    if recs is not None:
                        parts.append(to_events(recs, r.pid, r.tid))
                    r.close(delete=True)
                    del self.rings[name]
                    self.retired.add(name)
            for name, r in list(self.losts.items()):
                gone = self._process_gone(r, now, final)      # decided before the last read
                d = r.read_dropped()
                if d != r.dropped:
                    self.dropped_total += d - r.dropped
                    r.dropped = d
                    drops[name] = d
                if gone:
                    r.close(delete=True)
                    del self.losts[name]
                    self.retired.add(name)
            if parts:
                events = np.concatenate(parts) if len(parts) > 1 else parts[0]
            else:
                events = np.empty(0, dtype=EVENT_DTYPE)
            batch = Batch(events, metas, drops)
            self.fullest = fullest
        if batch or final:
            self.sink(batch)
        return batch

    def _finished(self, r, now, final):
        if final:
            return True
        if r.is_closed():
            return now - r.last_data > self.poll_interval
        if now - r.last_data < LIVENESS_INTERVAL or now - r.last_liveness < LIVENESS_INTERVAL:
            return False
        r.last_liveness = now
        return not pid_alive(r.pid)

    def _process_gone(self, r, now, final):
        if final:
            return True
        if now - r.last_liveness < LIVENESS_INTERVAL:
            return False
        r.last_liveness = now
        return not pid_alive(r.pid)


# ------------------------------------------------------------------------------------------------------
# The collector process (see the module docstring)
# ------------------------------------------------------------------------------------------------------

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
    """The collector process: ``--trace-dir D --run-file F [--max-size BYTES]``.  Drains D's rings into F
    (which its runner claimed) until a line ``stop`` on stdin, or stdin's end (the runner is gone); its news
    go to stdout, one JSON object a line.  It inherits the runner's descriptor of D's owner lock, so D is
    never taken for stale while this process drains it, even after the runner died."""
    import argparse
    from .store import RunFileError, RunWriter
    parser = argparse.ArgumentParser(prog=COLLECT_COMMAND)
    parser.add_argument("--trace-dir", required=True)
    parser.add_argument("--run-file", required=True)
    parser.add_argument("--max-size", type=int, default=0)
    args = parser.parse_args(argv)
    # Its runner decides when collection ends (Ctrl+C in a terminal reaches the runner, which says stop).
    for sig in (signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
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


def collect_command(trace_dir, run_file, max_size=None):
    """The command line of a collector process (see ``collect_main``)."""
    args = ["--trace-dir", trace_dir, "--run-file", run_file, "--max-size", str(int(max_size or 0))]
    if getattr(sys, "frozen", False):
        return [sys.executable, COLLECT_COMMAND] + args
    # ROOT first on the path: the current directory (first for -c) may hold another package named core.
    code = ("import sys; sys.path.insert(0, %r); from core.trace.collector import collect_main; "
            "sys.exit(collect_main(sys.argv[1:]))" % ROOT)
    return [sys.executable, "-c", code] + args


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
        """Start the process (OSError if it cannot be)."""
        owner_fd = _owned.get(self.trace_dir)
        # A session of its own: a Ctrl+C or a signal to the runner's group is for the runner, which then stops
        # it; the trace directory's lock is shared with it.
        kwargs: Dict[str, Any] = own_session()
        if os.name == "posix" and owner_fd is not None:
            kwargs["pass_fds"] = (owner_fd,)
        from .recorder import TRACE_ENV
        env = {k: v for k, v in (self.env or os.environ).items() if k != TRACE_ENV}      # it is not traced
        self.proc = subprocess.Popen(collect_command(self.trace_dir, self.run_file, self.max_size),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, **kwargs)
        self.alive = True
        for target, name in ((self._read_news, "news"), (self._read_errors, "errors")):
            t = threading.Thread(target=target, name="mpgui-collector-" + name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

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
