"""The eight Pool methods on tasks of uneven length, with the main process reviewing each result.

Lessons 11 and 19 of the notes: imap returns results in submission order, so the main process waits for the
slow first task before it can review anything; imap_unordered returns them as they finish.  Async calls
(apply_async, map_async, starmap_async) start computing at once: the main process can do other work meanwhile.
"""
import time

from .base import Param, Result, Scenario, processes_param
from core.errors import TaskTimeoutError, WorkerLostError
from .work import timed_task, timed_task_args

LOST = (WorkerLostError, TaskTimeoutError)

METHODS = ("imap", "imap_unordered", "map", "map_async", "apply", "apply_async", "starmap", "starmap_async")


def durations(tasks, unit, order):
    ds = [unit * (i + 1) for i in range(tasks)]
    if order == "slowest first":
        ds.reverse()
    elif order == "alternating":
        ds = [ds[(i // 2) if i % 2 == 0 else -(i // 2) - 1] for i in range(tasks)]
    return ds


def run_method(pool, method, ds, cpu, review, report):
    """Submit the tasks with ``method``, review each result as the main process gets it.
    Returns (seconds to the first result, seconds to the end, order the results were reviewed in, tasks
    lost).  A task whose worker died (kill one from the app's process table) or overran its time is counted
    as lost and the call goes on: core's Pool replaces the worker instead of hanging."""
    items = [(i, d, cpu) for i, d in enumerate(ds)]
    t0 = time.perf_counter()
    first = None
    order = []
    lost = []

    def reviewed(result):
        nonlocal first
        if first is None:
            first = time.perf_counter() - t0
        order.append(result[0])
        time.sleep(review)                          # the main process looks at the result
        report.progress(len(order) + len(lost), len(items))

    def failed(err, indexes):
        lost.extend(indexes)
        report.line("lost task(s) %s: %s" % (", ".join(map(str, indexes)), err))
        report.progress(len(order) + len(lost), len(items))

    def each(iterator):
        while True:
            try:
                r = next(iterator)
            except StopIteration:
                return
            except LOST as e:
                failed(e, list(getattr(e, "tasks", ()) or [getattr(e, "task", "?")]))
                continue
            reviewed(r)

    def whole(call):
        try:
            results = call()
        except LOST as e:                           # map-like calls fail as a whole
            failed(e, [it[0] for it in items])
            return
        for r in results:
            reviewed(r)

    if method == "imap":
        each(pool.imap(timed_task_args, items))
    elif method == "imap_unordered":
        each(pool.imap_unordered(timed_task_args, items))
    elif method == "map":
        whole(lambda: pool.map(timed_task_args, items, chunksize=1))
    elif method == "starmap":
        whole(lambda: pool.starmap(timed_task, items, chunksize=1))
    elif method in ("map_async", "starmap_async"):
        fn = pool.map_async if method == "map_async" else pool.starmap_async
        res = fn(timed_task_args if method == "map_async" else timed_task, items, chunksize=1)
        whole(res.get)
    elif method in ("apply", "apply_async"):
        pending = [pool.apply_async(timed_task, it) for it in items] if method == "apply_async" else None
        for k, it in enumerate(items):
            try:
                r = pending[k].get() if pending else pool.apply(timed_task, it)
            except LOST as e:
                failed(e, [it[0]])
                continue
            reviewed(r)
    else:                                           # pragma: no cover - validated before
        raise ValueError(method)
    return first, time.perf_counter() - t0, order, lost


def run(ctx, p, report):
    ds = durations(p["tasks"], p["unit"], p["order"])
    methods = ("imap", "imap_unordered") if p["method"] == "imap vs imap_unordered" else (p["method"],)
    rows = []
    figures = {}
    with ctx.Pool(p["processes"]) as pool:
        pool.map(time.sleep, [0] * p["processes"])          # workers up before timing
        for m in methods:
            report.phase(m)
            first, total, order, lost = run_method(pool, m, ds, p["cpu"], p["review"], report)
            first = total if first is None else first
            rows.append((m, "%.2f s" % first, "%.2f s" % total, " ".join(map(str, order)), len(lost)))
            figures[m] = {"first_result_s": first, "total_s": total, "order": order, "lost": lost}
            report.line("%-15s first result after %.2f s, all reviewed after %.2f s, order %s"
                        % (m, first, total, order))
    if len(methods) == 2:
        a, b = figures["imap"], figures["imap_unordered"]
        lesson = ("imap_unordered delivered the first result %.2f s earlier than imap (%.2f s vs %.2f s) and the main "
                  "process finished reviewing %.2f s earlier: imap returns results in submission order, so it waited "
                  "for the slow first task; imap_unordered returns them as they finish."
                  % (a["first_result_s"] - b["first_result_s"], b["first_result_s"], a["first_result_s"],
                     a["total_s"] - b["total_s"]))
    else:
        m = methods[0]
        f = figures[m]
        lesson = ("%s: first result after %.2f s, all %d results reviewed after %.2f s (the tasks alone need %.2f s "
                  "of work on %d processes)." % (m, f["first_result_s"], len(ds), f["total_s"], sum(ds),
                                                  p["processes"]))
        if m.endswith("_async"):
            lesson += " The async call returned at once and the tasks started computing immediately."
    n_lost = sum(len(f["lost"]) for f in figures.values())
    if n_lost:
        lesson += (" %d task(s) were lost when their worker died; the Pool replaced the worker and the calls went "
                   "on (the stdlib's Pool would have hung)." % n_lost)
    return Result(lesson, figures, ("method", "first result", "all reviewed", "review order", "lost"), rows)


SCENARIO = Scenario(
    name="pool_methods",
    title="Pool methods: imap vs imap_unordered and the other six",
    description="Tasks of uneven length go through one of the eight Pool methods; the main process reviews "
                "each result as it gets it. The timeline shows the two Gantt charts of the notes. Kill a worker "
                "from the Processes tab while it runs to watch the Pool fail its tasks and replace it.",
    lesson="imap returns results in submission order (the main process waits on the slow one); imap_unordered "
           "returns them as they finish; async calls start computing at once.",
    params=(
        Param("method", "choice", "imap vs imap_unordered", "Which Pool method(s) to use",
              choices=("imap vs imap_unordered",) + METHODS),
        processes_param(5, "Worker processes (5 runs all five tasks at once, as in the notes)"),
        Param("tasks", "int", 5, "Number of tasks", 1, 200),
        Param("unit", "float", 1.0, "Task i takes (i+1) x unit seconds", 0.001, 10.0, unit="s"),
        Param("order", "choice", "slowest first", "Submission order of the task lengths",
              choices=("slowest first", "fastest first", "alternating")),
        Param("review", "float", 0.4, "Seconds the main process spends reviewing each result", 0.0, 10.0,
              unit="s"),
        Param("cpu", "bool", False, "Tasks burn CPU (true) or wait like I/O (false)"),
    ),
    run=run,
    category="Pool",
)
