"""Traced Pipe ends: the stdlib's Connection with every message's size and blocking time recorded.

``Pipe(duplex=True)`` builds the stdlib's pair and gives each end a traced class; the two private methods all
public calls funnel through (``_send_bytes`` and ``_recv_bytes``) record PIPE_SEND and PIPE_RECV, so send,
send_bytes, recv, recv_bytes and recv_bytes_into all behave exactly as the stdlib's (EOFError when the other
end is closed, BufferTooShort, the large-payload limits).  A send or recv that blocked records where the
program waited (CALLSITE, ``recorder.wait_ended``) right before its own record.  Ends pickle into children
with the stdlib's reducers and come back traced, keeping their uid and name.

Everything else in ``multiprocessing.connection`` (Listener, Client, wait) is re-exported unchanged.
"""
import sys

from multiprocessing import connection as _std
from multiprocessing import reduction as _reduction
from multiprocessing.connection import (Client, Listener, answer_challenge, deliver_challenge,  # noqa: F401
                                        wait)

from . import _stdlib
from ._stdlib import extra_reducers
from .trace import recorder
from .trace.events import Kind

_stdlib.require('connection')    # the stdlib internals this module builds on (core/_stdlib.py)

__all__ = ["Client", "Listener", "Pipe", "wait", "Connection"]


class _TracedConnection:
    """Mixin over a stdlib connection class."""

    _trace_uid = 0
    _trace_name = ""

    @property
    def name(self):
        return self._trace_name

    def _send_bytes(self, buf):
        if not recorder.ENABLED or not self._trace_uid:
            return super()._send_bytes(buf)
        t0 = recorder.now()
        super()._send_bytes(buf)
        t1 = recorder.wait_ended(t0, self._trace_uid)
        recorder.emit_at(t1, Kind.PIPE_SEND, self._trace_uid, memoryview(buf).nbytes, t1 - t0)

    def _recv_bytes(self, maxsize=None):
        if not recorder.ENABLED or not self._trace_uid:
            return super()._recv_bytes(maxsize)
        t0 = recorder.now()
        buf = super()._recv_bytes(maxsize)
        t1 = recorder.wait_ended(t0, self._trace_uid)
        recorder.emit_at(t1, Kind.PIPE_RECV, self._trace_uid, buf.tell() if buf is not None else -1, t1 - t0)
        return buf

    def close(self):
        if recorder.ENABLED and self._trace_uid and self._handle is not None:
            recorder.emit(Kind.PIPE_CLOSE, self._trace_uid)
        super().close()


class Connection(_TracedConnection, _std.Connection):
    """A traced socket/pipe connection (Unix), or a traced socket connection (Windows)."""


_TRACED = {_std.Connection: Connection}

if sys.platform == "win32":
    class PipeConnection(_TracedConnection, _std.PipeConnection):
        """A traced named-pipe connection (Windows)."""

    _TRACED[_std.PipeConnection] = PipeConnection


def _make_traced(conn, uid, name):
    conn.__class__ = _TRACED[type(conn)]
    conn._trace_uid = uid
    conn._trace_name = name
    return conn


def Pipe(duplex=True, *, name=None):
    """Returns a pair (conn1, conn2) of traced Connection objects connected by a pipe.

    With ``duplex=False`` conn1 only receives and conn2 only sends, as in the stdlib.
    """
    c1, c2 = _std.Pipe(duplex)
    base = name or recorder.default_name("Pipe")
    ends = []
    for i in range(2):
        uid = recorder.new_uid()
        ends.append((uid, "%s[%d]" % (base, i)))
    for (uid, end_name), peer in zip(ends, reversed(ends)):
        recorder.register_object(uid, "Connection", end_name, pipe=base, peer=peer[0], duplex=bool(duplex))
    return _make_traced(c1, *ends[0]), _make_traced(c2, *ends[1])


def _rebuild_traced(rebuild, args, uid, name):
    return _make_traced(rebuild(*args), uid, name)


def _reduce_traced(conn):
    base = type(conn).__mro__[2]          # the stdlib class: (Traced class, mixin, stdlib class, ...)
    rebuild, args = extra_reducers[base](conn)
    return _rebuild_traced, (rebuild, args, conn._trace_uid, conn._trace_name)


for _cls in _TRACED.values():
    _reduction.register(_cls, _reduce_traced)
