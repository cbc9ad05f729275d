"""Bookkeeping for scenarios that start their own worker processes: collect their reports from a queue
without ever hanging on a dead worker, and make sure none is left running."""
import queue
import time

#: How long a scenario waits for its workers before it gives up with an error.
WAIT_LIMIT = 60.0


def collect(results, n, procs, what, limit=WAIT_LIMIT, on_item=None, poll=0.2):
    """``n`` items from the queue ``results``.  RuntimeError naming the workers that failed if one of
    ``procs`` ends with an error, or if ``limit`` seconds pass.  ``on_item(count)`` after each item."""
    out = []
    deadline = time.monotonic() + limit
    while len(out) < n:
        try:
            item = results.get(timeout=poll)
        except queue.Empty:
            dead = [w.name for w in procs if w.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise RuntimeError("no result from %s" % (", ".join(dead) or what)) from None
            continue
        out.append(item)
        if on_item is not None:
            on_item(len(out))
    return out


def reap(procs, limit=WAIT_LIMIT):
    """Join every started worker; one that is still running after ``limit`` seconds is terminated."""
    for w in procs:
        if w.pid is None:
            continue
        w.join(limit)
        if w.is_alive():
            w.terminate()
            w.join()
