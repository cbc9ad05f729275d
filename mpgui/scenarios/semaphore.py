"""Semaphore: k resources shared by N workers; BoundedSemaphore refuses to be released too often.

A Semaphore(k) lets at most k holders in at once: here N workers repeatedly take one of k "resource slots",
use it for a while and give it back.  The workers measure how many of them held a slot at the same moment,
twice: with a shared counter under a lock, and from the times each one entered and left (one monotonic clock
for every process).  Both maxima come out as k: the others waited their turn (the semaphore's value and the
holds are on the timeline).

Lesson 17: a BoundedSemaphore raises ValueError when released above its initial value; a plain Semaphore
accepts the extra releases silently and grows, so it then lets more holders in than there are resources.
A separate process over-releases both, and the main process counts how many acquires each one then allows.
"""
import time

from .base import Param, Result, Scenario, processes_param
from .harness import collect, reap

#: A safety bound on every blocking wait (nothing in this scenario should wait this long).
WAIT_LIMIT = 60.0


def slot_user(index, slots, count_lock, holders, start, rounds, hold_s, results):
    """Take a slot ``rounds`` times, keep it ``hold_s``, count the holders at every entry."""
    start.wait(WAIT_LIMIT)
    intervals, waited = [], 0.0
    for _ in range(rounds):
        t_req = time.perf_counter()
        if not slots.acquire(timeout=WAIT_LIMIT):
            raise RuntimeError("no slot within %s s" % WAIT_LIMIT)
        t_in = time.perf_counter()
        waited += t_in - t_req
        with count_lock:
            holders[0] += 1
            holders[1] = max(holders[1], holders[0])
        time.sleep(hold_s)
        with count_lock:
            holders[0] -= 1
        t_out = time.perf_counter()
        slots.release()
        intervals.append((t_in, t_out))
    results.put((index, intervals, waited))


def over_release(bounded, plain, extra, conn):
    """Release both semaphores ``extra`` times without acquiring them; report what each one said."""
    errors = []
    for _ in range(extra):
        try:
            bounded.release()
        except ValueError as e:
            errors.append("%s: %s" % (type(e).__name__, e))
    plain_errors = []
    for _ in range(extra):
        try:
            plain.release()
        except ValueError as e:           # never, on a plain Semaphore: that is the lesson
            plain_errors.append("%s: %s" % (type(e).__name__, e))
    conn.send({"bounded_errors": errors, "plain_errors": plain_errors})
    conn.close()


def max_overlap(intervals):
    """The most intervals open at one instant (an interval is [t_in, t_out])."""
    points = sorted([(t0, 1) for t0, _ in intervals] + [(t1, -1) for _, t1 in intervals],
                    key=lambda e: (e[0], e[1]))      # at a tie, a leave counts before an entry
    best = cur = 0
    for _, step in points:
        cur += step
        best = max(best, cur)
    return best


def value_of(sem):
    try:
        return sem.get_value()
    except NotImplementedError:               # macOS has no sem_getvalue
        return None


def count_acquires(sem, limit):
    """How many non-blocking acquires ``sem`` allows (at most ``limit``); releases them all again."""
    n = 0
    while n < limit and sem.acquire(False):
        n += 1
    for _ in range(n):
        sem.release()
    return n


def run_slots(ctx, p, report):
    workers, k = p["processes"], p["slots"]
    slots = ctx.Semaphore(k, name="resource slots")
    count_lock = ctx.Lock(name="holders count lock")
    holders = ctx.RawArray("i", 2)               # [holding now, most at once]
    start = ctx.Barrier(workers + 1, name="start line")
    results = ctx.Queue(name="slot results")
    procs = [ctx.Process(target=slot_user, args=(i, slots, count_lock, holders, start, p["rounds"],
                                                 p["hold_ms"] / 1000.0, results), name="slot-user-%d" % i)
             for i in range(workers)]
    out = []
    try:
        for w in procs:
            w.start()
        start.wait(WAIT_LIMIT)
        t0 = time.perf_counter()
        out = collect(results, workers, procs, "the slot users", WAIT_LIMIT,
                      lambda n: report.progress(n, workers))
        elapsed = time.perf_counter() - t0
    finally:
        reap(procs, WAIT_LIMIT)
        results.close()
        results.join_thread()
    intervals = [iv for _, ivs, _ in out for iv in ivs]
    waits = [w for _, _, w in out]
    return {"workers": workers, "slots": k, "acquisitions": len(intervals), "max_counter": holders[1],
            "max_timestamps": max_overlap(intervals), "holding_after": holders[0], "seconds": elapsed,
            "min_seconds": workers * p["rounds"] * p["hold_ms"] / 1000.0 / min(k, workers),
            "mean_wait_s": sum(waits) / len(waits), "mean_wait_per_acquire_ms": 1000.0 * sum(waits) / len(intervals)}


def run_over_release(ctx, p, report):
    k, extra = p["slots"], p["extra"]
    bounded = ctx.BoundedSemaphore(k, name="bounded slots")
    plain = ctx.Semaphore(k, name="plain slots")
    rx, tx = ctx.Pipe(duplex=False, name="over-release report")
    proc = ctx.Process(target=over_release, args=(bounded, plain, extra, tx), name="over-releaser")
    proc.start()
    tx.close()
    try:
        if not rx.poll(WAIT_LIMIT):
            raise RuntimeError("the over-releaser did not report within %s s" % WAIT_LIMIT)
        said = rx.recv()
    finally:
        proc.join(WAIT_LIMIT)
        if proc.is_alive():
            proc.terminate()
            proc.join()
        rx.close()
    limit = k + extra + 10
    return {"initial": k, "extra_releases": extra,
            "bounded_errors": len(said["bounded_errors"]),
            "bounded_message": said["bounded_errors"][0] if said["bounded_errors"] else None,
            "bounded_value": value_of(bounded), "bounded_acquires": count_acquires(bounded, limit),
            "plain_errors": len(said["plain_errors"]),
            "plain_value": value_of(plain), "plain_acquires": count_acquires(plain, limit)}


def run(ctx, p, report):
    figures, rows = {}, []
    report.phase("Semaphore guarding %d slots" % p["slots"])
    report.line("%d workers take one of %d slots %d times each, holding it %.1f ms"
                % (p["processes"], p["slots"], p["rounds"], p["hold_ms"]))
    f = figures["semaphore"] = run_slots(ctx, p, report)
    rows.append(("Semaphore(%d), %d workers" % (f["slots"], f["workers"]), f["acquisitions"], f["max_counter"],
                 f["max_timestamps"], "%.1f ms" % f["mean_wait_per_acquire_ms"], "%.3f s" % f["seconds"]))
    report.line("at most %d held a slot at once by the shared counter, %d by the timestamps; %d acquisitions, "
                "%.1f ms waited per acquisition, %.3f s in all (at least %.3f s of holding on %d slots)"
                % (f["max_counter"], f["max_timestamps"], f["acquisitions"], f["mean_wait_per_acquire_ms"],
                   f["seconds"], f["min_seconds"], f["slots"]))

    report.phase("over-release: BoundedSemaphore vs Semaphore")
    g = figures["over_release"] = run_over_release(ctx, p, report)
    report.line("BoundedSemaphore(%d) released %d extra times: %d ValueError (%s); then %d acquires allowed"
                % (g["initial"], g["extra_releases"], g["bounded_errors"], g["bounded_message"],
                   g["bounded_acquires"]))
    report.line("Semaphore(%d) released %d extra times: %d errors, value now %s; then %d acquires allowed"
                % (g["initial"], g["extra_releases"], g["plain_errors"], g["plain_value"], g["plain_acquires"]))
    rows.append(("BoundedSemaphore(%d), %d extra releases" % (g["initial"], g["extra_releases"]),
                 g["bounded_acquires"], "-", "-", "%d ValueError" % g["bounded_errors"], "-"))
    rows.append(("Semaphore(%d), %d extra releases" % (g["initial"], g["extra_releases"]), g["plain_acquires"],
                 "-", "-", "%d errors" % g["plain_errors"], "-"))

    expect = min(f["slots"], f["workers"])
    lesson = ("A Semaphore(%d) shared by %d workers let at most %d of them hold a resource at once (shared counter: "
              "%d, timestamps: %d) over %d acquisitions; each waited %.1f ms on average for a free slot."
              % (f["slots"], f["workers"], expect, f["max_counter"], f["max_timestamps"], f["acquisitions"],
                 f["mean_wait_per_acquire_ms"]))
    lesson += (" Released %d times more than acquired, a BoundedSemaphore(%d) raised ValueError %d times and still "
               "allowed %d acquires; a plain Semaphore(%d) took the extra releases silently and then allowed %d "
               "acquires, %d more than the resources it guards."
               % (g["extra_releases"], g["initial"], g["bounded_errors"], g["bounded_acquires"], g["initial"],
                  g["plain_acquires"], g["plain_acquires"] - g["initial"]))
    return Result(lesson, figures, ("semaphore", "acquisitions", "max holders (counter)",
                                    "max holders (timestamps)", "wait / errors", "time"), rows)


SCENARIO = Scenario(
    name="semaphore",
    title="Semaphore guarding k resources; BoundedSemaphore over-release",
    description="N workers share k resource slots through a Semaphore(k) and count how many hold one at once. "
                "Then a process releases a BoundedSemaphore and a plain Semaphore more often than it acquired "
                "them: the bounded one raises ValueError, the plain one silently grows.",
    lesson="A Semaphore(k) admits at most k holders; a BoundedSemaphore raises ValueError when released above "
           "its initial value, a plain Semaphore silently grows.",
    params=(
        processes_param(6, "Workers competing for the slots"),
        Param("slots", "int", 2, "Resources the semaphore guards (its initial value)", 1, 64),
        Param("rounds", "int", 20, "Times each worker takes a slot", 1, 10_000),
        Param("hold_ms", "float", 20.0, "How long a worker keeps a slot (ms)", 0.0, 1000.0, unit="ms"),
        Param("extra", "int", 3, "Releases beyond the acquires, for the over-release test", 1, 100),
    ),
    run=run,
    category="Synchronisation",
)
