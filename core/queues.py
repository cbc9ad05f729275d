"""Traced queues: the stdlib's Queue, JoinableQueue and SimpleQueue with puts, gets and payloads recorded.

* ``put`` records how long the caller was blocked (a bounded queue that is full blocks) and the depth after;
* the feeder thread records each pickled payload's size as it writes it to the pipe;
* ``get`` records the time blocked, the payload size and the depth after;
* JoinableQueue adds ``task_done`` (with the unfinished count) and ``join`` (with the time blocked);
* a put or get that blocked records where the program waited (CALLSITE, ``recorder.wait_ended``) right
  before its own record; a join that must wait, before it waits.

The queues' own locks and semaphores are untraced stdlib objects: the trace shows the queue operations a
program performs, not the stdlib's plumbing.  Pickling keeps each queue's uid and name.
"""
from queue import Empty, Full

from multiprocessing import queues as _std
from multiprocessing.reduction import ForkingPickler

from .synchronize import _init_trace, _std_context
from . import _stdlib
from .trace import recorder
from .trace.events import Kind

_stdlib.require('queues')    # the stdlib internals this module builds on (core/_stdlib.py)

__all__ = ["Queue", "SimpleQueue", "JoinableQueue"]


def _depth(q):
    try:
        return q._maxsize - q._sem._semlock._get_value()
    except (NotImplementedError, AttributeError):
        return -1


class _Identity:
    """A traced queue's uid and name: shown as ``name``, and carried along when the queue is pickled."""

    @property
    def name(self):
        return self._trace_name

    def __getstate__(self):
        return super().__getstate__() + (self._trace_uid, self._trace_name)

    def __setstate__(self, state):
        self._trace_uid, self._trace_name = state[-2:]
        super().__setstate__(state[:-2])


class Queue(_Identity, _std.Queue):

    _trace_kind = "Queue"

    def __init__(self, maxsize=0, *, ctx, name=None):
        _init_trace(self, self._trace_kind, name)
        self._trace_nbytes = [0]
        super().__init__(maxsize, ctx=_std_context(ctx))

    def __setstate__(self, state):
        self._trace_nbytes = [0]
        super().__setstate__(state)

    def _reset(self, after_fork=False):
        super()._reset(after_fork)
        if recorder.ENABLED:
            # Closures over the pipe ends and a size cell, not over self: no reference cycle.
            uid = self._trace_uid
            send_bytes = self._send_bytes
            recv_bytes = self._recv_bytes
            last_size = self._trace_nbytes = [0]

            def traced_send_bytes(buf, *args):
                send_bytes(buf, *args)
                recorder.emit(Kind.QUEUE_SEND, uid, len(buf))

            def traced_recv_bytes(*args):
                res = recv_bytes(*args)
                last_size[0] = len(res)
                return res

            self._send_bytes = traced_send_bytes
            self._recv_bytes = traced_recv_bytes

    def put(self, obj, block=True, timeout=None):
        if not recorder.ENABLED:
            return super().put(obj, block, timeout)
        uid = self._trace_uid
        t0 = recorder.now()
        try:
            super().put(obj, block, timeout)
        except Full:
            t1 = recorder.wait_ended(t0, uid)
            recorder.emit_at(t1, Kind.QUEUE_FULL, uid, t1 - t0)
            raise
        t1 = recorder.wait_ended(t0, uid)
        recorder.emit_at(t1, Kind.QUEUE_PUT, uid, t1 - t0, _depth(self))

    def get(self, block=True, timeout=None):
        if not recorder.ENABLED:
            return super().get(block, timeout)
        uid = self._trace_uid
        t0 = recorder.now()
        try:
            obj = super().get(block, timeout)
        except Empty:
            t1 = recorder.wait_ended(t0, uid)
            recorder.emit_at(t1, Kind.QUEUE_EMPTY, uid, t1 - t0)
            raise
        t1 = recorder.wait_ended(t0, uid)
        recorder.emit_at(t1, Kind.QUEUE_GET, uid, t1 - t0, self._trace_nbytes[0], _depth(self))
        return obj


class JoinableQueue(Queue, _std.JoinableQueue):

    _trace_kind = "JoinableQueue"

    def __init__(self, maxsize=0, *, ctx, name=None):
        _init_trace(self, self._trace_kind, name)
        self._trace_nbytes = [0]
        _std.JoinableQueue.__init__(self, maxsize, ctx=_std_context(ctx))

    def task_done(self):
        super().task_done()
        if recorder.ENABLED:
            try:
                left = self._unfinished_tasks._semlock._get_value()
            except NotImplementedError:
                left = -1
            recorder.emit(Kind.QUEUE_TASK_DONE, self._trace_uid, left)

    def join(self):
        if not recorder.ENABLED:
            return super().join()
        uid = self._trace_uid
        t0 = recorder.now()
        recorder.emit_at(t0, Kind.QUEUE_JOIN_WAIT, uid)
        # The stdlib's join, line for line, so that only the branch that blocks records a call site.
        with self._cond:
            if not self._unfinished_tasks._semlock._is_zero():
                recorder.record_call_site(recorder.now(), uid)
                self._cond.wait()
        recorder.emit(Kind.QUEUE_JOIN, uid, recorder.now() - t0)


class SimpleQueue(_Identity, _std.SimpleQueue):

    def __init__(self, *, ctx, name=None):
        _init_trace(self, "SimpleQueue", name)
        super().__init__(ctx=_std_context(ctx))


    def get(self):
        if not recorder.ENABLED:
            return super().get()
        t0 = recorder.now()
        with self._rlock:
            res = self._reader.recv_bytes()
        t1 = recorder.wait_ended(t0, self._trace_uid)
        recorder.emit_at(t1, Kind.QUEUE_GET, self._trace_uid, t1 - t0, len(res), -1)
        # unserialize the data after having released the lock
        return ForkingPickler.loads(res)

    def put(self, obj):
        if not recorder.ENABLED:
            return super().put(obj)
        t0 = recorder.now()
        obj = ForkingPickler.dumps(obj)
        if self._wlock is None:
            self._writer.send_bytes(obj)
        else:
            with self._wlock:
                self._writer.send_bytes(obj)
        t1 = recorder.wait_ended(t0, self._trace_uid)
        recorder.emit_at(t1, Kind.QUEUE_PUT, self._trace_uid, t1 - t0, -1)
        recorder.emit(Kind.QUEUE_SEND, self._trace_uid, len(obj))


