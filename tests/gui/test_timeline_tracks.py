"""The timeline's object tracks after real runs (pytest-qt, offscreen): a live lock_contention run shows who
held the lock and who waited; a barrier run shows every generation's arrivals and its broken barriers; a
semaphore run never shows more holders than its value; "unblocked by" links each contended acquire to the
release before it."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from core.trace import contention
from core.trace.events import Kind
from core.trace.model import Span, SpanEnd
from core.trace.store import RunFile
from mpgui.gui import theme, timeline_data
from mpgui.gui.timeline import LAYOUT, TimelineView
from mpgui.gui.timeline_data import (C_BROKEN, C_GENERATION, C_PROC0, C_SEM_HOLD, MARK_BROKEN, MARK_GENERATION,
                                     PROC_COLORS)
from tests.scenario_testing import run_scenario

RUN_TIMEOUT_MS = 90_000
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
Y_OFF = {name: y for name, y, _ in LAYOUT}


def track_of(data, name, kind="object"):
    found = [t for t in data.tracks if t.kind == kind and t.label.startswith(name + " · ")]
    assert found, "no track for %s among %s" % (name, [t.label for t in data.tracks])
    return found[0]


def bars_on(layer, keys):
    """(t0, t1, colour, ref) of a layer's bars on lanes ``keys``, sorted by start."""
    sel = np.isin(layer.pid, list(keys))
    ns = layer.all_ns()
    return ns[1][sel], ns[2][sel], ns[3][sel], ns[4][sel]


def most_at_once(t0, t1):
    """The most intervals [t0, t1) open at one moment (an end before a start at the same instant)."""
    times = np.concatenate((t0, t1))
    steps = np.concatenate((np.ones(len(t0), np.int64), -np.ones(len(t1), np.int64)))
    return int(np.cumsum(steps[np.lexsort((steps, times))]).max()) if len(times) else 0


@pytest.fixture
def view(qtbot):
    v = TimelineView()
    qtbot.addWidget(v)
    v.resize(1200, 700)
    v.show()
    return v


def _a_point_of_one_wait(w0, w1, margin=50_000):
    """(index, time ns): the middle of the longest stretch of a wait that no other wait covers (waits of one
    lock overlap when several processes wait at once; a click where two are drawn picks one of them)."""
    best = (0, None, None)
    spans = list(zip(w0.tolist(), w1.tolist()))
    for k, (a, b) in enumerate(spans):
        cuts = sorted({a, b} | {t for j, (c, d) in enumerate(spans) if j != k for t in (c, d) if a < t < b})
        for lo, hi in zip(cuts, cuts[1:]):
            mid = (lo + hi) // 2
            clear = not any(c <= mid + margin and d >= mid - margin for j, (c, d) in enumerate(spans) if j != k)
            if clear and hi - lo > best[0]:
                best = (hi - lo, k, mid)
    assert best[1] is not None, "every wait overlaps another"
    return best[1], best[2]


def test_a_live_lock_contention_run_shows_its_holders_and_waiters(qtbot, window):
    """Run from the launcher, live: the lock's track holds every hold of the lock, each coloured by the
    process that held it, never two at once; its waits are the lock's waits; its waiting counter counts
    them; and the frame draws the holds on the track's row."""
    window.launcher.select("lock_contention")
    for k, v in dict(processes="3", increments="60", hold_ms="1.0", mode="with lock").items():
        window.launcher.fields[k].set_value(v)
    assert window.launcher.run_button.isEnabled(), window.launcher.error.text()
    qtbot.mouseClick(window.launcher.run_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.source is not None and window.source.state in ("done", "failed", "error"),
                    timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.launcher.stop_button.isEnabled())
    window._refresh(force=True)
    assert window.source.state == "done", window.source.error
    data = window.timeline.data
    with RunFile(window.source.path) as rf:
        model = rf.model()
    lock = [uid for uid, o in model.objects.items() if o.get("name") == "counter lock"
            and len(model.span_rows_of(uid))][0]
    spans = model.spans_array()
    holds = spans[(spans["uid"] == lock) & (spans["kind"] == Span.LOCK_HOLD)]
    waits = spans[(spans["uid"] == lock) & (spans["kind"] == Span.LOCK_WAIT)]
    assert len(holds) == 180 and len(waits) > 0           # 3 workers x 60 increments, held 1 ms each

    track = track_of(data, "counter lock")
    assert track.uid == lock and track.role == "Lock"
    t0, t1, color, ref = bars_on(data.layers["obj_holds"], [track.pid])
    assert len(t0) == len(holds)
    assert sorted(zip(t0.tolist(), t1.tolist())) == sorted(zip(holds["t0"].tolist(), holds["t1"].tolist()))
    # each slice in its holder's colour; a lock has one holder at a time
    holder = np.array([int(data.spans[r]["pid"]) for r in ref.tolist()])
    assert (color == C_PROC0 + holder % PROC_COLORS).all()
    assert set(holder.tolist()) == set(holds["pid"].tolist()) and len(set(holder.tolist())) == 3
    assert most_at_once(t0, t1) == 1
    # the waiters' slices, and how many wait at once
    w0, w1, _, wref = bars_on(data.layers["obj_waits"], [track.pid])
    assert sorted(zip(w0.tolist(), w1.tolist())) == sorted(zip(waits["t0"].tolist(), waits["t1"].tolist()))
    waiting = {c.name: c for c in data.counters[track.pid]}["waiting"]
    assert waiting.v.max() == most_at_once(waits["t0"], waits["t1"]) and waiting.v[-1] == 0
    # drawn: the whole run in view, the holds' rectangles on the track's row
    tl = window.timeline
    tl.fit()
    QtWidgets.QApplication.processEvents()
    tl.plot.viewport().repaint()
    row = tl.item.row_of(track.pid)
    assert row >= 0
    rects, _ = tl.item.drawn["obj_holds"]
    assert np.isclose(rects[:, 1], row + Y_OFF["obj_holds"]).any()
    # a click on a wait says which wait it was; on the track, which object
    got = []
    tl.sigWaitSelected.connect(got.append)
    objects = []
    tl.sigObjectSelected.connect(objects.append)
    i, at = _a_point_of_one_wait(w0, w1)
    x = (at - data.t0) / 1e9
    tl.vb.setXRange(x - 0.002, x + 0.002, padding=0)
    QtWidgets.QApplication.processEvents()
    pos = tl.vb.mapViewToScene(QtCore.QPointF(x, row + Y_OFF["obj_waits"] + 0.1))
    qtbot.mouseClick(tl.plot.viewport(), QtCore.Qt.LeftButton, pos=tl.plot.mapFromScene(pos))
    assert objects == [lock]
    assert got and got[-1]["uid"] == lock and got[-1]["kind"] == "lock_wait"
    assert (got[-1]["t0"], got[-1]["t1"]) == (int(w0[i]), int(w1[i]))


def test_a_barrier_run_shows_every_generation_and_the_broken_barriers(qtbot, tmp_path, view):
    r = run_scenario("barrier", "fork", {"processes": 3, "phases": 3, "work_ms": 20, "slowdown": 3,
                                          "timeout": 0.2}, tmp_path)
    assert r.status == "done", r.error
    data = timeline_data.build(r.model)
    marks = data.obj_marks
    cols = {name: marks.columns[name][:marks.n] for name in ("key", "kind", "value", "color", "uid")}
    kinds = cols["kind"]

    phase = track_of(data, "phase barrier")
    mine = cols["key"] == phase.pid
    gens = cols["value"][mine & (cols["kind"] == MARK_GENERATION)]
    assert sorted(gens.tolist()) == [0, 1, 2]              # one mark per generation the barrier released
    assert (cols["color"][mine & (cols["kind"] == MARK_GENERATION)] == C_GENERATION).all()
    # arrivals out of its parties: each generation fills up to 3 and empties
    arrived = {c.name: c for c in data.counters[phase.pid]}["arrived (of 3)"]
    full = np.flatnonzero(arrived.v == 3)
    assert len(full) == 3 and arrived.v[-1] == 0 and arrived.vmax == 3
    # each generation's waits sit on its track: every party but the last waited
    w0, w1, wcolor, _ = bars_on(data.layers["obj_waits"], [phase.pid])
    assert len(w0) >= 3 * 2 and not (wcolor == C_BROKEN).any()

    # the barrier whose last party never comes: 3 of its 4 parties arrived, then it broke
    stranded = {c.name: c for c in data.counters[track_of(data, "stranded barrier").pid]}["arrived (of 4)"]
    assert stranded.v.max() == 3 and stranded.vmax == 4 and stranded.v[-1] == 0
    for name in ("stranded barrier", "aborted barrier"):
        tr = track_of(data, name)
        mine = cols["key"] == tr.pid
        assert (cols["kind"][mine] == MARK_BROKEN).sum() == 1, name       # broken, once
        _, _, wcolor, wref = bars_on(data.layers["obj_waits"], [tr.pid])
        ends = {int(data.spans[x]["end"]) for x in wref.tolist()}
        assert ends == {SpanEnd.BROKEN} and (wcolor == C_BROKEN).all(), name
    # the abort() is on the aborted barrier's track, in the colour of breaks
    aborted = track_of(data, "aborted barrier")
    mine = (cols["key"] == aborted.pid) & (kinds == 43)
    assert mine.sum() == 1 and (cols["color"][mine] == C_BROKEN).all()

    # the barrier waits on the process lanes are barrier waits, not "other wait"
    waits = data.layers["waits"]
    kinds_of = np.array([int(data.spans[x]["kind"]) for x in waits.ref.tolist()])
    assert (waits.color[kinds_of == Span.BARRIER_WAIT] == timeline_data.C_BARRIER_WAIT).all()

    # each worker's results.put() went out through its queue's feeder thread: a sub-lane with its write
    sends = data.layers["sends"]
    msgs = r.model.messages_array()
    assert len(sends) == (msgs["kind"] == int(Kind.QUEUE_SEND)).sum() >= 3
    feeders = {t.pid: t for t in data.threads}
    assert set(sends.pid.tolist()) <= set(feeders)
    assert {feeders[k].parent for k in sends.pid.tolist()} >= {lane.pid for lane in data.lanes
                                                               if lane.label.startswith("phase-worker")}

    view.set_data(data)
    view.fit()
    QtWidgets.QApplication.processEvents()
    view.plot.viewport().repaint()
    assert "sends" in view.item.drawn
    rects, colors = view.item.drawn["obj_moments"]
    assert (colors == C_GENERATION).sum() >= 3 and (colors == C_BROKEN).sum() >= 2
    view.grab().save(os.path.join(str(tmp_path), "barrier.png"))


def test_a_semaphore_run_never_shows_more_holders_than_its_value(qtbot, tmp_path, view):
    r = run_scenario("semaphore", "fork", {"processes": 5, "slots": 2, "rounds": 8, "hold_ms": 5}, tmp_path)
    assert r.status == "done", r.error
    data = timeline_data.build(r.model)
    sem = track_of(data, "resource slots")
    assert sem.role == "Semaphore"
    slots = [t for t in data.tracks if t.uid == sem.uid and t.kind == "slot"]
    keys = [sem.pid] + [t.pid for t in slots]
    assert len(keys) == 2                   # a row per holder it may have: its value, 2
    t0, t1, color, ref = bars_on(data.layers["obj_holds"], keys)
    spans = r.model.spans_array()
    holds = spans[(spans["uid"] == sem.uid) & (spans["kind"] == Span.LOCK_HOLD)]
    assert len(t0) == len(holds) == 5 * 8
    assert most_at_once(t0, t1) <= 2
    for k in keys:                          # a row shows one holder at a time
        a, b, _, _ = bars_on(data.layers["obj_holds"], [k])
        assert most_at_once(a, b) <= 1
    value = {c.name: c for c in data.counters[sem.pid]}["value (of 2)"]
    assert value.v.min() >= 0 and value.v.max() <= 2 and value.vmax == 2
    # on the process lanes, a semaphore's holds have their own colour, not a lock's
    holds_layer = data.layers["holds"]
    kind = [data.kinds.get(int(data.spans[x]["uid"])) for x in holds_layer.ref.tolist()]
    of_sem = np.array([k in ("Semaphore", "BoundedSemaphore") for k in kind])
    assert of_sem.any() and "Lock" in kind
    assert (holds_layer.color[of_sem] == C_SEM_HOLD).all()
    assert (holds_layer.color[~of_sem] != C_SEM_HOLD).all()
    assert theme.SEMAPHORE_HOLD != theme.LOCK_HOLD


def test_unblocked_by_links_each_contended_acquire_to_the_release_before_it(qtbot, tmp_path, view):
    r = run_scenario("lock_contention", "fork", {"processes": 3, "increments": 40, "hold_ms": 1.0,
                                                 "mode": "with lock"}, tmp_path)
    assert r.status == "done", r.error
    with RunFile(_run_path(tmp_path, "lock_contention")) as rf:
        model = rf.model()
    model.path = _run_path(tmp_path, "lock_contention")
    data = timeline_data.build(model)
    view.set_data(data)
    view.fit()
    track = track_of(data, "counter lock")
    view.select_object(track.uid)
    qtbot.waitUntil(lambda: view.links is not None, timeout=30_000)
    QtWidgets.QApplication.processEvents()
    spans = model.spans_array()
    mine = spans["uid"] == track.uid
    waits = spans[mine & (spans["kind"] == Span.LOCK_WAIT) & (spans["end"] == SpanEnd.OK)]
    holds = spans[mine & (spans["kind"] == Span.LOCK_HOLD)]
    assert len(waits) > 5
    x0, y0, x1, y1 = view.item.arrows
    assert len(x0) == len(waits)            # an arrow into every contended acquisition
    wait_end = np.sort((waits["t1"] - data.t0) / 1e9)
    assert np.allclose(np.sort(x1), wait_end)
    # ... from the release before it: the last hold of another process that ended by then
    rows = view.item.rows
    for a, b, ya, yb in zip(x0.tolist(), x1.tolist(), y0.tolist(), y1.tolist()):
        waiter = rows[int(yb)].pid
        ends = (holds["t1"] - data.t0) / 1e9
        before = (ends <= b + 1e-9) & (holds["pid"] != waiter)
        last = int(np.argmax(np.where(before, ends, -np.inf)))
        assert abs(ends[last] - a) < 1e-9 and rows[int(ya)].pid == holds["pid"][last]
    assert "%d handoffs in view" % len(waits) in view.handoffs.text()
    # a contended wait says who let it go, and how long the handoff took
    _, w1, _, wref = bars_on(data.layers["obj_waits"], [track.pid])
    i = int(np.argmax(w1))
    text = view.describe("obj_waits", int(wref[i]))
    last = holds[(holds["t1"] <= w1[i]) & (holds["pid"] != data.spans[int(wref[i])]["pid"])]
    releaser = int(last["pid"][np.argmax(last["t1"])])
    assert "unblocked by" in text and "(pid %d)" % releaser in text and "handoff" in text
    # a process selected: the arrows into its waits and out of its releases
    pid = int(waits["pid"][0])
    view.select_process(pid)
    x0, y0, x1, y1 = view.item.arrows
    into = waits[waits["pid"] == pid]
    assert 0 < len(x0) and sum(rows[int(y)].pid == pid for y in y1.tolist()) == len(into)
    assert all(rows[int(a)].pid == pid or rows[int(b)].pid == pid for a, b in zip(y0.tolist(), y1.tolist()))
    # drawn
    view.plot.viewport().repaint()
    view.grab().save(os.path.join(str(tmp_path), "handoffs.png"))


def _run_path(tmp_path, name):
    return os.path.join(str(tmp_path), "%s-fork.mpgrun" % name)


def test_a_condition_and_an_event_show_their_notifies_state_and_who_woke_whom(qtbot, tmp_path, view):
    r = run_scenario("condition_event", "fork", {"processes": 3, "rounds": 4}, tmp_path)
    assert r.status == "done", r.error
    path = _run_path(tmp_path, "condition_event")
    with RunFile(path) as rf:
        model = rf.model()
        report = contention.analyse_run(rf)
    model.path = path
    data = timeline_data.build(model)
    cols = {name: data.obj_marks.columns[name][:data.obj_marks.n] for name in ("key", "kind", "uid")}
    cond = track_of(data, "items ready")
    event = track_of(data, "start signal")
    assert cond.role == "Condition" and event.role == "Event"
    # every notify() and notify_all() is a mark on the condition's track
    notifies = model.instants_array()
    notifies = notifies[(notifies["kind"] == int(Kind.COND_NOTIFY)) & (notifies["uid"] == cond.uid)]
    assert len(notifies) >= 8
    assert ((cols["key"] == cond.pid) & (cols["kind"] == int(Kind.COND_NOTIFY))).sum() == len(notifies)
    # the event's state: clear, then set
    state = {c.name: c for c in data.counters[event.pid]}["set"]
    assert state.v[-1] == 1 and set(state.v.tolist()) <= {0.0, 1.0}
    assert ((cols["key"] == event.pid) & (cols["kind"] == int(Kind.EVENT_SET))).sum() >= 1
    # who woke whom: an arrow from each notify to each wait it ended, as the contention report links them
    view.set_data(data)
    view.fit()
    view.select_object(cond.uid)
    qtbot.waitUntil(lambda: view.links is not None, timeout=30_000)
    links = report.links_of(uid=cond.uid)
    assert len(links) >= 4
    x0, _, x1, _ = view.item.arrows
    assert sorted(np.round(x1, 9).tolist()) == sorted(np.round((links["to_t"] - data.t0) / 1e9, 9).tolist())
    assert sorted(np.round(x0, 9).tolist()) == sorted(np.round((links["from_t"] - data.t0) / 1e9, 9).tolist())


def test_cpu_and_memory_rows_under_each_process_on_demand(qtbot, tmp_path, view):
    r = run_scenario("lock_contention", "fork", {"processes": 2, "increments": 20, "mode": "with lock"}, tmp_path)
    assert r.status == "done", r.error
    data = timeline_data.build(r.model)
    view.set_data(data)
    view.fit()
    assert not any(row.kind == "counters" and not row.uid for row in view.rows())
    view.counters_button.click()
    rows = view.rows()
    sampled = [lane.pid for lane in data.lanes if lane.pid in data.proc_counters]
    assert sampled                          # the monitor sampled the run's processes
    for pid in sampled:
        i = next(k for k, row in enumerate(rows) if row.kind == "process" and row.pid == pid)
        assert rows[i + 1].kind == "counters" and rows[i + 1].pid == pid
        assert [c.name for c in view.item.row_counters[i + 1]] == ["CPU", "RSS"]
    QtWidgets.QApplication.processEvents()
    view.plot.viewport().repaint()
    object_counters = sum(len(c) for c in data.counters.values())
    assert view.item.counters_drawn == 2 * len(sampled) + object_counters
    view.counters_button.click()
    assert not any(row.kind == "counters" and not row.uid for row in view.rows())


MANAGED = '''
import multiprocessing
from time import sleep


def work(lock, n):
    for _ in range(n):
        with lock:
            sleep(0.005)


if __name__ == "__main__":
    with multiprocessing.Manager() as m:
        lock = m.Lock()
        ps = [multiprocessing.Process(target=work, args=(lock, 4)) for _ in range(3)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
'''


def test_a_managed_lock_shows_who_held_it(qtbot, tmp_path, view):
    """A Lock served by a manager: its track holds a slice per acquire() through the proxy, from the call's
    return to the same process's release(), in the holder's colour, one holder at a time."""
    script = tmp_path / "managed.py"
    script.write_text(MANAGED)
    out = str(tmp_path / "managed.mpgrun")
    env = dict(os.environ, MPGUI_HOME=str(tmp_path / "home"))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "trace", "--quiet", "--out", out, str(script)],
                       capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    with RunFile(out) as rf:
        model = rf.model()
    data = timeline_data.build(model)
    track = next(t for t in data.tracks if t.kind == "object" and t.role == "Lock")
    assert "managed" in track.label
    t0, t1, color, ref = bars_on(data.layers["obj_mholds"], [track.pid])
    assert len(t0) == 3 * 4
    assert most_at_once(t0, t1) == 1
    holder = np.array([int(data.managed[r]["pid"]) for r in ref.tolist()])
    assert len(set(holder.tolist())) == 3 and (color == C_PROC0 + holder % PROC_COLORS).all()
    # each hold ends when its holder's release() call begins, after its acquire() call returned
    calls = model.spans_array()
    calls = calls[(calls["kind"] == Span.MANAGER_CALL) & (calls["uid"] == track.uid)]
    method = np.array([model.strings.get(int(v)) for v in calls["value"]])
    assert sorted(t0.tolist()) == sorted(calls["t1"][method == "acquire"].tolist())
    assert sorted(t1.tolist()) == sorted(calls["t0"][method == "release"].tolist())
    view.set_data(data)
    view.fit()
    row = view.item.row_of(track.pid)
    hit = view.item.hit((int(t0[0] + t1[0]) // 2 - data.t0) / 1e9, row + 0.3, view.vb.viewPixelSize()[0])
    assert hit is not None and hit[0] == "obj_mholds"
    assert "through its manager" in view.describe(*hit)


@pytest.mark.parametrize("seed", range(6))
def test_semaphore_holds_placed_in_batches_take_the_slot_placing_them_one_by_one_gives(seed):
    """A semaphore's holders get the first slot free at their start, whether their holds are placed together
    (a chunk of a run) or one at a time, over several batches, with more holders at once than slots too."""
    from mpgui.gui import tracks as tracks_mod
    rng = np.random.default_rng(seed)
    n = 3000
    # times in coarse steps: holds often start just as another ends
    a = np.sort(rng.integers(0, 10 ** 4, n)) * 1000
    b = a + rng.integers(0, 20 * (seed + 1), n) * 1000 * (rng.random(n) > 0.1)

    def book():
        keys = iter(range(100, 10 ** 6))
        return tracks_mod.TrackBook(lambda: next(keys))

    one, batched = book(), book()
    t1 = tracks_mod.Track(1, "Semaphore", "s", 1)
    t2 = tracks_mod.Track(1, "Semaphore", "s", 1)
    cuts = [0] + sorted(rng.choice(np.arange(1, n), 40, replace=False).tolist()) + [n]
    for lo, hi in zip(cuts, cuts[1:]):
        expected = [one.place(t1, x, y) for x, y in zip(a[lo:hi].tolist(), b[lo:hi].tolist())]
        slots = batched._chain_slots(t2, a[lo:hi], b[lo:hi])
        if slots is None:
            slots = [batched.place(t2, x, y) for x, y in zip(a[lo:hi].tolist(), b[lo:hi].tolist())]
        assert list(slots) == expected
        assert t2.slot_free == t1.slot_free and len(t2.slot_keys) == len(t1.slot_keys)
