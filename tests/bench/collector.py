"""Collector throughput: two producer processes record as fast as they can; one collector drains their rings
into a real run file (SQLite, WAL).

Figures: events_per_s (events collected and stored / wall time from the producers' start until everything
was stored), dropped (records the producers had to drop because their ring was full), and for comparison
the producers' own recording rate.  The stdlib has no tracer to compare with; the producers' rate is the
yardstick: the collector should keep up with it.

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

from core.trace import collector  # noqa: E402
from core.trace.store import BackgroundWriter, RunWriter  # noqa: E402

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
    d = collector.make_trace_dir()
    out_dir = tempfile.mkdtemp(prefix="mpgui-bench-")
    writer = RunWriter(os.path.join(out_dir, "bench.mpgrun"))
    sink = BackgroundWriter(writer)
    col = collector.Collector(d, sink).start()
    env = dict(os.environ, MPGUI_TRACE_DIR=d, PYTHONPATH=ROOT)
    try:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", PRODUCER, str(N_PER_PRODUCER)], env=env,
                                  stdout=subprocess.PIPE) for _ in range(2)]
        rates = [float(p.communicate()[0]) for p in procs]
        expected = 2 * N_PER_PRODUCER
        while writer.events_written + col.dropped_total < expected and time.perf_counter() - t0 < 60:
            time.sleep(0.002)
        elapsed = time.perf_counter() - t0
        collected = writer.events_written
    finally:
        col.stop()
        sink.close()
        writer.close()
        shutil.rmtree(out_dir, ignore_errors=True)
        collector.release_trace_dir(d)
    report({"events_per_s": collected / elapsed, "dropped": col.dropped_total, "collected": collected,
            "producers": 2, "producer_events_per_s": sum(rates), "elapsed_s": elapsed})


if __name__ == "__main__":
    main()
