"""Barrier: workers of different speeds meet after every phase, and barriers that break.

A Barrier(N) holds each of N workers until all N have arrived, then releases them together and starts a new
generation.  With workers of different speeds every phase lasts as long as its slowest worker: the fast
ones wait.  The workers here sleep for different times per phase (the fastest ``work_ms``, the slowest
``slowdown`` times that) and record when they arrived and passed, and the generation they passed into; the
run reports, per phase, how long the fast workers waited for the slowest.

Then two barriers break, safely.  One waits for a party that never comes: the first worker whose
``wait(timeout)`` runs out breaks it, and every waiting worker gets BrokenBarrierError.  The other is broken by
the main process calling ``abort()`` while all the workers wait: they all get BrokenBarrierError at once.
"""
import threading
import time

from .base import Param, Result, Scenario, processes_param
from .harness import collect, reap

#: A safety bound on every blocking wait (nothing here should wait this long).
WAIT_LIMIT = 60.0


def phase_worker(index, work_s, phases, barrier, stranded, aborted, timeout, results):
    """Work then meet at ``barrier``, ``phases`` times; then wait on the two barriers that will break."""
    passes = []
    for phase in range(phases):
        time.sleep(work_s)
        t_arrive = time.perf_counter()
        order = barrier.wait(WAIT_LIMIT)
        passes.append((phase, t_arrive, time.perf_counter(), order, barrier.generation))
    outcomes = {}
    for label, b, limit in (("timeout", stranded, timeout), ("abort", aborted, WAIT_LIMIT)):
        t0 = time.perf_counter()
        try:
            b.wait(limit)
            outcome = "passed"
        except threading.BrokenBarrierError:
            outcome = "BrokenBarrierError"
        outcomes[label] = (outcome, t0, time.perf_counter())
    results.put({"index": index, "work_s": work_s, "passes": passes, "outcomes": outcomes})


def speeds(workers, work_ms, slowdown):
    """Seconds of work per phase for each worker: from ``work_ms`` up to ``slowdown`` times that."""
    if workers == 1:
        return [work_ms / 1000.0]
    return [work_ms / 1000.0 * (1 + (slowdown - 1) * i / (workers - 1)) for i in range(workers)]


def wait_until(predicate, what, procs):
    deadline = time.monotonic() + WAIT_LIMIT
    while not predicate():
        dead = [p.name for p in procs if p.exitcode not in (None, 0)]
        if dead or time.monotonic() > deadline:
            raise RuntimeError("%s did not happen (%s)" % (what, ", ".join(dead) + " died" if dead else "timeout"))
        time.sleep(0.005)


def per_phase(out, phases):
    """For each phase: the generation the barrier released (the count of releases before it, as every worker
    read it after passing, minus one), the slowest worker, and how long the others waited."""
    stats = []
    for phase in range(phases):
        rows = [(r["index"], r["passes"][phase]) for r in out]
        last_arrival = max(p[1] for _, p in rows)
        slowest = [i for i, p in rows if p[1] == last_arrival][0]
        waits = {i: p[2] - p[1] for i, p in rows}
        fast = [w for i, w in waits.items() if i != slowest]
        stats.append({"phase": phase, "generation": sorted({p[4] - 1 for _, p in rows}),
                      "slowest": slowest, "last_index": [i for i, p in rows if p[3] == len(rows) - 1],
                      "longest_wait_s": max(fast) if fast else 0.0, "total_wait_s": sum(fast),
                      "slowest_wait_s": waits[slowest]})
    return stats


def outcome_text(outcomes):
    names = [o for o, _, _ in outcomes]
    return ", ".join("%d x %s" % (names.count(n), n) for n in sorted(set(names)))


def run(ctx, p, report):
    workers, phases = p["processes"], p["phases"]
    work = speeds(workers, p["work_ms"], p["slowdown"])
    barrier = ctx.Barrier(workers, name="phase barrier")
    stranded = ctx.Barrier(workers + 1, name="stranded barrier")     # one party never comes
    aborted = ctx.Barrier(workers + 1, name="aborted barrier")       # the main process aborts it
    results = ctx.Queue(name="barrier results")
    procs = [ctx.Process(target=phase_worker, args=(i, work[i], phases, barrier, stranded, aborted, p["timeout"],
                                                    results), name="phase-worker-%d" % i)
             for i in range(workers)]
    report.phase("phases")
    report.line("%d workers, %d phases; per phase the fastest works %.0f ms, the slowest %.0f ms"
                % (workers, phases, 1000 * work[0], 1000 * work[-1]))
    out = []
    ok = False
    try:
        for w in procs:
            w.start()
        seen = -1
        while barrier.generation < phases:
            gen = barrier.generation
            if gen != seen:
                report.progress(gen, phases)
                seen = gen
            wait_until(lambda gen=gen: barrier.generation != gen or barrier.generation >= phases,
                       "phase %d" % gen, procs)
        report.progress(phases, phases)

        report.phase("broken by a timeout")
        wait_until(lambda: stranded.broken, "the timeout break", procs)
        report.phase("broken by abort()")
        wait_until(lambda: aborted.n_waiting == workers, "all workers waiting on the aborted barrier", procs)
        t_abort = time.perf_counter()
        aborted.abort()
        out += collect(results, workers - len(out), procs, "the phase workers", WAIT_LIMIT)
        ok = True
    finally:
        for b in ((aborted,) if ok else (barrier, stranded, aborted)):
            if not b.broken:
                b.abort()                       # never leave a worker waiting on a barrier
        reap(procs, WAIT_LIMIT)
        results.close()
        results.join_thread()
    out.sort(key=lambda r: r["index"])

    stats = per_phase(out, phases)
    rows = []
    for s in stats:
        rows.append(("phase %d" % s["phase"], "%s" % ",".join(map(str, s["generation"])),
                     "worker %d" % s["slowest"], "%.0f ms" % (1000 * s["longest_wait_s"]),
                     "%.0f ms" % (1000 * s["total_wait_s"])))
        report.line("phase %d: generation %s released; worker %d arrived last; the fastest waited %.0f ms for "
                    "it, %.0f ms of waiting in all" % (s["phase"], ",".join(map(str, s["generation"])), s["slowest"],
                                                       1000 * s["longest_wait_s"], 1000 * s["total_wait_s"]))
    to = [r["outcomes"]["timeout"] for r in out]
    ab = [r["outcomes"]["abort"] for r in out]
    broke_after = max(t1 for _, _, t1 in to) - min(t0 for _, t0, _ in to)
    abort_lat = [t1 - t_abort for _, _, t1 in ab]
    phase_s = [max(r["passes"][ph][2] for r in out) - (max(r["passes"][ph - 1][2] for r in out) if ph else 0)
               for ph in range(phases)]
    figures = {
        "workers": workers, "phases": phases, "work_s": work,
        "per_phase": stats,
        "generations": [[x[4] for x in r["passes"]] for r in out],
        "fastest_wait_s": sum(s["longest_wait_s"] for s in stats) / phases,
        "total_wait_s": sum(s["total_wait_s"] for s in stats),
        "timeout": {"timeout_s": p["timeout"], "outcomes": [o for o, _, _ in to], "broke_after_s": broke_after},
        "abort": {"outcomes": [o for o, _, _ in ab], "latency_ms": [1000 * x for x in abort_lat]},
    }
    rows.append(("timeout %.2f s" % p["timeout"], "-", "never came", "%.0f ms" % (1000 * broke_after),
                 "%d of %d broken" % (sum(o == "BrokenBarrierError" for o, _, _ in to), workers)))
    rows.append(("abort()", "-", "main process", "%.1f ms" % max(figures["abort"]["latency_ms"]),
                 "%d of %d broken" % (sum(o == "BrokenBarrierError" for o, _, _ in ab), workers)))
    report.line("stranded barrier: %s after %.0f ms (timeout %.2f s)" % (outcome_text(to), 1000 * broke_after,
                                                                       p["timeout"]))
    report.line("aborted barrier: %s within %.1f ms of abort()" % (outcome_text(ab),
                                                                  max(figures["abort"]["latency_ms"])))

    gen_text = "generations 0 to %d" % (phases - 1) if phases > 1 else "generation 0"
    n_to = sum(o == "BrokenBarrierError" for o, _, _ in to)
    n_ab = sum(o == "BrokenBarrierError" for o, _, _ in ab)
    lesson = ("%d workers met at a Barrier after each of %d phases (%s): every phase lasted as long as its slowest "
              "worker (%.0f ms of work), so the fastest waited %.0f ms per phase on average for it, %.2f s of "
              "waiting in all." % (workers, phases, gen_text, 1000 * work[-1], 1000 * figures["fastest_wait_s"],
                                   figures["total_wait_s"]))
    lesson += (" A barrier whose last party never came broke when a wait's %.2f s timeout ran out: %d of %d "
               "waiting workers got BrokenBarrierError after %.0f ms; abort() broke another, and %d of %d waiting "
               "workers got BrokenBarrierError within %.1f ms." % (p["timeout"], n_to, workers, 1000 * broke_after,
                                                                  n_ab, workers, max(figures["abort"]["latency_ms"])))
    figures["phase_s"] = phase_s
    return Result(lesson, figures, ("barrier", "generation", "last to arrive", "fastest waited / broke after",
                                    "waiting in all / outcome"), rows)


SCENARIO = Scenario(
    name="barrier",
    title="Barrier phases with workers of different speeds; broken barriers",
    description="Workers of different speeds meet at a Barrier after every phase; the timeline shows the fast "
                "ones waiting for the slowest, generation by generation. Then one barrier breaks on a timeout "
                "and another on abort(): every waiting worker gets BrokenBarrierError.",
    lesson="A Barrier makes every phase as long as its slowest worker; a timeout or abort() breaks it for all.",
    params=(
        processes_param(4, "Workers meeting at the barrier (its parties)"),
        Param("phases", "int", 4, "Phases (each ends at the barrier)", 1, 1000),
        Param("work_ms", "float", 100.0, "Work per phase of the fastest worker (ms)", 0.0, 10_000.0, unit="ms"),
        Param("slowdown", "float", 4.0, "The slowest worker's work per phase, as a multiple of the fastest's",
              1.0, 100.0),
        Param("timeout", "float", 0.5, "Timeout of the wait on the barrier whose last party never comes", 0.05,
              30.0, unit="s"),
    ),
    run=run,
    category="Synchronisation",
)
