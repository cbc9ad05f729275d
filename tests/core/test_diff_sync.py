"""Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event, Barrier: the same programs on the stdlib and
on core, under every start method.  Cross-process tests pass the objects to children as Process arguments,
which pickles them under spawn and forkserver."""
import pickle
import threading

import pytest

import mp_helpers as H
from mp_helpers import both, catch, ok, started

RELEASED_TOO_MANY = (ValueError, "semaphore or lock released too many times")
NOT_OWNER = (AssertionError, "attempt to release recursive lock not owned by thread")


def _in_thread(fn, *args):
    """``catch(fn, *args)`` run in another thread of this process."""
    out = []
    t = threading.Thread(target=lambda: out.append(catch(fn, *args)))
    t.start()
    t.join(10)
    return out[0]


# ------------------------------------------------------------------------------------------------------
# In one process
# ------------------------------------------------------------------------------------------------------

def test_lock_local(start_method, traced):
    def prog(ctx):
        lock = ctx.Lock()
        r = [repr(lock), lock.acquire(), repr(lock), lock.acquire(False), lock.acquire(block=False),
             lock.acquire(timeout=0.05), lock.acquire(True, 0.01), _in_thread(lock.acquire, True, 0.05),
             lock.release(), repr(lock), catch(lock.release)]
        with lock as entered:
            r += [entered, lock.acquire(False)]
        r += [lock.acquire(timeout=0), _in_thread(lock.release), lock.acquire(False)]   # any thread may release
        lock.release()
        return r

    assert both(prog, start_method) == ok([
        "<Lock(owner=None)>", True, "<Lock(owner=MainProcess)>", False, False, False, False, ok(False),
        None, "<Lock(owner=None)>", RELEASED_TOO_MANY, True, False, True, ok(None), True])


def test_acquire_argument_errors(start_method, traced):
    """Bad arguments to acquire()/release() raise as the stdlib's C methods do, held or not."""
    def prog(ctx):
        r = []
        for kind in ("Lock", "RLock", "Semaphore"):
            obj = getattr(ctx, kind)()
            r += [catch(obj.acquire, True, "soon"), catch(obj.acquire, timeout=[]),
                  catch(obj.acquire, True, None, 3)[0], catch(obj.acquire, blocking=False)[0],
                  catch(obj.release, 1)[0], obj.acquire(timeout=-1), catch(obj.acquire, True, "soon")]
            obj.release()
        return r

    res = both(prog, start_method)[1]
    assert res[0] == (TypeError, "must be real number, not str")
    assert res[2:5] == [TypeError, TypeError, TypeError]


def test_rlock_local(start_method, traced):
    def prog(ctx):
        rl = ctx.RLock()
        r = [repr(rl), rl.acquire(), rl.acquire(), rl.acquire(False), rl.acquire(timeout=0.05), repr(rl),
             _in_thread(rl.acquire, True, 0.05), _in_thread(rl.release)]
        r += [rl.release() for _ in range(4)]
        r += [repr(rl), catch(rl.release)]
        with rl:
            with rl as again:
                r += [again, repr(rl)]
        r.append(repr(rl))
        return r

    assert both(prog, start_method) == ok([
        "<RLock(None, 0)>", True, True, True, True, "<RLock(MainProcess, 4)>", ok(False), NOT_OWNER,
        None, None, None, None, "<RLock(None, 0)>", NOT_OWNER, True, "<RLock(MainProcess, 2)>",
        "<RLock(None, 0)>"])


def test_semaphores_local(start_method, traced):
    def prog(ctx):
        s = ctx.Semaphore(2)
        r = [repr(s), s.get_value(), s.acquire(), s.acquire(), s.acquire(False), s.acquire(timeout=0.05),
             s.get_value(), s.release(), s.release(), s.release(), s.get_value(), repr(s)]
        with s as entered:
            r += [entered, s.get_value()]
        b = ctx.BoundedSemaphore(2)
        r += [repr(b), b.acquire(), b.get_value(), b.release(), catch(b.release), b.get_value(), repr(b)]
        r += [ctx.Semaphore().get_value(), ctx.BoundedSemaphore().get_value(), ctx.Semaphore(0).acquire(False)]
        r += [catch(ctx.Semaphore, -1)[0], catch(ctx.BoundedSemaphore, -1)[0]]
        return r

    assert both(prog, start_method) == ok([
        "<Semaphore(value=2)>", 2, True, True, False, False, 0, None, None, None, 3, "<Semaphore(value=3)>",
        True, 2, "<BoundedSemaphore(value=2, maxvalue=2)>", True, 1, None, RELEASED_TOO_MANY, 2,
        "<BoundedSemaphore(value=2, maxvalue=2)>", 1, 1, False, OSError, OSError])


def test_condition_local(start_method, traced):
    def prog(ctx):
        c = ctx.Condition()
        r = [catch(c.wait, 0.01), catch(c.notify), catch(c.notify_all), repr(c)]
        with c:
            r += [repr(c), c.wait(0.05), c.wait(timeout=0), c.wait_for(lambda: False, 0.05),
                  c.wait_for(lambda: "truthy"), c.wait_for(lambda: 0, timeout=0.01), c.notify(), c.notify(3),
                  c.notify_all()]
        lock = ctx.Lock()
        c2 = ctx.Condition(lock)
        with c2:
            r += [lock.acquire(False), c2.wait(0.01), lock.acquire(False), repr(c2)]
        r.append(lock.acquire(False))
        lock.release()
        r += [c.acquire(), c.acquire(False), c.release(), c.release(), catch(c.release)]
        return r

    assert both(prog, start_method) == ok([
        (AssertionError, "must acquire() condition before using wait()"), (AssertionError, "lock is not owned"),
        (AssertionError, "lock is not owned"), "<Condition(<RLock(None, 0)>, 0)>",
        "<Condition(<RLock(MainProcess, 1)>, 0)>", False, False, False, "truthy", 0, None, None, None,
        False, False, False, "<Condition(<Lock(owner=MainProcess)>, 0)>", True, True, True, None, None,
        NOT_OWNER])


def test_event_local(start_method, traced):
    def prog(ctx):
        ev = ctx.Event()
        r = [ev.is_set(), ev.wait(0.05), ev.wait(timeout=0), ev.set(), ev.is_set(), ev.wait(), ev.wait(0),
             ev.set(), ev.is_set(), ev.clear(), ev.is_set(), ev.wait(0.01), ev.clear(), ev.is_set()]
        t = threading.Timer(0.05, ev.set)
        t.start()
        r.append(ev.wait(10))
        t.join()
        return r

    assert both(prog, start_method) == ok([False, False, False, None, True, True, True, None, True, None,
                                           False, False, None, False, True])


def test_barrier_local(start_method, traced):
    def prog(ctx):
        counter = ctx.Value("i", 0)
        b1 = ctx.Barrier(1, action=lambda: counter.__setattr__("value", counter.value + 1))
        r = [b1.parties, b1.n_waiting, b1.broken, b1.wait(), b1.wait(timeout=1), counter.value]
        b = ctx.Barrier(2, timeout=0.05)
        r += [b.parties, catch(b.wait), b.broken, b.n_waiting, catch(b.wait, 5), b.reset(), b.broken]
        r += [catch(b.wait, 0.01), b.broken, b.reset(), b.abort(), b.broken, catch(b.wait), b.reset(), b.broken]
        r += [catch(ctx.Barrier(2).wait, 0.02), catch(ctx.Barrier, 0)[0]]
        bad = ctx.Barrier(1, action=H.raise_error)
        r += [catch(bad.wait), bad.broken]
        return r

    broken = (threading.BrokenBarrierError, "")
    assert both(prog, start_method) == ok([
        1, 0, False, 0, 0, 2, 2, broken, True, 0, broken, None, False, broken, True, None, None, True, broken,
        None, False, broken, "ok", (ValueError, "boom from the child"), True])


@pytest.mark.parametrize("kind", ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event",
                                  "Barrier"])
def test_pickling_outside_spawning(start_method, kind):
    """Synchronisation objects are shared only through inheritance: pickling them raises RuntimeError."""
    def prog(ctx):
        obj = getattr(ctx, kind)(2) if kind == "Barrier" else getattr(ctx, kind)()
        r = catch(pickle.dumps, obj)
        return r if r[0] != "ok" else "pickled"

    res = both(prog, start_method)[1]
    assert res[0] is RuntimeError and "should only be shared between processes through inheritance" in res[1]


# ------------------------------------------------------------------------------------------------------
# Across processes
# ------------------------------------------------------------------------------------------------------

def test_counter_under_lock(start_method, traced):
    """Two workers race read-modify-write under a Lock and under a Value's own lock: exact totals."""
    n = 1500

    def prog(ctx):
        lock = ctx.Lock()
        raw = ctx.Value("i", 0, lock=False)
        synced = ctx.Value("i", 0)
        start = ctx.Barrier(2)
        ps = [ctx.Process(target=H.locked_increments, args=(start, lock, raw, synced, n)) for _ in range(2)]
        with started(*ps):
            pass
        return [raw.value, synced.value, [p.exitcode for p in ps], lock.acquire(False)]

    assert both(prog, start_method) == ok([2 * n, 2 * n, [0, 0], True])


def test_acquire_held_by_parent(start_method):
    def prog(ctx):
        objs = [ctx.Lock(), ctx.RLock(), ctx.Semaphore(1), ctx.BoundedSemaphore(1), ctx.Condition()]
        for o in objs:
            o.acquire()
        q = ctx.SimpleQueue()
        p = ctx.Process(target=H.try_acquire_held, args=(q, objs))
        with started(p):
            got = q.get()
        mine = [o.acquire(False) for o in objs]
        return [got, mine, p.exitcode]

    assert both(prog, start_method) == ok([[(False, False, False)] * 5, [False, True, False, False, True], 0])


def test_release_by_other_process(start_method):
    def prog(ctx):
        lock, rlock = ctx.Lock(), ctx.RLock()
        lock.acquire()
        rlock.acquire()
        q = ctx.SimpleQueue()
        p = ctx.Process(target=H.release_foreign, args=(q, lock, rlock))
        with started(p):
            got = q.get()
        after = [lock.acquire(False), repr(rlock), rlock.release(), repr(rlock)]
        waiter = ctx.Process(target=H.acquire_then_report, args=(q, lock))
        lock.release()
        with started(waiter):
            got2 = q.get()
        return [got, after, got2]

    assert both(prog, start_method) == ok([
        (ok(None), NOT_OWNER), [True, "<RLock(MainProcess, 1)>", None, "<RLock(None, 0)>"], True])


def test_condition_notify_across_processes(start_method, traced):
    def prog(ctx):
        cond = ctx.Condition()
        ready = ctx.Semaphore(0)
        flag = ctx.Value("i", 0)
        results = ctx.Queue()
        ps = [ctx.Process(target=H.cond_waiter, args=(cond, ready, flag, results)) for _ in range(2)]
        r = []
        with started(*ps):
            for _ in ps:
                r.append(ready.acquire(timeout=10))
            with cond:                               # both workers are now inside cond.wait()
                flag.value = 1
                cond.notify()
            r.append(results.get(timeout=10))
            r.append(catch(results.get, timeout=0.2)[0].__name__)   # notify() woke exactly one
            with cond:
                flag.value = 2
                cond.notify_all()
            r.append(results.get(timeout=10))
        r.append([p.exitcode for p in ps])
        results.close()
        results.join_thread()
        return r

    assert both(prog, start_method) == ok([True, True, (True, 1), "Empty", (True, 2), [0, 0]])


def test_condition_wait_for_across_processes(start_method):
    def prog(ctx):
        lock = ctx.Lock()
        cond = ctx.Condition(lock)
        ready = ctx.Semaphore(0)
        flag = ctx.Value("i", 0)
        results = ctx.SimpleQueue()
        ps = [ctx.Process(target=H.cond_wait_for, args=(cond, ready, flag, results)) for _ in range(2)]
        with started(*ps):
            for _ in ps:
                ready.acquire(timeout=10)
            with cond:
                cond.notify_all()                   # predicate still false: they go back to waiting
            with cond:
                flag.value = 1
                cond.notify_all()
            got = sorted([results.get(), results.get()])
        return [got, [p.exitcode for p in ps]]

    assert both(prog, start_method) == ok([[(True, 1), (True, 1)], [0, 0]])


def test_event_across_processes(start_method, traced):
    def prog(ctx):
        ev_in, ev_out = ctx.Event(), ctx.Event()
        q = ctx.SimpleQueue()
        p = ctx.Process(target=H.event_ping, args=(ev_in, ev_out, q))
        with started(p):
            r = [ev_out.wait(0.05), ev_in.set(), ev_out.wait(10), q.get(), ev_out.is_set()]
        return r + [p.exitcode]

    assert both(prog, start_method) == ok([False, None, True, (True, True), True, 0])


def test_semaphore_across_processes(start_method):
    def prog(ctx):
        sem = ctx.BoundedSemaphore(2)
        sem.acquire()
        sem.acquire()
        q = ctx.SimpleQueue()
        p = ctx.Process(target=H.semaphore_worker, args=(sem, q))
        releaser = ctx.Process(target=H.semaphore_release, args=(sem,))
        with started(p):
            with started(releaser):
                pass
            got = q.get()
        return [got, sem.get_value(), releaser.exitcode, catch(sem.release), sem.release(), catch(sem.release)]

    assert both(prog, start_method) == ok([(True, 0), 0, 0, ok(None), None, RELEASED_TOO_MANY])


def test_barrier_across_processes(start_method):
    def prog(ctx):
        gens = ctx.Value("i", 0)
        import functools
        b = ctx.Barrier(3, action=functools.partial(H.incr_value, gens), timeout=10)
        q = ctx.SimpleQueue()
        ps = [ctx.Process(target=H.barrier_waiter, args=(b, q, 2)) for _ in range(2)]
        with started(*ps):
            mine = [b.wait(), b.wait()]
            theirs = [q.get(), q.get()]
        indexes = sorted([mine[0], theirs[0][0], theirs[1][0]]), sorted([mine[1], theirs[0][1], theirs[1][1]])
        return [indexes, gens.value, b.n_waiting, b.broken, [p.exitcode for p in ps]]

    assert both(prog, start_method) == ok([([0, 1, 2], [0, 1, 2]), 2, 0, False, [0, 0]])


def test_barrier_abort_reset_timeout_across_processes(start_method, traced):
    def prog(ctx):
        b = ctx.Barrier(2)
        q = ctx.SimpleQueue()
        p = ctx.Process(target=H.barrier_broken_waiter, args=(b, q))
        with started(p):
            r = [H.wait_until(lambda: b.n_waiting == 1), b.n_waiting]
            b.abort()
            r += [q.get(), b.broken, catch(b.wait, 1)]
        b.reset()
        r.append(b.broken)
        p2 = ctx.Process(target=H.barrier_broken_waiter, args=(b, q, 0.1))   # times out alone
        with started(p2):
            r.append(q.get())
        r += [b.broken, b.n_waiting]
        return r

    broken = (threading.BrokenBarrierError, "")
    assert both(prog, start_method) == ok([True, 1, ("broken", "BrokenBarrierError"), True, broken, False,
                                           ("broken", "BrokenBarrierError"), True, 0])
