"""Forking a multi-threaded process: a lock held by another thread is copied locked, with no one to release it.

Lesson 14 of the notes: fork copies the whole memory of the parent but only the thread that called fork.  A
lock another thread held at that moment is copied locked, and its owner does not exist in the child: a child
that takes it waits forever.  forkserver's server is single-threaded and spawn starts a fresh interpreter, so
their children never inherit that state.

In the main process a thread holds a ``threading.Lock`` almost all the time (it takes it for ``hold_ms``,
lets go for a moment, takes it again).  Children are started while it does; each one first looks whether the
lock is locked, then tries to take it with a timeout (instead of waiting forever), reports what happened
through a pipe and exits with code 2 if it timed out, 0 if it got the lock.  A timed-out child is a child
that would have deadlocked.

This scenario runs several start methods inside one run: fork (where the platform has it), then forkserver
and spawn, each through ``core.get_context(method)``; the ``methods`` parameter picks them ("chosen": only the
run's start method).  Where fork is not available (Windows) it says so and shows the safe methods.
"""
import sys
import threading
import time

import core

from .base import Param, Result, Scenario
from .start_cost import ALL_METHODS, methods_to_run

#: The lock a thread of the main process keeps taking.  A forked child gets a copy in whatever state it was;
#: a spawned or forkserver child imports this module afresh and gets a new, unlocked lock.
_HELD = threading.Lock()

TIMED_OUT = 2


def hold_lock(stop, hold_s, gap_s, held):
    """The main process's other thread: take the lock, keep it ``hold_s``, let go for ``gap_s``, again."""
    while not stop.is_set():
        with _HELD:
            held.set()
            stop.wait(hold_s)
        time.sleep(gap_s)


def take_lock(conn, timeout):
    """A child: is the lock locked on arrival? Can it be taken within ``timeout``?  Exit 2 if not."""
    locked = _HELD.locked()
    t0 = time.perf_counter()
    got = _HELD.acquire(timeout=timeout)
    waited = time.perf_counter() - t0
    if got:
        _HELD.release()
    conn.send((locked, got, waited))
    conn.close()
    if not got:
        sys.exit(TIMED_OUT)


def run_children(mctx, method, p, report, done, total):
    procs, ends = [], []
    for i in range(p["children"]):
        r, w = mctx.Pipe(duplex=False, name="%s child %d report" % (method, i))
        procs.append(mctx.Process(target=take_lock, args=(w, p["timeout_s"]), name="%s-lock-taker-%d" % (method, i)))
        ends.append((r, w))
    for pr, (_r, w) in zip(procs, ends):
        pr.start()
        w.close()
    outcomes = []
    for pr, (r, _w) in zip(procs, ends):
        try:
            locked, got, waited = r.recv()
        except EOFError:                            # the child died before it could report
            locked, got, waited = None, False, 0.0
        r.close()
        pr.join()
        outcomes.append({"locked_on_arrival": locked, "acquired": got, "waited_s": waited, "exitcode": pr.exitcode})
        done[0] += 1
        report.progress(done[0], total)
    return {"children": len(outcomes), "timed_out": sum(1 for o in outcomes if not o["acquired"]),
            "locked_on_arrival": sum(1 for o in outcomes if o["locked_on_arrival"]),
            "max_wait_s": max(o["waited_s"] for o in outcomes), "exitcodes": [o["exitcode"] for o in outcomes]}


def run(ctx, p, report):
    methods = methods_to_run(p["methods"], ctx)
    fork_here = "fork" in core.get_all_start_methods()
    total = p["children"] * len(methods)
    done = [0]
    figures = {"methods": list(methods), "fork_available": fork_here, "timeout_s": p["timeout_s"]}
    rows = []
    stop, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_lock, args=(stop, p["hold_ms"] / 1000.0, 0.001, held),
                              name="lock holder", daemon=True)
    report.phase("a thread holds the lock")
    holder.start()
    try:
        held.wait(5.0)
        report.line("a second thread of the main process now holds a threading.Lock, letting go for 1 ms every "
                    "%g ms" % p["hold_ms"])
        for m in methods:
            report.phase(m)
            f = figures[m] = run_children(core.get_context(m), m, p, report, done, total)
            rows.append((m, f["children"], f["locked_on_arrival"], f["timed_out"], "%.2f s" % f["max_wait_s"],
                         " ".join(map(str, f["exitcodes"]))))
            report.line("%-10s %d of %d children found the lock locked, %d timed out after %.2f s%s"
                        % (m, f["locked_on_arrival"], f["children"], f["timed_out"], p["timeout_s"],
                           " (they would have deadlocked)" if f["timed_out"] else ""))
    finally:
        stop.set()
        holder.join()

    parts = []
    if "fork" in methods:
        f = figures["fork"]
        parts.append("With fork, %d of %d children found the lock locked (copied while the parent's other thread "
                     "held it; that thread does not exist in the child) and %d timed out after %.2f s: without "
                     "a timeout they would have deadlocked." % (f["locked_on_arrival"], f["children"],
                                                                f["timed_out"], p["timeout_s"]))
    elif not fork_here:
        parts.append("This platform has no fork start method, so a child can never inherit a locked lock.")
    safe = [m for m in methods if m != "fork"]
    if safe:
        counts = ", ".join("%d of %d with %s" % (figures[m]["timed_out"], figures[m]["children"], m) for m in safe)
        parts.append("With %s, %s children timed out (%s): their children start from a fresh interpreter "
                     "(forkserver's single-threaded server forks them), import the module anew and get an "
                     "unlocked lock." % (" and ".join(safe), "no" if not any(figures[m]["timed_out"] for m in safe)
                                        else "some", counts))
    if "fork" in methods:
        parts.append("Do not fork a process that runs threads: use forkserver or spawn.")
    return Result(" ".join(parts), figures, ("method", "children", "lock locked on arrival", "timed out",
                                             "longest wait", "exit codes"), rows)


SCENARIO = Scenario(
    name="fork_with_thread",
    title="Forking a multi-threaded process: the inherited locked lock",
    description="A thread of the main process keeps a lock held while children are started. Forked children "
                "inherit it locked and time out taking it; forkserver and spawn children get a fresh one.",
    lesson="Forking a multi-threaded process risks deadlock; forkserver's server is single-threaded, so it "
           "does not.",
    params=(
        Param("methods", "choice", "all",
              "Start methods to compare: all the platform has, the run's chosen one, or one of them",
              choices=("all", "chosen") + ALL_METHODS),
        Param("children", "int", 5, "Children started per start method", 1, 64),
        Param("timeout_s", "float", 1.0, "How long a child tries to take the lock", 0.05, 60.0, unit="s"),
        Param("hold_ms", "float", 200.0, "How long the thread holds the lock each time", 5.0, 10_000.0,
              unit="ms"),
    ),
    run=run,
    category="Start methods",
)
