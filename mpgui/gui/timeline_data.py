"""What the timeline draws, at any scale: lanes (one per process) and layers of bars.  No Qt here.

A ``TimelineBuilder`` lives with the model in the reader thread.  At each snapshot (``update``, under the
model's lock) it takes only what is new: the spans, moments and changed pool tasks since the last one go into
each layer's level-of-detail index (``core.trace.lod``), and it returns a ``TimelineData`` that shares the
model's columns (append-only: the rows a snapshot covers never change) and frozen pictures of the indexes.
Nothing is copied per bar, so a snapshot of ten million spans costs what the new ones cost.

The layers' classes (``Bars``, ``IndexedLayer`` and the sources of its bars) are in ``timeline_layers``, the
colour keys in ``timeline_colors``.

* ``lanes``: processes in display order — the main process on top, then managers, pool workers, other
  processes, and the stdlib's helpers (forkserver, resource tracker) last; ``threads``: a sub-lane for each
  thread of a process other than its main one that recorded a span or wrote a message (a queue's feeder,
  a pool's result handler); ``tracks``: a track per synchronisation object and queue (``tracks``), a semaphore's further
  holder slots after it.  Every lane has a ``key``: a process's is its pid, the others' are negative;
* ``layers``: name -> a layer: ``life`` (process lifetime) and ``starting`` (start() called to first
  instruction) are small ``Bars``; ``tasks`` (pool tasks by outcome; running ones end at ``now``), ``waits``
  (lock waits and other blocking), ``holds`` (lock holds), ``used`` (results consumed by the caller) and
  ``moments`` (the model's instants, drawn as ticks) are ``IndexedLayer``s; so are the object tracks'
  ``obj_holds`` (owner slices coloured per process), ``obj_waits`` (the waiters' blocked slices) and
  ``obj_moments`` (notifies, sets, clears, a barrier's generations and breaks).  A layer answers ``visible(t0, t1,
  pixel)``: the bars to draw exactly and the cells (lane, colour, bin) standing for the rest, and
  ``near(pid, t, tolerance)`` for hovering.  Its bars are known by ``ref``: their row in the model's span
  or instant table, or the task's row (``TimelineData.spans``, ``tasks``, ``instants``, ``obj_marks`` give
  the record).  A bar's ``pid`` column is its lane key;
* ``obj_mholds``: the holds of managed locks and semaphores (from the calls through their proxies);
  ``sends``: a queue's feeder thread writing a message into its pipe (a tick on the feeder's sub-lane);
* ``counters``: lane key -> ``tracks.Counter`` series drawn on it (waiting, a semaphore's value...);
  ``proc_counters``: pid -> its CPU% and RSS;
* ``marks``: scenario phases (x, label).

Semaphore holds have a colour of their own (not a lock's), and so do barrier waits.

x values are seconds from the run's start (``t0``, ns); layers speak ns.  ``pid``/``x0``/``x1``/``color``/
``ref`` of a layer give all its bars as arrays (sorted by start; built on first use: for tests and small
runs, never for drawing).
"""
from dataclasses import dataclass, field
from typing import Dict

import numpy as np

from core.trace.columns import Columns
from core.trace.events import Kind
from core.trace.lifecycle import role_rank
from core.trace.lod import BarIndex
from core.trace.model import NO_TIME, SPAN_COLUMNS, Span, SpanEnd
from core.trace.pooltasks import by_job

from .timeline_colors import (C_BROKEN, C_GENERATION, C_LIFE, C_MOMENT, C_PROC0, C_RUNNING, C_SEND, C_STARTING,
                              C_USED, MOMENT_COLOR, OUTCOME_COLOR, PROC_COLORS, span_colors, track_span_colors)
from .timeline_layers import (EMPTY_BARS, MARK_BROKEN, MARK_GENERATION, Bars, HoldSource, IndexedLayer,
                              InstantSource, MarkSource, SendSource, SpanSource, TrackSpanSource, VersionSource,
                              lane_keys)
from .tracks import MAX_SLOTS, WAITING_METHODS, Counter, TrackBook, event_state_points, lookup

# The colours and the layers have modules of their own; the names the view, the tests and the benchmark
# import from here stay importable from here.
from .timeline_colors import (C_BARRIER_WAIT, C_ERROR, C_HOLD, C_IO, C_LOST, C_MANAGER,  # noqa: F401
                              C_OK, C_OTHER_WAIT, C_SEM_HOLD, C_SIGNAL, C_TIMEOUT, C_WAIT, COLOR_KEYS, SPAN_COLOR)
from .timeline_layers import (CANDIDATE_BARS, ESTIMATE_SLACK, EXACT_BARS, BarSource,  # noqa: F401
                              Visible)


#: A batch's pids spread over fewer numbers than this are mapped to lanes through a table.
DENSE_PIDS = 1 << 22
#: The model's new spans are taken this many rows at a time: a batch's arrays stay in the processor's cache
#: and its temporaries are reused, not new memory each (a 2-million-event run opened about 5% quicker, with a
#: quarter fewer page faults).  Rows come in time order, so a batch is a stretch of the run.
SPAN_BATCH = 1 << 16
#: LOD keys hold the time since this long before the run's first moment (records can come a little early).
ORIGIN_MARGIN_NS = 60 * 10 ** 9
#: Moments drawn on an object's track (the rest stay on the process lanes only), and those that break it.
_OBJECT_MOMENTS = (Kind.COND_NOTIFY, Kind.EVENT_SET, Kind.EVENT_CLEAR, Kind.BARRIER_ABORT, Kind.BARRIER_RESET,
                   Kind.RELEASE_ERROR)
_BREAKING = (Kind.BARRIER_ABORT, Kind.BARRIER_RESET, Kind.RELEASE_ERROR)


@dataclass
class Lane:
    pid: int                    # the lane's key: a process's pid, or (negative) a thread's or a track's
    label: str
    role: str
    state: str
    kind: str = "process"       # process, thread, object (a track), slot (a semaphore's further holders)
    uid: int = 0                # an object's; a thread's native id
    parent: int = 0             # a thread's process
    group: str = ""             # what the view groups it under

    @property
    def key(self):
        return self.pid


class Records:
    """Records by ref for describing a bar: finished rows of a table the snapshot shares, and a few extra
    rows after them (open spans)."""

    def __init__(self, columns, n, extra=None):
        self.columns = columns
        self.n = n
        self.extra = extra

    def __getitem__(self, ref):
        ref = int(ref)
        if ref >= self.n:
            return self.extra[ref - self.n]
        return {name: col[ref] for name, col in self.columns.items()}

    def __len__(self):
        return self.n + (len(self.extra) if self.extra is not None else 0)


@dataclass
class TimelineData:
    lanes: list
    layers: dict
    marks: list = field(default_factory=list)
    t_end: float = 0.0              # seconds from the start to the last thing seen
    tasks: object = None            # ref -> the task's record (for tooltips)
    spans: object = None            # ref -> the span's record
    names: dict = field(default_factory=dict)
    strings: dict = field(default_factory=dict)
    procs: dict = field(default_factory=dict)
    version: int = 0
    instants: object = None         # ref -> the moment's record
    t0: int = 0                     # the run's start (ns): x = (t - t0) / 1e9
    dropping: list = field(default_factory=list)    # (x0, x1) of stretches whose detail the live view skipped
    threads: list = field(default_factory=list)     # Lane per thread sub-lane (``parent``: its process)
    tracks: list = field(default_factory=list)      # Lane per object track and semaphore slot, in order
    counters: dict = field(default_factory=dict)    # lane key -> [tracks.Counter]
    proc_counters: dict = field(default_factory=dict)   # pid -> [tracks.Counter] (CPU%, RSS)
    obj_marks: object = None        # ref -> an object track's mark (MarkSource.DTYPE)
    kinds: dict = field(default_factory=dict)       # uid -> what the object is (Lock, Semaphore...)
    path: str = ""                  # the run file the model reads ("" if none)
    managed: object = None          # ref -> a managed lock's or semaphore's hold (HoldSource.DTYPE)
    messages: object = None         # ref -> a message (the model's MESSAGE_DTYPE): the ``sends`` layer's

    def lane_pids(self):
        return np.array([lane.pid for lane in self.lanes], dtype=np.int64)


def lane_order(procs):
    def key(p):
        created = p.created if p.created != NO_TIME else (p.first if p.first != NO_TIME else 1 << 62)
        return (role_rank(p.role), created, p.pid)
    return sorted(procs, key=key)


def lane_label(p):
    name = p.name or p.role
    if p.role == "main":
        return "main · %d" % p.pid
    return "%s · %d" % (name, p.pid)


class TimelineBuilder:
    """Keeps a run's layers up to date as the model grows (see the module's docstring).  One per model; used
    by one thread (the reader), under the model's lock."""

    LAYERS = ("tasks", "waits", "holds", "used", "moments", "obj_holds", "obj_waits", "obj_moments", "obj_mholds",
              "sends")

    def __init__(self, model):
        self.model = model
        self.origin = None
        self.index: Dict[str, BarIndex] = {}
        self.lane_ids: Dict[int, int] = {}
        self.lane_pids = np.zeros(0, np.int64)
        self.spans_seen = 0
        self.instants_seen = 0
        self.messages_seen = 0
        self.tasks_seen = 0
        # pool task bars: every version of each task's bar and of its result-used tick
        self.task_bars = Columns(VersionSource.DTYPE)
        self.task_dead = np.zeros(1024, bool)
        self.task_version = np.zeros(0, np.int64)       # task row -> its live bar version (-1: none)
        self.used_bars = Columns(VersionSource.DTYPE)
        self.used_dead = np.zeros(1024, bool)
        self.used_version = np.zeros(0, np.int64)
        self.running: Dict[int, tuple] = {}             # task row -> (worker, start) of a task still running
        self.died: Dict[int, int] = {}                  # worker pid -> when it ended, as last derived
        self.status = None
        # lanes beyond the processes': threads' sub-lanes and objects' tracks, keyed by negative numbers
        self.last_key = 0
        self.threads: Dict[tuple, int] = {}             # (pid, tid) -> its sub-lane's key
        self.thread_codes = np.zeros(0, np.int64)       # pid << 32 | tid, sorted, and their keys
        self.thread_keys = np.zeros(0, np.int64)
        self.book = TrackBook(self._new_key)
        self.obj_marks = Columns(MarkSource.DTYPE)
        self.managed = Columns(HoldSource.DTYPE)        # holds of managed locks and semaphores
        self.barriers_seen = -1
        self.barrier_series: dict = {}

    def _new_key(self):
        self.last_key -= 1
        return self.last_key

    def _lane_keys(self, pid, tid):
        """The lane keys of records of (pid, tid), giving each new thread other than a process's main one (its
        native id is the pid) a sub-lane."""
        pid = np.asarray(pid, np.int64)
        tid = np.asarray(tid, np.int64)
        other = (tid != pid) & (tid != 0)
        if other.any():
            codes = np.unique((pid[other] << 32) | (tid[other] & 0xFFFFFFFF))
            new = codes[~np.isin(codes, self.thread_codes)]
            if len(new):
                for c in new.tolist():
                    self.threads[(c >> 32, c & 0xFFFFFFFF)] = self._new_key()
                allc = np.array([(p << 32) | (t & 0xFFFFFFFF) for p, t in self.threads], np.int64)
                allk = np.array(list(self.threads.values()), np.int64)
                order = np.argsort(allc)
                self.thread_codes, self.thread_keys = allc[order], allk[order]
        return lane_keys(pid, tid, self.thread_codes, self.thread_keys)

    def _lanes(self, pids):
        """LOD lane ids of ``pids`` (new pids get the next ids)."""
        pids = np.asarray(pids, np.int64)
        lo, hi = int(pids.min()), int(pids.max())
        if hi - lo < DENSE_PIDS:                  # pids are small numbers: a table, not a sort
            present = np.zeros(hi - lo + 1, bool)
            present[pids - lo] = True
            table = np.zeros(hi - lo + 1, np.int64)
            u = np.flatnonzero(present) + lo
            table[u - lo] = self._lane_ids_of(u)
            return table[pids - lo]
        u, inv = np.unique(pids, return_inverse=True)
        return self._lane_ids_of(u)[inv]

    def _lane_ids_of(self, u):
        """LOD lane ids of distinct pids ``u``."""
        ids = np.empty(len(u), np.int64)
        for i, p in enumerate(u.tolist()):
            lid = self.lane_ids.get(p)
            if lid is None:
                lid = self.lane_ids[p] = len(self.lane_ids)
                self.lane_pids = np.append(self.lane_pids, p)
            ids[i] = lid
        return ids

    def trim(self):
        """Give back the room kept for what may come (the run is read whole)."""
        for idx in self.index.values():
            idx.trim()
        for table in (self.task_bars, self.used_bars):
            table.trim()
        # the object tracks' tables stay as they are: the snapshot taken before shares them (a copy would
        # keep both); only what no snapshot holds is trimmed
        self.book.trim()

    def _add(self, layer, rows, pid, t0, t1, color, sign=1):
        """Bars of ``layer`` (``pid``: their lane keys) into its index."""
        if len(rows):
            self.index[layer].add(rows, self._lanes(pid), t0, t1, color, sign)

    def update(self):
        """The snapshot of the model now (call with the model's lock held)."""
        m = self.model
        if self.origin is None:
            self.origin = m.t0 - ORIGIN_MARGIN_NS
            self.index = {name: BarIndex(self.origin) for name in self.LAYERS}
            m.tasks_book.track_changes = True
        self._spans()
        self._instants()
        self._sends()
        self._points()
        self._tasks()
        return self._data()

    def _spans(self):
        sp = self.model.spans
        lo, hi = self.spans_seen, len(sp)
        if hi < lo:                      # the model forgot its rows (it streamed them out): start over
            lo = 0
        self.spans_seen = hi
        held = [self._span_rows(a, min(a + SPAN_BATCH, hi)) for a in range(lo, hi, SPAN_BATCH)]
        if held:
            # holds in their slots all at once: a semaphore's holds are placed in order of start, and a batch
            # of rows (in order of end) can hold one that started before the last batch's
            self._obj_holds(*(np.concatenate(x) for x in zip(*held)))

    def _span_rows(self, lo, hi):
        sp = self.model.spans
        rows = np.arange(lo, hi)
        kind, pid, tid, uid, t0, t1, end, value = (sp.view(c)[lo:hi] for c in ("kind", "pid", "tid", "uid", "t0",
                                                                                "t1", "end", "value"))
        objects = self.model.objects
        self.book.cover_rows(hi)
        track = self.book.keys_of(uid, objects)          # first: a semaphore is known before its holds
        keys = self._lane_keys(pid, tid)
        sems = self.book.semaphore_uids()
        color = span_colors(kind, uid, sems)
        hold = kind == Span.LOCK_HOLD
        self._add("holds", rows[hold], keys[hold], t0[hold], t1[hold], color[hold])
        w = ~hold
        self._add("waits", rows[w], keys[w], t0[w], t1[w], color[w])
        self._track_spans(rows, kind, pid, uid, t0, t1, end, value, track)
        # holds on their object's track now, but a semaphore's: they are placed in its slots all at once (``_spans``)
        held = hold & (track != 0)
        slotted = held & np.isin(uid, sems) if len(sems) else np.zeros(len(held), bool)
        plain = np.flatnonzero(held & ~slotted)
        if len(plain):
            self._add("obj_holds", rows[plain], track[plain], t0[plain], t1[plain],
                      track_span_colors(kind[plain], end[plain], pid[plain]))
        return rows[slotted], track[slotted]

    def _obj_holds(self, rows, tracks):
        """Holds (span ``rows``) of semaphores with a track (their keys: ``tracks``), in their slots."""
        if not len(rows):
            return
        sp = self.model.spans
        kind, pid, uid, t0, t1, end = (sp.view(c)[rows] for c in ("kind", "pid", "uid", "t0", "t1", "end"))
        keys = self.book.hold_keys(rows, uid, t0, t1, tracks)
        self._add("obj_holds", rows, keys, t0, t1, track_span_colors(kind, end, pid))

    def _track_spans(self, rows, kind, pid, uid, t0, t1, end, value, track):
        """Spans on objects with a track other than holds: waits (a proxy's blocking calls), generations and
        breaks of barriers."""
        tracked = track != 0
        if not tracked.any():
            return
        w = tracked & (kind != Span.LOCK_HOLD) & (kind != Span.INITIALIZER) & (kind != Span.PROC_JOIN)
        calls = np.flatnonzero(w & (kind == Span.MANAGER_CALL))
        if len(calls):         # through a proxy only the calls that wait for another process are its waits
            strings = self.model.strings
            w[calls] = [strings.get(int(v), "") in WAITING_METHODS for v in value[calls].tolist()]
            held = self.book.managed_holds(uid[calls], pid[calls], self.model.spans.view("tid")[rows[calls]],
                                           t0[calls], t1[calls], value[calls], strings)
            if held:
                first = len(self.managed)
                key, a, b, u, p, th = (np.array(x) for x in zip(*held))
                color = (C_PROC0 + p % PROC_COLORS).astype(np.int8)
                self.managed.extend(key=key, t0=a, t1=b, color=color, uid=u, pid=p, tid=th)
                self._add("obj_mholds", np.arange(first, first + len(key)), key, a, b, color)
        w = np.flatnonzero(w)
        if len(w):
            self._add("obj_waits", rows[w], track[w], t0[w], t1[w], track_span_colors(kind[w], end[w], pid[w]))
            self.book.add_waits(uid[w], t0[w], t1[w])
        b = np.flatnonzero(tracked & (kind == Span.BARRIER_WAIT))
        for sel, what, color in ((b[end[b] == SpanEnd.OK], MARK_GENERATION, C_GENERATION),
                                 (b[end[b] == SpanEnd.BROKEN], MARK_BROKEN, C_BROKEN)):
            for u in np.unique(uid[sel]).tolist():
                # a generation's mark is its first pass (its release); a break's, the first waiter it broke
                mine = sel[uid[sel] == u]
                mine = mine[np.lexsort((t1[mine], value[mine]))]
                gens = value[mine]
                first = mine[np.concatenate(([True], gens[1:] != gens[:-1]))]
                seen = self.book.generations.get((u, what), np.zeros(0, np.int64))
                first = first[~np.isin(value[first], seen)]
                if len(first):
                    self.book.generations[(u, what)] = np.union1d(seen, value[first])
                    self._mark(np.full(len(first), self.book.tracks[u].key), t1[first], color, u, pid[first], what,
                               value[first], -1)

    def _mark(self, key, t, color, uid, pid, kind, value, instant):
        """Marks on object tracks (arrays, or scalars for all)."""
        first = len(self.obj_marks)
        n = len(t)
        self.obj_marks.extend(key=key, t=t, color=color, uid=uid, pid=pid, kind=kind, value=value, instant=instant)
        self._add("obj_moments", np.arange(first, first + n), np.broadcast_to(key, (n,)), t, t,
                  np.broadcast_to(np.int64(color), (n,)) if np.ndim(color) == 0 else color)

    def _sends(self):
        """A queue's feeder thread writing a message into its pipe (QUEUE_SEND): a tick on the feeder's
        sub-lane, so the thread shows what it does."""
        msg = self.model.messages
        lo, hi = self.messages_seen, len(msg)
        if hi < lo:
            lo = 0
        self.messages_seen = hi
        if hi > lo:
            sel = np.flatnonzero(msg.view("kind")[lo:hi] == int(Kind.QUEUE_SEND))
            if len(sel):
                t = msg.view("t")[lo:hi][sel]
                keys = self._lane_keys(msg.view("pid")[lo:hi][sel], msg.view("tid")[lo:hi][sel])
                self._add("sends", lo + sel, keys, t, t, np.full(len(sel), C_SEND, np.int8))

    def _instants(self):
        ins = self.model.instants
        lo, hi = self.instants_seen, len(ins)
        self.instants_seen = hi
        if hi > lo:
            t = ins.view("t")[lo:hi]
            kind = ins.view("kind")[lo:hi]
            self._add("moments", np.arange(lo, hi), ins.view("pid")[lo:hi], t, t, MOMENT_COLOR[np.minimum(kind, 255)])
            on = np.flatnonzero(np.isin(kind, [int(k) for k in _OBJECT_MOMENTS]))
            if len(on):
                uid = ins.view("uid")[lo:hi][on]
                key = self.book.keys_of(uid, self.model.objects)
                keep = key != 0
                on, uid, key = on[keep], uid[keep], key[keep]
                if len(on):
                    k = kind[on]
                    color = np.where(np.isin(k, [int(x) for x in _BREAKING]), C_BROKEN, C_MOMENT).astype(np.int8)
                    self._mark(key, t[on], color, uid, ins.view("by")[lo:hi][on], k.astype(np.int64),
                               ins.view("a")[lo:hi][on], lo + on)
                    sel, state = event_state_points(k, uid)
                    self.book.add_points("state", uid[sel], t[on][sel], state)

    def _points(self):
        """New counter points of tracked objects (semaphore values, queue depths) from the model's series."""
        store = self.model._event_series
        pts = store.points
        lo, hi = self.book.points_seen, len(pts)
        if hi < lo:
            lo = 0
        self.book.points_seen = hi
        if hi > lo:
            sid = pts.view("sid")[lo:hi]
            for s in np.unique(sid).tolist():
                what, which = store.keys[s]
                if what in ("value", "depth") and self.book.track(which, self.model.objects) is not None:
                    sel = sid == s
                    self.book.add_points(what, np.full(int(sel.sum()), which, np.uint64), pts.view("t")[lo:hi][sel],
                                         pts.view("v")[lo:hi][sel])
        n = len(self.model._barriers)
        if n != self.barriers_seen:
            self.barriers_seen = n
            self.barrier_series = self.model._barrier_series()

    # -- pool tasks ------------------------------------------------------------------------------------------
    def _tasks(self):
        m = self.model
        book = m.tasks_book
        n = len(book)
        changed = [book.take_changes()]
        if n > self.tasks_seen:
            changed.append(np.arange(self.tasks_seen, n))
            self.tasks_seen = n
        if len(self.task_version) < n:
            self.task_version = _grow(self.task_version, n, -1)
            self.used_version = _grow(self.used_version, n, -1)
        # a worker's end (or the run's status) decides its open tasks: redo them when it changes
        workers = m.tasks.view("worker")
        status = m.meta.get("status")
        redo = []
        for pid in list(self.running_workers()) + list(self.died):
            p = m.procs.get(pid)
            died = p.exited if p is not None else NO_TIME
            if self.died.get(pid, NO_TIME) != died:
                self.died[pid] = died
                redo.append(pid)
        if status != self.status:
            self.status = status
            changed.append(np.array(list(self.running), np.int64))
        if redo:
            changed.append(np.flatnonzero(np.isin(workers, redo)))
        rows = np.unique(np.concatenate(changed)) if changed else np.zeros(0, np.int64)
        if not len(rows):
            return
        tab = m.tasks_array(rows)
        self._task_bars(rows, tab)
        self._used_ticks(rows, tab)

    def running_workers(self):
        return {w for w, _ in self.running.values()}

    def _task_bars(self, rows, tab):
        started = (tab["start"] != NO_TIME) & (tab["worker"] != 0)
        done = started & (tab["end"] != NO_TIME)
        color = np.full(len(tab), C_RUNNING, np.int8)
        for outcome, c in OUTCOME_COLOR.items():
            color[done & (tab["outcome"] == outcome)] = c
        # take back the old versions of these tasks' bars
        old = self.task_version[rows]
        had = old >= 0
        if had.any():
            v = old[had]
            bars = self.task_bars
            self._add("tasks", v, bars.view("pid")[v], bars.view("t0")[v], bars.view("t1")[v], bars.view("color")[v],
                      sign=-1)
            self.task_dead[v] = True
            self.task_version[rows[had]] = -1
        for r in rows.tolist():
            self.running.pop(r, None)
        for r, w, s in zip(rows[started & ~done].tolist(), tab["worker"][started & ~done].tolist(),
                           tab["start"][started & ~done].tolist()):
            self.running[r] = (w, s)
            self.died.setdefault(w, NO_TIME)
        first = len(self.task_bars)
        k = int(done.sum())
        if k:
            self.task_bars.extend(ref=rows[done], pid=tab["worker"][done], t0=tab["start"][done],
                                  t1=tab["end"][done], color=color[done])
            self.task_dead = _grow(self.task_dead, len(self.task_bars))
            v = np.arange(first, first + k)
            self.task_version[rows[done]] = v
            self._add("tasks", v, tab["worker"][done], tab["start"][done], tab["end"][done], color[done])

    def _used_ticks(self, rows, tab):
        caller = np.zeros(len(tab), np.int64)
        for key, sel in by_job(tab["pool"], tab["job"]):
            caller[sel] = self.model.jobs.get(key, {}).get("pid", 0)
        used = tab["used"] != NO_TIME
        old = self.used_version[rows]
        bars = self.used_bars
        same = (old >= 0) & used
        if same.any():           # unchanged ticks stay as they are
            v = old[same]
            same[same] = (bars.view("t0")[v] == tab["used"][same]) & (bars.view("pid")[v] == caller[same])
        stale = (old >= 0) & ~same
        if stale.any():
            v = old[stale]
            self._add("used", v, bars.view("pid")[v], bars.view("t0")[v], bars.view("t1")[v], bars.view("color")[v],
                      sign=-1)
            self.used_dead[v] = True
            self.used_version[rows[stale]] = -1
        new = used & ~same
        k = int(new.sum())
        if k:
            first = len(bars)
            t = tab["used"][new]
            bars.extend(ref=rows[new], pid=caller[new], t0=t, t1=t, color=C_USED)
            self.used_dead = _grow(self.used_dead, len(bars))
            v = np.arange(first, first + k)
            self.used_version[rows[new]] = v
            self._add("used", v, caller[new], t, t, np.full(k, C_USED))

    # -- the snapshot ------------------------------------------------------------------------------------------
    def _data(self):
        m = self.model
        t0 = m.t0
        t_last = m.t_last if m.t_last is not None else t0
        procs = [p for p in m.procs.values() if p.traced or p.first != NO_TIME]
        ordered = lane_order(procs)
        lanes = [Lane(p.pid, lane_label(p), p.role, p.state) for p in ordered]
        pinfo = {p.pid: p for p in procs}
        lane_pids = self.lane_pids.copy()
        layers = {}
        frozen = {name: idx.frozen() for name, idx in self.index.items()}
        n_spans = len(m.spans)
        open_spans = m.open_spans_array(now=t_last, with_site=True)
        span_live = EMPTY_BARS
        semaphores = self.book.semaphore_uids()
        if len(open_spans):
            kind, uid = open_spans["kind"], open_spans["uid"]
            refs = n_spans + np.arange(len(open_spans))
            span_live = (lane_keys(open_spans["pid"], open_spans["tid"], self.thread_codes, self.thread_keys),
                         open_spans["t0"], open_spans["t1"], span_colors(kind, uid, semaphores), refs)
        spans_src = SpanSource(m.spans, n_spans, self.thread_codes, self.thread_keys, semaphores)
        hold = open_spans["kind"] == Span.LOCK_HOLD if len(open_spans) else np.zeros(0, bool)
        layers["holds"] = IndexedLayer("holds", spans_src, frozen["holds"], lane_pids,
                                       tuple(x[hold] for x in span_live), t0)
        layers["waits"] = IndexedLayer("waits", spans_src, frozen["waits"], lane_pids,
                                       tuple(x[~hold] for x in span_live), t0)
        running = EMPTY_BARS
        if self.running:
            r = np.array(list(self.running), np.int64)
            w = np.array([self.running[i][0] for i in r.tolist()], np.int64)
            s = np.array([self.running[i][1] for i in r.tolist()], np.int64)
            running = (w, s, np.maximum(s, t_last), np.full(len(r), C_RUNNING, np.int8), r)
        nt = len(self.task_bars)
        layers["tasks"] = IndexedLayer("tasks", VersionSource(self.task_bars, self.task_dead, nt, self.task_version),
                                       frozen["tasks"], lane_pids, running, t0)
        layers["used"] = IndexedLayer("used", VersionSource(self.used_bars, self.used_dead, len(self.used_bars),
                                                            self.used_version),
                                      frozen["used"], lane_pids, EMPTY_BARS, t0)
        layers["moments"] = IndexedLayer("moments", InstantSource(m.instants, len(m.instants)), frozen["moments"],
                                         lane_pids, EMPTY_BARS, t0)
        n_msg = len(m.messages)
        layers["sends"] = IndexedLayer("sends", SendSource(m.messages, n_msg, self.thread_codes, self.thread_keys),
                                       frozen["sends"], lane_pids, EMPTY_BARS, t0)
        layers["life"], layers["starting"] = _lifetimes(procs, t0, t_last)
        tracks, open_waits = self._track_layers(layers, frozen, lane_pids, n_spans, open_spans, t0)
        threads = self._thread_lanes(pinfo)
        marks = [((t - t0) / 1e9, label) for t, pid, label, value in m.marks if value is None]
        names = {uid: o.get("name", "") for uid, o in m.objects.items()}
        tasks = TaskRecords(m.tasks, len(m.tasks), self.task_bars, self.task_version, self.running)
        spans = Records({name: m.spans.view(name)[:n_spans] for name in SPAN_COLUMNS.names}, n_spans, open_spans)
        instants = Records({name: m.instants.view(name)[:len(m.instants)] for name in m.instants.names},
                           len(m.instants))
        dropping = [((a - t0) / 1e9, (b - t0) / 1e9) for a, b in m.skipped]
        counters = self.book.counters(t_last, open_waits, self.barrier_series)
        proc_counters = {}
        for (what, pid), (t, v) in m._sample_series.arrays().items():
            if what == "cpu" and len(t):
                proc_counters.setdefault(pid, []).insert(0, Counter("CPU", t, v, max(100.0, float(v.max())),
                                                                    "CPU_PROC", "%"))
            elif what == "rss" and len(t):
                proc_counters.setdefault(pid, []).append(Counter("RSS", t, v, max(float(v.max()), 1.0), "RSS",
                                                                 "B", step=False))
        nm = len(self.obj_marks)
        obj_marks = Records({name: self.obj_marks.view(name)[:nm] for name in self.obj_marks.names}, nm)
        nh = len(self.managed)
        still = self.book.open_managed_holds()
        extra = np.zeros(len(still), HoldSource.DTYPE)
        for i, (key, a, u, p, th) in enumerate(still):
            extra[i] = (key, a, t_last, 0, u, p, th)
        managed = Records({name: self.managed.view(name)[:nh] for name in self.managed.names}, nh, extra)
        kinds = {uid: tr.kind for uid, tr in self.book.tracks.items()}
        messages = Records({name: m.messages.view(name)[:n_msg] for name in m.messages.names}, n_msg)
        return TimelineData(lanes, layers, marks, (t_last - t0) / 1e9, tasks, spans, names, dict(m.strings), pinfo,
                            m.version, instants, t0, dropping, threads, tracks, counters, proc_counters, obj_marks,
                            kinds, m.path or "", managed, messages)

    def _thread_lanes(self, pinfo):
        out = []
        for (pid, tid), key in sorted(self.threads.items(), key=lambda kv: kv[0]):
            p = pinfo.get(pid)
            if p is not None:
                out.append(Lane(key, "thread %d" % tid, p.role, p.state, "thread", tid, pid, p.role))
        return out

    def _track_layers(self, layers, frozen, lane_pids, n_spans, open_spans, t0):
        """The object tracks' layers and lanes; returns (lanes, {uid: start times of its open waits})."""
        ordered = self.book.ordered()
        uids = np.array([tr.uid for tr in ordered], np.uint64)
        order = np.argsort(uids)
        table = np.zeros((max(len(ordered), 1), MAX_SLOTS), np.int64)
        for i, tr in enumerate(ordered):
            table[i, :] = tr.key
            for s, k in enumerate(tr.slot_keys, 1):
                table[i, s] = k
        src = TrackSpanSource(self.model.spans, n_spans, uids[order], order.astype(np.int64), table,
                              self.book.slot_of)
        live_holds, live_waits = EMPTY_BARS, EMPTY_BARS
        open_waits: Dict[int, list] = {}
        if len(open_spans) and len(uids):
            row = lookup(uids[order], order.astype(np.int64), open_spans["uid"], -1)
            on = np.flatnonzero(row >= 0)
            o = open_spans[on]
            refs = n_spans + on
            hold = o["kind"] == Span.LOCK_HOLD
            # an open hold shows on its track's first row (its slot is decided when it ends)
            bars = (table[row[on], 0], o["t0"], o["t1"], track_span_colors(o["kind"], o["end"], o["pid"]), refs)
            live_holds = tuple(x[hold] for x in bars)
            waiting = ~hold & (o["kind"] != Span.MANAGER_CALL)
            live_waits = tuple(x[waiting] for x in bars)
            for u, a in zip(o["uid"][waiting].tolist(), o["t0"][waiting].tolist()):
                open_waits.setdefault(u, []).append(a)
        layers["obj_holds"] = IndexedLayer("obj_holds", src, frozen["obj_holds"], lane_pids, live_holds, t0)
        layers["obj_waits"] = IndexedLayer("obj_waits", src, frozen["obj_waits"], lane_pids, live_waits, t0)
        layers["obj_moments"] = IndexedLayer("obj_moments", MarkSource(self.obj_marks, len(self.obj_marks)),
                                             frozen["obj_moments"], lane_pids, EMPTY_BARS, t0)
        nm = len(self.managed)
        live = EMPTY_BARS
        still = self.book.open_managed_holds()
        if still:
            key, a, _, p, _ = (np.array(x) for x in zip(*still))
            t_last = self.model.t_last if self.model.t_last is not None else t0
            live = (key.astype(np.int64), a.astype(np.int64), np.maximum(a, t_last).astype(np.int64),
                    (C_PROC0 + p % PROC_COLORS).astype(np.int8), nm + np.arange(len(key)))
        layers["obj_mholds"] = IndexedLayer("obj_mholds", HoldSource(self.managed, nm), frozen["obj_mholds"],
                                            lane_pids, live, t0)
        lanes = []
        for tr in ordered:
            group = "queues" if tr.kind in ("Queue", "JoinableQueue", "SimpleQueue") else "objects"
            lanes.append(Lane(tr.key, tr.label, tr.kind, "", "object", tr.uid, 0, group))
            for s, k in enumerate(tr.slot_keys, 2):
                lanes.append(Lane(k, "%s · holder %d" % (tr.name, s), tr.kind, "", "slot", tr.uid, 0, group))
        return lanes, open_waits


class TaskRecords:
    """A task's record by its row, with its bar as drawn (its start and end, as a worker's end implies)."""

    def __init__(self, table, n, bars, version, running):
        self.cols = {name: table.view(name)[:n] for name in table.names}
        self.n = n
        self.bars = bars
        self.version = version          # shared: the builder only ever points a row at a newer version
        self.running = dict(running)

    def __len__(self):
        return self.n

    def __getitem__(self, row):
        if isinstance(row, str):              # a column, as the table has it
            return self.cols[row]
        row = int(row)
        rec = {name: col[row] for name, col in self.cols.items()}
        v = self.version[row] if row < len(self.version) else -1
        if v >= 0:
            rec["start"] = self.bars.view("t0")[v]
            rec["end"] = self.bars.view("t1")[v]
        elif row in self.running:
            rec["end"] = NO_TIME
        return rec


def _lifetimes(procs, t0, t_last):
    pids, x0, x1 = [], [], []
    spid, s0, s1 = [], [], []
    for p in procs:
        begin = p.booted if p.booted != NO_TIME else p.first
        end = p.exited if p.exited != NO_TIME else (p.last if p.state == "exited" else t_last)
        if begin != NO_TIME and end != NO_TIME and end >= begin:
            pids.append(p.pid)
            x0.append(begin)
            x1.append(end)
        if p.start_called != NO_TIME and p.booted != NO_TIME and p.booted >= p.start_called:
            spid.append(p.pid)
            s0.append(p.start_called)
            s1.append(p.booted)

    def sec(a):
        return (np.asarray(a, dtype=np.float64) - t0) / 1e9
    life = Bars(np.array(pids, np.int64), sec(x0), sec(x1), np.full(len(pids), C_LIFE, np.int8),
                np.array(pids, np.int64), t0)
    starting = Bars(np.array(spid, np.int64), sec(s0), sec(s1), np.full(len(spid), C_STARTING, np.int8),
                    np.array(spid, np.int64), t0)
    return life, starting


def _grow(a, n, fill=0):
    """``a`` with room for ``n`` items (doubling; new items ``fill``)."""
    if n <= len(a):
        return a
    grown = np.full(max(n, 2 * len(a)), fill, a.dtype)
    grown[:len(a)] = a
    return grown


def build(model):
    """A TimelineData of everything the model holds now (tests and one-off pictures; the app keeps a
    ``TimelineBuilder`` and updates it)."""
    with model.lock:
        builder = TimelineBuilder(model)
        data = builder.update()
        builder.trim()
        return data
