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

Unpickling runs code the data names, so a socket channel never unpickles what an unauthenticated peer sent:
a TCP channel's two ends first prove to each other that they know the same authkey (an HMAC challenge each
way, as ``multiprocessing.connection`` does; the process's authkey by default, which its children inherit),
and a refused peer raises ``multiprocessing.AuthenticationError`` before any message is read.  A socketpair
has no outside peer.  A channel made directly on some other socket carries bytes only.
"""
import hashlib
import hmac
import os
import pickle
import signal as _signal
import socket
import struct
import sys
import time

from multiprocessing import AuthenticationError
from multiprocessing import process as _process

from .shared_memory import ShareableList, SharedMemory  # noqa: F401
from .trace import recorder
from .trace.events import IpcKind, Kind

__all__ = ["FileChannel", "SocketChannel", "SignalChannel", "SharedMemory", "ShareableList"]

_LEN = struct.Struct("<Q")

#: How long a file reader sleeps between looks at a file that has nothing new.
FILE_POLL_INTERVAL = 0.001

#: How long a TCP peer has to complete the authentication handshake when the caller gave no timeout: a peer
#: that connects and says nothing is refused, never waited for.
AUTH_TIMEOUT = 30.0
#: The longest handshake message: a peer cannot make this end read (or allocate) more before it is trusted.
AUTH_MESSAGE_MAX = 256
#: Random bytes in a challenge, and the HMAC that answers it.
AUTH_NONCE_SIZE = 32
AUTH_DIGEST = hashlib.sha256
_CHALLENGE = b"#MPGUI-CHALLENGE#"
_WELCOME = b"#WELCOME#"
_FAILURE = b"#FAILURE#"


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
    """Messages over a connected stream socket (a socketpair end, or a TCP connection on loopback).

    Make channels with ``pair()``, or ``listen()`` + ``accept()`` on one side and ``connect()`` on the other:
    those carry objects.  ``SocketChannel(sock)`` on a socket made elsewhere carries bytes only (``send_bytes``
    and ``recv_bytes``), since nothing proved who is at the other end."""

    _trace_kind = "SocketChannel"
    _ipc_kind = IpcKind.SOCKET

    def __init__(self, sock, name=None):
        self.sock = sock
        self._objects = False     # set by pair / accept / connect: only then may recv() unpickle
        self._init_trace(name)

    @classmethod
    def pair(cls, name=None):
        """Two connected channels (``socket.socketpair``)."""
        a, b = socket.socketpair()
        base = name or recorder.default_name(cls._trace_kind)
        ends = cls(a, base + "[0]"), cls(b, base + "[1]")
        for end in ends:
            end._objects = True
        return ends

    @classmethod
    def listen(cls, host="127.0.0.1", port=0):
        """A listening TCP socket on loopback (by default); ``accept`` it with ``SocketChannel.accept``."""
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host, port))
        srv.listen(16)
        return srv

    @classmethod
    def accept(cls, server, timeout=None, name=None, authkey=None):
        """Accept one connection on ``server`` (from ``listen``) and authenticate its peer with ``authkey``
        (default: this process's authkey).  ``timeout`` bounds the wait for a connection and, separately,
        the handshake (``AUTH_TIMEOUT`` when None).  A peer that fails raises AuthenticationError."""
        authkey = _authkey(authkey)
        server.settimeout(timeout)
        conn, _ = server.accept()
        try:
            if conn.family in (socket.AF_INET, getattr(socket, "AF_INET6", None)):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ch = cls(conn, name)
            ch._handshake(authkey, timeout, challenge_first=True)
        except BaseException:
            conn.close()
            raise
        return ch

    @classmethod
    def connect(cls, address, timeout=10.0, name=None, authkey=None):
        """Connect to a ``listen``-ing end at ``address`` and authenticate with ``authkey`` (default: this
        process's authkey); ``timeout`` bounds the connection and, separately, the handshake."""
        authkey = _authkey(authkey)
        sock = socket.create_connection(address, timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ch = cls(sock, name)
            ch._handshake(authkey, timeout, challenge_first=False)
        except BaseException:
            sock.close()
            raise
        return ch

    # -- authentication: mutual HMAC challenge, the scheme of multiprocessing.connection ------------------
    def _handshake(self, authkey, timeout, challenge_first):
        """Each end challenges the other; the one that accepted challenges first, so it answers nothing for
        a peer that has not proved itself.  Handshake messages are not recorded as the channel's traffic."""
        self.sock.settimeout(AUTH_TIMEOUT if timeout is None else timeout)
        try:
            if challenge_first:
                self._deliver_challenge(authkey)
                self._answer_challenge(authkey)
            else:
                self._answer_challenge(authkey)
                self._deliver_challenge(authkey)
        except socket.timeout:
            raise AuthenticationError(
                "the peer of %s did not complete the authentication handshake within %s s: connect to this "
                "end with SocketChannel.connect" % (self.name, AUTH_TIMEOUT if timeout is None else timeout)
            ) from None
        except (EOFError, ConnectionError) as e:
            raise AuthenticationError("the peer of %s left during the authentication handshake (%s): connect "
                                      "to this end with SocketChannel.connect" % (self.name, e)) from None
        self.sock.settimeout(None)
        self._objects = True

    def _deliver_challenge(self, authkey):
        nonce = os.urandom(AUTH_NONCE_SIZE)
        self._send_frame(_CHALLENGE + nonce)
        answer = self._recv_frame(AUTH_MESSAGE_MAX)
        if answer is not None and hmac.compare_digest(answer, hmac.new(authkey, nonce, AUTH_DIGEST).digest()):
            self._send_frame(_WELCOME)
            return
        try:
            self._send_frame(_FAILURE)
        except OSError:
            pass                          # a peer that already left is refused all the same
        raise AuthenticationError("the peer of %s did not prove it knows the authkey: give both ends the same "
                                  "authkey= (by default the process's authkey, which its children inherit)"
                                  % self.name)

    def _answer_challenge(self, authkey):
        challenge = self._recv_frame(AUTH_MESSAGE_MAX)
        if challenge is None or not challenge.startswith(_CHALLENGE):
            raise AuthenticationError("the peer of %s sent no authentication challenge: connect only to an end "
                                      "made with SocketChannel.listen and accept" % self.name)
        self._send_frame(hmac.new(authkey, challenge[len(_CHALLENGE):], AUTH_DIGEST).digest())
        if self._recv_frame(AUTH_MESSAGE_MAX) != _WELCOME:
            raise AuthenticationError("the peer of %s refused this end's authkey: give both ends the same "
                                      "authkey= (by default the process's authkey, which its children inherit)"
                                      % self.name)

    def _send_frame(self, data):
        self.sock.sendall(_LEN.pack(len(data)) + data)

    def _recv_frame(self, limit):
        """One framed message of at most ``limit`` bytes, or None for a longer one (left unread)."""
        (n,) = _LEN.unpack(self._recv_exact(_LEN.size))
        return self._recv_exact(n) if n <= limit else None

    def __reduce__(self):
        from multiprocessing.reduction import DupFd
        from multiprocessing import context
        context.assert_spawning(self)
        if sys.platform == "win32":
            return (_rebuild_socket_channel_win, (self.sock.share(os.getpid()), self._trace_uid, self.name,
                                                  self._objects))
        return (_rebuild_socket_channel, (DupFd(self.sock.fileno()), self.sock.family, self.sock.type,
                                          self._trace_uid, self.name, self._objects))

    def _check_objects(self):
        if not self._objects:
            raise AuthenticationError(
                "%s carries bytes only: it was made on a socket whose peer nothing authenticated; use "
                "send_bytes/recv_bytes, or make the channel with SocketChannel.pair() or listen/accept/connect"
                % self.name)

    def send(self, obj):
        self._check_objects()
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
        self._check_objects()
        return pickle.loads(self.recv_bytes())

    def close(self):
        self.sock.close()

    def fileno(self):
        return self.sock.fileno()


def _authkey(authkey):
    """The authkey to use: the given bytes, or this process's authkey."""
    if authkey is None:
        return bytes(_process.current_process().authkey)
    if not isinstance(authkey, bytes):
        raise TypeError("authkey should be a byte string, not %s" % type(authkey).__name__)
    return authkey


def _rebuild_socket_channel(df, family, type_, uid, name, objects):
    ch = SocketChannel.__new__(SocketChannel)
    ch.sock = socket.socket(family, type_, fileno=df.detach())
    ch._trace_uid, ch.name, ch._objects = uid, name, objects
    return ch


def _rebuild_socket_channel_win(data, uid, name, objects):      # pragma: no cover - Windows only
    ch = SocketChannel.__new__(SocketChannel)
    ch.sock = socket.fromshare(data)  # type: ignore[attr-defined]
    ch._trace_uid, ch.name, ch._objects = uid, name, objects
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
