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
  recorded): the figure behind its ratio, which also depends on how long the loop takes per acquisition;
* live_events_per_s: sync events per second (the lock and semaphore records above, with call sites) the app
  ingests and shows live: a writer process records them into a run file at a rate (a batch every 10 ms, as
  the collector does) for LIVE_SECONDS while the app's reader follows it (every snapshot holds every
  object's state), the timeline and the contention panel (its per-object figures, recomputed live from the
  run file) draw every snapshot, and a LIVE_TICK_MS timer measures the event loop.  The highest of
  LIVE_RATES at which the event loop never stalled more than LIVE_STALL_LIMIT_MS, the reader skipped no
  detail and the figures came (goal >= 200,000); max_stall_ms: the longest stall at that rate (goal <= 50).
  live_trials lists every rate tried with its stall and whether it kept up.  ``contention.py live`` makes
  only these (``stats``, ``callsite``: the others).

Prints its figures as one JSON line, last.
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, best_of, report  # noqa: E402

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
#: Rates tried for live_events_per_s (events per second), lowest first; it stops at the first that fails.
LIVE_RATES = (100_000, 200_000, 300_000, 400_000, 600_000, 800_000)
LIVE_SECONDS = 5.0
#: The event loop's heartbeat: a stall is the gap between two ticks beyond it.
LIVE_TICK_MS = 5
LIVE_STALL_LIMIT_MS = 50.0
#: Ticks in the first second are not counted (start-up: the window is shown, the first snapshot built).
LIVE_WARMUP_S = 1.0


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


# -- following a live run ---------------------------------------------------------------------------------
LIVE_WRITER = """
import os, sys, time
import numpy as np
sys.path.insert(0, sys.argv[4])
import contention as bench
from core.trace.collector import Batch
from core.trace.store import RunWriter
path, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pool = bench.synthetic_records(np.random.default_rng(7))
w = RunWriter(path, {"runner_pid": os.getpid(), "kind": "trace", "created_wall": time.time() - 1.0})
regs = [{"t": "str", "id": pid * 100 + s, "s": "workload.py:%d in worker" % (10 * s + 10)}
        for pid in range(10_000, 10_000 + bench.THREADS) for s in range(bench.SITES_PER_PROCESS)]
regs += [{"t": "obj", "uid": 1000 + o, "kind": "Semaphore" if o < bench.SEMAPHORES else "Lock", "name": "object %d" % o,
          **({"value": 1} if o < bench.SEMAPHORES else {})} for o in range(bench.OBJECTS)]
w.add_batch(Batch(pool[:0], regs, {}))
per = rate // 100
print("ready", flush=True)
start = time.perf_counter()
k = 0
while time.perf_counter() - start < seconds:
    lo = (k * per) % (len(pool) - per)
    ev = pool[lo:lo + per].copy()
    # the records keep their order and spacing, moved to the last 10 ms
    span = max(int(ev["t"][-1] - ev["t"][0]), 1)
    ev["t"] = time.perf_counter_ns() - 10_000_000 + (ev["t"] - ev["t"][0]) * 10_000_000 // span
    w.add_batch(Batch(ev[np.argsort(ev["pid"], kind="stable")], [], {}))
    k += 1
    time.sleep(max(0.0, start + k * 0.01 - time.perf_counter()))
print("written", k * per, flush=True)
w.finish(status="done")
w.close()
"""

LIVE_CODE = """
import json, os, subprocess, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])
from mpgui.gui.contention_view import ContentionView
from mpgui.gui.runsource import RunSource
from mpgui.gui.timeline import TimelineView
path, rate, seconds, tick_ms, warmup, here = sys.argv[1:7]
seconds, tick_ms, warmup = float(seconds), int(tick_ms), float(warmup)
writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, path, rate, str(seconds), here], stdout=subprocess.PIPE,
                          text=True)
assert writer.stdout.readline().startswith("ready")
timeline, panel = TimelineView(), ContentionView()
timeline.resize(1400, 500)
panel.resize(1400, 400)
timeline.show()
panel.show()
panel.pages.setCurrentIndex(1)          # the per-object figures, recomputed while the run goes
src = RunSource.open_file(path)
gaps, dropping, figures = [], [False], [0]
panel.sigFigures.connect(lambda *_: figures.__setitem__(0, figures[0] + 1))
start = time.perf_counter()
last = [start]
shown = [None]
def tick():
    now = time.perf_counter()
    if now - start > warmup and writer.poll() is None:
        gaps.append(now - last[0])
    last[0] = now
def refresh():
    snap = src.snapshot
    if snap is not None and snap is not shown[0]:
        shown[0] = snap
        timeline.set_data(snap.timeline)
        panel.set_snapshot(snap, src, final=src.state not in ("running", "loading", "starting"))
        dropping[0] = dropping[0] or bool(snap.dropping)
beat = QtCore.QTimer()
beat.setInterval(tick_ms)
beat.timeout.connect(tick)
beat.start()
timer = QtCore.QTimer()
timer.setInterval(33)
timer.timeout.connect(refresh)
timer.start()
while writer.poll() is None or src.state in ("running", "loading", "starting"):
    app.processEvents(QtCore.QEventLoop.AllEvents, 5)
    if time.perf_counter() - start > seconds + 60:
        break
events = src.snapshot.events if src.snapshot is not None else 0
written = int(writer.stdout.read().split()[-1])
src.close()
panel.close_jobs()
writer.wait()
QtCore.QThreadPool.globalInstance().waitForDone(30_000)
print(json.dumps({"max_stall_ms": max(0.0, max(gaps or [0]) * 1e3 - tick_ms), "dropping": dropping[0],
                  "events": events, "written": written, "figures": figures[0]}))
"""


def live_trial(rate):
    """Follow a run recording ``rate`` sync events per second; what the event loop and the reader did."""
    import json
    import subprocess
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as d:
        code = "LIVE_WRITER = %r\n%s" % (LIVE_WRITER, LIVE_CODE)
        p = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r)\n%s" % (ROOT, code),
                            os.path.join(d, "live.mpgrun"), str(rate), str(LIVE_SECONDS), str(LIVE_TICK_MS),
                            str(LIVE_WARMUP_S), here], capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("the live measurement failed: %s" % p.stderr[-3000:])
        got = json.loads(p.stdout.strip().splitlines()[-1])
    got["rate"] = got["written"] / LIVE_SECONDS
    got["kept_up"] = got["max_stall_ms"] <= LIVE_STALL_LIMIT_MS and not got["dropping"] and got["figures"] > 0
    return got


def live_figures():
    trials, best = [], None
    for rate in LIVE_RATES:
        got = live_trial(rate)
        trials.append({k: (round(v, 1) if isinstance(v, float) else v) for k, v in got.items()})
        if not got["kept_up"]:
            break
        best = got
    return {"live_events_per_s": int(best["rate"]) if best else 0,
            "max_stall_ms": best["max_stall_ms"] if best else trials[0]["max_stall_ms"], "live_trials": trials}


def main(names=()):
    figures = {}
    parts = {"stats": stats_figures, "callsite": callsite_figures, "live": live_figures}
    for name, fn in parts.items():
        if not names or name in names:
            figures.update(fn())
    report(figures)


if __name__ == "__main__":
    main(sys.argv[1:])
