"""core.Pool beyond the stdlib: progress, tracing, Ctrl+C, lazy input, callbacks off the manager thread,
garbage collection of an unclosed pool.  (API parity is in test_pool_diff.py, faults in
test_pool_faults.py.)"""
import gc
import itertools
import os
import signal
import threading
import time
import warnings
import weakref

import numpy as np
import pytest

import core
import core.pool
import pool_helpers as h
from core.pool import PoolTerminatedError
from core.trace.events import JobMethod, Kind, Outcome, WorkerExit


# -- progress -------------------------------------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.calls = []
        self.threads = set()
        self.lock = threading.Lock()

    def __call__(self, done, total):
        with self.lock:
            self.calls.append((done, total))
            self.threads.add(threading.current_thread().name)


def test_progress_map_family(pool):
    for call in (lambda p, pr: p.map(h.square, range(20), 3, progress=pr),
                 lambda p, pr: p.map_async(h.square, range(20), progress=pr).get(30),
                 lambda p, pr: p.starmap(h.add, [(i, i) for i in range(9)], 1, progress=pr),
                 lambda p, pr: p.starmap_async(h.add, [(1, 1)] * 4, progress=pr).get(30),
                 lambda p, pr: list(p.imap(h.square, range(11), progress=pr)),
                 lambda p, pr: list(p.imap_unordered(h.square, range(11), 2, progress=pr))):
        pr = Recorder()
        out = call(pool, pr)
        n = len(out)
        # called before the result is handed over; done only grows; it ends at (n, n)
        assert pr.calls, call
        assert pr.calls[-1] == (n, n)
        dones = [d for d, _ in pr.calls]
        assert dones == sorted(dones)
        assert all(t == n for _, t in pr.calls)
        assert threading.main_thread().name not in pr.threads


def test_progress_unknown_total_until_exhausted(pool):
    pr = Recorder()
    out = list(pool.imap(h.square, (i for i in range(15)), progress=pr))
    assert out == [i * i for i in range(15)]
    time.sleep(0.1)
    with pr.lock:
        calls = list(pr.calls)
    assert calls[-1] == (15, 15)
    assert all(t in (None, 15) for _, t in calls)


def test_progress_on_result_objects(pool):
    r = pool.map_async(h.sleep_for, [0.01] * 6, 1)
    assert r.progress[1] == 6
    r.get(30)
    assert r.progress == (6, 6)
    a = pool.apply_async(h.square, (3,))
    a.get(30)
    assert a.progress == (1, 1)
    it = pool.imap(h.square, (i for i in range(5)))
    assert list(it) == [0, 1, 4, 9, 16]
    assert it.progress == (5, 5)
    it = pool.imap_unordered(h.square, range(4))
    assert it.progress[1] == 4
    sorted(it)


def test_failing_progress_callback_is_reported_not_fatal(pool, capsys):
    def bad(done, total):
        raise RuntimeError("progress callback broke")

    assert pool.map(h.square, range(4), progress=bad) == [0, 1, 4, 9]
    assert "progress callback broke" in capsys.readouterr().err


# -- callbacks ------------------------------------------------------------------------------------------------

def test_callbacks_run_in_a_pool_thread_before_get_returns(pool):
    seen = []
    r = pool.apply_async(h.square, (5,), callback=lambda v: seen.append((v, threading.current_thread())))
    assert r.get(30) == 25
    assert seen and seen[0][0] == 25 and seen[0][1] is not threading.main_thread()
    errs = []
    m = pool.map_async(h.fail_on_three, range(5), error_callback=errs.append)
    with pytest.raises(ValueError):
        m.get(30)
    assert len(errs) == 1 and isinstance(errs[0], ValueError)


def test_failing_callback_does_not_break_the_pool(pool, capsys):
    def bad(v):
        raise RuntimeError("callback broke")

    r = pool.apply_async(h.square, (2,), callback=bad)
    assert r.get(30) == 4                 # the stdlib's result thread dies here and its pool hangs
    assert pool.map(h.square, range(3)) == [0, 1, 4]
    assert "callback broke" in capsys.readouterr().err


# -- lazy input -------------------------------------------------------------------------------------------------

def test_imap_reads_a_generator_lazily(pool):
    """Results come while the input is still being produced (here: blocked half way)."""
    release = threading.Event()

    def source():
        for i in range(10):
            yield i
        release.wait(30)              # the rest only comes once the first results were consumed
        yield from range(10, 15)

    for method in (pool.imap, pool.imap_unordered):
        release.clear()
        it = method(h.square, source())
        first = sorted(it.next(timeout=10) for _ in range(10))
        assert first == [i * i for i in range(10)]
        release.set()
        assert sorted(it) == [i * i for i in range(10, 15)]


def test_imap_read_ahead_is_bounded(pool):
    """While the workers are busy, the feeder keeps only a bounded number of unsent chunks."""
    drawn = itertools.count()

    def source():
        while True:
            next(drawn)
            yield 0.2

    it = pool.imap(h.sleep_for, source())
    time.sleep(0.5)
    assert next(drawn) < 50
    pool.terminate()
    values = []
    with pytest.raises(PoolTerminatedError):
        for v in it:
            values.append(v)
    assert set(values) <= {0.2}


def test_imap_iterates_input_in_a_pool_thread(pool):
    threads = set()

    def source():
        for i in range(5):
            threads.add(threading.current_thread())
            yield i

    assert list(pool.imap(h.square, source())) == [0, 1, 4, 9, 16]
    assert threading.main_thread() not in threads


def test_map_materialises_like_the_stdlib(pool):
    assert pool.map(h.square, (i for i in range(30))) == [i * i for i in range(30)]


# -- concurrency ----------------------------------------------------------------------------------------------

def test_concurrent_submitters(start_method):
    """Many threads submitting at once (a lost wake-up would leave one of them waiting forever)."""
    with core.get_context(start_method).Pool(2) as p:
        out = {}

        def submit(k):
            out[k] = ([p.apply(h.add, (k, i)) for i in range(150)], p.map(h.square, range(k * 5)),
                      sorted(p.imap_unordered(h.square, (i for i in range(k)))))

        threads = [threading.Thread(target=submit, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        for k in range(6):
            assert out[k][0] == [k + i for i in range(150)]
            assert out[k][1] == [i * i for i in range(k * 5)]
            assert out[k][2] == [i * i for i in range(k)]


def test_many_apply_async(pool):
    rs = [pool.apply_async(h.square, (i,)) for i in range(3000)]
    assert [r.get(30) for r in rs] == [i * i for i in range(3000)]


# -- lifecycle --------------------------------------------------------------------------------------------------

def test_close_waits_for_queued_work_and_callbacks(pool):
    done = []
    rs = [pool.apply_async(h.sleep_for, (0.05,), callback=done.append) for _ in range(6)]
    it = pool.imap(h.square, (i for i in range(20)))
    pool.close()
    pool.join()
    assert done == [0.05] * 6                  # join() returns after the callbacks ran
    assert all(r.ready() for r in rs)
    assert list(it) == [i * i for i in range(20)]
    assert pool._pool == []


def test_with_block_terminates_and_fails_pending(start_method):
    with core.get_context(start_method).Pool(1) as p:
        r = p.apply_async(h.sleep_for, (30,))
    with pytest.raises(PoolTerminatedError):
        r.get(timeout=5)
    assert p._state == "TERMINATE"
    p.join()


def test_unclosed_pool_is_terminated_when_collected(start_method):
    p = core.get_context(start_method).Pool(2)
    assert p.map(h.square, range(3)) == [0, 1, 4]
    pids = [w.pid for w in p._pool]
    ref = weakref.ref(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del p
        gc.collect()
    assert ref() is None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        import psutil
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:
        return True


def test_unclosed_pool_warns():
    p = core.Pool(1)
    with pytest.warns(ResourceWarning):
        p.__del__()
    p.terminate()
    p.join()


def test_pool_inherited_by_a_forked_child_refuses_work():
    """The stdlib's pool hangs when used from a forked child (its threads are not there); core's says so."""
    with core.get_context("fork").Pool(1) as p:
        pid = os.fork()
        if pid == 0:                                    # the child: report through the exit code
            try:
                p.apply(h.square, (2,))
                code = 1
            except ValueError as e:
                code = 0 if "inherited" in str(e) else 2
            except BaseException:
                code = 3
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert p.apply(h.square, (3,)) == 9


def test_name_and_repr():
    with core.Pool(1, name="crunchers") as p:
        assert p._name == "crunchers"
        assert repr(p) == "<core.pool.Pool state=RUN pool_size=1>"


# -- Ctrl+C --------------------------------------------------------------------------------------------------------

def _wait_all_workers_ran(p):
    """Until every worker has run a task (a forkserver worker can still be hit by a Ctrl+C in the first
    milliseconds of its start-up: the forkserver, not the pool, sets its signal mask)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if set(p.map(h.pid_of, range(8), 1)) == {w.pid for w in p._pool}:
            return
    raise AssertionError("workers did not all start")


def test_workers_ignore_sigint(pool):
    _wait_all_workers_ran(pool)
    assert pool.map(h.init_sigint_check, range(4), 1) == [True] * 4
    pids = [w.pid for w in pool._pool]
    for pid in pids:
        os.kill(pid, signal.SIGINT)
    time.sleep(0.2)
    assert pool.map(h.square, range(4)) == [0, 1, 4, 9]
    assert [w.pid for w in pool._pool] == pids


@pytest.mark.parametrize("how", ["map", "apply", "get", "next"])
def test_keyboard_interrupt_terminates_the_pool(start_method, how):
    p = core.get_context(start_method).Pool(2)
    p.apply(h.square, (1,))                         # workers are up
    pids = [w.pid for w in p._pool]
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    forever = 3600        # longer than the test's timeout: a call that waited for its task fails the test
    calls = {"map": lambda: p.map(h.sleep_for, [forever, forever]),
             "apply": lambda: p.apply(h.sleep_for, (forever,)),
             "get": lambda: p.apply_async(h.sleep_for, (forever,)).get(),
             "next": lambda: next(p.imap(h.sleep_for, [forever]))}
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            calls[how]()
    finally:
        timer.cancel()
    assert p._state == "TERMINATE"
    p.join()
    assert not any(_alive(pid) for pid in pids)


# -- tracing -----------------------------------------------------------------------------------------------------

UNEVEN = [0.25, 0.03, 0.12, 0.06, 0.2, 0.01, 0.09, 0.15]


def _of(ev, kind, uid):
    sel = ev[(ev["kind"] == kind) & (ev["uid"] == uid)]
    return sel[np.argsort(sel["t"], kind="stable")]


def test_traced_imap_and_imap_unordered(trace_session, start_method):
    ctx = core.get_context(start_method)
    p = ctx.Pool(2, name="traced-pool")
    ordered = list(p.imap(h.sleep_for, UNEVEN))
    unordered = list(p.imap_unordered(h.sleep_for, UNEVEN))
    assert ordered == UNEVEN and sorted(unordered) == sorted(UNEVEN)
    m = p.map(h.square, range(40))
    assert m == [i * i for i in range(40)]
    p.close()
    p.join()
    model = trace_session.stop()
    ev = trace_session.events()
    uid = p._uid

    # registration and the pool's lifecycle
    objs = [o for b in trace_session.batches for o in b.metas if o.get("t") == "obj" and o["uid"] == uid]
    assert objs and objs[0]["kind"] == "Pool" and objs[0]["name"] == "traced-pool"
    assert objs[0]["processes"] == 2
    assert len(_of(ev, Kind.POOL_CREATED, uid)) == 1
    assert _of(ev, Kind.POOL_CLOSED, uid)["c"].tolist() == [0]

    # workers: UP for each (pid, number), INIT, EXIT with STOPPED after close(); they trace as "worker"
    up = _of(ev, Kind.POOL_WORKER_UP, uid)
    workers = set(up["a"].tolist())
    assert len(workers) == 2 and sorted(up["b"].tolist()) == [1, 2]
    assert set(_of(ev, Kind.POOL_WORKER_INIT, uid)["b"].tolist()) == workers
    ex = _of(ev, Kind.POOL_WORKER_EXIT, uid)
    assert set(ex["a"].tolist()) == workers and set(ex["c"].tolist()) == {WorkerExit.STOPPED}
    for pid in workers:
        assert model.procs[pid].role == "worker"

    jobs = _of(ev, Kind.POOL_JOB, uid)
    assert jobs["c"].tolist() == [JobMethod.IMAP, JobMethod.IMAP_UNORDERED, JobMethod.MAP]
    assert jobs["b"].tolist() == [len(UNEVEN), len(UNEVEN), 40]
    done = _of(ev, Kind.POOL_JOB_DONE, uid)
    assert sorted(done["a"].tolist()) == sorted(jobs["a"].tolist()) and set(done["c"].tolist()) == {0}

    for job, n in zip(jobs["a"].tolist(), (len(UNEVEN), len(UNEVEN), 40)):
        t0s = [r for r in _of(ev, Kind.POOL_TASK_T0, uid) if r["a"] == job]
        ends = [r for r in _of(ev, Kind.POOL_TASK, uid) if r["a"] == job]
        # every task: one start and one end, in a worker, OK
        assert sorted(r["b"] for r in t0s) == list(range(n))
        assert sorted(r["b"] for r in ends) == list(range(n))
        assert {r["pid"] for r in t0s} <= workers
        assert all(r["c"] == Outcome.OK for r in ends)
        start = {int(r["b"]): (int(r["t"]), int(r["pid"])) for r in t0s}
        end = {int(r["b"]): (int(r["t"]), int(r["pid"])) for r in ends}
        assert all(start[i][1] == end[i][1] and start[i][0] <= end[i][0] for i in range(n))
        # the chunk each task was sent in names the worker that ran it
        queued = [r for r in _of(ev, Kind.POOL_CHUNK_QUEUED, uid) if r["a"] == job]
        sent = [r for r in _of(ev, Kind.POOL_CHUNK_SENT, uid) if r["a"] == job]
        sizes = {int(r["b"]): int(r["c"]) for r in queued}
        assert sum(sizes.values()) == n
        for r in sent:
            first = int(r["b"])
            for i in range(first, first + sizes[first]):
                assert end[i][1] == r["c"]
                assert r["t"] <= start[i][0]

    imap_job, unord_job, map_job = jobs["a"].tolist()
    used = _of(ev, Kind.POOL_RESULT_USED, uid)
    # imap: the caller consumed results in submission order
    assert [int(r["b"]) for r in used if r["a"] == imap_job] == list(range(len(UNEVEN)))
    # imap_unordered: in completion order
    u = [int(r["b"]) for r in used if r["a"] == unord_job]
    ends_u = sorted((int(r["t"]), int(r["b"])) for r in _of(ev, Kind.POOL_TASK, uid) if r["a"] == unord_job)
    assert u == [i for _, i in ends_u]
    assert sorted(u) == list(range(len(UNEVEN)))
    assert [int(r["b"]) for r in used if r["a"] == map_job] == [-1]
    assert all(r["pid"] == os.getpid() for r in used)

    # the model's task table has every task with its worker, start <= end <= used
    tasks = model.tasks_array()
    mine = tasks[tasks["pool"] == uid]
    assert len(mine) == 2 * len(UNEVEN) + 40
    assert set(mine["worker"].tolist()) <= workers
    assert (mine["start"] <= mine["end"]).all() and (mine["end"] <= mine["used"]).all()
    assert (mine["outcome"] == Outcome.OK).all()


def test_traced_death_and_timeout(trace_session):
    with core.get_context("fork").Pool(2) as p:
        with pytest.raises(core.WorkerLostError) as lost:
            p.map(h.kill_on_three, range(6), chunksize=1)
        with pytest.raises(core.TaskTimeoutError) as to:
            p.apply(h.sleep_for, (5,), task_timeout=0.2)
    trace_session.stop()
    ev = trace_session.events()
    uid = p._uid
    lost_ev = _of(ev, Kind.POOL_TASK_LOST, uid)
    outcomes = {(int(r["a"]), int(r["b"])): int(r["c"]) for r in lost_ev}
    assert Outcome.LOST in outcomes.values() and Outcome.TIMEOUT in outcomes.values()
    exits = {int(r["a"]): int(r["c"]) for r in _of(ev, Kind.POOL_WORKER_EXIT, uid)}
    assert exits[lost.value.pid] == WorkerExit.DIED
    assert exits[to.value.pid] == WorkerExit.TIMED_OUT
    assert _of(ev, Kind.POOL_CLOSED, uid)["c"].tolist() == [1]


def test_untraced_pool_records_nothing(pool):
    from core.trace import recorder
    assert not recorder.ENABLED
    it = pool.imap(h.square, range(5))
    assert it._order is None and it._traced is False
    assert list(it) == [0, 1, 4, 9, 16]


def test_tasks_too_short_to_record_one_by_one_are_recorded_as_groups(trace_session, start_method):
    """A traced map of tiny tasks records per chunk, not per task; every task still gets its row, and a task
    that fails is still recorded on its own."""
    ctx = core.get_context(start_method)
    n = 6000
    with ctx.Pool(2) as p:
        with pytest.raises(ValueError, match="777 fails"):
            p.map(h.fail_on_777, range(n))
        workers = {w.pid for w in p._pool}
    model = trace_session.stop()
    ev = trace_session.events()
    per_task = ev[np.isin(ev["kind"], [Kind.POOL_TASK_T0, Kind.POOL_TASK])]
    groups = ev[ev["kind"] == Kind.POOL_GROUP]
    assert len(groups) >= 1 and len(per_task) < n              # far fewer than two records per task
    tasks = model.tasks_array()
    assert len(tasks) == n
    assert (tasks["start"] > 0).all() and (tasks["end"] >= tasks["start"]).all()
    assert set(tasks["worker"].tolist()) <= workers
    failed = tasks[tasks["outcome"] == Outcome.ERROR]
    assert failed["index"].tolist() == [777]
    assert (tasks["outcome"][tasks["index"] != 777] == Outcome.OK).all()
    assert sorted(groups["c"].tolist()) and sum(groups["c"].tolist()) + len(per_task) // 2 == n
