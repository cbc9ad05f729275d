"""Collector throughput: two producer processes record as fast as they can; a collector process (as a traced
run has) drains their rings into a real run file (SQLite, WAL, compressed chunks).

Figures: events_per_s (events collected and stored / wall time from the producers' start until everything
was stored), dropped (records the producers had to drop because their ring was full), and for comparison
the producers' own recording rate; bytes_per_event (the run file's size / events stored).  The stdlib has
no tracer to compare with; the producers' rate is the yardstick: the collector should keep up with it.

Prints its figures as one JSON line, last.  Goal: >= 1,000,000 events/s collected.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, report  # noqa: E402

from core.trace import collect_process, tracedir  # noqa: E402
from core.trace.store import RunWriter  # noqa: E402

N_PER_PRODUCER = 2_000_000
PRODUCER = r'''
import sys, time
from core.trace import recorder
emit = recorder.emit
n = int(sys.argv[1])
t0 = time.perf_counter()
for i in range(n):
    emit(120, 1, i, 0)
print(n / (time.perf_counter() - t0))
'''


def main():
    d = tracedir.make_trace_dir()
    out_dir = tempfile.mkdtemp(prefix="mpgui-bench-")
    path = os.path.join(out_dir, "bench.mpgrun")
    writer = RunWriter(path)
    col = collect_process.CollectorProcess(d, path).start()
    col.wait_ready()                      # as a traced program, the producers start with the collector running
    env = dict(os.environ, MPGUI_TRACE_DIR=d, PYTHONPATH=ROOT)
    try:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", PRODUCER, str(N_PER_PRODUCER)], env=env,
                                  stdout=subprocess.PIPE) for _ in range(2)]
        rates = [float(p.communicate()[0]) for p in procs]
        expected = 2 * N_PER_PRODUCER
        while col.watch.events + col.watch.dropped < expected and time.perf_counter() - t0 < 60:
            time.sleep(0.002)
        elapsed = time.perf_counter() - t0
        collected = col.watch.events
    finally:
        col.stop()
        col.reap()
        writer.close()
        size = os.path.getsize(path)
        shutil.rmtree(out_dir, ignore_errors=True)
        tracedir.release_trace_dir(d)
    report({"events_per_s": collected / elapsed, "dropped": col.watch.dropped, "collected": collected,
            "producers": 2, "producer_events_per_s": sum(rates), "elapsed_s": elapsed,
            "bytes_per_event": size / max(1, collected)})


if __name__ == "__main__":
    main()
