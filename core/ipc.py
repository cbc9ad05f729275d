"""The four IPC kinds of the reference notes, as small traced helpers.

* ``FileChannel``: one process appends messages to a file, another reads them in order.
* ``SocketChannel``: messages over a socket: a connected pair (``SocketChannel.pair()``) or loopback TCP
  (``SocketChannel.listen()`` / ``SocketChannel.connect(address)``).
* shared memory: ``SharedMemory`` and ``ShareableList`` (re-exported from ``core.shared_memory``).
* ``SignalChannel``: send a signal to a process (``send``) and handle one (``handle``); Unix signals, and on
  Windows what it supports (SIGINT/SIGBREAK through console control events).

Each records what was sent and received, with sizes (IPC_SEND/IPC_RECV, SIGNAL_SEND/SIGNAL_RECV).
Messages are pickled objects framed by an 8-byte length.  Channels are picklable, so they can be handed to
child processes as Process arguments; a file channel's reader keeps its own position.
"""
import os
import pickle
import signal as _signal
import socket
import struct
import sys
import time

from .shared_memory import ShareableList, SharedMemory  # noqa: F401
from .trace import recorder
from .trace.events import IpcKind, Kind

__all__ = ["FileChannel", "SocketChannel", "SignalChannel", "SharedMemory", "ShareableList"]

_LEN = struct.Struct("<Q")

#: How long a file reader sleeps between looks at a file that has nothing new.
FILE_POLL_INTERVAL = 0.001


class _Channel:
    _trace_kind = "Channel"
    _ipc_kind = 0

    def _init_trace(self, name):
        self._trace_uid = recorder.new_uid()
        self.name = name or recorder.default_name(self._trace_kind)
        recorder.register_object(self._trace_uid, self._trace_kind, self.name)

    def _sent(self, n):
        if recorder.ENABLED:
            recorder.emit(Kind.IPC_SEND, self._trace_uid, n, self._ipc_kind)

    def _received(self, n):
        if recorder.ENABLED:
            recorder.emit(Kind.IPC_RECV, self._trace_uid, n, self._ipc_kind)


class FileChannel(_Channel):
    """Messages through a file: ``send`` appends a framed message, ``recv`` returns the next one in order.

    Appends use O_APPEND with one write per message, so concurrent writers never interleave a message.
    """

    _trace_kind = "FileChannel"
    _ipc_kind = IpcKind.FILE

    def __init__(self, path, name=None):
        self.path = os.fspath(path)
        self._offset = 0
        self._init_trace(name)
        open(self.path, "ab").close()

    def __getstate__(self):
        return {"path": self.path, "_offset": 0, "_trace_uid": self._trace_uid, "name": self.name}

    def send(self, obj):
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        return self.send_bytes(data)

    def send_bytes(self, data):
        data = bytes(data)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))
        try:
            os.write(fd, _LEN.pack(len(data)) + data)
        finally:
            os.close(fd)
        self._sent(len(data))
        return len(data)

    def recv_bytes(self, timeout=None):
        """The next message's bytes; waits for it up to ``timeout`` seconds (None: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                head = f.read(_LEN.size)
                if len(head) == _LEN.size:
                    (n,) = _LEN.unpack(head)
                    data = f.read(n)
                    if len(data) == n:
                        self._offset += _LEN.size + n
                        self._received(n)
                        return data
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("no message in %s within %s s" % (self.path, timeout))
            time.sleep(FILE_POLL_INTERVAL)

    def recv(self, timeout=None):
        return pickle.loads(self.recv_bytes(timeout))

    def poll(self):
        """Whether a whole message is waiting."""
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return False
        if size < self._offset + _LEN.size:
            return False
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            (n,) = _LEN.unpack(f.read(_LEN.size))
        return size >= self._offset + _LEN.size + n


class SocketChannel(_Channel):
    """Messages over a connected stream socket (a socketpair end, or a TCP connection on loopback)."""

    _trace_kind = "SocketChannel"
    _ipc_kind = IpcKind.SOCKET

    def __init__(self, sock, name=None):
        self.sock = sock
        self._init_trace(name)

    @classmethod
    def pair(cls, name=None):
        """Two connected channels (``socket.socketpair``)."""
        a, b = socket.socketpair()
        base = name or recorder.default_name(cls._trace_kind)
        return cls(a, base + "[0]"), cls(b, base + "[1]")

    @classmethod
    def listen(cls, host="127.0.0.1", port=0):
        """A listening TCP socket on loopback (by default); ``accept`` it with ``SocketChannel.accept``."""
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host, port))
        srv.listen(16)
        return srv

    @classmethod
    def accept(cls, server, timeout=None, name=None):
        server.settimeout(timeout)
        conn, _ = server.accept()
        conn.settimeout(None)
        if conn.family in (socket.AF_INET, getattr(socket, "AF_INET6", None)):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(conn, name)

    @classmethod
    def connect(cls, address, timeout=10.0, name=None):
        sock = socket.create_connection(address, timeout=timeout)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, name)

    def __reduce__(self):
        from multiprocessing.reduction import DupFd
        from multiprocessing import context
        context.assert_spawning(self)
        if sys.platform == "win32":
            return (_rebuild_socket_channel_win, (self.sock.share(os.getpid()), self._trace_uid, self.name))
        return (_rebuild_socket_channel, (DupFd(self.sock.fileno()), self.sock.family, self.sock.type,
                                          self._trace_uid, self.name))

    def send(self, obj):
        return self.send_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def send_bytes(self, data):
        data = memoryview(data).cast("B")
        # A small message goes in one write: two small writes on TCP would wait for a delayed ACK.
        if len(data) <= 65536:
            self.sock.sendall(_LEN.pack(len(data)) + bytes(data))
        else:
            self.sock.sendall(_LEN.pack(len(data)))
            self.sock.sendall(data)
        self._sent(len(data))
        return len(data)

    def _recv_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if k == 0:
                raise EOFError("the other end of %s closed the connection" % self.name)
            got += k
        return bytes(buf)

    def recv_bytes(self):
        (n,) = _LEN.unpack(self._recv_exact(_LEN.size))
        data = self._recv_exact(n)
        self._received(n)
        return data

    def recv(self):
        return pickle.loads(self.recv_bytes())

    def close(self):
        self.sock.close()

    def fileno(self):
        return self.sock.fileno()


def _rebuild_socket_channel(df, family, type_, uid, name):
    ch = SocketChannel.__new__(SocketChannel)
    ch.sock = socket.socket(family, type_, fileno=df.detach())
    ch._trace_uid, ch.name = uid, name
    return ch


def _rebuild_socket_channel_win(data, uid, name):      # pragma: no cover - Windows only
    ch = SocketChannel.__new__(SocketChannel)
    ch.sock = socket.fromshare(data)
    ch._trace_uid, ch.name = uid, name
    return ch


class SignalChannel(_Channel):
    """Signals between processes: ``send(pid, signum)`` and ``handle(signum, handler)``, both recorded."""

    _trace_kind = "SignalChannel"
    _ipc_kind = IpcKind.SIGNAL

    def __init__(self, name=None):
        self._init_trace(name)

    @staticmethod
    def available_signals():
        """Signals this platform can send to another process and have handled there."""
        if sys.platform == "win32":
            return [s for s in (getattr(_signal, "SIGBREAK", None),) if s is not None]
        return [_signal.SIGUSR1, _signal.SIGUSR2, _signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP]

    def send(self, pid, signum):
        if recorder.ENABLED:
            recorder.emit(Kind.SIGNAL_SEND, self._trace_uid, int(signum), int(pid))
        if sys.platform == "win32" and signum == getattr(_signal, "SIGBREAK", None):
            os.kill(pid, _signal.CTRL_BREAK_EVENT)
        else:
            os.kill(pid, signum)

    def handle(self, signum, handler):
        """Install ``handler(signum, frame)`` for ``signum`` in this process; every delivery is recorded."""
        uid = self._trace_uid

        def traced(sig, frame):
            if recorder.ENABLED:
                recorder.emit(Kind.SIGNAL_RECV, uid, int(sig))
            if callable(handler):
                handler(sig, frame)

        return _signal.signal(signum, traced)
