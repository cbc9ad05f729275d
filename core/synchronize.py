"""Traced synchronisation primitives: the stdlib's classes, with every acquire, release, wait and notify
recorded.

Each class subclasses its ``multiprocessing.synchronize`` twin, so semantics, exceptions and pickling rules
(shareable only while spawning) are the stdlib's.  What changes:

* ``_make_methods`` binds traced ``acquire``/``release`` when tracing is on, and the stdlib's C methods
  directly when it is off (the CPython way: with nothing to record, the lock is the stdlib's lock);
* an uncontended acquire records one event (ACQ_OK, wait 0); a contended one records the request first, so
  a live view can show who is waiting now;
* a wait that blocks records where the program waited (``recorder.record_call_site``: CALLSITE) before it
  blocks: a contended acquire, a condition wait, an event wait on an event not set, a barrier arrival that is
  not the last.  Waits that do not block never look at their stack;
* every object has a stable ``uid`` and a name (``Lock(name="db")`` or ``Lock#3``) that survive pickling;
* internal helpers (a Condition's semaphores, an Event's condition) are untraced stdlib objects, so the
  trace shows what the program did, not how the stdlib implements it.
"""
import sys
import threading

from multiprocessing import synchronize as _std

from . import _stdlib
from .trace import recorder
from .trace.events import Kind

_stdlib.require('synchronize')    # the stdlib internals this module builds on (core/_stdlib.py)

__all__ = ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier"]

_NO_TIMEOUT = -1
# Plain ints for the hot path (an IntEnum member costs a lookup and an __index__ call per use).
_ACQ_REQUEST = int(Kind.ACQ_REQUEST)
_ACQ_OK = int(Kind.ACQ_OK)
_ACQ_TIMEOUT = int(Kind.ACQ_TIMEOUT)
_RELEASE = int(Kind.RELEASE)
_now = recorder.now
# Traced methods are bound only while tracing is on, so they call the recording function directly.
_emit_at = recorder._emit_at_on
_record_call_site = recorder.record_call_site


def _timeout_ns(timeout):
    return _NO_TIMEOUT if timeout is None else int(max(timeout, 0) * 1e9)


def _std_context(ctx):
    """The stdlib context behind ``ctx`` (core's contexts carry it as ``_stdlib``), for untraced internals."""
    if ctx is None:
        from .context import _default_context
        ctx = _default_context.get_context()
    return getattr(ctx, "_stdlib", ctx)


def _init_trace(obj, kind, name, **extra):
    obj._trace_uid = recorder.new_uid()
    obj._trace_name = name or recorder.default_name(kind)
    if recorder.ENABLED:
        recorder.register_object(obj._trace_uid, kind, obj._trace_name, **extra)


def _traced_methods(uid, semlock, value, count):
    """Traced acquire/release for one SemLock, as closures over the C object and the uid only: binding
    methods of the Python wrapper instead would make a reference cycle, and the stdlib relies on prompt
    garbage collection to unlink named semaphores (spawn, forkserver)."""
    sl_acquire = semlock.acquire
    sl_release = semlock.release
    acquired_at = [0]           # when this process last took it from free (for a lock: the one holder)

    def acquire(block=True, timeout=None):
        if sl_acquire(False, timeout):          # timeout passed along: bad values raise as the stdlib's
            # The clock is read once the lock is ours: a release is recorded before the lock is free, so
            # every acquisition is recorded after the release that let it in, never overlapping its hold.
            t0 = _now()
            depth = 1 if count is None else count()
            if depth == 1:                      # a recursive lock's hold runs from its outer acquisition
                acquired_at[0] = t0
            _emit_at(t0, _ACQ_OK, uid, 0, -1 if value is None else value(), depth)
            return True
        t0 = _now()
        if not block:
            _emit_at(t0, _ACQ_TIMEOUT, uid, 0)
            return False
        _record_call_site(t0, uid)
        _emit_at(t0, _ACQ_REQUEST, uid, _timeout_ns(timeout))
        ok = sl_acquire(True, timeout)
        t1 = _now()
        if ok:
            depth = 1 if count is None else count()
            if depth == 1:
                acquired_at[0] = t1
            _emit_at(t1, _ACQ_OK, uid, t1 - t0, -1 if value is None else value(), depth)
        else:
            _emit_at(t1, _ACQ_TIMEOUT, uid, t1 - t0)
        return ok

    def release():
        t = _now()              # before releasing: whoever gets the lock next got it after this instant
        try:
            sl_release()
        except (ValueError, AssertionError):
            recorder.emit(Kind.RELEASE_ERROR, uid, 0, -1 if value is None else value())
            raise
        if value is None:       # a lock: one holder, so the hold time is known here
            t_acq = acquired_at[0]
            _emit_at(t, _RELEASE, uid, t - t_acq if t_acq else -1, -1, 0 if count is None else count())
        else:                   # a semaphore: holders overlap; the model pairs acquire and release
            _emit_at(t, _RELEASE, uid, -1, value(), 0)

    return acquire, release


class _TracedSemLock(_std.SemLock):
    """Shared machinery of the four SemLock-based primitives."""

    _trace_kind = "SemLock"
    _has_value = False       # record the semaphore value after each change
    _recursive = False

    def __init__(self, kind, value, maxvalue, *, ctx, name=None):
        # A semaphore says its initial value: how many may hold it at once.
        _init_trace(self, self._trace_kind, name, **({"value": value} if self._has_value else {}))
        _std.SemLock.__init__(self, kind, value, maxvalue, ctx=ctx)

    @property
    def name(self):
        """The name shown in the trace (``Lock#3`` unless given)."""
        return self._trace_name

    def _make_methods(self):
        sl = self._semlock
        if recorder.ENABLED and getattr(self, "_trace_uid", 0):
            value = sl._get_value if self._has_value and sys.platform != "darwin" else None
            self.acquire, self.release = _traced_methods(self._trace_uid, sl, value,
                                                         sl._count if self._recursive else None)
        else:
            self.acquire = sl.acquire
            self.release = sl.release

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *args):
        return self.release()

    def __getstate__(self):
        return (_std.SemLock.__getstate__(self), self._trace_uid, self._trace_name)

    def __setstate__(self, state):
        inner, self._trace_uid, self._trace_name = state
        _std.SemLock.__setstate__(self, inner)

class Semaphore(_TracedSemLock, _std.Semaphore):
    _trace_kind = "Semaphore"
    _has_value = True

    def __init__(self, value=1, *, ctx, name=None):
        _TracedSemLock.__init__(self, _std.SEMAPHORE, value, _std.SEM_VALUE_MAX, ctx=ctx, name=name)


class BoundedSemaphore(_TracedSemLock, _std.BoundedSemaphore):
    _trace_kind = "BoundedSemaphore"
    _has_value = True

    def __init__(self, value=1, *, ctx, name=None):
        _TracedSemLock.__init__(self, _std.SEMAPHORE, value, value, ctx=ctx, name=name)


class Lock(_TracedSemLock, _std.Lock):
    _trace_kind = "Lock"

    def __init__(self, *, ctx, name=None):
        _TracedSemLock.__init__(self, _std.SEMAPHORE, 1, 1, ctx=ctx, name=name)


class RLock(_TracedSemLock, _std.RLock):
    _trace_kind = "RLock"
    _recursive = True

    def __init__(self, *, ctx, name=None):
        _TracedSemLock.__init__(self, _std.RECURSIVE_MUTEX, 1, 1, ctx=ctx, name=name)


class Condition(_std.Condition):
    """Condition variable; its lock is a traced RLock (or the lock you pass), its internals are not."""

    def __init__(self, lock=None, *, ctx, name=None):
        _init_trace(self, "Condition", name)
        self._lock = lock or RLock(ctx=ctx, name=self._trace_name + ".lock")
        std = _std_context(ctx)
        self._sleeping_count = std.Semaphore(0)
        self._woken_count = std.Semaphore(0)
        self._wait_semaphore = std.Semaphore(0)
        self._make_methods()

    @property
    def name(self):
        return self._trace_name

    def __getstate__(self):
        return (super().__getstate__(), self._trace_uid, self._trace_name)

    def __setstate__(self, state):
        inner, self._trace_uid, self._trace_name = state
        super().__setstate__(inner)

    def wait(self, timeout=None):
        if not recorder.ENABLED:
            return super().wait(timeout)
        t0 = recorder.now()
        if timeout is None or timeout > 0:         # it blocks until notified (or timed out)
            _record_call_site(t0, self._trace_uid)
        recorder.emit_at(t0, Kind.COND_WAIT, self._trace_uid, _timeout_ns(timeout))
        ok = super().wait(timeout)
        recorder.emit(Kind.COND_WOKEN, self._trace_uid, recorder.now() - t0, int(bool(ok)))
        return ok

    def notify(self, n=1):
        if recorder.ENABLED:
            recorder.emit(Kind.COND_NOTIFY, self._trace_uid, -1 if n >= sys.maxsize else n)
        return super().notify(n)


class Event(_std.Event):
    """Event whose set, clear and waits are recorded; its condition and flag are untraced internals."""

    def __init__(self, *, ctx, name=None):
        _init_trace(self, "Event", name)
        std = _std_context(ctx)
        self._cond = std.Condition(std.Lock())
        self._flag = std.Semaphore(0)

    @property
    def name(self):
        return self._trace_name

    def set(self):
        if not recorder.ENABLED:
            return super().set()
        t = recorder.now()          # before the waiters wake: each records its end after this instant
        super().set()
        recorder.emit_at(t, Kind.EVENT_SET, self._trace_uid)

    def clear(self):
        super().clear()
        if recorder.ENABLED:
            recorder.emit(Kind.EVENT_CLEAR, self._trace_uid)

    def wait(self, timeout=None):
        if not recorder.ENABLED:
            return super().wait(timeout)
        uid = self._trace_uid
        t0 = recorder.now()
        recorder.emit_at(t0, Kind.EVENT_WAIT, uid, _timeout_ns(timeout))
        # The stdlib's wait, line for line, so that only the branch that blocks records a call site.
        with self._cond:
            if self._flag.acquire(False):
                self._flag.release()
            else:
                if timeout is None or timeout > 0:
                    _record_call_site(recorder.now(), uid)
                self._cond.wait(timeout)
            flag = self._flag.acquire(False)
            if flag:
                self._flag.release()
        recorder.emit(Kind.EVENT_WAIT_END, uid, recorder.now() - t0, int(flag))
        return flag


class Barrier(_std.Barrier):
    """Barrier whose arrivals, passes (with the generation), breaks, aborts and resets are recorded."""

    def __init__(self, parties, action=None, timeout=None, *, ctx, name=None):
        import struct
        from multiprocessing.heap import BufferWrapper
        # its parties name what its arrivals count up to (an int only: anything else is the stdlib's to refuse)
        _init_trace(self, "Barrier", name, **({"parties": parties} if type(parties) is int else {}))
        wrapper = BufferWrapper(struct.calcsize('i') * 3)    # state, count, and our generation counter
        cond = _std_context(ctx).Condition()
        self.__setstate__((parties, action, timeout, cond, wrapper, self._trace_uid, self._trace_name))
        self._state = 0
        self._count = 0
        self._array[2] = 0

    @property
    def name(self):
        return self._trace_name

    def __setstate__(self, state):
        self._trace_uid, self._trace_name = state[5], state[6]
        super().__setstate__(state[:5])

    def __getstate__(self):
        return super().__getstate__() + (self._trace_uid, self._trace_name)

    @property
    def generation(self):
        """How many times the barrier has released its parties."""
        return self._array[2]

    def _release(self):
        self._array[2] += 1
        return super()._release()

    def wait(self, timeout=None):
        if not recorder.ENABLED:
            return super().wait(timeout)
        uid = self._trace_uid
        t0 = recorder.now()
        with self._cond:            # an RLock: super().wait() takes it again and its waits release it fully
            gen = self._array[2]
            if self._state or self._count + 1 < self._parties:     # not the arrival that releases the rest
                _record_call_site(t0, uid)
            recorder.emit_at(t0, Kind.BARRIER_ARRIVE, uid, self._parties, gen, self._count)
            try:
                index = super().wait(timeout)
            except threading.BrokenBarrierError:
                recorder.emit(Kind.BARRIER_BROKEN, uid, recorder.now() - t0, gen)
                raise
        recorder.emit(Kind.BARRIER_PASS, uid, recorder.now() - t0, gen, index)
        return index

    def abort(self):
        if recorder.ENABLED:
            recorder.emit(Kind.BARRIER_ABORT, self._trace_uid)
        return super().abort()

    def reset(self):
        if recorder.ENABLED:
            recorder.emit(Kind.BARRIER_RESET, self._trace_uid)
        return super().reset()
