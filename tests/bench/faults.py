"""How soon core's Pool notices a worker killed from outside: the time from SIGKILL to the caller's
WorkerLostError, and to the pool being whole again (a replacement worker running).  The stdlib's Pool never
notices (its result waits forever), so there is no ratio: the figures are absolute, the promise about 1 s.

Prints its figures as one JSON line, last.
"""
import os
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import report  # noqa: E402

import core  # noqa: E402


def say_pid_then_sleep(path):
    """A task that writes its worker's pid to ``path``, then runs for an hour."""
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(3600)


def one(method, tmp):
    with core.get_context(method).Pool(2) as pool:
        path = os.path.join(tmp, "started")
        r = pool.apply_async(say_pid_then_sleep, (path,))
        while not os.path.exists(path):
            time.sleep(0.005)
        with open(path) as f:
            victim = int(f.read())
        t0 = time.perf_counter()
        os.kill(victim, signal.SIGKILL)
        try:
            r.get(timeout=30)
        except core.WorkerLostError:
            pass
        noticed = time.perf_counter() - t0
        while len(pool._pool) < 2 or not all(w.is_alive() for w in pool._pool):
            time.sleep(0.005)
        whole = time.perf_counter() - t0
        os.unlink(path)
    return noticed, whole


def main():
    figures = {}
    for method in core.get_all_start_methods():
        runs = []
        with tempfile.TemporaryDirectory(prefix="mpgui-bench-") as tmp:
            for _ in range(5):
                runs.append(one(method, tmp))
        figures["%s_lost_error_ms" % method] = 1000 * statistics.median(r[0] for r in runs)
        figures["%s_replaced_ms" % method] = 1000 * statistics.median(r[1] for r in runs)
    report(figures)


if __name__ == "__main__":
    main()
