"""Recording side of the trace pipeline: what a traced process does to write an event.

Each thread of a traced process writes fixed 48-byte records (``events.RECORD_DTYPE``) into its own ring: a
memory-mapped file in the run's trace directory.  One writer per ring means no lock and no torn order on the
hot path; the file lives in the page cache, so the collector still reads every record of a process that was
killed with SIGKILL.  When a ring is full the record is dropped and counted in the ring's header; recording
never blocks.  Names (processes, objects, interned strings) go once per process into a small JSON-lines
side file written with O_APPEND.

Tracing is on when the environment names a trace directory (``MPGUI_TRACE_DIR``), which children inherit.
With tracing off, ``emit`` is a no-op and the traced primitives bind the stdlib's fast methods instead.

This module must stay importable without Qt and cheap to import: it is imported in every worker.
"""
import atexit
import itertools
import json
import mmap
import os
import struct
import sys
import threading
import time

from .events import RECORD_FORMAT, RECORD_SIZE

TRACE_ENV = "MPGUI_TRACE_DIR"
RING_ENV = "MPGUI_TRACE_RING"

#: Records per ring (a power of two).  131,072 records are 6 MiB (touched only as they fill), enough to
#: ride out 80 ms without a collector pass at 1.5 million events/s from one thread.
DEFAULT_RING_RECORDS = 1 << 17

# Ring file header (little-endian), 128 bytes, then ``capacity`` records.
HEADER_SIZE = 128
MAGIC = b"MPGRING1"
HEADER_FORMAT = "<8sIIQqqQQQqq"   # magic, version, record size, capacity, pid, tid, read_idx, dropped,
HEADER_VERSION = 1                # closed, t_perf, t_wall
OFF_READ_IDX = 40
OFF_DROPPED = 48
OFF_CLOSED = 56

# One pack_into per record.  struct zeroes the record first and then writes the fields in order, so the
# sequence number (the last field) is stored last: the collector, which reads sequence numbers before it
# copies records, never takes a record whose sequence number it sees before the rest of it.
_pack = struct.Struct(RECORD_FORMAT).pack_into
_u64 = struct.Struct("<Q")
_now = time.perf_counter_ns


class _Ring:
    """One thread's ring: the writer's view.  Only its own thread touches it."""

    __slots__ = ("mm", "head", "limit", "mask", "cap", "dropped", "path")

    def __init__(self, path, mm, cap):
        self.path = path
        self.mm = mm
        self.head = 0
        self.cap = cap
        self.mask = cap - 1
        self.limit = cap
        self.dropped = 0

    def make_room(self):
        """Called when ``head`` reached ``limit``: re-read how far the collector got; drop if still full."""
        read_idx = _u64.unpack_from(self.mm, OFF_READ_IDX)[0]
        self.limit = read_idx + self.cap
        if self.head < self.limit:
            return True
        self.dropped += 1
        _u64.pack_into(self.mm, OFF_DROPPED, self.dropped)
        return False

    def close(self):
        try:
            _u64.pack_into(self.mm, OFF_CLOSED, 1)
        except (ValueError, TypeError):
            pass


class _State:
    """Per-process recorder state, rebuilt in a forked child."""

    def __init__(self):
        self.pid = os.getpid()
        self.rings = []
        self.meta_fd = None
        self.registered = False
        self.ids = itertools.count(1)
        self.names = {}
        self.strings = {}
        self.lock = threading.Lock()


trace_dir = os.environ.get(TRACE_ENV) or None
ENABLED = bool(trace_dir) and os.path.isdir(trace_dir)
_role = None
_name = None
_tls = threading.local()
_state = _State()
try:
    _ring_records = int(os.environ.get(RING_ENV) or DEFAULT_RING_RECORDS)
except ValueError:
    _ring_records = DEFAULT_RING_RECORDS
if _ring_records < 1024 or _ring_records & (_ring_records - 1):
    _ring_records = DEFAULT_RING_RECORDS


def _emit_on(kind, uid, a=0, b=0, c=0):
    """Record one event.  The hot path: about 0.4 us, no lock, no allocation beyond the record."""
    try:
        r = _tls.ring
    except AttributeError:
        r = _open_thread_ring()
        if r is None:
            return
    h = r.head
    if h >= r.limit and not r.make_room():
        return
    r.head = h + 1      # reserve the slot first: a signal handler that records meanwhile takes the next one
    _pack(r.mm, HEADER_SIZE + (h & r.mask) * RECORD_SIZE, _now(), uid, a, b, kind, c, h + 1)


def _emit_at_on(t, kind, uid, a=0, b=0, c=0):
    """Record an event with an explicit timestamp (a perf_counter_ns taken earlier by the caller)."""
    try:
        r = _tls.ring
    except AttributeError:
        r = _open_thread_ring()
        if r is None:
            return
    h = r.head
    if h >= r.limit and not r.make_room():
        return
    r.head = h + 1
    _pack(r.mm, HEADER_SIZE + (h & r.mask) * RECORD_SIZE, t, uid, a, b, kind, c, h + 1)


def _emit_off(kind, uid, a=0, b=0, c=0):
    return None


def _emit_at_off(t, kind, uid, a=0, b=0, c=0):
    return None


emit = _emit_on if ENABLED else _emit_off
emit_at = _emit_at_on if ENABLED else _emit_at_off
now = _now


def _open_thread_ring():
    """Create this thread's ring file and publish it atomically (rename) so the collector never sees a
    half-written header."""
    st = _state
    if not ENABLED:
        return None
    _ensure_registered()
    tid = threading.get_native_id()
    cap = _ring_records
    base = os.path.join(trace_dir, "%d-%d-%d" % (st.pid, tid, len(st.rings)))
    tmp = base + ".tmp"
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            size = HEADER_SIZE + cap * RECORD_SIZE
            os.ftruncate(fd, size)
            header = struct.pack(HEADER_FORMAT, MAGIC, HEADER_VERSION, RECORD_SIZE, cap, st.pid, tid,
                                 0, 0, 0, _now(), time.time_ns())
            os.pwrite(fd, header, 0) if hasattr(os, "pwrite") else (os.lseek(fd, 0, 0), os.write(fd, header))
            mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        os.replace(tmp, base + ".ring")
    except OSError:
        # The trace directory is gone (the run ended) or full: stop recording in this thread, quietly.
        _tls.ring = _NullRing()
        return None
    r = _Ring(base + ".ring", mm, cap)
    st.rings.append(r)
    _tls.ring = r
    return r


class _NullRing:
    """Stands in for a ring that could not be opened: always full, counts nothing."""
    __slots__ = ("head", "limit")

    def __init__(self):
        self.head = 0
        self.limit = 0

    def make_room(self):
        return False

    def close(self):
        pass


def _write_meta(record):
    """Append one JSON line to this process's meta file (registrations: process, objects, strings)."""
    st = _state
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    with st.lock:
        if st.meta_fd is None:
            try:
                st.meta_fd = os.open(os.path.join(trace_dir, "%d.meta" % st.pid),
                                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError:
                return
        try:
            os.write(st.meta_fd, line)
        except OSError:
            pass


def _ensure_registered():
    st = _state
    if st.registered or not ENABLED:
        return
    st.registered = True
    _write_meta(_process_record())


def _process_record():
    import multiprocessing.process as mpp
    cur = mpp.current_process()
    return {"t": "proc", "pid": _state.pid, "ppid": os.getppid(),
            "role": _role or ("main" if _is_main_process() else "process"), "name": _name or cur.name,
            "perf": _now(), "wall": time.time_ns(), "argv": sys.argv[:8],
            "exe": sys.executable, "platform": sys.platform}


# ------------------------------------------------------------------------------------------------------
# Public helpers used by core's traced classes
# ------------------------------------------------------------------------------------------------------

def new_uid():
    """A run-wide unique id: this process's pid in the high bits, a counter in the low 24."""
    return (_state.pid << 24) | next(_state.ids)


def default_name(kind):
    """A readable default name: ``Lock#3``; objects made outside the main process add ``@pid``."""
    st = _state
    with st.lock:
        n = st.names.get(kind, 0) + 1
        st.names[kind] = n
    if _role in (None, "main") and _is_main_process():
        return "%s#%d" % (kind, n)
    return "%s#%d@%d" % (kind, n, st.pid)


def _is_main_process():
    """Whether this is the program's own process.  A spawn or forkserver child has no parent_process() until
    its bootstrap, yet it runs user code before that: it imports the main module (a script without the main
    guard runs whole), with ``_inheriting`` set on its current process meanwhile, as the forkserver does
    while it preloads that module."""
    import multiprocessing.process as mpp
    return mpp.parent_process() is None and not getattr(mpp.current_process(), "_inheriting", False)


def register_object(uid, kind, name, **extra):
    """Tell the collector what ``uid`` is.  Cheap enough for object construction, not for hot paths."""
    if not ENABLED:
        return
    _ensure_registered()
    rec = {"t": "obj", "uid": uid, "kind": kind, "name": name}
    if extra:
        rec.update(extra)
    _write_meta(rec)


def intern(text):
    """The id of a string (a method name, a label); registered once per process."""
    st = _state
    sid = st.strings.get(text)
    if sid is None:
        sid = new_uid()
        st.strings[text] = sid
        if ENABLED:
            _ensure_registered()
            _write_meta({"t": "str", "id": sid, "s": text})
    return sid


def set_role(role, name=None):
    """Declare what this process is (main, worker, manager, ...); shown in the process table."""
    global _role, _name
    _role = role
    if name:
        _name = name
    if not ENABLED:
        return
    if not _state.registered:
        _ensure_registered()
    else:
        rec = {"t": "role", "pid": _state.pid, "role": role}
        if name:
            rec["name"] = name
        _write_meta(rec)


def note_process(pid, role, name=None):
    """Register a process this one knows about but that records nothing itself (forkserver, resource
    tracker)."""
    if not ENABLED or not pid:
        return
    _ensure_registered()
    _write_meta({"t": "extproc", "pid": int(pid), "ppid": _state.pid, "role": role, "name": name or role})


def write_note(record):
    """Append a free-form registration (a dict with a ``t`` key) to this process's meta file."""
    if ENABLED:
        _ensure_registered()
        _write_meta(record)


def close_rings():
    """Mark this process's rings finished, so the collector can retire them as soon as they are read."""
    for r in _state.rings:
        r.close()


def enable(directory, role=None):
    """Turn tracing on for this process and its future children (used by tests and embedding code)."""
    global trace_dir, ENABLED, emit, emit_at, _role
    os.environ[TRACE_ENV] = directory
    trace_dir = directory
    ENABLED = True
    emit = _emit_on
    emit_at = _emit_at_on
    if role:
        _role = role
    _refresh_state()


def disable():
    """Stop tracing in this process (children started afterwards are not traced either)."""
    global trace_dir, ENABLED, emit, emit_at
    close_rings()
    os.environ.pop(TRACE_ENV, None)
    trace_dir = None
    ENABLED = False
    emit = _emit_off
    emit_at = _emit_at_off
    _refresh_state()


def _refresh_state():
    global _state
    old = _state
    _state = _State()
    _state.ids = old.ids
    if old.meta_fd is not None:
        try:
            os.close(old.meta_fd)
        except OSError:
            pass
    _tls.__dict__.pop("ring", None)


def _after_fork_in_child():
    """A forked child starts with its own rings and meta file; it keeps the uid counter so ids stay unique."""
    global _role, _name
    old = _state
    _refresh_state()
    _state.names = dict(old.names)
    _role = _name = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(close_rings)
