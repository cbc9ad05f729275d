"""Collecting side of the trace pipeline: one thread that drains every process's rings into batches.

The collector owns a run's trace directory.  Each poll (10 ms by default) it finds new ring and meta files,
copies the records each ring has gained since the last poll, tells the writer how far it read (so the ring
can be reused), and hands one ``Batch`` to its sink: the run file's store, a live consumer, a test.

A record is taken only when it is whole.  The writer stores a record's body first and its sequence number
last; the collector reads sequence numbers first (to find how far the ring is written) and copies bodies
after, so on CPUs that keep stores and loads in order (x86, and what CPython's own memory model assumes)
a sequence number it saw always covers a finished body.  The copy is checked once more against the
expected numbers, which also catches a writer that lapped the ring.  Rings of processes
that are closed or gone are drained one last time and deleted.

No Qt here; numpy for the copies.
"""
import errno
import json
import mmap
import os
import shutil
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .arrays import EVENT_DTYPE, RECORD_DTYPE
from .events import RECORD_SIZE
from .recorder import HEADER_FORMAT, HEADER_SIZE, MAGIC, OFF_CLOSED, OFF_DROPPED, OFF_READ_IDX

#: How often the collector looks at the rings.  Short enough for a live view and for the 50 ms
#: SIGKILL promise (a ring outlives its process anyway), long enough to copy in large slices.
POLL_INTERVAL = 0.010
#: How often to check whether the process behind a silent ring is still alive.
LIVENESS_INTERVAL = 0.5

_u64 = struct.Struct("<Q")


@dataclass
class Batch:
    """What one poll gathered: events (``EVENT_DTYPE``, each ring's in order), registrations (dicts from
    meta files), and the dropped-record totals per ring that changed."""
    events: np.ndarray
    metas: list = field(default_factory=list)
    drops: dict = field(default_factory=dict)     # ring name -> total dropped so far
    ended: list = field(default_factory=list)     # pids whose rings were all retired this poll

    def __bool__(self):
        return bool(len(self.events) or self.metas or self.drops or self.ended)


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        import psutil
        if not psutil.pid_exists(pid):
            return False
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:
        try:
            os.kill(pid, 0)
        except OSError as e:
            return e.errno == errno.EPERM
        return True


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


class MetaReader:
    """Tails one process's JSON-lines meta file."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self):
        try:
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


def to_events(records, pid, tid):
    """Ring records (a private copy) -> stored events, in place: ``seq``'s bytes become pid and tid."""
    ev = records.view(EVENT_DTYPE)
    ev["pid"] = pid
    ev["tid"] = tid
    return ev


TRACE_DIR_PREFIX = "mpgui-trace-"


def make_trace_dir():
    """A fresh trace directory, in RAM where the OS has it (/dev/shm), else the temp directory.  Its name
    carries the collecting process's pid, so directories left by a collector that was killed (it could not
    remove its own) are removed here."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    remove_stale_trace_dirs(base)
    return tempfile.mkdtemp(prefix="%s%d-" % (TRACE_DIR_PREFIX, os.getpid()), dir=base)


def remove_stale_trace_dirs(base):
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(TRACE_DIR_PREFIX):
            continue
        owner = name[len(TRACE_DIR_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and not _pid_alive(int(owner)):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


class Collector:
    """Drains a trace directory into ``sink(batch)`` from a background thread (or by calling ``poll``)."""

    def __init__(self, trace_dir, sink, poll_interval=POLL_INTERVAL, own_dir=True):
        self.trace_dir = trace_dir
        self.sink = sink
        self.poll_interval = poll_interval
        self.own_dir = own_dir
        self.rings = {}        # file name -> RingReader
        self.metas = {}        # file name -> MetaReader
        self.retired = set()   # ring file names already drained and deleted
        self.dropped_total = 0
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
        for r in list(self.rings.values()):
            r.close(delete=True)
        self.rings.clear()
        if self.own_dir:
            shutil.rmtree(self.trace_dir, ignore_errors=True)

    # -- one poll -------------------------------------------------------------------------------------------
    def _scan(self):
        try:
            names = os.listdir(self.trace_dir)
        except OSError:
            return
        for name in names:
            if name.endswith(".ring"):
                if name in self.rings or name in self.retired:
                    continue
                try:
                    self.rings[name] = RingReader(os.path.join(self.trace_dir, name))
                except (OSError, ValueError, struct.error):
                    continue
            elif name.endswith(".meta") and name not in self.metas:
                self.metas[name] = MetaReader(os.path.join(self.trace_dir, name))

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
            for name, r in list(self.rings.items()):
                while True:        # a full ring can hold more than one window's worth after a wrap
                    recs = r.read()
                    if recs is None:
                        break
                    parts.append(to_events(recs, r.pid, r.tid))
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
            if parts:
                events = np.concatenate(parts) if len(parts) > 1 else parts[0]
            else:
                events = np.empty(0, dtype=EVENT_DTYPE)
            batch = Batch(events, metas, drops)
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
        return not _pid_alive(r.pid)
