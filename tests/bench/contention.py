"""What the contention analytics cost.

* stats_1m_s: per-object statistics and the blocking profile of a saved run of 1,000,000 lock and semaphore
  records (written with RunWriter in collector-sized chunks, each thread's records in order), from opening
  the run file to the figures; the best of five runs (goal <= 0.5 s);
* callsite_overhead_ratio: a contended traced lock loop (two processes taking one core.Lock, each holding it
  for a short computation) with call sites on over the same loop with them off, measured alternately in
  this run, the median of the ratios (goal <= 1.10); contended_share says how many of its acquisitions
  waited, each of which looked at its stack;
* uncontended_callsite_ratio: the same for one process taking a lock nobody else wants, which never looks
  at its stack (goal <= 1.02);
* callsite_us: what one call site costs the contended loop (the median difference over the sites it
  recorded): the figure behind its ratio, which also depends on how long the loop takes per acquisition.

Prints its figures as one JSON line, last.
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_of, report  # noqa: E402

import numpy as np  # noqa: E402

import core  # noqa: E402
from core.trace import collector, tracedir, contention, recorder  # noqa: E402
from core.trace.arrays import EVENT_DTYPE  # noqa: E402
from core.trace.collector import Batch  # noqa: E402
from core.trace.events import Kind  # noqa: E402
from core.trace.store import RunFile, RunWriter  # noqa: E402

N_RECORDS = 1_000_000
OBJECTS = 16                # of which SEMAPHORES release without a hold (they are paired)
SEMAPHORES = 4
THREADS = 8                 # one per process
SITES_PER_PROCESS = 4
CONTENDED = 0.3             # share of acquisitions that waited (4 records: site, request, acquired, release)
CHUNK_NS = 10_000_000       # a collector batch: 10 ms of records, each thread's together
TAKERS = 3                  # processes taking the lock in the contended loop
#: Acquisitions per process in the contended loop: at most 4 records each (call site, request, acquired,
#: release), so that with call sites on or off a taker's ring grows to the same size (16,384 records).
LOOP = 3_000
UNCONTENDED_LOOP = 20_000   # 40,000 records a run: the ring holds them until the next collector pass
UNCONTENDED_RUNS = 5
HELD_WORK = 100             # iterations of a small computation while the lock is held
#: Gives the processor to another taker while holding the lock, so that the takers contend whatever else
#: the machine runs (on a busy machine, short loops otherwise run one after the other).
_yield = getattr(os, "sched_yield", lambda: time.sleep(0))
REPEATS = 9


# -- a saved run of a million records ----------------------------------------------------------------------
def synthetic_records(rng):
    """Lock and semaphore records as the traced primitives write them: per object, holds one after
    another, a third of them by a thread that asked while the previous holder had it."""
    per_hold = 2 + 2 * CONTENDED
    holds = int(N_RECORDS / per_hold / OBJECTS * 1.01)      # a little over: the latest are cut off
    parts = []
    for obj in range(OBJECTS):
        uid = 1000 + obj
        hold = rng.integers(1_000, 50_000, holds)
        contended = rng.random(holds) < CONTENDED
        gap = np.where(contended, rng.integers(1_000, 20_000, holds), rng.integers(5_000, 100_000, holds))
        acquired = np.cumsum(gap + np.concatenate(([0], hold[:-1]))) + rng.integers(0, 1_000_000)
        released = acquired + hold
        wait = np.where(contended, gap + rng.integers(1_000, 200_000, holds), 0)
        thread = rng.integers(0, THREADS, holds)
        pid = (10_000 + thread).astype(np.int32)
        semaphore = obj < SEMAPHORES
        n_c = int(contended.sum())
        ev = np.zeros(2 * holds + 2 * n_c, EVENT_DTYPE)
        i = 0
        for t, kind, a, b, c, who in (
                (acquired[contended] - wait[contended], Kind.CALLSITE, None, 0, 0, contended),
                (acquired[contended] - wait[contended], Kind.ACQ_REQUEST, -1, 0, 0, contended),
                (acquired, Kind.ACQ_OK, wait, 0 if semaphore else -1, 1, slice(None)),
                (released, Kind.RELEASE, -1 if semaphore else hold, 1 if semaphore else -1, 0, slice(None))):
            n = len(t)
            rows = ev[i:i + n]
            rows["t"], rows["uid"], rows["kind"], rows["b"], rows["c"] = t, uid, kind, b, c
            rows["pid"] = rows["tid"] = pid[who]
            rows["a"] = (pid[who] * 100 + obj % SITES_PER_PROCESS) if a is None else a
            i += n
        parts.append(ev)
    ev = np.concatenate(parts)
    return ev[np.argsort(ev["t"], kind="stable")][:N_RECORDS]


def write_run(path, ev):
    """The records in collector-sized batches (each thread's records together, in order), with the strings
    and objects they name."""
    writer = RunWriter(path)
    regs = [{"t": "str", "id": pid * 100 + s, "s": "workload.py:%d in worker" % (10 * s + 10)}
            for pid in range(10_000, 10_000 + THREADS) for s in range(SITES_PER_PROCESS)]
    regs += [{"t": "obj", "uid": 1000 + o, "kind": "Semaphore" if o < SEMAPHORES else "Lock",
              "name": "object %d" % o} for o in range(OBJECTS)]
    edges = np.searchsorted(ev["t"], np.arange(ev["t"][0], ev["t"][-1] + CHUNK_NS, CHUNK_NS))
    for lo, hi in zip(edges[:-1], edges[1:]):
        batch = ev[lo:hi]
        writer.add_batch(Batch(batch[np.argsort(batch["pid"], kind="stable")], regs))
        regs = []
    writer.finish(status="ok")
    writer.close()


def stats_figures():
    rng = np.random.default_rng(7)
    ev = synthetic_records(rng)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "million.mpgrun")
        write_run(path, ev)
        out = {}

        def figures():
            with RunFile(path) as run:
                rep = contention.analyse_run(run)
                out["objects"], out["profile"] = rep.objects(), rep.profile()
                out["links"] = len(rep.links)

        seconds = best_of(figures, 5)
    assert len(out["objects"]) == OBJECTS and len(out["profile"]) == SITES_PER_PROCESS
    return {"stats_1m_s": seconds, "stats_records": int(len(ev)), "stats_links": out["links"]}


# -- what call sites cost a traced lock loop ----------------------------------------------------------------
def take_turns(lock, n, start):
    start.wait()
    for _ in range(n):
        with lock:
            for i in range(HELD_WORK):
                i * i
            _yield()


def contended_loop(ctx, lock):
    """Seconds for TAKERS processes to take ``lock`` LOOP times each."""
    start = ctx.Event()
    ps = [ctx.Process(target=take_turns, args=(lock, LOOP, start)) for _ in range(TAKERS)]
    for p in ps:
        p.start()
    t0 = time.perf_counter()
    start.set()
    for p in ps:
        p.join()
    return time.perf_counter() - t0


def uncontended_loop(lock, drain):
    """The fastest of UNCONTENDED_RUNS runs of one process taking ``lock`` UNCONTENDED_LOOP times, the
    collector draining between runs (outside the time taken)."""
    best = float("inf")
    for _ in range(UNCONTENDED_RUNS):
        t0 = time.perf_counter()
        for _ in range(UNCONTENDED_LOOP):
            with lock:
                pass
        best = min(best, time.perf_counter() - t0)
        drain()
    return best


def ratios(measure):
    """The medians of REPEATS ratios and differences of ``measure()`` with call sites on and off, taken
    alternately, each first in turn, so that both see the same machine."""
    measure()                                       # warm up (the rings grow to their full size)
    ratio, more = [], []
    for repeat in range(REPEATS):
        took = {}
        for on in ((True, False) if repeat % 2 else (False, True)):
            recorder.set_call_sites(on)
            took[on] = measure()
        ratio.append(took[True] / took[False])
        more.append(took[True] - took[False])
    recorder.set_call_sites(True)
    return statistics.median(ratio), statistics.median(more)


def callsite_figures():
    ctx = core.get_context("fork" if "fork" in core.get_all_start_methods() else "spawn")
    d = tracedir.make_trace_dir()
    me = os.getpid()
    tally = {"acquired": 0, "waited": 0, "sites": 0}

    def count(batch):
        ev = batch.events
        acquired = ev[(ev["kind"] == Kind.ACQ_OK) & (ev["pid"] != me)]        # the contended loop's
        tally["acquired"] += len(acquired)
        tally["waited"] += int((acquired["a"] > 0).sum())
        tally["sites"] += int((ev["kind"] == Kind.CALLSITE).sum())

    col = collector.Collector(d, count)     # drained between the measurements, not during them
    recorder.enable(d)
    try:
        lock = ctx.Lock(name="bench")

        def contended():
            took = contended_loop(ctx, lock)
            col.poll()
            return took

        before = tally["sites"]
        contended_ratio, contended_more = ratios(contended)
        sites_per_loop = (tally["sites"] - before) / (REPEATS + 1)      # the warm-up's and the REPEATS on
        uncontended_ratio, _ = ratios(lambda: uncontended_loop(lock, col.poll))
    finally:
        recorder.disable()
        col.stop()
        tracedir.release_trace_dir(d)
    return {"callsite_overhead_ratio": contended_ratio, "uncontended_callsite_ratio": uncontended_ratio,
            "callsite_us": contended_more / max(sites_per_loop, 1) * 1e6,
            "contended_share": tally["waited"] / max(tally["acquired"], 1), "call_sites_recorded": tally["sites"],
            "dropped": col.dropped_total}


def main():
    figures = {}
    figures.update(stats_figures())
    figures.update(callsite_figures())
    report(figures)


if __name__ == "__main__":
    main()
