"""What starting a process costs under each start method, against the size of the task it runs.

Lesson 2 of the notes: starting a process costs up to hundreds of milliseconds, so a task shorter than that is
not worth a process.  For each start method, N processes each run one tiny task of T ms; each child sends back
the moment its target began, so the start latency (``start()`` called to the target's first line) is measured
per process.  The total (first ``start()`` to last ``join()``) is compared with running the same N tasks one
after another in the main process.

This scenario runs several start methods inside one run: every method of the ``methods`` parameter (all the
platform has, by default), each through ``core.get_context(method)``.  The start method chosen for the run is
used only when ``methods`` is "chosen".  The median latency is the figure that counts: the first
forkserver child also waits for the forkserver's own server to start, a cost a program pays once.

The forkserver's server imports ``__main__`` before it forks anything, so a script's children inherit its
top-level imports.  The main module of a scenario run is mpgui's entry point, which imports nothing; with
``preload`` (the default) the server also imports this module, as it would a script that imports its work at
the top.  Turn it off to see what every forkserver child pays when nothing is preloaded.
"""
import statistics
import time

import core

from .base import Param, Result, Scenario, processes_param
from .work import burn, burn_rate

ALL_METHODS = tuple(core.get_all_start_methods())


def methods_to_run(choice, ctx):
    if choice == "all":
        return ALL_METHODS
    if choice == "chosen":
        return (ctx.get_start_method(),)
    return (choice,)


def preload_forkserver(methods, preload, module=__name__):
    """Have the forkserver's server import ``module`` (and ``__main__``) before it forks children."""
    if preload and "forkserver" in methods and not forkserver_running():
        core.get_context("forkserver").set_forkserver_preload(["__main__", module])


def forkserver_running():
    from multiprocessing import forkserver
    return bool(getattr(forkserver._forkserver, "_forkserver_pid", None))


def tiny_task(conn, iterations):
    """The target: note when it began, do a fixed amount of CPU work, send both times back."""
    began = time.perf_counter()
    burn(iterations)
    conn.send((began, time.perf_counter()))
    conn.close()


def start_batch(mctx, method, n, iterations, report, done, total):
    """Start ``n`` processes at once, each running tiny_task; per-process latencies (s) and the total (s)."""
    procs, ends, called = [], [], []
    for i in range(n):
        r, w = mctx.Pipe(duplex=False, name="%s times %d" % (method, i))
        procs.append(mctx.Process(target=tiny_task, args=(w, iterations), name="%s-start-%d" % (method, i)))
        ends.append((r, w))
    latencies = []
    t0 = time.perf_counter()
    try:
        for p, (_r, w) in zip(procs, ends):
            called.append(time.perf_counter())
            p.start()
            w.close()                   # the child has its own copy now
        for i, (p, (r, _w)) in enumerate(zip(procs, ends)):
            try:
                began, _ = r.recv()
            except EOFError:
                p.join()
                raise RuntimeError("the %s child %s ended before its target ran (exit code %s)"
                                   % (method, p.name, p.exitcode)) from None
            r.close()
            p.join()
            latencies.append(began - called[i])
            done[0] += 1
            report.progress(done[0], total)
    finally:
        for p in procs:                 # nothing left running, whatever happened
            if p.pid is not None:
                p.join()
    return latencies, time.perf_counter() - t0


def run(ctx, p, report):
    methods = methods_to_run(p["methods"], ctx)
    n, seconds = p["processes"], p["task_ms"] / 1000.0
    total = n * len(methods) + n
    done = [0]
    preload_forkserver(methods, p["preload"])

    report.phase("in the main process")
    iterations = int(burn_rate() * seconds)
    t0 = time.perf_counter()
    for _ in range(n):
        burn(iterations)
        done[0] += 1
        report.progress(done[0], total)
    serial_s = time.perf_counter() - t0
    report.line("%d tasks of %.1f ms one after another in the main process: %.3f s" % (n, p["task_ms"], serial_s))

    figures = {"task_ms": p["task_ms"], "processes": n, "serial_s": serial_s, "methods": list(methods)}
    rows = []
    for m in methods:
        report.phase(m)
        mctx = core.get_context(m)
        server_was_up = m != "forkserver" or forkserver_running()
        lat, total_s = start_batch(mctx, m, n, iterations, report, done, total)
        med = statistics.median(lat)
        f = figures[m] = {"latency_median_ms": med * 1e3, "latency_first_ms": lat[0] * 1e3,
                          "latency_max_ms": max(lat) * 1e3, "latencies_ms": [x * 1e3 for x in lat],
                          "total_s": total_s, "worth_it": seconds > med}
        verdict = ("the task outlasts the start: a process can pay off" if f["worth_it"] else
                   "not worth a process: the task is shorter than the start")
        rows.append((m, "%.1f ms" % f["latency_median_ms"], "%.1f ms" % f["latency_max_ms"], "%.3f s" % total_s,
                     "%.3f s" % serial_s, verdict))
        report.line("%-10s start latency median %.1f ms (first %.1f, max %.1f); %d processes done in %.3f s"
                    % (m, f["latency_median_ms"], f["latency_first_ms"], f["latency_max_ms"], n, total_s))
        if not server_was_up:
            report.line("           (the first forkserver child also waited for the forkserver's own server to "
                        "start: a cost paid once per program)")

    by_cost = sorted(methods, key=lambda m: figures[m]["latency_median_ms"])
    lat_text = ", ".join("%s %.1f ms" % (m, figures[m]["latency_median_ms"]) for m in by_cost)
    worst = by_cost[-1]
    parts = ["Median time from start() to the target's first line: %s." % lat_text,
             "%d tasks of %.1f ms took %.3f s in the main process against %s with one process each." % (
                 n, p["task_ms"], serial_s,
                 ", ".join("%.3f s (%s)" % (figures[m]["total_s"], m) for m in by_cost))]
    losers = [m for m in by_cost if not figures[m]["worth_it"]]
    if losers:
        parts.append("A %.1f ms task is not worth a process with %s: it must run longer than the start "
                     "(%.1f ms with %s) to pay for it." % (p["task_ms"], " or ".join(losers),
                                                           figures[worst]["latency_median_ms"], worst))
    else:
        parts.append("A %.1f ms task outlasts even the slowest start (%.1f ms with %s), so a process pays for "
                     "itself; shorter tasks would not." % (p["task_ms"], figures[worst]["latency_median_ms"],
                                                          worst))
    return Result(" ".join(parts), figures,
                  ("method", "start latency (median)", "start latency (max)", "%d processes" % n,
                   "in main process", "verdict"), rows)


SCENARIO = Scenario(
    name="start_cost",
    title="Process start cost per start method vs task size",
    description="N processes each run one tiny task, under every start method in one run. Each child reports "
                "when its target began: the start latency, compared with the task's own length.",
    lesson="Starting a process costs milliseconds (fork) to hundreds of milliseconds (spawn): a task shorter "
           "than that is not worth a process.",
    params=(
        Param("methods", "choice", "all",
              "Start methods to measure: all the platform has, the run's chosen one, or one of them",
              choices=("all", "chosen") + ALL_METHODS),
        processes_param(4, "Processes started per start method"),
        Param("task_ms", "float", 10.0, "CPU time of each tiny task", 0.0, 10_000.0, unit="ms"),
        Param("preload", "bool", True, "The forkserver's server imports this scenario's module before forking "
                                       "(as it imports a script's __main__)"),
    ),
    run=run,
    category="Start methods",
)
