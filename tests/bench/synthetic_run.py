"""A synthetic run of any size, for the scale benchmarks and tests: what a busy traced program records.

``chunks(n_events)`` yields the events of such a run a collector batch at a time (EVENT_DTYPE arrays, each
ring's records in order, runs of one ring after another, as the collector stores them), made with numpy in
bounded memory.  ``write_run(path, n_events)`` stores them in a run file with the processes' and objects'
registrations.  The mix, per operation a worker process does one after the other:

* a lock taken without waiting (ACQ_OK, RELEASE) on one of ``LOCKS`` locks;
* a lock it had to wait for (ACQ_REQUEST, ACQ_OK after the wait, RELEASE);
* a semaphore slot (ACQ_OK and RELEASE with the semaphore's value);
* a queue message (QUEUE_PUT, QUEUE_SEND by the feeder, QUEUE_GET in the next worker);
* a pool task (the main process queues and sends it, the worker starts and ends it, the main process uses
  its result).

Deterministic for a seed.  No Qt, no processes.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT  # noqa: E402,F401  (puts the repository on the path)

from core.trace.arrays import EVENT_DTYPE  # noqa: E402
from core.trace.events import JobMethod, Kind, Outcome  # noqa: E402

MAIN = 999
WORKERS = 16
FIRST_WORKER = 1000
LOCKS = (7, 8, 9, 10)
SEMAPHORE = 11
QUEUE = 12
POOL = 13
#: Operations each worker does per window; a window's events make one collector batch.
OPS_PER_WINDOW = 1000
#: The mix: (name, share of operations, events it records).
MIX = (("lock", 0.50, 2), ("contended", 0.15, 3), ("semaphore", 0.10, 2), ("queue", 0.15, 3), ("task", 0.10, 5))
#: An operation takes about this long (ns), and so does the gap before the next.
OP_NS = 4_000


def _events_per_op():
    return sum(share * n for _, share, n in MIX)


def chunks(n_events, seed=1, t_start=10**12):
    """The run's events, a window (one collector batch) at a time, until ``n_events`` were made."""
    rng = np.random.default_rng(seed)
    made = 0
    t_window = t_start
    job_next = [1]
    while made < n_events:
        ev = _window(rng, t_window, job_next)
        if made + len(ev) > n_events:
            ev = ev[:n_events - made]
        made += len(ev)
        t_window = int(ev["t"].max()) + OP_NS
        yield ev


def _window(rng, t_window, job_next):
    m = OPS_PER_WINDOW
    shares = np.array([s for _, s, _ in MIX])
    kinds = rng.choice(len(MIX), size=(WORKERS, m), p=shares / shares.sum())
    dur = rng.exponential(OP_NS, size=(WORKERS, m)).astype(np.int64) + 200
    gap = rng.exponential(OP_NS, size=(WORKERS, m)).astype(np.int64) + 100
    start = t_window + np.cumsum(dur + gap, axis=1) - (dur + gap)
    pid = np.repeat(np.arange(FIRST_WORKER, FIRST_WORKER + WORKERS), m).reshape(WORKERS, m)
    kinds, dur, start, pid = kinds.ravel(), dur.ravel(), start.ravel(), pid.ravel()
    lock = np.array(LOCKS, dtype=np.uint64)[rng.integers(0, len(LOCKS), len(kinds))]
    parts = []

    def part(sel, t, kind, uid, a=0, b=0, c=0, on=None):
        n = int(sel.sum())
        e = np.zeros(n, EVENT_DTYPE)
        e["t"] = t
        e["kind"] = int(kind)
        e["uid"] = uid
        e["a"], e["b"], e["c"] = a, b, c
        e["pid"] = pid[sel] if on is None else on
        e["tid"] = e["pid"]
        parts.append(e)

    sel = kinds == 0
    part(sel, start[sel], Kind.ACQ_OK, lock[sel], 0, -1, 1)
    part(sel, start[sel] + dur[sel], Kind.RELEASE, lock[sel], dur[sel], -1, 0)
    sel = kinds == 1
    wait = dur[sel] // 2
    part(sel, start[sel], Kind.ACQ_REQUEST, lock[sel], -1)
    part(sel, start[sel] + wait, Kind.ACQ_OK, lock[sel], wait, -1, 1)
    part(sel, start[sel] + dur[sel], Kind.RELEASE, lock[sel], dur[sel] - wait, -1, 0)
    sel = kinds == 2
    value = rng.integers(0, 3, int(sel.sum()))
    part(sel, start[sel], Kind.ACQ_OK, SEMAPHORE, 0, value, 1)
    part(sel, start[sel] + dur[sel], Kind.RELEASE, SEMAPHORE, -1, value + 1, 0)
    sel = kinds == 3
    size = rng.integers(50, 5000, int(sel.sum()))
    depth = rng.integers(0, 20, int(sel.sum()))
    part(sel, start[sel], Kind.QUEUE_PUT, QUEUE, 1000, depth)
    part(sel, start[sel] + dur[sel] // 3, Kind.QUEUE_SEND, QUEUE, size)
    getter = FIRST_WORKER + (pid[sel] - FIRST_WORKER + 1) % WORKERS
    part(sel, start[sel] + dur[sel], Kind.QUEUE_GET, QUEUE, np.where(depth == 0, 80_000, 0), size, depth,
         on=getter)
    sel = kinds == 4
    n = int(sel.sum())
    job = job_next[0]
    job_next[0] += 1
    index = np.arange(n)
    part(sel, start[sel] - 2000, Kind.POOL_JOB, POOL, job, n, int(JobMethod.MAP), on=MAIN)
    parts[-1] = parts[-1][:1]
    part(sel, start[sel] - 1500, Kind.POOL_CHUNK_QUEUED, POOL, job, index, 1, on=MAIN)
    part(sel, start[sel] - 1000, Kind.POOL_CHUNK_SENT, POOL, job, index, pid[sel], on=MAIN)
    part(sel, start[sel], Kind.POOL_TASK_T0, POOL, job, index)
    part(sel, start[sel] + dur[sel], Kind.POOL_TASK, POOL, job, index, int(Outcome.OK))
    part(sel, start[sel] + dur[sel] + 1000, Kind.POOL_RESULT_USED, POOL, job, index, on=MAIN)
    ev = np.concatenate(parts)
    # As the collector stores them: each ring's records in order, one ring after another.
    return ev[np.lexsort((ev["t"], ev["pid"]))]


def registrations():
    regs = [{"t": "proc", "pid": MAIN, "ppid": 1, "role": "main", "name": "MainProcess"}]
    regs += [{"t": "proc", "pid": FIRST_WORKER + i, "ppid": MAIN, "role": "worker", "name": "worker-%d" % i}
             for i in range(WORKERS)]
    regs += [{"t": "obj", "uid": u, "kind": "Lock", "name": "lock %d" % u} for u in LOCKS]
    regs += [{"t": "obj", "uid": SEMAPHORE, "kind": "Semaphore", "name": "slots"},
             {"t": "obj", "uid": QUEUE, "kind": "Queue", "name": "jobs"},
             {"t": "obj", "uid": POOL, "kind": "Pool", "name": "pool"}]
    return regs


def write_run(path, n_events, seed=1):
    """A finished run file at ``path`` holding ``n_events`` synthetic events; returns ``path``."""
    from core.trace.collector import Batch
    from core.trace.store import RunWriter
    t_start = 10**12
    writer = RunWriter(path, {"created_perf": t_start - 1000, "scenario": "synthetic"}, replace=True)
    writer.add_batch(Batch(np.zeros(0, EVENT_DTYPE), registrations(), {}))
    total = 0
    t_last = t_start
    for ev in chunks(n_events, seed, t_start):
        writer.add_batch(Batch(ev, [], {}))
        total += len(ev)
        t_last = int(ev["t"].max())
    writer.finish(status="done", events=total, dropped=0, ended_perf=t_last)
    writer.close()
    return path


if __name__ == "__main__":
    t0 = time.perf_counter()
    write_run(sys.argv[1], int(float(sys.argv[2])))
    print("wrote %s in %.1f s" % (sys.argv[1], time.perf_counter() - t0))
