"""How long Stop (cancel) takes to end a run's whole process tree: the README promises under 2 seconds.

A long lock_contention run is started through the runner; once its workers record, it is cancelled, and the
time from cancel() until wait() returns (the tree ended, the run file finished) is measured, five times.  The
stdlib has no runner to compare with: the figure is an absolute one, its goal the promise.

Prints its figures as one JSON line, last.
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import report  # noqa: E402

from mpgui.scenario_run import prepare, start_run  # noqa: E402

LONG = {"processes": "2", "increments": "1000000", "hold_ms": "1"}


def one(tmp):
    scenario, params, method = prepare("lock_contention", None, LONG)
    run = start_run(scenario, params, method, out=os.path.join(tmp, "c.mpgrun"), home=os.path.join(tmp, "home"),
                    echo_output=())
    deadline = time.monotonic() + 60
    while run.sink.events < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.perf_counter()
    run.cancel()
    run.wait()
    return time.perf_counter() - t0


def main():
    times = []
    for _ in range(5):
        with tempfile.TemporaryDirectory(prefix="mpgui-bench-") as tmp:
            times.append(one(tmp))
    report({"cancel_s_median": statistics.median(times), "cancel_s_max": max(times), "goal_s": 2.0})


if __name__ == "__main__":
    main()
