"""Child-process targets for the call-site and contention tests (importable by spawned children: tests/ is on
their PYTHONPATH).

Each line that waits carries a ``# site: NAME`` marker: the tests find the line a call site must name by its
marker (``line_of``), so editing this file cannot silently make them check the wrong line.
"""
import time


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


def contend(lock, sem, cond, event, barrier):
    """One worker of the contention run.  The parent makes every wait below block: it holds the lock and both
    of the semaphore's units until every worker asks, notifies and sets only once every worker waits, and
    arrives at the barrier last."""
    with lock:                                  # site: lock
        pass
    sem.acquire()                               # site: semaphore
    sem.release()
    with cond:
        cond.wait()                             # site: condition
    event.wait()                                # site: event
    barrier.wait()                              # site: barrier


def hammer(lock, n, hold_s=0.0):
    """``n`` acquisitions of ``lock`` (a lock or a semaphore), each held ``hold_s`` seconds."""
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
