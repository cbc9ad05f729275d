"""Call sites: a wait that blocks records where in the program it waited (CALLSITE, before the wait's own
record, on the object waited on), and a wait that does not block records nothing.

The waits are made to block without timing: the parent holds what the workers want until the trace shows
every worker asking (or, in one process, until the waiting thread's stack shows it blocked in a read).
"""
import os
import sys
import threading
import time

import numpy as np
import pytest

import core
from core.trace import recorder
from core.trace.events import BLOCKED_NS, Kind
from core.trace.model import MIN_BLOCKED_NS

import contention_helpers as ch

#: How long a test waits for something the trace or a stack must show, at most.
DEADLINE_S = 60.0
WORKERS = 3


# -- reading the session -------------------------------------------------------------------------------------
def strings_of(session):
    return {r["id"]: r["s"] for b in session.batches for r in b.metas if r.get("t") == "str"}


def records(session, uid, kind, pid=None):
    ev = session.events()
    sel = (ev["uid"] == uid) & (ev["kind"] == kind)
    if pid is not None:
        sel &= ev["pid"] == pid
    return ev[sel]


def sites(session, uid, pid=None, tid=None):
    """The call sites recorded on ``uid`` (by ``pid``, in its thread ``tid``), as text, in the order recorded."""
    text = strings_of(session)
    mine = records(session, uid, Kind.CALLSITE, pid)
    if tid is not None:
        mine = mine[mine["tid"] == tid]
    return [text.get(sid, "#%x" % sid) for sid in mine["a"].tolist()]


#: Where a queue, pipe or manager call keeps how long it took (the kinds whose call site is decided after the
#: call, by its length: recorder.wait_ended).
_TOOK = {Kind.QUEUE_PUT: "a", Kind.QUEUE_GET: "a", Kind.QUEUE_FULL: "a", Kind.QUEUE_EMPTY: "a",
         Kind.PIPE_SEND: "b", Kind.PIPE_RECV: "b", Kind.MANAGER_CALL: "a"}


def assert_site_iff_blocked(session, uid):
    """Each call on ``uid`` that took events.BLOCKED_NS or more comes right after its call site (same
    thread, same time), and no other call has one."""
    from core.managers import WAITING_METHODS
    text = strings_of(session)
    ev = session.events()
    ev = ev[ev["uid"] == uid]
    for pid, tid in set(zip(ev["pid"].tolist(), ev["tid"].tolist())):
        mine = ev[(ev["pid"] == pid) & (ev["tid"] == tid)]
        kinds = mine["kind"].tolist()
        for i, kind in enumerate(kinds):
            if kind not in _TOOK or kind == Kind.MANAGER_CALL and text[mine["b"][i]] not in WAITING_METHODS:
                continue
            blocked = mine[_TOOK[kind]][i] >= BLOCKED_NS
            after_site = i > 0 and kinds[i - 1] == Kind.CALLSITE and mine["t"][i - 1] == mine["t"][i]
            assert blocked == after_site, (Kind(kind).name, int(mine[_TOOK[kind]][i]), kinds)
        # and every call site is followed by the record of its call (a join's: it waits after its site)
        assert kinds[-1] != Kind.CALLSITE and all(k in _TOOK or k == Kind.QUEUE_JOIN
                                                  for k, before in zip(kinds[1:], kinds) if before == Kind.CALLSITE)


def wait_for_records(session, uid, kind, n):
    """Poll the trace until it holds ``n`` records of ``kind`` on ``uid``."""
    deadline = time.monotonic() + DEADLINE_S
    while len(records(session, uid, kind)) < n:
        if time.monotonic() > deadline:
            pytest.fail("the trace never showed %d %s records on %#x" % (n, Kind(kind).name, uid))
        time.sleep(0.005)


def blocked_in(ident, function, module):
    """Whether the thread ``ident`` is inside ``function`` of the stdlib's ``multiprocessing.<module>``."""
    path = os.path.join("multiprocessing", module + ".py")
    f = sys._current_frames().get(ident)
    while f is not None:
        if f.f_code.co_name == function and f.f_code.co_filename.endswith(path):
            return True
        f = f.f_back
    return False


def blocked_reading(ident):
    """Whether the thread ``ident`` is blocked reading a connection (a queue get, a pipe recv, a manager
    call waiting for its answer)."""
    return blocked_in(ident, "_recv", "connection")


def in_thread_once(ready, action):
    """Start a thread that runs ``action()`` once ``ready()`` is true (polled, with a deadline)."""
    def run():
        deadline = time.monotonic() + DEADLINE_S
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.002)
        action()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# -- the helper ------------------------------------------------------------------------------------------------
def test_a_call_site_is_the_callers_line_interned_once(trace_session):
    ids = []
    for _ in range(3):
        ids.append(recorder.call_site())                       # site: direct
    trace_session.stop()
    expected = ch.site_text("direct", "test_a_call_site_is_the_callers_line_interned_once", __file__)
    assert len(set(ids)) == 1
    registered = [r for b in trace_session.batches for r in b.metas if r.get("t") == "str" and r["s"] == expected]
    assert len(registered) == 1 and registered[0]["id"] == ids[0]


def test_the_blocked_threshold_is_the_models():
    assert BLOCKED_NS == MIN_BLOCKED_NS


# -- waits that block, across processes --------------------------------------------------------------------------
def test_blocked_waits_record_the_workers_lines(trace_session, start_method):
    objects, ps = ch.run_contention(core.get_context(start_method), trace_session.events, WORKERS)
    assert [p.exitcode for p in ps] == [0] * WORKERS
    trace_session.stop()
    me = os.getpid()
    for marker, obj in objects.items():
        expected = ch.site_text(marker, "contend")
        for p in ps:
            assert sites(trace_session, obj._trace_uid, p.pid) == [expected], (marker, p.pid)
        if marker != "queue":       # the parent's puts may have taken long enough to count as blocked
            assert sites(trace_session, obj._trace_uid, me) == [], marker
    assert_site_iff_blocked(trace_session, objects["queue"]._trace_uid)
    # each call site comes right before the record of the wait it belongs to, in its thread's order
    ev = trace_session.events()
    follows = {"lock": Kind.ACQ_REQUEST, "semaphore": Kind.ACQ_REQUEST, "condition": Kind.COND_WAIT,
               "event": Kind.EVENT_WAIT_END, "barrier": Kind.BARRIER_ARRIVE, "queue": Kind.QUEUE_GET}
    for marker, kind in follows.items():
        for p in ps:
            mine = ev[(ev["uid"] == objects[marker]._trace_uid) & (ev["pid"] == p.pid)]
            kinds = mine["kind"].tolist()
            i = kinds.index(Kind.CALLSITE)
            assert kinds[i + 1] == kind and mine["t"][i + 1] >= mine["t"][i], (marker, kinds)


def test_waits_that_do_not_block_record_no_call_site(trace_session, start_method):
    ctx = core.get_context(start_method)
    lock, sem, event = ctx.Lock(name="free"), ctx.Semaphore(3, name="roomy"), ctx.Event(name="already set")
    event.set()
    barrier = ctx.Barrier(1, name="alone")
    q = ctx.Queue(name="stocked")
    p = ctx.Process(target=ch.uncontended, args=(lock, sem, event, 200))
    p.start()
    p.join(DEADLINE_S)
    assert p.exitcode == 0
    ch.uncontended(lock, sem, event, 200)              # after the child: nobody else wants them
    barrier.wait()                         # the only party: passes at once
    q.put(1)
    deadline = time.monotonic() + DEADLINE_S
    while q.empty() and time.monotonic() < deadline:   # the feeder thread has written it: get cannot block
        time.sleep(0.002)
    assert q.get() == 1
    q.close()
    q.join_thread()
    trace_session.stop()
    acquired = records(trace_session, lock._trace_uid, Kind.ACQ_OK)
    assert len(acquired) == 400 and (acquired["a"] == 0).all()
    for obj in (lock, sem, event, barrier):
        assert sites(trace_session, obj._trace_uid) == [], obj.name
    # a queue's get or put is known to have blocked only once it returns: it has a call site when it took
    # long enough to count as blocked (the first put of a process starts the feeder thread, which does)
    assert_site_iff_blocked(trace_session, q._trace_uid)


# -- waits that block, in one process: a queue, a pipe, a manager's lock -----------------------------------------
def test_a_blocked_get_recv_and_manager_call_record_the_callers_line(trace_session):
    me = threading.get_ident()
    q = core.Queue(name="Q")
    filler = in_thread_once(lambda: blocked_reading(me), lambda: q.put("x"))
    assert q.get() == "x"                                                # site: queue
    filler.join()
    jq = core.JoinableQueue(name="JQ")
    jq.put("job")
    worker = in_thread_once(lambda: blocked_in(me, "wait", "synchronize"),
                            lambda: (jq.get(), jq.task_done()))
    jq.join()                                                            # site: join
    worker.join()
    a, b = core.Pipe(name="P")
    sender = in_thread_once(lambda: blocked_reading(me), lambda: b.send_bytes(b"y"))
    assert a.recv_bytes() == b"y"                                        # site: pipe
    sender.join()
    with core.Manager() as manager:
        mlock = manager.Lock()
        mlock.acquire()                     # connects this thread to the manager: later calls only wait
        mlock.release()
        held = threading.Event()
        holder = threading.Thread(target=lambda: (mlock.acquire(), held.set()))
        holder.start()
        assert held.wait(DEADLINE_S)
        releaser = in_thread_once(lambda: blocked_reading(me), mlock.release)
        mlock.acquire()                                                  # site: manager
        releaser.join()
        holder.join()
        mlock.release()
        muid = mlock._trace_uid
    for queue_ in (q, jq):
        queue_.close()
        queue_.join_thread()
    a.close()
    b.close()
    trace_session.stop()
    test = "test_a_blocked_get_recv_and_manager_call_record_the_callers_line"
    main_thread = threading.main_thread().native_id
    for uid, marker in ((q._trace_uid, "queue"), (a._trace_uid, "pipe")):
        assert sites(trace_session, uid, os.getpid(), main_thread) == [ch.site_text(marker, test, __file__)]
    # the first put into the joinable queue (it starts the feeder thread) and the first acquire through the
    # manager (it connects) may well have taken long enough to count as blocked too
    assert ch.site_text("join", test, __file__) in sites(trace_session, jq._trace_uid, os.getpid(), main_thread)
    assert ch.site_text("manager", test, __file__) in sites(trace_session, muid, os.getpid(), main_thread)
    for uid in (q._trace_uid, jq._trace_uid, a._trace_uid, muid):
        assert_site_iff_blocked(trace_session, uid)


def test_call_sites_switched_off_record_nothing(trace_session, monkeypatch):
    monkeypatch.delenv(recorder.CALLSITES_ENV, raising=False)     # what the switch sets is undone after
    lock = core.Lock(name="quiet")
    lock.acquire()
    recorder.set_call_sites(False)
    try:
        releaser = in_thread_once(lambda: len(records(trace_session, lock._trace_uid, Kind.ACQ_REQUEST)) == 1,
                                  lock.release)
        with lock:
            pass
        releaser.join()
    finally:
        recorder.set_call_sites(True)
    trace_session.stop()
    assert len(records(trace_session, lock._trace_uid, Kind.ACQ_REQUEST)) == 1
    assert sites(trace_session, lock._trace_uid) == []


def test_a_thread_running_only_library_code_names_its_innermost_frame_outside_the_wrappers(trace_session):
    lock = core.Lock(name="from a bare thread")
    lock.acquire()
    waiter = threading.Thread(target=lock.acquire)       # no frame of the program's on its stack
    waiter.start()
    wait_for_records(trace_session, lock._trace_uid, Kind.ACQ_REQUEST, 1)
    lock.release()
    waiter.join()
    lock.release()
    trace_session.stop()
    (site,) = sites(trace_session, lock._trace_uid)
    assert site.startswith(threading.__file__ + ":") and site.endswith(" in Thread.run"), site


def test_uncontended_loops_never_look_at_their_stack(trace_session, monkeypatch):
    """The capture is on the blocking path only: an uncontended acquire does not even call it."""
    calls = []
    monkeypatch.setattr(recorder, "call_site", lambda frame=None: calls.append(frame) or 0)
    lock, sem = core.Lock(), core.Semaphore(2)
    for _ in range(100):
        with lock:
            pass
        with sem:
            pass
    trace_session.stop()
    assert calls == []
    assert np.all(records(trace_session, lock._trace_uid, Kind.ACQ_OK)["a"] == 0)
