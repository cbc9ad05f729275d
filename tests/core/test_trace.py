"""The trace pipeline: each event kind is recorded with the right pid, object and order; events survive a
SIGKILL; drops are counted; tracing off binds the stdlib's methods."""
import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import core
from core.trace import collector, tracedir, recorder
from core.trace.events import Kind, StartMethod
from core.trace.model import Span

import trace_helpers as th


def kinds_of(events, uid=None, pid=None):
    """The kinds recorded on ``uid`` (by ``pid``) in time order, call sites left out (test_callsites.py)."""
    sel = events[np.argsort(events["t"], kind="stable")]
    sel = sel[sel["kind"] != Kind.CALLSITE]
    if uid is not None:
        sel = sel[sel["uid"] == uid]
    if pid is not None:
        sel = sel[sel["pid"] == pid]
    return [Kind(k) for k in sel["kind"].tolist()]


def test_tracing_off_binds_the_stdlib_methods():
    assert not recorder.ENABLED
    lock = core.Lock()
    assert lock.acquire == lock._semlock.acquire
    assert lock.release == lock._semlock.release
    sem = core.Semaphore(2)
    assert sem.acquire == sem._semlock.acquire


def test_names_default_and_given(trace_session):
    a = core.Lock(name="db")
    b = core.Lock()
    q = core.Queue(name="jobs")
    trace_session.stop()
    names = {o["uid"]: o["name"] for b_ in trace_session.batches for o in b_.metas if o.get("t") == "obj"}
    assert names[a._trace_uid] == "db"
    assert names[b._trace_uid].startswith("Lock#")
    assert names[q._trace_uid] == "jobs"
    assert a.name == "db"


def test_lock_events_order_and_payloads(trace_session, start_method):
    ctx = core.get_context(start_method)
    lock = ctx.Lock(name="L")
    ready = ctx.Event()
    p = ctx.Process(target=th.hold_lock, args=(lock, ready, 0.2))
    p.start()
    ready.wait()
    t_req = time.perf_counter_ns()
    with lock:                      # waits for the child's 0.2 s hold
        pass
    p.join()
    model = trace_session.stop()
    ev = trace_session.events()
    child = p.pid
    me = os.getpid()
    # child: ACQ_OK then RELEASE with a hold of ~0.2 s
    assert kinds_of(ev, lock._trace_uid, child) == [Kind.ACQ_OK, Kind.RELEASE]
    rel = ev[(ev["uid"] == lock._trace_uid) & (ev["pid"] == child) & (ev["kind"] == Kind.RELEASE)][0]
    assert rel["a"] >= 0.15e9
    # parent: contended, so the request comes first, then the acquisition with its wait time, then release
    assert kinds_of(ev, lock._trace_uid, me) == [Kind.ACQ_REQUEST, Kind.ACQ_OK, Kind.RELEASE]
    ok = ev[(ev["uid"] == lock._trace_uid) & (ev["pid"] == me) & (ev["kind"] == Kind.ACQ_OK)][0]
    assert ok["a"] > 0 and ok["t"] - ok["a"] >= t_req - 1_000_000
    # the model: one wait span (parent) and two holds, the wait ending when the child's hold ends
    spans = model.spans_array()
    waits = spans[(spans["uid"] == lock._trace_uid) & (spans["kind"] == Span.LOCK_WAIT)]
    holds = spans[(spans["uid"] == lock._trace_uid) & (spans["kind"] == Span.LOCK_HOLD)]
    assert len(waits) == 1 and waits[0]["pid"] == me
    assert sorted(holds["pid"].tolist()) == sorted([me, child])
    child_hold = holds[holds["pid"] == child][0]
    assert waits[0]["t1"] >= child_hold["t1"]
    # process lifecycle of the child
    assert model.procs[child].method == start_method
    assert model.procs[child].booted > 0 and model.procs[child].exitcode == 0


def test_semaphore_values_timeouts_and_bounded_error(trace_session):
    sem = core.BoundedSemaphore(2, name="slots")
    sem.acquire()
    sem.acquire()
    assert sem.acquire(timeout=0.05) is False
    sem.release()
    sem.release()
    with pytest.raises(ValueError):
        sem.release()
    trace_session.stop()
    ev = trace_session.events()
    mine = ev[(ev["uid"] == sem._trace_uid) & (ev["kind"] != Kind.CALLSITE)]
    assert [Kind(k) for k in mine["kind"].tolist()] == [
        Kind.ACQ_OK, Kind.ACQ_OK, Kind.ACQ_REQUEST, Kind.ACQ_TIMEOUT, Kind.RELEASE, Kind.RELEASE,
        Kind.RELEASE_ERROR]
    values = mine["b"][np.isin(mine["kind"], [Kind.ACQ_OK, Kind.RELEASE])].tolist()
    if sys.platform != "darwin":
        assert values == [1, 0, 1, 2]
    assert mine[3]["a"] >= 40_000_000        # waited ~50 ms before giving up


def test_rlock_depth_and_single_hold(trace_session):
    r = core.RLock(name="R")
    with r:
        with r:
            pass
    model = trace_session.stop()
    ev = trace_session.events()
    mine = ev[ev["uid"] == r._trace_uid]
    assert mine["c"].tolist() == [1, 2, 1, 0]
    holds = model.spans_array()
    assert ((holds["uid"] == r._trace_uid) & (holds["kind"] == Span.LOCK_HOLD)).sum() == 1


def test_condition_event_barrier(trace_session, start_method):
    ctx = core.get_context(start_method)
    cond = ctx.Condition(name="C")
    ev_ = ctx.Event(name="E")
    bar = ctx.Barrier(2, name="B")
    p = ctx.Process(target=th.condition_event_barrier, args=(cond, ev_, bar))
    p.start()
    with cond:
        assert cond.wait(timeout=10)          # the child notifies
    ev_.set()
    assert bar.wait(timeout=10) in (0, 1)
    p.join()
    model = trace_session.stop()
    ev = trace_session.events()
    me, child = os.getpid(), p.pid
    assert kinds_of(ev, cond._trace_uid, me) == [Kind.COND_WAIT, Kind.COND_WOKEN]
    assert Kind.COND_NOTIFY in kinds_of(ev, cond._trace_uid, child)
    assert kinds_of(ev, ev_._trace_uid, me) == [Kind.EVENT_SET]
    assert kinds_of(ev, ev_._trace_uid, child) == [Kind.EVENT_WAIT, Kind.EVENT_WAIT_END]
    for pid in (me, child):
        assert kinds_of(ev, bar._trace_uid, pid) == [Kind.BARRIER_ARRIVE, Kind.BARRIER_PASS]
    passes = ev[(ev["uid"] == bar._trace_uid) & (ev["kind"] == Kind.BARRIER_PASS)]
    assert passes["b"].tolist() == [0, 0]                       # generation 0 for both
    assert sorted(passes["c"].tolist()) == [0, 1]               # the two indexes
    assert bar.generation == 1
    spans = model.spans_array()
    assert ((spans["uid"] == bar._trace_uid) & (spans["kind"] == Span.BARRIER_WAIT)).sum() == 2


def test_barrier_broken_and_abort(trace_session):
    bar = core.Barrier(2, name="B2")
    with pytest.raises(core.synchronize.threading.BrokenBarrierError):
        bar.wait(timeout=0.05)
    bar.abort()
    trace_session.stop()
    ev = trace_session.events()
    assert kinds_of(ev, bar._trace_uid) == [Kind.BARRIER_ARRIVE, Kind.BARRIER_BROKEN, Kind.BARRIER_ABORT]


def test_queue_events_with_bytes_and_blocking(trace_session, start_method):
    ctx = core.get_context(start_method)
    q = ctx.Queue(maxsize=1, name="Q")
    payload = b"x" * 5000
    p = ctx.Process(target=th.slow_consumer, args=(q, 2, 0.15))
    p.start()
    q.put(payload)
    q.put(payload)                       # blocks until the child takes the first
    p.join()
    q.close()
    q.join_thread()
    trace_session.stop()
    ev = trace_session.events()
    me, child = os.getpid(), p.pid
    puts = ev[(ev["uid"] == q._trace_uid) & (ev["kind"] == Kind.QUEUE_PUT)]
    sends = ev[(ev["uid"] == q._trace_uid) & (ev["kind"] == Kind.QUEUE_SEND)]
    gets = ev[(ev["uid"] == q._trace_uid) & (ev["kind"] == Kind.QUEUE_GET)]
    assert len(puts) == 2 and set(puts["pid"].tolist()) == {me}
    assert puts[1]["a"] >= 100_000_000            # the second put waited for room
    assert len(sends) == 2 and all(n > 5000 for n in sends["a"].tolist())
    assert len(gets) == 2 and set(gets["pid"].tolist()) == {child}
    assert gets["b"].tolist() == sends["a"].tolist()        # bytes received == bytes sent


def test_joinable_queue_task_done_and_join(trace_session):
    q = core.JoinableQueue(name="JQ")
    q.put(1)
    q.put(2)
    q.get()
    q.task_done()
    q.get()
    q.task_done()
    q.join()
    trace_session.stop()
    ev = trace_session.events()
    done = ev[(ev["uid"] == q._trace_uid) & (ev["kind"] == Kind.QUEUE_TASK_DONE)]
    assert done["a"].tolist() == [1, 0]
    assert kinds_of(ev, q._trace_uid)[-2:] == [Kind.QUEUE_JOIN_WAIT, Kind.QUEUE_JOIN]
    q.close()
    q.join_thread()


def test_pipe_events_both_ends(trace_session, start_method):
    ctx = core.get_context(start_method)
    a, b = ctx.Pipe(name="P")
    p = ctx.Process(target=th.echo, args=(b, 3))
    p.start()
    for i in range(3):
        a.send_bytes(b"y" * (100 * (i + 1)))
        assert a.recv_bytes() == b"y" * (100 * (i + 1))
    p.join()
    a.close()
    b.close()
    trace_session.stop()
    ev = trace_session.events()
    sent = ev[(ev["uid"] == a._trace_uid) & (ev["kind"] == Kind.PIPE_SEND)]
    got_child = ev[(ev["uid"] == b._trace_uid) & (ev["kind"] == Kind.PIPE_RECV)]
    assert sent["a"].tolist() == [100, 200, 300]
    assert got_child["a"].tolist() == [100, 200, 300]
    assert set(got_child["pid"].tolist()) == {p.pid}


def test_shared_memory_lifecycle(trace_session, start_method):
    ctx = core.get_context(start_method)
    from core import shared_memory
    shm = shared_memory.SharedMemory(create=True, size=4096)
    try:
        p = ctx.Process(target=th.attach_and_write, args=(shm.name,))
        p.start()
        p.join()
        assert bytes(shm.buf[:5]) == b"hello"
    finally:
        shm.close()
        shm.unlink()
    model = trace_session.stop()
    ev = trace_session.events()
    from core.shared_memory import segment_uid
    uid = segment_uid(shm.name)
    assert kinds_of(ev, uid, os.getpid()) == [Kind.SHM_CREATE, Kind.SHM_CLOSE, Kind.SHM_UNLINK]
    assert kinds_of(ev, uid, p.pid) == [Kind.SHM_ATTACH, Kind.SHM_CLOSE]
    # the segment's life shows as moments on the lanes of the processes that created, mapped and unlinked it
    ins = model.instants_array()
    ins = ins[ins["uid"] == uid]
    ins = ins[np.argsort(ins["t"], kind="stable")]
    lanes = [(pid, Kind(k)) for pid, k in zip(ins["pid"].tolist(), ins["kind"].tolist())]
    assert [x for x in lanes if x[0] == os.getpid()] == [(os.getpid(), Kind.SHM_CREATE),
                                                          (os.getpid(), Kind.SHM_CLOSE),
                                                          (os.getpid(), Kind.SHM_UNLINK)]
    assert [x for x in lanes if x[0] == p.pid] == [(p.pid, Kind.SHM_ATTACH), (p.pid, Kind.SHM_CLOSE)]
    assert set(ins["a"].tolist()) == {shm.size}


def test_manager_calls_recorded(trace_session):
    with core.Manager() as m:
        d = m.dict()
        d["a"] = 1
        assert d["a"] == 1
        manager_pid = m._process.pid
    model = trace_session.stop()
    spans = model.spans_array()
    calls = spans[spans["kind"] == Span.MANAGER_CALL]
    methods = [model.strings.get(v) for v in calls["value"].tolist()]
    assert "__setitem__" in methods and "__getitem__" in methods
    assert model.procs[manager_pid].role == "manager"


def test_process_lifecycle_terminate_and_kill(trace_session, start_method):
    ctx = core.get_context(start_method)
    ps = [ctx.Process(target=th.sleep_forever), ctx.Process(target=th.sleep_forever)]
    for p in ps:
        p.start()
    ps[0].terminate()
    ps[1].kill()
    for p in ps:
        p.join()
    model = trace_session.stop()
    ev = trace_session.events()
    assert model.procs[ps[0].pid].exitcode == -signal.SIGTERM
    assert model.procs[ps[1].pid].exitcode == -signal.SIGKILL
    assert Kind.PROC_TERMINATE in kinds_of(ev, ps[0]._trace_uid)
    assert Kind.PROC_KILL in kinds_of(ev, ps[1]._trace_uid)
    # each request shows on the lane of the process asked to end, before it ended
    ins = model.instants_array()
    for p, kind in ((ps[0], Kind.PROC_TERMINATE), (ps[1], Kind.PROC_KILL)):
        (r,) = ins[ins["kind"] == kind]
        assert (r["pid"], r["by"]) == (p.pid, os.getpid())
        assert r["t"] <= model.procs[p.pid].end_seen
    starts = ev[ev["kind"] == Kind.PROC_START]
    assert set(starts["b"].tolist()) == {StartMethod.of(start_method)}


def test_pool_initializer_is_a_span_on_each_worker(trace_session, start_method):
    """A worker's initializer shows on its lane, timed by the worker's own clock."""
    ctx = core.get_context(start_method)
    with ctx.Pool(2, initializer=time.sleep, initargs=(0.2,)) as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]
        workers = sorted(p.pid for p in pool._pool)
        pool.close()            # each worker finishes its initializer before it ends
        pool.join()
    model = trace_session.stop()
    spans = model.spans_array()
    inits = spans[spans["kind"] == Span.INITIALIZER]
    assert sorted(inits["pid"].tolist()) == workers
    tasks = model.tasks_array()
    for _uid, pid, _tid, _kind, _end, t0, t1, _value in inits.tolist():
        assert t1 - t0 >= 190_000_000
        assert model.procs[pid].booted <= t0
        assert (tasks["start"][tasks["worker"] == pid] >= t1).all()       # its tasks came after it


def test_events_survive_sigkill(trace_session, start_method):
    """Everything a process recorded before it was killed with SIGKILL is collected."""
    ctx = core.get_context(start_method)
    ready = ctx.Event()
    p = ctx.Process(target=th.record_then_wait, args=(5000, ready))
    p.start()
    assert ready.wait(timeout=30)
    time.sleep(0.05)               # the promise: events older than 50 ms before the kill are kept
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    trace_session.stop()
    ev = trace_session.events()
    marks = ev[(ev["pid"] == p.pid) & (ev["kind"] == Kind.MARK)]
    assert marks["b"].tolist() == list(range(5000))


def test_drops_are_counted_not_blocking(tmp_path):
    """With a tiny ring and nobody draining it, recording drops and counts instead of blocking."""
    d = tracedir.make_trace_dir()
    try:
        env = dict(os.environ, MPGUI_TRACE_DIR=d, MPGUI_TRACE_RING="1024")
        code = ("from core.trace import recorder\n"
                "for i in range(5000): recorder.emit(120, 1, 0, i)\n")
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
        got = []
        col = collector.Collector(d, got.append, own_dir=False)
        col.poll(final=True)
        n = sum(len(b.events) for b in got)
        assert n == 1024
        assert col.dropped_total == 5000 - 1024
        first = np.concatenate([b.events for b in got])["b"].tolist()
        assert first == list(range(1024))              # the oldest are kept, the newest dropped
    finally:
        tracedir.release_trace_dir(d)


def test_torn_record_is_not_taken(tmp_path):
    """A record whose sequence number is not yet written is left for the next poll."""
    d = tracedir.make_trace_dir()
    got = []
    try:
        recorder.enable(d)
        for i in range(10):
            recorder.emit(int(Kind.MARK), 1, 0, i)
        ring = recorder._tls.ring
        # Simulate a writer that has stored the body of record 10 but not its sequence number yet.
        off = recorder.HEADER_SIZE + 10 * 48
        struct.pack_into("<qQqqIiQ", ring.mm, off, 1, 1, 0, 10, int(Kind.MARK), 0, 0)
        col = collector.Collector(d, got.append, own_dir=False)
        col.poll()
        assert [int(x) for x in np.concatenate([b.events for b in got])["b"]] == list(range(10))
        ring.head = 10
        recorder.emit(int(Kind.MARK), 1, 0, 10)
        col.poll(final=True)
        assert [int(x) for x in np.concatenate([b.events for b in got])["b"]] == list(range(11))
    finally:
        recorder.disable()
        tracedir.release_trace_dir(d)


def test_objects_keep_identity_across_pickling(trace_session):
    ctx = core.get_context("spawn")
    lock = ctx.Lock(name="shared")
    p = ctx.Process(target=th.touch_lock, args=(lock,))
    p.start()
    p.join()
    trace_session.stop()
    ev = trace_session.events()
    child = ev[(ev["pid"] == p.pid) & (ev["kind"] == Kind.ACQ_OK)]
    assert child["uid"].tolist() == [lock._trace_uid]
