"""The four kinds of IPC: a file, a socket, shared memory and a signal, between two processes.

The notes list four ways for processes to talk: a file (one writes, the other reads), a socket (here a
connected socketpair and a TCP connection on loopback), shared memory, and a signal (one process signals
another, which handles it).  The main process and a peer process play ping-pong with each, in turn, the
same number of round trips with the same payload, using core.ipc's traced channels:

* file: two FileChannels, one per direction; the reader polls its file for the next message;
* socket: a SocketChannel pair (``socketpair``), then a SocketChannel over TCP on 127.0.0.1;
* shared memory: a SharedMemory block both processes map; a pair of semaphores says whose turn it is, and
  the payload never leaves memory;
* signal: SIGUSR1 back and forth with SignalChannel (a signal carries no data, only its number).  Where
  SIGUSR1 does not exist (Windows) this kind is skipped and said so.

Each kind reports round trips per second, the latency of one round trip, and the bytes it moved.
"""
import os
import select
import shutil
import signal
import socket
import struct
import tempfile
import time

from core.ipc import FileChannel, SharedMemory, SignalChannel, SocketChannel
from .base import Param, Result, Scenario

#: A safety bound on every blocking wait (nothing here should wait this long).
WAIT_LIMIT = 60.0
LOOPBACK = "127.0.0.1"
KINDS = ("file", "socketpair", "TCP (loopback)", "shared memory", "signal (SIGUSR1)")
_FRAME = 8          # the length prefix core.ipc puts before each file or socket message


def has_signals():
    return hasattr(signal, "SIGUSR1") and hasattr(signal, "set_wakeup_fd")


class SignalWaiter:
    """Counts SIGUSR1 deliveries to this process (handled through ``channel``) and waits for them.  The
    handler's byte on a wakeup socket ends a ``select`` at once, whichever thread the signal interrupted."""

    def __init__(self, channel):
        self.count = 0
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._w.fileno())
        self._old = channel.handle(signal.SIGUSR1, self._handled)

    def _handled(self, signum, frame):
        self.count += 1

    def wait_for(self, n):
        deadline = time.monotonic() + WAIT_LIMIT
        while self.count < n:
            if time.monotonic() > deadline:
                raise TimeoutError("signal %d did not arrive within %s s" % (n, WAIT_LIMIT))
            select.select([self._r], [], [], 0.5)
            try:
                self._r.recv(4096)
            except BlockingIOError:
                pass

    def close(self):
        signal.signal(signal.SIGUSR1, self._old if self._old is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._old_fd)
        self._r.close()
        self._w.close()


def echo(recv, send, rounds):
    for _ in range(rounds):
        send(recv())


def ipc_peer(ctl, file_in, file_out, pair_end, tcp_address, shm_name, ping, pong, signals, main_pid, rounds,
             size):
    """The main process's partner: answer every message of every kind, in the same order as it sends them."""
    echo(lambda: file_in.recv_bytes(timeout=WAIT_LIMIT), file_out.send_bytes, rounds)

    echo(pair_end.recv_bytes, pair_end.send_bytes, rounds)
    pair_end.close()

    tcp = SocketChannel.connect(tuple(tcp_address), name="tcp (peer end)")
    echo(tcp.recv_bytes, tcp.send_bytes, rounds)
    tcp.close()

    shm = SharedMemory(name=shm_name)
    try:
        for _ in range(rounds):
            if not ping.acquire(timeout=WAIT_LIMIT):
                raise TimeoutError("no shared-memory ping")
            n = struct.unpack_from("<Q", shm.buf, 0)[0]
            data = bytes(shm.buf[8:8 + n])            # read the message out of shared memory
            shm.buf[8:8 + n] = data                   # and write the answer back in
            pong.release()
    finally:
        shm.close()

    if signals is not None:
        waiter = SignalWaiter(signals)
        try:
            ctl.send("signal handler ready")
            for i in range(rounds):
                waiter.wait_for(i + 1)
                signals.send(main_pid, signal.SIGUSR1)
        finally:
            waiter.close()
    ctl.send("done")


def message(i, size):
    return struct.pack("<Q", i)[:size].ljust(size, b"\x00")


def ping_pong(send, recv, rounds, size):
    t0 = time.perf_counter()
    for i in range(rounds):
        out = message(i, size)
        send(out)
        if recv() != out:
            raise RuntimeError("round trip %d came back changed" % i)
    return time.perf_counter() - t0


def run(ctx, p, report):
    rounds, size = p["round_trips"], p["payload"]
    tmp = tempfile.mkdtemp(prefix="mpgui-ipc-")
    to_peer = FileChannel(os.path.join(tmp, "to-peer.bin"), name="file to peer")
    from_peer = FileChannel(os.path.join(tmp, "from-peer.bin"), name="file from peer")
    pair_main, pair_peer = SocketChannel.pair(name="socketpair")
    server = SocketChannel.listen(LOOPBACK, 0)
    shm = SharedMemory(create=True, size=8 + max(size, 1))
    ping, pong = ctx.Semaphore(0, name="shm ping"), ctx.Semaphore(0, name="shm pong")
    signals = SignalChannel(name="SIGUSR1") if has_signals() else None
    ctl, peer_ctl = ctx.Pipe(name="control")
    peer = ctx.Process(target=ipc_peer, args=(peer_ctl, to_peer, from_peer, pair_peer, server.getsockname(),
                                              shm.name, ping, pong, signals, os.getpid(), rounds, size),
                       name="ipc-peer")
    figures, rows = {"round_trips": rounds, "payload": size, "kinds": {}}, []
    done_kinds = []

    def record(kind, seconds, moved, framing, note=""):
        f = figures["kinds"][kind] = {"seconds": seconds, "round_trips_per_s": rounds / seconds,
                                      "messages_per_s": 2 * rounds / seconds, "latency_us": 1e6 * seconds / rounds,
                                      "payload_bytes": moved, "framing_bytes": framing}
        rows.append((kind, rounds, "%.0f" % f["messages_per_s"], "%.1f us" % f["latency_us"], moved, framing, note))
        report.line("%-16s %d round trips in %.3f s: %.0f messages/s, %.1f us per round trip; %d payload bytes "
                    "moved%s" % (kind, rounds, seconds, f["messages_per_s"], f["latency_us"], moved,
                                 " (+%d bytes of length prefixes)" % framing if framing else ""))
        done_kinds.append(kind)
        report.progress(len(done_kinds), len(KINDS))

    moved = 2 * rounds * size
    try:
        peer.start()
        peer_ctl.close()
        pair_peer.close()

        report.phase("file")
        secs = ping_pong(to_peer.send_bytes, lambda: from_peer.recv_bytes(timeout=WAIT_LIMIT), rounds, size)
        record("file", secs, moved, 2 * rounds * _FRAME, "reader polls the file")

        report.phase("socketpair")
        secs = ping_pong(pair_main.send_bytes, pair_main.recv_bytes, rounds, size)
        record("socketpair", secs, moved, 2 * rounds * _FRAME)

        report.phase("TCP on loopback")
        tcp = SocketChannel.accept(server, timeout=WAIT_LIMIT, name="tcp (main end)")
        # SocketChannel.connect turns Nagle's algorithm off, accept does not; send_bytes writes the length
        # prefix and the data separately, so without this every message from this end would wait ~40 ms for
        # the peer's delayed ACK.
        tcp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            secs = ping_pong(tcp.send_bytes, tcp.recv_bytes, rounds, size)
        finally:
            tcp.close()
        record("TCP (loopback)", secs, moved, 2 * rounds * _FRAME, "%s:%d" % server.getsockname())

        report.phase("shared memory")

        def shm_send(data):
            struct.pack_into("<Q", shm.buf, 0, len(data))
            shm.buf[8:8 + len(data)] = data
            ping.release()

        def shm_recv():
            if not pong.acquire(timeout=WAIT_LIMIT):
                raise TimeoutError("no shared-memory pong")
            return bytes(shm.buf[8:8 + size])

        secs = ping_pong(shm_send, shm_recv, rounds, size)
        record("shared memory", secs, moved, 0, "turns taken with 2 semaphores")

        report.phase("signal")
        if signals is not None:
            waiter = SignalWaiter(signals)
            try:
                if not ctl.poll(WAIT_LIMIT) or ctl.recv() != "signal handler ready":
                    raise RuntimeError("the peer did not get ready for signals")
                t0 = time.perf_counter()
                for i in range(rounds):
                    signals.send(peer.pid, signal.SIGUSR1)
                    waiter.wait_for(i + 1)
                secs = time.perf_counter() - t0
                received = waiter.count
            finally:
                waiter.close()
            record("signal (SIGUSR1)", secs, 0, 0, "no data: only the signal number")
            figures["kinds"]["signal (SIGUSR1)"]["received"] = received
        else:
            figures["kinds"]["signal (SIGUSR1)"] = None
            rows.append(("signal (SIGUSR1)", 0, "-", "-", 0, 0, "this platform has no SIGUSR1"))
            report.line("signal: skipped, this platform has no SIGUSR1")
        if not ctl.poll(WAIT_LIMIT) or ctl.recv() != "done":
            raise RuntimeError("the peer did not finish")
        peer.join(WAIT_LIMIT)
    finally:
        if peer.is_alive():
            peer.terminate()
        if peer.pid is not None:
            peer.join()
        for closeable in (ctl, pair_main, server):
            closeable.close()
        shm.close()
        shm.unlink()
        shutil.rmtree(tmp, ignore_errors=True)
    if peer.exitcode != 0:
        raise RuntimeError("the peer ended with exit code %s" % peer.exitcode)

    k = figures["kinds"]
    parts = ["%s %.1f us (%.0f messages/s)" % (name, k[name]["latency_us"], k[name]["messages_per_s"])
             for name in KINDS if k.get(name)]
    lesson = ("Ping-pong between two processes, %d round trips of %d-byte messages, one round trip took: %s. "
              % (rounds, size, "; ".join(parts)))
    ran = [n for n in KINDS if k.get(n)]
    fastest = min(ran, key=lambda n: k[n]["latency_us"])
    slowest = max(ran, key=lambda n: k[n]["latency_us"])
    lesson += ("The %s was the slowest%s, %s the fastest. Each data kind moved %d payload bytes (files and "
               "sockets add an %d-byte length prefix per message; shared memory copies nothing through the kernel)"
               % (slowest, " (its reader polls for new data)" if slowest == "file" else "", fastest, moved, _FRAME))
    lesson += (", and a signal carries no data, only its number." if k.get("signal (SIGUSR1)")
               else "; signals were skipped: this platform has no SIGUSR1.")
    return Result(lesson, figures, ("kind", "round trips", "messages/s", "per round trip", "payload bytes",
                                    "framing bytes", "note"), rows)


SCENARIO = Scenario(
    name="ipc_kinds",
    title="The four IPC kinds: file, socket, shared memory, signal",
    description="The main process and a peer play ping-pong through a file, a socketpair, TCP on loopback, "
                "shared memory (with two semaphores for turns) and SIGUSR1: messages per second, latency and "
                "bytes moved for each.",
    lesson="Files are simple but slow (polling), sockets and shared memory are fast, signals carry no data.",
    params=(
        Param("round_trips", "int", 1000, "Round trips per kind", 1, 100_000),
        Param("payload", "int", 64, "Bytes per message", 1, 1024 * 1024, unit="B"),
    ),
    run=run,
    category="Queues and pipes",
)
