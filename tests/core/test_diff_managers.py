"""Managers: SyncManager's types used from children, a BaseManager subclass with a registered type (started,
and served over TCP with an authkey), on the stdlib and on core, every start method."""
import os
import queue
import socket
import threading

import multiprocessing
import multiprocessing.managers

import core.managers
import mp_helpers as H
from mp_helpers import both, both_modules, catch, ok, started


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_sync_manager_types_from_child(start_method, traced):
    def prog(ctx):
        with ctx.Manager() as m:
            ns = m.Namespace(x=1)
            lst, dct = m.list([1]), m.dict(a=0)
            lock, rlock, sem, bsem = m.Lock(), m.RLock(), m.Semaphore(1), m.BoundedSemaphore(1)
            cond, ev, barrier = m.Condition(), m.Event(), m.Barrier(2)
            q, val, arr = m.Queue(), m.Value("i", 0), m.Array("i", [0, 0, 0])
            p = ctx.Process(target=H.manager_child,
                            args=(ns, lst, dct, lock, rlock, sem, bsem, cond, ev, barrier, q, val, arr))
            with started(p):
                idx = barrier.wait(10)
                ev_ok = ev.wait(10)
                report = q.get(timeout=10)
            cq = m.Queue()
            waiter = ctx.Process(target=H.manager_cond_waiter, args=(cond, lst, cq))
            lst[:] = []
            with started(waiter):
                with cond:
                    lst.append("go")
                    cond.notify_all()
                woke = cq.get(timeout=10)
            return [report, sorted([idx, report["barrier"]]), ev_ok, list(lst), dict(dct), ns.x, ns.y, val.value,
                    list(arr), [p.exitcode, waiter.exitcode], woke]

    res = both(prog, start_method)[1]
    report = res[0]
    assert report == {"list_len": 4, "list_pop": 4, "dict_keys": ["a", "child", "k"], "ns_x": 1,
                      "rlock": [True, True, None, None], "sem": [True, False, None],
                      "bsem": [True, None, (ValueError, "Semaphore released too many times")], "arr": [0, 5, 0],
                      "barrier": report["barrier"]}
    assert res[1:] == [[0, 1], True, ["go"], {"a": 0, "child": True, "k": "v"}, 1, "set by child", 10, [0, 5, 0],
                       [0, 0], (True, ["go"])]


def test_sync_manager_values_and_errors(start_method):
    def prog(ctx):
        with ctx.Manager() as m:
            q, lst, dct, ns = m.Queue(), m.list([1, 2]), m.dict({"a": 1}), m.Namespace(a=1)
            lock, b, ev, c = m.Lock(), m.Barrier(2), m.Event(), m.Condition()
            r = [catch(q.get, timeout=0.05), catch(q.get_nowait), q.put(1), q.qsize(), q.get(), q.empty(),
                 catch(lst.__getitem__, 10), catch(dct.__getitem__, "missing"), catch(getattr, ns, "missing"),
                 catch(lock.release), catch(b.wait, 0.05), b.broken, b.parties, ev.is_set(), ev.wait(0.05),
                 catch(c.wait, 0.05), c.acquire(), c.wait(0.05), c.wait_for(lambda: False, 0.05), c.release(),
                 str(lst), len(lst), lst + [3], 2 in lst, lst * 2, lst.index(2), lst.count(1),
                 dct.get("zz", 5), dct.setdefault("b", 2), sorted(dct.items()), sorted(dct), str(ns),
                 m.Value("d", 1.5).value, list(m.Array("i", [3, 4])[:]), m.Value("i", 1, lock=False).get(),
                 lock.acquire(False), lock.acquire(timeout=0.01), lock.release(),
                 catch(m.start), isinstance(m.address, str)]
            outer, inner = m.dict(), m.list([1])
            outer["l"] = inner                       # a proxy stored in a managed object
            got = outer["l"]
            got.append(2)
            r += [list(inner), type(got) is type(inner)]
            bq = m.Queue(1)
            r += [bq.put(1), catch(bq.put, 2, timeout=0.05), bq.full()]
            jq = m.JoinableQueue()
            r += [jq.put(1), jq.get(), jq.task_done(), jq.join(), catch(jq.task_done)]
        r.append(catch(m.list))
        unstarted = H.sub(ctx, "managers").SyncManager(ctx=ctx)
        r.append(catch(unstarted.list))
        return r

    assert both(prog, start_method) == ok([
        (queue.Empty, ""), (queue.Empty, ""), None, 1, 1, True, (IndexError, "list index out of range"),
        (KeyError, "'missing'"), (AttributeError, "'Namespace' object has no attribute 'missing'"),
        (RuntimeError, "release unlocked lock"), (threading.BrokenBarrierError, ""), True, 2, False, False,
        (RuntimeError, "cannot wait on un-acquired lock"), True, False, False, None, "[1, 2]", 2, [1, 2, 3], True,
        [1, 2, 1, 2], 1, 1, 5, 2, [("a", 1), ("b", 2)], ["a", "b"], "Namespace(a=1)", 1.5, [3, 4], 1, True,
        False, None, (multiprocessing.ProcessError, "Already started server"), True, [1, 2], True, None,
        (queue.Full, ""),
        True, None, 1, None, None, (ValueError, "task_done() called too many times"),
        (AssertionError, "server not yet started"), (AssertionError, "server not yet started")])


def test_proxy_classes(start_method):
    """Proxies are (subclasses of) the stdlib's proxy classes."""
    def prog(ctx):
        mm = multiprocessing.managers
        with ctx.Manager() as m:
            pairs = [(m.list(), mm.ListProxy), (m.dict(), mm.DictProxy), (m.Namespace(), mm.NamespaceProxy),
                     (m.Lock(), mm.AcquirerProxy), (m.Event(), mm.EventProxy), (m.Value("i", 1), mm.ValueProxy),
                     (m.Condition(), mm.ConditionProxy), (m.Barrier(2), mm.BarrierProxy),
                     (m.Array("i", [1]), mm.ArrayProxy), (m.Queue(), mm.BaseProxy)]
            return [isinstance(p, cls) for p, cls in pairs]

    assert both(prog, start_method) == ok([True] * 10)


def test_proxy_names_and_reprs(start_method):
    """What a program sees of a proxy's type: its name, its repr, the AttributeError for a hidden method."""
    def prog(ctx):
        with ctx.Manager() as m:
            proxies = [m.list(), m.dict(), m.Namespace(), m.Lock(), m.Event(), m.Value("i", 1), m.Queue()]
            r = [type(p).__name__ for p in proxies]
            r += [H.norm(repr(p)) for p in proxies[:2]]
        cm = H.COUNTER_MANAGERS[H.modname_of(ctx)](ctx=ctx)
        cm.start()
        try:
            c = cm.Counter()
            r += [type(c).__name__, catch(getattr, c, "_private")]
            del c
        finally:
            cm.shutdown()
        return r

    assert both(prog, start_method) == ok([
        "ListProxy", "DictProxy", "NamespaceProxy", "AcquirerProxy", "EventProxy", "ValueProxy", "AutoProxy[Queue]",
        "<ListProxy object, typeid 'list' at 0x?>", "<DictProxy object, typeid 'dict' at 0x?>",
        "AutoProxy[Counter]", (AttributeError, "'AutoProxy[Counter]' object has no attribute '_private'")])


def test_custom_manager(start_method, traced):
    def prog(ctx):
        cls = H.COUNTER_MANAGERS[H.modname_of(ctx)]
        m = cls(ctx=ctx)
        r = [m.start()]
        try:
            c = m.Counter(5)
            r += [c.incr(), c.incr(k=3), c.get(), catch(c.fail), c.pid() != os.getpid(), hasattr(c, "_private"),
                  str(c).startswith("<mp_helpers.Counter object")]
            q = ctx.SimpleQueue()
            p = ctx.Process(target=H.counter_child, args=(c, q, 2))
            with started(p):
                r.append(q.get())
            r += [c.get(), p.exitcode, catch(m.start)]
            store = m.Store(a=1)
            store["b"] = 2
            r += [sorted(store.items()), isinstance(store, multiprocessing.managers.DictProxy), store.get("zz")]
            factory = m.Factory()
            made = factory.make(40)
            r += [made.incr(2), made.get(), factory.plain(7), isinstance(made, multiprocessing.managers.BaseProxy)]
            del c, store, factory, made
        finally:
            m.shutdown()
        r.append(catch(m.Counter))
        with cls(ctx=ctx) as m2:
            r.append(m2.Counter(1).incr(1))
        return r

    assert both(prog, start_method) == ok([None, 6, 9, 9, (KeyError, "'no such counter'"), True, False, True, 11,
                                           11, 0, (multiprocessing.ProcessError, "Already started server"),
                                           [("a", 1), ("b", 2)], True, None, 42, 42, 7, True,
                                           (AssertionError, "server not yet started"), 2])


def test_manager_over_tcp(start_method):
    def prog(ctx):
        modname = H.modname_of(ctx)
        cls = H.COUNTER_MANAGERS[modname]
        m = cls(address=("127.0.0.1", 0), authkey=b"secret", ctx=ctx)
        m.start()
        try:
            host, port = m.address
            r = [host, port > 0]
            client = cls(address=m.address, authkey=b"secret")
            r.append(client.connect())
            c = client.Counter(1)
            r += [c.incr(), c.get()]
            del c
            q = ctx.SimpleQueue()
            p = ctx.Process(target=H.counter_client, args=(modname, m.address, b"secret", q))
            with started(p):
                r.append(q.get())
            r.append(p.exitcode)
            r.append(catch(cls(address=m.address, authkey=b"wrong").connect))
            r.append(catch(cls(address=m.address, authkey=None).connect)[0])   # the process's own key: wrong
        finally:
            m.shutdown()
        r.append(catch(cls(address=("127.0.0.1", _free_port()), authkey=b"secret").connect)[0])
        return r

    assert both(prog, start_method) == ok([
        "127.0.0.1", True, None, 2, 2, (105, 105, True), 0,
        (multiprocessing.AuthenticationError, "digest sent was rejected"), multiprocessing.AuthenticationError,
        ConnectionRefusedError])


def test_core_manager_empty_host_listens_on_loopback(start_method):
    """core only: ('', port) means loopback, not every interface; clients reach it on 127.0.0.1."""
    ctx = core.get_context(start_method)
    m = H.CoreCounterManager(address=("", 0), authkey=b"k", ctx=ctx)
    m.start()
    try:
        assert m.address[0] == "127.0.0.1"
        client = H.CoreCounterManager(address=("127.0.0.1", m.address[1]), authkey=b"k")
        client.connect()
        c = client.Counter(41)
        assert c.incr() == 42
        del c
    finally:
        m.shutdown()
    plain = core.managers.BaseManager(address=("", 0))
    assert plain.address == ("127.0.0.1", 0)


def test_managers_module_names():
    """The names a program takes from multiprocessing.managers to build its own managers and proxies."""
    names = ["BaseManager", "SyncManager", "SharedMemoryManager", "BaseProxy", "Token", "Namespace", "RemoteError",
             "Value", "Array", "AutoProxy", "MakeProxyType", "ListProxy", "DictProxy", "NamespaceProxy",
             "ValueProxy", "AcquirerProxy", "ConditionProxy", "EventProxy", "BarrierProxy", "IteratorProxy",
             "ArrayProxy", "BaseListProxy"]

    def prog(mod):
        managers = H.sub(mod, "managers")
        return [n for n in names if not hasattr(managers, n)]

    assert both_modules(prog) == ok([])
