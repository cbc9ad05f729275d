"""Condition and Event: a producer wakes consumers; notify() wakes one, notify_all() wakes them all.

Consumers start together on an Event (the start signal) and then wait on a Condition for items.  Each
round the producer (the main process) waits until every consumer is waiting, adds one item and notifies:

* ``notify()`` wakes exactly one consumer, which takes the item; the others sleep on until their wait's
  window runs out (``wait`` returns False: they were not woken);
* ``notify_all()`` wakes every consumer; one gets the item and the rest wake up for nothing.

The consumers line up (a Barrier) before each round, so their waits start together.  Every consumer
reports each round's outcome (woken with an item, woken for nothing, timed out), so the counts
are exact, and how long it took from the producer's notify to the consumer holding the lock again: after
``notify_all()`` the woken take the condition's lock one at a time, so the last one wakes latest.  The
Event's latency is from ``set()`` to each waiting consumer's ``wait()`` returning.
"""
import statistics
import threading
import time

from .base import Param, Result, Scenario, processes_param

#: A safety bound on every blocking wait (nothing here should wait this long).
WAIT_LIMIT = 60.0

# A consumer's outcome in one round.
NONE, TOOK, NOTHING, TIMED_OUT = 0, 1, 2, 3
OUTCOMES = {TOOK: "woken, took the item", NOTHING: "woken for nothing", TIMED_OUT: "not woken (timed out)"}


class Shared:
    """The shared state of one run: plain shared memory, read and written under the condition's lock."""

    def __init__(self, ctx, consumers, rounds):
        self.items = ctx.RawValue("i", 0)
        self.stop = ctx.RawValue("i", 0)
        self.ready = ctx.RawValue("i", 0)
        self.t_set = ctx.RawValue("d", 0.0)          # when the producer set the start Event
        self.t_notify = ctx.RawValue("d", 0.0)       # when the producer notified, this round
        self.arrived = ctx.RawArray("i", rounds)      # consumers waiting in round r
        self.reported = ctx.RawArray("i", rounds)     # consumers done with round r
        self.outcome = ctx.RawArray("i", rounds * consumers)
        self.latency = ctx.RawArray("d", rounds * consumers)
        self.event_latency = ctx.RawArray("d", consumers)


def consumer(i, n, rounds, window, cond, go, lineup, sh):
    """Wait for the start signal, then wait for an item in each round, reporting what woke it.  The
    consumers line up before each round, so their waits' windows start together."""
    with cond:
        sh.ready.value += 1
    if not go.wait(WAIT_LIMIT):
        return
    sh.event_latency[i] = time.perf_counter() - sh.t_set.value
    for r in range(rounds):
        try:
            lineup.wait(WAIT_LIMIT)
        except threading.BrokenBarrierError:          # the run is being stopped
            return
        with cond:
            if sh.stop.value:
                return
            sh.arrived[r] += 1
            woken = cond.wait(window)
            now = time.perf_counter()
            if woken:
                sh.latency[r * n + i] = now - sh.t_notify.value
                if sh.items.value > 0:
                    sh.items.value -= 1
                    sh.outcome[r * n + i] = TOOK
                else:
                    sh.outcome[r * n + i] = NOTHING
            else:
                sh.outcome[r * n + i] = TIMED_OUT
            sh.reported[r] += 1


def wait_until(predicate, what, procs, lock=None):
    """Poll ``predicate`` (under ``lock`` if given) until it holds; RuntimeError if a consumer died."""
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        if lock is not None:
            lock.acquire()
        if predicate():
            return                              # with ``lock`` still held
        if lock is not None:
            lock.release()
        dead = [p.name for p in procs if p.exitcode not in (None, 0)]
        if all(p.exitcode is not None for p in procs):
            dead = dead or ["every consumer"]
        if dead or time.monotonic() > deadline:
            raise RuntimeError("%s: %s" % (what, ", ".join(dead) + " ended early" if dead else "timed out"))
        time.sleep(0.001)


def summary(sh, n, rounds):
    outs = [[sh.outcome[r * n + i] for i in range(n)] for r in rounds]
    lats = [sh.latency[r * n + i] for r in rounds for i in range(n) if sh.outcome[r * n + i] in (TOOK, NOTHING)]
    flat = [o for row in outs for o in row]
    return {"rounds": len(rounds), "woken_per_round": [sum(o in (TOOK, NOTHING) for o in row) for row in outs],
            "woken": flat.count(TOOK) + flat.count(NOTHING), "took": flat.count(TOOK),
            "woke_for_nothing": flat.count(NOTHING), "timed_out": flat.count(TIMED_OUT),
            "latency_median_ms": 1000 * statistics.median(lats) if lats else None,
            "latency_max_ms": 1000 * max(lats) if lats else None}


def run(ctx, p, report):
    n, rounds, window = p["processes"], p["rounds"], p["window"]
    total = 2 * rounds
    cond = ctx.Condition(name="items ready")
    go = ctx.Event(name="start signal")
    sh = Shared(ctx, n, total)
    lineup = ctx.Barrier(n, name="round lineup")
    procs = [ctx.Process(target=consumer, args=(i, n, total, window, cond, go, lineup, sh),
                         name="consumer-%d" % i) for i in range(n)]
    leftover = []
    try:
        for c in procs:
            c.start()
        report.phase("start signal (Event)")
        wait_until(lambda: sh.ready.value == n, "consumers ready", procs)
        time.sleep(0.05)                    # let the last one reach go.wait()
        sh.t_set.value = time.perf_counter()
        go.set()
        for r in range(total):
            mode = "notify" if r < rounds else "notify_all"
            if r in (0, rounds):
                report.phase("Condition.%s()" % mode)
            wait_until(lambda r=r: sh.arrived[r] == n, "round %d: consumers waiting" % r, procs, cond)
            sh.items.value += 1
            sh.t_notify.value = time.perf_counter()
            if mode == "notify":
                cond.notify()
            else:
                cond.notify_all()
            cond.release()
            wait_until(lambda r=r: sh.reported[r] == n, "round %d: consumers reporting" % r, procs)
            with cond:
                leftover.append(sh.items.value)
                sh.items.value = 0
            report.progress(r + 1, total)
    finally:
        sh.stop.value = 1
        go.set()
        lineup.abort()
        for c in procs:
            c.join(WAIT_LIMIT)
            if c.is_alive():
                c.terminate()
                c.join()

    ev = [1000 * sh.event_latency[i] for i in range(n)]
    figures = {"consumers": n, "window_s": window,
               "notify": summary(sh, n, range(rounds)), "notify_all": summary(sh, n, range(rounds, total)),
               "event": {"woken": n, "latency_median_ms": statistics.median(ev), "latency_max_ms": max(ev)},
               "items_left": sum(leftover)}
    rows = []
    for mode in ("notify", "notify_all"):
        f = figures[mode]
        rows.append(("Condition.%s()" % mode, f["rounds"], "%.2f" % (f["woken"] / f["rounds"]), f["took"],
                     f["woke_for_nothing"], f["timed_out"], "%.2f ms" % f["latency_median_ms"],
                     "%.2f ms" % f["latency_max_ms"]))
        report.line("%-12s %d rounds: woken per round %s; %d took an item, %d woke for nothing, %d not woken; "
                    "wake-up latency median %.2f ms, max %.2f ms"
                    % (mode + "()", f["rounds"], f["woken_per_round"], f["took"], f["woke_for_nothing"],
                       f["timed_out"], f["latency_median_ms"], f["latency_max_ms"]))
    e = figures["event"]
    rows.append(("Event.set()", 1, "%d" % n, "-", "-", 0, "%.2f ms" % e["latency_median_ms"],
                 "%.2f ms" % e["latency_max_ms"]))
    report.line("Event.set(): %d consumers woke, latency median %.2f ms, max %.2f ms"
                % (n, e["latency_median_ms"], e["latency_max_ms"]))

    a, b = figures["notify"], figures["notify_all"]
    lesson = ("With %d consumers waiting, notify() woke %.2f per round (%d woken in %d rounds, %d with the item; the "
              "other %d waits ran out their %.2f s window unwoken), notify_all() woke %.2f per round (%d woken for "
              "%d items: %d woke for nothing)." % (n, a["woken"] / a["rounds"], a["woken"], a["rounds"], a["took"],
                                                  a["timed_out"], window, b["woken"] / b["rounds"], b["woken"],
                                                  b["rounds"], b["woke_for_nothing"]))
    lesson += (" From notify to holding the lock again took %.2f ms (median) after notify() and %.2f ms median, "
               "%.2f ms max after notify_all(), whose consumers take the lock one at a time; the start Event "
               "reached all %d in %.2f ms median, %.2f ms max."
               % (a["latency_median_ms"], b["latency_median_ms"], b["latency_max_ms"], n, e["latency_median_ms"],
                  e["latency_max_ms"]))
    return Result(lesson, figures, ("signal", "rounds", "woken per round", "took item", "woke for nothing",
                                    "not woken", "latency median", "latency max"), rows)


SCENARIO = Scenario(
    name="condition_event",
    title="Condition and Event: notify vs notify_all, wake-up latency",
    description="Consumers start on an Event, then wait on a Condition for items. Each round the producer adds "
                "one item and calls notify() (one consumer wakes) or notify_all() (all wake, one gets the item). "
                "Every wake-up and its latency is counted.",
    lesson="notify() wakes one waiter, notify_all() wakes every waiter (most for nothing); an Event wakes all "
           "waiters at once.",
    params=(
        processes_param(4, "Consumer processes"),
        Param("rounds", "int", 10, "Rounds (one item each) with notify(), and as many with notify_all()", 1, 1000),
        Param("window", "float", 0.3, "How long a consumer's wait lasts before it gives up (s)", 0.05, 10.0,
              unit="s"),
    ),
    run=run,
    category="Synchronisation",
)
