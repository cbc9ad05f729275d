"""Process: the same programs on multiprocessing and on core, under every start method.

Each test runs a program ``prog(ctx)`` once with the stdlib's context and once with core's (``both``), and
asserts the two outcomes are equal (result, or exception class and message), then that the outcome is the
stdlib's documented behaviour.  Tests taking ``traced`` run twice: tracing off and tracing on.
"""
import json
import os
import signal

import pytest

import mp_helpers as H
from mp_helpers import both, both_modules, catch, ok, reap, started


def test_lifecycle_and_attributes(start_method, traced):
    def prog(ctx):
        q = ctx.SimpleQueue()
        p = ctx.Process(target=H.report_identity, args=(q, H.modname_of(ctx)))
        before = {
            "pid": p.pid, "ident": p.ident, "exitcode": p.exitcode, "alive": p.is_alive(),
            "daemon": p.daemon, "name": H.name_pattern(p.name), "authkey_type": type(p.authkey).__name__,
            "authkey_inherited": p.authkey == ctx.current_process().authkey,
            "sentinel": catch(getattr, p, "sentinel"), "repr": H.name_pattern(repr(p)),
        }
        started_ = p.start()
        running = {"start returns": started_, "pid is int": isinstance(p.pid, int), "ident": p.ident == p.pid,
                   "repr": H.name_pattern(repr(p)).replace(" stopped exitcode=N", " started")}
        info = q.get()
        joined = p.join(10)
        after = {
            "join returns": joined, "exitcode": p.exitcode, "alive": p.is_alive(),
            "child pid": info["pid"] == p.pid, "child ident": info["ident"] == p.pid,
            "child name": info["name"] == p.name, "child daemon": info["daemon"],
            "parent pid": info["parent_pid"] == os.getpid(), "parent name": info["parent_name"],
            "parent alive": info["parent_alive"], "start method": info["start_method"],
            "stdlib start method": info["std_start_method"], "authkey": info["authkey"] == bytes(p.authkey),
            "child authkey type": info["authkey_type"], "grandchildren": info["children"],
            "sentinel": isinstance(p.sentinel, int), "repr": H.name_pattern(repr(p)),
        }
        p.close()
        return before, running, after

    before, running, after = both(prog, start_method)[1]
    cls = {"fork": "ForkProcess", "spawn": "SpawnProcess", "forkserver": "ForkServerProcess"}[start_method]
    assert before == {"pid": None, "ident": None, "exitcode": None, "alive": False, "daemon": False,
                      "name": cls + "-N", "authkey_type": "AuthenticationString", "authkey_inherited": True,
                      "sentinel": (ValueError, "process not started"),
                      "repr": "<%s name='%s-N' parent=N initial>" % (cls, cls)}
    assert running["start returns"] is None and running["pid is int"] and running["ident"]
    assert after == {"join returns": None, "exitcode": 0, "alive": False, "child pid": True, "child ident": True,
                     "child name": True, "child daemon": False, "parent pid": True, "parent name": "MainProcess",
                     "parent alive": True, "start method": start_method, "stdlib start method": start_method,
                     "authkey": True, "child authkey type": "AuthenticationString", "grandchildren": 0,
                     "sentinel": True,
                     "repr": "<%s name='%s-N' pid=N parent=N stopped exitcode=N>" % (cls, cls)}


def test_args_kwargs_name_and_bad_arguments(start_method):
    def prog(ctx):
        q = ctx.SimpleQueue()
        p = ctx.Process(target=H.put_value, kwargs={"q": q, "value": [1, "two", 3.0]}, name="custom-name")
        with started(p):
            got = q.get()
        return [got, p.name, p.exitcode,
                catch(ctx.Process, target=H.noop, args=5),
                catch(ctx.Process, group="g", target=H.noop),
                catch(lambda: ctx.Process(H.noop)),          # the first positional argument is group
                H.name_pattern(ctx.Process(target=H.noop, daemon=True).name)]

    res = both(prog, start_method)[1]
    assert res[:3] == [[1, "two", 3.0], "custom-name", 0]
    assert res[3] == (TypeError, "'int' object is not iterable")
    assert res[4][0] is AssertionError and res[5][0] is AssertionError


def test_join_timeout_and_sentinel(start_method, traced):
    def prog(ctx):
        wait = H.sub(ctx, "connection").wait
        ready, ev = ctx.Event(), ctx.Event()
        p = ctx.Process(target=H.ready_then_wait, args=(ready, ev))
        with started(p):
            r = [ready.wait(10), p.join(0.05), p.join(timeout=0), p.is_alive(), p.exitcode,
                 wait([p.sentinel], 0.05)]
            ev.set()
            r += [wait([p.sentinel], 10) == [p.sentinel], p.join(5), p.is_alive(), p.exitcode]
        return r

    assert both(prog, start_method) == ok([True, None, None, True, None, [], True, None, False, 0])


def test_terminate_and_kill(start_method, traced):
    def prog(ctx):
        ev = ctx.Event()
        readies = [ctx.Event(), ctx.Event()]
        ps = [ctx.Process(target=H.ready_then_wait, args=(r, ev)) for r in readies]
        with started(*ps):
            r = [x.wait(10) for x in readies]
            r += [ps[0].terminate(), ps[1].kill()]
            r += reap(*ps)
            r += [p.is_alive() for p in ps]
            r += [ps[0].terminate(), ps[1].kill()]        # on a dead process: no error
            r += [p.exitcode for p in ps]
        return r

    assert both(prog, start_method) == ok([True, True, None, None, -signal.SIGTERM, -signal.SIGKILL,
                                           False, False, None, None, -signal.SIGTERM, -signal.SIGKILL])


def test_exit_codes(start_method, traced):
    cases = [(H.noop, ()), (H.raise_error, ()), (H.exit_with, (3,)), (H.exit_with, (None,)),
             (H.exit_with, ("a message",)), (H.os_exit, (7,)), (H.exit_with, (True,))]

    def prog(ctx):
        ps = [ctx.Process(target=f, args=a) for f, a in cases]
        with started(*ps):
            codes = reap(*ps)
        return codes

    assert both(prog, start_method) == ok([0, 1, 3, 0, 1, 7, 1])


def test_close(start_method):
    def prog(ctx):
        ready, ev = ctx.Event(), ctx.Event()
        p = ctx.Process(target=H.ready_then_wait, args=(ready, ev))
        with started(p):
            ready.wait(10)
            r = [catch(p.close)]
            ev.set()
        r += [p.exitcode, catch(p.close), catch(p.close)]
        r += [catch(f) for f in (p.is_alive, p.join, p.start, p.terminate, p.kill)]
        r += [catch(getattr, p, a) for a in ("pid", "ident", "exitcode", "sentinel")]
        r += [H.name_pattern(p.name), p.daemon]
        unstarted = ctx.Process(target=H.noop)
        r += [catch(unstarted.close), catch(unstarted.start)]
        return r

    closed = (ValueError, "process object is closed")
    res = both(prog, start_method)[1]
    assert res[0] == (ValueError, "Cannot close a process while it is still running. "
                                  "You should first call join() or terminate().")
    assert res[1:4] == [0, ok(None), ok(None)]
    assert res[4:13] == [closed] * 9
    assert res[14:] == [False, ok(None), closed]


def test_start_twice_and_join_unstarted(start_method):
    def prog(ctx):
        p = ctx.Process(target=H.noop)
        r = [catch(p.join), catch(p.join, 0.01), p.is_alive(), p.exitcode, catch(p.terminate)]
        with started(p):
            r.append(catch(p.start))
        r.append(catch(p.start))
        lam = ctx.Process(target=lambda: None)
        res = catch(lam.start)
        r.append(res if res[0] != "ok" else "started")
        if getattr(lam, "_popen", None) is not None:
            lam.join(10)
        r.append(lam.exitcode)
        return r

    res = both(prog, start_method)[1]
    assert res[:5] == [(AssertionError, "can only join a started process")] * 2 + [
        False, None, (AttributeError, "'NoneType' object has no attribute 'terminate'")]
    assert res[5:7] == [(AssertionError, "cannot start a process twice")] * 2
    if start_method == "fork":
        assert res[7:] == ["started", 0]
    else:
        assert res[7][0] != "ok" and res[8] is None     # a lambda cannot be pickled


def test_daemon_nested_and_join_self(start_method):
    def prog(ctx):
        name = H.modname_of(ctx)
        qs = [ctx.SimpleQueue() for _ in range(3)]
        d = ctx.Process(target=H.daemon_child_spawns, args=(qs[0], name, start_method), daemon=True)
        n = ctx.Process(target=H.nested_child, args=(qs[1], name, start_method))
        j = ctx.Process(target=H.join_self, args=(qs[2], name))
        r = [d.daemon, n.daemon]
        with started(d, n, j):
            r += [q.get() for q in qs]
            r.append(catch(setattr, d, "daemon", False))
        r += [d.exitcode, n.exitcode, j.exitcode]
        return r

    res = both(prog, start_method)[1]
    cls = {"fork": "ForkProcess", "spawn": "SpawnProcess", "forkserver": "ForkServerProcess"}[start_method]
    assert res == [True, False, ("AssertionError", "daemonic processes are not allowed to have children"),
                   (True, 0, cls + "-N:N"), (AssertionError, "can only join a child process"),
                   (AssertionError, "process has already started"), 0, 0, 0]


def test_active_children(start_method):
    def prog(ctx):
        ev = ctx.Event()
        readies = [ctx.Event(), ctx.Event()]
        ps = [ctx.Process(target=H.ready_then_wait, args=(r, ev)) for r in readies]
        r = [ctx.active_children()]
        with started(*ps):
            for x in readies:
                x.wait(10)
            r.append(sorted(p.pid for p in ctx.active_children()) == sorted(p.pid for p in ps))
            r.append(all(isinstance(p, ctx.Process) for p in ctx.active_children()))
            ev.set()
        r.append(ctx.active_children())
        return r

    assert both(prog, start_method) == ok([[], True, True, []])


def test_process_subclass(start_method):
    def prog(ctx):
        cls = H.SUBCLASSES[(H.modname_of(ctx), start_method)]
        q = ctx.SimpleQueue()
        p = cls(q, 21)
        with started(p):
            got = q.get()
        return [got, p.exitcode, p.name.split("-")[0] == type(p).__name__, isinstance(p, ctx.Process)]

    assert both(prog, start_method) == ok([("run", 42, True), 0, True, True])


def test_process_subclass_with_getstate(start_method, traced):
    """A subclass that customises its pickling (__getstate__/__setstate__, e.g. to leave a lock or a logger
    behind) is pickled through those methods when spawning."""
    def prog(ctx):
        cls = H.STATEFUL[(H.modname_of(ctx), start_method)]
        q = ctx.SimpleQueue()
        p = cls(q)
        with started(p):
            got = q.get()
        return [got, p.exitcode]

    expected = (False, "lock") if start_method == "fork" else (True, "rebuilt by __setstate__")
    assert both(prog, start_method) == ok([expected, 0])


def test_pickling_a_process_object(start_method):
    """Outside spawning a Process object does not pickle: its authkey refuses."""
    def prog(ctx):
        p = ctx.Process(target=H.noop)
        return catch(__import__("pickle").dumps, p)

    assert both(prog, start_method) == ok(
        (TypeError, "Pickling an AuthenticationString object is disallowed for security reasons"))


def test_mixed_families(start_method, traced):
    """core objects handed to a stdlib Process, and stdlib objects to a core Process (a library using the
    stdlib inside a program using core)."""
    def prog(ctx):
        other = H.contexts(start_method)[0 if H.modname_of(ctx) == H.CORE else 1]
        lock, q, ev, ev_out = other.Lock(), other.Queue(), other.Event(), other.Event()
        val, synced = other.Value("i", 0, lock=False), other.Value("i", 0)
        start = other.Barrier(2)
        a, b = other.Pipe()
        # (every argument stays referenced here: start() drops the Process's own references at once)
        ps = [ctx.Process(target=H.locked_increments, args=(start, lock, val, synced, 200)) for _ in range(2)]
        echo = ctx.Process(target=H.pipe_echo, args=(b,))
        waiter = ctx.Process(target=H.event_ping, args=(ev, ev_out, q))
        with started(*ps, echo, waiter):
            a.send(("obj", 1))
            r = [a.recv()]
            a.send(("stop", None))
            r.append(a.recv())
            ev.set()
            r.append(q.get(timeout=10))
        r += [val.value, synced.value, ev_out.is_set(), [p.exitcode for p in ps + [echo, waiter]]]
        q.close()
        q.join_thread()
        a.close()
        b.close()
        return r

    assert both(prog, start_method) == ok([("echo", 1), ("count", 1), (True, True), 400, 400, True, [0, 0, 0, 0]])


def test_default_process_class_and_subclass():
    """The module's own Process (its default start method) and a subclass of it."""
    def prog(mod):
        q = mod.SimpleQueue()
        plain = mod.Process(target=H.put_value, args=(q, "plain"))
        sub = H.SUBCLASSES[(H.modname_of(mod), None)](q, 4)
        with started(plain):
            first = q.get()
        with started(sub):
            second = q.get()
        return [first, second, H.name_pattern(plain.name), plain.exitcode, sub.exitcode,
                isinstance(sub, mod.Process)]

    assert both_modules(prog) == ok(["plain", ("run", 8, True), "Process-N", 0, 0, True])


@pytest.mark.parametrize("value", [b"explicit key", bytearray(b"from a bytearray")])
def test_authkey_passed_to_child(start_method, value):
    def prog(ctx):
        q = ctx.SimpleQueue()
        p = ctx.Process(target=H.report_identity, args=(q, H.modname_of(ctx)))
        p.authkey = value
        with started(p):
            info = q.get()
        return [info["authkey"], info["authkey_type"], type(p.authkey).__name__,
                catch(setattr, p, "authkey", "not bytes")]

    res = both(prog, start_method)[1]
    assert res[:3] == [bytes(value), "AuthenticationString", "AuthenticationString"]


def test_traced_run_records_what_core_did(start_method, tracing):
    """The traced variants really trace: core's objects and child are in the trace directory, the results
    are still the stdlib's, and the stdlib's own child records nothing."""
    pids = {}

    def prog(ctx):
        lock, q = ctx.Lock(), ctx.Queue()
        p = ctx.Process(target=H.put_value, args=(q, "x"))
        with started(p):
            got = q.get(timeout=10)
        with lock:
            pass
        pids[H.modname_of(ctx)] = p.pid
        q.close()
        q.join_thread()
        return [got, p.exitcode]

    assert both(prog, start_method) == ok(["x", 0])
    files = set(os.listdir(tracing))
    assert "%d.meta" % os.getpid() in files
    assert "%d.meta" % pids[H.CORE] in files
    assert "%d.meta" % pids[H.STD] not in files
    assert any(f.startswith("%d-" % os.getpid()) and f.endswith(".ring") for f in files)
    with open(os.path.join(tracing, "%d.meta" % os.getpid())) as f:
        records = [json.loads(line) for line in f]
    assert {"Lock", "Queue", "Process"} <= {r["kind"] for r in records if r["t"] == "obj"}
    assert any(r["t"] == "spawned" and r["pid"] == pids[H.CORE] and r["method"] == start_method for r in records)
