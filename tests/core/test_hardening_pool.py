"""Hardening of core's Pool and contexts, found by using them as an adversarial user would (issue 8).

* A Pool releases task arguments and results as soon as the caller is done with them, in the parent and
  in its workers (the stdlib keeps none alive; core kept the last payload in a reused pickler).
* imap/imap_unordered over an input iterable that raises: the exception comes out of ``next()`` at its
  position, after the results before it, exactly as the stdlib's (a partial chunk read before the
  exception is not run).
* ``task_timeout`` that is not a finite number of seconds is refused where it is given.
* core's default context and the stdlib's are one state, so programs mixing core and libraries that use
  ``multiprocessing`` directly behave as with the stdlib alone.
"""
import gc
import json
import math
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
import weakref

import pytest

import core
import core.pool
import pool_helpers as h

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)

#: Size of the big payloads (bytes): well above the pool's big-frame threshold, small enough for CI.
PAYLOAD = 48 * 1024 * 1024
#: Seconds to wait for a state no event announces (a pool thread dropping what it held after the caller
#: got its result; an imap input's length becoming known).
WAIT_DEADLINE = 10.0


def _pool(modname, start_method, processes):
    mod = core if modname == "core" else multiprocessing
    return mod.get_context(start_method).Pool(processes)


@pytest.fixture(params=["multiprocessing", "core"])
def family(request):
    """Each payload test runs on the stdlib's Pool (the reference) and on core's."""
    return request.param


@pytest.fixture
def make_pool(start_method, family):
    """make_pool(processes) -> a Pool of ``family`` under the test's start method; terminated and joined
    afterwards (the list is emptied so the stdlib's named semaphores are garbage before the leak check)."""
    made = []

    def make(processes):
        p = _pool(family, start_method, processes)
        made.append(p)
        return p

    try:
        yield make
    finally:
        for p in made:
            p.terminate()
            p.join()
        made.clear()


def _alive(refs):
    gc.collect()
    return sum(1 for r in refs if r() is not None)


def _eventually_none_alive(refs):
    """Count of still-referenced objects, polled until it is zero or the deadline passes.  (The caller may
    get its result a moment before a pool thread's stack drops its last reference: the stdlib's result
    thread holds the chunk in a local while it sets the result.)"""
    deadline = time.monotonic() + WAIT_DEADLINE
    n = _alive(refs)
    while n and time.monotonic() < deadline:
        time.sleep(0.02)
        n = _alive(refs)
    return n


# ------------------------------------------------------------------------------------------------------
# 1. Payloads are released
# ------------------------------------------------------------------------------------------------------

def test_map_releases_arguments_in_the_parent(make_pool):
    pool = make_pool(2)
    args = [h.Marker(i) for i in range(1000)]
    refs = [weakref.ref(a) for a in args]
    assert pool.map(h.marker_index, args) == list(range(1000))
    del args
    assert _eventually_none_alive(refs) == 0


def test_map_releases_results_in_the_parent(make_pool):
    pool = make_pool(2)
    results = pool.map(h.make_marker, range(1000))
    refs = [weakref.ref(r) for r in results]
    del results
    assert _eventually_none_alive(refs) == 0


def test_imap_and_apply_release_their_payloads_in_the_parent(make_pool):
    pool = make_pool(2)
    args = [h.Marker(i) for i in range(300)]
    refs = [weakref.ref(a) for a in args]
    assert list(pool.imap(h.marker_index, iter(args), 7)) == list(range(300))
    assert sorted(pool.imap_unordered(h.marker_index, args)) == list(range(300))
    one = h.Marker(-1)
    refs.append(weakref.ref(one))
    assert pool.apply(h.marker_index, (one,)) == -1
    got = pool.apply(h.make_marker, (5,))
    refs.append(weakref.ref(got))
    del args, one, got
    assert _eventually_none_alive(refs) == 0


def test_a_worker_keeps_no_argument_or_result_alive(make_pool, traced):
    """A pool of one worker: after tasks that received and returned Markers, a later task in the same
    worker finds none of them alive there (untraced and traced: the worker runs tasks in other loops)."""
    pool = make_pool(1)
    assert pool.map(h.marker_index, [h.Marker(i) for i in range(500)]) == list(range(500))
    assert pool.apply(h.markers_alive) == 0
    results = pool.map(h.make_marker, range(500))
    assert len(results) == 500
    assert pool.apply(h.markers_alive) == 0
    assert pool.apply(h.make_marker, (1,)).i == 1
    assert pool.apply(h.markers_alive) == 0
    assert list(pool.imap_unordered(h.make_marker, range(50), 4))
    assert pool.apply(h.markers_alive) == 0


def test_apply_with_a_big_argument_leaves_no_memory_behind_in_the_parent(make_pool):
    pool = make_pool(1)
    assert pool.apply(len, (b"warm-up",)) == 7
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        arg = bytes(PAYLOAD)
        assert pool.apply(len, (arg,)) == PAYLOAD
        del arg
        deadline = time.monotonic() + WAIT_DEADLINE
        while True:
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
            if grown < PAYLOAD // 4 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    finally:
        tracemalloc.stop()
    assert grown < PAYLOAD // 4, "the parent still holds %.0f MiB" % (grown / 2**20)


def test_a_worker_keeps_no_memory_after_a_big_argument_or_result(make_pool):
    pool = make_pool(1)
    assert pool.apply(len, (b"warm-up",)) == 7
    assert len(pool.apply(h.make_bytes, (10,))) == 10
    pool.apply(h.start_tracing_memory)
    assert pool.apply(len, (bytes(PAYLOAD),)) == PAYLOAD
    assert len(pool.apply(h.make_bytes, (PAYLOAD,))) == PAYLOAD
    grown = pool.apply(h.traced_memory_growth)
    assert grown < PAYLOAD // 4, "the worker still holds %.0f MiB" % (grown / 2**20)


# ------------------------------------------------------------------------------------------------------
# 2. imap/imap_unordered over an input that raises: the stdlib's sequence, item by item
# ------------------------------------------------------------------------------------------------------

#: Items in each input; where the input raises (chunksize 3: the first item, the start of a chunk, the
#: middle of a chunk; for chunksize 1 every position is the start of a chunk); "iter" for an input that
#: cannot even be iterated.
N_INPUT = 10
RAISE_AT = [0, 6, 7, 9, "iter"]


class _NotIterable:
    def __iter__(self):
        raise TypeError("this input cannot be iterated")


def _raising_input(paths, at):
    if at == "iter":
        return _NotIterable()

    def gen():
        for i, p in enumerate(paths):
            if i == at:
                raise KeyError("the input broke at item %d" % i)
            yield p
    return gen()


def _sequence(it):
    """What the caller sees, item by item, until the iterator ends (or keeps raising)."""
    out = []
    for _ in range(N_INPUT + 3):
        try:
            out.append(("ok", next(it)))
        except StopIteration:
            out.append(("stop",))
            return out
        except Exception as e:      # noqa: BLE001 -- the point is to compare
            out.append(("err", type(e), str(e)))
    return out


def _ran(directory):
    return sorted(os.listdir(directory))


@pytest.mark.parametrize("chunksize", [1, 3])
@pytest.mark.parametrize("method", ["imap", "imap_unordered"])
def test_input_that_raises_matches_the_stdlib(start_method, method, chunksize, tmp_path):
    """Same program on the stdlib's Pool and core's: the results before the failing input item, then its
    exception from next(), then the end; and the same tasks ran (a partial chunk read before the exception
    is not run).  imap_unordered uses one worker, so the stdlib's completion order is deterministic."""
    processes = 2 if method == "imap" else 1
    pools = [_pool("multiprocessing", start_method, processes), _pool("core", start_method, processes)]
    try:
        for at in RAISE_AT:
            seen = []
            for k, pool in enumerate(pools):
                d = tmp_path / ("%s-%s-%d" % (at, method, k))
                d.mkdir()
                paths = [str(d / ("item%02d" % i)) for i in range(N_INPUT)]
                it = getattr(pool, method)(h.touch, _raising_input(paths, at), chunksize)
                seen.append((_sequence(it), _ran(d)))
            assert seen[1] == seen[0], "input raising at %r differs:\n  stdlib: %r\n  core:   %r" % (
                at, seen[0], seen[1])
            assert seen[0][0][-1] == ("stop",)
    finally:
        for p in pools:
            p.terminate()
            p.join()
        pools.clear()


def test_input_error_comes_after_every_earlier_result_unordered():
    """imap_unordered with several workers: the input's exception is raised only after every result of
    the items read before it (they may finish in any order, the error comes last), then the iteration
    ends."""
    with core.get_context("fork").Pool(2) as pool:
        for chunksize in (1, 2):
            src = _slow_then_raise(5)
            out = _sequence(pool.imap_unordered(h.sleep_for, src, chunksize))
            assert out[-2:] == [("err", KeyError, "'the input broke at item 5'"), ("stop",)], out
            expected = 5 if chunksize == 1 else 4        # chunksize 2: item 4 was in the partial chunk
            assert sorted(v for kind, v in out[:-2]) == sorted([0.3] + [0.0] * (expected - 1))


def _slow_then_raise(n, first=0.3):
    yield first                 # a slow first task: quick ones after it finish first
    for _ in range(1, n):
        yield 0.0
    raise KeyError("the input broke at item %d" % n)


def test_terminate_while_an_input_error_waits_for_earlier_results():
    """The input's exception is known but waits for a long task before it; terminate() ends the
    iteration (every undelivered item fails with PoolTerminatedError, the input's position too), never
    hangs."""
    pool = core.get_context("fork").Pool(1)
    try:
        it = pool.imap_unordered(h.sleep_for, _slow_then_raise(1, first=60.0))
        deadline = time.monotonic() + WAIT_DEADLINE
        while it.progress[1] is None and time.monotonic() < deadline:      # the input's length is known
            time.sleep(0.01)
        assert it.progress == (0, 2)
        pool.terminate()
        assert [(kind, e) for kind, e, *_ in _sequence(it)[:2]] == [("err", core.PoolTerminatedError)] * 2
        assert _sequence(it) == [("stop",)]
    finally:
        pool.terminate()
        pool.join()


# ------------------------------------------------------------------------------------------------------
# 3. task_timeout must be a finite number of seconds
# ------------------------------------------------------------------------------------------------------

BAD_TIMEOUTS = [math.inf, 1e300, core.pool.MAX_TASK_TIMEOUT + 1, -math.inf, math.nan, 0, -1, "5", True]


@pytest.mark.parametrize("bad", BAD_TIMEOUTS, ids=repr)
def test_bad_task_timeout_is_refused_by_the_pool(bad):
    with pytest.raises(ValueError, match=r"^task_timeout must be .* or None .*not .*$") as info:
        core.get_context("fork").Pool(1, task_timeout=bad)
    assert "\n" not in str(info.value)


def test_bad_task_timeout_is_refused_by_every_call_and_the_pool_lives_on():
    with core.get_context("fork").Pool(1) as pool:
        calls = {
            "apply": lambda t: pool.apply(h.square, (3,), task_timeout=t),
            "apply_async": lambda t: pool.apply_async(h.square, (3,), task_timeout=t),
            "map": lambda t: pool.map(h.square, range(3), task_timeout=t),
            "map_async": lambda t: pool.map_async(h.square, range(3), task_timeout=t),
            "starmap": lambda t: pool.starmap(h.add, [(1, 2)], task_timeout=t),
            "starmap_async": lambda t: pool.starmap_async(h.add, [(1, 2)], task_timeout=t),
            "imap": lambda t: pool.imap(h.square, range(3), task_timeout=t),
            "imap_unordered": lambda t: pool.imap_unordered(h.square, range(3), task_timeout=t),
        }
        for call in calls.values():
            for bad in (math.inf, 1e300, -math.inf, math.nan):
                with pytest.raises(ValueError, match=r"^task_timeout must be "):
                    call(bad)
        consumed = []

        def gen():
            consumed.append(1)
            yield 1
        with pytest.raises(ValueError):
            pool.map(h.square, gen(), task_timeout=math.inf)
        assert consumed == []          # refused before the input is read
        assert pool.map(h.square, range(4), task_timeout=core.pool.MAX_TASK_TIMEOUT) == [0, 1, 4, 9]
        assert pool.apply(h.square, (5,), task_timeout=None) == 25


def test_largest_task_timeout_works():
    with core.get_context("fork").Pool(1, task_timeout=core.pool.MAX_TASK_TIMEOUT) as pool:
        assert pool.map(h.square, range(5)) == [0, 1, 4, 9, 16]
        assert list(pool.imap(h.square, range(3))) == [0, 1, 4]


# ------------------------------------------------------------------------------------------------------
# 4. core's default context and the stdlib's are one state
# ------------------------------------------------------------------------------------------------------

MIXED_SCRIPT = """
import json, sys
import multiprocessing, core, mp_helpers
M = {"std": multiprocessing, "core": core}
setter, creator, starter = (M[a] for a in sys.argv[1:4])
other = core if setter is multiprocessing else multiprocessing


def c(f, *a, **k):
    try:
        return ["ok", f(*a, **k)]
    except Exception as e:
        return [type(e).__name__, str(e)]


def methods(**kw):
    return [multiprocessing.get_start_method(**kw), core.get_start_method(**kw)]


def share():
    v = creator.Value("i", 41)
    lock = creator.Lock()
    q = starter.SimpleQueue()
    p = starter.Process(target=mp_helpers.report_shared, args=(v, lock, q))
    try:
        p.start()
    except Exception as e:
        return [type(e).__name__, str(e)]
    got = q.get()
    p.join()
    return [got, p.exitcode]


if __name__ == "__main__":
    out = [methods(allow_none=True), c(setter.set_start_method, "spawn"), methods(),
           type(other.get_context()).__name__, share(),
           c(other.set_start_method, "fork"), c(setter.set_start_method, "fork"),
           c(other.set_start_method, "forkserver", force=True), methods(),
           c(setter.set_start_method, None, force=True), methods(allow_none=True),
           c(other.set_start_method, "spawn", force=True), methods(), share(),
           c(setter.set_start_method, None, force=True), other.get_start_method(),
           c(setter.set_start_method, "spawn"), methods(allow_none=True)]
    print(json.dumps(out))
"""

MIXED_EXPECTED = [
    [None, None], ["ok", None], ["spawn", "spawn"], "SpawnContext", [[41, "spawn", "spawn"], 0],
    ["RuntimeError", "context has already been set"], ["RuntimeError", "context has already been set"],
    ["ok", None], ["forkserver", "forkserver"],
    ["ok", None], [None, None],
    ["ok", None], ["spawn", "spawn"], [[41, "spawn", "spawn"], 0],
    ["ok", None], "fork",                       # reading the start method fixes it, as the stdlib does
    ["RuntimeError", "context has already been set"], ["fork", "fork"],
]


def _run_mixed(tmp_path, roles):
    script = tmp_path / "mixed.py"
    script.write_text(textwrap.dedent(MIXED_SCRIPT))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, TESTS] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("MPGUI_TRACE_DIR", None)
    return subprocess.Popen([sys.executable, str(script), *roles], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_core_and_the_stdlib_share_the_start_method(tmp_path):
    """Every mix of who sets the start method, who makes a Value and a Lock, and whose Process gets them
    behaves as the stdlib alone ("std std std"): one default context, set once (or again with force),
    read the same from both modules, in the parent and in the child."""
    mixes = [(s, c, p) for s in ("std", "core") for c in ("std", "core") for p in ("std", "core")]
    procs = {}
    for mix in mixes:
        d = tmp_path / "-".join(mix)
        d.mkdir()
        procs[mix] = _run_mixed(d, mix)
    outs = {}
    for mix, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, "%s failed:\n%s" % (" ".join(mix), stderr)
        outs[mix] = json.loads(stdout.strip().splitlines()[-1])
    assert outs[("std", "std", "std")] == MIXED_EXPECTED
    for mix, out in outs.items():
        assert out == MIXED_EXPECTED, "%s differs from the stdlib alone:\n  %r" % (" ".join(mix), out)
