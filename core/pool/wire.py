"""core.pool.wire: how the pool's manager thread and its workers talk -- frames on os pipes.

A frame is ``u64 payload length | u32 header length | header pickle | blobs...``.  The header is a small
tuple pickled with the stdlib's pickle; it says what the blobs are.  The blobs are pickled with
ForkingPickler (one reused pickler per thread, ``Dumper``): the tasks' function and items one way, their
results the other.  The messages::

  manager -> worker   [(job, first, cs, mode, n, timed, blob length), ...]   one batch of runs
                      None                                                     stop
  worker -> manager   (READY, t, initializer ns)
                      (INIT_FAILED, remote traceback, pickled exception)
                      (RESULTS, [(job, first, n, errs, ns, blob length), ...], bye)

Each worker also owns a slot of a shared int64 array (``SLOT`` fields): the sequence number of the chunk
it runs (``SEQ``) and, when tasks are timed, the task it runs (``IDX``) and its start time (``START``).

Also here: the wake-up pipe the caller threads use to wake the manager's select (``Waker``), and a task's
exception packed for the wire (position, remote traceback text, pickled exception) and rebuilt on the other
side with the traceback as its ``__cause__``, as the stdlib does.

This module starts no threads or processes and records nothing; no Qt.
"""
import collections
import ctypes
import io
import itertools
import os
import pickle
import struct
import threading
import time
import traceback
from multiprocessing import sharedctypes
from multiprocessing.pool import MaybeEncodingError, RemoteTraceback
from multiprocessing.reduction import ForkingPickler

#: Pipe buffer size asked for (Linux F_SETPIPE_SZ, best effort): fewer wake-ups for big results.
PIPE_BUFFER = 1 << 20
#: Bytes read from a result pipe per read call.
READ_SIZE = 1 << 18
#: A frame at least this big is read straight into a buffer of its own size.
BIG_FRAME = 1 << 20
#: Frames up to this size go out as one joined buffer (one write); bigger ones as a list of views.
JOIN_BELOW = 65536
#: Buffers handed to one writev call (the system's IOV_MAX is at least 1024).
MAX_IOV = 512

# Worker modes: how a task's item is applied.
MAP, STARMAP, APPLY = 0, 1, 2
# Worker -> manager message tags.
READY, RESULTS, INIT_FAILED = 0, 1, 2
# Slot layout (int64 per field), one slot per worker.
SEQ, IDX, START = 0, 1, 2
SLOT = 4

_HDR = struct.Struct("<QI")      # frame: payload length, header-pickle length; then header, then blobs
_Q = struct.Struct("<Q")
_I = struct.Struct("<I")

now = time.perf_counter_ns       # the recorder's clock: system-wide monotonic


class Slots:
    """The shared int64 array where each worker shows what it runs (``SLOT`` fields a slot: ``SEQ``, and
    with a timeout ``IDX`` and ``START``).  The manager hands the slots out and reads them; a worker gets
    ``array`` and its slot number."""

    __slots__ = ("array", "view", "free")

    def __init__(self, n):
        self.array = sharedctypes.RawArray(ctypes.c_int64, n * SLOT)
        self.view = memoryview(self.array).cast("B").cast("q")
        self.free = list(range(n - 1, -1, -1))

    def take(self):
        """A free slot, zeroed (IndexError when there is none)."""
        slot = self.free.pop()
        self.view[slot * SLOT:(slot + 1) * SLOT] = memoryview(bytes(8 * SLOT)).cast("q")
        return slot

    def give(self, slot):
        self.free.append(slot)

    def read(self, slot):
        """(SEQ, IDX, START) of ``slot`` (its worker has ended: nothing changes them any more)."""
        base = slot * SLOT
        v = self.view
        return v[base + SEQ], v[base + IDX], v[base + START]

    def running(self, slot):
        """(SEQ, IDX, START) of the timed task running in ``slot`` now, or None between tasks.  START is
        read before and after the others: if it changed, the worker moved on meanwhile (None)."""
        base = slot * SLOT
        v = self.view
        start = v[base + START]
        if not start:
            return None
        idx = v[base + IDX]
        seq = v[base + SEQ]
        if v[base + START] != start:
            return None
        return seq, idx, start


class Dumper:
    """ForkingPickler.dumps with one reused pickler (the stdlib's reducers, without building a pickler and
    a buffer per call).  One per thread that pickles.

    Between calls it holds nothing: the pickler's memo references every object it pickled and the buffer
    holds the bytes, so both are emptied as soon as a dump ends (otherwise the last task's arguments, or a
    worker's last results, would stay alive until the next dump)."""

    __slots__ = ("buf", "pickler", "nreducers")

    def __init__(self):
        self.buf = io.BytesIO()
        self.pickler = None
        self.nreducers = -1

    def __call__(self, obj):
        buf = self.buf
        p = self.pickler
        if p is None or self.nreducers != len(ForkingPickler._extra_reducers):
            p = self.pickler = ForkingPickler(buf)
            self.nreducers = len(ForkingPickler._extra_reducers)
        try:
            p.dump(obj)
            return buf.getvalue()
        except BaseException:
            self.pickler = None
            raise
        finally:
            p.clear_memo()
            buf.seek(0)
            buf.truncate()


def frame(header, blobs):
    """The parts of one frame: length prefix and header pickle, then the blobs."""
    h = pickle.dumps(header, pickle.HIGHEST_PROTOCOL)
    size = 4 + len(h)
    for b in blobs:
        size += len(b)
    return [_HDR.pack(size, len(h)) + h, *blobs]


def parse(payload):
    """A frame's payload -> (header, offset of the first blob)."""
    hlen = _I.unpack_from(payload, 0)[0]
    return pickle.loads(payload[4:4 + hlen]), 4 + hlen


def views_of(parts):
    """A frame's parts as a deque of memoryviews to write; small frames joined into one buffer."""
    if len(parts) > 1 and sum(len(p) for p in parts) <= JOIN_BELOW:
        parts = [b"".join(parts)]
    return collections.deque(memoryview(p) for p in parts)


def write_some(fd, views):
    """One writev of the front of ``views`` (a deque of memoryviews); drops what was written from it.
    Raises BlockingIOError when the pipe is full (non-blocking fds), OSError when its reader is gone."""
    k = os.writev(fd, list(itertools.islice(views, 0, MAX_IOV)))
    while k:
        first = len(views[0])
        if k >= first:
            k -= first
            views.popleft()
        else:
            views[0] = views[0][k:]
            k = 0


class PipeWriter:
    """The non-blocking writing end of a pipe: what the pipe cannot take now is kept, in order, until it
    can (the manager writes the rest when the selector says the pipe is writable).  If the reader is gone,
    the rest is dropped (its process has ended; its sentinel tells)."""

    __slots__ = ("fd", "views")

    def __init__(self, fd):
        self.fd = fd
        self.views = None             # memoryviews not written yet, or None

    @property
    def pending(self):
        return self.views is not None

    def write(self, parts):
        """Write a frame's parts; True when some of it now waits (it did not before)."""
        if self.views is not None:
            self.views.extend(memoryview(p) for p in parts)
            return False
        views = views_of(parts)
        self._write(views)
        if views:
            self.views = views
            return True
        return False

    def flush(self):
        """Write more of what waits; True when it is all written now."""
        if self.views is None:
            return False
        self._write(self.views)
        if not self.views:
            self.views = None
            return True
        return False

    def drop(self):
        """Forget what waits; True if something did."""
        had = self.views is not None
        self.views = None
        return had

    def _write(self, views):
        while views:
            try:
                write_some(self.fd, views)
            except BlockingIOError:
                return
            except OSError:               # the reader is gone
                views.clear()
                return


class Waker:
    """How the caller threads (and the feeder) wake the manager's select: a byte in a non-blocking pipe,
    written at most once until the manager drains it."""

    __slots__ = ("r", "w", "pending", "lock")

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)
        self.pending = False
        self.lock = threading.Lock()

    def wake(self):
        if not self.pending:
            self.pending = True
            with self.lock:
                if self.w >= 0:
                    try:
                        os.write(self.w, b"\0")
                    except OSError:
                        pass

    def drain(self):
        # drain first, then clear: a byte written after the clear wakes the next select; a job queued
        # before it is taken at the top of the loop
        try:
            os.read(self.r, 4096)
        except OSError:
            pass
        self.pending = False

    def close(self):
        with self.lock:
            for fd in (self.r, self.w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.r = self.w = -1


class FrameReader:
    """Reassembles frames from a pipe.  Frames are handed out as memoryviews of buffers never written
    again, so reading never blocks on a half-written frame and never copies a frame twice."""

    __slots__ = ("fd", "buf", "big", "bigpos")

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()
        self.big = None
        self.bigpos = 0

    def fill(self):
        """One read.  False at end of file; BlockingIOError when nothing is there (non-blocking fds).
        Returns the number of bytes read otherwise."""
        if self.big is not None:
            mv = memoryview(self.big)
            k = os.readv(self.fd, [mv[self.bigpos:]])
            mv.release()
            if not k:
                return False
            self.bigpos += k
            return k
        data = os.read(self.fd, READ_SIZE)
        if not data:
            return False
        self.buf += data
        return len(data)

    def more_waiting(self, k):
        """After a read of ``k`` bytes: may the pipe hold more right now (a full read, or the rest of a big
        frame)?"""
        return k >= READ_SIZE or self.big is not None

    def frames(self):
        out = []
        if self.big is not None:
            if self.bigpos < len(self.big):
                return out
            out.append(memoryview(self.big)[8:])
            self.big = None
        buf = self.buf
        n_buf = len(buf)
        pos = 0
        while n_buf - pos >= 8:
            n = _Q.unpack_from(buf, pos)[0]
            if n_buf - pos - 8 < n:
                if n + 8 >= BIG_FRAME:
                    big = bytearray(n + 8)
                    have = n_buf - pos
                    big[:have] = buf[pos:]
                    self.big, self.bigpos = big, have
                    pos = n_buf
                break
            out.append(memoryview(buf)[pos + 8:pos + 8 + n])
            pos += 8 + n
        if pos:
            # the old buffer is never written again: views handed out stay valid
            self.buf = bytearray(buf[pos:]) if pos < n_buf else bytearray()
        return out


def pack_error(pos, exc, dumps):
    """A task's exception for the wire: (position, remote traceback text, pickled exception)."""
    tb = '\n"""\n%s"""' % "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        data = dumps(exc)
    except Exception as e:
        data = dumps(MaybeEncodingError(e, exc))
    return (pos, tb, data)


def unpack_error(tb, data):
    try:
        exc = pickle.loads(data)
    except Exception as e:
        exc = pickle.UnpicklingError("could not rebuild the exception a pool task raised (%s: %s); "
                                     "its remote traceback follows" % (type(e).__name__, e))
    if tb:
        exc.__cause__ = RemoteTraceback(tb)
    return exc


def set_pipe_size(fd):
    try:
        import fcntl
        if hasattr(fcntl, "F_SETPIPE_SZ"):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BUFFER)
    except (OSError, ImportError):
        pass
