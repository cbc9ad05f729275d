"""What the timeline draws, as numpy arrays: lanes (one per process) and bar layers.  No Qt here.

``build(model)`` reads a ``RunModel`` (under its lock) and returns a ``TimelineData``:

* ``lanes``: processes in display order — the main process on top, then managers, pool workers, other
  processes, and the stdlib's helpers (forkserver, resource tracker) last;
* ``layers``: name -> ``Bars`` (pid, x0, x1 in seconds from the run's start, a colour key, and ``ref``, the
  row in the source table, for tooltips).  Layers: ``life`` (process lifetime), ``starting`` (start() called
  to first instruction), ``tasks`` (pool tasks by outcome; running ones end at ``now``), ``waits`` (lock waits
  and other blocking), ``holds`` (lock holds), ``used`` (results consumed by the caller), ``moments`` (the
  model's instants: signals, shared-memory segments, notifies, requests to end..., drawn as ticks);
* ``marks``: scenario phases (x, label).
"""
from dataclasses import dataclass, field

import numpy as np

from core.trace.events import Kind, Outcome
from core.trace.model import NO_TIME, Span

ROLE_ORDER = {"main": 0, "manager": 1, "worker": 2, "process": 3, "other": 4, "forkserver": 5,
              "resource tracker": 6}

# colour keys (see TimelineItem's palette; fewer than COLOR_KEYS of them)
C_LIFE, C_STARTING, C_RUNNING, C_OK, C_ERROR, C_TIMEOUT, C_LOST, C_HOLD, C_WAIT, C_OTHER_WAIT, C_IO, \
    C_MANAGER, C_USED, C_MOMENT, C_SIGNAL = range(15)
COLOR_KEYS = 16

_OUTCOME_COLOR = {Outcome.OK: C_OK, Outcome.ERROR: C_ERROR, Outcome.TIMEOUT: C_TIMEOUT, Outcome.LOST: C_LOST,
                  Outcome.CANCELLED: C_LOST}
_SPAN_COLOR = {Span.LOCK_WAIT: C_WAIT, Span.COND_WAIT: C_OTHER_WAIT, Span.EVENT_WAIT: C_OTHER_WAIT,
               Span.BARRIER_WAIT: C_OTHER_WAIT, Span.QUEUE_PUT: C_IO, Span.QUEUE_GET: C_IO, Span.QUEUE_JOIN: C_IO,
               Span.PIPE_RECV: C_IO, Span.PIPE_SEND: C_IO, Span.MANAGER_CALL: C_MANAGER,
               Span.PROC_JOIN: C_OTHER_WAIT, Span.INITIALIZER: C_STARTING}
#: Moments that interrupt a process (a signal, a request to end) stand out from the others.
_MOMENT_COLOR = {Kind.SIGNAL_SEND: C_SIGNAL, Kind.SIGNAL_RECV: C_SIGNAL, Kind.PROC_TERMINATE: C_SIGNAL,
                 Kind.PROC_KILL: C_SIGNAL}


@dataclass
class Bars:
    pid: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    color: np.ndarray
    ref: np.ndarray

    @classmethod
    def empty(cls):
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int8), np.zeros(0, np.int64))

    def __len__(self):
        return len(self.pid)


@dataclass
class Lane:
    pid: int
    label: str
    role: str
    state: str


@dataclass
class TimelineData:
    lanes: list
    layers: dict
    marks: list = field(default_factory=list)
    t_end: float = 0.0              # seconds from the start to the last thing seen
    tasks: np.ndarray = None        # the model's task table (for tooltips), a copy
    spans: np.ndarray = None        # the model's spans (for tooltips)
    names: dict = field(default_factory=dict)
    strings: dict = field(default_factory=dict)
    procs: dict = field(default_factory=dict)
    version: int = 0
    instants: np.ndarray = None     # the model's instants (for tooltips)

    def lane_pids(self):
        return np.array([lane.pid for lane in self.lanes], dtype=np.int64)


def lane_order(procs):
    def key(p):
        created = p.created if p.created != NO_TIME else (p.first if p.first != NO_TIME else 1 << 62)
        return (ROLE_ORDER.get(p.role, 4), created, p.pid)
    return sorted(procs, key=key)


def lane_label(p):
    name = p.name or p.role
    if p.role == "main":
        return "main · %d" % p.pid
    return "%s · %d" % (name, p.pid)


def build(model):
    """A TimelineData of everything the model holds now (copies: safe to use without the lock)."""
    with model.lock:
        t0 = model.t0
        t_last = model.t_last if model.t_last is not None else t0
        procs = [p for p in model.procs.values() if p.traced or p.first != NO_TIME]
        lanes = [Lane(p.pid, lane_label(p), p.role, p.state) for p in lane_order(procs)]
        tasks = model.tasks_array()
        spans = model.spans_array(include_open=True, now=t_last)
        instants = model.instants_array()
        jobs = {k: v.get("pid", 0) for k, v in model.jobs.items()}
        marks = [((t - t0) / 1e9, label) for t, pid, label, value in model.marks if value is None]
        names = {uid: o.get("name", "") for uid, o in model.objects.items()}
        strings = dict(model.strings)
        pinfo = {p.pid: p for p in procs}
        version = model.version
    now = (t_last - t0) / 1e9
    sec = lambda a: (np.asarray(a, dtype=np.float64) - t0) / 1e9          # noqa: E731
    layers = {}

    # process lifetimes and start latency
    pids, x0, x1, refs = [], [], [], []
    spid, s0, s1 = [], [], []
    for p in procs:
        begin = p.booted if p.booted != NO_TIME else p.first
        end = p.exited if p.exited != NO_TIME else (p.last if p.state == "exited" else t_last)
        if begin != NO_TIME and end != NO_TIME and end >= begin:
            pids.append(p.pid)
            x0.append(begin)
            x1.append(end)
            refs.append(p.pid)
        if p.start_called != NO_TIME and p.booted != NO_TIME and p.booted >= p.start_called:
            spid.append(p.pid)
            s0.append(p.start_called)
            s1.append(p.booted)
    layers["life"] = Bars(np.array(pids, np.int64), sec(x0), sec(x1), np.full(len(pids), C_LIFE, np.int8),
                          np.array(refs, np.int64))
    layers["starting"] = Bars(np.array(spid, np.int64), sec(s0), sec(s1), np.full(len(spid), C_STARTING, np.int8),
                              np.array(spid, np.int64))

    # pool tasks
    if len(tasks):
        started = np.nonzero((tasks["start"] != NO_TIME) & (tasks["worker"] != 0))[0]
        t = tasks[started]
        end = np.where(t["end"] == NO_TIME, t_last, t["end"])
        color = np.full(len(t), C_RUNNING, np.int8)
        for outcome, c in _OUTCOME_COLOR.items():
            color[(t["end"] != NO_TIME) & (t["outcome"] == outcome)] = c
        layers["tasks"] = Bars(t["worker"].astype(np.int64), sec(t["start"]), sec(end), color, started)
        used = np.nonzero(tasks["used"] != NO_TIME)[0]
        caller = np.array([jobs.get((int(tasks["pool"][i]), int(tasks["job"][i])), 0) for i in used], np.int64)
        ux = sec(tasks["used"][used])
        layers["used"] = Bars(caller, ux, ux, np.full(len(used), C_USED, np.int8), used)
    else:
        layers["tasks"] = Bars.empty()
        layers["used"] = Bars.empty()

    # spans: holds, waits and blocking
    if len(spans):
        kind = spans["kind"]
        hold = np.nonzero(kind == Span.LOCK_HOLD)[0]
        layers["holds"] = Bars(spans["pid"][hold].astype(np.int64), sec(spans["t0"][hold]), sec(spans["t1"][hold]),
                               np.full(len(hold), C_HOLD, np.int8), hold)
        wait = np.nonzero(kind != Span.LOCK_HOLD)[0]
        wcolor = np.zeros(len(wait), np.int8)
        wk = kind[wait]
        for k, c in _SPAN_COLOR.items():
            wcolor[wk == k] = c
        layers["waits"] = Bars(spans["pid"][wait].astype(np.int64), sec(spans["t0"][wait]), sec(spans["t1"][wait]),
                               wcolor, wait)
    else:
        layers["holds"] = Bars.empty()
        layers["waits"] = Bars.empty()

    # moments: zero-width bars, drawn as ticks
    x = sec(instants["t"])
    mcolor = np.full(len(instants), C_MOMENT, np.int8)
    for k, c in _MOMENT_COLOR.items():
        mcolor[instants["kind"] == k] = c
    layers["moments"] = Bars(instants["pid"].astype(np.int64), x, x, mcolor, np.arange(len(instants)))
    return TimelineData(lanes, layers, marks, now, tasks, spans, names, strings, pinfo, version, instants)
