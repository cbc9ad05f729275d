"""Child-process targets for the call-site and contention tests (importable by spawned children: tests/ is on
their PYTHONPATH).

Each line that waits carries a ``# site: NAME`` marker: the tests find the line a call site must name by its
marker (``line_of``), so editing this file cannot silently make them check the wrong line.
"""
import time

from core.trace.events import Kind

#: How long the driver waits for what the trace or a process must show, at most.
DEADLINE_S = 60.0


def line_of(marker, path=__file__):
    """The line number of the line marked ``# site: <marker>`` in ``path``."""
    with open(path) as f:
        for number, text in enumerate(f, 1):
            if text.rstrip().endswith("# site: " + marker):
                return number
    raise LookupError("no line marked %r in %s" % (marker, path))


def site_text(marker, function, path=__file__):
    """The call site text core records for the marked line: ``path:line in function``."""
    return "%s:%d in %s" % (path, line_of(marker, path), function)


def contend(lock, sem, cond, event, barrier, q):
    """One worker of the contention run (``run_contention``): every wait below blocks."""
    with lock:                                  # site: lock
        pass
    sem.acquire()                               # site: semaphore
    sem.release()
    with cond:
        cond.wait()                             # site: condition
    event.wait()                                # site: event
    barrier.wait()                              # site: barrier
    q.get()                                     # site: queue


def run_contention(ctx, events, workers):
    """Run ``workers`` processes of ``contend`` and make each of their waits block, without timing: hold the
    lock and both of the semaphore's units until every worker asks (``events()``: the trace so far), notify
    and set only once every worker waits, arrive at the barrier last, put into the queue once every worker
    is asleep after passing the barrier (it can only be in its get).  Returns the objects by name and the
    processes (joined)."""
    import psutil
    objects = {"lock": ctx.Lock(name="L"), "semaphore": ctx.Semaphore(2, name="S"),
               "condition": ctx.Condition(name="C"), "event": ctx.Event(name="E"),
               "barrier": ctx.Barrier(workers + 1, name="B"), "queue": ctx.Queue(name="Q")}
    lock, sem, cond, event, barrier, q = objects.values()

    def wait_for(obj, kind, pids=None):
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            ev = events()
            ev = ev[(ev["uid"] == obj._trace_uid) & (ev["kind"] == kind)]
            if len(ev) >= workers and (pids is None or all(psutil.Process(p).status() == psutil.STATUS_SLEEPING
                                                           for p in pids)):
                return
            time.sleep(0.005)
        raise AssertionError("the workers never all showed %s on %s" % (Kind(kind).name, obj.name))

    lock.acquire()
    sem.acquire()
    sem.acquire()
    ps = [ctx.Process(target=contend, args=(lock, sem, cond, event, barrier, q)) for _ in range(workers)]
    for p in ps:
        p.start()
    try:
        wait_for(lock, Kind.ACQ_REQUEST)
        lock.release()
        wait_for(sem, Kind.ACQ_REQUEST)
        sem.release()
        sem.release()
        wait_for(cond, Kind.COND_WAIT)
        with cond:
            cond.notify_all()
        wait_for(event, Kind.EVENT_WAIT)
        event.set()
        wait_for(barrier, Kind.BARRIER_ARRIVE)
        barrier.wait()                          # the last to arrive: it does not block
        wait_for(barrier, Kind.BARRIER_PASS, [p.pid for p in ps])
        for i in range(workers):
            q.put(i)
    finally:
        for p in ps:
            p.join(DEADLINE_S)
        q.close()
        q.join_thread()
    return objects, ps


def hammer(lock, n, hold_s=0.0, start=None):
    """``n`` acquisitions of ``lock`` (a lock or a semaphore), each held ``hold_s`` seconds; with ``start`` (a
    barrier of all the hammering processes), once every one of them is ready."""
    if start is not None:
        start.wait()
    for _ in range(n):
        with lock:                              # site: hammer
            if hold_s:
                time.sleep(hold_s)


def uncontended(lock, sem, event, n):
    """Waits that never block: a lock and a semaphore nobody else takes, an event already set."""
    for _ in range(n):
        with lock:
            pass
        with sem:
            pass
        event.wait()
