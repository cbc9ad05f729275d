"""Tracing at scale: what ``main.py trace`` does with a hot program and how quickly it ends, and what opening,
exporting, drawing and following a large run cost.

One function per figure (each returns a dict of figures); ``main`` runs them all and prints one JSON object
as its last line, so a figure is added by writing its function and listing it in ``FIGURES`` (``python
scale.py open export`` runs only those).  Each measurement that needs a clean process runs in a child of its
own; the same code runs on any version of the app (what it calls exists in version one too), so a figure
can be taken before and after a change.

* ``hot``: 4 processes each doing ``HOT_PAIRS`` ``with lock: pass`` on one traced core.Lock, recorded by
  ``main.py trace`` with the default ring size.  ``hot_drop_ratio`` = dropped / produced (recorded +
  dropped); goal <= 0.001.  Also the command's wall time, the program's own time (it prints it), the largest
  resident set of any process of the command's tree (the runner, before this issue), the run file's size;
  then ``main.py export --chrome`` of that run (``hot_export_*``: a real run has many more spans and
  contended waits per event than the synthetic one, so a larger blocking profile).
* ``end``: a program that makes and unlinks one SharedMemory segment (so the stdlib's resource tracker
  starts), traced.  ``end_overhead_s`` = the command's wall time minus the program's own wall time run
  untraced (best of ``END_REPEAT`` each); goal <= 0.3 s.
* ``open``: a synthetic run of ``OPEN_EVENTS`` events (``synthetic_run``: locks, semaphores, queues, pool
  tasks over 16 processes) opened as the app opens it (``RunSource.open_file``, offscreen, until it is read
  and its snapshot built).  ``open_s_per_mevent`` (the child's CPU seconds per million events; goal <= 0.5)
  and ``model_bytes_per_event`` (its resident memory after, minus before, per event; goal <= 64): the best
  of ``OPEN_REPEAT`` children for the time (what the other load on the machine adds to a run is not the
  opening's cost; ``open_s_per_mevent_median`` is the median), the median for the memory;
  ``open_model_s_per_mevent``: the same for the run model alone (``RunModel.from_run_file``), without the
  timeline's level-of-detail index and object tracks the app builds from it.
* ``export``: ``main.py export RUN --chrome`` of a run of ``EXPORT_EVENTS`` events, as a user runs it:
  ``export_us_per_event`` (the command's wall time per event; goal <= 2) and ``export_peak_mb`` (its largest
  resident set; goal <= 300); ``export_run_*`` the same for ``export.export_run`` (one pass over the file),
  where it exists.
* ``frame``: the timeline widget (offscreen) showing ``FRAME_SPANS`` lock holds on 16 lanes over 200 s,
  panned and zoomed along the path of tests/bench/gui.py: ``frame_ms_10m``, the median time to render a
  frame (goal <= 16), and the worst.  Version one's model cannot hold ten million spans (it needs about 9 GB
  for the 20 million events): its timeline is given the bars directly.
* ``live``: a writer process records ``LIVE_RATE`` events per second into a run file (a batch every 10 ms,
  as the collector does) for ``LIVE_SECONDS``; the app's reader follows it and a 33 ms timer (the main
  window's refresh) samples how far the newest event shown trails the clock: ``live_lag_ms`` (95th
  percentile; goal <= 250), the median and the worst, the longest stall of the event loop, and whether the
  view skipped detail.

Runs on whatever the machine is doing: other load shows in the figures (the drop ratio most of all).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, report  # noqa: E402

import numpy as np  # noqa: E402

import synthetic_run  # noqa: E402

MAIN = os.path.join(ROOT, "main.py")
HOT_PROCESSES = 4
HOT_PAIRS = 250_000
END_REPEAT = 3
OPEN_REPEAT = 3

HOT_PROGRAM = textwrap.dedent('''
    import sys, time
    import core as multiprocessing

    def work(lock, n):
        for _ in range(n):
            with lock:
                pass

    if __name__ == "__main__":
        lock = multiprocessing.Lock()
        t0 = time.perf_counter()
        ps = [multiprocessing.Process(target=work, args=(lock, %d)) for _ in range(%d)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        print("program_s", time.perf_counter() - t0)
''') % (HOT_PAIRS, HOT_PROCESSES)

SHM_PROGRAM = textwrap.dedent('''
    import core as multiprocessing
    from core import shared_memory

    if __name__ == "__main__":
        segment = shared_memory.SharedMemory(create=True, size=4096)
        segment.buf[0] = 1
        segment.close()
        segment.unlink()
''')


def _timed_command(argv, env=None):
    """Run ``argv``; (wall seconds, stdout, largest resident set in MiB of any process of its tree)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         env=env, text=True)
    out = p.stdout.read()
    # wait4's resource usage covers the child and every descendant it waited for: its maxrss is the largest
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), p.returncode, out[-2000:]))
    return wall, out, usage.ru_maxrss / 1024.0


def _trace(script, out, home):
    return _timed_command([sys.executable, MAIN, "--home", home, "trace", script, "--out", out, "--force"])


def _run_figures(path):
    from core.trace.store import RunFile
    with RunFile(path) as rf:
        meta = rf.meta()
        return int(meta.get("events") or 0), int(meta.get("dropped") or 0)


def hot(tmp):
    script = os.path.join(tmp, "hot.py")
    with open(script, "w") as f:
        f.write(HOT_PROGRAM)
    out = os.path.join(tmp, "hot.mpgrun")
    wall, stdout, rss = _trace(script, out, os.path.join(tmp, "home"))
    recorded, dropped = _run_figures(out)
    program = float(re.search(r"program_s (\S+)", stdout).group(1))
    export_wall, _, export_rss = _timed_command([sys.executable, MAIN, "--home", os.path.join(tmp, "home"),
                                                 "export", out, "--chrome", os.path.join(tmp, "hot.json")])
    return {"hot_drop_ratio": dropped / max(1, recorded + dropped), "hot_recorded": recorded,
            "hot_dropped": dropped, "hot_wall_s": wall, "hot_program_s": program, "hot_peak_rss_mb": rss,
            "hot_run_file_mb": os.path.getsize(out) / 2 ** 20,
            "hot_export_us_per_event": export_wall / max(1, recorded) * 1e6, "hot_export_peak_mb": export_rss}


def end(tmp):
    script = os.path.join(tmp, "shm.py")
    with open(script, "w") as f:
        f.write(SHM_PROGRAM)
    env = dict(os.environ, PYTHONPATH=ROOT)
    untraced = min(_timed_command([sys.executable, script], env)[0] for _ in range(END_REPEAT))
    traced = min(_trace(script, os.path.join(tmp, "shm.mpgrun"), os.path.join(tmp, "home"))[0]
                 for _ in range(END_REPEAT))
    return {"end_overhead_s": traced - untraced, "end_traced_s": traced, "end_untraced_s": untraced}


OPEN_EVENTS = 2_000_000
EXPORT_EVENTS = 2_000_000
FRAME_SPANS = 10_000_000
LIVE_RATE = 1_000_000
LIVE_SECONDS = 8.0
#: Lag samples in the first seconds of a live run are not counted (start-up, the first snapshot).
LIVE_WARMUP_S = 2.0


def _child(code, *args):
    """Run ``code`` in a fresh Python with the repository first on its path; its last stdout line, as JSON."""
    p = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r); sys.path.insert(0, %r)\n%s"
                        % (ROOT, os.path.dirname(os.path.abspath(__file__)), code)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise RuntimeError("a measurement failed: %s" % p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


OPEN_CODE = """
import json, os, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import psutil
from PySide6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])
from mpgui.gui.runsource import RunSource
rss0 = psutil.Process().memory_info().rss
cpu0 = time.process_time()
src = RunSource.open_file(sys.argv[1])
while src.state in ("loading", "starting", "running"):
    time.sleep(0.02)                    # not a busy loop: the reader's work is what is measured
    app.processEvents()
cpu = time.process_time() - cpu0
time.sleep(0.5)
app.processEvents()
rss = psutil.Process().memory_info().rss
events = src.snapshot.events
src.close()
print(json.dumps({"cpu_s": cpu, "rss_delta": rss - rss0, "events": events, "state": src.state}))
"""


MODEL_CODE = """
import json, time
from core.trace.model import RunModel
from core.trace.store import RunFile
cpu0 = time.process_time()
with RunFile(sys.argv[1]) as rf:
    m = RunModel.from_run_file(rf)
print(json.dumps({"cpu_s": time.process_time() - cpu0, "events": m.events_seen}))
"""


def open_(tmp):
    path = os.path.join(tmp, "open.mpgrun")
    synthetic_run.write_run(path, OPEN_EVENTS)
    runs = [_child(OPEN_CODE, path) for _ in range(OPEN_REPEAT)]
    n = runs[0]["events"]
    cpu = sorted(r["cpu_s"] for r in runs)
    model = min((_child(MODEL_CODE, path) for _ in range(OPEN_REPEAT)), key=lambda r: r["cpu_s"])
    return {"open_s_per_mevent": cpu[0] / (n / 1e6), "open_s_per_mevent_median": cpu[len(cpu) // 2] / (n / 1e6),
            "model_bytes_per_event": sorted(r["rss_delta"] for r in runs)[len(runs) // 2] / n, "open_events": n,
            "open_model_s_per_mevent": model["cpu_s"] / (model["events"] / 1e6)}


EXPORT_RUN_CODE = """
import json, resource, time
from core.trace import export
from core.trace.store import RunFile
if not hasattr(export, "export_run"):
    print(json.dumps({}))
    raise SystemExit
t0 = time.perf_counter()
with RunFile(sys.argv[1]) as rf:
    n, _ = export.export_run(rf, chrome=sys.argv[2])
print(json.dumps({"wall_s": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
"""


def export(tmp):
    path = os.path.join(tmp, "export.mpgrun")
    synthetic_run.write_run(path, EXPORT_EVENTS)
    out = os.path.join(tmp, "export.json")
    wall, _, rss = _timed_command([sys.executable, MAIN, "--home", os.path.join(tmp, "home"), "export", path,
                                   "--chrome", out])
    figures = {"export_us_per_event": wall / EXPORT_EVENTS * 1e6, "export_peak_mb": rss,
               "export_json_mb": os.path.getsize(out) / 2 ** 20}
    got = _child(EXPORT_RUN_CODE, path, out)
    if got:
        figures.update({"export_run_us_per_event": got["wall_s"] / EXPORT_EVENTS * 1e6,
                        "export_run_peak_mb": got["peak_mb"]})
    return figures


FRAME_CODE = """
import json, os, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import numpy as np
from PySide6 import QtWidgets
from core.trace.arrays import EVENT_DTYPE
from core.trace.events import Kind
from mpgui.gui import timeline_data
from mpgui.gui.timeline import TimelineView
import gui as bench_gui
N, LANES, SPAN_S = int(sys.argv[1]), 16, 200.0
T0 = 10 ** 12
app = QtWidgets.QApplication([])
rng = np.random.default_rng(1)
spacing = SPAN_S * 1e9 / (N / LANES)
lanes = [timeline_data.Lane(1000 + i, "worker %d" % i, "worker", "running") for i in range(LANES)]
if hasattr(timeline_data, "TimelineBuilder"):
    from core.trace.model import RunModel
    model = RunModel()
    model.set_meta({"created_perf": T0})
    model.ingest(None, [{"t": "proc", "pid": 1000 + i, "ppid": 1, "role": "worker", "name": "worker %d" % i}
                        for i in range(LANES)])
    builder = timeline_data.TimelineBuilder(model)
    per = 1 << 16
    for lo in range(0, N, per):
        k = min(per, N - lo)
        i = np.arange(lo, lo + k)
        t0 = T0 + ((i // LANES) * spacing).astype(np.int64) + rng.integers(0, int(spacing * 0.1), k)
        d = np.minimum(rng.exponential(spacing * 0.8, k).astype(np.int64) + 100, int(spacing * 0.85))
        ev = np.zeros(2 * k, EVENT_DTYPE)
        ev["t"][0::2], ev["t"][1::2] = t0, t0 + d
        ev["kind"][0::2], ev["kind"][1::2] = int(Kind.ACQ_OK), int(Kind.RELEASE)
        ev["uid"], ev["b"] = 7, -1
        ev["c"][0::2] = 1
        ev["pid"] = ev["tid"] = 1000 + np.repeat(i % LANES, 2)
        model.ingest(ev)
        with model.lock:
            data = builder.update()
else:                      # version one: its timeline given the bars directly
    i = np.arange(N)
    start = (i // LANES) * spacing / 1e9
    d = np.minimum(rng.exponential(spacing * 0.8, N) + 100, spacing * 0.85) / 1e9
    bars = timeline_data.Bars(1000 + (i % LANES), start, start + d, np.full(N, timeline_data.C_HOLD, np.int8), i)
    data = timeline_data.TimelineData(lanes, {"holds": bars}, [], SPAN_S)
view = TimelineView()
view.resize(1400, 700)
view.show()
view.set_data(data)
view.set_follow(False)
app.processEvents()
times = bench_gui.time_frames(view.plot, lambda a, b: view.vb.setXRange(a, b, padding=0))
print(json.dumps({"median_ms": float(np.median(times)), "worst_ms": float(np.max(times))}))
"""


def frame(tmp):
    got = _child(FRAME_CODE, FRAME_SPANS)
    return {"frame_ms_10m": got["median_ms"], "frame_ms_10m_worst": got["worst_ms"]}


LIVE_WRITER = """
import os, time
import numpy as np
from core.trace.collector import Batch
from core.trace.store import RunWriter
import synthetic_run
path, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
w = RunWriter(path, {"runner_pid": os.getpid(), "kind": "trace", "created_wall": time.time() - 1.0})
w.add_batch(Batch(np.zeros(0, synthetic_run.EVENT_DTYPE), synthetic_run.registrations(), {}))
per = rate // 100
# the records, made once: each batch is the next slice of them, its times the last 10 ms
pool = np.concatenate(list(synthetic_run.chunks(2_000_000)))
pool = pool[np.argsort(pool["t"], kind="stable")]
print("ready", flush=True)
start = time.perf_counter()
k = 0
last = 0
while time.perf_counter() - start < seconds:
    lo = (k * per) % (len(pool) - per)
    ev = pool[lo:lo + per].copy()
    # the last 10 ms, after the previous batch's records and not after now: a batch written late (the writer
    # catching up) must not go back in time, or a thread's release would come before its acquisition, nor
    # ahead of the clock, or the view would seem to be ahead of the run
    now = time.perf_counter_ns()
    first = max(now - 10_000_000, last + 1)
    ev["t"] = first + np.arange(per, dtype=np.int64) * max(now - first, per) // per
    last = int(ev["t"][-1])
    w.add_batch(Batch(ev, [], {}))
    k += 1
    time.sleep(max(0.0, start + k * 0.01 - time.perf_counter()))
print("written", k * per, flush=True)
w.finish(status="done")
w.close()
"""

LIVE_CODE = """
import json, os, subprocess, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import numpy as np
from PySide6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])
from mpgui.gui.runsource import RunSource
from mpgui.gui.timeline import TimelineView
path, rate, seconds, warmup, writer_code = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
writer = subprocess.Popen([sys.executable, "-c", writer_code, path, rate, str(seconds)], stdout=subprocess.PIPE,
                          text=True)
assert writer.stdout.readline().startswith("ready")
view = TimelineView()
view.resize(1400, 700)
view.show()
src = RunSource.open_file(path)
lags, gaps, dropping = [], [], False
start = time.perf_counter()
last = [time.perf_counter()]
shown = [None]
kept = [None, 0]                  # events the live model skipped, and saw, by the end of the recording
def refresh():
    global dropping
    now = time.perf_counter()
    gaps.append(now - last[0])
    last[0] = now
    snap = src.snapshot
    newest = None
    if snap is not None:          # version one's snapshot has no t_last: its elapsed time says the same
        newest = getattr(snap, "t_last", None) or (src.model.t0 + int(snap.elapsed * 1e9))
    if snap is not None and newest:
        if snap is not shown[0]:
            view.set_data(snap.timeline)
            shown[0] = snap
        if now - start > warmup and writer.poll() is None:          # while the run records
            lags.append((time.perf_counter_ns() - newest) / 1e6)
            kept[:] = [getattr(src.model, "skipped_events", None), src.model.events_seen]
        dropping = dropping or bool(getattr(snap, "dropping", False))
timer = QtCore.QTimer()
timer.setInterval(33)
timer.timeout.connect(refresh)
timer.start()
# the app's event loop: it sleeps until an event comes (the 33 ms timer at least), as app.exec() does; a loop
# that called processEvents without waiting would spin and take the GIL from the reader thread
wait = QtCore.QEventLoop.ProcessEventsFlag.AllEvents | QtCore.QEventLoop.ProcessEventsFlag.WaitForMoreEvents
while writer.poll() is None or src.state in ("running", "loading", "starting"):
    app.processEvents(wait)
    if time.perf_counter() - start > seconds + 60:
        break
timer.stop()
events = src.snapshot.events if src.snapshot is not None else 0
written = int(writer.stdout.read().split()[-1])
src.close()
writer.wait()
print(json.dumps({"lags": lags, "skipped": kept[0], "seen": kept[1], "max_gap_ms": max(gaps[10:] or [0]) * 1e3,
                  "dropping": dropping, "events": events,
                  "written": written}))
"""


def live(tmp):
    path = os.path.join(tmp, "live.mpgrun")
    got = _child(LIVE_CODE, path, LIVE_RATE, LIVE_SECONDS, LIVE_WARMUP_S, "import sys; sys.path.insert(0, %r); "
                 "sys.path.insert(0, %r)\n%s" % (ROOT, os.path.dirname(os.path.abspath(__file__)), LIVE_WRITER))
    lags = np.array(got["lags"]) if got["lags"] else np.array([float("nan")])
    return {"live_lag_ms": float(np.percentile(lags, 95)), "live_lag_median_ms": float(np.median(lags)),
            "live_lag_worst_ms": float(lags.max()), "live_max_stall_ms": got["max_gap_ms"],
            "live_skipped_detail": got["dropping"], "live_events": got["events"],
            # the share of the events the live view drew (the rest it skipped to keep up; all are in the file)
            "live_drawn_share": None if got.get("skipped") is None else 1 - got["skipped"] / max(1, got["seen"]),
            "live_rate": got["written"] / LIVE_SECONDS}


#: The figures, in the order they run.
FIGURES = [hot, end, open_, export, frame, live]


def main(names=()):
    figures = {}
    chosen = [fn for fn in FIGURES if not names or fn.__name__.strip("_") in names]
    with tempfile.TemporaryDirectory(prefix="mpgui-bench-scale-") as tmp:
        for fn in chosen:
            figures.update(fn(tmp))
    report(figures)


if __name__ == "__main__":
    main(sys.argv[1:])
