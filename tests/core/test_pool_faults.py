"""core.Pool where the stdlib's hangs: killed and crashing workers, task timeouts, broken initializers,
results that cannot be rebuilt, terminate() with pending work.

The stdlib is never run on these paths (it would wait forever).  Every call must return or raise within a
couple of seconds; the pool must stay usable; no process may be left behind (conftest's leak check).
"""
import os
import signal
import threading
import time

import pytest

import core
import pool_helpers as h
from core.pool import PoolTerminatedError

FAST = 5.0          # a deadline for what must come at once (a result's get); never a figure asserted on
#: Tasks that would run longer than the test's own timeout (pytest-timeout): a pool that waited for them
#: instead of failing them makes the test fail, with no wall-time assertion.
FOREVER = 3600


def collect(it):
    """Iterate to the end: values and exceptions, in the order the iterator gives them."""
    out = []
    while True:
        try:
            out.append(next(it))
        except StopIteration:
            return out
        except Exception as e:     # noqa: BLE001
            out.append(e)


def assert_usable(p):
    assert p.map(h.square, range(6)) == [0, 1, 4, 9, 16, 25]
    deadline = time.monotonic() + FAST
    while len(p._pool) != p._processes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(p._pool) == p._processes
    assert all(w.is_alive() for w in p._pool)


def check_lost_items(values, n, culprit):
    """imap results with some WorkerLostErrors: the culprit failed, every other item is either its value
    or named in the tasks of the error it raised."""
    assert len(values) == n
    failed = set()
    for i, v in enumerate(values):
        if isinstance(v, core.WorkerLostError):
            assert i in v.tasks
            assert v.exitcode == -signal.SIGKILL and v.pid
            failed.add(i)
        else:
            assert v == i
    assert culprit in failed
    return failed


def test_sigkill_in_map(pool):
    with pytest.raises(core.WorkerLostError) as info:
        pool.map(h.kill_on_three, range(12), chunksize=1)
    e = info.value
    assert 3 in e.tasks
    assert e.exitcode == -signal.SIGKILL
    assert isinstance(e.pid, int) and e.pid > 0
    assert str(e.pid) in str(e) and "SIGKILL" in str(e) and "3" in str(e)
    assert_usable(pool)


def test_sigkill_in_map_default_chunksize(pool):
    with pytest.raises(core.WorkerLostError) as info:
        pool.map(h.kill_on_three, range(40))
    assert 3 in info.value.tasks
    assert_usable(pool)


def test_sigkill_in_imap(pool):
    values = collect(pool.imap(h.kill_on_three, range(30)))
    failed = check_lost_items(values, 30, 3)
    assert len(failed) < 30
    assert_usable(pool)


def test_sigkill_in_imap_unordered(pool):
    values = collect(pool.imap_unordered(h.kill_on_three, range(30)))
    errors = [v for v in values if isinstance(v, core.WorkerLostError)]
    ok = sorted(v for v in values if not isinstance(v, Exception))
    lost = sorted({i for e in errors for i in e.tasks})
    assert 3 in lost
    assert len(errors) == len(lost)             # one failed item per lost task
    assert sorted(ok + lost) == list(range(30))
    assert_usable(pool)


def test_sigkill_in_apply_async(pool):
    good = [pool.apply_async(h.sleep_for, (0.05,)) for _ in range(3)]
    bad = pool.apply_async(h.kill_self_on, (5, 5))
    with pytest.raises(core.WorkerLostError) as info:
        bad.get(timeout=FAST)
    assert info.value.tasks == (0,)
    assert [r.get(timeout=FAST) for r in good] == [0.05] * 3
    assert_usable(pool)


def test_os_exit(pool):
    with pytest.raises(core.WorkerLostError) as info:
        pool.apply(h.exit_on_two, (2,))
    assert info.value.exitcode == 3
    assert "exited with code 3" in str(info.value)
    assert pool.map(h.exit_on_two, [0, 1, 3]) == [0, 1, 3]


def test_sys_exit_and_segfault(start_method):
    with core.get_context(start_method).Pool(1) as p:
        with pytest.raises(core.WorkerLostError) as info:
            p.apply(h.sys_exit_task, (0,))
        assert info.value.exitcode == 7
        with pytest.raises(core.WorkerLostError) as info:
            p.apply(h.segfault, (0,))
        assert info.value.exitcode == -signal.SIGSEGV
        assert "SIGSEGV" in str(info.value)
        assert p.apply(h.square, (4,)) == 16


def test_worker_killed_from_outside(pool, tmp_path):
    started = [str(tmp_path / ("started-%d" % i)) for i in range(2)]
    results = [pool.apply_async(h.touch_then_sleep, (path, FOREVER)) for path in started]
    deadline = time.monotonic() + 60           # both tasks running (spawn workers start slowly when loaded)
    while not all(os.path.exists(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(os.path.exists(p) for p in started)
    for w in list(pool._pool):
        os.kill(w.pid, signal.SIGKILL)
    for r in results:
        with pytest.raises(core.WorkerLostError):
            r.get(timeout=FAST)
    assert_usable(pool)


def test_untouched_chunks_are_requeued(start_method):
    """A worker killed while others wait behind its long task: nothing it had not started is lost."""
    with core.get_context(start_method).Pool(2) as p:
        values = collect(p.imap(h.sleep_then_kill, range(12)))
        lost = [v for v in values if isinstance(v, core.WorkerLostError)]
        assert len(lost) == 1 and lost[0].tasks == (0,)
        assert values[1:] == list(range(1, 12))


def test_task_timeout_map(start_method):
    with core.get_context(start_method).Pool(2, task_timeout=0.5) as p:
        with pytest.raises(core.TaskTimeoutError) as info:
            p.map(h.sleep_for, [0.01, FOREVER, 0.01, 0.02], chunksize=1)
        e = info.value
        assert e.task == 1 and e.timeout == 0.5 and e.pid > 0
        assert "0.5" in str(e) and "task 1" in str(e)
        assert_usable(p)


def test_task_timeout_requeues_rest_of_chunk(pool):
    values = collect(pool.imap(h.sleep_for, [0.01, 30, 0.02, 0.03], chunksize=4, task_timeout=0.3))
    assert values[0] == 0.01 and values[2:] == [0.02, 0.03]
    assert isinstance(values[1], core.TaskTimeoutError)
    assert_usable(pool)


def test_task_timeout_per_call_override(start_method):
    with core.get_context(start_method).Pool(2, task_timeout=0.3) as p:
        assert p.apply(h.sleep_for, (0.6,), task_timeout=None) == 0.6
        assert p.apply(h.sleep_for, (0.6,), task_timeout=5) == 0.6
        with pytest.raises(core.TaskTimeoutError):
            p.apply(h.sleep_for, (5,))
        r = p.map_async(h.sleep_for, [0.6, 0.01], task_timeout=None)
        assert r.get(timeout=FAST) == [0.6, 0.01]
        with pytest.raises(core.TaskTimeoutError):
            list(p.imap_unordered(h.sleep_for, [0.01, 5], task_timeout=0.2))
        with pytest.raises(core.TaskTimeoutError):
            p.starmap(h.sleep_for, [(5,)], task_timeout=0.2)
        with pytest.raises(ValueError):
            p.map(h.square, [1], task_timeout=-1)
    with pytest.raises(ValueError):
        core.Pool(1, task_timeout=0)


def test_task_timeout_with_many_short_tasks(pool):
    """Short tasks under a timeout are answered in batches; results stay complete and in order."""
    assert pool.map(h.square, range(3000), task_timeout=5) == [i * i for i in range(3000)]
    assert sorted(pool.imap_unordered(h.square, range(500), task_timeout=5)) == [i * i for i in range(500)]
    assert pool.starmap(h.add, [(i, 1) for i in range(300)], 7, task_timeout=5) == list(range(1, 301))
    # short tasks, then one that overruns in the same chunk: every task is accounted for exactly once
    values = collect(pool.imap(h.sleep_for, [0.0001] * 50 + [30] + [0.0001] * 5, chunksize=56,
                               task_timeout=0.3))
    assert len(values) == 56
    assert isinstance(values[50], core.TaskTimeoutError) and values[50].task == 50
    for i, v in enumerate(values):
        if i != 50:
            assert v == 0.0001 or (isinstance(v, core.WorkerLostError) and i in v.tasks and i < 50)
    assert values[51:] == [0.0001] * 5


def test_timeout_then_more_work(pool):
    """After a timeout kill the replacement worker takes the rest; short tasks are unaffected."""
    r = pool.map_async(h.sleep_for, [5] + [0.01] * 20, chunksize=1, task_timeout=0.4)
    with pytest.raises(core.TaskTimeoutError):
        r.get(timeout=FAST)
    assert_usable(pool)


def test_initializer_failure_does_not_hang(start_method):
    with core.get_context(start_method).Pool(2, initializer=h.init_fail) as p:
        with pytest.raises(RuntimeError, match="initializer failed") as info:
            p.map(h.square, range(4))
        assert "init_fail" in str(info.value.__cause__)
        with pytest.raises(RuntimeError):
            p.apply(h.square, (1,))


def test_unrebuildable_exception_does_not_hang(pool):
    import pickle
    with pytest.raises(pickle.UnpicklingError) as info:
        pool.apply(h.raise_needs_two_args, (1,))
    assert "NeedsTwoArgs" in str(info.value.__cause__)
    assert pool.apply(h.square, (3,)) == 9


def test_terminate_fails_pending(start_method):
    p = core.get_context(start_method).Pool(2)
    it = p.imap(h.sleep_for, [0.01, FOREVER, FOREVER])
    assert next(it) == 0.01
    slow = [p.apply_async(h.sleep_for, (FOREVER,)) for _ in range(3)]
    m = p.map_async(h.sleep_for, [FOREVER] * 4)
    time.sleep(0.1)
    p.terminate()
    for r in slow + [m]:
        with pytest.raises(PoolTerminatedError):
            r.get(timeout=FAST)
    with pytest.raises(PoolTerminatedError):
        next(it)
    p.join()


def test_error_callback_on_worker_death(pool):
    got = []
    done = threading.Event()

    def ecb(e):
        got.append(e)
        done.set()

    pool.apply_async(h.kill_self_on, (1, 1), error_callback=ecb)
    assert done.wait(FAST)
    assert isinstance(got[0], core.WorkerLostError)


def test_slow_callback_does_not_delay_death_detection(pool):
    release = threading.Event()
    pool.apply_async(h.square, (2,), callback=lambda v: release.wait(FOREVER))   # busy until the end
    time.sleep(0.1)                  # the callback thread is now busy
    with pytest.raises(core.WorkerLostError):
        pool.map(h.kill_on_three, range(6), chunksize=1)
    release.set()


def test_many_deaths(start_method):
    """Several workers die in one call; every other task still completes."""
    with core.get_context(start_method).Pool(2) as p:
        items = [3, 0, 1, 3, 2, 3, 4]
        values = collect(p.imap(h.kill_self_on, items, chunksize=1))
        assert len(values) == len(items)
        for pos, (item, v) in enumerate(zip(items, values)):
            if item == 3:
                assert isinstance(v, core.WorkerLostError) and pos in v.tasks
            else:       # an innocent task succeeds, or was finished but unreported by a dying worker
                assert v == item or (isinstance(v, core.WorkerLostError) and pos in v.tasks)
        assert_usable(p)
