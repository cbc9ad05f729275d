"""Recording side of the trace pipeline: what a traced process does to write an event.

Each thread of a traced process writes fixed 48-byte records (``events.RECORD_DTYPE``) into its own ring: a
memory-mapped file in the run's trace directory.  One writer per ring means no lock and no torn order on the
hot path; the file lives in the page cache, so the collector still reads every record of a process that was
killed with SIGKILL.  When a ring is full the record is dropped and counted in the ring's header; recording
never blocks.  Names (processes, objects, interned strings) go once per process into a small JSON-lines
side file written with O_APPEND.

A ring's pages are reserved when it is made: the trace directory is usually a tmpfs (/dev/shm, 64 MB in a
default Docker container), where a store into a page of a sparse file that the file system cannot supply
kills the writer with SIGBUS.  So a full file system refuses a ring (the thread gets a smaller one, or
none) instead of crashing the program.  A thread starts with a small ring and moves to a larger one each
time it fills one before the collector drains it, so quiet threads hold little.  Records no ring could take
are counted per process in a small file of its own (``<pid>.lost``), made when the process registers; the
collector adds them to the run's drops.  A finished thread's ring is marked closed and unmapped (which also
closes the file descriptor the mapping holds), so short-lived threads leave nothing open.

Tracing is on when the environment names a trace directory (``MPGUI_TRACE_DIR``), which children inherit.
With tracing off, ``emit`` is a no-op and the traced primitives bind the stdlib's fast methods instead.

This module must stay importable without Qt and cheap to import: it is imported in every worker.
"""
import atexit
import errno
import itertools
import json
import mmap
import os
import struct
import sys
import threading
import time
import weakref

from .events import BLOCKED_NS, RECORD_FORMAT, RECORD_SIZE, Kind

TRACE_ENV = "MPGUI_TRACE_DIR"
RING_ENV = "MPGUI_TRACE_RING"
#: ``0`` here switches call sites off (``CALLSITES``) for this process and the children it starts.
CALLSITES_ENV = "MPGUI_TRACE_CALLSITES"

#: Records in a thread's largest ring (a power of two; ``MPGUI_TRACE_RING`` overrides).  131,072 records are
#: 6 MiB, enough to ride out 80 ms without a collector pass at 1.5 million events/s from one thread.
DEFAULT_RING_RECORDS = 1 << 17
#: The smallest ring (48 KiB): the last size tried when space is short.
MIN_RING_RECORDS = 1 << 10
#: Records in a thread's first ring.  A thread that fills a ring before the collector drains it moves to
#: one RING_GROWTH times larger (up to the largest size): a busy thread reaches the full ring within
#: milliseconds, a quiet one keeps 48 KiB reserved.
FIRST_RING_RECORDS = MIN_RING_RECORDS
RING_GROWTH = 4
#: Rings leave part of the trace directory's file system free (an eighth of it, at most 64 MiB): the
#: program's own semaphores and shared memory live in /dev/shm too.
FS_HEADROOM_DIVISOR = 8
FS_HEADROOM_MAX = 64 << 20
#: After a ring could not be made or grown, the thread tries again no sooner than this (the collector
#: frees the space of every ring it has drained and retired).
RING_RETRY_NS = 200_000_000
#: errno values that mean "no room for a ring this size": a smaller one may still fit.
_NO_ROOM = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.ENOMEM, errno.EFBIG)
                     if e is not None)

# Ring file header (little-endian), 128 bytes, then ``capacity`` records.
HEADER_SIZE = 128
MAGIC = b"MPGRING1"
HEADER_FORMAT = "<8sIIQqqQQQqq"   # magic, version, record size, capacity, pid, tid, read_idx, dropped,
HEADER_VERSION = 1                # closed, t_perf, t_wall
OFF_READ_IDX = 40
OFF_DROPPED = 48
OFF_CLOSED = 56

# A process's lost-records file, ``<pid>.lost``: magic, version, pid, then the count of records it lost
# with no ring to take them.
LOST_SUFFIX = ".lost"
LOST_MAGIC = b"MPGLOST1"
LOST_FORMAT = "<8sIIqQ"
LOST_VERSION = 1
OFF_LOST = 24
LOST_FILE_SIZE = 4096

# One pack_into per record.  struct zeroes the record first and then writes the fields in order, so the
# sequence number (the last field) is stored last: the collector, which reads sequence numbers before it
# copies records, never takes a record whose sequence number it sees before the rest of it.
_pack = struct.Struct(RECORD_FORMAT).pack_into
_u64 = struct.Struct("<Q")
_now = time.perf_counter_ns


class _Ring:
    """One thread's ring: the writer's view.  Only its own thread touches it (and its own thread's signal
    handlers, which take the next slot).  Held by the thread's slot in ``_tls`` alone, so it goes away when
    the thread ends or moves to a larger ring."""

    __slots__ = ("mm", "head", "limit", "mask", "cap", "dropped", "path", "pid", "retry_at", "__weakref__")

    def __init__(self, path, mm, cap):
        self.path = path
        self.mm = mm
        self.pid = os.getpid()
        self.head = 0
        self.cap = cap
        self.mask = cap - 1
        self.limit = cap
        self.dropped = 0
        self.retry_at = 0

    def make_room(self):
        """Called when ``head`` reached ``limit``.  Returns the ring to write the record into: this one, if
        the collector made room meanwhile; a larger one that replaces it; or None: the record is dropped and
        counted in this ring's header."""
        read_idx = _u64.unpack_from(self.mm, OFF_READ_IDX)[0]
        self.limit = read_idx + self.cap
        if self.head < self.limit:
            return self
        if self.cap < _ring_records and _now() >= self.retry_at:
            self.retry_at = _now() + RING_RETRY_NS      # also keeps a signal handler from growing it again
            bigger = _make_ring(min(self.cap * RING_GROWTH, _ring_records), self.cap * 2)
            if bigger is not None:
                self.finish()          # the collector drains what this one holds, then deletes it
                _adopt(bigger)         # this ring is unmapped when the last frame using it lets go
                return bigger
        self.dropped += 1
        _u64.pack_into(self.mm, OFF_DROPPED, self.dropped)
        return None

    def finish(self):
        """Mark the ring closed: the collector retires it once drained.  Only the process that made it may:
        a forked child's copy of its parent's ring is the parent's."""
        try:
            if self.pid == os.getpid():
                _u64.pack_into(self.mm, OFF_CLOSED, 1)
        except (ValueError, TypeError):
            pass

    def __del__(self):
        # The thread ended (its thread-local slot was cleared) or moved to a larger ring: mark this one
        # closed and unmap it, which also closes the file descriptor CPython's mmap keeps.
        try:
            self.finish()
            self.mm.close()
        except Exception:
            pass


class _NoRing:
    """Stands in for a ring that could not be made: every record is lost, and counted in the process's
    lost-records file.  Every RING_RETRY_NS it tries again to make a ring."""
    __slots__ = ("head", "limit", "retry_at")

    def __init__(self):
        self.head = 0
        self.limit = 0
        self.retry_at = _now() + RING_RETRY_NS

    def make_room(self):
        if _now() >= self.retry_at:
            self.retry_at = _now() + RING_RETRY_NS
            if _state.lost_mm is None and ENABLED:
                _open_lost_file()          # registration could not make it either: try again too
            r = _make_ring(FIRST_RING_RECORDS, MIN_RING_RECORDS)
            if r is not None:
                _adopt(r)
                return r
        _count_lost(1)
        return None

    def finish(self):
        pass


class _State:
    """Per-process recorder state, rebuilt in a forked child."""

    def __init__(self):
        self.pid = os.getpid()
        self.rings: "weakref.WeakSet[_Ring]" = weakref.WeakSet()     # the live rings of this process's threads
        self.ring_seq = itertools.count()
        self.lost = 0                      # records lost with no ring to take them ...
        self.lost_mm = None                # ... and the mapped file that tells the collector
        self.meta_fd = None
        self.registered = False
        self.ids = itertools.count(1)
        self.names = {}
        self.strings = {}
        self.sites = {}                    # (code object, instruction) -> string id of "path:line in function"
        # Reentrant: a signal handler may record (register, switch rings, count a loss) while its own thread
        # holds the lock.
        self.lock = threading.RLock()


trace_dir = os.environ.get(TRACE_ENV) or None
ENABLED = bool(trace_dir) and os.path.isdir(trace_dir or "")
#: Whether a wait that blocks records where (CALLSITE).  Only blocking paths pay for it: an uncontended
#: acquire never looks at its stack.
CALLSITES = os.environ.get(CALLSITES_ENV, "1") != "0"
_role = None
_name = None
_tls = threading.local()
_state = _State()
try:
    _ring_records = int(os.environ.get(RING_ENV) or DEFAULT_RING_RECORDS)
except ValueError:
    _ring_records = DEFAULT_RING_RECORDS
if _ring_records < MIN_RING_RECORDS or _ring_records & (_ring_records - 1):
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
    if h >= r.limit:
        r = r.make_room()
        if r is None:
            return
        h = r.head
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
    if h >= r.limit:
        r = r.make_room()
        if r is None:
            return
        h = r.head
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
    """This thread's first ring; None (and the record counted as lost) when none can be made."""
    if not ENABLED:
        return None
    _ensure_registered()
    r = _make_ring(FIRST_RING_RECORDS, MIN_RING_RECORDS)
    if r is None:
        _tls.ring = _NoRing()
        _count_lost(1)
        return None
    _adopt(r)
    return r


def _adopt(r):
    """Make ``r`` this thread's ring."""
    st = _state
    with st.lock:
        st.rings.add(r)
    _tls.ring = r


def _make_ring(records, smallest):
    """A new ring for this thread with all its pages reserved: ``records`` records, or half as many, and so
    on down to ``smallest``, while the file system has no room for more.  None if no ring could be made
    (no room even for the smallest, no file descriptor left, the trace directory gone)."""
    directory = trace_dir
    if not directory:                      # tracing was switched off meanwhile
        return None
    cap = min(records, _ring_records)
    smallest = min(max(smallest, MIN_RING_RECORDS), cap)
    while cap >= smallest:
        try:
            return _create_ring(directory, cap)
        except OSError as e:
            if e.errno not in _NO_ROOM:
                return None
        cap //= 2
    return None


def _create_ring(directory, cap):
    """Create a ring file of ``cap`` records in ``directory`` and publish it atomically (rename) so the
    collector never sees a half-written header.  Raises OSError, leaving nothing behind."""
    st = _state
    tid = threading.get_native_id()
    size = HEADER_SIZE + cap * RECORD_SIZE
    if not _room_for(directory, size):
        raise OSError(errno.ENOSPC, "no room for a %d-byte ring beside the program's own files" % size)
    base = os.path.join(directory, "%d-%d-%d" % (st.pid, tid, next(st.ring_seq)))
    tmp = base + ".tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    mm = None
    try:
        _reserve(fd, size)
        header = struct.pack(HEADER_FORMAT, MAGIC, HEADER_VERSION, RECORD_SIZE, cap, st.pid, tid,
                             0, 0, 0, _now(), time.time_ns())
        _write_at(fd, header, 0)
        mm = mmap.mmap(fd, size)
        os.replace(tmp, base + ".ring")
    except BaseException:
        if mm is not None:
            mm.close()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        os.close(fd)
    return _Ring(base + ".ring", mm, cap)


def _reserve(fd, size):
    """Give the file ``size`` bytes of real pages now, so that a full file system says so here (OSError
    ENOSPC) instead of sending SIGBUS to the first store into a page it cannot supply."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
            return
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, getattr(errno, "ENOSYS", None)):
                raise
    zeros = bytes(min(size, 1 << 20))          # no fallocate here: write the zeros
    done = 0
    while done < size:
        done += _write_at(fd, zeros[:size - done], done)


def _write_at(fd, data, offset):
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.write(fd, data)


def _room_for(directory, size):
    """Whether a file of ``size`` bytes leaves the file system of ``directory`` its headroom."""
    try:
        vfs = os.statvfs(directory)
    except (AttributeError, OSError):          # no statvfs (Windows): the reservation alone decides
        return True
    headroom = min(vfs.f_blocks * vfs.f_frsize // FS_HEADROOM_DIVISOR, FS_HEADROOM_MAX)
    return vfs.f_bavail * vfs.f_frsize - size >= headroom


def _open_lost_file():
    """Map this process's lost-records file (made when the process registers, while there is still a file
    descriptor and a page for it).  Keeps the count of an earlier file of this process in this directory."""
    st = _state
    directory = trace_dir
    if st.lost_mm is not None or not directory:
        return
    path = os.path.join(directory, "%d%s" % (st.pid, LOST_SUFFIX))
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        try:
            fd = _create_lost_file(path)
        except OSError:
            return
    except OSError:
        return
    try:
        mm = mmap.mmap(fd, LOST_FILE_SIZE)
    except (OSError, ValueError):
        return
    finally:
        os.close(fd)
    with st.lock:
        if mm[:len(LOST_MAGIC)] == LOST_MAGIC:
            st.lost += _u64.unpack_from(mm, OFF_LOST)[0]
        _u64.pack_into(mm, OFF_LOST, st.lost)
        st.lost_mm = mm


def _create_lost_file(path):
    """Make the lost-records file (reserved, header written, then renamed into place); returns its fd."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _reserve(fd, LOST_FILE_SIZE)
        _write_at(fd, struct.pack(LOST_FORMAT, LOST_MAGIC, LOST_VERSION, 0, _state.pid, 0), 0)
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return fd


def _count_lost(n):
    """Count ``n`` records this process lost with no ring to take them."""
    st = _state
    with st.lock:
        st.lost += n
        if st.lost_mm is not None:
            _u64.pack_into(st.lost_mm, OFF_LOST, st.lost)


def _write_meta(record):
    """Append one JSON line to this process's meta file (registrations: process, objects, strings)."""
    st = _state
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    directory = trace_dir
    if directory is None:                 # tracing was switched off meanwhile
        return
    with st.lock:
        if st.meta_fd is None:
            try:
                st.meta_fd = os.open(os.path.join(directory, "%d.meta" % st.pid),
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
    _open_lost_file()


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


# -- call sites: where in the program a wait blocked ---------------------------------------------------------
_CALLSITE = int(Kind.CALLSITE)
#: Modules whose frames are the machinery of a wait, not the program's: core's own (and ``multiprocessing`` as
#: the stand-in names core), and the stdlib's multiprocessing, threading and queue.
_MACHINERY = ("core", "multiprocessing", "threading", "queue")
#: Modules of core that wrap the primitives themselves: never a wait's site, even when no frame of the
#: program's is on the stack (a thread of core's own waiting).
_WRAPPERS = frozenset(("core.synchronize", "core.queues", "core.connection", "core.managers", "core.trace.recorder"))
#: code object -> 2 for a wrapper's frame, 1 for other machinery, 0 for the program's (decided once per code).
_frame_role: dict = {}


def _role_of(frame):
    name = frame.f_globals.get("__name__") or ""
    if name in _WRAPPERS:
        return 2
    return 1 if name.partition(".")[0] in _MACHINERY else 0


def call_site(frame=None):
    """The string id of ``"path:line in function"`` for where the calling thread waits: its innermost frame
    outside core and the stdlib's multiprocessing, threading and queue modules; for a thread that runs only
    such code (one of core's own), its innermost frame outside the primitives' wrappers.  Interned once per
    line and process, so a hot contended loop pays one short stack walk and a few dict lookups per wait."""
    f = frame or sys._getframe(1)
    fallback = None
    roles = _frame_role
    while f is not None:
        code = f.f_code
        role = roles.get(code)
        if role is None:
            role = roles[code] = _role_of(f)
        if not role:
            break
        if fallback is None and role == 1:
            fallback = f
        f = f.f_back
    if f is None:
        f = fallback or frame or sys._getframe(1)
        code = f.f_code
    # Keyed by the instruction, which costs nothing to read; the line is worked out once per instruction.
    key = (code, f.f_lasti)
    sites = _state.sites
    sid = sites.get(key)
    if sid is None:
        sid = sites[key] = intern("%s:%d in %s" % (code.co_filename, f.f_lineno,
                                                   getattr(code, "co_qualname", code.co_name)))
    return sid


def record_call_site(t, uid):
    """Record (CALLSITE at ``t``) where the calling thread blocks on ``uid``.  Called by core's traced objects
    on their blocking paths only, right before the record of the wait (see ``schema``: CALLSITE)."""
    if CALLSITES and ENABLED:
        _emit_at_on(t, _CALLSITE, uid, call_site(sys._getframe(1)))


def wait_ended(t0, uid):
    """The time now, at the end of a call on ``uid`` that began at ``t0`` and may have blocked (a queue's get,
    a pipe's recv...): when it took ``events.BLOCKED_NS`` or more, the call site is recorded at that instant,
    ready for the record of the call that the caller makes next with the same time.  (Locks, conditions,
    events, barriers and joins know when they start to block: ``record_call_site``.)"""
    t1 = _now()
    if t1 - t0 >= BLOCKED_NS and CALLSITES and ENABLED:
        _emit_at_on(t1, _CALLSITE, uid, call_site(sys._getframe(1)))
    return t1


def set_call_sites(on):
    """Switch call sites on or off for this process and the children it starts from now on."""
    global CALLSITES
    CALLSITES = bool(on)
    os.environ[CALLSITES_ENV] = "1" if on else "0"


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
    """Mark this process's rings finished, so the collector can retire them as soon as they are read.  They
    stay mapped: a thread still running (a daemon, a finalizer) may record a little more."""
    st = _state
    with st.lock:
        rings = list(st.rings)
    for r in rings:
        r.finish()
    if st.lost and st.lost_mm is None and ENABLED:
        _open_lost_file()                  # a last chance to report what was lost


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


def _refresh_state(forked=False):
    global _state
    old = _state
    _state = _State()
    _state.ids = old.ids
    if old.meta_fd is not None:
        try:
            os.close(old.meta_fd)
        except OSError:
            pass
    if old.lost_mm is not None:
        if forked:                         # the only thread: and the lock may be held by one that is gone
            old.lost_mm.close()
        else:
            with old.lock:                 # a thread may be counting a loss into it right now
                old.lost_mm.close()
                old.lost_mm = None
    _tls.__dict__.pop("ring", None)


def _after_fork_in_child():
    """A forked child starts with its own rings and meta file; it keeps the uid counter so ids stay unique."""
    global _role, _name
    old = _state
    _refresh_state(forked=True)
    _state.names = dict(old.names)
    _role = _name = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(close_rings)
