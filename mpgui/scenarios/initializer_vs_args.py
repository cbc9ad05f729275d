"""Shared read-only data: through the Pool initializer, or with every task.

Lessons 6, 8 and 4 of the notes: data that many tasks share goes through the Pool initializer (once per
worker; with fork not even that, the workers inherit it); data for one task only goes as that task's
argument; and in general, pass as little between processes as possible.

A large read-only object (``size_mb``) is used by every task, two ways: passed as an argument of every task
(chunksize=1, one task at a time), or handed to each worker once by the initializer, the tasks then passing
only their index.  The object counts every time it is pickled (in the process that pickles it, the main
one), so the figures are the real number of copies and bytes that went through the pipes, next to the time
each way took, Pool start to Pool joined.

Each task also does ``task_ms`` of its own work.  core's Pool packs tasks it measures as very short into
one message, and a pickle holds an object it meets several times only once, so with tasks of no length
the object would go once per message rather than once per task (the stdlib's Pool sends every task on its
own); tasks of a few milliseconds go one at a time in both.
"""
import pickle
import threading
import time

from .base import Param, Result, Scenario, processes_param

MB = 1024 * 1024

_count_lock = threading.Lock()
_pickled = [0]
_SHARED = None      # in a worker: the object the initializer kept


class Payload:
    """A large read-only object that counts how often it is pickled (pickling happens in the parent:
    the Pool's task thread for task arguments, Process.start for a spawned worker's initargs)."""

    def __init__(self, data):
        self.data = data

    def __reduce__(self):
        with _count_lock:
            _pickled[0] += 1
        return (Payload, (self.data,))


def pickled_count():
    with _count_lock:
        return _pickled[0]


def init_shared(payload):
    """Pool initializer: keep the shared object for every task this worker runs."""
    global _SHARED
    _SHARED = payload


def use(payload, index, seconds):
    """A task's work with the object: read a byte of it, then ``seconds`` of the task's own work."""
    data = payload.data
    if seconds:
        time.sleep(seconds)
    return data[(index * 7919) % len(data)] if data else 0


def task_with_arg(args):
    payload, index, seconds = args
    return use(payload, index, seconds)


def task_with_shared(args):
    index, seconds = args
    return use(_SHARED, index, seconds)


def run_variant(ctx, p, payload, via_initializer, report, done, total):
    before = pickled_count()
    t0 = time.perf_counter()
    n, secs = p["tasks"], p["task_ms"] / 1000.0
    if via_initializer:
        pool = ctx.Pool(p["processes"], initializer=init_shared, initargs=(payload,))
        fn, items = task_with_shared, [(i, secs) for i in range(n)]
    else:
        pool = ctx.Pool(p["processes"])
        fn, items = task_with_arg, [(payload, i, secs) for i in range(n)]
    with pool:
        for _ in pool.imap_unordered(fn, items, chunksize=1):
            done[0] += 1
            report.progress(done[0], total)
        pool.close()
        pool.join()
    secs = time.perf_counter() - t0
    copies = pickled_count() - before
    return {"seconds": secs, "times_pickled": copies, "bytes_pickled": copies * len(payload.data)}


def run(ctx, p, report):
    payload = Payload(b"\x01" * int(p["size_mb"] * MB))
    size = len(pickle.dumps(payload.data, protocol=pickle.HIGHEST_PROTOCOL))
    method = ctx.get_start_method()
    total = 2 * p["tasks"]
    done = [0]
    figures = {"size_mb": size / MB, "tasks": p["tasks"], "processes": p["processes"], "method": method}
    rows = []
    for key, via_init, label in (("args", False, "with every task"), ("initializer", True, "through the initializer")):
        report.phase(label)
        f = figures[key] = run_variant(ctx, p, payload, via_init, report, done, total)
        rows.append((label, f["times_pickled"], "%.1f MB" % (f["bytes_pickled"] / MB), "%.3f s" % f["seconds"]))
        report.line("%-24s pickled %d times, %.1f MB in all, %.3f s"
                    % (label, f["times_pickled"], f["bytes_pickled"] / MB, f["seconds"]))
    a, i = figures["args"], figures["initializer"]
    if i["times_pickled"] == 0:
        how = "it was never pickled: with %s the workers inherited it from the main process" % method
    else:
        how = ("it was pickled %d times (%.0f MB, once per worker: %s starts each worker afresh)"
               % (i["times_pickled"], i["bytes_pickled"] / MB, method))
    lesson = ("Passing the %.1f MB object with each of %d tasks pickled it %d times (%.0f MB through the pipes) "
              "and took %.2f s; through the initializer %s, and it took %.2f s (%.1fx faster). Data every task "
              "needs goes through the initializer; a task's own data (here its index, a few bytes) goes as its "
              "argument: pass as little as possible."
              % (size / MB, p["tasks"], a["times_pickled"], a["bytes_pickled"] / MB, a["seconds"], how,
                 i["seconds"], a["seconds"] / max(i["seconds"], 1e-9)))
    return Result(lesson, figures, ("shared object passed", "times pickled", "bytes pickled", "time"), rows)


SCENARIO = Scenario(
    name="initializer_vs_args",
    title="Shared data: Pool initializer vs every task's argument",
    description="A large read-only object used by every task, passed with each task or once per worker through "
                "the Pool initializer; the object counts how often it is pickled.",
    lesson="Data shared by many tasks goes through the Pool initializer (with fork, not even copied); data for "
           "one task goes as its argument; pass as little as possible.",
    params=(
        processes_param(4),
        Param("size_mb", "float", 20.0, "Size of the shared object", 0.0, 1024.0, unit="MB"),
        Param("tasks", "int", 40, "Tasks that use it", 1, 100_000),
        Param("task_ms", "float", 10.0, "Each task's own work besides reading the object", 0.0, 10_000.0,
              unit="ms"),
    ),
    run=run,
    category="Sharing data",
)
