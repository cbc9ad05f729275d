"""The contention panel's live state, from a model fed the way a live run feeds it: each batch is what the
collector drained, and a process's records can come a batch after another's that followed them."""
import numpy as np

from core.trace.arrays import EVENT_DTYPE
from core.trace.events import Kind
from core.trace.model import RunModel
from mpgui.gui import contention_data

LOCK, SEM = 0x10, 0x20
A, B, C = 101, 102, 103


def records(*rows):
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for i, (t, uid, kind, a, b, c, pid) in enumerate(rows):
        ev[i] = 0
        for name, v in (("t", t), ("uid", uid), ("kind", kind), ("a", a), ("b", b), ("c", c), ("pid", pid),
                        ("tid", pid)):
            ev[i][name] = v
    return ev


def live(model, tracker):
    with model.lock:
        tracker.update(model)
        return {o.name: o for o in contention_data.live_state(model, tracker).objects}


def test_a_release_read_after_the_next_acquisition_leaves_one_holder():
    m, tracker = RunModel(), contention_data.LiveTracker()
    regs = [{"t": "obj", "uid": LOCK, "kind": "Lock", "name": "L"},
            {"t": "obj", "uid": SEM, "kind": "Semaphore", "name": "S", "value": 2}]
    # A holds the lock and a slot, B and C the other slot and a wait for the lock
    m.ingest(records((1000, LOCK, Kind.ACQ_OK, 0, -1, 1, A), (1100, SEM, Kind.ACQ_OK, 0, 1, 1, A),
                     (1200, SEM, Kind.ACQ_OK, 0, 0, 1, B), (1300, LOCK, Kind.ACQ_REQUEST, -1, 0, 0, B)), regs)
    now = live(m, tracker)
    assert [p.pid for p in now["L"].holders] == [A] and [p.pid for p in now["L"].waiters] == [B]
    assert sorted(p.pid for p in now["S"].holders) == [A, B] and now["S"].value == 0
    # B's acquisitions are read before A's releases that came first (A's records were drained later)
    m.ingest(records((3000, LOCK, Kind.ACQ_OK, 1700, -1, 1, B), (3100, SEM, Kind.RELEASE, -1, 1, 0, B),
                     (3200, SEM, Kind.ACQ_OK, 0, 0, 1, C)))
    now = live(m, tracker)
    assert [p.pid for p in now["L"].holders] == [B] and not now["L"].waiters
    assert sorted(p.pid for p in now["S"].holders) == [A, C]
    m.ingest(records((2000, LOCK, Kind.RELEASE, 1000, -1, 0, A), (2500, SEM, Kind.RELEASE, -1, 1, 0, A),
                     (2600, SEM, Kind.ACQ_OK, 0, 0, 1, B)))
    now = live(m, tracker)
    assert [p.pid for p in now["L"].holders] == [B]
    assert len(now["S"].holders) <= 2


def test_a_semaphore_released_above_its_value_keeps_every_holder():
    m, tracker = RunModel(), contention_data.LiveTracker()
    regs = [{"t": "obj", "uid": SEM, "kind": "Semaphore", "name": "S", "value": 1}]
    # released twice more than acquired: its value is 3, and three processes hold it at once
    m.ingest(records((1000, SEM, Kind.RELEASE, -1, 2, 0, A), (1100, SEM, Kind.RELEASE, -1, 3, 0, A),
                     (1200, SEM, Kind.ACQ_OK, 0, 2, 1, A), (1300, SEM, Kind.ACQ_OK, 0, 1, 1, B),
                     (1400, SEM, Kind.ACQ_OK, 0, 0, 1, C)), regs)
    now = live(m, tracker)
    assert sorted(p.pid for p in now["S"].holders) == [A, B, C] and now["S"].value == 0
