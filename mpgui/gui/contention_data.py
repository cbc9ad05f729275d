"""What the contention panel shows, computed off the Qt thread.  No Qt here.

Two kinds of picture:

* the state of every object at one moment (``ObjectNow``: its holders, its waiters in the order they came
  with their wait so far, its value, depth, waiting count or state).  Live, the reader thread builds it with
  each snapshot from the model's open spans and a ``LiveTracker`` that keeps each object's latest value,
  set/clear state and whether it broke, looking only at what the model gained since the last snapshot; for a
  moment the user picks (``state_at``), a worker builds it from the model's spans and counters at that time.
* the figures of a run or a time range (``Figures``): per-object statistics with histograms, the blocking
  profile by call site, queues and pipes, "unblocked by" links, barrier generations, semaphore holders.  A
  worker computes them from the run file (``core.trace.contention.analyse_run``, which keeps only the
  records it reads), never from the live model, and answers a new range from the same report.

A manager-served lock (``Manager().Lock()``) records its calls as MANAGER_CALL on its proxy: its acquire()
and release() calls are turned into waits and holds here (``manager_lock_tables``), so it is an object of
the statistics like any lock, and its holders are in the state pictures (``manager_events``).  A thread
waiting in a manager's acquire() shows only once the call returns: nothing is recorded while it waits.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from core.trace import contention
from core.trace.events import BLOCKED_NS, Kind
from core.trace.model import SPAN_DTYPE, Span, SpanEnd
from core.trace.store import RunFile

#: Spans that are someone waiting on an object, and the word for it.
WAIT_WORDS = {Span.LOCK_WAIT: "acquire", Span.COND_WAIT: "wait", Span.EVENT_WAIT: "wait",
              Span.BARRIER_WAIT: "wait", Span.QUEUE_PUT: "put", Span.QUEUE_GET: "get", Span.QUEUE_JOIN: "join",
              Span.PIPE_RECV: "recv", Span.PIPE_SEND: "send", Span.MANAGER_CALL: "call"}
_WAIT_KINDS = np.array([int(k) for k in WAIT_WORDS], np.int16)
#: Object kinds (as registered) the state panel lists even when nobody holds or waits for them.
LISTED_KINDS = ("Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier", "Queue",
                "JoinableQueue", "SimpleQueue")
#: The links kept per object for the "unblocked by" list (the latest ones).
LINKS_SHOWN = 500
#: Semaphores whose holders over time the figures carry, at most (the most contended).
HOLDER_SERIES = 16
#: A manager's acquire() that took longer than this waited for the lock (the call itself, a round trip to
#: the manager's process, takes less).
MANAGER_BLOCKED_NS = BLOCKED_NS


@dataclass
class Party:
    """A process's thread holding or waiting on an object since ``since`` (ns)."""
    pid: int
    tid: int
    since: int
    what: str = ""              # for a waiter: what it waits to do (acquire, get, put, wait...)


@dataclass
class ObjectNow:
    """One object at one moment."""
    uid: int
    name: str
    kind: str
    holders: List[Party] = field(default_factory=list)
    waiters: List[Party] = field(default_factory=list)      # in the order they began to wait
    value: Optional[float] = None                           # a semaphore's value, a queue's depth
    initial: Optional[int] = None                           # a semaphore's initial value
    is_set: Optional[bool] = None                           # an event
    generation: Optional[int] = None                        # a barrier's, of its waiters
    broken: bool = False                                    # a barrier that broke (by then)

    def state_text(self):
        """The object's state in a few words: ``value 1 of 2``, ``depth 3``, ``set``, ``2 waiting, gen 4``."""
        k = self.kind
        parts = []
        if self.value is not None:
            if "Semaphore" in k:
                parts.append("value %d" % self.value + (" of %d" % self.initial if self.initial else ""))
            elif "Queue" in k:
                parts.append("depth %d" % self.value)
            else:
                parts.append("value %g" % self.value)
        if self.is_set is not None:
            parts.append("set" if self.is_set else "not set")
        if k == "Barrier" or self.generation is not None:
            parts.append("%d waiting" % len(self.waiters) + (", generation %d" % self.generation
                                                             if self.generation is not None else ""))
        if self.broken:
            parts.append("broken")
        if not parts:
            parts.append("held" if self.holders else "free")
        return ", ".join(parts)


@dataclass
class StatePicture:
    """Every object's state at ``t`` (ns), and the run's time origin (``t0``, ns) to show times from."""
    t: int
    t0: int
    objects: List[ObjectNow]
    live: bool = False


class LiveTracker:
    """What the model's tables do not keep as a state, kept up to date from what they gained since the last
    call (the reader thread calls ``update`` under the model's lock): each object's latest value (semaphore
    value, queue depth), each event's set/clear state, the barriers that broke."""

    def __init__(self):
        self._points = 0
        self._instants = 0
        self._spans = 0
        self.latest: Dict[int, Tuple[int, float]] = {}       # series id -> (t, value)
        self.peak: Dict[int, float] = {}                     # series id -> the highest value
        self.event_set: Dict[int, Tuple[int, bool]] = {}     # uid -> (t, set)
        self.broken: Dict[int, int] = {}                     # barrier uid -> when it broke (first)
        #: (uid, pid, tid) -> (time, holds): a manager lock's latest acquire() end or release() start by that
        #: thread (``manager_events``)
        self.managed: Dict[Tuple[int, int, int], Tuple[int, bool]] = {}

    def update(self, model):
        pts = model._event_series.points
        n = len(pts)
        if n < self._points:                # the model forgot its points (an export's): start again
            self._points, self.latest, self.peak = 0, {}, {}
        if n > self._points:
            sid, t, v = (pts.view(name)[self._points:n] for name in ("sid", "t", "v"))
            order = np.lexsort((t, sid))
            last = np.append(sid[order][1:] != sid[order][:-1], True)
            for s, tt, vv in zip(sid[order][last].tolist(), t[order][last].tolist(), v[order][last].tolist()):
                old = self.latest.get(s)
                if old is None or tt >= old[0]:
                    self.latest[s] = (tt, vv)
            firsts = np.flatnonzero(np.concatenate(([True], sid[order][1:] != sid[order][:-1])))
            for s, vv in zip(sid[order][firsts].tolist(), np.maximum.reduceat(v[order], firsts).tolist()):
                self.peak[s] = max(vv, self.peak.get(s, vv))
            self._points = n
        ins = model.instants
        n = len(ins)
        if n < self._instants:
            self._instants, self.event_set = 0, {}
        if n > self._instants:
            kind = ins.view("kind")[self._instants:n]
            sel = np.flatnonzero((kind == Kind.EVENT_SET) | (kind == Kind.EVENT_CLEAR)) + self._instants
            for t, uid, k in zip(ins.view("t")[sel].tolist(), ins.view("uid")[sel].tolist(),
                                 ins.view("kind")[sel].tolist()):
                old = self.event_set.get(uid)
                if old is None or t >= old[0]:
                    self.event_set[uid] = (t, k == Kind.EVENT_SET)
            self._instants = n
        sp = model.spans
        n = len(sp)
        if n < self._spans:
            self._spans, self.broken = 0, {}
        if n > self._spans:
            kind, end = sp.view("kind")[self._spans:n], sp.view("end")[self._spans:n]
            sel = np.flatnonzero((kind == Span.BARRIER_WAIT) & (end == SpanEnd.BROKEN)) + self._spans
            for t, uid in zip(sp.view("t1")[sel].tolist(), sp.view("uid")[sel].tolist()):
                self.broken[uid] = min(t, self.broken.get(uid, t))
            for key, t, holds in manager_events(model, self._spans, n):
                old = self.managed.get(key)
                if old is None or t >= old[0]:
                    self.managed[key] = (t, holds)
            self._spans = n

    def peak_of(self, model, what, uid):
        sid = model._event_series._sid.get((what, uid))
        return self.peak.get(sid) if sid is not None else None

    def value_of(self, model, what, uid):
        sid = model._event_series._sid.get((what, uid))
        got = self.latest.get(sid) if sid is not None else None
        return None if got is None else got[1]


def manager_events(model, lo=0, hi=None, until=None):
    """``((uid, pid, tid), t, holds)`` for the MANAGER_CALL spans in rows [lo, hi) of the model's span table
    that are a manager lock's acquire() (it holds from the call's end: ``holds`` True) or release() (it
    holds no more from the call's start), at or before ``until`` if given."""
    sp = model.spans
    hi = len(sp) if hi is None else hi
    if hi <= lo:
        return []
    methods = {i: text for i, text in model.strings.items() if text in ("acquire", "release")}
    if not methods:
        return []
    kind = sp.view("kind")[lo:hi]
    value = sp.view("value")[lo:hi]
    rows = np.flatnonzero((kind == Span.MANAGER_CALL) & np.isin(value, list(methods))) + lo
    out = []
    for uid, pid, tid, t0, t1, v, end in zip(*(sp.view(name)[rows].tolist() for name in
                                               ("uid", "pid", "tid", "t0", "t1", "value", "end"))):
        holds = methods[v] == "acquire"
        if holds and end != SpanEnd.OK:
            continue                    # an acquire() that raised holds nothing
        t = t1 if holds else t0
        if until is None or t <= until:
            out.append(((uid, pid, tid), t, holds))
    return out


def _manager_holders(latest):
    """SPAN_DTYPE rows (LOCK_HOLD) for the threads holding a manager lock, from {key: (t, holds)}."""
    held = [(key, t) for key, (t, holds) in latest.items() if holds]
    out = np.zeros(len(held), SPAN_DTYPE)
    for i, ((uid, pid, tid), t) in enumerate(held):
        out[i] = (uid, pid, tid, Span.LOCK_HOLD, SpanEnd.OPEN, t, 0, 0)
    return out


def _listed(model, uids):
    """The objects a state picture lists: the registered sync objects and queues, and ``uids``."""
    out = {u for u, o in model.objects.items() if o.get("kind") in LISTED_KINDS}
    out.update(int(u) for u in uids)
    return sorted(out, key=lambda u: (model.name_of(u), u))


def _picture(model, t, spans, value_of, set_of, broken_of, live):
    """Objects at ``t`` from the spans (SPAN_DTYPE rows) going on then."""
    holding = spans[spans["kind"] == Span.LOCK_HOLD]
    waiting = spans[np.isin(spans["kind"], _WAIT_KINDS)]
    waiting = waiting[np.lexsort((waiting["tid"], waiting["pid"], waiting["t0"]))]
    objs = {}
    for uid in _listed(model, np.concatenate((holding["uid"], waiting["uid"]))):
        reg = model.objects.get(uid) or {}
        objs[uid] = ObjectNow(uid, model.name_of(uid), reg.get("kind", ""),
                              initial=reg.get("value") if isinstance(reg.get("value"), int) else None)
    for r in holding[np.argsort(holding["t0"], kind="stable")]:
        objs[int(r["uid"])].holders.append(Party(int(r["pid"]), int(r["tid"]), int(r["t0"])))
    for r in waiting:
        o = objs[int(r["uid"])]
        kind = Span(int(r["kind"]))
        what = WAIT_WORDS[kind]
        if kind == Span.MANAGER_CALL:           # a call to the manager still going: its method
            what = "call %s()" % model.strings.get(int(r["value"]), "?")
        o.waiters.append(Party(int(r["pid"]), int(r["tid"]), int(r["t0"]), what))
        if int(r["kind"]) == Span.BARRIER_WAIT:
            o.generation = int(r["value"])
    for r in holding:
        o = objs[int(r["uid"])]
        if o.kind == "Proxy":
            o.kind = "Lock (manager)"           # registered as the proxy it is
    for uid, o in objs.items():
        k = o.kind
        if "Semaphore" in k or "Lock" in k:
            o.value = value_of("value", uid) if "Semaphore" in k else None
        elif "Queue" in k:
            o.value = value_of("depth", uid)
        elif k == "Event":
            o.is_set = set_of(uid)
        o.broken = broken_of(uid)
    return StatePicture(int(t), int(model.t0), list(objs.values()), live)


def _drop_released(o, peak):
    """Live, a process's release can be read after another's acquisition that followed it (the collector
    drains each process's records in turn): the model then still counts the first holder.  A lock has one
    holder, and a semaphore at most its initial value unless it was released above it (``peak``: the highest
    value it had): the latest acquisitions are the holders, the releases of the others are on their way."""
    cap = None
    if o.kind in ("Lock", "RLock"):
        cap = 1
    elif "Semaphore" in o.kind and o.initial and (peak is None or peak <= o.initial):
        cap = o.initial
    if cap is not None and len(o.holders) > cap:
        o.holders = sorted(o.holders, key=lambda p: p.since)[-cap:]


def live_state(model, tracker):
    """Every object's state now (the model's last time): the reader thread calls this with the model's lock
    held, after ``tracker.update(model)``."""
    now = model.t_last or model.t0
    spans = model.open_spans_array(now)
    if tracker.managed:
        spans = np.concatenate((spans, _manager_holders(tracker.managed)))

    def set_of(uid):
        got = tracker.event_set.get(uid)
        return None if got is None else got[1]

    pic = _picture(model, now, spans, lambda what, uid: tracker.value_of(model, what, uid), set_of,
                   lambda uid: uid in tracker.broken, live=True)
    for o in pic.objects:
        if o.holders:
            _drop_released(o, tracker.peak_of(model, "value", o.uid))
    return pic


def state_at(model, t):
    """Every object's state at ``t`` (ns): holds and waits going on then (begun at or before ``t``, not
    ended by then), the latest value, depth and set/clear state at or before ``t``, the barriers broken by
    then.  For replay at a cursor; a worker calls it (it takes the model's lock)."""
    with model.lock:
        rows = model.spans_between(t, t)
        sp = model.spans.records(rows) if len(rows) else np.zeros(0, model.spans.dtype)
        sp = sp[(sp["t0"] <= t) & (sp["t1"] > t)]
        open_ = model.open_spans_array()
        open_ = open_[open_["t0"] <= t]
        done = np.zeros(len(sp), open_.dtype)
        for name in open_.dtype.names or ():
            done[name] = sp[name]
        latest: Dict[Tuple[int, int, int], Tuple[int, bool]] = {}
        for key, when, holds in manager_events(model, until=t):
            if key not in latest or when >= latest[key][0]:
                latest[key] = (when, holds)
        spans = np.concatenate((done, open_, _manager_holders(latest)))
        series = model._event_series.arrays()
        ins = model.instants_array()
        ev = ins[np.isin(ins["kind"], (Kind.EVENT_SET, Kind.EVENT_CLEAR)) & (ins["t"] <= t)]
        broken_at: Dict[int, int] = {}
        all_sp = model.spans
        sel = np.flatnonzero((all_sp.view("kind") == Span.BARRIER_WAIT) & (all_sp.view("end") == SpanEnd.BROKEN)
                             & (all_sp.view("t1") <= t))
        for uid in np.unique(all_sp.view("uid")[sel]).tolist():
            broken_at[uid] = True

        def value_of(what, uid):
            got = series.get((what, uid))
            if got is None:
                return None
            i = int(np.searchsorted(got[0], t, side="right")) - 1
            return float(got[1][i]) if i >= 0 else None

        def set_of(uid):
            mine = ev[ev["uid"] == np.uint64(uid)]
            return None if not len(mine) else bool(mine["kind"][-1] == Kind.EVENT_SET)

        return _picture(model, t, spans, value_of, set_of, lambda uid: uid in broken_at, live=False)


# -- figures for a run or a range --------------------------------------------------------------------------------
@dataclass
class Generation:
    """One generation of a barrier: who arrived when, when it was released (or broke)."""
    generation: int
    parties: int
    arrivals: List[Tuple[int, int]]         # (pid, t), in arrival order
    released: Optional[int]                 # when the first waiter passed (ns), None if it never did
    broken: bool


#: Per process, for one object in a range: who held it and for how long, who waited and for how long (the
#: waits that blocked); the longest holder first.
PROCESS_DTYPE = np.dtype([("pid", "<i4"), ("holds", "<i8"), ("hold_total", "<i8"), ("hold_max", "<i8"),
                          ("waits", "<i8"), ("wait_total", "<i8"), ("wait_max", "<i8")])


def _group_max(group, values, n):
    """The largest of ``values`` in each group 0..n-1 (0 for a group without values)."""
    out = np.zeros(n, np.int64)
    if len(values):
        order = np.argsort(group, kind="stable")
        g = group[order]
        starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
        out[g[starts]] = np.maximum.reduceat(values[order], starts)
    return out


def by_process(waits, holds, t_from=None, t_to=None):
    """{uid: PROCESS_DTYPE rows} from the tables of waits (WAIT_DTYPE, those that blocked) and holds
    (HOLD_DTYPE) that ended in [t_from, t_to)."""
    h = holds[contention._in_range(holds["t1"], t_from, t_to)]
    w = waits[contention._in_range(waits["t"], t_from, t_to) & waits["blocked"]]
    out: Dict[int, np.ndarray] = {}
    uid = np.concatenate((h["uid"], w["uid"]))
    pid = np.concatenate((h["pid"], w["pid"]))
    if not len(uid):
        return out
    # one integer key per (object, process): a numeric sort, not one of pairs
    uids, ui = np.unique(uid, return_inverse=True)
    pids, pi = np.unique(pid, return_inverse=True)
    keys, inverse = np.unique(ui.ravel().astype(np.int64) * len(pids) + pi.ravel(), return_inverse=True)
    inverse = inverse.ravel()
    n = len(keys)
    hi, wi = inverse[:len(h)], inverse[len(h):]
    dur = h["t1"] - h["t0"]
    rows = np.zeros(n, PROCESS_DTYPE)
    rows["pid"] = pids[keys % len(pids)]
    rows["holds"] = np.bincount(hi, minlength=n)
    rows["hold_total"] = np.bincount(hi, weights=dur, minlength=n)
    rows["waits"] = np.bincount(wi, minlength=n)
    rows["wait_total"] = np.bincount(wi, weights=w["wait"], minlength=n)
    rows["hold_max"] = _group_max(hi, dur, n)
    rows["wait_max"] = _group_max(wi, w["wait"], n)
    of_row = keys // len(pids)
    for i, u in enumerate(uids.tolist()):
        mine = rows[of_row == i]
        out[u] = mine[np.lexsort((mine["pid"], -mine["wait_total"], -mine["hold_total"]))]
    return out


@dataclass
class Figures:
    """The panel's figures for [t_from, t_to) (None: open), from one analysis of the run file."""
    t0: int
    t_from: Optional[int]
    t_to: Optional[int]
    objects: np.ndarray                     # contention.OBJECT_DTYPE, the most contended first
    names: Dict[int, str]
    kinds: Dict[int, str]
    profile: list                           # contention.SiteStats, the most waited-at first
    queues: np.ndarray                      # contention.QUEUE_DTYPE
    depths: Dict[int, Tuple[np.ndarray, np.ndarray]]
    links: Dict[int, np.ndarray]            # uid -> LINK_DTYPE rows into waits ending in the range (latest)
    generations: Dict[int, List[Generation]]
    holders: Dict[int, np.ndarray]          # semaphore uid -> contention.HOLDERS_DTYPE
    by_process: Dict[int, np.ndarray] = field(default_factory=dict)    # uid -> PROCESS_DTYPE rows
    events_read: int = 0


def analyse_path(path):
    """The contention report of the run file at ``path`` (a worker calls this; it reads only the records the
    analytics need).  RunFileError or OSError if it cannot be read."""
    with RunFile(path) as rf:
        return contention.analyse_run(rf)


_READ_KINDS = np.array(sorted(int(k) for k in contention.READ_KINDS), np.uint16)


class RunAnalyser:
    """The contention report of a run file that grows: each ``report()`` reads only the chunks written since
    the last (keeping the records the analytics read, about a fifth of a contended run's), then builds the
    report of them all.  One worker at a time uses it."""

    def __init__(self, path):
        self.path = path
        self._after = 0                 # the last chunk read
        self._parts: List[np.ndarray] = []

    def report(self):
        """RunFileError or OSError if the file cannot be read."""
        with RunFile(self.path) as rf:
            index = rf.chunk_index(after=self._after)
            if index:
                for chunk in rf.iter_chunks(ids=[cid for cid, _, _, _ in index]):
                    self._parts.append(chunk[np.isin(chunk["kind"], _READ_KINDS)])
                self._after = index[-1][0]
            regs = list(rf.iter_registrations())
        events = np.concatenate(self._parts) if self._parts else np.zeros(0, contention.EVENT_DTYPE)
        if len(self._parts) > 1:
            self._parts = [events]      # one array from now on: the next concatenation copies it once
        return contention.analyse(events, regs)


def manager_lock_tables(report):
    """(WAIT_DTYPE rows, HOLD_DTYPE rows) of the manager-served locks in ``report``: each acquire() call is a
    wait (its duration; it waited if longer than MANAGER_BLOCKED_NS), and a hold runs from the end of a
    thread's acquire() to the start of its next release() on the same proxy."""
    r = report.records
    acquire = {i for i, s in report.strings.items() if s == "acquire"}
    release = {i for i, s in report.strings.items() if s == "release"}
    calls = np.flatnonzero(r.kind == Kind.MANAGER_CALL)
    if not len(calls) or not acquire:
        return np.zeros(0, contention.WAIT_DTYPE), np.zeros(0, contention.HOLD_DTYPE)
    is_acq = np.isin(r.b[calls], list(acquire))
    is_rel = np.isin(r.b[calls], list(release))
    acq = calls[is_acq]
    w = np.zeros(len(acq), contention.WAIT_DTYPE)
    w["t"], w["wait"], w["uid"], w["pid"], w["tid"] = r.t[acq], r.a[acq], r.uid[acq], r.pid[acq], r.tid[acq]
    w["kind"], w["family"] = Kind.MANAGER_CALL, contention.Family.LOCK
    w["outcome"] = np.where(r.c[acq] == 1, contention.Outcome.BROKEN, contention.Outcome.OK)
    w["blocked"] = r.a[acq] >= MANAGER_BLOCKED_NS
    both = calls[is_acq | is_rel]
    order = np.lexsort((r.t[both], r.tid[both], r.pid[both], r.uid[both]))
    both = both[order]
    rows = []
    same = (r.uid[both][1:] == r.uid[both][:-1]) & (r.pid[both][1:] == r.pid[both][:-1]) & \
        (r.tid[both][1:] == r.tid[both][:-1])
    pairs = np.flatnonzero(same & np.isin(r.b[both][:-1], list(acquire)) & np.isin(r.b[both][1:], list(release)))
    for i in pairs.tolist():
        a, b = both[i], both[i + 1]
        rows.append((int(r.t[a]), int(r.t[b] - r.a[b]), int(r.uid[a]), int(r.pid[a]), int(r.tid[a])))
    return w, np.array(rows, dtype=contention.HOLD_DTYPE)


def _manager_links(report, waits, holds):
    """"Unblocked by" for manager locks: a contended acquire() <- the latest release() (the end of a hold) of
    the same lock before it ended, by another thread, if within the wait."""
    out = []
    for uid in np.unique(waits["uid"][waits["blocked"]]).tolist():
        h = holds[holds["uid"] == uid]
        h = h[np.argsort(h["t1"], kind="stable")]
        ws = waits[(waits["uid"] == uid) & waits["blocked"]]
        i = np.searchsorted(h["t1"], ws["t"], side="right") - 1
        for wrow, k in zip(ws, i.tolist()):
            if k < 0:
                continue
            hrow = h[k]
            if hrow["t1"] < wrow["t"] - wrow["wait"] or (hrow["pid"], hrow["tid"]) == (wrow["pid"], wrow["tid"]):
                continue
            out.append((int(hrow["t1"]), int(wrow["t"]), int(wrow["t"] - wrow["wait"]), int(wrow["t"] - hrow["t1"]),
                        uid, int(hrow["pid"]), int(hrow["tid"]), int(wrow["pid"]), int(wrow["tid"]),
                        int(Kind.MANAGER_CALL), int(Kind.MANAGER_CALL), int(contention.Family.LOCK)))
    return np.array(out, dtype=contention.LINK_DTYPE)


@dataclass
class Analysis:
    """A run's contention report with what the panel adds to it (manager locks), answering any range."""
    report: object                          # contention.ContentionReport
    t0: int
    waits: np.ndarray
    holds: np.ndarray
    links: np.ndarray
    generations: Dict[int, List[Generation]]

    @classmethod
    def of(cls, report, t0):
        mw, mh = manager_lock_tables(report)
        waits = np.concatenate((report.waits, mw)) if len(mw) else report.waits
        holds = np.concatenate((report.holds, mh)) if len(mh) else report.holds
        links = report.links
        if len(mw):
            links = np.concatenate((links, _manager_links(report, mw, mh)))
        return cls(report, int(t0), waits, holds, links, barrier_generations(report.records))

    def figures(self, t_from=None, t_to=None):
        rep = self.report
        objects = contention.object_stats(self.waits, self.holds, self.links, t_from, t_to)
        queues = rep.queues(t_from, t_to)
        uids = set(objects["uid"].tolist()) | set(queues["uid"].tolist())
        names = {u: rep.name(u) for u in uids}
        kinds = {u: rep.kind(u) for u in uids}
        w = self.waits
        managed = np.unique(w["uid"][(w["kind"] == Kind.MANAGER_CALL) & (w["family"] == contention.Family.LOCK)])
        managed = managed.tolist()
        for u in set(managed) & set(kinds):
            kinds[u] = "Lock (manager)"         # registered as the proxy it is
        links = {}
        sel = contention._in_range(self.links["to_t"], t_from, t_to)
        mine = self.links[sel]
        mine = mine[np.argsort(mine["to_t"], kind="stable")]
        for u in np.unique(mine["uid"]).tolist():
            links[u] = mine[mine["uid"] == u][-LINKS_SHOWN:]
        holders = {}
        semaphores = [u for u in objects["uid"].tolist() if "Semaphore" in kinds.get(u, "")]
        for u in semaphores[:HOLDER_SERIES]:            # the most contended first (each reads every record)
            holders[u] = rep.holders(u)
        return Figures(self.t0, t_from, t_to, objects, names, kinds, rep.profile(t_from, t_to), queues,
                       rep.depths(), links, self.generations, holders,
                       by_process(self.waits, self.holds, t_from, t_to), len(rep.records))


def barrier_generations(records):
    """{barrier uid: [Generation...]} from BARRIER_ARRIVE (``a`` parties, ``b`` generation), BARRIER_PASS and
    BARRIER_BROKEN (``b`` generation) records."""
    r = records
    arrive = np.flatnonzero(r.kind == Kind.BARRIER_ARRIVE)
    ends = np.flatnonzero((r.kind == Kind.BARRIER_PASS) | (r.kind == Kind.BARRIER_BROKEN))
    out: Dict[int, List[Generation]] = {}
    gens: Dict[Tuple[int, int], Generation] = {}
    for i in arrive[np.argsort(r.t[arrive], kind="stable")].tolist():
        key = (int(r.uid[i]), int(r.b[i]))
        g = gens.get(key)
        if g is None:
            g = gens[key] = Generation(key[1], int(r.a[i]), [], None, False)
            out.setdefault(key[0], []).append(g)
        g.arrivals.append((int(r.pid[i]), int(r.t[i])))
    for i in ends[np.argsort(r.t[ends], kind="stable")].tolist():
        g = gens.get((int(r.uid[i]), int(r.b[i])))
        if g is None:
            continue
        if r.kind[i] == Kind.BARRIER_BROKEN:
            g.broken = True
        elif g.released is None:
            g.released = int(r.t[i])
    for gs in out.values():
        gs.sort(key=lambda g: (g.arrivals[0][1] if g.arrivals else 0, g.generation))
    return out
