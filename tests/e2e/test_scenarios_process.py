"""The process scenarios (threads vs processes, start methods, chunksize, recycling, sharing, guards, forking
with threads, lifecycle, async) run headless with small parameters under each start method: their figures
make their lesson true, and the run file records what the lesson needs.

No assertion depends on a wall-clock figure: they compare counts, orders, exit codes and memory, or
magnitudes an order apart.  Where a comparison needs free cores (threads against processes on CPU-bound
work), it is made only when the machine is not busy.
"""
import math
import multiprocessing
from collections import Counter

import numpy as np
import pytest

from core.trace.model import Span, SpanEnd

from scenario_testing import run_scenario


def procs_named(model, prefix):
    return [p for p in model.procs.values() if p.name.startswith(prefix)]


def workers(model, method):
    return [p for p in model.procs.values() if p.role == "worker" and p.method == method]


def phases(model):
    return [m[2] for m in model.marks if m[3] is None]


def pool_jobs(model):
    """{(pool uid, job id): tasks of that job}, jobs in submission order."""
    tasks = model.tasks_array()
    out = {}
    for key in sorted(model.jobs, key=lambda k: model.jobs[k]["submitted"]):
        sel = tasks[(tasks["pool"] == key[0]) & (tasks["job"] == key[1])]
        out[key] = sel[np.argsort(sel["index"])]
    return out


# -- 1. threads vs processes ---------------------------------------------------------------------------------

def test_threads_vs_processes(tmp_path, start_method):
    r = run_scenario("threads_vs_processes", start_method,
                     {"processes": 2, "tasks": 4, "task_s": 0.08, "kind": "both"}, tmp_path)
    assert r.status == "done", r.error
    cpu, io = r.figures["cpu"], r.figures["io"]
    # The GIL: threads never keep more than one core busy on pure-Python work, whatever the load.
    assert cpu["thread_cores_busy"] < 1.15
    # Waiting releases the GIL: 4 sleeps on 2 threads take about half the time of 4 in a row.
    assert io["thread_speedup"] > 1.5 and io["process_speedup"] > 1.5
    assert io["thread_pids"] == 1 and cpu["process_pids"] >= 1
    # Processes compute at the same time: the CPU-bound tasks ran on both workers, overlapping in time.
    # (How much faster that is depends on how busy the machine is, so it is the lesson's figure, not a test.)
    tasks = r.model.tasks_array()
    first_job = tasks[tasks["job"] == tasks["job"].min()]
    assert len(set(first_job["worker"].tolist())) == 2
    a, b = (first_job[first_job["worker"] == w] for w in set(first_job["worker"].tolist()))
    assert any(x0 < y1 and y0 < x1 for x0, x1 in zip(a["start"], a["end"]) for y0, y1 in zip(b["start"], b["end"]))
    assert "CPU-bound: 2 processes ran" in r.lesson and "I/O-bound: threads ran" in r.lesson
    # Only the process pool's workers are processes (the threads are not): two, with the run's start method.
    ws = workers(r.model, start_method)
    assert len(ws) == 2 and all(w.exitcode == 0 for w in ws)
    assert not [p for p in r.model.procs.values() if p.role in ("worker", "process") and p not in ws]
    assert len(r.model.tasks_array()) == 8               # 4 CPU + 4 I/O tasks on the process pool
    assert {"cpu-bound on threads", "io-bound on processes", "cpu-bound in series"} <= set(phases(r.model))


# -- 2. start cost -------------------------------------------------------------------------------------------

def test_start_cost_one_method(tmp_path, start_method):
    r = run_scenario("start_cost", start_method, {"methods": "chosen", "processes": 3, "task_ms": 2}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures[start_method]
    assert r.figures["methods"] == [start_method]
    assert len(f["latencies_ms"]) == 3 and all(x > 0 for x in f["latencies_ms"])
    assert f["latency_median_ms"] <= f["latency_max_ms"]
    started = procs_named(r.model, start_method + "-start-")
    assert len(started) == 3
    assert {p.method for p in started} == {start_method} and all(p.exitcode == 0 for p in started)
    if start_method == "spawn":                          # a fresh interpreter takes longer than a 2 ms task
        assert not f["worth_it"] and "not worth a process with spawn" in r.lesson


def test_start_cost_compares_methods(tmp_path):
    methods = [m for m in ("fork", "spawn") if m in multiprocessing.get_all_start_methods()]
    if len(methods) < 2:
        pytest.skip("needs fork and spawn")
    r = run_scenario("start_cost", "spawn", {"methods": "all", "processes": 3, "task_ms": 2}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    assert f["spawn"]["latency_median_ms"] > 2 * f["fork"]["latency_median_ms"]
    assert "Median time from start() to the target's first line" in r.lesson
    # every method's processes were recorded with their own start method
    for m in f["methods"]:
        assert {p.method for p in procs_named(r.model, m + "-start-")} == {m}
    model_lat = {m: np.median([p.start_latency for p in procs_named(r.model, m + "-start-")]) for m in methods}
    assert model_lat["spawn"] > model_lat["fork"]


# -- 3. start methods side by side ---------------------------------------------------------------------------

def test_start_methods_one_method(tmp_path, start_method):
    r = run_scenario("start_methods", start_method, {"methods": "chosen", "processes": 2, "tasks": 4,
                                                     "task_ms": 10, "list_items": 100_000}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures[start_method]
    assert 0 < f["start_s"] < f["total_s"] and 0 < f["run_s"] < f["total_s"]
    ws = workers(r.model, start_method)
    assert len(ws) == 2 and all(w.exitcode == 0 for w in ws)
    assert len(r.model.tasks_array()) == 4
    assert ("copy-on-write" in r.lesson) == (start_method == "fork")


def test_start_methods_compares_methods(tmp_path):
    have = multiprocessing.get_all_start_methods()
    if not {"fork", "spawn", "forkserver"} <= set(have):
        pytest.skip("needs fork, spawn and forkserver")
    r = run_scenario("start_methods", "fork", {"methods": "all", "processes": 2, "tasks": 4, "task_ms": 10,
                                               "list_items": 200_000}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    # which method starts fastest is what the run measures (on a busy machine forkserver and spawn can swap):
    # the order and the lesson must say what was measured
    order = f["start_order"]
    assert sorted(order) == ["fork", "forkserver", "spawn"]
    starts = [f[m]["start_s"] for m in order]
    assert all(s > 0 for s in starts) and starts == sorted(starts)
    assert "%s is slowest to start, %s fastest, %s in between" % (order[2], order[0], order[1]) in r.lesson
    for m in order:
        assert "%.3f s with %s" % (f[m]["start_s"], m) in r.lesson
    for m in ("fork", "spawn", "forkserver"):
        assert len(workers(r.model, m)) == 2
    assert [p for p in r.model.procs.values() if p.role == "forkserver"]


# -- 4. chunksize --------------------------------------------------------------------------------------------

def test_chunksize(tmp_path, start_method):
    r = run_scenario("chunksize", start_method,
                     {"processes": 2, "tasks": 8, "long_tasks": 2, "short_ms": 5, "long_ms": 250,
                      "big_chunksize": 4, "tiny_tasks": 2000, "tiny_chunksize": 200}, tmp_path)
    assert r.status == "done", r.error
    s1, sb = r.figures["stragglers"]["1"], r.figures["stragglers"]["4"]
    # chunk 0 holds both long tasks: one worker carries 0.51 s, the other 0.02 s
    assert sb["imbalance"] > s1["imbalance"] + 0.4
    assert s1["imbalance"] < 1.4 and sb["imbalance"] > 1.6
    assert sb["chunks"] == 2 and s1["chunks"] == 8
    # IPC: the stdlib's Pool sends one message per chunk: 2000 round trips against 10 (what they cost is the
    # lesson's figure, measured on the machine it runs on, not asserted)
    std = r.figures["ipc"]["stdlib"]
    assert std["1"]["chunks"] == 2000 and std["200"]["chunks"] == 10
    assert "landed together on one worker" in r.lesson and "with the stdlib's Pool" in r.lesson
    # The trace shows the chunks: in the big-chunk job both long tasks ran on one worker, in the other not.
    jobs = list(pool_jobs(r.model).values())
    assert len(jobs) >= 2
    one, big = jobs[0], jobs[1]
    assert len(set(big["worker"][:2].tolist())) == 1
    assert len(set(one["worker"][:2].tolist())) == 2
    assert (big["worker"] > 0).all() and (big["end"] > big["start"]).all()


# -- 5. maxtasksperchild -------------------------------------------------------------------------------------

def test_maxtasksperchild(tmp_path, start_method):
    tasks, procs, k, leak = 12, 2, 3, 4.0
    r = run_scenario("maxtasksperchild", start_method,
                     {"processes": procs, "tasks": tasks, "leak_mb": leak, "maxtasksperchild": k, "task_ms": 10},
                     tmp_path)
    assert r.status == "done", r.error
    w, o = r.figures["with"], r.figures["without"]
    assert o["workers_used"] <= procs and o["max_tasks_per_worker"] >= math.ceil(tasks / procs)
    assert w["workers_used"] >= math.ceil(tasks / k) and w["max_tasks_per_worker"] <= k
    # without recycling the busiest worker kept >= 6 leaks; with it, no worker kept more than 3
    assert o["max_growth_mb"] >= 0.8 * leak * math.ceil(tasks / procs)
    assert w["max_growth_mb"] <= leak * (k + 1)
    assert w["peak_rss_mb"] < o["peak_rss_mb"]
    # the trace: every pid the tasks reported is a recorded worker of this start method that exited cleanly
    ws = {p.pid: p for p in workers(r.model, start_method)}
    assert set(w["pids"]) | set(o["pids"]) <= set(ws)
    assert all(ws[pid].exitcode == 0 for pid in w["pids"])
    jobs = list(pool_jobs(r.model).values())
    assert len(jobs) == 2
    assert max(Counter(jobs[1]["worker"].tolist()).values()) <= k


# -- 6. initializer vs args ----------------------------------------------------------------------------------

def test_initializer_vs_args(tmp_path, start_method):
    r = run_scenario("initializer_vs_args", start_method,
                     {"processes": 2, "size_mb": 2, "tasks": 10, "task_ms": 10}, tmp_path)
    assert r.status == "done", r.error
    a, i = r.figures["args"], r.figures["initializer"]
    assert a["times_pickled"] >= 8                       # (about) once per task
    if start_method == "fork":
        assert i["times_pickled"] == 0                   # inherited, never pickled
        assert "never pickled" in r.lesson
    else:
        assert 1 <= i["times_pickled"] <= 2              # once per worker
    assert a["bytes_pickled"] > 3 * i["bytes_pickled"]
    assert "through the initializer" in r.lesson
    ws = workers(r.model, start_method)
    assert len(ws) == 4 and all(w.exitcode == 0 for w in ws)
    assert len(r.model.tasks_array()) == 20


# -- 7. spawn main guard -------------------------------------------------------------------------------------

def test_spawn_main_guard(tmp_path, start_method):
    if start_method == "fork":
        pytest.skip("fork does not re-import the main module: the scenario uses spawn and forkserver")
    r = run_scenario("spawn_main_guard", start_method, {"timeout_s": 60}, tmp_path)
    assert r.status == "done", r.error
    u, g = r.figures["unguarded"], r.figures["guarded"]
    assert not u["timed_out"] and not g["timed_out"]
    assert u["bootstrap_error"] and u["child_exitcode"] == 1 and not u["child_ran"]
    assert "bootstrapping phase" in u["error"]
    assert g["child_exitcode"] == 0 and g["child_ran"] and g["script_exit"] == 0 and not g["error"]
    assert u["names"] == g["names"] == ["__main__", "__mp_main__"]   # the child re-imported the script
    assert "An attempt has been made to start a new process" in r.lesson
    assert phases(r.model) == ["without the guard", "with the guard"]
    # the scripts are separate programs, not traced into this run
    assert not [p for p in r.model.procs.values() if p.method]


def test_spawn_main_guard_refuses_fork():
    from mpgui.scenarios import ParamError, get
    sc = get("spawn_main_guard")
    if "fork" in multiprocessing.get_all_start_methods():
        with pytest.raises(ParamError, match="does not use the fork start method"):
            sc.check_method("fork")
    assert sc.check_method(None) == "spawn"


# -- 8. fork with a thread -----------------------------------------------------------------------------------

def test_fork_with_thread(tmp_path, start_method):
    n = 3
    r = run_scenario("fork_with_thread", start_method,
                     {"methods": "chosen", "children": n, "timeout_s": 0.3, "hold_ms": 200}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures[start_method]
    takers = procs_named(r.model, start_method + "-lock-taker-")
    assert len(takers) == n and {p.method for p in takers} == {start_method}
    exits = sorted(p.exitcode for p in takers)
    if start_method == "fork":
        # the lock is held ~99.5% of the time: (almost) every child inherits it locked and times out
        assert f["timed_out"] >= n - 1 and f["locked_on_arrival"] >= f["timed_out"]
        assert exits.count(2) == f["timed_out"]
        assert "would have deadlocked" in r.lesson
    else:
        assert f["timed_out"] == 0 and f["locked_on_arrival"] == 0
        assert exits == [0] * n
        assert "no children timed out" in r.lesson


# -- 9. process lifecycle ------------------------------------------------------------------------------------

def test_process_lifecycle(tmp_path, start_method):
    r = run_scenario("process_lifecycle", start_method, {"unit_s": 0.1, "exit_code": 7}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    assert (f["normal"]["exitcode"], f["exception"]["exitcode"], f["sys_exit"]["exitcode"]) == (0, 1, 7)
    assert f["join_timeout"]["alive"] and f["join_timeout"]["exitcode"] is None
    assert f["terminate"]["exitcode"] == -15
    assert f["terminate_ignored"]["survived"] and f["kill"]["exitcode"] == -9
    assert f["sentinel"]["order"] == [1, 2, 0]
    assert not f["daemon"]["grandchild_alive"]
    assert f["non_daemon"]["middle_lifetime_s"] >= f["non_daemon"]["grandchild_sleep"]
    # the trace agrees, process by process
    by_name = {p.name: p for p in r.model.procs.values()}
    expect = {"normal": 0, "exception": 1, "sys_exit": 7, "sleeper": -15, "ignores SIGTERM": -9,
              "daemon grandchild": -15, "non-daemon grandchild": 0}
    assert {n: by_name[n].exitcode for n in expect} == expect
    assert all(by_name[n].method == start_method for n in expect)
    dg = by_name["daemon grandchild"]
    assert dg.daemon and dg.ppid == by_name["parent of a daemon"].pid
    assert by_name["non-daemon grandchild"].ppid == by_name["parent of a non-daemon"].pid
    sleeper_uid = by_name["sleeper"].uid
    spans = r.model.spans_array()
    joins = spans[(spans["kind"] == Span.PROC_JOIN) & (spans["uid"] == sleeper_uid)]
    assert (joins["end"] == SpanEnd.TIMEOUT).sum() == 1          # join(timeout) that returned early
    assert "kill() ended it with exit code -9" in r.lesson


# -- 10. async calls are not lazy ----------------------------------------------------------------------------

def test_async_not_lazy(tmp_path, start_method):
    other = 0.4
    r = run_scenario("async_not_lazy", start_method,
                     {"processes": 2, "tasks": 4, "task_s": 0.05, "other_s": other}, tmp_path)
    assert r.status == "done", r.error
    a, m, b = r.figures["map_async"], r.figures["imap"], r.figures["builtin_map"]
    # the builtin map computes nothing until iterated, then all of it, one task after another
    assert b["done_during_other_work"] == 0 and b["first_start_s"] >= other
    assert b["collect_s"] >= 4 * 0.05
    # the Pool's calls started at once and computed while the main process worked
    assert a["first_start_s"] < other and m["first_start_s"] < other
    assert a["done_during_other_work"] >= 1 and m["done_during_other_work"] >= 1
    assert a["collect_s"] < b["collect_s"] and m["collect_s"] < b["collect_s"]
    assert "nothing is lazy" in r.lesson
    # the trace: both Pool jobs' tasks ended before the caller used any of their results
    jobs = list(pool_jobs(r.model).values())
    assert len(jobs) == 2
    for tasks in jobs:
        assert len(tasks) == 4
        used = tasks["used"][tasks["used"] > 0]
        assert len(used) and (tasks["end"] < used.min()).sum() >= 1
