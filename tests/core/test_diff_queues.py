"""Queue, SimpleQueue, JoinableQueue: the same programs on the stdlib and on core, every start method."""
import pickle
import queue
import threading

import pytest

import mp_helpers as H
from mp_helpers import both, catch, ok, started

EMPTY = (queue.Empty, "")
FULL = (queue.Full, "")
CLOSED = (ValueError, "Queue <multiprocessing.queues.Queue object at 0x?> is closed")


def _join_within(jq, timeout=10.0):
    """JoinableQueue.join() in a helper thread: True if it returned within ``timeout``."""
    t = threading.Thread(target=jq.join, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive()


def _drain_close(*qs):
    for q in qs:
        q.close()
        q.join_thread()


def test_queue_local(start_method, traced):
    def prog(ctx):
        q = ctx.Queue()
        r = [q.qsize(), q.empty(), q.full(), catch(q.get, timeout=0.05), catch(q.get_nowait), catch(q.get, False),
             catch(q.get, block=False, timeout=1)]
        items = [1, "two", (3.0, None), {"k": [1, 2]}, b"bytes" * 10, None]
        for it in items:
            q.put(it)
        r += [q.qsize(), q.full()]
        got = [q.get(timeout=5) for _ in items]
        r += [got == items, q.qsize(), q.empty()]
        lst = [1, [2]]
        q.put(lst)
        got = q.get(timeout=5)
        r += [got == lst, got is lst, got[1] is lst[1]]
        got[1].append(3)
        r.append(lst)
        _drain_close(q)
        return r

    assert both(prog, start_method) == ok([0, True, False, EMPTY, EMPTY, EMPTY, EMPTY, 6, False, True, 0, True,
                                           True, False, False, [1, [2]]])


def test_bounded_queue(start_method, traced):
    def prog(ctx):
        b = ctx.Queue(2)
        r = [b.put(1), b.put_nowait(2), b.full(), b.qsize(), catch(b.put, 3, timeout=0.05), catch(b.put_nowait, 3),
             catch(b.put, 3, False), catch(b.put, 3, block=False, timeout=5), b.get(timeout=5), b.full(),
             b.put(3, timeout=1), b.get(timeout=5), b.get(timeout=5), b.empty(), b.full()]
        for size in (0, -1):
            u = ctx.Queue(size)
            r += [u.full(), u.put(1), u.get(timeout=5)]
            _drain_close(u)
        _drain_close(b)
        return r

    assert both(prog, start_method) == ok([None, None, True, 2, FULL, FULL, FULL, FULL, 1, False, None, 2, 3,
                                           True, False, False, None, 1, False, None, 1])


def test_queue_close_and_join_thread(start_method, traced):
    def prog(ctx):
        c = ctx.Queue()
        r = [catch(c.join_thread)[0], c.put("x"), c.close(), catch(c.put, 1), catch(c.get, timeout=0.01),
             catch(c.get_nowait), c.qsize(), c.close(), c.join_thread(), c.join_thread()]
        d = ctx.Queue()
        d.put("never read")
        r += [d.cancel_join_thread(), d.close(), d.join_thread()]
        u = ctx.Queue()
        u.put(lambda: "not picklable")           # the feeder thread reports it and drops the item
        u.put("after")
        r += [u.get(timeout=5), catch(u.get, timeout=0.05)]
        _drain_close(u)
        return r

    assert both(prog, start_method) == ok([AssertionError, None, None, CLOSED, CLOSED, CLOSED,
                                           1, None, None, None, None, None, None,
                                           "after", EMPTY])


@pytest.mark.parametrize("kind", ["Queue", "JoinableQueue", "SimpleQueue"])
def test_queue_pickling_outside_spawning(start_method, kind):
    def prog(ctx):
        q = getattr(ctx, kind)()
        res = catch(pickle.dumps, q)
        q.close()
        return res if res[0] != "ok" else "pickled"

    assert both(prog, start_method) == ok(
        (RuntimeError, "%s objects should only be shared between processes through inheritance" % kind))


def test_queue_across_processes(start_method, traced):
    def prog(ctx):
        q_in, q_out, prod_q = ctx.Queue(), ctx.Queue(3), ctx.Queue()   # q_out is bounded: the child blocks
        big = b"x" * 200000
        echo = ctx.Process(target=H.echo_doubled, args=(q_in, q_out))
        prod = ctx.Process(target=H.produce, args=(prod_q, list(range(20)) + [big]))
        with started(echo, prod):
            for i in range(10):
                q_in.put(i)
            q_in.put(None)
            doubled = [q_out.get(timeout=10) for _ in range(10)]
            produced = [prod_q.get(timeout=10) for _ in range(21)]
        r = [doubled, produced[:20], produced[20] == big, catch(q_out.get, timeout=0.05),
             [echo.exitcode, prod.exitcode]]
        filled = ctx.Queue()
        p = ctx.Process(target=H.produce, args=(filled, ["a", "b"]))
        with started(p):
            pass
        r += [filled.empty(), filled.qsize(), filled.get(timeout=5), filled.get(timeout=5), filled.empty()]
        child_get = ctx.SimpleQueue()
        g = ctx.Process(target=H.get_with_timeout, args=(filled, child_get))
        with started(g):
            r.append(child_get.get())
        _drain_close(q_in, q_out, prod_q, filled)
        return r

    assert both(prog, start_method) == ok([[i * 2 for i in range(10)], list(range(20)), True, EMPTY, [0, 0],
                                           False, 2, "a", "b", True, ("Empty", True)])


def test_simple_queue(start_method, traced):
    def prog(ctx):
        sq = ctx.SimpleQueue()
        r = [sq.empty(), sq.put(1), sq.empty(), sq.get(), sq.empty()]
        lst = [1]
        sq.put(lst)
        lst.append(2)                            # put() pickled it already
        r.append(sq.get())
        q_in, q_out = ctx.SimpleQueue(), ctx.SimpleQueue()
        p = ctx.Process(target=H.simple_queue_echo, args=(q_in, q_out))
        with started(p):
            for item in (1, "s", (1, 2), None):
                q_in.put(item)
            r.append([q_out.get() for _ in range(3)])
        r.append(p.exitcode)
        sq.close()
        r += [catch(sq.get), catch(sq.put, 1), catch(sq.empty), sq.close()]
        for q in (q_in, q_out):
            q.close()
        return r

    closed = (OSError, "handle is closed")
    assert both(prog, start_method) == ok([True, None, False, 1, True, [1], [(1, "int"), ("s", "str"),
                                           ((1, 2), "tuple")], 0, closed, closed, closed, None])


def test_joinable_queue_local(start_method, traced):
    def prog(ctx):
        jq = ctx.JoinableQueue()
        r = [catch(jq.task_done), _join_within(jq, 5), jq.put(1), jq.put(2), jq.qsize(), jq.get(timeout=5),
             jq.task_done(), _join_within(jq, 0.05), jq.get(timeout=5), jq.task_done(), catch(jq.task_done),
             _join_within(jq, 5), jq.put_nowait(3), jq.get_nowait() if H.wait_until(lambda: not jq.empty()) else None,
             jq.task_done(), jq.join()]
        b = ctx.JoinableQueue(1)
        r += [b.put(1), catch(b.put, 2, timeout=0.05), catch(b.put_nowait, 2)]
        _drain_close(jq, b)
        return r

    too_many = (ValueError, "task_done() called too many times")
    assert both(prog, start_method) == ok([too_many, True, None, None, 2, 1, None, False, 2, None, too_many, True,
                                           None, 3, None, None, None, FULL, FULL])


def test_joinable_queue_across_processes(start_method, traced):
    def prog(ctx):
        jq, out = ctx.JoinableQueue(), ctx.Queue()
        done = ctx.Value("i", 0)
        ps = [ctx.Process(target=H.joinable_consumer, args=(jq, out, done)) for _ in range(2)]
        with started(*ps):
            for i in range(6):
                jq.put(i)
            r = [_join_within(jq), done.value]       # join() returned only after all six task_done()
            for _ in ps:
                jq.put(None)
            r.append(_join_within(jq))
            r.append(sorted(out.get(timeout=10) for _ in range(6)))
        r += [[p.exitcode for p in ps], catch(jq.task_done)]
        _drain_close(jq, out)
        return r

    assert both(prog, start_method) == ok([True, 6, True, [0, 10, 20, 30, 40, 50], [0, 0],
                                           (ValueError, "task_done() called too many times")])
