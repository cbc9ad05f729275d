"""The Pool's scheduling decisions, driven directly: fake workers and jobs, no processes, no pipes.

core.pool.scheduler decides what each worker gets, how much goes in one message, and what a dead worker's
tasks come to; the manager thread only applies it.  These tests state the promises users rely on: a task
never runs twice and is never lost silently, uneven tasks spread over the workers, a long task or a big
payload never waits behind another in a pipe, maxtasksperchild is exact, a timed-out task fails alone.
"""
import collections

import pytest

from core.pool.scheduler import Job, Kill, Limits, Scheduler, Slot
from core.pool.wire import MAP

MS = 1_000_000
US = 1_000

# the limits these tests reason with (the module's defaults, spelled out so the tests do not move with them)
PREFETCH_NS = 5 * MS
BATCH_NS = 1 * MS
MAX_BYTES = 256 * 1024


def make_scheduler(processes=2, maxtasks=None, **limits):
    given = dict(prefetch_seconds=PREFETCH_NS / 1e9, batch_seconds=BATCH_NS / 1e9, max_batch_chunks=1024,
                 prefetch_max_bytes=MAX_BYTES, max_requeues=3, feed_ahead=2)
    given.update(limits)
    return Scheduler(processes, maxtasks, Limits(**given))


def make_job(sched, jid, n, cs=1, est=None, timeout=None):
    """A map of ``n`` tasks (items 0..n-1) in chunks of ``cs``; ``est``: measured ns per task."""
    job = Job(jid, None, MAP, cs, timeout)
    job.seq = list(range(n))
    job.total = n
    job.est = est
    sched.add_job(job)
    return job


class FakeWorker:
    """What the scheduler sees of a worker: its load.  ``sent`` keeps every run it was given."""

    def __init__(self, sched, name):
        self.name = name
        self.load = sched.new_load()
        self.sent = []

    def __repr__(self):
        return self.name


def send(sched, w, nbytes=100):
    """What the manager does with a batch: pickle it (``nbytes`` a run) and count it at the worker."""
    runs, doomed = sched.build_batch(w.load)
    assert not doomed
    for run in runs:
        run.nbytes = nbytes
        w.load.add(run)
        w.sent.append(run)
    return runs


def dispatch(sched, workers, nbytes=100):
    """The manager's dispatch loop: batches while some worker should get one -> [(worker, runs)]."""
    out = []
    while sched.has_work():
        w = sched.pick_worker(workers)
        if w is None:
            break
        runs = send(sched, w, nbytes)
        if not runs:
            break
        out.append((w, runs))
    return out


def answer(w, run, n=None):
    """The worker reports the next ``n`` tasks of ``run`` (all that are left by default)."""
    n = run.n - run.reported if n is None else n
    assert w.load.answered(run.job.id, run.first + run.reported, n) is run


def tasks_of(runs):
    return [t for run in runs for t in run.items]


def expand(ranges):
    return [i for first, n in ranges for i in range(first, first + n)]


# -- who gets work ------------------------------------------------------------------------------------------

def test_idle_workers_get_work_first():
    sched = make_scheduler()
    busy, idle = FakeWorker(sched, "busy"), FakeWorker(sched, "idle")
    make_job(sched, 1, 100, est=100 * US)
    send(sched, busy)                                   # 1 ms queued: it could take more...
    assert busy.load.est == BATCH_NS < PREFETCH_NS
    assert sched.pick_worker([busy, idle]) is idle      # ...but an idle worker goes first
    send(sched, idle)
    send(sched, idle)                                   # both busy: the one with less work queued
    assert idle.load.est > busy.load.est
    assert sched.pick_worker([busy, idle]) is busy


def test_unmeasured_tasks_go_one_chunk_at_a_time_to_idle_workers():
    """Until a job's tasks are measured, a worker holds one chunk: uneven tasks spread as evenly as over
    the stdlib's shared queue, and a long first task holds back nothing else."""
    sched = make_scheduler()
    a, b = FakeWorker(sched, "a"), FakeWorker(sched, "b")
    make_job(sched, 1, 10)
    sent = dispatch(sched, [a, b])
    assert [(w, [r.n for r in runs]) for w, runs in sent] == [(a, [1]), (b, [1])]
    assert sched.pick_worker([a, b]) is None            # nobody gets a second unmeasured chunk
    answer(a, a.sent[0])
    assert sched.pick_worker([a, b]) is a


def test_prefetch_is_limited_by_measured_time():
    """A busy worker is sent more only up to PREFETCH_SECONDS of measured work."""
    sched = make_scheduler(processes=1)
    w = FakeWorker(sched, "w")
    make_job(sched, 1, 1000, est=1 * MS)
    dispatch(sched, [w])
    assert w.load.est == PREFETCH_NS
    assert len(tasks_of(w.sent)) == 5
    assert sched.pick_worker([w]) is None
    answer(w, w.sent[0])                                # one chunk done: one more goes out
    assert sched.pick_worker([w]) is w
    send(sched, w)
    assert w.load.est == PREFETCH_NS


def test_prefetch_tops_up_to_the_limit_and_no_further():
    sched = make_scheduler(processes=1)
    w = FakeWorker(sched, "w")
    make_job(sched, 1, 1000, est=300 * US)
    dispatch(sched, [w])
    assert PREFETCH_NS - 300 * US < w.load.est <= PREFETCH_NS


def test_an_unmeasured_job_goes_alone_and_only_to_an_idle_worker():
    """Its first task may be long: it never joins a batch or waits behind queued work."""
    sched = make_scheduler(processes=1)
    w = FakeWorker(sched, "w")
    make_job(sched, 1, 3, est=10 * US)
    make_job(sched, 2, 3)
    assert [r.job.id for r in send(sched, w)] == [1]
    assert sched.pick_worker([w]) is w                  # it could take more measured work...
    assert send(sched, w) == []                         # ...but not the unmeasured job
    answer(w, w.sent[0])
    assert [(r.job.id, r.items) for r in send(sched, w)] == [(2, [0])]


def test_a_chunk_longer_than_the_prefetch_goes_only_to_an_idle_worker():
    sched = make_scheduler()
    a, b = FakeWorker(sched, "a"), FakeWorker(sched, "b")
    make_job(sched, 1, 10, est=20 * MS)
    sent = dispatch(sched, [a, b])
    assert [(w, tasks_of(runs)) for w, runs in sent] == [(a, [0]), (b, [1])]


def test_prefetch_is_limited_by_unanswered_bytes():
    """Big payloads go to idle workers only: they never wait in a pipe behind a long task."""
    sched = make_scheduler(processes=1)
    w = FakeWorker(sched, "w")
    make_job(sched, 1, 1000, est=10 * US)
    send(sched, w, nbytes=MAX_BYTES)
    assert w.load.est < PREFETCH_NS
    assert sched.pick_worker([w]) is None
    answer(w, w.sent[0])
    assert sched.pick_worker([w]) is w


def test_batch_size_follows_the_measured_task_time():
    sched = make_scheduler(processes=1)
    w = FakeWorker(sched, "w")
    make_job(sched, 1, 10_000, est=10 * US)
    (run,) = send(sched, w)
    assert run.n == BATCH_NS // (10 * US)               # BATCH_SECONDS of work in one message
    sched = make_scheduler(processes=1, max_batch_chunks=16)
    w = FakeWorker(sched, "w")
    make_job(sched, 1, 10_000, est=1)
    (run,) = send(sched, w)
    assert run.nchunks == 16                             # and never more than MAX_BATCH_CHUNKS


def test_one_batch_carries_several_short_jobs_in_order():
    sched = make_scheduler(processes=1)
    w = FakeWorker(sched, "w")
    make_job(sched, 1, 3, est=10 * US)
    make_job(sched, 2, 3, est=10 * US)
    runs = send(sched, w)
    assert [(r.job.id, r.items) for r in runs] == [(1, [0, 1, 2]), (2, [0, 1, 2])]


def test_chunks_are_never_split_and_every_task_is_sent_once():
    sched = make_scheduler(max_batch_chunks=2)
    a, b = FakeWorker(sched, "a"), FakeWorker(sched, "b")
    make_job(sched, 1, 23, cs=3, est=50 * US)
    for _ in range(100):
        if not sched.has_work():
            break
        if not dispatch(sched, [a, b]):
            for w in (a, b):                            # answer everything, go on
                for run in list(w.load.runs):
                    answer(w, run)
    assert not sched.has_work()
    runs = a.sent + b.sent
    assert sorted(tasks_of(runs)) == list(range(23))
    for run in runs:
        assert run.first % 3 == 0 and (run.n % 3 == 0 or run.first + run.n == 23)
        assert run.nchunks <= 2


def test_maxtasksperchild_budget_is_exact():
    """A worker is sent exactly maxtasksperchild chunks; the rest go to its replacement."""
    sched = make_scheduler(processes=1, maxtasks=3)
    w = FakeWorker(sched, "w")
    make_job(sched, 1, 10, est=10 * US)
    dispatch(sched, [w])
    assert w.load.sent == 3 and sched.spent(w.load)
    assert sched.pick_worker([w]) is None
    fresh = FakeWorker(sched, "fresh")
    dispatch(sched, [w, fresh])
    assert tasks_of(fresh.sent) == [3, 4, 5]


def test_a_job_whose_function_cannot_be_pickled_is_cut_out_to_fail():
    sched = make_scheduler(processes=1)
    w = FakeWorker(sched, "w")
    bad = make_job(sched, 1, 5, est=10 * US)
    make_job(sched, 2, 2, est=10 * US)
    bad.func_error = TypeError("cannot pickle")
    runs, doomed = sched.build_batch(w.load)
    assert sorted(tasks_of(doomed)) == [0, 1, 2, 3, 4] and {r.job.id for r in doomed} == {1}
    assert [(r.job.id, r.items) for r in runs] == [(2, [0, 1])]


# -- lazy input ----------------------------------------------------------------------------------------------

def test_lazy_jobs_are_cut_from_what_the_feeder_read():
    """An imap over a generator never holds up other calls while its feeder has nothing, and the chunks it
    has read go out together once its tasks are measured short."""
    sched = make_scheduler(processes=1)
    w = FakeWorker(sched, "w")
    lazy = Job(1, None, MAP, 1)
    lazy.lazy = True
    lazy.buffer = collections.deque()
    sched.add_job(lazy)
    make_job(sched, 2, 2, est=10 * US)
    assert [(r.job.id, r.items) for r in send(sched, w)] == [(2, [0, 1])]    # nothing read yet
    lazy.buffer.extend([(0, ["a"]), (1, ["b"]), (2, ["c"])])
    lazy.est = 10 * US
    assert [(r.job.id, r.first, r.items) for r in send(sched, w)] == [(1, 0, ["a", "b", "c"])]
    assert sched.next_source() is None and not lazy.cut_out()                # its input has not ended
    lazy.exhausted = True
    assert lazy.cut_out()


def test_the_feeder_reads_ahead_what_prefetching_can_use():
    sched = make_scheduler(processes=2)
    lazy = Job(1, None, MAP, 1)
    assert sched.feed_target(lazy) == 2 * (2 + 1)                         # FEED_AHEAD chunks per worker
    lazy.est = 10 * US
    assert sched.feed_target(lazy) == 2 * (2 + 1 + PREFETCH_NS // (10 * US))


# -- a worker dies -------------------------------------------------------------------------------------------

def test_a_dead_workers_untouched_chunks_are_requeued_and_run_once():
    sched = make_scheduler()
    a, b = FakeWorker(sched, "a"), FakeWorker(sched, "b")
    job = make_job(sched, 1, 8, cs=2, est=250 * US)
    send(sched, a)                                      # tasks 0..3 (2 chunks) in one run
    send(sched, a)                                      # tasks 4..7
    assert tasks_of(a.sent) == list(range(8))
    # a dies in its first chunk: tasks 0-1 were running; 2..7 never began
    s = sched.settle(a.load, Slot(seq=1, task=0, start=0))
    assert expand(s.running[job]) == [0, 1] and not s.finished
    assert [(seg.first, seg.items) for seg in s.requeued] == [(2, [2, 3]), (4, [4, 5, 6, 7])]
    assert not a.load.runs
    dispatch(sched, [b])
    assert sorted(tasks_of(b.sent)) == list(range(2, 8))       # each once; none of 0-1 again


def test_chunks_begun_before_the_running_one_died_unreported():
    """Untimed, a worker reports once per batch: chunks it finished before the one it died in are lost
    with it (they are failed, never run again)."""
    sched = make_scheduler()
    a = FakeWorker(sched, "a")
    job = make_job(sched, 1, 6, cs=2, est=100 * US)
    (run,) = send(sched, a)
    assert run.nchunks == 3
    s = sched.settle(a.load, Slot(seq=run.seq0 + 1, task=0, start=0))
    assert expand(s.finished[job]) == [0, 1]
    assert expand(s.running[job]) == [2, 3]
    assert [(seg.first, seg.items) for seg in s.requeued] == [(4, [4, 5])]


def test_a_worker_dying_before_its_first_chunk_loses_nothing():
    sched = make_scheduler()
    a = FakeWorker(sched, "a")
    job = make_job(sched, 1, 4, est=100 * US)
    send(sched, a)
    s = sched.settle(a.load, Slot(seq=0, task=0, start=0))
    assert not s.running[job] and not s.finished[job]
    assert sorted(tasks_of(s.requeued)) == [0, 1, 2, 3]


def test_answered_tasks_are_not_settled_again():
    sched = make_scheduler()
    a = FakeWorker(sched, "a")
    job = make_job(sched, 1, 4, cs=4, est=100 * US, timeout=1.0)
    (run,) = send(sched, a)
    answer(a, run, 2)                                   # tasks 0-1 reported (timed tasks report early)
    s = sched.settle(a.load, Slot(seq=run.seq0, task=3, start=123))
    assert expand(s.finished[job]) == [2] and expand(s.running[job]) == [3]
    assert not s.requeued


def test_requeues_stop_after_max_requeues():
    """A chunk that kills every worker it is sent to before it starts fails after MAX_REQUEUES requeues
    instead of killing workers forever."""
    sched = make_scheduler(max_requeues=3)
    job = make_job(sched, 1, 1, est=100 * US)
    for attempt in range(4):
        w = FakeWorker(sched, "w%d" % attempt)
        (run,) = send(sched, w)
        assert run.requeues == attempt
        s = sched.settle(w.load, Slot(seq=0, task=0, start=0))
        sched.forget(w.load)
        if attempt < 3:
            assert not s.running[job] and len(s.requeued) == 1
    assert expand(s.running[job]) == [0] and not s.requeued
    assert not sched.has_work() or sched.next_source() is None


def test_requeued_segments_go_first_in_their_order():
    sched = make_scheduler(processes=3)
    a, b, c = FakeWorker(sched, "a"), FakeWorker(sched, "b"), FakeWorker(sched, "c")
    make_job(sched, 1, 100, est=100 * US)
    send(sched, a)                                      # 0..9
    send(sched, b)                                      # 10..19
    sched.settle(a.load, Slot(seq=0, task=0, start=0))
    sched.settle(b.load, Slot(seq=0, task=0, start=0))
    # requeued work goes before anything new; each death's segments keep their task order, and the
    # latest death's go first
    order = []
    while True:
        runs = send(sched, c)
        if not runs or runs[0].first >= 20:
            break
        order += tasks_of(runs)
        for run in list(c.load.runs):
            answer(c, run)
    assert order == list(range(10, 20)) + list(range(0, 10))


# -- timeouts ------------------------------------------------------------------------------------------------

def test_a_timed_out_task_fails_alone_its_finished_neighbours_are_lost_the_rest_requeued():
    sched = make_scheduler()
    a = FakeWorker(sched, "a")
    job = make_job(sched, 1, 4, cs=4, est=100 * US, timeout=1.5)
    (run,) = send(sched, a)
    kill = Kill(job=job.id, task=2, start=123, timeout=1.5)
    s = sched.settle(a.load, Slot(seq=run.seq0, task=2, start=123), kill)
    assert s.timed_out == (job, 2, 1.5)
    assert expand(s.running[job]) == []                 # task 2 fails with its own TaskTimeoutError only
    assert expand(s.finished[job]) == [0, 1]
    assert [(seg.first, seg.items) for seg in s.requeued] == [(3, [3])]


def test_a_kill_that_raced_a_new_task_is_not_a_timeout():
    """The pool killed the worker for a task that had just ended: the task running now was not overdue,
    so it is lost (WorkerLostError), not timed out."""
    sched = make_scheduler()
    a = FakeWorker(sched, "a")
    job = make_job(sched, 1, 4, cs=4, est=100 * US, timeout=1.5)
    (run,) = send(sched, a)
    kill = Kill(job=job.id, task=1, start=100, timeout=1.5)
    s = sched.settle(a.load, Slot(seq=run.seq0, task=2, start=200), kill)
    assert s.timed_out is None
    assert expand(s.running[job]) == [2] and expand(s.finished[job]) == [0, 1]


def test_a_timed_worker_between_tasks_lost_only_finished_ones():
    sched = make_scheduler()
    a = FakeWorker(sched, "a")
    job = make_job(sched, 1, 4, cs=4, est=100 * US, timeout=1.5)
    (run,) = send(sched, a)
    s = sched.settle(a.load, Slot(seq=run.seq0, task=1, start=0))    # task 1 done, 2 not begun
    assert expand(s.finished[job]) == [0, 1] and not s.running[job]
    assert [(seg.first, seg.items) for seg in s.requeued] == [(2, [2, 3])]


def test_a_finished_jobs_remainder_is_dropped():
    sched = make_scheduler()
    a = FakeWorker(sched, "a")
    job = make_job(sched, 1, 4, est=100 * US)
    send(sched, a)
    job.finished = True
    s = sched.settle(a.load, Slot(seq=0, task=0, start=0))
    assert not s.running and not s.finished and not s.requeued


# -- failing a whole job -------------------------------------------------------------------------------------

@pytest.mark.parametrize("answered", [0, 3])
def test_take_unanswered_finds_every_unanswered_task_once(answered):
    sched = make_scheduler()
    a, b = FakeWorker(sched, "a"), FakeWorker(sched, "b")
    job = make_job(sched, 1, 40, est=100 * US)
    send(sched, a)                                      # 0..9
    send(sched, b)                                      # 10..19
    if answered:
        answer(a, a.sent[0], answered)
    sched.settle(b.load, Slot(seq=0, task=0, start=0))  # 10..19 requeued
    ranges = sched.take_unanswered(job)
    assert sorted(expand(ranges)) == list(range(answered, 40))
    assert sched.take_unanswered(job) == []
    assert sched.next_source() is None
