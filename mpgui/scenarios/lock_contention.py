"""Lock contention on a shared Value: with the lock the total is right; without it updates are lost.

Lessons 5 and 9: ``value += 1`` on shared memory is a read, an add and a write; two processes interleaving
them lose updates.  A Lock makes the total right, and the timeline shows what it costs: every worker waits its
turn.  Prefer passing results through a Queue or Pipe to sharing a counter under a lock.
"""
import time

from .base import Param, Result, Scenario, processes_param


def increment(counter, lock, go, n, hold_s, use_lock):
    """Add 1 to ``counter`` ``n`` times, under ``lock`` if ``use_lock``, holding it ``hold_s`` extra.
    Spins until ``go`` is set, so all workers race from the same moment (an Event wakes its waiters one
    after another, and the first could finish before the last has started: nothing would be lost)."""
    while not go.value:
        pass
    for _ in range(n):
        if use_lock:
            with lock:
                counter.value += 1
                if hold_s:
                    time.sleep(hold_s)
        else:
            v = counter.value
            if hold_s:
                time.sleep(hold_s)
            counter.value = v + 1


def run_once(ctx, p, use_lock, report):
    counter = ctx.RawValue("q", 0)
    lock = ctx.Lock(name="counter lock")
    go = ctx.RawValue("b", 0)
    n = p["increments"]
    workers = [ctx.Process(target=increment, args=(counter, lock, go, n, p["hold_ms"] / 1000.0, use_lock),
                           name="incrementer-%d" % i) for i in range(p["processes"])]
    for w in workers:
        w.start()
    time.sleep(0.05 if ctx.get_start_method() == "fork" else 0.3)   # every worker spinning on go
    t0 = time.perf_counter()
    go.value = 1
    for i, w in enumerate(workers):
        w.join()
        report.progress(i + 1, len(workers))
    return counter.value, time.perf_counter() - t0


def run(ctx, p, report):
    expected = p["processes"] * p["increments"]
    modes = {"both": (True, False), "with lock": (True,), "without lock": (False,)}[p["mode"]]
    rows, figures = [], {}
    for use_lock in modes:
        label = "with lock" if use_lock else "without lock"
        report.phase(label)
        total, secs = run_once(ctx, p, use_lock, report)
        lost = expected - total
        figures[label] = {"total": total, "expected": expected, "lost": lost, "seconds": secs}
        rows.append((label, total, expected, lost, "%.1f%%" % (100.0 * lost / expected), "%.3f s" % secs))
        report.line("%-12s total %d of %d (%d lost) in %.3f s" % (label, total, expected, lost, secs))
    parts = []
    if "with lock" in figures:
        f = figures["with lock"]
        parts.append("With the lock the total was %d of %d (%s) in %.3f s." % (
            f["total"], f["expected"], "correct" if f["lost"] == 0 else "%d lost" % f["lost"], f["seconds"]))
    if "without lock" in figures:
        f = figures["without lock"]
        parts.append("Without it %d of %d updates were lost (%.1f%%) in %.3f s." % (
            f["lost"], f["expected"], 100.0 * f["lost"] / f["expected"], f["seconds"]))
    if len(figures) == 2 and figures["without lock"]["seconds"] > 0:
        parts.append("The lock made it %.1fx slower: share results through a Queue instead of a locked counter."
                     % (figures["with lock"]["seconds"] / figures["without lock"]["seconds"]))
    return Result(" ".join(parts), figures, ("mode", "total", "expected", "lost", "lost %", "time"), rows)


SCENARIO = Scenario(
    name="lock_contention",
    title="Lock contention on a shared Value",
    description="Workers add 1 to a shared counter many times, with and without a Lock. Without it, updates "
                "are lost; with it, every worker waits its turn (see the lock waits on the timeline).",
    lesson="Shared state needs a lock to stay correct, and the lock serialises the workers: prefer Queue or Pipe.",
    params=(
        processes_param(4),
        Param("increments", "int", 50000, "Increments per worker", 1, 1_000_000),
        Param("mode", "choice", "both", "Run with the lock, without it, or both",
              choices=("both", "with lock", "without lock")),
        Param("hold_ms", "float", 0.0, "Extra time inside the critical section (ms)", 0.0, 100.0, unit="ms"),
    ),
    run=run,
    category="Synchronisation",
)
