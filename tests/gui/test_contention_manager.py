"""A manager-served lock (Manager().Lock()) is an object of the contention panel like any lock: its acquire()
calls are its waits, from the end of acquire() to the start of release() its holds, and a release() by
another process unblocks a contended acquire()."""
import os
import subprocess
import sys

import numpy as np

from core.trace.store import RunFile
from mpgui.gui import contention_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAM = os.path.join(ROOT, "tests", "programs", "manager_lock.py")


def trace(tmp_path):
    out = str(tmp_path / "manager_lock.mpgrun")
    subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "trace", "--out", out, "--quiet", PROGRAM],
                   check=True, timeout=120, capture_output=True, env=dict(os.environ, MPGUI_HOME=str(tmp_path)))
    return out


def test_a_manager_lock_has_acquisitions_holds_and_handoffs(tmp_path):
    out = trace(tmp_path)
    rep = contention_data.analyse_path(out)
    figs = contention_data.Analysis.of(rep, 0).figures()
    managed = [u for u, k in figs.kinds.items() if k == "Lock (manager)"]
    assert len(managed) == 1
    o = figs.objects[figs.objects["uid"] == np.uint64(managed[0])][0]
    assert o["acquired"] == 30 and o["hold_count"] == 30
    assert o["hold_p50"] >= 5_000_000               # each hold slept 5 ms with the lock
    # three processes taking turns: some acquire() waited, and each of those was let go by another's release
    assert 0 < o["contended"] <= 30
    links = figs.links[managed[0]]
    assert 0 < len(links) <= o["contended"]
    assert (links["from_pid"] != links["to_pid"]).all() and (links["latency"] >= 0).all()
    assert (links["from_t"] >= links["wait_t0"]).all() and (links["from_t"] <= links["to_t"]).all()


def test_the_state_of_a_manager_lock_names_its_one_holder(tmp_path):
    out = trace(tmp_path)
    rep = contention_data.analyse_path(out)
    _, holds = contention_data.manager_lock_tables(rep)
    with RunFile(out) as rf:
        model = rf.model()
    assert len(holds) == 30
    for h in holds[::3]:
        pic = contention_data.state_at(model, int(h["t0"] + h["t1"]) // 2)
        lock = [o for o in pic.objects if o.kind == "Lock (manager)"]
        assert len(lock) == 1 and [p.pid for p in lock[0].holders] == [int(h["pid"])]
        assert lock[0].holders[0].since == int(h["t0"])
    # live: what the reader's tracker makes of the whole run, at its end: nobody holds it
    tracker = contention_data.LiveTracker()
    with model.lock:
        tracker.update(model)
        end = contention_data.live_state(model, tracker)
    assert len(tracker.managed) == 3 and not any(holds for _, holds in tracker.managed.values())
    assert all(not o.holders for o in end.objects)
