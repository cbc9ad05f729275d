"""The contention analytics on small synthetic event streams, against figures worked out by hand.

Times are in microseconds in the stream below (``R`` makes them ns).  The story, per object:

lock L (uid 1): pid 10 holds it 1000..5000; pid 20 asks at 2000 (call site "w.py:10 in work", interned as
  101), gets it at 5300 (waited 3300), holds it to 9300; pid 30 asks at 3000 (the same line, interned by its
  own process as 201), gets it at 9500 (waited 6500), releases at 10500; pid 10 takes it again 20000..21000
  while pid 20 tries without blocking at 20500 and gives up.
semaphore S (uid 2, initial value 2): pids 40 and 50 take it at 100 and 200; pid 60 must wait (site 102) from
  300, gets in at 1200 after pid 40's release at 1100; pid 50 releases at 1500, pid 60 at 2000.
condition C (uid 4): pid 80 waits from 100 (site 103); pid 90 notifies at 50 (too early) and at 400; pid 80
  wakes at 600.  Pid 81 waits 100..700 (no site) and times out.
event E (uid 5): pid 100 waits from 0 (site 104, recorded once it blocks at 10), pid 110 sets it at 850, pid
  100 ends at 900.  Pid 100 waits again at 1000 on the set event: 2 ns, no block.
barrier B (uid 6, 3 parties, generation 0): pids 200 and 210 arrive at 100 and 200 (sites 105, 106), pid 220
  last at 300; they pass at 330, 340 and 400 (the last to arrive took 100 us to wake the others: it did
  not wait for anyone).
queue Q (uid 7): pid 130 puts at 900 (its feeder, tid 131, writes 50 bytes at 950); pid 120's get blocked
  200..1000.  Then pid 130 puts at 1100 (written at 1120), pid 120 gets it at 1130 without blocking.  Then
  pid 140 puts at 2000 (written 2010), pid 130 at 2005 (written 2020); pid 120's gets block 1915..2015 and
  1930..2030: the first takes pid 140's message, the second pid 130's.
"""
import numpy as np
import pytest

from core.trace import contention as C
from core.trace.arrays import EVENT_DTYPE
from core.trace.events import Kind as K
from core.trace.store import RunFile, RunWriter

US = 1000
L, S, NESTED, COND, EV, BAR, Q = 1, 2, 3, 4, 5, 6, 7
SITES = {101: "w.py:10 in work", 201: "w.py:10 in work", 102: "w.py:20 in work", 103: "w.py:30 in Waiter.run",
         104: "C:\\code\\e.py:7 in main", 105: "w.py:40 in work", 106: "w.py:40 in work"}


def R(t, kind, uid, pid, a=0, b=0, c=0, tid=None):
    """One record, ``t`` in microseconds; durations in ``a``/``b`` are given in microseconds too where the
    kind holds one there (the caller multiplies)."""
    return (int(t * US), uid, a, b, int(kind), c, pid, pid if tid is None else tid)


def stream():
    rows = [
        # lock L
        R(1000, K.ACQ_OK, L, 10, 0, -1, 1), R(5000, K.RELEASE, L, 10, 4000 * US, -1, 0),
        R(2000, K.CALLSITE, L, 20, 101), R(2000, K.ACQ_REQUEST, L, 20, -1),
        R(5300, K.ACQ_OK, L, 20, 3300 * US, -1, 1), R(9300, K.RELEASE, L, 20, 4000 * US, -1, 0),
        R(3000, K.CALLSITE, L, 30, 201), R(3000, K.ACQ_REQUEST, L, 30, -1),
        R(9500, K.ACQ_OK, L, 30, 6500 * US, -1, 1), R(10500, K.RELEASE, L, 30, 1000 * US, -1, 0),
        R(20000, K.ACQ_OK, L, 10, 0, -1, 1), R(20500, K.ACQ_TIMEOUT, L, 20, 0),
        R(21000, K.RELEASE, L, 10, 1000 * US, -1, 0),
        # semaphore S
        R(100, K.ACQ_OK, S, 40, 0, 1, 1), R(200, K.ACQ_OK, S, 50, 0, 0, 1),
        R(300, K.CALLSITE, S, 60, 102), R(300, K.ACQ_REQUEST, S, 60, -1),
        R(1100, K.RELEASE, S, 40, -1, 1, 0), R(1200, K.ACQ_OK, S, 60, 900 * US, 0, 1),
        R(1500, K.RELEASE, S, 50, -1, 1, 0), R(2000, K.RELEASE, S, 60, -1, 2, 0),
        # condition C
        R(100, K.CALLSITE, COND, 80, 103), R(100, K.COND_WAIT, COND, 80, -1),
        R(50, K.COND_NOTIFY, COND, 90, 1), R(400, K.COND_NOTIFY, COND, 90, 1),
        R(600, K.COND_WOKEN, COND, 80, 500 * US, 1),
        R(100, K.COND_WAIT, COND, 81, -1), R(700, K.COND_WOKEN, COND, 81, 600 * US, 0),
        # event E
        R(0, K.EVENT_WAIT, EV, 100, -1), R(10, K.CALLSITE, EV, 100, 104), R(850, K.EVENT_SET, EV, 110),
        R(900, K.EVENT_WAIT_END, EV, 100, 900 * US, 1),
        R(1000, K.EVENT_WAIT, EV, 100, -1), R(1000.002, K.EVENT_WAIT_END, EV, 100, 2, 1),
        # barrier B
        R(100, K.CALLSITE, BAR, 200, 105), R(100, K.BARRIER_ARRIVE, BAR, 200, 3, 0, 0),
        R(200, K.CALLSITE, BAR, 210, 106), R(200, K.BARRIER_ARRIVE, BAR, 210, 3, 0, 1),
        R(300, K.BARRIER_ARRIVE, BAR, 220, 3, 0, 2), R(400, K.BARRIER_PASS, BAR, 220, 100 * US, 0, 2),
        R(330, K.BARRIER_PASS, BAR, 200, 230 * US, 0, 0), R(340, K.BARRIER_PASS, BAR, 210, 140 * US, 0, 1),
        # queue Q
        R(900, K.QUEUE_PUT, Q, 130, 5 * US, 1), R(950, K.QUEUE_SEND, Q, 130, 50, tid=131),
        R(1000, K.QUEUE_GET, Q, 120, 800 * US, 50, 0),
        R(1100, K.QUEUE_PUT, Q, 130, 4 * US, 1), R(1120, K.QUEUE_SEND, Q, 130, 60, tid=131),
        R(1130, K.QUEUE_GET, Q, 120, 3 * US, 60, 0),
        R(2000, K.QUEUE_PUT, Q, 140, 5 * US, 1), R(2010, K.QUEUE_SEND, Q, 140, 70, tid=141),
        R(2005, K.QUEUE_PUT, Q, 130, 5 * US, 2), R(2020, K.QUEUE_SEND, Q, 130, 80, tid=131),
        R(2015, K.QUEUE_GET, Q, 120, 100 * US, 70, 1), R(2030, K.QUEUE_GET, Q, 120, 100 * US, 80, 0),
    ]
    return np.array(rows, dtype=EVENT_DTYPE)


def row(table, uid):
    (r,) = table[table["uid"] == uid]
    return r


@pytest.fixture(scope="module")
def report():
    return C.analyse(stream(), [{"t": "str", "id": i, "s": s} for i, s in SITES.items()]
                     + [{"t": "obj", "uid": S, "kind": "Semaphore", "name": "S", "value": 2}])


# -- tables ----------------------------------------------------------------------------------------------------
def test_waits_carry_their_call_site_and_whether_they_blocked(report):
    w = report.waits
    lock = w[w["uid"] == L]
    lock = lock[np.argsort(lock["t"])]
    assert lock["wait"].tolist() == [0, 3300 * US, 6500 * US, 0, 0]
    assert lock["site"].tolist() == [0, 101, 201, 0, 0]
    assert lock["blocked"].tolist() == [False, True, True, False, False]
    assert lock["outcome"].tolist() == [C.Outcome.OK] * 3 + [C.Outcome.OK, C.Outcome.TIMEOUT]
    cond = w[w["uid"] == COND]
    assert sorted(zip(cond["pid"].tolist(), cond["site"].tolist(), cond["outcome"].tolist())) == [
        (80, 103, C.Outcome.OK), (81, 0, C.Outcome.TIMEOUT)]
    ev = w[w["uid"] == EV]
    assert sorted(zip(ev["wait"].tolist(), ev["site"].tolist(), ev["blocked"].tolist())) == [
        (2, 0, False), (900 * US, 104, True)]
    q = w[w["uid"] == Q]
    assert q["blocked"].sum() == 3 and (q["site"] == 0).all()      # blocked by their length, no site recorded


def test_a_call_site_belongs_to_the_next_wait_of_its_thread_on_its_object():
    ev = np.array([R(1, K.CALLSITE, L, 1, 7), R(2, K.ACQ_OK, S, 1, 0, -1, 1),    # another object: not its
                   R(3, K.ACQ_OK, L, 2, 5 * US, -1, 1),                           # another thread: not its
                   R(4, K.ACQ_OK, L, 1, 3 * US, -1, 1),                           # its
                   R(5, K.ACQ_OK, L, 1, 0, -1, 1)], dtype=EVENT_DTYPE)            # the next one: none
    w = C.waits(ev)
    w = w[np.lexsort((w["pid"], w["t"]))]
    assert list(zip(w["t"].tolist(), w["site"].tolist())) == [(2 * US, 0), (3 * US, 0), (4 * US, 7), (5 * US, 0)]


def test_holds_read_a_locks_release_and_pair_a_semaphores(report):
    h = report.holds
    lock = sorted(zip(h[h["uid"] == L]["t0"].tolist(), h[h["uid"] == L]["t1"].tolist()))
    assert lock == [(1000 * US, 5000 * US), (5300 * US, 9300 * US), (9500 * US, 10500 * US), (20000 * US, 21000 * US)]
    sem = sorted(zip(h[h["uid"] == S]["pid"].tolist(), (h[h["uid"] == S]["t1"] - h[h["uid"] == S]["t0"]).tolist()))
    assert sem == [(40, 1000 * US), (50, 1300 * US), (60, 800 * US)]


def test_a_thread_holding_a_semaphore_twice_releases_the_latest_first():
    ev = np.array([R(10, K.ACQ_OK, NESTED, 7, 0, 1, 1), R(20, K.ACQ_OK, NESTED, 7, 0, 0, 1),
                   R(30, K.RELEASE, NESTED, 7, -1, 1, 0), R(50, K.RELEASE, NESTED, 7, -1, 2, 0),
                   R(60, K.RELEASE, NESTED, 8, -1, 3, 0)],               # a release nobody acquired here
                  dtype=EVENT_DTYPE)
    h = C.holds(ev)
    assert sorted(zip(h["t0"].tolist(), h["t1"].tolist())) == [(10 * US, 50 * US), (20 * US, 30 * US)]


def test_handoffs_link_each_ended_wait_to_what_ended_it(report):
    got = sorted((int(r["uid"]), int(r["from_pid"]), int(r["from_t"]) // US, int(r["to_pid"]),
                  int(r["to_t"]) // US, int(r["latency"]) // US, C.Family(r["family"]).name)
                 for r in report.links)
    assert got == [
        (L, 10, 5000, 20, 5300, 300, "LOCK"),            # pid 10's release let pid 20 in
        (L, 20, 9300, 30, 9500, 200, "LOCK"),            # then pid 20's let pid 30 in
        (S, 40, 1100, 60, 1200, 100, "LOCK"),            # the semaphore's release just before
        (COND, 90, 400, 80, 600, 200, "CONDITION"),      # the notify in the wait, not the one before it
        (EV, 110, 850, 100, 900, 50, "EVENT"),
        (BAR, 220, 300, 200, 330, 30, "BARRIER"),        # the last arrival released the other two
        (BAR, 220, 300, 210, 340, 40, "BARRIER"),
        (Q, 130, 900, 120, 1000, 100, "QUEUE"),          # the put whose message the blocked get took
        (Q, 130, 2005, 120, 2030, 25, "QUEUE"),          # first in, first out: pid 130's came second
        (Q, 140, 2000, 120, 2015, 15, "QUEUE"),
    ]
    lock = report.links_of(uid=L)
    assert sorted((lock["wait_t0"] // US).tolist()) == [2000, 3000]          # when each wait began
    assert sorted(report.links_of(pid=90)["to_pid"].tolist()) == [80]


# -- figures ---------------------------------------------------------------------------------------------------
def test_object_figures_match_the_hand_computed_ones(report):
    stats = report.objects()
    assert stats["uid"][0] == L                          # the most time waited: first
    lock = row(stats, L)
    assert (lock["family"], lock["acquired"], lock["contended"], lock["timeouts"]) == (C.Family.LOCK, 4, 2, 1)
    assert lock["share"] == 0.5
    assert (lock["wait_count"], lock["wait_total"], lock["wait_p50"], lock["wait_p95"], lock["wait_max"]) == (
        2, 9800 * US, 3300 * US, 6500 * US, 6500 * US)
    assert (lock["hold_count"], lock["hold_total"], lock["hold_p50"], lock["hold_p95"], lock["hold_max"]) == (
        4, 10000 * US, 1000 * US, 4000 * US, 4000 * US)
    assert (lock["handoff_count"], lock["handoff_total"], lock["handoff_p50"], lock["handoff_p95"],
            lock["handoff_max"]) == (2, 500 * US, 200 * US, 300 * US, 300 * US)
    # histogram bins (edges 1, 2, 5, 10, 20, 50 us ... 10 s): 1 ms is bin 10, 3.3 and 4 ms bin 11, 6.5 ms bin 12
    assert {i: n for i, n in enumerate(lock["wait_hist"].tolist()) if n} == {11: 1, 12: 1}
    assert {i: n for i, n in enumerate(lock["hold_hist"].tolist()) if n} == {10: 2, 11: 2}
    cond = row(stats, COND)
    assert (cond["acquired"], cond["contended"], cond["timeouts"], cond["wait_count"], cond["wait_total"]) == (
        1, 1, 1, 2, 1100 * US)                           # the timed-out wait blocked too (600 us)
    assert cond["hold_count"] == 0 and cond["hold_p50"] == -1 and cond["hold_max"] == -1
    event = row(stats, EV)
    assert (event["acquired"], event["contended"], event["share"]) == (2, 1, 0.5)
    bar = row(stats, BAR)                               # the last arrival did not block, however long it took
    assert (bar["acquired"], bar["contended"], bar["wait_total"], bar["handoff_count"]) == (3, 2, 370 * US, 2)
    assert set(stats["uid"].tolist()) == {L, S, COND, EV, BAR}       # queues have figures of their own


def test_object_figures_for_a_time_range(report):
    stats = report.objects(5000 * US, 10000 * US)       # pid 20's and 30's acquisitions, 20's release
    lock = row(stats, L)
    assert (lock["acquired"], lock["contended"], lock["timeouts"]) == (2, 2, 0)
    assert (lock["hold_count"], lock["hold_total"]) == (2, 8000 * US)    # released at 5000 and 9300
    assert lock["handoff_count"] == 2
    assert not len(report.objects(30000 * US, None))


def test_the_blocking_profile_groups_a_line_across_processes(report):
    profile = report.profile()
    assert [s.site for s in profile] == ["w.py:10 in work", "C:\\code\\e.py:7 in main", "w.py:20 in work",
                                         "w.py:30 in Waiter.run", "w.py:40 in work"]
    top = profile[0]
    assert (top.waits, top.total_ns, top.p50_ns, top.p95_ns, top.max_ns) == (2, 9800 * US, 3300 * US, 6500 * US,
                                                                              6500 * US)
    assert top.objects == (L,) and top.pids == (20, 30)
    assert (top.path, top.line, top.function) == ("w.py", 10, "work")
    assert (profile[1].path, profile[1].line, profile[1].function) == ("C:\\code\\e.py", 7, "main")
    barrier = profile[-1]
    assert (barrier.waits, barrier.total_ns, barrier.pids) == (2, 370 * US, (200, 210))
    assert [s.site for s in report.profile(0, 2500 * US)] == ["C:\\code\\e.py:7 in main", "w.py:20 in work",
                                                             "w.py:30 in Waiter.run", "w.py:40 in work"]


def test_queue_figures(report):
    (q,) = report.queues()
    assert (q["uid"], q["family"], q["puts"], q["gets"], q["bytes_in"], q["bytes_out"]) == (
        Q, C.Family.QUEUE, 4, 4, 260, 260)
    assert (q["put_blocked"], q["get_blocked"], q["get_blocked_ns"], q["timeouts"], q["max_depth"]) == (
        0, 3, 1000 * US, 0, 2)
    t, depth = report.depths()[Q]
    assert (t // US).tolist() == [900, 1000, 1100, 1130, 2000, 2005, 2015, 2030]
    assert depth.tolist() == [1, 0, 1, 0, 1, 2, 1, 0]


def test_pipe_figures():
    ev = np.array([R(1, K.PIPE_SEND, 9, 1, 100, 2 * US), R(2, K.PIPE_SEND, 9, 1, 300, 70 * US),
                   R(3, K.PIPE_RECV, 8, 2, 100, 60 * US), R(4, K.PIPE_RECV, 8, 2, -1, 1 * US)], dtype=EVENT_DTYPE)
    stats = C.queue_stats(ev)
    send, recv = row(stats, 9), row(stats, 8)
    assert (send["family"], send["puts"], send["bytes_in"], send["put_blocked"], send["put_blocked_ns"]) == (
        C.Family.PIPE, 2, 400, 1, 70 * US)
    assert (recv["gets"], recv["bytes_out"], recv["get_blocked"], recv["get_blocked_ns"], recv["max_depth"]) == (
        2, 100, 1, 60 * US, -1)


def test_semaphore_holders_never_exceed_its_value(report):
    h = report.holders(S)
    assert (h["t"] // US).tolist() == [100, 200, 1100, 1200, 1500, 2000]
    assert h["holders"].tolist() == [1, 2, 1, 2, 1, 0]
    assert h["value"].tolist() == [1, 0, 1, 0, 1, 2]
    inferred = C.semaphore_holders(stream(), S)            # no registration: the values recorded say 2
    assert inferred["value"].tolist() == h["value"].tolist()


def test_a_release_and_an_acquisition_at_the_same_instant_count_the_release_first():
    ev = np.array([R(1, K.ACQ_OK, S, 1, 0, 0, 1), R(2, K.ACQ_OK, S, 2, 5, 0, 1), R(2, K.RELEASE, S, 1, -1, 1, 0)],
                  dtype=EVENT_DTYPE)
    assert C.semaphore_holders(ev, S, 1)["holders"].tolist() == [1, 0, 1]


def test_perfetto_counters_of_the_top_call_sites(report):
    out = C.profile_counters(report, top=2)
    assert len(out) == 2 and len({name for name, _, _ in out}) == 2
    name, t, waiting = out[0]
    assert name.startswith("#1 w.py:10 in work: 2 waits")
    assert list(zip((t // US).tolist(), waiting.tolist())) == [(2000, 1), (3000, 2), (5300, 1), (9500, 0)]


def test_site_of_waits_keys_the_models_wait_spans(report):
    sites = report.site_of_waits()
    assert sites[(20, 20, L, 5300 * US)] == "w.py:10 in work"
    assert sites[(100, 100, EV, 900 * US)] == "C:\\code\\e.py:7 in main"
    assert len(sites) == 7


# -- a run file --------------------------------------------------------------------------------------------------
def test_a_run_file_gives_the_same_report_read_chunk_by_chunk(tmp_path):
    from core.trace.collector import Batch
    ev = stream()
    split = 3                          # pid 20's call site in the first chunk, its acquisition in the second
    assert ev[split - 1]["kind"] == K.CALLSITE
    path = tmp_path / "run.mpgrun"
    regs = [{"t": "str", "id": i, "s": s} for i, s in SITES.items()]
    writer = RunWriter(path)
    writer.add_batch(Batch(ev[:split], regs))
    writer.add_batch(Batch(ev[split:], []))
    writer.finish(status="ok")
    writer.close()
    with RunFile(path) as run:
        from_file = C.analyse_run(run)
    direct = C.analyse(ev, regs)
    assert from_file.objects().tobytes() == direct.objects().tobytes()
    assert [s.site for s in from_file.profile()] == [s.site for s in direct.profile()]
    assert sorted(from_file.links.tolist()) == sorted(direct.links.tolist())


def test_no_records_no_figures():
    empty = C.analyse(np.zeros(0, EVENT_DTYPE))
    assert not len(empty.objects()) and empty.profile() == [] and not len(empty.queues())
    assert not len(empty.links) and empty.depths() == {}
    assert C.profile_counters(empty) == []


def test_percentiles_are_the_same_partitioned_or_sorted(report, monkeypatch):
    partitioned = report.objects()
    monkeypatch.setattr(C, "PARTITIONED_GROUPS", 0)            # as with many objects: one sort of all
    assert report.objects().tobytes() == partitioned.tobytes()
    group = np.array([0, 1, 0, 1, 0], dtype=np.int64)
    values = np.array([2 ** 62, 7, 1, 3, 5], dtype=np.int64)     # too wide for one sort key: lexsort
    count, total, pct, top, _ = C._per_group(group, values, 2)
    assert (count.tolist(), pct[50].tolist(), pct[95].tolist(), top.tolist()) == ([3, 2], [5, 3], [2 ** 62, 7],
                                                                                 [2 ** 62, 7])


def test_damaged_registrations_name_nothing_and_break_nothing():
    regs = [{"t": "str", "id": 101}, {"t": "str", "s": "lost"}, {"t": "obj", "name": "no uid"},
            {"t": "str", "id": 201, "s": "w.py:10 in work"}]
    report = C.analyse(stream(), regs)
    assert report.name(L) == "#1" and report.kind(L) == ""
    sites = {s.site: s.waits for s in report.profile()}
    assert sites["w.py:10 in work"] == 1 and sites["#65"] == 1       # pid 20's id (101) has no text
