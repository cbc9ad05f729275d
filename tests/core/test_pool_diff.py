"""core.Pool against multiprocessing.Pool: same results, same exception types and messages, same API.

Each test runs both pools side by side (2 workers each) under every start method, on the same calls, and
compares what the caller sees.  Paths where the stdlib hangs (a dead worker, a terminated pool with pending
results...) are in test_pool_faults.py and test_pool.py, which never run the stdlib on them.
"""
import multiprocessing
import multiprocessing.pool
import pickle
import re
import threading

import pytest

import core
import core.pool
import pool_helpers as h

_ADDR = re.compile(r"0x[0-9a-fA-F]+")


def outcome(fn):
    """What the caller sees: ("ok", value) or ("err", type, message without addresses)."""
    try:
        return ("ok", fn())
    except Exception as e:         # noqa: BLE001 -- the point is to compare
        return ("err", type(e), _ADDR.sub("0x?", str(e)))


def items_of(it):
    """Iterate to the end, turning each failing item into ("err", type, message)."""
    out = []
    while True:
        try:
            out.append(("ok", next(it)))
        except StopIteration:
            return out
        except Exception as e:     # noqa: BLE001
            out.append(("err", type(e), _ADDR.sub("0x?", str(e))))


@pytest.fixture
def pools(start_method):
    """[stdlib pool, core pool].  A list emptied at teardown: the stdlib's pool must be garbage by the
    time the leak check looks for its named semaphores (spawn, forkserver), and pytest keeps a fixture's
    value until after that check."""
    holder = [multiprocessing.get_context(start_method).Pool(2), core.get_context(start_method).Pool(2)]
    try:
        yield holder
    finally:
        for p in holder:
            p.terminate()
            p.join()
        holder.clear()
        p = None


def both(pools, fn):
    std, cor = pools
    return outcome(lambda: fn(std)), outcome(lambda: fn(cor))


def gen(n):
    return (i for i in range(n))


def gen_raising(n):
    for i in range(n):
        yield i
    raise KeyError("input broke after %d" % n)


CALLS = {
    "map default chunksize": lambda p: p.map(h.square, range(50)),
    "map chunksize 1": lambda p: p.map(h.square, range(13), 1),
    "map chunksize 7": lambda p: p.map(h.square, range(13), chunksize=7),
    "map chunksize > len": lambda p: p.map(h.square, range(5), 100),
    "map empty": lambda p: p.map(h.square, []),
    "map empty chunksize 0": lambda p: p.map(h.square, [], 0),
    "map tuple": lambda p: p.map(h.square, (1, 2, 3)),
    "map dict": lambda p: p.map(h.square, {1: "a", 3: "b"}),
    "map str": lambda p: p.map(len, "abc"),
    "map generator": lambda p: p.map(h.square, gen(9)),
    "map set": lambda p: sorted(p.map(h.square, {4, 5, 6})),
    "map_async": lambda p: p.map_async(h.square, range(20), 3).get(timeout=30),
    "starmap": lambda p: p.starmap(h.add, [(1, 2), (3, 4), (5, 6)]),
    "starmap chunksize 2": lambda p: p.starmap(h.add, zip(range(9), range(9)), 2),
    "starmap_async": lambda p: p.starmap_async(h.add, [(1, 1)] * 5).get(timeout=30),
    "apply": lambda p: p.apply(h.add, (2, 3)),
    "apply kwds": lambda p: p.apply(h.kwargs_echo, (1,), {"b": 2, "a": 1}),
    "apply no args": lambda p: p.apply(h.kwargs_echo),
    "apply_async": lambda p: p.apply_async(h.square, (9,)).get(timeout=30),
    "imap": lambda p: list(p.imap(h.square, range(10))),
    "imap chunksize 3": lambda p: list(p.imap(h.square, range(10), 3)),
    "imap generator": lambda p: list(p.imap(h.square, gen(8))),
    "imap generator chunksize 4": lambda p: list(p.imap(h.square, gen(9), chunksize=4)),
    "imap empty": lambda p: list(p.imap(h.square, [])),
    "imap empty generator": lambda p: list(p.imap(h.square, gen(0))),
    "imap_unordered": lambda p: sorted(p.imap_unordered(h.square, range(10))),
    "imap_unordered chunksize 3": lambda p: sorted(p.imap_unordered(h.square, gen(10), 3)),
    "imap_unordered empty": lambda p: list(p.imap_unordered(h.square, [])),
    "builtin func": lambda p: p.map(abs, [-1, -2, 3]),
    "none result": lambda p: p.map(h.noop, range(4)),
    "big payload": lambda p: [len(x) for x in p.map(h.identity, [b"x" * 300000, b"y" * 5])],
    # frames over 1 MiB take the manager's big-frame path; distinct objects, so no pickle memo sharing
    "big arguments": lambda p: p.map(len, [bytes(3_000_000), bytes(2_500_000), b"a"], 1),
    "big results": lambda p: [len(x) for x in p.map(h.make_bytes, [3_000_000, 10, 2_000_000] * 2, 2)],
    "big results imap_unordered": lambda p: sorted(len(x) for x in p.imap_unordered(
        h.make_bytes, [1_500_000, 5, 4_000_000, 7])),
    "default chunksize rule": lambda p: [p.map_async(h.noop, range(n))._chunksize
                                         for n in (1, 7, 8, 9, 50, 1000)],
}


def test_results_match(pools):
    for name, call in CALLS.items():
        std, cor = both(pools, call)
        assert std[0] == "ok", (name, std)
        assert cor == std, name


class Unpicklable:
    def __reduce__(self):
        raise TypeError("Unpicklable refuses to be pickled")


ERROR_CALLS = {
    "apply raises": lambda p: p.apply(h.fail_on_three, (3,)),
    "apply_async raises": lambda p: p.apply_async(h.always_fail, ("k",)).get(timeout=30),
    "map raises": lambda p: p.map(h.fail_on_three, range(8)),
    "map raises chunksize 1": lambda p: p.map(h.fail_on_three, range(8), 1),
    "map_async raises": lambda p: p.map_async(h.fail_on_three, range(8)).get(timeout=30),
    "starmap raises": lambda p: p.starmap(h.star_fail, [(1, 2), (2, 2), (5, 1)]),
    "starmap non-iterable items": lambda p: p.starmap(h.add, [1, 2]),
    "imap raises (list)": lambda p: list(p.imap(h.fail_on_three, range(6))),
    "imap_unordered raises": lambda p: list(p.imap_unordered(h.fail_on_three, range(6))),
    "imap chunksize 2 raises": lambda p: list(p.imap(h.fail_on_three, range(6), 2)),
    "unpicklable argument apply": lambda p: p.apply(h.identity, (threading.Lock(),)),
    "unpicklable argument map": lambda p: p.map(h.identity, [1, Unpicklable(), 3]),
    "unpicklable argument imap": lambda p: list(p.imap(h.identity, [Unpicklable()])),
    "unpicklable function": lambda p: p.map(lambda x: x, [1, 2]),
    "unpicklable result apply": lambda p: p.apply(h.return_lock, (1,)),
    "unpicklable exception apply": lambda p: p.apply(h.raise_unpicklable, (1,)),
    "not iterable map": lambda p: p.map(h.square, 5),
    "not iterable imap": lambda p: list(p.imap(h.square, 5)),
    "input raises imap": lambda p: list(p.imap(h.square, gen_raising(3))),
    "input raises imap_unordered": lambda p: sorted(p.imap_unordered(h.square, gen_raising(3))),
    "input raises map": lambda p: p.map(h.square, gen_raising(3)),
    "func not callable": lambda p: p.map(None, [1]),
}


#: Same exception type, deliberately different message: the stdlib's names its internal wrapper
#: ("<multiprocessing.pool.ExceptionWithTraceback object at 0x...>"), core's the exception itself.
TYPE_ONLY = {"unpicklable exception apply"}


def test_errors_match(pools):
    for name, call in ERROR_CALLS.items():
        std, cor = both(pools, call)
        assert std[0] == "err", (name, std)
        if name in TYPE_ONLY:
            assert cor[:2] == std[:2], name
        else:
            assert cor == std, name


def test_remote_traceback_is_the_cause(pools):
    for p in pools:
        with pytest.raises(ValueError) as info:
            p.map(h.fail_on_three, range(5))
        cause = info.value.__cause__
        assert isinstance(cause, multiprocessing.pool.RemoteTraceback)
        assert "fail_on_three" in str(cause) and "Traceback" in str(cause)


def test_unpicklable_result_is_maybe_encoding_error(pools):
    for p in pools:
        with pytest.raises(multiprocessing.pool.MaybeEncodingError, match="Error sending result"):
            p.map(h.return_lock, range(3))
        with pytest.raises(core.pool.MaybeEncodingError):
            p.apply(h.return_lock, (1,))
        assert p.map(h.square, range(3)) == [0, 1, 4]           # the pool lives on


def test_item_sequences_match(pools):
    """imap/imap_unordered item by item: values, failing items, and what follows a failure."""
    calls = {
        "imap errors": lambda p: items_of(p.imap(h.fail_on_three, range(7))),
        "imap input raises": lambda p: items_of(p.imap(h.square, gen_raising(4))),
        "imap input raises at once": lambda p: items_of(p.imap(h.square, gen_raising(0))),
        "imap not iterable": lambda p: items_of(p.imap(h.square, 5)),
        "imap_unordered errors": lambda p: sorted(items_of(p.imap_unordered(h.fail_on_three, range(7))),
                                                  key=repr),
        "imap unpicklable item": lambda p: items_of(p.imap(h.identity, [1, Unpicklable(), 3])),
    }
    for name, call in calls.items():
        std, cor = both(pools, call)
        assert cor == std, name


def test_callbacks_match(pools):
    def run(p):
        got = []
        lock = threading.Lock()

        def cb(v):
            with lock:
                got.append(("cb", v))

        def ecb(e):
            with lock:
                got.append(("ecb", type(e), str(e)))

        results = [
            p.apply_async(h.square, (4,), callback=cb, error_callback=ecb),
            p.apply_async(h.fail_on_three, (3,), callback=cb, error_callback=ecb),
            p.map_async(h.square, range(5), callback=cb, error_callback=ecb),
            p.map_async(h.fail_on_three, range(5), 1, callback=cb, error_callback=ecb),
            p.starmap_async(h.add, [(1, 2)], callback=cb, error_callback=ecb),
            p.map_async(h.square, [], callback=cb, error_callback=ecb),       # stdlib: no callback
        ]
        for r in results:
            r.wait(30)
        # the callback has run by the time wait()/get() returns
        with lock:
            return sorted(got, key=repr)

    std, cor = both(pools, run)
    assert std[0] == "ok"
    assert cor == std


def test_result_objects_match(pools):
    def run(p):
        out = []
        r = p.apply_async(h.sleep_for, (0.5,))
        out.append(type(r).__name__)
        out.append(r.ready())
        out.append(outcome(r.successful)[1:2])          # ValueError("... not ready")
        out.append(outcome(lambda: r.get(timeout=0.01))[:2])
        r.wait(0.01)
        out.append(r.ready())
        out.append(r.get(timeout=30))
        out.append((r.ready(), r.successful()))
        m = p.map_async(h.fail_on_three, range(5))
        m.wait(30)
        out.append((type(m).__name__, m.ready(), m.successful()))
        it = p.imap(h.sleep_for, [0.5, 0.01])
        out.append(type(it).__name__)
        out.append(iter(it) is it)
        out.append(outcome(lambda: it.next(timeout=0.01))[:2])
        out.append(it.next(timeout=30))
        out.append(next(it))
        out.append(outcome(lambda: next(it))[:2])      # StopIteration
        u = p.imap_unordered(h.sleep_for, [0.3])
        out.append(type(u).__name__)
        out.append(outcome(lambda: u.next(timeout=0.01))[:2])
        out.append(u.next(timeout=30))
        return out

    std, cor = both(pools, run)
    assert std[0] == "ok", std
    assert cor == std
    assert isinstance(core.pool.AsyncResult, type) and core.pool.AsyncResult is core.pool.ApplyResult


def test_timeout_error_is_the_stdlibs(pools):
    for p in pools:
        r = p.apply_async(h.sleep_for, (0.3,))
        with pytest.raises(multiprocessing.TimeoutError):
            r.get(timeout=0.01)
        with pytest.raises(core.TimeoutError):
            p.imap(h.sleep_for, [0.3]).next(timeout=0.01)
        r.get(timeout=30)


def test_lifecycle_matches(start_method):
    def run(mod):
        ctx = mod.get_context(start_method)
        out = []
        p = ctx.Pool(2)
        out.append(p._processes)
        out.append(len(p._pool))
        out.append(re.sub(r"<[\w.]+\.Pool ", "<Pool ", repr(p)))
        out.append(outcome(p.join))                          # still running
        out.append(outcome(lambda: pickle.dumps(p))[:2])
        pending = p.map_async(h.sleep_for, [0.2, 0.2, 0.2])
        p.close()
        out.append(p._state)
        for call in (lambda: p.apply(h.square, (1,)), lambda: p.apply_async(h.square, (1,)),
                     lambda: p.map(h.square, [1]), lambda: p.map_async(h.square, [1]),
                     lambda: p.starmap(h.add, [(1, 2)]), lambda: p.starmap_async(h.add, [(1, 2)]),
                     lambda: p.imap(h.square, [1]), lambda: p.imap_unordered(h.square, [1]),
                     lambda: p.__enter__()):
            out.append(outcome(call))
        p.close()                                            # twice is fine
        p.join()
        out.append(pending.get(timeout=5))                   # close() lets queued work finish
        with ctx.Pool(1) as q:
            out.append(q.apply(h.square, (3,)))
        out.append(q._state)
        out.append(outcome(lambda: q.map(h.square, [1])))
        q.join()
        r = ctx.Pool(1)
        r.terminate()
        r.terminate()
        r.join()
        out.append(r._state)
        return out

    std = run(multiprocessing)
    cor = run(core)
    assert cor == std


def test_validation_matches():
    def run(mod):
        out = []
        for kwargs in ({"processes": 0}, {"processes": -3}, {"processes": 1, "initializer": 3},
                       {"processes": 1, "maxtasksperchild": 0}, {"processes": 1, "maxtasksperchild": -1},
                       {"processes": 1, "maxtasksperchild": 1.5}, {"processes": 1, "maxtasksperchild": "2"}):
            out.append(outcome(lambda kwargs=kwargs: mod.Pool(**kwargs)))
        with mod.Pool(1) as p:
            for call in (lambda: p.imap(h.square, [1], 0), lambda: p.imap(h.square, [1], -2),
                         lambda: p.imap_unordered(h.square, [1], 0),
                         lambda: p.imap_unordered(h.square, [1], chunksize=-1),
                         lambda: p.map(h.square, [], chunksize=-5)):
                out.append(outcome(call))
        return out

    std = run(multiprocessing)
    cor = run(core)
    assert cor == std
    assert std[0] == ("err", ValueError, "Number of processes must be at least 1")


def test_initializer_and_maxtasksperchild_match(start_method):
    def run(mod):
        ctx = mod.get_context(start_method)
        out = []
        with ctx.Pool(2, initializer=h.init_count, initargs=("hello",)) as p:
            reports = p.map(h.init_report, range(12), 1)
            # the initializer ran once in each worker, with its arguments
            out.append(sorted({(calls, value) for _pid, calls, value in reports}))
        with ctx.Pool(2, maxtasksperchild=1) as p:
            pids = [p.apply(h.pid_of, (i,)) for i in range(5)]
            out.append(len(set(pids)))                       # one task per worker: all different
            out.append(len(p.map(h.square, range(10), 1)))
        with ctx.Pool(2, maxtasksperchild=2) as p:
            pids = p.map(h.pid_of, range(8), 1)
            counts = {pid: pids.count(pid) for pid in pids}
            out.append(max(counts.values()) <= 2)
            out.append(len(counts) >= 4)
        with ctx.Pool(2, maxtasksperchild=1) as p:
            spans = p.map(h.interval, [0.15] * 6, 1)
            out.append(len({pid for pid, _, _ in spans}))
            out.append(max_overlap(spans))          # never more than 2 tasks (workers) at once
        return out

    std = run(multiprocessing)
    cor = run(core)
    assert cor == std
    assert std[0] == [(1, "hello")]


def max_overlap(spans):
    points = sorted([(t0, 1) for _, t0, _ in spans] + [(t1, -1) for _, _, t1 in spans])
    best = cur = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


def test_module_exports():
    std = multiprocessing.pool
    for name in ("Pool", "ThreadPool", "AsyncResult", "ApplyResult", "MapResult", "IMapIterator",
                 "IMapUnorderedIterator", "RemoteTraceback", "MaybeEncodingError", "ExceptionWithTraceback",
                 "TimeoutError", "RUN", "CLOSE", "TERMINATE", "INIT", "mapstar", "starmapstar"):
        assert hasattr(core.pool, name), name
    for name in ("ThreadPool", "RemoteTraceback", "MaybeEncodingError", "ExceptionWithTraceback",
                 "TimeoutError", "RUN", "CLOSE", "TERMINATE"):
        assert getattr(core.pool, name) is getattr(std, name), name
    with core.pool.ThreadPool(2) as tp:
        assert tp.map(h.square, range(4)) == [0, 1, 4, 9]
    assert set(core.pool.__all__) >= {"Pool", "ThreadPool"}


def test_context_entry_points(start_method):
    """core.Pool / ctx.Pool forward task_timeout=; context= accepts a stdlib context."""
    with core.get_context(start_method).Pool(1, task_timeout=30) as p:
        assert isinstance(p, core.pool.Pool)
        assert p._task_timeout == 30
        assert p.apply(h.square, (5,)) == 25
    with core.pool.Pool(1, context=multiprocessing.get_context(start_method)) as p:
        assert p._ctx is core.get_context(start_method)
        assert p.map(h.square, range(3)) == [0, 1, 4]


def test_default_pool_size():
    import os
    with core.Pool() as p:
        assert p._processes == (os.cpu_count() or 1)
        assert sorted(p.imap_unordered(h.square, range(4))) == [0, 1, 4, 9]
