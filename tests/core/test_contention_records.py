"""What the contention analytics rely on in the records of the traced primitives: a release is recorded
before the next holder's acquisition, a recursive lock's last release carries its whole hold, an event's set
is recorded before the waiters it releases record their end, a semaphore says its initial value.

Each order is forced in one process (a clock reading that lets the holder go, a set that lets its waiter
finish first), so the tests do not depend on the machine's timing.
"""
import threading
import time

import numpy as np

import core
from core import synchronize
from core.trace.events import Kind

DEADLINE_S = 60.0


def mine(session, obj):
    """The records on ``obj``, in time order (the order a reader of the run sees)."""
    ev = session.events()
    ev = ev[(ev["uid"] == obj._trace_uid) & (ev["kind"] != Kind.CALLSITE)]
    return ev[np.argsort(ev["t"], kind="stable")]


def holders(records):
    """How many hold the object after each record, counting acquisitions and releases in time order."""
    step = np.where(records["kind"] == Kind.ACQ_OK, 1, np.where(records["kind"] == Kind.RELEASE, -1, 0))
    return np.cumsum(step)


def test_an_acquisition_is_recorded_after_the_release_that_let_it_in(trace_session, monkeypatch):
    sem = core.Semaphore(1, name="one")
    sem.acquire()
    read_clock = synchronize._now
    pending = [True]

    def clock_then_holder_lets_go():
        # The holder releases right after the next acquirer read the clock and before it tries: the
        # acquirer gets it without waiting, yet its clock reading is older than the release's.
        t = read_clock()
        if pending:
            pending.clear()
            sem.release()
        return t

    monkeypatch.setattr(synchronize, "_now", clock_then_holder_lets_go)
    assert sem.acquire()
    monkeypatch.setattr(synchronize, "_now", read_clock)
    sem.release()
    trace_session.stop()
    records = mine(trace_session, sem)
    assert (records["kind"] == Kind.ACQ_OK).sum() == 2
    assert holders(records).max() == 1          # never two holders of a semaphore of one


def test_a_recursive_locks_last_release_reports_its_whole_hold(trace_session):
    r = core.RLock(name="R")
    r.acquire()
    r.acquire()
    r.release()
    r.release()
    trace_session.stop()
    records = mine(trace_session, r)
    acquired = records[records["kind"] == Kind.ACQ_OK]
    last = records[(records["kind"] == Kind.RELEASE) & (records["c"] == 0)]
    assert len(acquired) == 2 and len(last) == 1
    assert last["a"][0] == last["t"][0] - acquired["t"][0]          # from the outer acquisition


def test_an_events_set_is_recorded_before_its_waiters_wake(trace_session, monkeypatch):
    event = core.Event(name="E")
    std_set = synchronize._std.Event.set

    def set_then_let_the_waiter_finish(self):
        std_set(self)
        woken.join(DEADLINE_S)          # the waiter records its end before set() returns

    woken = threading.Thread(target=event.wait, args=(DEADLINE_S,))
    woken.start()
    deadline = time.monotonic() + DEADLINE_S
    while not len(mine(trace_session, event)) and time.monotonic() < deadline:
        time.sleep(0.002)               # until the waiter's EVENT_WAIT is in the trace
    monkeypatch.setattr(synchronize._std.Event, "set", set_then_let_the_waiter_finish)
    event.set()
    assert not woken.is_alive()
    trace_session.stop()
    records = mine(trace_session, event)
    kinds = [Kind(k) for k in records["kind"].tolist()]
    assert kinds == [Kind.EVENT_WAIT, Kind.EVENT_SET, Kind.EVENT_WAIT_END], kinds


def test_a_semaphore_registers_its_initial_value(trace_session):
    sem, bounded, lock = core.Semaphore(3, name="three"), core.BoundedSemaphore(2, name="two"), core.Lock()
    trace_session.stop()
    objects = {r["uid"]: r for b in trace_session.batches for r in b.metas if r.get("t") == "obj"}
    assert objects[sem._trace_uid]["value"] == 3
    assert objects[bounded._trace_uid]["value"] == 2
    assert "value" not in objects[lock._trace_uid]
