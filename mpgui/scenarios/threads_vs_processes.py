"""Threads against processes on CPU-bound and on I/O-bound work.

Lesson 1 of the notes: threads for I/O-bound work, processes for CPU-bound work.  The same tasks run three
ways: one after another in the main process (the baseline), on a thread pool (``multiprocessing.dummy.Pool``)
and on a process pool, each pool with the same number of workers.  CPU tasks are a fixed amount of
pure-Python work (not a fixed time), so threads sharing the GIL have to take turns on it; I/O tasks sleep,
which releases the GIL.  The speedups over the baseline show the lesson; the process pool's start-up (workers
up before the timed run) is reported on its own, since threads pay none.  Every task also measures the CPU
time of its thread, so each run says how many cores it kept busy (CPU seconds over wall seconds): threads
can never pass one on CPU-bound work, whatever the machine's load; processes can, up to its core count.
"""
import os
import threading
import time

from core import dummy
from .base import Param, Result, Scenario, processes_param
from .work import burn, burn_rate, signal_ready, wait_until_ready


def task(kind, size):
    """One task: ``size`` iterations of CPU work (kind "cpu") or ``size`` seconds of waiting (kind "io").
    Returns (pid, thread id, start, end, CPU seconds of its thread) with perf_counter times (one clock for
    every process)."""
    c0 = time.thread_time()
    t0 = time.perf_counter()
    if kind == "cpu":
        burn(size)
    else:
        time.sleep(size)
    return os.getpid(), threading.get_ident(), t0, time.perf_counter(), time.thread_time() - c0


def task_args(args):
    return task(*args)


def run_serial(items, report, done, total):
    t0 = time.perf_counter()
    out = []
    for it in items:
        out.append(task_args(it))
        done[0] += 1
        report.progress(done[0], total)
    return time.perf_counter() - t0, out


def cores_busy(out, seconds):
    """CPU seconds of all the tasks over the wall-clock seconds they took: how many cores they kept busy."""
    return sum(r[4] for r in out) / max(seconds, 1e-9)


def run_pool(pool, items, report, done, total):
    t0 = time.perf_counter()
    out = []
    for r in pool.imap_unordered(task_args, items):
        out.append(r)
        done[0] += 1
        report.progress(done[0], total)
    return time.perf_counter() - t0, out


def run(ctx, p, report):
    n, workers, secs = p["tasks"], p["processes"], p["task_s"]
    kinds = ("cpu", "io") if p["kind"] == "both" else (p["kind"],)
    total = 3 * n * len(kinds)
    done = [0]
    sizes = {}
    if "cpu" in kinds:
        report.phase("calibrate")
        rate = burn_rate()
        sizes["cpu"] = max(1, int(rate * secs))
        report.line("calibrated: %.1f million iterations of pure-Python work per second on one core; a CPU "
                    "task is %d iterations (about %.2f s)" % (rate / 1e6, sizes["cpu"], secs))
    sizes["io"] = secs

    # The process pool first: forking later, while the thread pool's threads run, is what lesson 14 warns of.
    report.phase("start the process pool")
    t0 = time.perf_counter()
    ready = ctx.Queue(name="workers ready")
    figures = {k: {} for k in kinds}
    rows = []
    with ctx.Pool(workers, initializer=signal_ready, initargs=(ready,)) as pool:
        wait_until_ready(ready, workers)
        start_s = time.perf_counter() - t0
        report.line("process pool: %d workers up in %.3f s (%s)" % (workers, start_s, ctx.get_start_method()))
        for kind in kinds:
            report.phase("%s-bound on processes" % kind)
            secs_p, out = run_pool(pool, [(kind, sizes[kind])] * n, report, done, total)
            figures[kind]["processes_s"] = secs_p
            figures[kind]["process_pids"] = len({r[0] for r in out})
            figures[kind]["process_cores_busy"] = cores_busy(out, secs_p)
            report.line("%s-bound, %d processes: %.3f s, %.2f cores busy" % (kind, workers, secs_p,
                                                                          figures[kind]["process_cores_busy"]))
        pool.close()
        pool.join()
    ready.close()
    ready.join_thread()

    for kind in kinds:
        report.phase("%s-bound on threads" % kind)
        with dummy.Pool(workers) as tpool:
            secs_t, out = run_pool(tpool, [(kind, sizes[kind])] * n, report, done, total)
        figures[kind]["threads_s"] = secs_t
        figures[kind]["thread_pids"] = len({r[0] for r in out})
        figures[kind]["thread_cores_busy"] = cores_busy(out, secs_t)
        report.line("%s-bound, %d threads:   %.3f s, %.2f cores busy" % (kind, workers, secs_t,
                                                                        figures[kind]["thread_cores_busy"]))

        report.phase("%s-bound in series" % kind)
        secs_s, out = run_serial([(kind, sizes[kind])] * n, report, done, total)
        figures[kind]["serial_s"] = secs_s
        figures[kind]["serial_cores_busy"] = cores_busy(out, secs_s)
        report.line("%s-bound, in series:    %.3f s" % (kind, secs_s))

    for kind in kinds:
        f = figures[kind]
        f["thread_speedup"] = f["serial_s"] / f["threads_s"]
        f["process_speedup"] = f["serial_s"] / f["processes_s"]
        rows.append((kind + "-bound", "%.3f s" % f["serial_s"], "%.3f s" % f["threads_s"],
                     "%.3f s" % f["processes_s"], "%.2fx" % f["thread_speedup"], "%.2fx" % f["process_speedup"],
                     "%.2f / %.2f" % (f["thread_cores_busy"], f["process_cores_busy"])))
    figures["pool_start_s"] = start_s
    figures["cores"] = os.cpu_count()

    parts = []
    if "cpu" in figures:
        f = figures["cpu"]
        parts.append("CPU-bound: %d processes ran %.2fx faster than one thread in series (they kept %.2f cores "
                     "busy), %d threads only %.2fx (%.2f cores: the GIL lets one thread compute at a time)."
                     % (workers, f["process_speedup"], f["process_cores_busy"], workers, f["thread_speedup"],
                        f["thread_cores_busy"]))
    if "io" in figures:
        f = figures["io"]
        parts.append("I/O-bound: threads ran %.2fx faster, processes %.2fx, but the processes first took %.3f s "
                     "to start." % (f["thread_speedup"], f["process_speedup"], start_s))
    parts.append("Use threads for I/O-bound work and processes for CPU-bound work (this machine has %d cores)."
                 % figures["cores"])
    return Result(" ".join(parts), figures,
                  ("work", "in series", "%d threads" % workers, "%d processes" % workers, "thread speedup",
                   "process speedup", "cores busy (threads / processes)"), rows)


SCENARIO = Scenario(
    name="threads_vs_processes",
    title="Threads vs processes on CPU-bound and I/O-bound work",
    description="The same tasks run in series, on a thread pool and on a process pool. CPU tasks are fixed "
                "pure-Python work, I/O tasks sleep; the speedups show which kind of worker suits which work.",
    lesson="Threads for I/O-bound work (the GIL is released while waiting), processes for CPU-bound work.",
    params=(
        processes_param(4, "Workers in each pool (threads and processes alike)"),
        Param("tasks", "int", 8, "Tasks per run", 1, 1000),
        Param("task_s", "float", 0.25, "Seconds one task takes on its own", 0.001, 10.0, unit="s"),
        Param("kind", "choice", "both", "Which work to run", choices=("both", "cpu", "io")),
    ),
    run=run,
    category="Basics",
)
