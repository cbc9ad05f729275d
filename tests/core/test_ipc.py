"""core.ipc (core only, not differential): file, socket and signal channels between processes."""
import os
import pickle
import signal
import sys
import threading
import time

import pytest

import core
from core.ipc import FileChannel, SignalChannel, SocketChannel

import mp_helpers as H
from mp_helpers import started


def test_file_channel_across_processes(start_method, tmp_path, traced):
    ctx = core.get_context(start_method)
    to_child = FileChannel(tmp_path / "down.chan", name="down")
    to_parent = FileChannel(tmp_path / "up.chan")
    assert (to_child.name, to_parent.poll(), to_child.poll()) == ("down", False, False)
    p = ctx.Process(target=H.file_channel_child, args=(to_child, to_parent))
    with started(p):
        sent = [to_child.send({"n": 1}), to_child.send([1, 2, 3]), to_child.send("three")]
        got = [to_parent.recv(timeout=10) for _ in range(3)]
        raw = to_parent.recv_bytes(timeout=10)
    assert all(n > 0 for n in sent)
    assert got == [("echo", {"n": 1}), ("echo", [1, 2, 3]), ("echo", "three")]
    assert raw == b"raw bytes"
    assert p.exitcode == 0
    assert not to_parent.poll()
    with pytest.raises(TimeoutError):
        to_parent.recv(timeout=0.05)
    to_parent.send_bytes(b"late")
    assert to_parent.poll()
    assert to_parent.recv_bytes(timeout=0) == b"late"


def test_file_channel_reader_keeps_its_position(tmp_path):
    writer = FileChannel(tmp_path / "c")
    reader = FileChannel(tmp_path / "c")
    for i in range(3):
        writer.send(i)
    assert [reader.recv(timeout=1) for _ in range(2)] == [0, 1]
    other = FileChannel(tmp_path / "c")                   # a fresh reader starts at the beginning
    assert other.recv(timeout=1) == 0
    assert reader.recv(timeout=1) == 2
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        reader.recv(timeout=0.1)
    assert time.monotonic() - t0 >= 0.09


def test_socket_channel_pair_across_processes(start_method):
    ctx = core.get_context(start_method)
    mine, theirs = SocketChannel.pair(name="sock")
    assert (mine.name, theirs.name) == ("sock[0]", "sock[1]")
    p = ctx.Process(target=H.socket_channel_child, args=(theirs,))
    try:
        with started(p):
            theirs.close()
            mine.send({"a": 1})
            first = mine.recv()
            n = mine.send_bytes(pickle.dumps([b"abc"]))   # framed bytes: the child unpickles them
            second = mine.recv()
            big = mine.recv_bytes()
            with pytest.raises(EOFError):
                mine.recv()
    finally:
        mine.close()
    assert first == ("echo", {"a": 1})
    assert n > 0 and second == ("echo", [b"abc"])
    assert big == b"\0" * 100000
    assert p.exitcode == 0


def test_socket_channel_listen_accept_connect(start_method):
    ctx = core.get_context(start_method)
    srv = SocketChannel.listen()
    try:
        address = srv.getsockname()
        assert address[0] == "127.0.0.1" and address[1] > 0
        q = ctx.SimpleQueue()
        p = ctx.Process(target=H.socket_connect_child, args=(address, q))
        with started(p):
            ch = SocketChannel.accept(srv, timeout=10, name="accepted")
            try:
                hello = ch.recv()
                ch.send(("welcome", hello["pid"]))
                assert q.get() == ("welcome", p.pid)
            finally:
                ch.close()
        assert hello == {"from": "child", "pid": p.pid}
        assert p.exitcode == 0
    finally:
        srv.close()


def test_socket_channel_not_picklable_outside_spawning():
    a, b = SocketChannel.pair()
    try:
        with pytest.raises(RuntimeError):
            pickle.dumps(a)
    finally:
        a.close()
        b.close()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGUSR1 is Unix only")
def test_signal_channel_between_parent_and_child(start_method):
    ctx = core.get_context(start_method)
    received = threading.Event()
    ch = SignalChannel(name="sig")
    assert signal.SIGUSR1 in SignalChannel.available_signals()
    previous = ch.handle(signal.SIGUSR1, lambda sig, frame: received.set())
    try:
        ready, got = ctx.Event(), ctx.Value("i", 0)
        p = ctx.Process(target=H.signal_child, args=(ready, got, os.getpid(), signal.SIGUSR1))
        with started(p):
            assert ready.wait(10)
            ch.send(p.pid, signal.SIGUSR1)
            p.join(10)
            deadline = time.monotonic() + 5
            while not received.is_set() and time.monotonic() < deadline:
                time.sleep(0.005)            # the Python handler runs between bytecodes of this thread
        assert got.value == 1                # the child's handler ran
        assert received.is_set()             # and the child's signal reached our handler
        assert p.exitcode == 0
    finally:
        signal.signal(signal.SIGUSR1, previous)
