"""Object tracks: a track per synchronisation object (and queue) under the process lanes, kept up to date by
the timeline's builder in the reader thread.  No Qt here, nothing drawn here.

A track shows who holds the object (owner slices, coloured per process), the waiters' blocked slices, moments
on it (notifies, sets, clears, a barrier's generations, breaks and aborts) and its counters: how many wait, a
semaphore's value out of its initial value, a barrier's arrivals out of its parties, an event's set/clear
state, a queue's depth.  A semaphore's holders overlap: each hold gets a slot (the first free one, in order of
start), and every slot after the first is a lane of its own under the track, so a Semaphore(N) shows at most
N holder rows while the program keeps to N holders.  Objects served by a manager are tracked by their proxy
(its registration's ``typeid``): the blocking calls through it are its waits, and a managed lock's or
semaphore's holds run from an acquire() call's return to the same thread's next release() call.

``TrackBook`` holds what a snapshot needs: the tracks (``Track``: its lane keys), which span rows got which
slot, the waits and moments per object, and the counters' points, appended as they arrive; ``counters``
gives the series a snapshot draws.  Lane keys are negative numbers (processes are keyed by their pid).
"""
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from core.trace.columns import Columns
from core.trace.events import Kind

#: What gets a track, in the order the tracks are listed (by kind, then by when the object was first seen).
TRACK_KINDS = ("Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier", "Queue",
               "JoinableQueue", "SimpleQueue")
SEMAPHORE_KINDS = ("Semaphore", "BoundedSemaphore")
#: Objects with holders (their tracks show owner slices).
HELD_KINDS = ("Lock", "RLock") + SEMAPHORE_KINDS
QUEUE_KINDS = ("Queue", "JoinableQueue", "SimpleQueue")
#: A semaphore's holders get at most this many rows; holders beyond share the last one.
MAX_SLOTS = 8
#: Proxy methods (a manager-served object's) that wait for another process: their calls are the waits drawn.
WAITING_METHODS = frozenset(("acquire", "wait", "wait_for", "get", "put", "join"))
#: A waiting counter of more waits than this is recomputed only once they grew by GROWTH (a live run of
#: millions of waits must not sort them all at every snapshot); below, at every snapshot that brought some.
RECOMPUTE_ALWAYS = 100_000
GROWTH = 1.25


@dataclass
class Track:
    """One object's track: its lane key and, for a semaphore, the keys of its further holder slots."""
    uid: int
    kind: str                   # Lock, Semaphore, ... (a proxy: its typeid)
    name: str
    key: int
    managed: bool = False       # served by a manager (the proxy is what the records name)
    initial: int = 0            # a semaphore's initial value, a barrier's parties, as registered (0: unknown)
    slot_keys: List[int] = field(default_factory=list)     # slot 1, 2... (slot 0 is ``key``)
    slot_free: List[int] = field(default_factory=list)     # when each slot's last hold ends (ns)
    order: int = 0

    @property
    def label(self):
        what = ("managed " + self.kind) if self.managed else self.kind
        return "%s · %s" % (self.name, what)

    def slot_key(self, slot):
        return self.key if slot == 0 else self.slot_keys[slot - 1]


@dataclass
class Counter:
    """A series drawn on a lane: times (ns) and values, scaled so ``vmax`` fills the lane."""
    name: str
    t: np.ndarray
    v: np.ndarray
    vmax: float
    color: str                  # a theme colour name (``theme``'s attribute)
    unit: str = ""
    step: bool = True           # a step function (the value holds until the next point)


def track_kind(reg):
    """The kind of track an object's registration asks for (None: no track)."""
    if reg is None:
        return None
    kind = reg.get("kind", "")
    if kind == "Proxy":
        kind = reg.get("typeid", "")
    return kind if kind in TRACK_KINDS else None


#: A counter point: its values are counts (holders, waiters, messages, set or not): float32 holds them exactly
#: up to 2**24, in half the room.
POINT_DTYPE = [("t", "<i8"), ("v", "<f4")]


class _Points:
    """Growable (t, v) points of one series, kept in time order."""

    def __init__(self):
        self.cols = Columns(POINT_DTYPE, capacity=64)
        self.sorted = True

    def add(self, t, v):
        if not len(t):
            return
        n = len(self.cols)
        if n and (t[0] < self.cols.view("t")[n - 1] or (len(t) > 1 and (np.diff(t) < 0).any())):
            self.sorted = False
        self.cols.extend(t=t, v=v)

    def arrays(self):
        t, v = self.cols.view("t"), self.cols.view("v")
        if not self.sorted:
            order = np.argsort(t, kind="stable")
            t, v = t[order].copy(), v[order].copy()
            n = len(t)
            self.cols = Columns(POINT_DTYPE, capacity=max(64, n))
            self.cols.extend(t=t, v=v)
            self.sorted = True
            t, v = self.cols.view("t"), self.cols.view("v")
        return t, v


class TrackBook:
    """The tracks of one run, built as its spans, moments and counter points arrive (see the module)."""

    def __init__(self, new_key):
        self.new_key = new_key                      # () -> a fresh lane key
        self.tracks: Dict[int, Track] = {}          # uid -> Track
        self.untracked = set()                      # uids seen that get no track
        self._known_uids = np.zeros(0, np.uint64)   # uids decided (a track's, or none), sorted ...
        self._known_keys = np.zeros(0, np.int64)    # ... and their track keys (0: none)
        self.slot_of = np.zeros(1024, np.int8)      # span row -> its hold's slot
        self.waits: Dict[int, Columns] = {}         # uid -> the (t0, t1) of its finished waits
        self.waiting: Dict[int, tuple] = {}         # uid -> (waits counted, t, v) of its last waiting counter
        self.points: Dict[tuple, _Points] = {}      # ("value" | "depth" | "state", uid) -> points
        self.points_seen = 0
        self.generations: Dict[tuple, np.ndarray] = {}      # (barrier uid, mark) -> generations marked (sorted)
        self.acquired: Dict[tuple, list] = {}       # (uid, pid, tid) -> when its acquire() calls returned

    # -- which objects ---------------------------------------------------------------------------------------
    def track(self, uid, objects):
        """The track of ``uid`` (made on first sight), or None if it gets none."""
        t = self.tracks.get(uid)
        if t is not None or uid in self.untracked:
            return t
        reg = objects.get(uid)
        kind = track_kind(reg)
        if kind is None:
            if reg is not None:             # known and not a track's: it never will be
                self.untracked.add(uid)
            return None
        managed = reg.get("kind") == "Proxy"
        initial = reg.get("parties" if kind == "Barrier" else "value")
        initial = initial if isinstance(initial, int) else 0
        t = self.tracks[uid] = Track(uid, kind, reg.get("name") or "#%x" % uid, self.new_key(), managed, initial,
                                     order=len(self.tracks))
        return t

    def keys_of(self, uids, objects):
        """Each uid's track key (0: none), an array.  Uids decided before (a track's, or known to get none) are
        looked up in a small sorted table; only new ones go through ``track``."""
        out = np.zeros(len(uids), np.int64)
        if not len(uids):
            return out
        uids = np.asarray(uids).astype(np.uint64, copy=False)
        known = self._known_uids
        if len(known):
            pos = np.minimum(np.searchsorted(known, uids), len(known) - 1)
            hit = known[pos] == uids
            out[hit] = self._known_keys[pos[hit]]
            miss = np.flatnonzero(~hit)
        else:
            miss = np.arange(len(uids))
        if not len(miss):
            return out
        u, inv = np.unique(uids[miss], return_inverse=True)
        keys = np.zeros(len(u), np.int64)
        decided = np.zeros(len(u), bool)
        for i, uid in enumerate(u.tolist()):
            t = self.track(uid, objects)
            if t is not None:
                keys[i] = t.key
            decided[i] = t is not None or uid in self.untracked
        out[miss] = keys[inv]
        if decided.any():
            all_uids = np.concatenate((known, u[decided]))
            order = np.argsort(all_uids, kind="stable")
            self._known_uids = all_uids[order]
            self._known_keys = np.concatenate((self._known_keys, keys[decided]))[order]
        return out

    def semaphore_uids(self):
        return np.array(sorted(u for u, t in self.tracks.items() if t.kind in SEMAPHORE_KINDS), np.uint64)

    def ordered(self):
        """The tracks in display order."""
        rank = {k: i for i, k in enumerate(TRACK_KINDS)}
        return sorted(self.tracks.values(), key=lambda t: (rank.get(t.kind, 99), t.order))

    # -- holds ------------------------------------------------------------------------------------------------
    def trim(self):
        """Give back the room kept for waits to come (the run is read whole); snapshots do not hold them."""
        for cols in self.waits.values():
            cols.trim()

    def cover_rows(self, n):
        """Room in ``slot_of`` for span rows up to ``n`` (a snapshot shares its first rows)."""
        if n > len(self.slot_of):
            grown = np.zeros(max(n, 2 * len(self.slot_of)), np.int8)
            grown[:len(self.slot_of)] = self.slot_of
            self.slot_of = grown

    def hold_keys(self, rows, uid, t0, t1, track_keys):
        """The lane key of each hold (span ``rows``, of objects ``uid``): its track's (``track_keys``, from
        ``keys_of``), or its slot's for a semaphore, the first slot free at its start (holds taken in order of
        start)."""
        keys = np.array(track_keys, np.int64)
        if len(rows):
            self.cover_rows(int(rows.max()) + 1)
        sem = self.semaphore_uids()
        if not len(sem) or not len(rows):
            return keys
        is_sem = np.flatnonzero(np.isin(uid, sem))
        is_sem = is_sem[np.argsort(t0[is_sem], kind="stable")]
        is_sem = self._first_slot(is_sem, uid, t0, t1, rows, keys)
        if not len(is_sem):
            return keys
        slots = np.zeros(len(is_sem), np.int64)
        tracks = self.tracks
        u_sem, a_sem, b_sem = uid[is_sem], t0[is_sem], t1[is_sem]
        for u in np.unique(u_sem).tolist():
            mine = np.flatnonzero(u_sem == u)
            a, b = a_sem[mine], b_sem[mine]
            got = self._chain_slots(tracks[u], a, b)
            if got is None:             # more holders than slots: one Python step per hold
                got = [self.place(tracks[u], x, y) for x, y in zip(a.tolist(), b.tolist())]
            slots[mine] = got
        self.slot_of[rows[is_sem]] = slots
        for u in np.unique(uid[is_sem]).tolist():
            mine = uid[is_sem] == u
            table = np.array([tracks[u].slot_key(k) for k in range(len(tracks[u].slot_free))], np.int64)
            keys[is_sem[mine]] = table[slots[mine]]
        return keys

    def _chain_slots(self, tr, a, b):
        """``place`` for a semaphore's holds [a, b] (arrays, in order of start) at once, or None (nothing
        changed) when they need more than MAX_SLOTS slots.  The first free slot at a hold's start is slot 0 if
        it is free: slot 0 takes a chain of holds, each the first to start once the one before ended; slot 1
        the same chain among the others, and so on.  Following a chain is one cheap step per hold."""
        b = np.maximum(b, a)
        slots = np.full(len(a), -1, np.int64)
        ends = []                   # each slot's last end, from this batch (None: none of it)
        rest = np.arange(len(a))
        while len(rest):
            k = len(ends)
            if k == MAX_SLOTS:
                return None
            ra, rb = a[rest], b[rest]
            m = len(ra)
            # after hold i, the chain goes on with the first hold that starts once it ended (and after it)
            after = np.maximum(np.searchsorted(ra, rb, side="left"), np.arange(1, m + 1)).tolist()
            i = int(np.searchsorted(ra, tr.slot_free[k], side="left")) if k < len(tr.slot_free) else 0
            chain = []
            while i < m:
                chain.append(i)
                i = after[i]
            slots[rest[chain]] = k
            ends.append(int(rb[chain[-1]]) if chain else None)
            rest = rest[slots[rest] < 0]
        for k, end in enumerate(ends):
            if k < len(tr.slot_free):
                if end is not None:
                    tr.slot_free[k] = max(tr.slot_free[k], end)
            else:
                tr.slot_free.append(end)
                if k:
                    tr.slot_keys.append(self.new_key())
        return slots

    def place(self, tr, a, b):
        """The slot of a semaphore's hold [a, b]: the first free at its start (a new one, up to MAX_SLOTS)."""
        free = tr.slot_free
        slot = None
        for k in range(len(free)):
            if free[k] <= a:
                slot = k
                break
        if slot is None:
            if len(free) < MAX_SLOTS:
                slot = len(free)
                free.append(b)
                if slot:
                    tr.slot_keys.append(self.new_key())
            else:                   # every slot taken: the one freed first (a list: no numpy for a few items)
                slot = min(range(len(free)), key=free.__getitem__)
        free[slot] = max(free[slot], b)
        return slot

    # -- a manager's objects ----------------------------------------------------------------------------------
    def managed_holds(self, uid, pid, tid, t0, t1, method, strings):
        """Holds of managed locks and semaphores, from the calls through their proxies: an acquire() that
        returned holds until the same thread's next release() begins.  Returns (key, t0, t1, uid, pid, tid)
        lists of the holds these calls ended (in order of their calls)."""
        out: List[tuple] = []
        order = np.argsort(t0, kind="stable")
        for i in order.tolist():
            tr = self.tracks.get(int(uid[i]))
            if tr is None or not tr.managed or tr.kind not in HELD_KINDS:
                continue
            name = strings.get(int(method[i]), "")
            key = (tr.uid, int(pid[i]), int(tid[i]))
            if name == "acquire":
                self.acquired.setdefault(key, []).append(int(t1[i]))
            elif name == "release" and self.acquired.get(key):
                a = self.acquired[key].pop()
                b = max(int(t0[i]), a)
                slot = self.place(tr, a, b) if tr.kind in SEMAPHORE_KINDS else 0
                out.append((tr.slot_key(slot), a, b, tr.uid, key[1], key[2]))
        return out

    def open_managed_holds(self):
        """(track key, start, uid, pid, tid) of the managed holds not released yet."""
        return [(self.tracks[u].key, a, u, p, t) for (u, p, t), starts in self.acquired.items() for a in starts]

    def _first_slot(self, at, uid, t0, t1, rows, keys):
        """Place the holds ``at`` (in order of start) of semaphores whose holds here follow one another without
        overlapping, after every hold placed before, in their first slot at once (a semaphore used as a lock,
        or a quiet stretch: the usual case, and millions of holds must not take a Python step each).  Returns
        the rest, to place one by one."""
        if not len(at):
            return at
        rest = []
        u_at = uid[at]
        for u in np.unique(u_at).tolist():
            mine = at[u_at == u]
            tr = self.tracks[u]
            a, b = t0[mine], t1[mine]
            busy_until = max(tr.slot_free) if tr.slot_free else np.iinfo(np.int64).min
            ends = np.maximum.accumulate(b)
            if a[0] >= busy_until and (a[1:] >= ends[:-1]).all():
                if not tr.slot_free:
                    tr.slot_free.append(int(ends[-1]))
                tr.slot_free[0] = max(tr.slot_free[0], int(ends[-1]))
                self.slot_of[rows[mine]] = 0
                keys[mine] = tr.key
            else:
                rest.append(mine)
        if not rest:
            return np.zeros(0, np.int64)
        rest = np.concatenate(rest)
        return rest[np.argsort(t0[rest], kind="stable")]

    # -- waits and counters -----------------------------------------------------------------------------------
    def add_waits(self, uid, t0, t1):
        """Finished waits on tracked objects (for their waiting counters)."""
        if not len(uid):
            return
        order = np.argsort(uid, kind="stable")
        uid, t0, t1 = uid[order], t0[order], t1[order]
        starts = np.flatnonzero(np.concatenate(([True], uid[1:] != uid[:-1])))
        for s, e in zip(starts.tolist(), np.append(starts[1:], len(uid)).tolist()):
            cols = self.waits.get(int(uid[s]))
            if cols is None:
                cols = self.waits[int(uid[s])] = Columns([("t0", "<i8"), ("t1", "<i8")], capacity=64)
            cols.extend(t0=t0[s:e], t1=t1[s:e])

    def waiting_counter(self, uid, open_t0=()):
        """(t, v): how many wait on ``uid`` after each wait begins or ends (open waits: ``open_t0``).  The
        finished waits' counter is kept (recomputed as RECOMPUTE_ALWAYS and GROWTH say); the open waits, a
        few and recent, are added to its tail at each call."""
        cols = self.waits.get(uid)
        n = len(cols) if cols is not None else 0
        cached = self.waiting.get(uid)
        if cached is None or not (cached[0] == n or (n > RECOMPUTE_ALWAYS and n < cached[0] * GROWTH)):
            t0 = cols.view("t0") if n else np.zeros(0, np.int64)
            t1 = cols.view("t1") if n else np.zeros(0, np.int64)
            times = np.concatenate((t0, t1))
            steps = np.concatenate((np.ones(len(t0), np.int64), -np.ones(len(t1), np.int64)))
            order = np.lexsort((steps, times))          # an end before a start at the same instant
            cached = self.waiting[uid] = (n, times[order], np.cumsum(steps[order]).astype(np.float32))
        _, t, v = cached
        if not len(open_t0):
            return t, v
        o = np.sort(np.asarray(open_t0, np.int64))
        i = int(np.searchsorted(t, o[0], side="left"))
        before = np.searchsorted(t, o, side="right") - 1            # the finished waits' count at each start
        finished = v[np.maximum(before, 0)] if len(v) else np.zeros(len(o))
        at_o = np.where(before >= 0, finished, 0.0) + np.arange(1, len(o) + 1)
        tail_t = np.concatenate((t[i:], o))
        tail_v = np.concatenate((v[i:] + np.searchsorted(o, t[i:], side="right"), at_o))
        order = np.argsort(tail_t, kind="stable")
        return np.concatenate((t[:i], tail_t[order])), np.concatenate((v[:i], tail_v[order]))

    def add_points(self, what, uid, t, v):
        """Counter points of tracked objects: ("value" | "depth" | "state", uid) series."""
        if not len(t):
            return
        order = np.argsort(uid, kind="stable")
        uid, t, v = uid[order], t[order], v[order]
        starts = np.flatnonzero(np.concatenate(([True], uid[1:] != uid[:-1])))
        for s, e in zip(starts.tolist(), np.append(starts[1:], len(uid)).tolist()):
            key = (what, int(uid[s]))
            p = self.points.get(key)
            if p is None:
                p = self.points[key] = _Points()
            p.add(t[s:e], v[s:e].astype(np.float32))

    def series(self, what, uid):
        p = self.points.get((what, uid))
        return p.arrays() if p is not None else None

    def counters(self, t_end, open_waits, barrier_series):
        """{track key: [Counter]} of every track now; ``open_waits``: uid -> start times of its waits still
        open; ``barrier_series``: uid -> (t, waiting) (the model's)."""
        out = {}
        for tr in self.tracks.values():
            mine: List[Counter] = []
            if tr.kind in SEMAPHORE_KINDS:
                s = self.series("value", tr.uid)
                if s is not None and len(s[0]):
                    top = float(max(tr.initial, s[1].max(), 1))
                    mine.append(Counter("value (of %d)" % tr.initial if tr.initial else "value", s[0], s[1], top,
                                        "SEM_VALUE"))
            if tr.kind == "Barrier":
                s = barrier_series.get(tr.uid)
                if s is not None and len(s[0]):
                    most = int(max(s[1].max(), 1))
                    name = ("arrived (of %d)" % tr.initial if tr.initial    # parties not registered: older runs
                            else "arrived (at most %d at once)" % most)
                    mine.append(Counter(name, s[0], s[1], float(max(tr.initial, most)), "BARRIER_COUNT"))
            if tr.kind == "Event":
                s = self.series("state", tr.uid)
                if s is not None and len(s[0]):
                    mine.append(Counter("set", s[0], s[1], 1.0, "EVENT_STATE"))
            if tr.kind in QUEUE_KINDS:
                s = self.series("depth", tr.uid)
                if s is not None and len(s[0]):
                    mine.append(Counter("depth", s[0], s[1], float(max(s[1].max(), 1)), "QUEUE_DEPTH"))
            if tr.kind != "Barrier" and (tr.uid in self.waits or tr.uid in open_waits):
                t, v = self.waiting_counter(tr.uid, open_waits.get(tr.uid, ()))
                if len(t):
                    mine.append(Counter("waiting", t, v, float(max(v.max(), 1)), "WAITING_COUNT"))
            if mine:
                out[tr.key] = mine
        return out


def event_state_points(kind, uid):
    """(uids, values) of EVENT_SET (1) and EVENT_CLEAR (0) moments among ``kind``/``uid`` arrays."""
    sel = (kind == int(Kind.EVENT_SET)) | (kind == int(Kind.EVENT_CLEAR))
    return sel, np.where(kind[sel] == int(Kind.EVENT_SET), 1.0, 0.0)


def lookup(keys_sorted, values, wanted, default):
    """``values`` at the positions of ``wanted`` in ``keys_sorted`` (``default`` where absent)."""
    if not len(keys_sorted) or not len(wanted):
        return np.full(len(wanted), default, np.int64)
    pos = np.clip(np.searchsorted(keys_sorted, wanted), 0, len(keys_sorted) - 1)
    return np.where(keys_sorted[pos] == wanted, values[pos], default)


__all__ = ["Track", "TrackBook", "Counter", "TRACK_KINDS", "SEMAPHORE_KINDS", "MAX_SLOTS", "track_kind",
           "lookup", "event_state_points"]
