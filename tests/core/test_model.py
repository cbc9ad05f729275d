"""RunModel on synthetic events: what it derives must not depend on how the events were batched.

A live run reaches the model in pieces: the collector's events every 10 ms, the resource monitor's samples
in batches up to a quarter of a second late, the run's meta when the reader next looks.  A saved run arrives
in one piece, events first.  Both must give the same processes and tasks.
"""
import signal

import numpy as np
import pytest

from core.trace.arrays import EVENT_DTYPE
from core.trace.events import JobMethod, Kind, Outcome, WorkerExit
from core.trace.model import NO_TIME, RunModel, Span, SpanEnd

S = 1_000_000_000
MAIN, W1, W2 = 100, 201, 202
POOL, JOB = 7, 1


def at(seconds):
    return int(round(seconds * S))


def events(*rows):
    """rows: (seconds, kind, pid, uid, a, b, c)."""
    out = np.zeros(len(rows), EVENT_DTYPE)
    for i, (t, kind, pid, uid, a, b, c) in enumerate(rows):
        out[i] = (at(t), uid, a, b, int(kind), c, pid, pid)
    return out


def sample(t, alive=(), gone=(), zombie=()):
    def row(pid, status):
        return {"pid": pid, "ppid": MAIN, "name": "python", "cpu": 50.0, "rss": 1 << 20, "threads": 1,
                "status": status}
    return (at(t), {"cores": [50.0], "procs": [row(p, "running") for p in alive] +
                    [row(p, "zombie") for p in zombie], "gone": list(gone)})


REGS = [{"t": "proc", "pid": MAIN, "ppid": 1, "role": "main", "name": "MainProcess"},
        {"t": "proc", "pid": W1, "ppid": MAIN, "role": "worker", "name": "PoolWorker-1"},
        {"t": "proc", "pid": W2, "ppid": MAIN, "role": "worker", "name": "PoolWorker-2"}]


def pool_start(n_tasks=2):
    """Main submits a job of ``n_tasks``; task i goes to W1 (even) or W2 (odd) and starts at 0.2 s."""
    rows = [(0.1, Kind.POOL_JOB, MAIN, POOL, JOB, n_tasks, int(JobMethod.IMAP))]
    for i in range(n_tasks):
        w = W1 if i % 2 == 0 else W2
        rows += [(0.1, Kind.POOL_CHUNK_QUEUED, MAIN, POOL, JOB, i, 1),
                 (0.15, Kind.POOL_CHUNK_SENT, MAIN, POOL, JOB, i, w),
                 (0.2, Kind.POOL_TASK_T0, w, POOL, JOB, i, 0)]
    return rows


def model_of(pieces, meta=None):
    """Feed ``pieces`` (each a dict of events / samples) one ingest at a time, like the live reader."""
    m = RunModel()
    m.set_meta({"created_perf": 0, "status": "running"})
    m.ingest(None, REGS)
    for piece in pieces:
        m.ingest(piece.get("events"), (), piece.get("samples", ()))
    if meta:
        m.set_meta(dict({"created_perf": 0}, **meta))
    return m


def task(m, index):
    tab = m.tasks_array()
    return tab[tab["index"] == index][0]


# -- a task ends when its worker does -----------------------------------------------------------------------

def stopped_run_pieces():
    """Stop: the runner ends the tree at about 2.95 s; nobody records anything for the tasks then running.
    The monitor saw the workers alive until 2.9 s and gone at 3.0 s; main's last event is at 3.86 s."""
    alive = [sample(0.1 * k, alive=(MAIN, W1, W2)) for k in range(3, 30)]
    return [{"events": events(*pool_start())},
            {"events": events((3.86, Kind.MARK, MAIN, 0, 0, 0, 0))},
            {"samples": alive + [sample(3.0, alive=(MAIN,), gone=(W1, W2))]}]


@pytest.mark.parametrize("status, outcome", [("cancelled", Outcome.CANCELLED), ("running", Outcome.LOST),
                                             ("failed", Outcome.LOST)])
def test_a_task_still_open_when_its_worker_ends_ends_then(status, outcome):
    m = model_of(stopped_run_pieces(), {"status": status})
    for index, pid in ((0, W1), (1, W2)):
        died = m.procs[pid].exited
        assert at(2.9) <= died <= at(3.0)
        t = task(m, index)
        assert t["end"] == died, "the task runs on after its worker ended"
        assert t["outcome"] == outcome


def test_the_pool_s_verdict_on_a_worker_decides_its_open_task():
    """A worker the pool timed out: its open task timed out (the TASK_LOST record itself was dropped)."""
    pieces = [{"events": events(*pool_start(1))},
              {"samples": [sample(1.0, alive=(MAIN, W1))]},
              {"events": events((1.05, Kind.PROC_REAPED, MAIN, 0, W1, -signal.SIGKILL, 0),
                                (1.05, Kind.POOL_WORKER_EXIT, MAIN, POOL, W1, -signal.SIGKILL,
                                 int(WorkerExit.TIMED_OUT)),
                                (2.0, Kind.MARK, MAIN, 0, 0, 0, 0))}]
    m = model_of(pieces, {"status": "done"})
    t = task(m, 0)
    assert t["outcome"] == Outcome.TIMEOUT and t["end"] == m.procs[W1].exited == at(1.05)


def test_a_task_whose_worker_is_still_running_stays_open():
    m = model_of([{"events": events(*pool_start(1))}, {"samples": [sample(1.0, alive=(MAIN, W1))]}])
    assert m.procs[W1].exited == NO_TIME
    assert task(m, 0)["end"] == NO_TIME


def test_a_task_of_a_stopped_run_ends_with_its_workers_last_sign_of_life():
    """Stop on a busy machine: the tree was killed after the monitor's last look, so nothing says when the
    worker ended; the run is over, so its task ended by the worker's last sign of life, cancelled."""
    m = model_of([{"events": events(*pool_start(1))}, {"samples": [sample(1.0, alive=(MAIN, W1))]}],
                 {"status": "cancelled"})
    assert m.procs[W1].exited == NO_TIME
    t = task(m, 0)
    assert t["end"] == m.procs[W1].last and t["outcome"] == Outcome.CANCELLED


def test_a_process_is_first_seen_at_its_earliest_record_whatever_arrives_first():
    """Live, the monitor's first sample of the main process may reach the model before its first event; a
    saved run gives the events first.  Either way the process was first seen at the earlier of the two."""
    live = [{"samples": [sample(0.03, alive=(MAIN,))]}, {"events": events((0.5, Kind.MARK, MAIN, 0, 0, 0, 0))}]
    for pieces in (live, merged(live)):
        assert model_of(pieces).procs[MAIN].first == at(0.03)


# -- a lost task never ends after its worker's death ------------------------------------------------------

def killed_worker_pieces(pool_saw_it=True):
    """W1 runs task 0 from 0.2 s and is killed at about 1.32 s; the monitor saw it alive at 1.1, 1.2 and
    1.3 s; the pool noticed at 1.33 s (``pool_saw_it``), or a parent reaped it at 1.33 s without a pool's
    word, or only the monitor saw it gone at 1.4 s.  Live, the parent's records arrive before the last
    samples do (the monitor hands them over every 0.25 s)."""
    notices = [(1.33, Kind.PROC_REAPED, MAIN, 0, W1, -signal.SIGKILL, 0),
               (1.33, Kind.POOL_TASK_LOST, MAIN, POOL, JOB, 0, int(Outcome.LOST))]
    if pool_saw_it:
        notices.append((1.33, Kind.POOL_WORKER_EXIT, MAIN, POOL, W1, -signal.SIGKILL, int(WorkerExit.DIED)))
    return ({"events": events(*pool_start(1))},
            {"samples": [sample(1.0, alive=(MAIN, W1))]},
            {"events": events(*notices)},
            {"samples": [sample(t, alive=(MAIN, W1)) for t in (1.1, 1.2, 1.3)] +
             [sample(1.4, alive=(MAIN,), gone=(W1,))]})


def merged(pieces):
    """The same data in one ingest, events first (as a saved run file is read)."""
    ev = [p["events"] for p in pieces if "events" in p]
    return [{"events": np.concatenate(ev), "samples": [s for p in pieces for s in p.get("samples", ())]}]


@pytest.mark.parametrize("order", ["live", "saved", "samples first"])
@pytest.mark.parametrize("pool_saw_it, death", [(True, 1.33), (False, 1.3)])
def test_a_lost_task_ends_when_its_worker_died(order, pool_saw_it, death):
    """The worker's death is when its pool saw it end, or else its last sign of life, whatever the order
    the records arrive in; its lost task ends then."""
    pieces = list(killed_worker_pieces(pool_saw_it))
    if order == "saved":
        pieces = merged(pieces)
    elif order == "samples first":
        pieces = [pieces[1], pieces[3], pieces[0], pieces[2]]
    m = model_of(pieces, {"status": "done"})
    w = m.procs[W1]
    assert w.exited == at(death)
    assert w.exitcode == -signal.SIGKILL
    t = task(m, 0)
    assert t["outcome"] == Outcome.LOST
    assert t["end"] == w.exited


def test_a_task_finished_but_not_reported_keeps_its_end_and_is_lost():
    """The worker finished task 0 at 1.1 s and died before sending its result: the pool fails it at 1.33 s.
    Its bar ends when it finished, whichever record arrives first; it is lost (its result never came)."""
    worker_rows = events((1.1, Kind.POOL_TASK, W1, POOL, JOB, 0, int(Outcome.OK)),
                         (1.1, Kind.POOL_TASK_T0, W1, POOL, JOB, 2, 0))
    parent_rows = events((1.05, Kind.POOL_CHUNK_SENT, MAIN, POOL, JOB, 2, W1),
                         (1.33, Kind.POOL_TASK_LOST, MAIN, POOL, JOB, 0, int(Outcome.LOST)),
                         (1.33, Kind.POOL_TASK_LOST, MAIN, POOL, JOB, 2, int(Outcome.LOST)),
                         (1.33, Kind.PROC_REAPED, MAIN, 0, W1, -signal.SIGKILL, 0))
    for pieces in ([{"events": events(*pool_start(1))}, {"events": worker_rows}, {"events": parent_rows}],
                   [{"events": events(*pool_start(1))}, {"events": parent_rows}, {"events": worker_rows}]):
        m = model_of(pieces + [{"samples": [sample(1.2, alive=(MAIN, W1))]}], {"status": "done"})
        t0, t2 = task(m, 0), task(m, 2)
        assert t0["end"] == at(1.1) and t0["outcome"] == Outcome.LOST
        assert t2["end"] == m.procs[W1].exited == at(1.2) and t2["outcome"] == Outcome.LOST


def test_a_zombie_is_not_alive():
    """A sample that lists a process as a zombie means it has ended (its parent has not reaped it yet)."""
    pieces = [{"events": events(*pool_start(1))},
              {"samples": [sample(1.0, alive=(MAIN, W1)), sample(1.1, alive=(MAIN,), zombie=(W1,)),
                           sample(1.2, alive=(MAIN,), zombie=(W1,))]},
              {"events": events((1.5, Kind.PROC_REAPED, MAIN, 0, W1, -signal.SIGKILL, 0))}]
    m = model_of(pieces, {"status": "done"})
    assert m.procs[W1].exited == at(1.0)
    assert task(m, 0)["end"] == at(1.0)


def test_a_process_that_records_its_own_end_ends_then():
    pieces = [{"events": events((0.1, Kind.PROC_BOOT, W1, 0, MAIN, 0, 0), (2.0, Kind.PROC_EXIT, W1, 0, 0, 0, 0))},
              {"samples": [sample(2.05, alive=(MAIN, W1))]},
              {"events": events((2.1, Kind.PROC_REAPED, MAIN, 0, W1, 0, 0))}]
    m = model_of(pieces)
    assert m.procs[W1].exited == at(2.0) and m.procs[W1].exitcode == 0


# -- how a worker's end is described ----------------------------------------------------------------------

@pytest.mark.parametrize("code, text", [(-signal.SIGTERM, "stopped by the pool"), (0, "stopped by the pool"),
                                        (-signal.SIGKILL, "stopped by the pool (killed by SIGKILL)")])
def test_a_worker_the_pool_stopped_says_so(code, text):
    m = model_of([{"events": events(*pool_start(1))},
                  {"events": events((1.0, Kind.POOL_TASK, W1, POOL, JOB, 0, int(Outcome.OK)),
                                    (1.5, Kind.POOL_CLOSED, MAIN, POOL, 0, 0, 1),
                                    (1.5, Kind.PROC_REAPED, MAIN, 0, W1, code, 0),
                                    (1.5, Kind.POOL_WORKER_EXIT, MAIN, POOL, W1, code, int(WorkerExit.STOPPED)))}])
    assert m.procs[W1].exit_text() == text


def test_a_worker_that_died_still_says_how():
    m = model_of(killed_worker_pieces())
    assert m.procs[W1].exit_text() == "killed by SIGKILL (died)"


# -- moments on the lanes: signals, shared memory, notifies, requests to end --------------------------------

SEG, COND, CHAN = 0x4000_0000_0000_0001, 31, 32


def test_signals_segments_and_notifies_are_moments_on_their_lanes():
    m = model_of([{"events": events(
        (0.1, Kind.SHM_CREATE, MAIN, SEG, 4096, 0, 0),
        (0.2, Kind.SHM_ATTACH, W1, SEG, 4096, 0, 0),
        (0.3, Kind.SIGNAL_SEND, MAIN, CHAN, signal.SIGUSR1, W1, 0),
        (0.31, Kind.SIGNAL_RECV, W1, CHAN, signal.SIGUSR1, 0, 0),
        (0.4, Kind.COND_NOTIFY, W2, COND, -1, 0, 0),
        (0.5, Kind.SHM_CLOSE, W1, SEG, 4096, 0, 0),
        (0.6, Kind.SHM_UNLINK, MAIN, SEG, 4096, 0, 0))}])
    got = [(r["t"], r["pid"], Kind(r["kind"]), r["uid"], r["a"], r["b"]) for r in m.instants_array()]
    assert got == [(at(0.1), MAIN, Kind.SHM_CREATE, SEG, 4096, 0), (at(0.2), W1, Kind.SHM_ATTACH, SEG, 4096, 0),
                   (at(0.3), MAIN, Kind.SIGNAL_SEND, CHAN, signal.SIGUSR1, W1),
                   (at(0.31), W1, Kind.SIGNAL_RECV, CHAN, signal.SIGUSR1, 0),
                   (at(0.4), W2, Kind.COND_NOTIFY, COND, -1, 0), (at(0.5), W1, Kind.SHM_CLOSE, SEG, 4096, 0),
                   (at(0.6), MAIN, Kind.SHM_UNLINK, SEG, 4096, 0)]
    assert len(m.spans) == 0 and len(m.messages) == 0


@pytest.mark.parametrize("kind", [Kind.PROC_TERMINATE, Kind.PROC_KILL])
def test_a_request_to_end_shows_on_the_target_s_lane(kind):
    m = model_of([{"events": events((0.5, kind, MAIN, 9, W1, 0, 0),
                                    (0.52, Kind.PROC_REAPED, MAIN, 9, W1, -signal.SIGTERM, 0))}])
    (r,) = m.instants_array()
    assert (r["pid"], r["by"], Kind(r["kind"]), r["t"]) == (W1, MAIN, kind, at(0.5))
    assert m.procs[W1].exited == at(0.52)


def test_a_worker_s_initializer_is_a_span_on_its_lane():
    """The pool records when its worker's initializer returned and how long it took; a small one (a few
    microseconds under fork) is a span too, but not the nothing a pool without an initializer reports."""
    m = model_of([{"events": events((1.25, Kind.POOL_WORKER_INIT, MAIN, POOL, at(1.0), W1, 0),
                                    (0.3, Kind.POOL_WORKER_INIT, MAIN, POOL, 200, W2, 0),
                                    (0.5, Kind.POOL_WORKER_INIT, MAIN, POOL, 8_600, W2, 0))}])
    spans = m.spans_array()
    assert [(s["pid"], Span(s["kind"]), s["t0"], s["t1"]) for s in spans] == [
        (W2, Span.INITIALIZER, at(0.5) - 8_600, at(0.5)), (W1, Span.INITIALIZER, at(0.25), at(1.25))]


# -- a semaphore released by another process --------------------------------------------------------------

SEM = 41


def test_a_release_by_a_thread_that_holds_nothing_closes_the_oldest_open_acquisition():
    """A producer signals a semaphore that consumers wait on (ipc_kinds does): each release closes the
    oldest hold still open, on its holder's lane; version one left every such hold open forever."""
    m = model_of([{"events": events((0.10, Kind.ACQ_OK, W1, SEM, 0, 0, 1), (0.20, Kind.ACQ_OK, W2, SEM, 0, 0, 1),
                                    (0.30, Kind.RELEASE, MAIN, SEM, -1, 1, 0))},
                  {"events": events((0.40, Kind.RELEASE, MAIN, SEM, -1, 2, 0), (0.45, Kind.ACQ_OK, W1, SEM, 0, 1, 1),
                                    (0.50, Kind.RELEASE, MAIN, SEM, -1, 2, 0))}])
    spans = m.spans_array()
    holds = spans[spans["kind"] == Span.LOCK_HOLD]
    assert [(int(h["pid"]), int(h["t0"]), int(h["t1"]), int(h["end"])) for h in holds] == [
        (W1, at(0.10), at(0.30), SpanEnd.OK), (W2, at(0.20), at(0.40), SpanEnd.OK),
        (W1, at(0.45), at(0.50), SpanEnd.OK)]
    assert m.contention()[0]["acquired"] == 3


def test_a_live_reader_that_skips_records_pairs_nothing_across_the_gap():
    """A live reader that falls behind skips chunks (note_skipped).  W1's release of the lock fell in the gap
    and so did W2's acquisition: W2's release after the gap closes its own hold (from its own measure, 0.1 s),
    not W1's acquisition from before the gap (a 0.5 s hold on W1's lane that never was); W1's wait that ended
    in the gap is not paired with a close after it either.  A semaphore released by another thread after the
    gap still closes the oldest acquisition made after it."""
    first = events((0.10, Kind.ACQ_OK, W1, LOCK, 0, -1, 1),
                   (0.12, Kind.ACQ_REQUEST, W2, LOCK, -1, 0, 0))
    after = events((0.60, Kind.RELEASE, W2, LOCK, at(0.1), -1, 0),
                   (0.61, Kind.ACQ_OK, W1, LOCK, 0, -1, 1), (0.62, Kind.RELEASE, W1, LOCK, at(0.01), -1, 0),
                   (0.70, Kind.ACQ_OK, W1, SEM, 0, 0, 1), (0.80, Kind.RELEASE, MAIN, SEM, -1, 1, 0))
    m = model_of([{"events": first}])
    m.note_skipped(40, at(0.2), at(0.55))
    m.ingest(after)
    spans = m.spans_array()
    holds = spans[spans["kind"] == Span.LOCK_HOLD]
    assert sorted((int(h["pid"]), int(h["uid"]), int(h["t0"]), int(h["t1"])) for h in holds) == [
        (W1, SEM, at(0.70), at(0.80)), (W1, LOCK, at(0.61), at(0.62)), (W2, LOCK, at(0.50), at(0.60))]
    assert not len(m.open_spans_array())          # W1's old hold and W2's old wait are not shown open either
    assert (m.skipped_events, m.events_seen) == (40, 47)


def test_a_thread_s_own_release_still_closes_its_latest_acquisition():
    m = model_of([{"events": events((0.1, Kind.ACQ_OK, W1, SEM, 0, 0, 1), (0.2, Kind.ACQ_OK, W1, SEM, 0, 0, 1),
                                    (0.3, Kind.RELEASE, W1, SEM, -1, 1, 0), (0.4, Kind.RELEASE, W2, SEM, -1, 2, 0))}])
    holds = m.spans_array()
    assert [(int(h["t0"]), int(h["t1"])) for h in holds] == [(at(0.2), at(0.3)), (at(0.1), at(0.4))]


# -- where a wait blocked ---------------------------------------------------------------------------------

LOCK, QUEUE, CALLSITE = 42, 43, 124
SITE_A, SITE_B = 0x5A17E_0001, 0x5A17E_0002


def test_a_call_site_is_the_site_of_the_wait_it_precedes():
    """A waiting thread records where it blocked (CALLSITE, on the object) right before the record of its
    wait; the span of that wait carries it, in any chunking, and nothing else does."""
    rows = [(0.10, CALLSITE, W1, LOCK, SITE_A, 0, 0), (0.10, Kind.ACQ_REQUEST, W1, LOCK, -1, 0, 0),
            (0.11, Kind.ACQ_OK, W2, LOCK, 0, -1, 1),
            (0.30, Kind.ACQ_OK, W1, LOCK, at(0.2), -1, 1), (0.35, Kind.RELEASE, W1, LOCK, 1, -1, 0),
            (0.40, Kind.ACQ_OK, W1, LOCK, at(0.01), -1, 1),        # waited, but said nowhere
            (0.60, CALLSITE, W2, QUEUE, SITE_B, 0, 0), (0.60, Kind.QUEUE_GET, W2, QUEUE, at(0.1), 64, 0)]
    for cut in range(len(rows) + 1):
        pieces = [{"events": events(*rows[:cut])}, {"events": events(*rows[cut:])}]
        m = model_of([p for p in pieces if len(p["events"])])
        spans = m.spans_array(with_site=True)
        waits = spans[spans["kind"] != Span.LOCK_HOLD]
        assert [(int(w["pid"]), Span(w["kind"]), int(w["site"])) for w in waits] == [
            (W1, Span.LOCK_WAIT, SITE_A), (W1, Span.LOCK_WAIT, 0), (W2, Span.QUEUE_GET, SITE_B)], cut
        assert not spans[spans["kind"] == Span.LOCK_HOLD]["site"].any()


def test_an_open_wait_shows_where_it_blocked():
    m = model_of([{"events": events((0.1, CALLSITE, W1, LOCK, SITE_A, 0, 0),
                                    (0.1, Kind.ACQ_REQUEST, W1, LOCK, -1, 0, 0), (0.2, Kind.MARK, MAIN, 0, 0, 0, 0))}])
    (w,) = m.open_spans_array(with_site=True)
    assert (Span(w["kind"]), SpanEnd(w["end"]), int(w["site"]), int(w["t1"])) == (Span.LOCK_WAIT, SpanEnd.OPEN,
                                                                                   SITE_A, at(0.2))


@pytest.mark.parametrize("n", [50, 20_000])
@pytest.mark.parametrize("colliding", [False, True])
def test_records_are_grouped_by_thread_each_group_in_order(monkeypatch, n, colliding):
    """Pairing reads each thread's records of an object together and in order: ``thread_order`` groups them
    like a sort by (uid, pid, tid, seq), also when two keys share a hash (then it sorts by the keys)."""
    from core.trace import columns
    if colliding:
        monkeypatch.setattr(columns, "key_hash", lambda uid, pid, tid: uid.astype(np.uint64))
    rng = np.random.default_rng(n)
    uid = rng.integers(1, 4, n).astype(np.uint64) << np.uint64(40)
    pid = rng.integers(100, 108, n).astype(np.int32)
    tid = rng.integers(0, 3, n).astype(np.int64) * 140_000_000_000
    seq = rng.permutation(n).astype(np.int64) * 3
    order = columns.thread_order(seq, uid, pid, tid)
    assert sorted(order.tolist()) == list(range(n))
    keys = list(zip(uid[order].tolist(), pid[order].tolist(), tid[order].tolist()))
    groups = [keys[0]] + [k for a, k in zip(keys, keys[1:]) if k != a]
    assert len(groups) == len(set(keys)), "a thread's records are not together"
    s = seq[order]
    same = np.array([a == b for a, b in zip(keys, keys[1:])])
    assert (s[1:][same] > s[:-1][same]).all(), "a thread's records are not in order"


def test_after_a_gap_a_semaphore_its_workers_hold_pairs_no_release_with_another_workers_acquisition():
    """Workers hold a semaphore (``with sem:``, no hold measure in a semaphore's release) and a live reader
    skips a stretch: W2's release after the gap, of a hold acquired in it, closes nothing; it does not take
    W1's acquisition made after the gap (a hold on W1's lane that W1 never had), and W1's own release closes
    it.  Such objects were paired record by record in Python, a sixth of the live reader's time at a million
    events a second."""
    before = events((0.10, Kind.ACQ_OK, W1, SEM, 0, 0, 1), (0.12, Kind.ACQ_OK, W2, SEM, 0, 0, 1),
                    (0.15, Kind.RELEASE, W1, SEM, -1, 1, 0))
    after = events((0.60, Kind.ACQ_OK, W1, SEM, 0, 0, 1), (0.62, Kind.RELEASE, W2, SEM, -1, 1, 0),
                   (0.70, Kind.RELEASE, W1, SEM, -1, 1, 0))
    m = model_of([{"events": before}])
    m.note_skipped(40, at(0.2), at(0.55))
    m.ingest(after)
    spans = m.spans_array()
    holds = spans[spans["kind"] == Span.LOCK_HOLD]
    assert sorted((int(h["pid"]), int(h["t0"]), int(h["t1"])) for h in holds) == [
        (W1, at(0.10), at(0.15)), (W1, at(0.60), at(0.70))]
    assert not len(m.open_spans_array())
