"""Pool throughput: core.Pool (tracing off and on) against multiprocessing.Pool, in the same run.

2 worker processes, fork.  Each figure is the best of ``REPEAT`` runs of the call alone: the pools are
created and warmed up before timing (pool start-up is not measured; the warm-up also makes the traced
workers touch their whole ring once), and the stdlib's and core's runs alternate so both see the same
machine; each ratio uses the stdlib runs of its own phase.  The traced runs have a real collector
draining the rings in this process (its sink only counts), as in ``mpgui-cli trace``.

* busy map: 2000 tasks of 1 ms of CPU (spinning on perf_counter), ``map`` with the default chunksize;
  goal: traced <= 1.03x the stdlib;
* no-op map: 200,000 no-op tasks, ``map`` with the default chunksize; goals: untraced <= 1.1x,
  traced <= 2x;
* imap_unordered: 20,000 no-op tasks, chunksize=1; goal: <= 1.0x (beat the stdlib's one message per task).

Prints its figures as one JSON line, last: the ratios (core time / stdlib time) and the raw times (s).
"""
import multiprocessing
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import report  # noqa: E402

import core  # noqa: E402
from core.trace import collector, tracedir, recorder  # noqa: E402

PROCESSES = 2
REPEAT = 5
N_BUSY = 2000
BUSY_SECONDS = 0.001
N_NOOP = 200_000
N_IMAP = 20_000


def busy(x):
    end = time.perf_counter() + BUSY_SECONDS
    while time.perf_counter() < end:
        pass
    return x


def noop(x):
    return None


CASES = {
    "busy_map": (lambda p: p.map(busy, range(N_BUSY)), lambda p: p.map(busy, range(40))),
    "noop_map": (lambda p: p.map(noop, range(N_NOOP)), lambda p: p.map(noop, range(N_NOOP))),
    "imap_unordered_cs1": (lambda p: sum(1 for _ in p.imap_unordered(noop, range(N_IMAP), chunksize=1)),
                           lambda p: sum(1 for _ in p.imap_unordered(noop, range(N_IMAP)))),
}


def timed(fn, pool):
    t0 = time.perf_counter()
    fn(pool)
    return time.perf_counter() - t0


def best_alternating(case, pools):
    """Best of REPEAT for each pool, the pools taking turns."""
    run, warm = CASES[case]
    for p in pools:
        warm(p)
    best = [float("inf")] * len(pools)
    for _ in range(REPEAT):
        for k, p in enumerate(pools):
            best[k] = min(best[k], timed(run, p))
    return best


def main():
    std_ctx = multiprocessing.get_context("fork")
    core_ctx = core.get_context("fork")
    figures = {}
    times = {}

    # -- untraced: the stdlib and core, alternating ---------------------------------------------------------
    assert not recorder.ENABLED
    std_pool = std_ctx.Pool(PROCESSES)
    core_pool = core_ctx.Pool(PROCESSES)
    try:
        for case in CASES:
            times[case + "_std_s"], times[case + "_core_s"] = best_alternating(case, [std_pool, core_pool])
    finally:
        core_pool.terminate()
        core_pool.join()

    # -- traced: core with a collector draining the rings; the stdlib again, alternating ---------------------
    d = tracedir.make_trace_dir()
    counted = {"events": 0}
    lock = threading.Lock()

    def sink(batch):
        with lock:
            counted["events"] += len(batch.events)

    saved = os.environ.get(recorder.TRACE_ENV)
    recorder.enable(d)
    col = collector.Collector(d, sink).start()
    try:
        traced_pool = core_ctx.Pool(PROCESSES)
        try:
            for case in CASES:
                s, c = best_alternating(case, [std_pool, traced_pool])
                times[case + "_std_traced_run_s"] = s
                times[case + "_core_traced_s"] = c
        finally:
            traced_pool.terminate()
            traced_pool.join()
    finally:
        recorder.disable()
        if saved is not None:
            os.environ[recorder.TRACE_ENV] = saved
        col.stop()
        std_pool.terminate()
        std_pool.join()

    # each ratio against the stdlib runs that alternated with it (same phase, same machine load)
    def ratio(case, traced):
        if traced:
            return times[case + "_core_traced_s"] / times[case + "_std_traced_run_s"]
        return times[case + "_core_s"] / times[case + "_std_s"]

    figures["busy_map_ratio"] = ratio("busy_map", True)
    figures["busy_map_ratio_untraced"] = ratio("busy_map", False)
    figures["noop_map_ratio_traced"] = ratio("noop_map", True)
    figures["noop_map_ratio_untraced"] = ratio("noop_map", False)
    figures["imap_unordered_cs1_ratio"] = ratio("imap_unordered_cs1", False)
    figures["imap_unordered_cs1_ratio_traced"] = ratio("imap_unordered_cs1", True)
    figures.update(times)
    figures["events"] = counted["events"]
    figures["dropped"] = col.dropped_total
    report(figures)


if __name__ == "__main__":
    main()
