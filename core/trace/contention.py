"""Contention analytics: who waited for what, how long, where in the program, and who let them go.

Everything here is numpy over ``EVENT_DTYPE`` arrays, in three layers:

* tables of what happened, one row each, from the records (``waits``, ``holds``, ``handoffs``);
* figures over those tables, for a whole run or a time range (``object_stats``, ``blocking_profile``,
  ``queue_stats``), and series (``semaphore_holders``, ``queue_depths``);
* ``analyse`` (an array of records) and ``analyse_run`` (a run file, one chunk at a time, keeping only the
  records these functions read) build a ``ContentionReport`` that holds the tables and answers for any time
  range; ``profile_counters`` turns its blocking profile into the Perfetto export's counters.

What the records already carry is read, not rebuilt: an acquisition's wait is its ACQ_OK's ``a`` (0 when it
did not wait), a lock's hold is its last RELEASE's ``a``, a condition's, event's or barrier's wait is in the
record that ends it.  Pairing is done only where no field carries the answer: a semaphore's hold (its
releases say only the value), a call site with the wait it precedes, and "unblocked by" links.

Records may come in any order across threads (a run file stores them as its collector drained them), but the
records of one thread must be in the order recorded: as stored, or sorted by time with a stable sort.  A call
site (CALLSITE) belongs to the next wait-ending record of its thread on the same object.

No Qt, no model, no file access beyond ``RunFile``: the app's contention views, the command line and the
exports call these.
"""
import enum
from dataclasses import dataclass, field
from typing import Dict, Tuple

import numpy as np

from .arrays import EVENT_DTYPE
from .events import BLOCKED_NS, Kind
from .units import fmt_ns
#: The percentiles the figures give (nearest rank: each is a wait that happened).
PERCENTILES = (50, 95)
#: Edges of the wait and hold histograms, in ns: 1-2-5 steps from 1 us to 10 s; a first bin below 1 us and
#: a last one from 10 s on, so every value has a bin.  The same for every object, so they compare.
HIST_EDGES_NS = np.array([m * 10 ** e for e in range(3, 10) for m in (1, 2, 5)] + [10 ** 10], dtype=np.int64)
HIST_BINS = len(HIST_EDGES_NS) + 1
#: Up to this many groups (objects, call sites), percentiles are found by partitioning each group's values
#: (linear); beyond, by sorting them all at once (fewer Python steps).
PARTITIONED_GROUPS = 256
#: Call sites given a track of their own in the Perfetto export, the most waited-at first.
TOP_SITES = 10
#: The Chrome trace pid of the "blocking profile" process: above any real pid (Linux's are below 2**22,
#: Windows' below 2**32 but multiples of 4; this one is odd).
PROFILE_PID = 0x7FFFFFFF


class Family(enum.IntEnum):
    """What kind of object a wait is on (from the records: the registrations may be missing)."""
    LOCK = 1            # Lock, RLock, Semaphore, BoundedSemaphore
    CONDITION = 2
    EVENT = 3
    BARRIER = 4
    QUEUE = 5
    PIPE = 6
    MANAGER = 7         # a call through a manager's proxy that waited (a shared lock, a shared queue...)


class Outcome(enum.IntEnum):
    OK = 0
    TIMEOUT = 1         # gave up: an acquire, a wait, a get or a put with a timeout (or not blocking)
    BROKEN = 2          # a broken barrier; a manager call that raised


K = Kind
#: Records that end a wait: kind -> (family, the slot holding the wait, the outcome unless a flag says other).
_ENDS = {
    K.ACQ_OK: (Family.LOCK, "a", Outcome.OK), K.ACQ_TIMEOUT: (Family.LOCK, "a", Outcome.TIMEOUT),
    K.COND_WOKEN: (Family.CONDITION, "a", Outcome.OK), K.EVENT_WAIT_END: (Family.EVENT, "a", Outcome.OK),
    K.BARRIER_PASS: (Family.BARRIER, "a", Outcome.OK), K.BARRIER_BROKEN: (Family.BARRIER, "a", Outcome.BROKEN),
    K.QUEUE_PUT: (Family.QUEUE, "a", Outcome.OK), K.QUEUE_GET: (Family.QUEUE, "a", Outcome.OK),
    K.QUEUE_FULL: (Family.QUEUE, "a", Outcome.TIMEOUT), K.QUEUE_EMPTY: (Family.QUEUE, "a", Outcome.TIMEOUT),
    K.QUEUE_JOIN: (Family.QUEUE, "a", Outcome.OK),
    K.PIPE_SEND: (Family.PIPE, "b", Outcome.OK), K.PIPE_RECV: (Family.PIPE, "b", Outcome.OK),
    K.MANAGER_CALL: (Family.MANAGER, "a", Outcome.OK),
}
#: Every kind these analytics read; ``analyse_run`` keeps only these records of a run.
READ_KINDS = frozenset(_ENDS) | {K.CALLSITE, K.RELEASE, K.COND_NOTIFY, K.EVENT_SET, K.BARRIER_ARRIVE,
                                 K.QUEUE_SEND}
#: The families ``object_stats`` covers; queues and pipes have ``queue_stats``, manager calls the profile.
SYNC_FAMILIES = (Family.LOCK, Family.CONDITION, Family.EVENT, Family.BARRIER)


def _table(values, dtype, default=0):
    """A lookup table over kind numbers (capped at 255): ``table[np.minimum(kind, 255)]``."""
    t = np.full(256, default, dtype=dtype)
    for kind, v in values.items():
        t[int(kind)] = v
    return t


_IS_END = _table({k: True for k in _ENDS}, bool, False)
_IS_READ = _table({k: True for k in READ_KINDS}, bool, False)
_FAMILY = _table({k: int(f) for k, (f, _, _) in _ENDS.items()}, np.uint8)
_WAIT_IN_B = _table({k: slot == "b" for k, (_, slot, _) in _ENDS.items()}, bool, False)
_OUTCOME = _table({k: int(o) for k, (_, _, o) in _ENDS.items()}, np.uint8)
_CALLSITE, _ACQ_OK, _RELEASE = int(K.CALLSITE), int(K.ACQ_OK), int(K.RELEASE)
del K

#: One wait: it ended at ``t`` after ``wait`` ns (``kind``: the record that ended it); ``site``: the string
#: id of where the program waited (0: none recorded); ``blocked``: whether it really waited (``waits``).
WAIT_DTYPE = np.dtype([("t", "<i8"), ("wait", "<i8"), ("uid", "<u8"), ("site", "<i8"), ("pid", "<i4"),
                       ("tid", "<i4"), ("kind", "<u2"), ("family", "u1"), ("outcome", "u1"), ("blocked", "?")])
#: One hold of a lock or semaphore, from its acquisition ``t0`` to its release ``t1``.
HOLD_DTYPE = np.dtype([("t0", "<i8"), ("t1", "<i8"), ("uid", "<u8"), ("pid", "<i4"), ("tid", "<i4")])
#: "Unblocked by": the record ``from_*`` (a release, notify, set, last arrival or put, of kind ``from_kind``)
#: ended the wait that ended at ``to_t`` (it began at ``wait_t0``) in thread ``to_tid`` of ``to_pid``;
#: ``latency`` = to_t - from_t, the handoff.
LINK_DTYPE = np.dtype([("from_t", "<i8"), ("to_t", "<i8"), ("wait_t0", "<i8"), ("latency", "<i8"),
                       ("uid", "<u8"), ("from_pid", "<i4"), ("from_tid", "<i4"), ("to_pid", "<i4"),
                       ("to_tid", "<i4"), ("from_kind", "<u2"), ("to_kind", "<u2"), ("family", "u1")])


def _figures(prefix):
    """Count, total, percentiles and max of one measure (``wait``, ``hold``, ``handoff``)."""
    return ([(prefix + "_count", "<i8"), (prefix + "_total", "<i8")]
            + [("%s_p%d" % (prefix, p), "<i8") for p in PERCENTILES] + [(prefix + "_max", "<i8")])


#: Per object.  ``acquired``: waits that ended well (a lock's acquisitions, a condition's notified waits...);
#: ``contended``: those that blocked first; ``share`` = contended / acquired; ``timeouts``: waits given up
#: (or broken).  The ``wait_*`` figures are over the waits that blocked (timeouts included); ``hold_*`` over
#: a lock's or semaphore's holds; ``handoff_*`` over the latencies of the links into its waits.  Figures
#: with no value are -1; the histograms count values per HIST_EDGES_NS bin.
OBJECT_DTYPE = np.dtype([("uid", "<u8"), ("family", "u1"), ("acquired", "<i8"), ("contended", "<i8"),
                         ("share", "<f8"), ("timeouts", "<i8")]
                        + _figures("wait") + _figures("hold") + _figures("handoff")
                        + [("wait_hist", "<i8", (HIST_BINS,)), ("hold_hist", "<i8", (HIST_BINS,))])
#: Per queue (family QUEUE) or pipe end (PIPE): messages put/sent and got/received, bytes written into it
#: and read out of it, how many puts (sends) and gets (receives) blocked and for how long in all, timeouts,
#: and the deepest it was (-1: unknown, a pipe).
QUEUE_DTYPE = np.dtype([("uid", "<u8"), ("family", "u1"), ("puts", "<i8"), ("gets", "<i8"),
                        ("bytes_in", "<i8"), ("bytes_out", "<i8"), ("put_blocked", "<i8"),
                        ("put_blocked_ns", "<i8"), ("get_blocked", "<i8"), ("get_blocked_ns", "<i8"),
                        ("timeouts", "<i8"), ("max_depth", "<i8")])
#: A semaphore's holders after each acquisition or release, and its value (initial value - holders).
HOLDERS_DTYPE = np.dtype([("t", "<i8"), ("holders", "<i8"), ("value", "<i8")])


# -- records as columns ------------------------------------------------------------------------------------
class Records:
    """Records (EVENT_DTYPE) as one contiguous array per field, with what several tables need worked out
    once: each record's object (``obj``, its index in ``uids``) and thread (``thread``, its index among the
    run's (pid, tid) pairs).  Gathering a few columns costs a fraction of gathering 48-byte records."""

    FIELDS = ("t", "uid", "a", "b", "c", "pid", "tid")

    def __init__(self, events, read_only=False):
        """``events``: an EVENT_DTYPE array, or an iterable of them (a run file's chunks); with ``read_only``,
        only the records of READ_KINDS are kept."""
        chunks = [events] if isinstance(events, np.ndarray) else events      # one chunk at a time
        columns: Dict[str, list] = {name: [] for name in self.FIELDS + ("kind",)}
        for chunk in chunks:
            kind = np.minimum(chunk["kind"], 255).astype(np.uint8)
            keep = _IS_READ[kind] if read_only else None
            if keep is not None and keep.all():
                keep = None
            for name in self.FIELDS:
                columns[name].append(chunk[name] if keep is None else chunk[name][keep])
            columns["kind"].append(kind if keep is None else kind[keep])

        def joined(name, dtype):
            return np.concatenate(columns[name]) if columns[name] else np.zeros(0, dtype)

        self.t, self.uid, self.a, self.b, self.c, self.pid, self.tid = (joined(name, EVENT_DTYPE[name])
                                                                        for name in self.FIELDS)
        self.kind = joined("kind", np.uint8)
        self.uids, self.obj = _dense(self.uid)
        self.thread = _dense((self.pid.astype(np.int64) << 32) | (self.tid.astype(np.int64) & 0xFFFFFFFF))[1]
        self.n_threads = int(self.thread.max()) + 1 if len(self.t) else 0

    def __len__(self):
        return len(self.t)

    def take(self, rows):
        """The records at ``rows`` (an index array or a mask), sharing ``uids`` and the thread numbering."""
        out = object.__new__(Records)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)         # a mask is read once, not once per column
        for name in self.FIELDS + ("kind", "obj", "thread"):
            setattr(out, name, getattr(self, name)[rows])
        out.uids, out.n_threads = self.uids, self.n_threads
        return out


def _records(events):
    return events if isinstance(events, Records) else Records(events)


def _dense(values):
    """(the distinct values, each value's index among them).  Only the values that begin a run of equal ones
    are sorted: records come in runs of one thread, often of one object."""
    if not len(values):
        return values[:0], np.zeros(0, np.int64)
    starts = _starts(values)
    distinct = np.unique(values[starts])
    return distinct, _lookup_runs(distinct, values, starts)


def _lookup_runs(distinct, values, starts=None):
    """The index in ``distinct`` (sorted) of each of ``values``, looked up once per run of equal values."""
    if starts is None:
        starts = _starts(values) if len(values) else np.zeros(0, np.intp)
    at = np.searchsorted(distinct, values[starts]).astype(np.int64)
    return np.repeat(at, np.diff(np.append(starts, len(values))))


def _starts(values):
    """Where each run of equal consecutive values begins."""
    return np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))


def _by_group(group, n_groups, order=None):
    """The stable order by ``group`` (0..n_groups-1) of the rows (taken in ``order`` if given): a radix sort
    when the groups fit in 16 bits."""
    keys = group if order is None else group[order]
    by = np.argsort(keys.astype(np.uint16) if n_groups <= 1 << 16 else keys, kind="stable")
    return by if order is None else order[by]


def _by_group_then(group, n_groups, value):
    """The order by ``group``, then by ``value`` within a group (ties keep their order)."""
    return _by_group(group, n_groups, np.argsort(value, kind="stable"))


def _per_group(group, values, n):
    """Figures of ``values`` per group 0..n-1: counts, totals, percentiles (nearest rank), max, histogram.
    Groups without values have -1 for every figure but the count (0) and the total (0)."""
    count = np.bincount(group, minlength=n).astype(np.int64)
    total = np.zeros(n, np.int64)
    pct = {p: np.full(n, -1, np.int64) for p in PERCENTILES}
    top = np.full(n, -1, np.int64)
    hist = np.zeros((n, HIST_BINS), np.int64)
    if len(values):
        order = _by_group(group, n)
        v = values[order]
        starts = _starts(group[order])
        ids = group[order][starts]
        sizes = count[ids]
        total[ids] = np.add.reduceat(v, starts)
        top[ids] = np.maximum.reduceat(v, starts)
        at = {p: starts + np.maximum(np.ceil(sizes * (p / 100.0)).astype(np.int64) - 1, 0) for p in PERCENTILES}
        if len(ids) <= PARTITIONED_GROUPS:
            # each group's percentiles in place, without sorting it: linear in its size
            for i, (s, e) in enumerate(zip(starts.tolist(), (starts + sizes).tolist())):
                v[s:e].partition([int(at[p][i]) - s for p in PERCENTILES])
        else:
            v = _sorted_within(group, n, values)[1]
        for p in PERCENTILES:
            pct[p][ids] = v[at[p]]
        bins = np.searchsorted(HIST_EDGES_NS, values, side="right")
        hist = np.bincount(group * HIST_BINS + bins, minlength=n * HIST_BINS).reshape(n, HIST_BINS)
    return count, total, pct, top, hist


def _sorted_within(group, n_groups, values):
    """(groups, values) sorted by group, then by value.  One sort of a single key when both fit in it."""
    lo = int(values.min())
    span = (int(values.max()) - lo).bit_length()
    if span + max(n_groups - 1, 1).bit_length() <= 62:
        key = np.sort((group << span) | (values - lo))
        return key >> span, (key & ((1 << span) - 1)) + lo
    order = np.lexsort((values, group))
    return group[order], values[order]


def _make(dtype, n, **columns):
    """``n`` rows of ``dtype`` with the given columns (the rest zero)."""
    out = np.zeros(n, dtype)
    for name, values in columns.items():
        out[name] = values
    return out


def _in_range(t, t_from, t_to):
    """Which of the times ``t`` fall in [t_from, t_to) (None: open)."""
    sel = np.ones(len(t), dtype=bool)
    if t_from is not None:
        sel &= t >= t_from
    if t_to is not None:
        sel &= t < t_to
    return sel


# -- tables -------------------------------------------------------------------------------------------------
def waits(events):
    """Every wait the records end: a lock's acquisition or timeout (ACQ_OK/ACQ_TIMEOUT ``a``), a condition's
    wake (COND_WOKEN ``a``; ``b`` 0: timed out), an event's (EVENT_WAIT_END ``a``; ``b`` 0: timed out), a
    barrier's pass or break (``a``), a queue's put, get, timeout or join (``a``), a pipe's send or recv
    (``b``), and a manager call that recorded a call site (``a``; ``c`` 1: it raised).  Each gets the call
    site recorded right before it by its thread on its object (``site``, 0 if none).  ``blocked``: a lock's
    wait above 0 (a request was recorded), any other wait from BLOCKED_NS but the pass of a barrier's last
    arrival (it waited for nobody), and any wait with a call site.
    ``events``: EVENT_DTYPE records or ``Records``.  Returns WAIT_DTYPE rows, in no particular order."""
    r = _records(events)
    rows = np.flatnonzero(_IS_END[r.kind] | (r.kind == _CALLSITE))
    if not len(rows):
        return np.zeros(0, WAIT_DTYPE)
    # each (thread, object) in its recorded order: a call site belongs to the record right after it there
    group = r.thread[rows] * len(r.uids) + r.obj[rows]
    order = _by_group(group, r.n_threads * len(r.uids))
    rows, group = rows[order], group[order]
    is_site = r.kind[rows] == _CALLSITE
    site = np.zeros(len(rows), dtype=np.int64)
    site[1:] = np.where(is_site[:-1] & (group[1:] == group[:-1]), r.a[rows[:-1]], 0)
    family = _FAMILY[r.kind[rows]]
    ends = ~is_site & ((family != Family.MANAGER) | (site != 0))
    sub, site, family = r.take(rows[ends]), site[ends], family[ends]
    k = sub.kind
    wait = np.where(_WAIT_IN_B[k], sub.b, sub.a)
    outcome = _OUTCOME[k].copy()
    flagged = (k == Kind.COND_WOKEN) | (k == Kind.EVENT_WAIT_END)
    outcome[flagged & (sub.b == 0)] = Outcome.TIMEOUT
    outcome[(k == Kind.MANAGER_CALL) & (sub.c == 1)] = Outcome.BROKEN
    blocked = np.where(family == Family.LOCK, wait > 0, wait >= BLOCKED_NS)
    blocked[_last_arrivals(r, sub)] = False
    return _make(WAIT_DTYPE, len(sub), t=sub.t, uid=sub.uid, pid=sub.pid, tid=sub.tid, kind=k, family=family,
                 site=site, wait=wait, outcome=outcome, blocked=blocked | (site != 0))


def _last_arrivals(r, ends):
    """Which of ``ends`` are barrier passes of the party that arrived last: it waited for nobody, however long
    waking the others took (BARRIER_PASS ``c`` is the index wait() returned, parties - 1 for the last; the
    parties are in BARRIER_ARRIVE ``a``)."""
    passes = ends.kind == Kind.BARRIER_PASS
    if not passes.any():
        return passes
    parties = np.zeros(len(r.uids), np.int64)
    arrivals = r.kind == Kind.BARRIER_ARRIVE
    parties[r.obj[arrivals]] = r.a[arrivals]
    return passes & (ends.c == parties[ends.obj] - 1)


def holds(events):
    """Every finished hold of a lock or semaphore: a lock's (or recursive lock's) last RELEASE carries its
    hold in ``a``; a semaphore's releases do not (``a`` -1: holders overlap), so each is paired with its
    thread's latest acquisition (ACQ_OK) not yet released, as the model does.  A release whose acquisition
    was not recorded is left out.  Returns HOLD_DTYPE rows, in no particular order."""
    r = _records(events)
    final = (r.kind == _RELEASE) & (r.c <= 0)
    known = r.take(final & (r.a >= 0))
    parts = [_make(HOLD_DTYPE, len(known), t0=known.t - known.a, t1=known.t, uid=known.uid, pid=known.pid,
                   tid=known.tid)]
    unknown = final & (r.a < 0)
    if unknown.any():
        semaphore = np.zeros(len(r.uids), dtype=bool)
        semaphore[r.obj[unknown]] = True
        parts.append(_pair_holds(r.take(semaphore[r.obj] & ((r.kind == _ACQ_OK) | unknown)), len(r.uids)))
    return np.concatenate(parts)


def _pair_holds(r, n_objects):
    """Holds of semaphores from their ACQ_OK and RELEASE records: per (thread, object), each release takes
    the latest unreleased acquisition (a stack).  Groups that simply alternate are paired with numpy; the
    rest are replayed one record at a time."""
    group = r.thread * n_objects + r.obj
    order = _by_group(group, r.n_threads * n_objects)
    r, group = r.take(order), group[order]
    acq = r.kind == _ACQ_OK
    prev_acq = np.zeros(len(r), dtype=bool)
    prev_acq[1:] = acq[:-1] & (group[1:] == group[:-1])
    # a group alternates when every release follows an acquisition and no acquisition follows another
    odd = np.zeros(r.n_threads * n_objects, dtype=bool)
    odd[group[(~acq & ~prev_acq) | (acq & prev_acq)]] = True
    simple = ~odd[group]
    paired = np.flatnonzero(simple & ~acq & prev_acq)
    rel = r.take(paired)
    out = [_make(HOLD_DTYPE, len(rel), t0=r.t[paired - 1], t1=rel.t, uid=rel.uid, pid=rel.pid, tid=rel.tid)]
    rest = r.take(~simple)
    if len(rest):
        stacks: Dict[Tuple[int, int, int], list] = {}
        rows = []
        for t, uid, kind, pid, tid in zip(rest.t.tolist(), rest.uid.tolist(), rest.kind.tolist(),
                                          rest.pid.tolist(), rest.tid.tolist()):
            stack = stacks.setdefault((uid, pid, tid), [])
            if kind == _ACQ_OK:
                stack.append(t)
            elif stack:
                rows.append((stack.pop(), t, uid, pid, tid))
        out.append(np.array(rows, dtype=HOLD_DTYPE))
    return np.concatenate(out)


def handoffs(events):
    """"Unblocked by" links, each from the record that ended a wait to the wait's end:

    * a contended acquisition (ACQ_OK, ``a`` > 0) <- the last release (RELEASE, not a recursive lock's inner
      one) of that object before it, by another thread;
    * a notified condition wait (COND_WOKEN, ``b`` 1) <- the last notify (COND_NOTIFY) of that condition in
      the wait, by another thread;
    * an event wait that blocked and saw the event set (EVENT_WAIT_END) <- the last set (EVENT_SET) in it;
    * a barrier pass (BARRIER_PASS) <- the last arrival (BARRIER_ARRIVE) of its generation (``b``), by
      another thread (the last to arrive did not wait for anyone);
    * a blocked get (QUEUE_GET, ``a`` from BLOCKED_NS) <- the put (QUEUE_PUT) of the message it got: a
      queue is first in, first out, so the k-th get takes what the k-th write into its pipe (QUEUE_SEND)
      carried, and a process's j-th write is its j-th put.

    Returns LINK_DTYPE rows, in no particular order."""
    r = _records(events)
    k = r.kind
    parts = [_links_to_latest(r, (k == Kind.RELEASE) & (r.c <= 0), (k == Kind.ACQ_OK) & (r.a > 0), Family.LOCK,
                              window=False),
             _links_to_latest(r, k == Kind.COND_NOTIFY, (k == Kind.COND_WOKEN) & (r.b == 1), Family.CONDITION,
                              window=True),
             _links_to_latest(r, k == Kind.EVENT_SET, (k == Kind.EVENT_WAIT_END) & (r.b == 1) & (r.a > 0),
                              Family.EVENT, window=True),
             _barrier_links(r), _queue_links(r)]
    return np.concatenate(parts)


def _links(r, src, dst, family):
    """Links from the records at ``src`` to the wait-ending records at ``dst`` (row indexes into ``r``)."""
    to_t, from_t = r.t[dst], r.t[src]
    return _make(LINK_DTYPE, len(dst), from_t=from_t, from_pid=r.pid[src], from_tid=r.tid[src],
                 from_kind=r.kind[src], to_t=to_t, to_pid=r.pid[dst], to_tid=r.tid[dst], to_kind=r.kind[dst],
                 uid=r.uid[dst], wait_t0=to_t - r.a[dst], latency=to_t - from_t, family=family)


def _links_to_latest(r, src_sel, dst_sel, family, window):
    """Links to each record of ``dst_sel`` from the latest record of ``src_sel`` on the same object at or
    before it, if another thread's (and, with ``window``, within the wait)."""
    if not src_sel.any() or not dst_sel.any():
        return np.zeros(0, LINK_DTYPE)
    rows = np.flatnonzero(src_sel | dst_sel)
    is_dst = dst_sel[rows]
    # by object, then time; at equal times the source first (a release is recorded before the lock is free)
    rows = rows[_by_group_then(r.obj[rows], len(r.uids), r.t[rows] * 2 + is_dst)]
    is_dst, obj = dst_sel[rows], r.obj[rows]
    last_src = np.maximum.accumulate(np.where(is_dst, -1, np.arange(len(rows))))
    dst = np.flatnonzero(is_dst & (last_src >= 0))
    src = last_src[dst]
    ok = (obj[src] == obj[dst]) & (r.thread[rows[src]] != r.thread[rows[dst]])
    if window:
        ok &= r.t[rows[src]] >= r.t[rows[dst]] - r.a[rows[dst]]
    return _links(r, rows[src[ok]], rows[dst[ok]], family)


def _barrier_links(r):
    arrive = np.flatnonzero(r.kind == Kind.BARRIER_ARRIVE)
    passed = np.flatnonzero(r.kind == Kind.BARRIER_PASS)
    if not len(arrive) or not len(passed):
        return np.zeros(0, LINK_DTYPE)
    # one group per (barrier, generation), for arrivals and passes alike
    both = np.concatenate((arrive, passed))
    keys, group = np.unique(np.stack((r.obj[both], r.b[both])), axis=1, return_inverse=True)
    group = group.ravel().astype(np.int64)
    n = keys.shape[1]
    g_arrive, g_pass = group[:len(arrive)], group[len(arrive):]
    # the last arrival of each group
    order = _by_group_then(g_arrive, n, r.t[arrive])
    ends = np.append(_starts(g_arrive[order])[1:], len(order)) - 1
    last = np.full(n, -1, np.int64)
    last[g_arrive[order][ends]] = arrive[order[ends]]
    src = last[g_pass]
    ok = (src >= 0) & (r.thread[np.maximum(src, 0)] != r.thread[passed])
    return _links(r, src[ok], passed[ok], Family.BARRIER)


def _ranks(group, n_groups, t):
    """Each row's rank in time order among the rows of its group (aligned with the input)."""
    order = _by_group_then(group, n_groups, t)
    starts = _starts(group[order])
    rank = np.empty(len(group), np.int64)
    rank[order] = np.arange(len(group)) - np.repeat(starts, np.diff(np.append(starts, len(group))))
    return rank


def _find(keys, wanted):
    """The index in ``keys`` of each of ``wanted`` (-1: not there)."""
    if not len(keys):
        return np.full(len(wanted), -1, np.int64)
    order = np.argsort(keys, kind="stable")
    pos = np.minimum(np.searchsorted(keys[order], wanted), len(keys) - 1)
    return np.where(keys[order][pos] == wanted, order[pos], -1)


def _queue_links(r):
    gets = np.flatnonzero((r.kind == Kind.QUEUE_GET) & (r.a >= 0))
    sends = np.flatnonzero(r.kind == Kind.QUEUE_SEND)
    puts = np.flatnonzero(r.kind == Kind.QUEUE_PUT)
    if not len(gets) or not len(sends) or not len(puts):
        return np.zeros(0, LINK_DTYPE)
    n_obj = len(r.uids)
    q_get, q_send, q_put = r.obj[gets], r.obj[sends], r.obj[puts]
    _, proc = _dense(np.concatenate((r.pid[sends], r.pid[puts])))
    n_proc = int(proc.max()) + 1
    # the k-th get of a queue took what the k-th write into its pipe carried ...
    blocked = np.flatnonzero(r.a[gets] >= BLOCKED_NS)
    get_key = ((q_get << 32) | _ranks(q_get, n_obj, r.t[gets]))[blocked]
    send = _find((q_send << 32) | _ranks(q_send, n_obj, r.t[sends]), get_key)
    blocked, send = blocked[send >= 0], send[send >= 0]
    # ... and a process's j-th write into a queue carries its j-th put
    by_send = q_send * n_proc + proc[:len(sends)]
    by_put = q_put * n_proc + proc[len(sends):]
    put = _find((by_put << 32) | _ranks(by_put, n_obj * n_proc, r.t[puts]),
                ((by_send << 32) | _ranks(by_send, n_obj * n_proc, r.t[sends]))[send])
    ok = put >= 0
    return _links(r, puts[put[ok]], gets[blocked[ok]], Family.QUEUE)


# -- figures --------------------------------------------------------------------------------------------------
def object_stats(wait_rows, hold_rows, link_rows, t_from=None, t_to=None):
    """Per lock, semaphore, condition, event and barrier (OBJECT_DTYPE), from the tables of ``waits``,
    ``holds`` and ``handoffs``: the most contended first (by total time waited, then contended count).
    With a time range [t_from, t_to) (ns, either open), only the waits that ended in it, the holds released
    in it and the links into waits that ended in it count."""
    def columns(rows, t, *names):
        sel = _in_range(rows[t], t_from, t_to)
        if "family" in rows.dtype.names:
            sel &= np.isin(rows["family"], SYNC_FAMILIES)
        return [rows[name][sel] for name in names]     # only the columns needed, not whole rows

    w_uid, w_family, w_outcome, w_blocked, w_wait = columns(wait_rows, "t", "uid", "family", "outcome",
                                                            "blocked", "wait")
    h_uid, h_t0, h_t1 = columns(hold_rows, "t1", "uid", "t0", "t1")
    l_uid, l_latency = columns(link_rows, "to_t", "uid", "latency")
    uids = np.unique(np.concatenate([u[_starts(u)] for u in (w_uid, h_uid, l_uid) if len(u)] or [w_uid]))
    n = len(uids)
    out = np.zeros(n, OBJECT_DTYPE)
    if not n:
        return out
    out["uid"] = uids
    wi, hi, li = (_lookup_runs(uids, u) for u in (w_uid, h_uid, l_uid))
    out["family"][hi] = Family.LOCK
    out["family"][wi] = w_family
    ok = w_outcome == Outcome.OK
    out["acquired"] = np.bincount(wi[ok], minlength=n)
    out["contended"] = np.bincount(wi[ok & w_blocked], minlength=n)
    out["timeouts"] = np.bincount(wi[~ok], minlength=n)
    out["share"] = np.where(out["acquired"] > 0, out["contended"] / np.maximum(out["acquired"], 1), 0.0)
    for prefix, group, values in (("wait", wi[w_blocked], w_wait[w_blocked]), ("hold", hi, h_t1 - h_t0),
                                  ("handoff", li, l_latency)):
        count, total, pct, top, hist = _per_group(group, values, n)
        out[prefix + "_count"], out[prefix + "_total"], out[prefix + "_max"] = count, total, top
        for p in PERCENTILES:
            out["%s_p%d" % (prefix, p)] = pct[p]
        if prefix != "handoff":
            out[prefix + "_hist"] = hist
    return out[np.lexsort((out["uid"], -out["acquired"], -out["contended"], -out["wait_total"]))]


@dataclass
class SiteStats:
    """One call site of the blocking profile: where the program waited, how often and how long."""
    site: str                   # "path:line in function", as recorded
    path: str
    line: int
    function: str
    waits: int
    total_ns: int
    p50_ns: int
    p95_ns: int
    max_ns: int
    objects: Tuple[int, ...]    # uids of what it waited on, the most waited on first
    pids: Tuple[int, ...]       # the processes that waited there
    ids: Tuple[int, ...]        # the string ids it was recorded under (one per process that interned it)


def parse_site(text):
    """``(path, line, function)`` from ``"path:line in function"`` (a function name holds no space; a path
    may hold colons: Windows drives)."""
    where, _, function = text.rpartition(" in ")
    path, _, line = where.rpartition(":")
    try:
        return path, int(line), function
    except ValueError:
        return text, 0, ""


def blocking_profile(wait_rows, strings, t_from=None, t_to=None):
    """The call sites where the program waited, the most waited-at (total time) first: for each, the waits
    that recorded it (those that blocked while call sites were on) and ended in [t_from, t_to), their count,
    total, p50, p95 and max, and what and who waited there.  ``strings``: string id -> text (the
    registrations' "str" records); a site is its text, so the same line seen by several processes (each
    interns it under an id of its own) is one site."""
    w = wait_rows[(wait_rows["site"] != 0) & _in_range(wait_rows["t"], t_from, t_to)]
    if not len(w):
        return []
    ids, which = np.unique(w["site"], return_inverse=True)
    texts = [strings.get(int(i), "#%x" % int(i)) for i in ids.tolist()]
    distinct = sorted(set(texts))
    of_text = {t: i for i, t in enumerate(distinct)}
    group = np.array([of_text[t] for t in texts], dtype=np.int64)[which]
    n = len(distinct)
    count, total, pct, top, _ = _per_group(group, w["wait"].astype(np.int64), n)
    order = _by_group(group, n)
    bounds = np.concatenate(([0], np.cumsum(count)))
    out = []
    for i, text in enumerate(distinct):
        mine = w[order[bounds[i]:bounds[i + 1]]]
        uids, at = np.unique(mine["uid"], return_inverse=True)
        waited = np.bincount(at, weights=mine["wait"], minlength=len(uids))
        objects = tuple(int(u) for u in uids[np.lexsort((uids, -waited))].tolist())
        path, line, function = parse_site(text)
        out.append(SiteStats(text, path, line, function, int(count[i]), int(total[i]), int(pct[50][i]),
                             int(pct[95][i]), int(top[i]), objects, tuple(np.unique(mine["pid"]).tolist()),
                             tuple(int(sid) for sid, t in zip(ids.tolist(), texts) if t == text)))
    out.sort(key=lambda s: (-s.total_ns, -s.waits, s.site))
    return out


def queue_stats(events, t_from=None, t_to=None):
    """Per queue and pipe end (QUEUE_DTYPE), from the records in [t_from, t_to): puts (QUEUE_PUT) or sends
    (PIPE_SEND), gets (QUEUE_GET) or receives (PIPE_RECV); bytes in (QUEUE_SEND ``a``: what the feeder wrote;
    PIPE_SEND ``a``) and out (QUEUE_GET ``b``, PIPE_RECV ``a``); puts and gets that blocked (from
    BLOCKED_NS; QUEUE_FULL and QUEUE_EMPTY, which gave up, included) and their time; timeouts; the deepest
    recorded depth (QUEUE_PUT ``b``, QUEUE_GET ``c``).  The busiest (most time blocked) first."""
    r = _records(events)
    K = Kind
    is_queue = np.isin(r.kind, (K.QUEUE_PUT, K.QUEUE_GET, K.QUEUE_SEND, K.QUEUE_FULL, K.QUEUE_EMPTY))
    is_pipe = np.isin(r.kind, (K.PIPE_SEND, K.PIPE_RECV))
    sel = (is_queue | is_pipe) & _in_range(r.t, t_from, t_to)
    ev, is_pipe = r.take(sel), is_pipe[sel]
    uids, i = _dense(ev.uid)
    n = len(uids)
    out = np.zeros(n, QUEUE_DTYPE)
    if not n:
        return out
    out["uid"] = uids
    out["family"] = Family.QUEUE
    out["family"][i[is_pipe]] = Family.PIPE
    k, a, b, c = ev.kind, ev.a, ev.b, ev.c

    def total(mask, values=None):
        return np.bincount(i[mask], weights=None if values is None else values[mask], minlength=n)

    put = (k == K.QUEUE_PUT) | (k == K.PIPE_SEND)
    get = (k == K.QUEUE_GET) | (k == K.PIPE_RECV)
    put_wait = np.where(k == K.PIPE_SEND, b, a)
    get_wait = np.where(k == K.PIPE_RECV, b, a)
    put_side = put | (k == K.QUEUE_FULL)
    get_side = get | (k == K.QUEUE_EMPTY)
    out["puts"], out["gets"] = total(put), total(get)
    out["bytes_in"] = total((k == K.QUEUE_SEND) | (k == K.PIPE_SEND), np.maximum(a, 0))
    out["bytes_out"] = total(get, np.maximum(np.where(k == K.QUEUE_GET, b, a), 0))
    put_blocked = put_side & (put_wait >= BLOCKED_NS)
    get_blocked = get_side & (get_wait >= BLOCKED_NS)
    out["put_blocked"], out["put_blocked_ns"] = total(put_blocked), total(put_blocked, put_wait)
    out["get_blocked"], out["get_blocked_ns"] = total(get_blocked), total(get_blocked, get_wait)
    out["timeouts"] = total((k == K.QUEUE_FULL) | (k == K.QUEUE_EMPTY))
    depth = np.where(k == K.QUEUE_PUT, b, np.where(k == K.QUEUE_GET, c, -1))
    out["max_depth"] = -1
    np.maximum.at(out["max_depth"], i, depth)
    busy = out["put_blocked_ns"] + out["get_blocked_ns"]
    return out[np.lexsort((out["uid"], -(out["puts"] + out["gets"]), -busy))]


def queue_depths(events):
    """Each queue's depth over time: ``{uid: (times, depths)}`` in time order, from the depth its puts
    (QUEUE_PUT ``b``) and gets (QUEUE_GET ``c``) recorded after them (-1, unknown, left out)."""
    r = _records(events)
    depth = np.where(r.kind == Kind.QUEUE_PUT, r.b, np.where(r.kind == Kind.QUEUE_GET, r.c, -1))
    sel = depth >= 0
    ev, depth = r.take(sel), depth[sel]
    out: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
    if not len(ev):
        return out
    uids, i = _dense(ev.uid)
    order = _by_group_then(i, len(uids), ev.t)
    i, t, depth = i[order], ev.t[order], depth[order]
    starts = _starts(i)
    for uid, s, e in zip(uids[i[starts]].tolist(), starts.tolist(), np.append(starts[1:], len(i)).tolist()):
        out[uid] = (t[s:e], depth[s:e])
    return out


def semaphore_holders(events, uid, initial=None):
    """How many hold the semaphore (or lock) ``uid`` after each of its acquisitions (ACQ_OK) and releases
    (RELEASE, not a recursive lock's inner one), in time order (a release first at equal times: it is
    recorded before the semaphore is free), and its value then: ``initial`` (its registration's "value")
    minus the holders.  Without ``initial``, the value most of its records saw (``b``) plus the holders then
    stands in for it.  Returns HOLDERS_DTYPE rows."""
    r = _records(events)
    mine = r.take((r.uid == uid) & ((r.kind == _ACQ_OK) | ((r.kind == _RELEASE) & (r.c <= 0))))
    acq = mine.kind == _ACQ_OK
    order = np.lexsort((acq, mine.t))
    t, b, acq = mine.t[order], mine.b[order], acq[order]
    held = np.cumsum(np.where(acq, 1, -1))
    if initial is None:
        seen = b >= 0
        if seen.any():
            values, counts = np.unique(b[seen] + held[seen], return_counts=True)
            initial = int(values[np.argmax(counts)])
        else:
            initial = int(held.max()) if len(held) else 1
    return _make(HOLDERS_DTYPE, len(t), t=t, holders=held, value=initial - held)


# -- a run --------------------------------------------------------------------------------------------------
@dataclass
class ContentionReport:
    """The tables of a run's waits, holds and links, with what names them; answers for any time range."""
    records: Records                        # the records these analytics read (READ_KINDS), as stored
    waits: np.ndarray                       # WAIT_DTYPE
    holds: np.ndarray                       # HOLD_DTYPE
    links: np.ndarray                       # LINK_DTYPE
    strings: Dict[int, str] = field(default_factory=dict)
    objects_registered: Dict[int, dict] = field(default_factory=dict)   # uid -> its registration

    def name(self, uid):
        return (self.objects_registered.get(uid) or {}).get("name") or "#%x" % uid

    def kind(self, uid):
        """What the object is (``Lock``, ``Semaphore``, ``Queue``...), as registered ("" if not)."""
        return (self.objects_registered.get(uid) or {}).get("kind", "")

    def objects(self, t_from=None, t_to=None):
        """``object_stats`` of the run or of a time range."""
        return object_stats(self.waits, self.holds, self.links, t_from, t_to)

    def profile(self, t_from=None, t_to=None):
        """``blocking_profile`` of the run or of a time range."""
        return blocking_profile(self.waits, self.strings, t_from, t_to)

    def queues(self, t_from=None, t_to=None):
        """``queue_stats`` of the run or of a time range."""
        return queue_stats(self.records, t_from, t_to)

    def depths(self):
        return queue_depths(self.records)

    def holders(self, uid):
        """``semaphore_holders`` of ``uid``, from its registered initial value."""
        return semaphore_holders(self.records, uid, (self.objects_registered.get(uid) or {}).get("value"))

    def links_of(self, uid=None, pid=None):
        """The links into waits on ``uid`` and/or of process ``pid`` (from it or to it)."""
        sel = np.ones(len(self.links), dtype=bool)
        if uid is not None:
            sel &= self.links["uid"] == uid
        if pid is not None:
            sel &= (self.links["from_pid"] == pid) | (self.links["to_pid"] == pid)
        return self.links[sel]

    def site_of_waits(self):
        """``{(pid, tid, uid, end time): call site text}`` for every wait with a call site: the key of the
        model's wait span (its ``t1`` is the time of the record that ended the wait), for the exports to
        put the call site into the wait's args."""
        w = self.waits[self.waits["site"] != 0]
        return {(pid, tid, uid, t): self.strings.get(site, "#%x" % site)
                for pid, tid, uid, t, site in zip(w["pid"].tolist(), w["tid"].tolist(), w["uid"].tolist(),
                                                  w["t"].tolist(), w["site"].tolist())}


def analyse(events, registrations=()):
    """The ``ContentionReport`` of ``events`` (EVENT_DTYPE, the records of one thread in recorded order) with
    the registrations that name its objects and strings."""
    return _report([events], registrations)


def analyse_run(run_file):
    """The ``ContentionReport`` of an open ``store.RunFile`` (finished or still written): its chunks are
    read one at a time (``iter_chunks``) and only the records these analytics read are kept, so no model is
    built and the memory is that of the waits, not of the run."""
    return _report(run_file.iter_chunks(), run_file.iter_registrations())


def _report(chunks, registrations):
    r = Records(chunks, read_only=True)
    strings, objects = {}, {}
    for reg in registrations:                   # a damaged one (a key missing) names nothing
        kind = reg.get("t")
        if kind == "str" and isinstance(reg.get("id"), int) and isinstance(reg.get("s"), str):
            strings[reg["id"]] = reg["s"]
        elif kind == "obj" and isinstance(reg.get("uid"), int):
            objects[reg["uid"]] = reg
    return ContentionReport(r, waits(r), holds(r), handoffs(r), strings, objects)


# -- the Perfetto export's blocking profile --------------------------------------------------------------------
def profile_counters(report, top=TOP_SITES):
    """The blocking profile as counters (the Perfetto export's "blocking profile" process, pid PROFILE_PID):
    for each of the ``top`` call sites where the program waited longest, (name, times, waiting): how many
    threads wait there from each instant on (times in ns, one value per instant), named by its rank, site and
    totals.  Arrays, not trace events: a hot run's profile has hundreds of thousands of points."""
    out = []
    for rank, site in enumerate(report.profile()[:top], 1):
        name = "#%d %s: %d waits, %s in all, max %s" % (rank, site.site, site.waits, fmt_ns(site.total_ns),
                                                        fmt_ns(site.max_ns))
        mine = report.waits[np.isin(report.waits["site"], site.ids)]
        times = np.concatenate((mine["t"] - mine["wait"], mine["t"]))
        steps = np.concatenate((np.ones(len(mine), np.int64), -np.ones(len(mine), np.int64)))
        order = np.lexsort((steps, times))          # an end before a start at the same instant
        times, waiting = times[order], np.cumsum(steps[order])
        last = np.append(times[1:] != times[:-1], True)       # one value per instant: the last
        out.append((name, times[last], waiting[last]))
    return out
