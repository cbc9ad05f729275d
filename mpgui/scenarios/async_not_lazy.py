"""Async Pool calls start computing at once: nothing is lazy, unlike the builtin map.

Lesson 19 of the notes.  ``pool.map_async`` (and ``pool.imap``, which looks like the builtin ``map``) hand
the tasks to the workers the moment they are called; the main process is free to do other work meanwhile,
and when it finally asks for the results they are (mostly) ready.  The builtin ``map`` is lazy: it computes
nothing until it is iterated.

Each way, the main process makes the call, then does ``other_s`` seconds of its own work, then collects the
results.  Every task records when it started and ended (perf_counter, one clock for all processes), so the
figures say how many tasks were computed during the other work, when the first one started after the call,
and how long collecting the results then took.
"""
import os
import time

from .base import Param, Result, Scenario, processes_param
from .work import signal_ready, spin, wait_until_ready


def stamped(args):
    """One task: (index, started, ended, pid) around ``seconds`` of waiting or CPU."""
    index, seconds, cpu = args
    t0 = time.perf_counter()
    if cpu:
        spin(seconds)
    else:
        time.sleep(seconds)
    return index, t0, time.perf_counter(), os.getpid()


def measure(label, call, collect, items, other_s, report):
    """Call, do other work for ``other_s``, collect; the timings of each stage."""
    t_call = time.perf_counter()
    handle = call(items)
    returned = time.perf_counter() - t_call
    report.line("%-12s the call returned after %.4f s; now the main process works for %.2f s"
                % (label, returned, other_s))
    spin(other_s)                                   # the main process's own work
    t_collect = time.perf_counter()
    out = collect(handle)
    t_done = time.perf_counter()
    starts = [r[1] for r in out]
    ends = [r[2] for r in out]
    f = {"call_s": returned, "first_start_s": min(starts) - t_call, "last_end_s": max(ends) - t_call,
         "done_during_other_work": sum(1 for e in ends if e <= t_collect), "collect_s": t_done - t_collect,
         "total_s": t_done - t_call, "tasks": len(out)}
    report.line("%-12s first task started %.3f s after the call; %d of %d tasks done during the other work; "
                "collecting the results took %.3f s" % (label, f["first_start_s"], f["done_during_other_work"],
                                                       len(out), f["collect_s"]))
    return f


def run(ctx, p, report):
    items = [(i, p["task_s"], p["cpu"]) for i in range(p["tasks"])]
    other = p["other_s"]
    figures = {"other_s": other, "tasks": p["tasks"]}
    rows = []
    ready = ctx.Queue(name="workers ready")
    with ctx.Pool(p["processes"], initializer=signal_ready, initargs=(ready,)) as pool:
        wait_until_ready(ready, p["processes"])
        ways = (("map_async", "pool.map_async", lambda it: pool.map_async(stamped, it, chunksize=1),
                 lambda h: h.get()),
                ("imap", "pool.imap", lambda it: pool.imap(stamped, it), list),
                ("builtin_map", "builtin map", lambda it: map(stamped, it), list))
        for i, (key, label, call, collect) in enumerate(ways):
            report.phase(label)
            f = figures[key] = measure(label, call, collect, items, other, report)
            report.progress(i + 1, len(ways))
            rows.append((label, "%.4f s" % f["call_s"], "%.3f s" % f["first_start_s"],
                         "%d of %d" % (f["done_during_other_work"], f["tasks"]), "%.3f s" % f["collect_s"],
                         "%.3f s" % f["total_s"]))
        pool.close()
        pool.join()
    ready.close()
    ready.join_thread()
    a, m, b = figures["map_async"], figures["imap"], figures["builtin_map"]
    lesson = ("pool.map_async returned in %.4f s and its first task started %.3f s after the call; after %.2f s of "
              "other work in the main process %d of %d tasks were done and get() took %.3f s. pool.imap is just "
              "as eager: %d of %d done meanwhile, list() then took %.3f s. The builtin map computed %d tasks "
              "during the same %.2f s (its first task started %.3f s after the call) and took %.3f s when "
              "iterated: Pool calls start computing at once; nothing is lazy."
              % (a["call_s"], a["first_start_s"], other, a["done_during_other_work"], a["tasks"], a["collect_s"],
                 m["done_during_other_work"], m["tasks"], m["collect_s"], b["done_during_other_work"], other,
                 b["first_start_s"], b["collect_s"]))
    return Result(lesson, figures, ("call", "call returned", "first task started", "done during other work",
                                    "collecting took", "total"), rows)


SCENARIO = Scenario(
    name="async_not_lazy",
    title="Async Pool calls are not lazy",
    description="map_async, imap and the builtin map are each called, then the main process works for a while, "
                "then collects the results: the Pool computed meanwhile, the builtin map did not.",
    lesson="Async Pool calls start computing at once; nothing is lazy (unlike the builtin map).",
    params=(
        processes_param(4),
        Param("tasks", "int", 8, "Tasks per call", 1, 10_000),
        Param("task_s", "float", 0.25, "Length of a task", 0.001, 60.0, unit="s"),
        Param("other_s", "float", 1.0, "The main process's own work after each call", 0.0, 60.0, unit="s"),
        Param("cpu", "bool", False, "Tasks burn CPU (true) or wait like I/O (false)"),
    ),
    run=run,
    category="Pool",
)
