"""Helpers for the differential tests of core against the stdlib's multiprocessing.

Two parts:

* the differential harness (``both``, ``both_modules``, ``catch``...) used by the tests in the parent;
* module-level worker functions and classes that children run.  Children started with spawn or forkserver
  import them from here by name (``tests/`` is on their PYTHONPATH), so every Process target, Barrier
  action, manager-registered callable and Process subclass lives in this module.

A worker never needs to know whether it runs under the stdlib or core: it receives the objects it works on
as arguments.  Workers that must create objects themselves get the module name (``"multiprocessing"`` or
``"core"``) and the start method as arguments.
"""
import contextlib
import importlib
import os
import queue
import re
import sys
import threading
import time

import multiprocessing
import multiprocessing.managers

import core
import core.managers

STD = "multiprocessing"
CORE = "core"

#: Set to "parent" by a test before starting a child: a forked child sees "parent", a spawned one "module".
MARK = "module"

# ------------------------------------------------------------------------------------------------------
# The differential harness (parent side)
# ------------------------------------------------------------------------------------------------------

_ADDR = re.compile(r"0x[0-9a-fA-F]+")
_CORE_PATH = re.compile(r"\bcore\.")


def norm(msg):
    """An exception message without what legitimately differs between two runs: object addresses, and
    the module path in a repr (``<core.queues.Queue object at ...>`` vs ``<multiprocessing.queues...>``)."""
    return _CORE_PATH.sub("multiprocessing.", _ADDR.sub("0x?", msg))


def catch(fn, *args, **kwds):
    """``("ok", result)``, or ``(exception class, normalised message)`` if ``fn`` raised."""
    try:
        return ("ok", fn(*args, **kwds))
    except Exception as e:              # noqa: BLE001 - the point is to compare whatever is raised
        return (type(e), norm(str(e)))


def raises(fn, *args, **kwds):
    """Like ``catch`` for a call expected to raise: the exception class and message (or ``("ok", ...)``)."""
    return catch(fn, *args, **kwds)


def modname_of(ctx_or_mod):
    """``"core"`` or ``"multiprocessing"`` for a context or a module of either."""
    if isinstance(ctx_or_mod, type(sys)):
        name = ctx_or_mod.__name__
    else:
        name = type(ctx_or_mod).__module__
    return CORE if name.split(".")[0] == CORE else STD


def sub(ctx_or_mod, submodule):
    """The submodule (``connection``, ``shared_memory``, ``managers``...) of the same family as ``ctx``."""
    return importlib.import_module(modname_of(ctx_or_mod) + "." + submodule)


def contexts(start_method):
    return (multiprocessing.get_context(start_method), core.get_context(start_method))


def _compare(std, cor, what):
    if std != cor:
        raise AssertionError("core differs from the stdlib (%s):\n  stdlib: %r\n  core:   %r" % (what, std, cor))
    return std


def both(fn, start_method):
    """Run ``fn(ctx)`` with the stdlib's context and with core's of the same start method; assert both
    outcomes (result, or exception class and message) are equal and return that outcome."""
    std_ctx, core_ctx = contexts(start_method)
    std = catch(fn, std_ctx)
    cor = catch(fn, core_ctx)
    return _compare(std, cor, "start method %s" % start_method)


def both_modules(fn):
    """Run ``fn(module)`` with ``multiprocessing`` and with ``core``; compare as ``both`` does."""
    std = catch(fn, multiprocessing)
    cor = catch(fn, core)
    return _compare(std, cor, "module level")


def ok(value):
    return ("ok", value)


def name_pattern(name):
    """A default process name without its counters: ``SpawnProcess-3`` -> ``SpawnProcess-N``."""
    return re.sub(r"\d+", "N", name)


def wait_until(pred, timeout=5.0, interval=0.005):
    """Poll ``pred`` until it is true (for states no event announces, e.g. a Barrier's n_waiting)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@contextlib.contextmanager
def started(*procs, timeout=10.0):
    """Start the processes; on exit join them (killing any still alive after ``timeout``)."""
    try:
        for p in procs:
            p.start()
        yield procs
    finally:
        for p in procs:
            if getattr(p, "_popen", None) is None:
                continue
            p.join(timeout)
            if p.exitcode is None:
                p.kill()
                p.join()


def reap(*procs, timeout=10.0):
    """Join started processes, killing stragglers; returns their exit codes."""
    codes = []
    for p in procs:
        p.join(timeout)
        if p.exitcode is None:
            p.kill()
            p.join()
        codes.append(p.exitcode)
    return codes


# ------------------------------------------------------------------------------------------------------
# Process workers
# ------------------------------------------------------------------------------------------------------

def noop():
    pass


def exit_with(code):
    sys.exit(code)


def os_exit(code):
    os._exit(code)


def raise_error():
    raise ValueError("boom from the child")


def wait_event(ev, timeout=10.0):
    ev.wait(timeout)


def ready_then_wait(ready, ev, timeout=10.0):
    ready.set()
    ev.wait(timeout)


def report_mark(q):
    q.put(MARK)


def report_module_file(q, modname):
    q.put(importlib.import_module(modname).__file__)


def put_value(q, value):
    q.put(value)


def report_identity(q, modname):
    mod = importlib.import_module(modname)
    cur = mod.current_process()
    par = mod.parent_process()
    q.put({
        "name": cur.name,
        "pid": cur.pid,
        "ident": cur.ident,
        "daemon": cur.daemon,
        "authkey": bytes(cur.authkey),
        "authkey_type": type(cur.authkey).__name__,
        "parent_pid": par.pid if par is not None else None,
        "parent_name": par.name if par is not None else None,
        "parent_alive": par.is_alive() if par is not None else None,
        "start_method": mod.get_start_method(),
        "std_start_method": multiprocessing.get_start_method(),
        "children": len(mod.active_children()),
        "mark": MARK,
    })


def daemon_child_spawns(q, modname, start_method):
    """A daemonic process may not start children: report what starting one raises."""
    ctx = importlib.import_module(modname).get_context(start_method)
    p = ctx.Process(target=noop)
    try:
        p.start()
    except Exception as e:      # noqa: BLE001
        q.put((type(e).__name__, str(e)))
    else:
        p.join()
        q.put("started")


def nested_child(q, modname, start_method):
    """A non-daemonic child starts its own child and reports the grandchild's view of its parent."""
    ctx = importlib.import_module(modname).get_context(start_method)
    inner = ctx.SimpleQueue()
    p = ctx.Process(target=report_identity, args=(inner, modname))
    p.start()
    info = inner.get()
    p.join()
    q.put((info["parent_pid"] == os.getpid(), p.exitcode, name_pattern(info["name"])))


def join_self(q, modname):
    mod = importlib.import_module(modname)
    q.put(catch(mod.current_process().join))


def sleep_for(seconds):
    time.sleep(seconds)


def _subclass_run(self):
    self.q.put(("run", self.value * 2, self.name == multiprocessing.current_process().name))


def _make_subclass(base, clsname):
    ns = {"__module__": __name__, "__qualname__": clsname, "run": _subclass_run}
    cls = type(clsname, (base,), ns)

    def __init__(self, q, value, **kwds):
        base.__init__(self, **kwds)
        self.q = q
        self.value = value

    __init__.__qualname__ = clsname + ".__init__"
    cls.__init__ = __init__
    globals()[clsname] = cls
    return cls


def _stateful_init(self, q, **kwds):
    type(self).__mro__[1].__init__(self, **kwds)
    self.q = q
    self.unpicklable = threading.Lock()          # dropped by __getstate__ when the process is pickled


def _stateful_getstate(self):
    state = self.__dict__.copy()
    state.pop("unpicklable", None)
    state["via_getstate"] = True
    return state


def _stateful_setstate(self, state):
    self.__dict__.update(state)
    self.unpicklable = "rebuilt by __setstate__"


def _stateful_run(self):
    self.q.put((self.__dict__.get("via_getstate", False), self.unpicklable if isinstance(self.unpicklable, str)
                else type(self.unpicklable).__name__))


def _make_stateful(base, clsname):
    """A Process subclass with __getstate__/__setstate__ (to leave an unpicklable attribute behind)."""
    ns = {"__module__": __name__, "__qualname__": clsname, "__init__": _stateful_init, "run": _stateful_run,
          "__getstate__": _stateful_getstate, "__setstate__": _stateful_setstate}
    cls = type(clsname, (base,), ns)
    globals()[clsname] = cls
    return cls


#: Process subclasses with run() overridden, for each module and start method (and the modules' Process);
#: STATEFUL: subclasses that also customise their pickling.
SUBCLASSES = {}
STATEFUL = {}
for _modname, _mod in ((STD, multiprocessing), (CORE, core)):
    _tag = "Std" if _mod is multiprocessing else "Core"
    SUBCLASSES[(_modname, None)] = _make_subclass(_mod.Process, "%sDefaultWorker" % _tag)
    for _m in multiprocessing.get_all_start_methods():
        SUBCLASSES[(_modname, _m)] = _make_subclass(_mod.get_context(_m).Process,
                                                   "%sWorker_%s" % (_tag, _m))
        STATEFUL[(_modname, _m)] = _make_stateful(_mod.get_context(_m).Process, "%sStateful_%s" % (_tag, _m))


# ------------------------------------------------------------------------------------------------------
# Synchronisation workers
# ------------------------------------------------------------------------------------------------------

def locked_increments(start, lock, raw, synced, n):
    """Race the other workers (all pass ``start``, a Barrier) adding 1, ``n`` times, to two counters: a raw
    shared int guarded by ``lock`` (read, yield, write), and a synchronized Value under its own lock."""
    start.wait(10)
    for i in range(n):
        with lock:
            v = raw.value
            if i % 50 == 0:
                time.sleep(0)
            raw.value = v + 1
        with synced.get_lock():
            synced.value += 1


def try_acquire_held(q, objs):
    """Everything in ``objs`` is held by the parent: report non-blocking and timed acquires."""
    q.put([(o.acquire(False), o.acquire(block=True, timeout=0.02), o.acquire(False, 5)) for o in objs])


def release_foreign(q, lock, rlock):
    """Release locks the parent holds: allowed for a Lock, an AssertionError for an RLock."""
    q.put((catch(lock.release), catch(rlock.release)))


def acquire_then_report(q, lock):
    q.put(lock.acquire(timeout=5))
    lock.release()


def cond_waiter(cond, ready, flag, results, timeout=5.0):
    """Wait on ``cond`` until ``flag`` is set; ``ready`` is released while ``cond`` is held, so once the
    parent has taken ``ready`` and then ``cond``, this worker is inside ``wait``."""
    with cond:
        ready.release()
        ok = cond.wait(timeout)
        results.put((ok, flag.value))


def cond_wait_for(cond, ready, flag, results, timeout=5.0):
    with cond:
        ready.release()
        ok = cond.wait_for(lambda: flag.value == 1, timeout)
        results.put((ok, flag.value))


def event_ping(ev_in, ev_out, q):
    got = ev_in.wait(5)
    q.put((got, ev_in.is_set()))
    ev_out.set()


def semaphore_worker(sem, q):
    got = sem.acquire(timeout=5)
    q.put((got, sem.get_value() if sys.platform != "darwin" else None))


def semaphore_release(sem):
    sem.release()


def barrier_waiter(barrier, q, rounds=1, timeout=5.0):
    out = []
    for _ in range(rounds):
        out.append(barrier.wait(timeout))
    q.put(out)


def barrier_broken_waiter(barrier, q, timeout=5.0):
    try:
        barrier.wait(timeout)
    except threading.BrokenBarrierError as e:
        q.put(("broken", type(e).__name__))
    else:
        q.put(("passed", None))


def report_shared(v, lock, q):
    """A child uses a Value and a Lock made by its parent, and reports both modules' start method."""
    with lock:
        value = v.value
    q.put([value, multiprocessing.get_start_method(), core.get_start_method()])


def incr_value(v):
    """A Barrier action: count the generations that passed."""
    with v.get_lock():
        v.value += 1


# ------------------------------------------------------------------------------------------------------
# Queue workers
# ------------------------------------------------------------------------------------------------------

def produce(q, items):
    for item in items:
        q.put(item)


def echo_doubled(q_in, q_out):
    while True:
        item = q_in.get(timeout=10)
        if item is None:
            break
        q_out.put(item * 2)


def joinable_consumer(jq, out, done):
    while True:
        item = jq.get(timeout=10)
        if item is None:
            jq.task_done()
            break
        out.put(item * 10)
        with done.get_lock():
            done.value += 1
        jq.task_done()


def simple_queue_echo(q_in, q_out):
    while True:
        item = q_in.get()
        if item is None:
            break
        q_out.put((item, type(item).__name__))


def get_with_timeout(q, out):
    try:
        q.get(timeout=0.05)
    except queue.Empty as e:
        out.put(("Empty", type(e) is queue.Empty))
    else:
        out.put(("got", None))


# ------------------------------------------------------------------------------------------------------
# Pipe workers
# ------------------------------------------------------------------------------------------------------

def pipe_echo(conn):
    """Echo objects and byte messages until None; then report and close."""
    n = 0
    while True:
        kind, payload = conn.recv()
        if kind == "stop":
            break
        n += 1
        if kind == "obj":
            conn.send(("echo", payload))
        elif kind == "bytes":
            data = conn.recv_bytes()
            conn.send_bytes(data[::-1])
    conn.send(("count", n))
    conn.close()


def pipe_send_then_exit(conn, items):
    for item in items:
        conn.send(item)
    conn.close()


def pipe_write_end(w, payload):
    w.send_bytes(payload)
    w.send(len(payload))
    w.close()


def pipe_receive_connection(conn):
    """Receive a Connection over ``conn`` and answer through it."""
    other = conn.recv()
    other.send(("hello through a passed end", type(other).__name__, other.writable))
    other.close()
    conn.close()


# ------------------------------------------------------------------------------------------------------
# Shared memory workers
# ------------------------------------------------------------------------------------------------------

def shared_ctypes_worker(val, arr, raw_val, raw_arr, string):
    with val.get_lock():
        val.value += 5
    with arr.get_lock():
        arr[:] = [x * 2 for x in arr[:]]
    raw_val.value = raw_val.value * 3
    for i in range(len(raw_arr)):
        raw_arr[i] = raw_arr[i] + 0.5
    string.value = string.value.upper()


def shm_attach_write(modname, name, data, q):
    sm = importlib.import_module(modname + ".shared_memory")
    shm = sm.SharedMemory(name)
    try:
        before = bytes(shm.buf[:len(data)])
        shm.buf[:len(data)] = data
        q.put((before, shm.size >= len(data), shm.name == name or shm.name == "/" + name))
    finally:
        shm.close()


def shareable_list_attach(modname, name, q):
    sm = importlib.import_module(modname + ".shared_memory")
    sl = sm.ShareableList(name=name)
    try:
        before = list(sl)
        sl[0] = sl[0] + 100
        sl[2] = "xyz"
        q.put((before, sl.format, len(sl)))
    finally:
        sl.shm.close()


def shareable_list_passed(sl, q):
    """``sl`` came as a Process argument (pickled by name for spawn/forkserver)."""
    try:
        q.put((list(sl), type(sl).__name__))
        sl[1] = -1.25
    finally:
        sl.shm.close()


def shm_passed(shm, q):
    try:
        q.put(bytes(shm.buf[:4]))
        shm.buf[4:8] = b"WXYZ"
    finally:
        shm.close()


# ------------------------------------------------------------------------------------------------------
# Managers
# ------------------------------------------------------------------------------------------------------

def manager_child(ns, lst, dct, lock, rlock, sem, bsem, cond, ev, barrier, q, val, arr):
    """Use every SyncManager type from a child; put a report on the managed queue ``q``."""
    out = {}
    lst.append(2)
    lst.extend([3, 4])
    out["list_len"] = len(lst)
    out["list_pop"] = lst.pop()
    dct["child"] = os.getpid() > 0
    dct.update({"k": "v"})
    out["dict_keys"] = sorted(dct.keys())
    ns.y = "set by child"
    out["ns_x"] = ns.x
    with lock:
        val.value += 10
    out["rlock"] = [rlock.acquire(), rlock.acquire(), rlock.release(), rlock.release()]
    out["sem"] = [sem.acquire(), sem.acquire(timeout=0.05), sem.release()]
    out["bsem"] = [bsem.acquire(), bsem.release(), catch(bsem.release)]
    arr[1] = 5
    out["arr"] = list(arr[:])
    out["barrier"] = barrier.wait(10)
    with cond:
        cond.notify_all()
    ev.set()
    q.put(out)


def manager_cond_waiter(cond, lst, q):
    with cond:
        ok = cond.wait_for(lambda: len(lst) > 0, 10)
    q.put((ok, list(lst)))


class Counter:
    """A custom type served by a BaseManager."""

    def __init__(self, start=0):
        self.n = start

    def incr(self, k=1):
        self.n += k
        return self.n

    def get(self):
        return self.n

    def fail(self):
        raise KeyError("no such counter")

    def pid(self):
        return os.getpid()

    def _private(self):
        return "hidden"


class CounterFactory:
    """Hands out Counters: its make() returns a proxy to a new Counter (method_to_typeid "MadeCounter")."""

    def make(self, start):
        return Counter(start)

    def plain(self, start):
        return Counter(start).get()


class StdCounterManager(multiprocessing.managers.BaseManager):
    pass


class CoreCounterManager(core.managers.BaseManager):
    pass


for _cls in (StdCounterManager, CoreCounterManager):
    _cls.register("Counter", Counter)
    _cls.register("Store", dict, proxytype=multiprocessing.managers.DictProxy)
    _cls.register("Factory", CounterFactory, method_to_typeid={"make": "MadeCounter"})
    _cls.register("MadeCounter", None, create_method=False)          # only returned by Factory.make

COUNTER_MANAGERS = {STD: StdCounterManager, CORE: CoreCounterManager}


def counter_child(counter, q, times):
    for _ in range(times):
        counter.incr()
    q.put(counter.get())


def counter_client(modname, address, authkey, q):
    """Connect to a manager served over TCP, as a separate client process."""
    m = COUNTER_MANAGERS[modname](address=address, authkey=authkey)
    m.connect()
    c = m.Counter(100)
    q.put((c.incr(5), c.get(), c.pid() != os.getpid()))


# ------------------------------------------------------------------------------------------------------
# core.ipc workers
# ------------------------------------------------------------------------------------------------------

def file_channel_child(to_child, to_parent):
    """Echo three messages from ``to_child`` to ``to_parent``, transformed."""
    for _ in range(3):
        msg = to_child.recv(timeout=10)
        to_parent.send(("echo", msg))
    to_parent.send_bytes(b"raw bytes")


def socket_channel_child(ch):
    for _ in range(2):
        msg = ch.recv()
        ch.send(("echo", msg))
    ch.send_bytes(b"\x00" * 100000)
    ch.close()


def socket_connect_child(address, q):
    from core.ipc import SocketChannel
    ch = SocketChannel.connect(address)
    try:
        ch.send({"from": "child", "pid": os.getpid()})
        q.put(ch.recv())
    finally:
        ch.close()


def signal_child(ready, got, parent_pid, signum):
    """Handle ``signum`` with a SignalChannel, tell the parent, wait for the signal, then signal back."""
    from core.ipc import SignalChannel
    ch = SignalChannel()
    received = threading.Event()
    ch.handle(signum, lambda sig, frame: received.set())
    ready.set()
    deadline = time.monotonic() + 10
    while not received.is_set() and time.monotonic() < deadline:
        time.sleep(0.005)        # the handler runs between bytecodes of the main thread
    got.value = 1 if received.is_set() else -1
    ch.send(parent_pid, signum)

