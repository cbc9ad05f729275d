"""maxtasksperchild: recycling workers that leak.

Lesson 13 of the notes: ``Pool(maxtasksperchild=N)`` replaces a worker after N tasks, which guards against
leaks and bloat.  Every task here leaks on purpose: it appends a block of memory to a module-level list and
never lets go, then measures its worker's resident memory (RSS) and returns it.  The same tasks run on a
Pool without maxtasksperchild (the same workers run everything and keep growing) and on one with it (workers
are replaced, each new one starts small).  The figures: worker pids used, tasks per worker, peak RSS and how
far a worker grew past its own starting size.

Tasks go one at a time (chunksize=1): the Pool counts a chunk as one task, so a larger chunksize would let a
worker run chunksize x maxtasksperchild tasks before it is replaced.
"""
import os
import time
from collections import defaultdict

from .base import Param, Result, Scenario, processes_param

MB = 1024 * 1024
_LEAK = []          # what this worker's tasks never let go of
_PROC = None


def rss():
    """This process's resident memory in bytes."""
    global _PROC
    try:
        import psutil
        if _PROC is None:
            _PROC = psutil.Process()
        return _PROC.memory_info().rss
    except ImportError:                             # pragma: no cover - psutil is a dependency
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def leaky_task(args):
    """Leak ``leak_mb`` (bytes written, so really resident), wait, and report (index, pid, RSS before, after)."""
    index, leak_mb, seconds = args
    before = rss()
    _LEAK.append(b"\x01" * int(leak_mb * MB))
    if seconds:
        time.sleep(seconds)
    return index, os.getpid(), before, rss()


def run_variant(ctx, p, maxtasks, label, report, done, total):
    items = [(i, p["leak_mb"], p["task_ms"] / 1000.0) for i in range(p["tasks"])]
    per_pid = defaultdict(list)
    t0 = time.perf_counter()
    with ctx.Pool(p["processes"], maxtasksperchild=maxtasks) as pool:
        for _index, pid, before, after in pool.imap_unordered(leaky_task, items, chunksize=1):
            per_pid[pid].append((before, after))
            done[0] += 1
            report.progress(done[0], total)
        pool.close()
        pool.join()
    secs = time.perf_counter() - t0
    growth = {pid: max(a for _, a in rs) - min(b for b, _ in rs) for pid, rs in per_pid.items()}
    f = {"maxtasksperchild": maxtasks or 0, "seconds": secs, "pids": sorted(per_pid), "workers_used": len(per_pid),
         "max_tasks_per_worker": max(len(rs) for rs in per_pid.values()),
         "peak_rss_mb": max(a for rs in per_pid.values() for _, a in rs) / MB,
         "max_growth_mb": max(growth.values()) / MB}
    report.line("%-24s %d workers used, up to %d tasks each; peak RSS %.1f MB, a worker grew by up to %.1f MB "
                "(%.2f s)" % (label, f["workers_used"], f["max_tasks_per_worker"], f["peak_rss_mb"],
                              f["max_growth_mb"], secs))
    return f


def run(ctx, p, report):
    k = p["maxtasksperchild"]
    total = 2 * p["tasks"]
    done = [0]
    figures = {"leak_mb": p["leak_mb"], "tasks": p["tasks"]}
    rows = []
    for key, maxtasks, label in (("without", None, "without maxtasksperchild"),
                                 ("with", k, "maxtasksperchild=%d" % k)):
        report.phase(label)
        f = figures[key] = run_variant(ctx, p, maxtasks, label, report, done, total)
        rows.append((label, f["workers_used"], f["max_tasks_per_worker"], "%.1f MB" % f["peak_rss_mb"],
                     "%.1f MB" % f["max_growth_mb"], "%.2f s" % f["seconds"]))
    w, o = figures["with"], figures["without"]
    lesson = ("Every task leaked %g MB. Without maxtasksperchild %d workers ran all %d tasks (up to %d each) and "
              "one grew by %.0f MB (peak RSS %.0f MB); with maxtasksperchild=%d, %d workers took turns (up to %d "
              "tasks each) and none grew by more than %.0f MB (peak RSS %.0f MB). The recycling Pool took %.2f s "
              "against %.2f s, starting %d replacement workers with %s." % (
                  p["leak_mb"], o["workers_used"], p["tasks"], o["max_tasks_per_worker"], o["max_growth_mb"],
                  o["peak_rss_mb"], k, w["workers_used"], w["max_tasks_per_worker"], w["max_growth_mb"],
                  w["peak_rss_mb"], w["seconds"], o["seconds"], w["workers_used"] - p["processes"],
                  ctx.get_start_method()))
    return Result(lesson, figures, ("pool", "workers used", "tasks per worker (max)", "peak RSS",
                                    "growth of a worker (max)", "time"), rows)


SCENARIO = Scenario(
    name="maxtasksperchild",
    title="maxtasksperchild: recycling workers that leak",
    description="Every task leaks a block of memory and reports its worker's RSS. Without maxtasksperchild the "
                "workers keep growing; with it they are replaced after N tasks and stay small.",
    lesson="maxtasksperchild replaces a worker after N tasks, which bounds what leaks and bloat can grow to.",
    params=(
        processes_param(2),
        Param("tasks", "int", 40, "Tasks per Pool", 1, 10_000),
        Param("leak_mb", "float", 5.0, "Memory each task leaks", 0.0, 200.0, unit="MB"),
        Param("maxtasksperchild", "int", 5, "Tasks before a worker is replaced", 1, 10_000),
        Param("task_ms", "float", 20.0, "Extra time each task waits", 0.0, 10_000.0, unit="ms"),
    ),
    run=run,
    category="Pool",
)
