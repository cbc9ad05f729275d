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

The collector process (``collect_process``) runs a ``Collector``; tests and embedding code can run one in
any process.

No Qt here; numpy for the copies.
"""
import json
import mmap
import os
import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .arrays import EVENT_DTYPE, RECORD_DTYPE
from .events import RECORD_SIZE
from .procs import pid_alive
from .tracedir import release_trace_dir
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


