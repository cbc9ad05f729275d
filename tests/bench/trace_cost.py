"""What tracing costs the traced program.

* ns_per_event: recorder.emit in a loop (the ring is larger than the loop, so nothing is drained or dropped
  while timing: this is the pure recording cost in the recording process);
* lock_pair_overhead_us: an uncontended acquire/release pair on a traced core.Lock minus the same pair on a
  stdlib multiprocessing.Lock, both measured in this run;
* untraced_lock_ratio: ``with lock: pass`` on core.Lock with tracing off / the same on the stdlib's Lock.

Prints its figures as one JSON line, last.  Goals: <= 1000 ns per event, <= 2 us per pair, ratio <= 1.1.
"""
import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_of, report  # noqa: E402

import core  # noqa: E402
from core.trace import collector, tracedir, recorder  # noqa: E402

N_EVENTS = 100_000          # < the ring's 131,072 records: no drain needed while timing
N_PAIRS = 50_000            # 2 events per pair


def main():
    ctx_std = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    ctx_core = core.get_context(ctx_std.get_start_method())

    # -- tracing off: core's lock is the stdlib's lock ---------------------------------------------------
    std_lock = ctx_std.Lock()
    core_lock_off = ctx_core.Lock()

    def with_loop(lock):
        def run():
            for _ in range(N_PAIRS):
                with lock:
                    pass
        return run

    # interleave the two measurements so both see the same machine state
    t_std_with, t_core_off = [], []
    for _ in range(5):
        t_std_with.append(best_of(with_loop(std_lock), 1))
        t_core_off.append(best_of(with_loop(core_lock_off), 1))
    untraced_ratio = min(t_core_off) / min(t_std_with)

    # -- tracing on --------------------------------------------------------------------------------------
    d = tracedir.make_trace_dir()
    sink = []
    col = collector.Collector(d, lambda b: sink.append(len(b.events)))
    recorder.enable(d)
    try:
        emit = recorder.emit
        kind = 11

        def emit_loop():
            for i in range(N_EVENTS):
                emit(kind, 7, i, 2, 3)
            col.poll()                     # drain (outside the per-event figure below)

        emit(kind, 7)                      # open this thread's ring before timing
        col.poll()
        times = []
        for _ in range(5):
            import time
            t0 = time.perf_counter()
            for i in range(N_EVENTS):
                emit(kind, 7, i, 2, 3)
            times.append(time.perf_counter() - t0)
            col.poll()
        ns_per_event = min(times) / N_EVENTS * 1e9

        traced_lock = ctx_core.Lock()

        def pair_loop(lock):
            acquire, release = lock.acquire, lock.release

            def run():
                for _ in range(N_PAIRS):
                    acquire()
                    release()
            return run

        t_std_pair, t_traced_pair = [], []
        for _ in range(5):
            t_std_pair.append(best_of(pair_loop(std_lock), 1))
            t_traced_pair.append(best_of(pair_loop(traced_lock), 1))
            col.poll()
        pair_overhead_us = (min(t_traced_pair) - min(t_std_pair)) / N_PAIRS * 1e6
        events = sum(sink)
    finally:
        recorder.disable()
        col.stop()
        tracedir.release_trace_dir(d)

    report({"ns_per_event": ns_per_event, "lock_pair_overhead_us": pair_overhead_us,
            "untraced_lock_ratio": untraced_ratio,
            "stdlib_pair_us": min(t_std_pair) / N_PAIRS * 1e6,
            "traced_pair_us": min(t_traced_pair) / N_PAIRS * 1e6,
            "stdlib_with_us": min(t_std_with) / N_PAIRS * 1e6,
            "core_untraced_with_us": min(t_core_off) / N_PAIRS * 1e6,
            "events_recorded": events, "dropped": col.dropped_total})


if __name__ == "__main__":
    main()
