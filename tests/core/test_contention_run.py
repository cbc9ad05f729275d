"""The contention analytics on real traced runs, under every start method: the blocking profile points at the
workers' lines, the figures count what the run did, a semaphore never shows more holders than its value, and
every contended acquisition is linked to the release just before it."""
import numpy as np

import core
from core.trace import contention as C
from core.trace.events import Kind

import contention_helpers as ch

WORKERS = 3
DEADLINE_S = 60.0


def report_of(session):
    return C.analyse(session.events(), [r for b in session.batches for r in b.metas])


def hammer(ctx, obj, workers, n, hold_s, together=False):
    """``workers`` processes doing ``ch.hammer``; ``together``: all starting at once (a barrier), so that they
    contend even when a spawned process takes longer to start than another takes to finish."""
    start = ctx.Barrier(workers, name="start") if together else None
    ps = [ctx.Process(target=ch.hammer, args=(obj, n, hold_s, start)) for _ in range(workers)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(DEADLINE_S)
    assert [p.exitcode for p in ps] == [0] * workers
    return ps


def test_a_contention_run_profiled(trace_session, start_method):
    objects, ps = ch.run_contention(core.get_context(start_method), trace_session.events, WORKERS)
    assert [p.exitcode for p in ps] == [0] * WORKERS
    trace_session.stop()
    report = report_of(trace_session)
    workers = tuple(sorted(p.pid for p in ps))
    profile = {s.site: s for s in report.profile()}
    for marker, obj in objects.items():
        site = profile[ch.site_text(marker, "contend")]
        assert site.pids == workers and site.objects[0] == obj._trace_uid, marker
        if marker == "condition":       # woken, each worker waits there again for the condition's lock
            assert site.objects == (obj._trace_uid, obj._lock._trace_uid) and site.waits >= WORKERS
        else:
            assert (site.objects, site.waits) == ((obj._trace_uid,), WORKERS), marker
        assert 0 < site.p50_ns <= site.p95_ns <= site.max_ns <= site.total_ns
    stats = {int(r["uid"]): r for r in report.objects()}
    lock, sem = stats[objects["lock"]._trace_uid], stats[objects["semaphore"]._trace_uid]
    assert (lock["acquired"], lock["contended"], lock["handoff_count"]) == (WORKERS + 1, WORKERS, WORKERS)
    assert (sem["acquired"], sem["contended"], sem["handoff_count"]) == (WORKERS + 2, WORKERS, WORKERS)
    assert lock["hold_count"] == WORKERS + 1 and sem["hold_count"] == WORKERS + 2
    for marker in ("condition", "event", "barrier"):
        row = stats[objects[marker]._trace_uid]
        assert (row["contended"], row["handoff_count"]) == (WORKERS, WORKERS), marker
    assert report.holders(objects["semaphore"]._trace_uid)["holders"].max() <= 2
    q = objects["queue"]._trace_uid
    (figures,) = report.queues()
    assert (figures["uid"], figures["puts"], figures["gets"], figures["get_blocked"]) == (q, WORKERS, WORKERS,
                                                                                        WORKERS)
    fed = report.links_of(uid=q)
    assert sorted(fed["to_pid"].tolist()) == list(workers) and set(fed["from_kind"].tolist()) == {Kind.QUEUE_PUT}


def test_a_semaphore_run_never_shows_more_holders_than_its_value(trace_session, start_method):
    ctx = core.get_context(start_method)
    sem = ctx.Semaphore(2, name="two")
    hammer(ctx, sem, 4, 200, 0.0)
    trace_session.stop()
    report = report_of(trace_session)
    h = report.holders(sem._trace_uid)
    assert len(h) == 4 * 200 * 2
    assert h["holders"].max() <= 2 and h["holders"].min() >= 0 and h["holders"][-1] == 0
    assert (h["value"] >= 0).all()
    (row,) = report.objects()
    assert row["hold_count"] == row["acquired"] == 800


def test_each_contended_acquisition_is_linked_to_the_release_before_it(trace_session, start_method):
    ctx = core.get_context(start_method)
    lock = ctx.Lock(name="hot")
    hammer(ctx, lock, WORKERS, 40, 0.001, together=True)
    trace_session.stop()
    report = report_of(trace_session)
    ev = trace_session.events()
    mine = ev[ev["uid"] == lock._trace_uid]
    acquired = mine[mine["kind"] == Kind.ACQ_OK]
    released = np.sort(mine[mine["kind"] == Kind.RELEASE]["t"])
    contended = acquired[acquired["a"] > 0]
    assert len(contended) > 0
    links = report.links_of(uid=lock._trace_uid)
    assert sorted(links["to_t"].tolist()) == sorted(contended["t"].tolist())    # one link per contended one
    for link in links:
        before = released[released < link["to_t"]]
        assert link["from_t"] == before[-1] and link["from_kind"] == Kind.RELEASE
        assert (link["from_pid"], link["from_tid"]) != (link["to_pid"], link["to_tid"])
        # nobody else had the lock between that release and this acquisition
        between = acquired[(acquired["t"] > link["from_t"]) & (acquired["t"] < link["to_t"])]
        assert not len(between)
        assert link["wait_t0"] < link["from_t"] < link["to_t"]
