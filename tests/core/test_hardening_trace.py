"""Hardening of recording and of core.ipc (issue 8): who registers as the main process, authenticated
socket channels, a full /dev/shm, and file descriptors held by traced threads."""
import json
import multiprocessing
import os
import pickle
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from multiprocessing import AuthenticationError

import numpy as np
import pytest

import core
from core.ipc import SocketChannel
from core.trace import collector, tracedir
from core.trace.events import Kind
from core.trace.model import RunModel
from core.trace.store import RunFile, RunWriter

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
    d = tracedir.make_trace_dir()
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
        tracedir.release_trace_dir(d)
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


# ----------------------------------------------------------------------------------------------------------
# 2. A full /dev/shm means counted drops, never SIGBUS
# ----------------------------------------------------------------------------------------------------------

def _small_tmpfs_support(tmp_path):
    """None when this machine lets an unprivileged user mount a tmpfs in a new user and mount namespace
    (``unshare -Urm``), else why not."""
    import shutil
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return "needs Linux and unshare(1)"
    probe = tmp_path / "probe"
    probe.mkdir()
    r = subprocess.run(["unshare", "-Urm", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', str(probe)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return "this machine does not allow an unprivileged tmpfs mount: %s" % r.stderr.strip()
    return None


def run_on_small_tmpfs(tmp_path, size, mount_point, argv, env=None, timeout=300):
    """Run ``argv`` where ``mount_point`` is a fresh tmpfs of ``size`` (e.g. "2m"), in a user and mount
    namespace of its own; skips the test where the machine does not allow that."""
    why = _small_tmpfs_support(tmp_path)
    if why:
        pytest.skip(why)
    script = 'mount -t tmpfs -o size="$0" tmpfs "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "-Urm", "sh", "-c", script, size, str(mount_point)] + list(argv),
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {})))


FILL_RINGS = '''
import json, sys, threading
from core.trace import collector, recorder

d = sys.argv[1]
got = []
col = collector.Collector(d, got.append, own_dir=False).start()
recorder.enable(d)
N, THREADS = 200000, 4

def work():
    for i in range(N):
        recorder.emit(120, 1, 0, i)

ts = [threading.Thread(target=work) for _ in range(THREADS)]
for t in ts:
    t.start()
for t in ts:
    t.join()
recorder.disable()
col.stop()
print(json.dumps({"emitted": N * THREADS, "collected": sum(len(b.events) for b in got),
                  "dropped": col.dropped_total}))
'''


def test_full_tmpfs_means_counted_drops_not_sigbus(tmp_path):
    """Four threads write 38 MB of records through a 2 MB tmpfs: nothing crashes, every record is either
    collected or counted as dropped."""
    mnt = tmp_path / "shm"
    mnt.mkdir()
    prog = tmp_path / "fill.py"
    prog.write_text(FILL_RINGS)
    r = run_on_small_tmpfs(tmp_path, "2m", mnt, [sys.executable, str(prog), str(mnt)])
    assert r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr[-2000:])
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["collected"] > 0
    assert figures["collected"] + figures["dropped"] == figures["emitted"]


@pytest.mark.slow
def test_full_dev_shm_run_of_a_scenario_finishes(tmp_path):
    """The issue's own case, smaller: lock_contention traced with /dev/shm a few MB in size."""
    shm = "/dev/shm"
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "run.mpgrun"
    main_py = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "main.py")
    r = run_on_small_tmpfs(tmp_path, "8m", shm, [sys.executable, main_py, "run", "lock_contention", "--set",
                                                  "processes=4", "--set", "increments=50000", "--out", str(out)],
                           env={"MPGUI_HOME": str(home)})
    assert r.returncode == 0, "exit %d: %s" % (r.returncode, (r.stdout + r.stderr)[-3000:])
    with RunFile(str(out)) as rf:
        model = rf.model()
    assert model.meta.get("status") == "done"
    workers = [p for p in model.procs.values() if p.role == "process"]
    assert len(workers) == 8                         # 4 with the lock, 4 without: all ran, none crashed
    assert all(p.exitcode == 0 for p in workers)
    assert model.events_seen > 0


def _ring_files(d):
    return sorted(n for n in os.listdir(d) if n.endswith(".ring"))


def test_ring_pages_are_reserved_when_it_is_made(trace_session):
    """A ring's file has its pages when the ring is made (a sparse file would only get them on the first
    store to each page, which a full tmpfs answers with SIGBUS)."""
    from core.trace import recorder
    recorder.emit(120, 1, 0, 0)
    ring = recorder._tls.ring
    st = os.stat(ring.path)
    assert st.st_size > recorder.HEADER_SIZE
    assert st.st_blocks * 512 >= st.st_size


def test_ring_falls_back_to_a_smaller_one_when_space_is_short(trace_session, monkeypatch):
    from core.trace import recorder
    real = recorder._reserve
    asked = []

    def reserve(fd, size):
        if size != recorder.LOST_FILE_SIZE:
            asked.append(size)
        if size > recorder.HEADER_SIZE + recorder.MIN_RING_RECORDS * 48:
            raise OSError(28, "No space left on device")        # ENOSPC
        real(fd, size)

    monkeypatch.setattr(recorder, "_reserve", reserve)
    monkeypatch.setattr(recorder, "_ring_records", 1 << 14)
    monkeypatch.setattr(recorder, "FIRST_RING_RECORDS", 1 << 12)
    done = threading.Event()
    n = 3000

    def work():
        for i in range(n):
            recorder.emit(120, 1, 0, i)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    t.join()
    trace_session.stop()
    ev = trace_session.events()
    got = ev[ev["kind"] == 120]["b"].tolist()
    assert len(asked) >= 2 and asked[0] > asked[-1]                 # it asked for less after a refusal
    first = recorder.MIN_RING_RECORDS
    assert got[:first] == list(range(first))                         # the smaller ring took records
    assert got == sorted(set(got))                                   # in order, none twice
    assert len(got) + trace_session.collector.dropped_total == n     # and every other one is counted


def test_no_ring_at_all_still_counts_every_lost_record(tmp_path, monkeypatch):
    """When no ring can be made for a thread, what it records is lost, and counted: in the collector's drop
    total and in the run file."""
    from core.trace import recorder

    real = recorder._reserve

    def reserve(fd, size):
        if size > recorder.LOST_FILE_SIZE:      # rings fail; the process's small lost-records file does not
            raise OSError(28, "No space left on device")
        real(fd, size)

    d = tracedir.make_trace_dir()
    path = tmp_path / "run.mpgrun"
    writer = RunWriter(str(path))
    col = collector.Collector(d, writer.add_batch)
    monkeypatch.setattr(recorder, "_reserve", reserve)
    try:
        recorder.enable(d)
        recorder.register_object(7, "Mark", "marks")      # the process registers: meta and lost-records file

        def work():
            for i in range(500):
                recorder.emit(120, 7, 0, i)

        t = threading.Thread(target=work)
        t.start()
        t.join()
        recorder.disable()
        col.stop()
    finally:
        recorder.disable()
        writer.close()
        tracedir.release_trace_dir(d)
    assert col.dropped_total == 500
    with RunFile(str(path)) as rf:
        assert rf.dropped() == 500


# ----------------------------------------------------------------------------------------------------------
# 3. A finished thread gives back its ring's file descriptor; every lost record is counted
# ----------------------------------------------------------------------------------------------------------

def _open_fds(under=None):
    """Open fds of this process; with ``under``, only those of files in that directory."""
    if under is None:
        return len(os.listdir("/proc/self/fd"))
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        n += target.startswith(os.path.join(under, ""))
    return n


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts file descriptors in /proc")
def test_finished_threads_keep_no_file_descriptor(trace_session):
    lock = core.Lock(name="L")
    with lock:                                       # this thread's ring and the collector's reader exist
        pass
    trace_session.collector.poll()
    before = _open_fds(trace_session.dir)
    assert before >= 1                               # the ring of this thread, at least
    for _ in range(100):
        t = threading.Thread(target=th.touch_lock, args=(lock,))
        t.start()
        t.join()
    # the collector lets a drained ring go too (only the session's own files count: the process's other fds
    # come and go with whatever else the test worker runs)
    assert _settled_fds(before + 10, trace_session.dir) <= before + 10
    trace_session.stop()
    ev = trace_session.events()
    acquired = ev[(ev["uid"] == lock._trace_uid) & (ev["kind"] == Kind.ACQ_OK)]
    assert len(acquired) == 101                      # every finished thread's records were collected
    assert trace_session.collector.dropped_total == 0


def _settled_fds(limit, under=None, seconds=30):
    """The number of open fds (of files ``under`` a directory, if given), once it is at most ``limit`` (the
    collector retires drained rings within a few polls), or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while _open_fds(under) > limit and time.monotonic() < deadline:
        time.sleep(0.02)
    return _open_fds(under)


def _wait_rings_of_ended_processes_retired(col, seconds=30):
    """Wait until the collector holds only rings of this process (it retires a dead process's rings after
    its liveness check)."""
    deadline = time.monotonic() + seconds
    while any(r.pid != os.getpid() for r in list(col.rings.values())) and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts file descriptors in /proc")
def test_traced_pool_cycles_keep_no_file_descriptor(trace_session, start_method):
    ctx = core.get_context(start_method)
    with ctx.Pool(2) as pool:                # the first cycle starts the helpers (forkserver, tracker)
        pool.map(abs, range(4))
    _wait_rings_of_ended_processes_retired(trace_session.collector)
    before = _open_fds()
    for _ in range(5):
        with ctx.Pool(2) as pool:
            assert pool.map(abs, [-1, -2]) == [1, 2]
    _wait_rings_of_ended_processes_retired(trace_session.collector)
    assert _settled_fds(before) <= before


MANY_THREADS = '''
import resource, threading
import core

if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    lock = core.Lock(name="L")

    def work():
        with lock:
            pass

    for _ in range(400):
        t = threading.Thread(target=work)
        t.start()
        t.join()
    open(__file__).close()                          # the program can still open files
    with core.Pool(2) as pool:                      # and start processes
        print("pool_ok", pool.map(abs, [-1, -2]) == [1, 2])
    print("uid", lock._trace_uid)
'''


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is Unix only")
def test_400_short_lived_threads_under_a_low_fd_limit(tmp_path):
    """A thread's ring costs the program a file descriptor while the thread lives, none after: 400 threads
    one after another fit in 128.  (Traced as a user traces it: the collector, whose mappings of the rings
    hold descriptors of its own until it drains them, is a process of its own.)"""
    from core.trace.runner import RunSpec, TracedRun
    prog = tmp_path / "threads.py"
    prog.write_text(MANY_THREADS)
    run = TracedRun(RunSpec([sys.executable, str(prog)], str(tmp_path / "threads.mpgrun"), echo_output=()))
    run.start()
    try:
        assert run.wait() == "done"
    finally:
        if not run.finalized:
            run.cancel()
            run.wait()
    with RunFile(tmp_path / "threads.mpgrun") as rf:
        events, _, _, logs = rf.read_all()
        meta = rf.meta()
    said = dict(text.split(" ", 1) for _, kind, text in logs if kind == "stdout")
    assert said["pool_ok"] == "True"
    lock_events = events[events["uid"] == int(said["uid"])]
    assert (lock_events["kind"] == Kind.ACQ_OK).sum() == 400
    assert meta["dropped"] == 0


LOST_WITHOUT_FDS = '''
import os, resource, sys, threading
from core.trace import recorder

recorder.enable(sys.argv[1])
recorder.emit(120, 1, 0, -1)                    # registered, with a ring for this thread
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
probe = os.open(os.devnull, os.O_RDONLY)
os.close(probe)
resource.setrlimit(resource.RLIMIT_NOFILE, (probe, hard))     # no new file descriptor from here on

def work():
    for i in range(1000):
        recorder.emit(120, 1, 0, i)

ts = [threading.Thread(target=work) for _ in range(3)]
for t in ts:
    t.start()
for t in ts:
    t.join()
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
'''


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is Unix only")
def test_records_of_threads_that_got_no_ring_are_counted(tmp_path):
    prog = tmp_path / "lost.py"
    prog.write_text(LOST_WITHOUT_FDS)
    d = tracedir.make_trace_dir()
    path = tmp_path / "run.mpgrun"
    writer = RunWriter(str(path))
    try:
        r = subprocess.run([sys.executable, str(prog), d], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        col, _ = collect_dir(d, writer.add_batch)
    finally:
        writer.close()
        tracedir.release_trace_dir(d)
    with RunFile(str(path)) as rf:
        events = rf.read_all()[0]
        stored_drops = rf.dropped()
    assert col.dropped_total == 3000                  # no thread got a ring: all its records are counted
    assert stored_drops == 3000
    assert len(events) == 1


FILL_RUN_FILE = '''
import json, os, sys
import numpy as np
from core.trace.arrays import EVENT_DTYPE
from core.trace.collector import Batch
from core.trace.store import RunFile, RunWriter

path = os.path.join(sys.argv[1], "run.mpgrun")
runner = RunWriter(path, {"kind": "trace"})      # claims the file, holds the reserve for the final status
collector = RunWriter.attach(path)               # writes the events (the collector process does)
rng = np.random.default_rng(7)
t = 0
while True:      # random events compress badly; small batches leave little room behind a write that failed
    ev = np.zeros(1000, EVENT_DTYPE)
    for name in EVENT_DTYPE.names:
        ev[name] = rng.integers(0, 1 << 30, len(ev)).astype(ev[name].dtype)
    ev["t"] = np.arange(t, t + len(ev))
    t += len(ev)
    if not collector.add_batch(Batch(ev)):
        break
with open(os.path.join(sys.argv[1], "filler"), "wb", buffering=0) as f:   # others take the rest
    try:
        while True:
            f.write(b"x" * 4096)
    except OSError:
        pass
collector.close()                                # its checkpoint finds no room: the log stays long
why = "the disk is full " * 6000                 # final metadata of several pages (a long error, a result)
stored = runner.finish([{"t": "exit", "pid": 4321, "exitcode": 0, "time": t}], status="cut short", error=why)
runner.close()
with RunFile(path) as rf:
    model = rf.model()
    print(json.dumps({"stored": stored, "status": rf.meta()["status"], "events": model.events_seen,
                      "collector_failed": collector.failure is not None, "runner_failed": runner.failure is not None,
                      "exit": model.procs[4321].exitcode if 4321 in model.procs else None}))
'''


def test_final_status_is_stored_when_another_writer_filled_the_disk(tmp_path):
    """The collector process fills the disk while the runner's own writer wrote nothing since: the runner's
    final status and the program's exit still go into the run file, in the room its reserve kept, and the
    events recorded before stay readable."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    prog = tmp_path / "fill_run.py"
    prog.write_text(FILL_RUN_FILE)
    r = run_on_small_tmpfs(tmp_path, "4m", mnt, [sys.executable, str(prog), str(mnt)])
    assert r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr[-2000:])
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["collector_failed"] and not figures["runner_failed"]
    assert figures["stored"] and figures["status"] == "cut short"
    assert figures["exit"] == 0
    assert figures["events"] > 0
