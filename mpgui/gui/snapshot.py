"""A consistent picture of a run at one moment, built off the Qt thread for the views to draw.  No Qt here.

The reader thread builds one after new data arrived (at most ``SNAPSHOT_INTERVAL`` apart); the Qt thread
only swaps it in.  Everything in it is a copy: views can use it without locks.
"""
import copy
import time
from dataclasses import dataclass, field

import numpy as np

from . import timeline_data

#: At most this often (seconds) a live run's snapshot is rebuilt.
SNAPSHOT_INTERVAL = 0.1


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
    contention: list = field(default_factory=list)
    built_at: float = 0.0

    @property
    def result(self):
        return self.meta.get("result")


def build(model):
    tl = timeline_data.build(model)
    with model.lock:
        t0 = model.t0
        procs = [copy.copy(p) for p in timeline_data.lane_order(
            [p for p in model.procs.values() if p.traced or p.first != -1])]
        if model.cpu_total.t:
            cpu_t = (np.asarray(model.cpu_total.t, dtype=np.float64) - t0) / 1e9
            cores = [np.asarray(s.v, dtype=np.float64) for s in model.cpu_cores]
            n = min([len(cpu_t)] + [len(c) for c in cores])
            cpu_t, cores = cpu_t[:n], [c[:n] for c in cores]
            total = np.asarray(model.cpu_total.v[:n], dtype=np.float64)
        else:
            cpu_t, cores, total = np.zeros(0), [], np.zeros(0)
        progress = None
        if model.progress:
            _, done, total_n = max(model.progress.values())
            progress = (done, total_n)
        elapsed = max(0.0, ((model.t_last or t0) - t0) / 1e9)
        snap = Snapshot(model.version, tl, procs, cpu_t, cores, total, model.events_seen, model.dropped, elapsed,
                        progress, dict(model.meta), list(model.logs), model.contention(), time.monotonic())
    return snap
