"""A consistent picture of a run at one moment, built off the Qt thread for the views to draw.  No Qt here.

The reader thread builds one after new data arrived (at most ``SNAPSHOT_INTERVAL`` apart), taking the
model's lock once; the Qt thread only swaps it in.  A snapshot copies what can change (the processes, the
counters' latest figures, the few open spans and running tasks, every sync object's holders, waiters and
value now) and shares what cannot: the model's
append-only columns as views of the rows it covers, the timeline's level-of-detail indexes as frozen
pictures, the CPU samples as views.  So building one costs what arrived since the last, not the run's size,
and views use it without locks.
"""
import copy
import time
from dataclasses import dataclass, field

import numpy as np

from . import contention_data, timeline_data

#: At most this often (seconds) a live run's snapshot is rebuilt.  What the live view shows is one reader
#: cycle old when it appears and ages until the next snapshot: at a million events a second a cycle (a pull,
#: then a snapshot) takes 80 to 130 ms here, so with 0.1 s a snapshot came every other pull and the lag's 95th
#: percentile was 240 to 670 ms; with 0.05 s (a snapshot after every pull) it was 215 to 290 ms, in pairs on
#: two cores, with as many events drawn.
SNAPSHOT_INTERVAL = 0.05


@dataclass
class Snapshot:
    version: int
    timeline: object                     # timeline_data.TimelineData
    procs: list                          # ProcInfo copies, in lane order
    cpu_t: np.ndarray                    # seconds from the run's start
    cpu_cores: list                      # one array per core (percent)
    cpu_total: np.ndarray
    events: int
    dropped: int
    elapsed: float
    progress: tuple                      # (done, total) or None
    meta: dict = field(default_factory=dict)
    logs: list = field(default_factory=list)
    built_at: float = 0.0
    #: The newest event's time (ns, perf_counter) and when it was taken into this snapshot (perf_counter ns):
    #: how far the view trails the run.
    t_last: int = 0
    taken_at: int = 0
    #: The live view is skipping detail to keep up (the whole run is read again when it ends).
    dropping: bool = False
    #: Every sync object and queue now: holders, waiters, value (``contention_data.StatePicture``).
    state: object = None

    @property
    def result(self):
        return self.meta.get("result")


def build(model, builder=None, dropping=False, tracker=None):
    """The snapshot of ``model`` now (``builder``: the run's ``TimelineBuilder``; a new one if None;
    ``tracker``: the run's ``contention_data.LiveTracker``, a new one if None)."""
    tracker = tracker or contention_data.LiveTracker()
    with model.lock:
        tracker.update(model)
        state = contention_data.live_state(model, tracker)
        tl = (builder or timeline_data.TimelineBuilder(model)).update()
        t0 = model.t0
        procs = [copy.copy(p) for p in timeline_data.lane_order(
            [p for p in model.procs.values() if p.traced or p.first != -1])]
        total = model.cpu_total
        cores = model.cpu_cores
        if len(total):
            n = min([len(total.t)] + [len(c.v) for c in cores])
            cpu_t = (total.t[:n] - t0) / 1e9
            core_v = [c.v[:n] for c in cores]
            total_v = total.v[:n]
        else:
            cpu_t, core_v, total_v = np.zeros(0), [], np.zeros(0)
        progress = None
        if model._progress:
            _, done, total_n = max(model.progress.values())
            progress = (done, total_n)
        elapsed = max(0.0, ((model.t_last or t0) - t0) / 1e9)
        snap = Snapshot(model.version, tl, procs, cpu_t, core_v, total_v, model.events_seen, model.dropped, elapsed,
                        progress, dict(model.meta), model.logs[:], time.monotonic(),
                        model.t_last or 0, time.perf_counter_ns(), dropping, state)
    return snap
