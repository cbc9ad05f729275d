"""chunksize: even spreading against IPC cost.

Lesson 12 of the notes: with chunksize=1 the Pool hands out one task at a time, so work spreads evenly but
every task pays a round trip through the Pool's queues; a large chunksize cuts that IPC but hands a worker a
whole chunk at once, and a chunk can hold several long tasks.

Two measurements on one Pool (its workers up before anything is timed):

* stragglers: a few long tasks among many short ones, mapped with chunksize=1 and with a large chunksize.
  The long tasks sit together in the input (as in sorted input), so a large chunk gathers them; each task
  returns the worker that ran it, which gives every worker's load and the imbalance (busiest / mean).
* IPC: many tiny tasks mapped with chunksize=1 and with a large chunksize; the time per task is the IPC.
  The stdlib's Pool sends every chunk as its own message through one shared queue, so there chunksize=1
  pays a round trip per task.  core's Pool packs short chunks into one message per batch, which hides most
  of that cost; by default the tiny tasks run on both (the stdlib's Pool on core's traced processes), so
  the figures show the lesson as the notes mean it and what core's Pool makes of it.
"""
import math
import time
from collections import Counter

from .base import Param, Result, Scenario, processes_param
from .work import noop, signal_ready, timed_task_args, wait_until_ready


def straggler_items(p):
    """(index, seconds, cpu) per task: ``long_tasks`` long ones together at the start, or spread evenly."""
    n, k = p["tasks"], min(p["long_tasks"], p["tasks"])
    if p["placement"] == "together":
        long_at = set(range(k))
    else:
        long_at = {int(i * n / k) for i in range(k)} if k else set()
    return [(i, (p["long_ms"] if i in long_at else p["short_ms"]) / 1000.0, p["cpu"]) for i in range(n)]


def run_stragglers(pool, pids, items, chunksize, report, done, total):
    t0 = time.perf_counter()
    results = pool.map(timed_task_args, items, chunksize=chunksize)
    secs = time.perf_counter() - t0
    done[0] += len(items)
    report.progress(done[0], total)
    load = Counter({pid: 0.0 for pid in pids})
    count = Counter()
    for _, seconds, pid in results:
        load[pid] += seconds
        count[pid] += 1
    mean = sum(load.values()) / len(pids)
    imbalance = max(load.values()) / mean if mean > 0 else 1.0
    return {"seconds": secs, "loads": sorted(load.values(), reverse=True), "imbalance": imbalance,
            "tasks_per_worker": sorted(count.values(), reverse=True),
            "chunks": math.ceil(len(items) / chunksize)}


def run_tiny(pool, n, chunksize, report, done, total):
    t0 = time.perf_counter()
    out = pool.map(noop, range(n), chunksize=chunksize)
    secs = time.perf_counter() - t0
    if out != list(range(n)):                       # pragma: no cover - a broken pool
        raise RuntimeError("the tiny tasks came back wrong")
    done[0] += n
    report.progress(done[0], total)
    return {"seconds": secs, "us_per_task": secs / n * 1e6, "chunks": math.ceil(n / chunksize)}


POOLS = {"stdlib": "the stdlib's Pool", "core": "core's Pool"}


def stdlib_pool(ctx, processes, **kwds):
    """The stdlib's Pool (one message per chunk through a shared queue) on core's traced processes."""
    from multiprocessing import pool as std_pool
    return std_pool.Pool(processes, context=ctx, **kwds)


def run_ipc(pool, kind, p, figures, rows, report, done, total):
    for cs in (1, p["tiny_chunksize"]):
        report.phase("tiny tasks, %s, chunksize %d" % (kind, cs))
        f = figures["ipc"].setdefault(kind, {})[cs] = run_tiny(pool, p["tiny_tasks"], cs, report, done, total)
        rows.append(("{:,} tiny tasks, {}".format(p["tiny_tasks"], POOLS[kind]), cs, f["chunks"],
                     "%.3f s" % f["seconds"], "%.1f us per task" % f["us_per_task"], ""))
        report.line("tiny tasks, %-18s chunksize %-4d %.3f s (%.1f us per task)"
                    % (POOLS[kind] + ",", cs, f["seconds"], f["us_per_task"]))


def run(ctx, p, report):
    big, tiny_big = p["big_chunksize"], p["tiny_chunksize"]
    items = straggler_items(p)
    ipc_pools = ("stdlib", "core") if p["ipc_pools"] == "both" else (p["ipc_pools"],)
    total = 2 * len(items) + 2 * p["tiny_tasks"] * len(ipc_pools)
    done = [0]
    figures = {"stragglers": {}, "ipc": {}}
    rows = []
    ready = ctx.Queue(name="workers ready")
    with ctx.Pool(p["processes"], initializer=signal_ready, initargs=(ready,)) as pool:
        pids = wait_until_ready(ready, p["processes"])
        for cs in (1, big):
            report.phase("stragglers, chunksize %d" % cs)
            f = figures["stragglers"][cs] = run_stragglers(pool, pids, items, cs, report, done, total)
            rows.append(("%d tasks, %d long" % (len(items), p["long_tasks"]), cs, f["chunks"],
                         "%.3f s" % f["seconds"], " / ".join("%.2f" % x for x in f["loads"]) + " s",
                         "%.2fx" % f["imbalance"]))
            report.line("stragglers, chunksize %-4d %.3f s; load per worker %s s; busiest/mean %.2fx"
                        % (cs, f["seconds"], " / ".join("%.2f" % x for x in f["loads"]), f["imbalance"]))
        if "core" in ipc_pools:
            run_ipc(pool, "core", p, figures, rows, report, done, total)
        pool.close()
        pool.join()
    if "stdlib" in ipc_pools:
        with stdlib_pool(ctx, p["processes"], initializer=signal_ready, initargs=(ready,)) as pool:
            wait_until_ready(ready, p["processes"])
            run_ipc(pool, "stdlib", p, figures, rows, report, done, total)
            pool.close()
            pool.join()
    ready.close()
    ready.join_thread()

    s1, sb = figures["stragglers"][1], figures["stragglers"][big]
    where = "landed together on one worker" if sb["loads"][0] >= p["long_tasks"] * p["long_ms"] / 1000.0 \
        else "crowded onto fewer workers"
    if p["placement"] == "spread":
        where = "were spread through the input"
    lesson = ("With chunksize %d the %d long tasks %s: %.2f s in all, the busiest worker carried %.2fx the mean "
              "load; with chunksize 1 they spread out: %.2f s, %.2fx." % (
                  big, p["long_tasks"], where, sb["seconds"], sb["imbalance"], s1["seconds"], s1["imbalance"]))
    n = "{:,}".format(p["tiny_tasks"])
    for i, kind in enumerate(ipc_pools):
        one, many = figures["ipc"][kind][1], figures["ipc"][kind][tiny_big]
        if kind == "stdlib":
            lesson += (" But chunksize 1 pays IPC for every task: with the stdlib's Pool %s tiny tasks took %.3f s "
                       "(%.1f us each) against %.3f s (%.1f us each) with chunksize %d." % (
                           n, one["seconds"], one["us_per_task"], many["seconds"], many["us_per_task"], tiny_big))
        else:
            lesson += (" %s's Pool packs short tasks into batches itself: there chunksize 1 took %.3f s (%.1f us "
                       "each) against %.3f s (%.1f us each) with chunksize %d." % (
                           "Core" if i == 0 else "core", one["seconds"], one["us_per_task"], many["seconds"],
                           many["us_per_task"], tiny_big))
    figures["big_chunksize"] = big
    figures["tiny_chunksize"] = tiny_big
    return Result(lesson, figures, ("tasks", "chunksize", "chunks", "time", "load per worker / IPC",
                                    "busiest / mean"), rows)


SCENARIO = Scenario(
    name="chunksize",
    title="chunksize: stragglers against IPC cost",
    description="A few long tasks among short ones, mapped with chunksize 1 and with a large chunksize (per-"
                "worker load and imbalance); then many tiny tasks with both (the IPC cost per task).",
    lesson="chunksize=1 spreads work evenly but pays IPC per task; a large chunksize cuts IPC but can land "
           "several long tasks on one worker.",
    params=(
        processes_param(4),
        Param("tasks", "int", 32, "Tasks in the straggler map", 1, 10_000),
        Param("long_tasks", "int", 4, "How many of them are long", 0, 10_000),
        Param("short_ms", "float", 20.0, "Length of a short task", 0.0, 10_000.0, unit="ms"),
        Param("long_ms", "float", 500.0, "Length of a long task", 0.0, 60_000.0, unit="ms"),
        Param("placement", "choice", "together", "Where the long tasks sit in the input",
              choices=("together", "spread")),
        Param("big_chunksize", "int", 8, "The large chunksize", 2, 100_000),
        Param("cpu", "bool", False, "Tasks burn CPU (true) or wait like I/O (false)"),
        Param("tiny_tasks", "int", 10_000, "Tiny tasks in the IPC map", 1, 1_000_000),
        Param("tiny_chunksize", "int", 500, "The large chunksize for the tiny tasks", 2, 1_000_000),
        Param("ipc_pools", "choice", "both", "Pools the tiny tasks run on: the stdlib's (one message per chunk), "
              "core's (packs short chunks into batches), or both", choices=("both", "stdlib", "core")),
    ),
    run=run,
    category="Pool",
)
