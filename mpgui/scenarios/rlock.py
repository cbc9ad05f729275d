"""RLock re-entrancy: a recursive function that takes the lock it already holds.

Code that calls other locked code while holding the lock (here: a function that recurses, taking the lock
on every level) needs a re-entrant lock.  An RLock knows its owner and counts: the owner may acquire it
again, and it is free once released as many times as it was acquired.  A plain Lock knows no owner: the
second acquire by the process holding it waits for itself, forever.

The run shows both.  Workers recurse to the full depth under an RLock (the trace records each acquire's
recursion depth, and each worker's whole descent is one hold on the timeline).  Then one worker runs the
same recursion under a plain Lock: it stops at depth 1, where ``acquire(timeout=...)`` gives up instead of
deadlocking.
"""
import queue
import time

from .base import Param, Result, Scenario, processes_param

#: How long a worker waits for the lock at level 1 (held by another worker: waiting there is legitimate).
OUTER_TIMEOUT = 60.0


def descend(lock, level, depth, timeout, hold_s, stats):
    """Take ``lock``, then call itself one level deeper while holding it; returns the deepest level reached
    with the lock held on every level.  Re-acquires (level 2 and deeper) give up after ``timeout``."""
    t0 = time.perf_counter()
    if not lock.acquire(timeout=timeout if level > 1 else OUTER_TIMEOUT):
        stats["failed_wait_s"] = time.perf_counter() - t0
        return level - 1
    t_in = time.perf_counter()
    try:
        if level == depth:
            if hold_s:
                time.sleep(hold_s)
                stats["held_s"] += time.perf_counter() - t_in
            return level
        return descend(lock, level + 1, depth, timeout, hold_s, stats)
    finally:
        lock.release()
        if level == 1:
            stats["inside_s"] += time.perf_counter() - t_in


def recurser(lock, depth, rounds, timeout, hold_s, results):
    """Descend ``rounds`` times (stopping at the first descent that falls short); report what happened."""
    stats = {"inside_s": 0.0, "held_s": 0.0, "failed_wait_s": None}
    t0 = time.perf_counter()
    reached, done = depth, 0
    for _ in range(rounds):
        reached = descend(lock, 1, depth, timeout, hold_s, stats)
        done += 1
        if reached < depth:
            break
    stats.update(reached=reached, rounds=done, elapsed_s=time.perf_counter() - t0)
    results.put(stats)


def gather(results, n, procs, report=None):
    """``n`` results from the workers, or RuntimeError if a worker died or they all went silent."""
    out = []
    deadline = time.monotonic() + OUTER_TIMEOUT + 30.0
    while len(out) < n:
        try:
            out.append(results.get(timeout=0.2))
        except queue.Empty:
            dead = [p.name for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise RuntimeError("no result from %s" % (", ".join(dead) or "the workers")) from None
            continue
        if report is not None:
            report.progress(len(out), n)
    return out


def run_workers(ctx, lock, count, label, p, timeout, report):
    results = ctx.Queue(name="%s results" % label)
    procs = [ctx.Process(target=recurser, args=(lock, p["depth"], p["rounds"], timeout, p["hold_ms"] / 1000.0,
                                                results), name="%s-%d" % (label, i)) for i in range(count)]
    try:
        for w in procs:
            w.start()
        return gather(results, count, procs, report)
    finally:
        for w in procs:
            w.join(OUTER_TIMEOUT)
            if w.is_alive():
                w.terminate()
                w.join()
        results.close()
        results.join_thread()


def run(ctx, p, report):
    depth, rounds, workers = p["depth"], p["rounds"], p["processes"]
    figures, rows = {}, []

    report.phase("RLock: recursive acquires")
    rlock = ctx.RLock(name="recursive rlock")
    report.line("%d workers each descend %d levels %d times, taking the RLock on every level"
                % (workers, depth, rounds))
    out = run_workers(ctx, rlock, workers, "rlock-recurser", p, OUTER_TIMEOUT, report)
    reached = min(r["reached"] for r in out)
    done = sum(r["rounds"] for r in out)
    inside = sum(r["inside_s"] - r["held_s"] for r in out)
    per_level_us = 1e6 * inside / max(1, done * max(1, depth - 1)) if depth > 1 else 0.0
    elapsed = max(r["elapsed_s"] for r in out)
    figures["rlock"] = {"depth": depth, "depth_reached": reached, "workers": workers, "rounds": done,
                        "acquisitions": done * depth if reached == depth else None, "seconds": elapsed,
                        "us_per_level": per_level_us}
    rows.append(("RLock", "%d of %d" % (reached, depth), done, "%.1f us" % per_level_us, "-", "%.3f s" % elapsed))
    report.line("RLock: depth %d of %d reached in all %d descents (%d acquisitions); %.1f us per extra level; "
                "%.3f s" % (reached, depth, done, done * depth, per_level_us, elapsed))

    report.phase("Lock: the same recursion")
    lock = ctx.Lock(name="plain lock")
    t0 = time.perf_counter()
    [res] = run_workers(ctx, lock, 1, "lock-recurser", dict(p, rounds=1), p["timeout"], report)
    elapsed = time.perf_counter() - t0
    stuck = res["reached"] < depth
    figures["lock"] = {"depth": depth, "depth_reached": res["reached"], "timed_out": stuck,
                       "timeout_s": p["timeout"], "waited_s": res["failed_wait_s"], "seconds": elapsed}
    rows.append(("Lock", "%d of %d" % (res["reached"], depth), res["rounds"], "-",
                 "%.2f s" % res["failed_wait_s"] if stuck else "-", "%.3f s" % elapsed))
    if stuck:
        report.line("Lock: depth %d of %d; the acquire at depth %d, by the process already holding the lock, "
                    "gave up after %.2f s" % (res["reached"], depth, res["reached"] + 1, res["failed_wait_s"]))
    else:                                       # depth 1: there is no re-acquire to fail
        report.line("Lock: depth %d of %d (a depth of 1 never re-acquires)" % (res["reached"], depth))

    f, g = figures["rlock"], figures["lock"]
    lesson = ("With an RLock, %d workers each re-acquired the lock they already held down to depth %d of %d in all "
              "%d descents (%.1f us per extra level, %.3f s in all)." % (workers, f["depth_reached"], depth,
                                                                          f["rounds"], f["us_per_level"],
                                                                          f["seconds"]))
    if stuck:
        lesson += (" With a plain Lock the same recursion stopped at depth %d: the process's second acquire of the "
                   "Lock it held waited %.2f s for itself and gave up (timeout %.2f s); without a timeout it would "
                   "have deadlocked forever. Use an RLock when code holding a lock may take it again."
                   % (g["depth_reached"], g["waited_s"], g["timeout_s"]))
    else:
        lesson += " With depth 1 nothing re-acquires, so a plain Lock works too: raise the depth to see it deadlock."
    return Result(lesson, figures, ("lock", "depth reached", "descents", "per extra level", "re-acquire waited",
                                    "time"), rows)


SCENARIO = Scenario(
    name="rlock",
    title="RLock re-entrancy vs a plain Lock",
    description="A recursive function takes the lock on every level. Under an RLock the owner re-acquires it "
                "freely (one hold per descent on the timeline); under a plain Lock the second acquire waits for "
                "itself, shown safely with acquire(timeout=...).",
    lesson="An RLock may be re-acquired by the process holding it; a plain Lock deadlocks on itself.",
    params=(
        processes_param(4, "Workers recursing under the RLock"),
        Param("depth", "int", 50, "Recursion depth (levels, each taking the lock)", 1, 500),
        Param("rounds", "int", 200, "Descents per worker under the RLock", 1, 100_000),
        Param("hold_ms", "float", 1.0, "Work at the deepest level, with the lock held (ms)", 0.0, 100.0,
              unit="ms"),
        Param("timeout", "float", 1.0, "How long the plain Lock's re-acquire waits before giving up", 0.05, 30.0,
              unit="s"),
    ),
    run=run,
    category="Synchronisation",
)
