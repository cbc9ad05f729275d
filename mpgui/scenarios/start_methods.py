"""The same Pool workload under spawn, fork and forkserver, side by side.

The notes' start methods: spawn starts a fresh interpreter that inherits only what the target needs (slowest),
fork copies the parent with copy-on-write and continues from the current point (fastest, Unix only),
forkserver asks a single-threaded server to fork each child (in between, Unix only).  Each method runs the
same workload: a Pool whose initializer receives a moderately large list, then a map of CPU tasks.  Start
(the Pool created until every worker has run its initializer), run (the map) and total (to the Pool joined)
are timed separately: the methods differ in the start, not in the run.

This scenario runs several start methods inside one run, each through ``core.get_context(method)``: the
``methods`` parameter picks them (all the platform has, by default; "chosen" runs only the run's start
method).  Helper processes a program starts once (the resource tracker; the forkserver's server, which
preloads this module as it would a script's top-level imports) are started before the timed workloads.
"""
import os
import pickle
import time

import core

from .base import Param, Result, Scenario, processes_param
from .start_cost import ALL_METHODS, methods_to_run, preload_forkserver
from .work import burn, burn_rate, wait_until_ready

_DATA = None


def init_worker(data, ready):
    """Pool initializer: keep the list for this worker's tasks, then say this worker is up."""
    global _DATA
    _DATA = data
    ready.put(os.getpid())


def cpu_task(iterations):
    """A CPU task (a fixed amount of work) that uses the list the initializer kept."""
    burn(iterations)
    return len(_DATA)


def start_helpers(methods):
    """Start the helpers a program starts once, so no method's timing pays for them."""
    if os.name != "posix" or methods == ("fork",):
        return
    from multiprocessing import resource_tracker
    resource_tracker.ensure_running()
    if "forkserver" in methods:
        from multiprocessing import forkserver
        forkserver.ensure_running()


def run_workload(mctx, method, p, data, iterations, report, done, total):
    n = p["processes"]
    t0 = time.perf_counter()
    ready = mctx.Queue(name="%s workers ready" % method)
    with mctx.Pool(n, initializer=init_worker, initargs=(data, ready)) as pool:
        wait_until_ready(ready, n)
        t1 = time.perf_counter()
        seen = set()
        for r in pool.imap_unordered(cpu_task, [iterations] * p["tasks"]):
            seen.add(r)
            done[0] += 1
            report.progress(done[0], total)
        t2 = time.perf_counter()
        pool.close()
        pool.join()
    t3 = time.perf_counter()
    ready.close()
    ready.join_thread()
    if seen != {len(data)}:                         # pragma: no cover - a worker saw another list
        raise RuntimeError("workers saw lists of %s items, not %d" % (sorted(seen), len(data)))
    return {"start_s": t1 - t0, "run_s": t2 - t1, "total_s": t3 - t0}


def run(ctx, p, report):
    methods = methods_to_run(p["methods"], ctx)
    total = p["tasks"] * len(methods)
    done = [0]
    preload_forkserver(methods, p["preload"], __name__)
    report.phase("helpers")
    start_helpers(methods)
    iterations = int(burn_rate() * p["task_ms"] / 1000.0)
    data = list(range(p["list_items"]))
    pickled_mb = len(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6
    report.line("the list: {:,} items, {:.1f} MB pickled; a task: {:,} iterations (about {:g} ms of CPU)".format(
        len(data), pickled_mb, iterations, p["task_ms"]))

    figures = {"methods": list(methods), "list_mb": pickled_mb, "processes": p["processes"]}
    rows = []
    for m in methods:
        report.phase(m)
        f = figures[m] = run_workload(core.get_context(m), m, p, data, iterations, report, done,
                                                total)
        rows.append((m, "%.3f s" % f["start_s"], "%.3f s" % f["run_s"], "%.3f s" % f["total_s"],
                     "copy-on-write" if m == "fork" else "pickled, %.1f MB per worker" % pickled_mb))
        report.line("%-10s start %.3f s, run %.3f s, total %.3f s" % (m, f["start_s"], f["run_s"], f["total_s"]))

    order = sorted(methods, key=lambda m: figures[m]["start_s"])
    figures["start_order"] = order
    n, items = p["processes"], "{:,}".format(len(data))
    if len(methods) > 1:
        runs = [figures[m]["run_s"] for m in methods]
        starts = ", ".join("%.3f s with %s" % (figures[m]["start_s"], m) for m in reversed(order))
        parts = ["Starting %d workers that each get a %s-item list took %s: %s is slowest to start, %s fastest%s."
                 % (n, items, starts, order[-1], order[0],
                    (", %s in between" % ", ".join(order[1:-1])) if len(order) > 2 else ""),
                 "The %d CPU tasks then took %s(%s); in total %s." % (
                     p["tasks"], "about the same under each " if max(runs) < 1.5 * min(runs) else "",
                     ", ".join("%.3f s" % figures[m]["run_s"] for m in reversed(order)),
                     ", ".join("%.3f s with %s" % (figures[m]["total_s"], m) for m in reversed(order)))]
    else:
        m = methods[0]
        f = figures[m]
        parts = ["With %s, starting %d workers that each get a %s-item list took %.3f s, the %d CPU tasks %.3f s, "
                 "%.3f s in total." % (m, n, items, f["start_s"], p["tasks"], f["run_s"], f["total_s"])]
    if "fork" in methods:
        parts.append("Fork handed the list over by copy-on-write;")
        others = [m for m in methods if m != "fork"]
        if others:
            parts[-1] += " %s pickled its %.1f MB for every worker." % (" and ".join(others), pickled_mb)
        else:
            parts[-1] += " nothing was pickled."
    else:
        parts.append("%s pickled the list's %.1f MB for every worker." % (" and ".join(methods).capitalize(),
                                                                          pickled_mb))
    return Result(" ".join(parts), figures, ("method", "start", "run", "total", "the list"), rows)


SCENARIO = Scenario(
    name="start_methods",
    title="spawn vs fork vs forkserver on the same workload",
    description="A Pool whose initializer gets a large list, then a map of CPU tasks, under every start method "
                "in one run. Start, run and total are timed apart: the methods differ in how they start.",
    lesson="spawn is slowest to start (a fresh interpreter, everything pickled), fork fastest (copy-on-write), "
           "forkserver in between.",
    params=(
        Param("methods", "choice", "all",
              "Start methods to compare: all the platform has, the run's chosen one, or one of them",
              choices=("all", "chosen") + ALL_METHODS),
        processes_param(4, "Pool workers"),
        Param("tasks", "int", 16, "CPU tasks in the map", 1, 10_000),
        Param("task_ms", "float", 50.0, "CPU time of each task", 0.0, 10_000.0, unit="ms"),
        Param("list_items", "int", 1_000_000, "Items in the list every worker gets", 0, 50_000_000),
        Param("preload", "bool", True, "The forkserver's server imports this scenario's module before forking "
                                       "(as it imports a script's __main__)"),
    ),
    run=run,
    category="Start methods",
)
