"""Hardening of recording and of core.ipc (issue 8): who registers as the main process, authenticated
socket channels, a full /dev/shm, and file descriptors held by traced threads."""
import multiprocessing
import os
import pickle
import socket
import struct
import subprocess
import sys
import textwrap
import threading
from multiprocessing import AuthenticationError

import numpy as np
import pytest

import core
from core.ipc import SocketChannel
from core.trace import collector
from core.trace.model import RunModel

import trace_helpers as th
from mp_helpers import started

START_METHODS = multiprocessing.get_all_start_methods()


def collect_dir(d, sink=None):
    """Drain a trace directory whose writers have all ended; returns (collector, batches)."""
    batches = []
    col = collector.Collector(d, sink or batches.append, own_dir=False)
    col.poll(final=True)
    return col, batches


def run_traced_script(source, tmp_path, args=(), env=None, timeout=120):
    """Run ``source`` as a script with tracing on into a fresh trace directory; returns (result, trace dir)."""
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(source))
    d = collector.make_trace_dir()
    full_env = dict(os.environ, MPGUI_TRACE_DIR=d, **(env or {}))
    r = subprocess.run([sys.executable, str(script)] + list(args), env=full_env, capture_output=True, text=True,
                       timeout=timeout, cwd=str(tmp_path))
    return r, d


# ----------------------------------------------------------------------------------------------------------
# 4. A spawned or forkserver child never registers as the main process
# ----------------------------------------------------------------------------------------------------------

NO_MAIN_GUARD = '''
    import sys
    import core as multiprocessing

    lock = multiprocessing.Lock()      # a traced object: the importing process registers itself

    def work():
        pass

    # No main guard: a spawned child runs this again while it imports the main module, and fails here.
    ctx = multiprocessing.get_context(sys.argv[1])
    p = ctx.Process(target=work)
    p.start()
    p.join()
    print("child exit", p.exitcode)
'''


@pytest.mark.parametrize("method", [m for m in ("spawn", "forkserver") if m in START_METHODS])
def test_child_importing_the_main_module_is_not_main(method, tmp_path):
    r, d = run_traced_script(NO_MAIN_GUARD, tmp_path, [method])
    try:
        assert "child exit 1" in r.stdout, r.stderr       # the child failed in its bootstrapping phase
        _, batches = collect_dir(d)
    finally:
        collector.release_trace_dir(d)
    metas = [m for b in batches for m in b.metas]
    procs = {m["pid"]: m["role"] for m in metas if m.get("t") == "proc"}
    main_pids = {pid for pid, role in procs.items() if role == "main"}
    assert len(procs) >= 2, procs                          # the child registered too (its lock)
    assert len(main_pids) == 1, procs
    model = RunModel()
    model.ingest(np.zeros(0, collector.EVENT_DTYPE), metas)
    assert [p.pid for p in model.procs.values() if p.role == "main"] == list(main_pids)
    # and what a child made while importing is named as a child's objects are: with its pid
    for m in metas:
        if m.get("t") == "obj" and m.get("kind") == "Lock" and m["uid"] >> 24 not in main_pids:
            assert m["name"].endswith("@%d" % (m["uid"] >> 24)), m


# ----------------------------------------------------------------------------------------------------------
# 1. A socket channel's TCP peer proves it knows the authkey before any object is unpickled
# ----------------------------------------------------------------------------------------------------------

class _Exploit:
    """Unpickling this creates the file ``path``: the evidence that a peer's pickle was loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def framed(data):
    """``data`` framed as core.ipc frames a message: an 8-byte little-endian length first."""
    return struct.pack("<Q", len(data)) + data


@pytest.mark.parametrize("padding", [0, 4096], ids=["small", "large"])
def test_raw_client_pickle_is_never_unpickled(tmp_path, padding):
    marker = tmp_path / "pwned"
    payload = pickle.dumps([_Exploit(marker), b"x" * padding])
    srv = SocketChannel.listen()
    raw = socket.create_connection(srv.getsockname())
    try:
        raw.sendall(framed(payload))
        with pytest.raises(AuthenticationError):
            ch = SocketChannel.accept(srv, timeout=10)
            try:
                ch.recv()
            finally:
                ch.close()
    finally:
        raw.close()
        srv.close()
    assert not marker.exists()


def test_raw_server_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker))
    srv = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(framed(payload))
            done.wait(10)

    t = threading.Thread(target=serve)
    t.start()
    try:
        with pytest.raises(AuthenticationError):
            ch = SocketChannel.connect(srv.getsockname(), timeout=10)
            try:
                ch.recv()
            finally:
                ch.close()
    finally:
        done.set()
        t.join()
        srv.close()
    assert not marker.exists()


def test_silent_client_is_refused_not_waited_for():
    srv = SocketChannel.listen()
    raw = socket.create_connection(srv.getsockname())       # connects, then never says anything
    try:
        with pytest.raises(AuthenticationError, match="authenticat"):
            SocketChannel.accept(srv, timeout=0.5).close()
    finally:
        raw.close()
        srv.close()


def test_wrong_authkey_is_refused_across_processes(start_method):
    ctx = core.get_context(start_method)
    srv = SocketChannel.listen()
    q = ctx.SimpleQueue()
    p = ctx.Process(target=th.socket_connect_with_key, args=(srv.getsockname(), b"a wrong key", q))
    try:
        with started(p):
            with pytest.raises(AuthenticationError):
                SocketChannel.accept(srv, timeout=30, authkey=b"the right key").close()
            verdict, _ = q.get()
    finally:
        srv.close()
    assert verdict == "refused"           # the connecting side is told too, and unpickles nothing
    assert p.exitcode == 0


def test_right_authkey_works_across_processes(start_method):
    ctx = core.get_context(start_method)
    srv = SocketChannel.listen()
    q = ctx.SimpleQueue()
    p = ctx.Process(target=th.socket_connect_with_key, args=(srv.getsockname(), b"shared secret", q))
    try:
        with started(p):
            ch = SocketChannel.accept(srv, timeout=30, authkey=b"shared secret")
            try:
                hello = ch.recv()
                ch.send(("welcome", hello["pid"]))
            finally:
                ch.close()
            answer = q.get()
    finally:
        srv.close()
    assert hello == {"pid": p.pid}
    assert answer == ("got", ("welcome", p.pid))
    assert p.exitcode == 0


def test_authkey_must_be_bytes():
    srv = SocketChannel.listen()
    try:
        with pytest.raises(TypeError, match="authkey"):
            SocketChannel.connect(srv.getsockname(), authkey="not bytes")
    finally:
        srv.close()


def test_channel_on_a_bare_socket_carries_bytes_only(tmp_path):
    marker = tmp_path / "pwned"
    a, b = socket.socketpair()
    ch = SocketChannel(a, name="bare")
    try:
        b.sendall(framed(pickle.dumps(_Exploit(marker))) + framed(b"raw"))
        with pytest.raises(AuthenticationError, match="bytes only"):
            ch.recv()
        assert not marker.exists()
        assert ch.recv_bytes() == pickle.dumps(_Exploit(marker))    # refused before reading: bytes still flow
        assert ch.recv_bytes() == b"raw"
        with pytest.raises(AuthenticationError, match="bytes only"):
            ch.send({"an": "object"})
    finally:
        ch.close()
        b.close()
