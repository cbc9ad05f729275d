"""Module level API: ``import core as multiprocessing`` must offer what ``multiprocessing`` offers, with the
same results and exceptions.  Start-method state is per interpreter, so those tests run fresh interpreters."""
import importlib
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

import multiprocessing
import multiprocessing.spawn
import multiprocessing.util

import core
import mp_helpers as H
from mp_helpers import both, both_modules, catch, ok, started

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)


def _run_fresh(script, modname, timeout=60):
    """Run ``script`` in a fresh interpreter with ``mod`` bound to ``modname``; it prints a JSON result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, TESTS] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("MPGUI_TRACE_DIR", None)
    code = "import importlib, json, sys\nmod = importlib.import_module(%r)\n" % modname + textwrap.dedent(script)
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _fresh_both(script, timeout=60):
    """Run ``script`` under the stdlib and under core (concurrently); compare and return the stdlib's output."""
    procs = {name: _run_fresh(script, name) for name in (H.STD, H.CORE)}
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=timeout)
        assert p.returncode == 0, "%s run failed:\n%s" % (name, stderr)
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    assert out[H.CORE] == out[H.STD], "core differs from the stdlib:\n  stdlib: %r\n  core:   %r" % (
        out[H.STD], out[H.CORE])
    return out[H.STD]


START_METHOD_SCRIPT = """
import mp_helpers
def c(f, *a, **k):
    try:
        return ["ok", f(*a, **k)]
    except Exception as e:
        return [type(e).__name__, str(e)]
def child_mark():
    q = mod.SimpleQueue()
    p = mod.Process(target=mp_helpers.report_mark, args=(q,))
    p.start()
    got = q.get()
    p.join()
    return [got, type(p).__name__, p.exitcode]
out = [mod.get_start_method(allow_none=True), c(mod.set_start_method, "bogus"),
       mod.get_start_method(allow_none=True)]
mp_helpers.MARK = "parent"
out += [c(mod.set_start_method, "spawn"), mod.get_start_method(), c(mod.set_start_method, "fork"),
        child_mark(), mod.get_context().get_start_method()]
out += [c(mod.set_start_method, "fork", force=True), mod.get_start_method(), child_mark()]
out += [c(mod.set_start_method, None, force=True), mod.get_start_method(allow_none=True), mod.get_start_method(),
        c(mod.set_start_method, "spawn"), c(mod.get_context().set_start_method, "spawn")]
out += [c(mod.set_start_method, "forkserver", force=True), child_mark()]
print(json.dumps(out))
"""


def test_set_and_get_start_method_in_fresh_interpreter():
    res = _fresh_both(START_METHOD_SCRIPT)
    assert res == [None, ["ValueError", "cannot find context for 'bogus'"], None, ["ok", None], "spawn",
                   ["RuntimeError", "context has already been set"], ["module", "Process", 0], "spawn",
                   ["ok", None], "fork", ["parent", "Process", 0], ["ok", None], None, "fork",
                   ["RuntimeError", "context has already been set"],
                   ["ValueError", "cannot set start method of concrete context"], ["ok", None],
                   ["module", "Process", 0]]


SUBMODULES_SCRIPT = """
names = ["connection", "context", "process", "reduction", "util", "synchronize", "queues", "managers",
         "sharedctypes", "shared_memory", "heap", "dummy"]
bare = [n for n in names if hasattr(mod, n)]
imported = []
for n in names:
    try:
        importlib.import_module(mod.__name__ + "." + n)
        imported.append(n)
    except ImportError as e:
        imported.append("failed: %s" % n)
print(json.dumps([bare, imported]))
"""


def test_submodules_in_fresh_interpreter():
    """After a bare ``import multiprocessing`` some submodules are attributes already; all import."""
    res = _fresh_both(SUBMODULES_SCRIPT)
    assert res[1] == ["connection", "context", "process", "reduction", "util", "synchronize", "queues", "managers",
                      "sharedctypes", "shared_memory", "heap", "dummy"]


@pytest.mark.parametrize("submodule", ["connection", "context", "process", "synchronize", "queues", "managers",
                                       "sharedctypes", "shared_memory", "reduction", "heap", "util", "dummy"])
def test_submodule_all(submodule):
    """Every name the stdlib submodule exports (``__all__``) is available from core's."""
    std = importlib.import_module("multiprocessing." + submodule)
    mine = importlib.import_module("core." + submodule)
    missing = [n for n in getattr(std, "__all__", ()) if not hasattr(mine, n)]
    assert missing == []


def test_core_is_the_repository_package(start_method):
    """``import core`` resolves to the repository's package, here and in children of every start method."""
    expected = os.path.join(ROOT, "core", "__init__.py")
    assert core.__file__ == expected
    ctx = core.get_context(start_method)
    q = ctx.SimpleQueue()
    p = ctx.Process(target=H.report_module_file, args=(q, "core"))
    with started(p):
        assert q.get() == expected
    assert p.exitcode == 0


def test_all_is_a_superset_and_names_resolve():
    missing = sorted(set(multiprocessing.__all__) - set(core.__all__))
    assert missing == []
    unbound = [n for n in multiprocessing.__all__ if not hasattr(core, n)]
    assert unbound == []
    kinds = {n: (callable(getattr(multiprocessing, n)), callable(getattr(core, n))) for n in multiprocessing.__all__}
    assert {n: k for n, k in kinds.items() if k[0] != k[1]} == {}
    assert core.SUBDEBUG == multiprocessing.SUBDEBUG and core.SUBWARNING == multiprocessing.SUBWARNING


def test_exceptions_are_the_stdlib_classes():
    for name in ("ProcessError", "BufferTooShort", "TimeoutError", "AuthenticationError"):
        assert getattr(core, name) is getattr(multiprocessing, name), name
        assert getattr(core.context, name) is getattr(multiprocessing.context, name), name
    assert issubclass(core.BufferTooShort, core.ProcessError)
    assert core.TimeoutError is not TimeoutError           # the stdlib's own, not the builtin
    assert issubclass(core.WorkerLostError, multiprocessing.ProcessError)
    assert issubclass(core.TaskTimeoutError, multiprocessing.ProcessError)


def test_get_context(start_method):
    def prog(mod):
        ctx = mod.get_context(start_method)
        return [ctx.get_start_method(), type(ctx).__name__, ctx.get_context() is ctx, ctx.get_context(None) is ctx,
                mod.get_context(start_method) is ctx, ctx.Process.__name__, ctx.Process._start_method,
                ctx.get_context(start_method) is ctx, catch(ctx.set_start_method, "fork"),
                catch(ctx.get_context, "bogus")]

    cls = {"fork": "Fork", "spawn": "Spawn", "forkserver": "ForkServer"}[start_method]
    assert both_modules(prog) == ok([start_method, cls + "Context", True, True, True, cls + "Process",
                                     start_method, True,
                                     (ValueError, "cannot set start method of concrete context"),
                                     (ValueError, "cannot find context for 'bogus'")])


def test_get_context_unknown_and_default():
    def prog(mod):
        default = mod.get_context()
        return [catch(mod.get_context, "bogus"), catch(mod.get_context, ""), catch(mod.get_context, "Fork"),
                type(default).__name__, default.get_start_method(), default is mod.get_context(),
                mod.get_start_method(), mod.get_start_method(allow_none=True)]

    assert both_modules(prog) == ok([(ValueError, "cannot find context for 'bogus'"),
                                     (ValueError, "cannot find context for ''"),
                                     (ValueError, "cannot find context for 'Fork'"),
                                     "ForkContext", "fork", True, "fork", "fork"])


def test_concrete_context_api(start_method):
    """A concrete context (``get_context('spawn')``) has the stdlib's public attributes, no fewer and no more
    (a program that works on core must work on the stdlib too)."""
    reference = {n for n in dir(multiprocessing.get_context(start_method)) if not n.startswith("_")}

    def prog(mod):
        ctx = mod.get_context(start_method)
        public = {n for n in dir(ctx) if not n.startswith("_")}
        return [sorted(reference - public), sorted(public - reference),
                catch(getattr, ctx, "get_all_start_methods")[0]]

    assert both_modules(prog) == ok([[], [], AttributeError])   # only the default context has that method


def test_get_all_start_methods_and_cpu_count():
    def prog(mod):
        return [mod.get_all_start_methods(), mod.cpu_count(), mod.get_context().cpu_count()]

    assert both_modules(prog) == ok([multiprocessing.get_all_start_methods(), os.cpu_count(), os.cpu_count()])


def test_current_and_parent_process_in_main():
    def prog(mod):
        cur = mod.current_process()
        return [cur.name, cur.pid == os.getpid(), cur.ident == os.getpid(), cur.daemon, type(cur.authkey).__name__,
                len(cur.authkey), cur._identity, mod.parent_process(), catch(cur.start)[0], repr(cur),
                mod.active_children()]

    assert both_modules(prog) == ok(["MainProcess", True, True, False, "AuthenticationString", 32, (), None,
                                     AssertionError, "<_MainProcess name='MainProcess' parent=None started>", []])


def test_parent_process_in_child(start_method):
    def prog(ctx):
        q = ctx.SimpleQueue()
        p = ctx.Process(target=H.report_identity, args=(q, H.modname_of(ctx)))
        with started(p):
            info = q.get()
        return [info["parent_pid"] == os.getpid(), info["parent_name"], info["parent_alive"]]

    assert both(prog, start_method) == ok([True, "MainProcess", True])


def test_get_logger_and_log_to_stderr():
    logger = multiprocessing.util.get_logger()
    saved_level, saved_handlers = logger.level, list(logger.handlers)
    saved_flag = multiprocessing.util._log_to_stderr

    def prog(mod):
        try:
            lg = mod.get_logger()
            res = [lg is logging.getLogger("multiprocessing"), lg.name, lg.propagate]
            before = len(lg.handlers)
            out = mod.log_to_stderr(logging.WARNING)
            added = [h for h in lg.handlers if h not in saved_handlers]
            res += [out is lg, lg.level, len(lg.handlers) - before, [type(h).__name__ for h in added],
                    multiprocessing.util._log_to_stderr, mod.log_to_stderr() is lg, lg.level]
            return res
        finally:
            for h in list(logger.handlers):
                if h not in saved_handlers:
                    logger.removeHandler(h)
            logger.setLevel(saved_level)
            multiprocessing.util._log_to_stderr = saved_flag

    assert both_modules(prog) == ok([True, "multiprocessing", False, True, logging.WARNING, 1,
                                     ["StreamHandler"], True, True, logging.WARNING])


def test_set_executable_and_freeze_support():
    saved = multiprocessing.spawn.get_executable()

    def prog(mod):
        try:
            res = [mod.set_executable(sys.executable),
                   os.fsdecode(multiprocessing.spawn.get_executable()) == sys.executable, mod.freeze_support(),
                   getattr(sys, "frozen", False)]
            ctx = mod.get_context("spawn")
            q = ctx.SimpleQueue()
            p = ctx.Process(target=H.put_value, args=(q, "spawned"))
            with started(p):
                res.append(q.get())
            return res + [p.exitcode]
        finally:
            multiprocessing.spawn.set_executable(saved)

    assert both_modules(prog) == ok([None, True, None, False, "spawned", 0])


def test_module_level_factories():
    """The module-level factories (default context) build working objects of the same kinds."""
    def prog(mod):
        objs = [mod.Lock(), mod.RLock(), mod.Semaphore(2), mod.BoundedSemaphore(), mod.Condition(), mod.Event(),
                mod.Barrier(1), mod.Queue(), mod.JoinableQueue(), mod.SimpleQueue(), mod.Value("i", 1),
                mod.Array("i", 2), mod.RawValue("i", 1), mod.RawArray("i", 2)]
        a, b = mod.Pipe()
        res = [type(o).__name__ for o in objs] + [type(a).__name__, objs[6].wait(), objs[2].get_value()]
        for q in objs[7:10]:
            q.close()
        a.close()
        b.close()
        return res

    assert both_modules(prog) == ok(["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event",
                                     "Barrier", "Queue", "JoinableQueue", "SimpleQueue", "Synchronized",
                                     "SynchronizedArray", "c_int", "c_int_Array_2", "Connection", 0, 2])


def test_stdlib_rejects_name_keyword_core_accepts_it(start_method):
    """core's extra keyword-only ``name=``: accepted by core, a TypeError for the stdlib; keyword-only."""
    std, mine = H.contexts(start_method)
    assert catch(std.Lock, name="db")[0] is TypeError
    made = {
        "Lock": mine.Lock(name="db"), "RLock": mine.RLock(name="r"), "Semaphore": mine.Semaphore(2, name="s"),
        "BoundedSemaphore": mine.BoundedSemaphore(name="b"), "Condition": mine.Condition(name="c"),
        "Event": mine.Event(name="e"), "Barrier": mine.Barrier(2, name="bar"), "Queue": mine.Queue(name="q"),
        "JoinableQueue": mine.JoinableQueue(name="jq"), "SimpleQueue": mine.SimpleQueue(name="sq"),
    }
    assert {k: v.name for k, v in made.items()} == {
        "Lock": "db", "RLock": "r", "Semaphore": "s", "BoundedSemaphore": "b", "Condition": "c", "Event": "e",
        "Barrier": "bar", "Queue": "q", "JoinableQueue": "jq", "SimpleQueue": "sq"}
    a, b = mine.Pipe(name="link")
    assert (a.name, b.name) == ("link[0]", "link[1]")
    v = mine.Value("i", 1, name="counter")
    assert v.get_lock().name == "counter"
    assert catch(mine.Lock, "positional")[0] is TypeError
    for q in ("Queue", "JoinableQueue", "SimpleQueue"):
        made[q].close()
    a.close()
    b.close()
