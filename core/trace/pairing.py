"""Pairing the records that open and close a span, a chunk of events at a time, with numpy.

A span (a lock held, a wait) is opened by one record and closed by a later one of the same thread on the
same object: the key is (object uid, pid, tid).  A chunk's records are paired among themselves with sorts
and cumulative sums; what is still open at the chunk's end is carried to the next (``LockState``,
``OpenWaits``), so a run read a chunk at a time pairs exactly as one read whole.

* Lock holds (``pair_holds``): each thread's acquisitions and releases nest (LIFO, an RLock re-entered has
  depth > 1 and is not a new hold).  A thread's depth walk (+1 per acquisition, -1 per release, never
  below zero) is a cumulative sum; the acquisition that raised the depth to a level is released by the next
  release from that level, so sorting by (thread, level, order) puts each acquisition right before its
  release.  A release that finds its thread holding nothing (a semaphore released by another process than
  the one that acquired it, common: a producer signals, a consumer waits) closes the object's *oldest* open
  acquisition, whoever holds it: version one's model left those holds open forever.  Such objects are paired
  first-in first-out with numpy when the threads that release never acquire (the usual producer and consumer
  pair), else one record at a time (``_replay``).
* Waits (``pair_waits``): an opening record (a condition's wait(), an event's wait(), a barrier's arrival,
  a queue's join()) and the closing one; a second opening before a close replaces the first, and a close
  without an opening starts where its own record says (its wait field).

Everything here works on plain arrays and dicts: no events, no Qt.
"""
from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from .columns import group_starts, segment_ids, segmented_running_min, thread_order

Key = Tuple[int, int, int]          # (uid, pid, tid)

#: Operations of the lock family, in ``pair_holds``' ``op`` array.
ACQUIRE = 0           # ACQ_OK
RELEASE = 1           # RELEASE with depth <= 0 (a recursive lock still held at depth > 0 is no release)


class LockState:
    """What a lock's records left open at the end of a chunk: per thread, the acquisitions it still holds,
    oldest first, as (time, order of the record) pairs (``holds``).  The oldest open acquisition of an object
    is the one with the earliest time, and of equal times the one read first."""

    def __init__(self):
        self.holds: Dict[Key, List[Tuple[int, int]]] = {}
        #: The end of the latest stretch of records a live reader skipped (ns), if one did: see ``skipped``.
        self.gap_end: Optional[int] = None
        #: The threads (keys) that acquired their object since the latest skipped stretch, and ever.
        self.fresh: Set[Key] = set()
        self.acquirers: Set[Key] = set()

    def skipped(self, t1):
        """A reader skipped the records up to ``t1`` (ns): what was open before them may have been closed
        among them, so it is forgotten.  A release that finds its thread holding nothing, of a hold acquired in
        the gap (its own measure of the hold says so, or its thread acquires the object but did not since the
        gap), closes that hold by its own measure (or, without one, nothing), not the object's oldest open
        acquisition (another thread's: a hold that never was, and every such object paired record by record).
        A thread that never acquires the object (a producer signalling a semaphore) still closes the oldest."""
        self.holds.clear()
        self.fresh.clear()
        self.gap_end = int(t1) if self.gap_end is None else max(self.gap_end, int(t1))

    def open_holds(self):
        """(key, level, t acquired) of every acquisition still held."""
        for key, stack in self.holds.items():
            for level, (t, _) in enumerate(stack, 1):
                yield key, level, t


class HoldSpans:
    """The holds a chunk closed: columns of equal length."""

    __slots__ = ("uid", "pid", "tid", "t0", "t1", "seq")

    def __init__(self, uid, pid, tid, t0, t1, seq):
        self.uid, self.pid, self.tid, self.t0, self.t1, self.seq = uid, pid, tid, t0, t1, seq

    @classmethod
    def concat(cls, parts):
        parts = [p for p in parts if p is not None and len(p.t0)]
        if not parts:
            return cls(*(np.zeros(0, dt) for dt in (np.uint64, np.int32, np.int32, np.int64, np.int64, np.int64)))
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__slots__))


def pair_holds(state, seq, t, uid, pid, tid, op, depth, hold):
    """The holds closed by a chunk's acquisitions and releases (arrays in the chunk's order; ``op`` ACQUIRE or
    RELEASE; ``depth`` the acquisition's recursion depth; ``hold`` the release's own measure of the hold, -1
    if unknown), updating ``state``.  Returns a ``HoldSpans``."""
    n = len(seq)
    if not n:
        return HoldSpans.concat([])
    order = thread_order(seq, uid, pid, tid)
    seq, t, uid, pid, tid, op, depth, hold = (a[order] for a in (seq, t, uid, pid, tid, op, depth, hold))
    starts = group_starts(uid, pid, tid)
    seg = segment_ids(n, starts)
    keys = list(zip(uid[starts].tolist(), pid[starts].tolist(), tid[starts].tolist()))
    held_before = np.array([len(state.holds.get(k, ())) for k in keys], np.int64)
    acquire = op == ACQUIRE
    recursive = acquire & (depth > 1)       # a re-entry: a new hold only if nothing is held (its start unseen)
    step = np.where(acquire & ~recursive, 1, np.where(op == RELEASE, -1, 0)).astype(np.int64)
    walk = held_before[seg] + _segmented_cumsum(step, starts, seg)
    floor = np.minimum(segmented_running_min(walk, seg), 0)
    after = walk - floor                                  # the depth after each record, never below zero
    before = np.empty(n, np.int64)
    before[1:] = after[:-1]
    before[starts] = held_before
    orphan = (op == RELEASE) & (before == 0)
    parts = []
    lost = None
    took = acquire.astype(np.int64)
    took_here = np.add.reduceat(took, starts).tolist()
    if state.gap_end is not None:
        # releases of holds acquired in a skipped stretch (see LockState.skipped)
        took_before = _segmented_cumsum(took, starts, seg) - took
        acquirer = np.array([k in state.acquirers or n > 0 for k, n in zip(keys, took_here)], bool)
        fresh = np.array([k in state.fresh for k in keys], bool)
        lost = orphan & (((hold > 0) & (t - hold <= state.gap_end))
                         | (acquirer & ~fresh)[seg] & (took_before == 0))
        if lost.any():
            i = np.flatnonzero(lost & (hold > 0))
            parts.append(HoldSpans(uid[i], pid[i], tid[i], t[i] - hold[i], t[i], seq[i]))
            orphan &= ~lost
        state.fresh.update(k for k, n in zip(keys, took_here) if n)
    state.acquirers.update(k for k, n in zip(keys, took_here) if n)
    irregular = recursive & (before == 0)
    special = np.unique(uid[orphan | irregular])
    if len(special):
        is_special = np.isin(uid, special)
        for u in special.tolist():
            mine = np.flatnonzero((uid == np.uint64(u)) if lost is None else (uid == np.uint64(u)) & ~lost)
            mine = mine[np.argsort(seq[mine], kind="stable")]
            cols = tuple(a[mine] for a in (seq, t, uid, pid, tid, op, depth, hold))
            part = _fifo(state, *cols)
            parts.append(part if part is not None else _replay(state, *cols))
        keep = ~is_special
        if not keep.any():
            return HoldSpans.concat(parts)
        kept_groups = np.unique(seg[keep])
        keys = [keys[g] for g in kept_groups.tolist()]
        seq, t, uid, pid, tid, op, after, before = (a[keep] for a in (seq, t, uid, pid, tid, op, after, before))
        n = len(seq)
        starts = group_starts(uid, pid, tid)
        seg = segment_ids(n, starts)
    if (not len(after) or after.max() <= 1) and all(len(state.holds.get(k, ())) <= 1 for k in keys):
        parts.append(_pair_flat(state, keys, starts, seg, seq, t, uid, pid, tid, op, after, before))
    else:
        parts.append(_pair_lifo(state, keys, starts, seg, seq, t, uid, pid, tid, op, after, before))
    return HoldSpans.concat(parts)


def _segmented_cumsum(step, starts, seg):
    total = np.cumsum(step)
    base = np.concatenate(([0], total[starts[1:] - 1])) if len(starts) > 1 else np.zeros(1, np.int64)
    return total - base[seg]


def _pair_flat(state, keys, starts, seg, seq, t, uid, pid, tid, op, after, before):
    """``_pair_lifo`` when no thread holds an object twice (the usual case): each release closes its
    thread's latest acquisition, without a second sort."""
    n = len(seq)
    push = (op == ACQUIRE) & (after > before)
    pop = np.flatnonzero((op == RELEASE) & (before > 0))
    last_push = np.maximum.accumulate(np.where(push, np.arange(n), -1)) if n else np.zeros(0, np.int64)
    carried = [(state.holds.get(k) or [(NO_HOLD, NO_HOLD)])[0] for k in keys]
    carried_t = np.array([c[0] for c in carried], np.int64)
    src = last_push[pop]
    from_chunk = src >= starts[seg[pop]]
    t0 = np.where(from_chunk, t[np.maximum(src, 0)], carried_t[seg[pop]])
    spans = HoldSpans(uid[pop], pid[pop], tid[pop], t0, t[pop], seq[pop])
    # what stays open: a thread whose depth ends at 1 holds its last acquisition (or the carried one)
    ends = np.append(starts[1:], n) - 1
    for g, key in enumerate(keys):
        e = int(ends[g])
        if after[e] > 0:
            lp = int(last_push[e])
            state.holds[key] = [(int(t[lp]), int(seq[lp])) if lp >= starts[g] else carried[g]]
        else:
            state.holds.pop(key, None)
    return spans


#: A carried hold's time when there is none (never read: a release at depth 0 is not paired here).
NO_HOLD = -1


def _pair_lifo(state, keys, starts, seg, seq, t, uid, pid, tid, op, after, before):
    """Pair acquisitions with releases thread by thread (no release of these threads found nothing held)."""
    acquire = np.flatnonzero((op == ACQUIRE) & (after > before))
    release = np.flatnonzero((op == RELEASE) & (before > 0))
    # carried acquisitions of these threads come first, at their levels
    c_seg: List[int] = []
    c_level: List[int] = []
    c_t: List[int] = []
    c_seq: List[int] = []
    for g, key in enumerate(keys):
        stack = state.holds.get(key)
        if stack:
            c_seg.extend([g] * len(stack))
            c_level.extend(range(1, len(stack) + 1))
            c_t.extend(x[0] for x in stack)
            c_seq.extend(x[1] for x in stack)
    n_c = len(c_seg)
    item_seg = np.concatenate((np.array(c_seg, np.int64), seg[acquire], seg[release]))
    item_level = np.concatenate((np.array(c_level, np.int64), after[acquire], before[release]))
    # carried ones sort first in their level: their order is earlier than any record of this chunk
    item_seq = np.concatenate((np.array(c_seq, np.int64), seq[acquire], seq[release]))
    item_t = np.concatenate((np.array(c_t, np.int64), t[acquire], t[release]))
    item_pop = np.concatenate((np.zeros(n_c + len(acquire), bool), np.ones(len(release), bool)))
    order = np.lexsort((item_seq, item_level, item_seg))
    item_seg, item_level, item_seq, item_t, item_pop = (a[order] for a in (item_seg, item_level, item_seq, item_t,
                                                                             item_pop))
    # within one thread and level, pushes and pops alternate: a push followed by a pop is a hold
    popped_next = np.zeros(len(order), bool)
    if len(order) > 1:
        popped_next[:-1] = (item_seg[1:] == item_seg[:-1]) & (item_level[1:] == item_level[:-1]) & item_pop[1:]
    pushes = np.flatnonzero(~item_pop & popped_next)
    pops = pushes + 1
    first_row = starts[item_seg[pushes]]
    spans = HoldSpans(uid[first_row], pid[first_row], tid[first_row], item_t[pushes], item_t[pops], item_seq[pops])
    # what stays open: the pushes with no pop after them, per thread by level
    closed = np.zeros(len(order), bool)
    closed[pushes] = True
    still = np.flatnonzero(~item_pop & ~closed)
    for key in keys:
        state.holds.pop(key, None)
    for g_i, t_i, s_i in zip(item_seg[still].tolist(), item_t[still].tolist(), item_seq[still].tolist()):
        state.holds.setdefault(keys[g_i], []).append((t_i, s_i))
    return spans


def _fifo(state, seq, t, uid, pid, tid, op, depth, hold):
    """One object's records when the threads that release it never acquire it (nor hold it from before),
    and those that acquire never release: each release closes the oldest acquisition still open, so the
    k-th release that finds one closes the k-th acquisition.  None if the records are not of that shape."""
    u = int(uid[0])
    if ((op == ACQUIRE) & (depth > 1)).any():
        return None               # a re-entry is a new hold only if its thread holds nothing: that needs order
    acq = op == ACQUIRE
    rel = op == RELEASE
    took = op == ACQUIRE
    acquirers = set(zip(pid[took].tolist(), tid[took].tolist()))
    releasers = set(zip(pid[rel].tolist(), tid[rel].tolist()))
    carried = [(k, s) for k, s in state.holds.items() if k[0] == u and s]
    if acquirers & releasers or releasers & {(k[1], k[2]) for k, _ in carried}:
        return None
    # the open acquisitions, oldest first: carried ones, then this chunk's in order
    c_t = sorted((x, k) for k, s in carried for x in s)
    if c_t and acq.any() and c_t[-1][0][0] > int(t[acq].min()):
        return None                                        # records older than what was carried: replay
    q_t = np.concatenate((np.array([x[0][0] for x in c_t], np.int64), t[acq]))
    q_seq = np.concatenate((np.array([x[0][1] for x in c_t], np.int64), seq[acq]))
    q_pid = np.concatenate((np.array([x[1][1] for x in c_t], np.int32), pid[acq]))
    q_tid = np.concatenate((np.array([x[1][2] for x in c_t], np.int32), tid[acq]))
    # queue length walk: +1 per acquisition, -1 per release that finds one
    step = np.where(acq, 1, np.where(rel, -1, 0)).astype(np.int64)
    walk = len(c_t) + np.cumsum(step)
    after = walk - np.minimum(np.minimum.accumulate(walk), 0)
    before = np.concatenate(([len(c_t)], after[:-1]))
    matched = np.flatnonzero(rel & (before > 0))
    k = np.arange(len(matched))
    spans = [HoldSpans(np.full(len(matched), u, np.uint64), q_pid[k], q_tid[k], q_t[k], t[matched], seq[matched])]
    lone = np.flatnonzero(rel & (before == 0) & (hold > 0))
    spans.append(HoldSpans(uid[lone], pid[lone], tid[lone], t[lone] - hold[lone], t[lone], seq[lone]))
    for key, _ in carried:
        state.holds.pop(key, None)
    rest = range(len(matched), len(q_t))
    for i in rest:
        state.holds.setdefault((u, int(q_pid[i]), int(q_tid[i])), []).append((int(q_t[i]), int(q_seq[i])))
    return HoldSpans.concat(spans)


def _replay(state, seq, t, uid, pid, tid, op, depth, hold):
    """One object's records, one at a time (see the module's docstring for the rules)."""
    u = int(uid[0])
    stacks = {k: s for k, s in state.holds.items() if k[0] == u}
    out = []
    for s, tt, p, th, o, d, h in zip(seq.tolist(), t.tolist(), pid.tolist(), tid.tolist(), op.tolist(),
                                     depth.tolist(), hold.tolist()):
        key = (u, p, th)
        stack = stacks.get(key)
        if o == ACQUIRE:
            if not stack:
                stacks[key] = [(tt, s)]
            elif d <= 1:
                stack.append((tt, s))
            continue
        if stack:
            out.append((p, th, stack.pop()[0], tt, s))
            continue
        oldest = min(((st[0], k) for k, st in stacks.items() if st), default=None)
        if oldest is not None:
            (t_acq, _), owner = oldest
            stacks[owner].pop(0)
            out.append((owner[1], owner[2], t_acq, tt, s))
        elif h > 0:
            out.append((p, th, tt - h, tt, s))
    for k in [k for k in state.holds if k[0] == u]:
        del state.holds[k]
    for k, st in stacks.items():
        if st:
            state.holds[k] = st
    if not out:
        return None
    cols = list(zip(*out))
    return HoldSpans(np.full(len(out), u, np.uint64), np.array(cols[0], np.int32), np.array(cols[1], np.int32),
                     np.array(cols[2], np.int64), np.array(cols[3], np.int64), np.array(cols[4], np.int64))


class OpenWaits:
    """Waits opened and not yet closed, per (uid, pid, tid): (t opened, value)."""

    def __init__(self):
        self.open: Dict[Key, Tuple[int, int]] = {}

    def skipped(self):
        """A reader skipped records: the waits open before them may have closed among them (a close after
        the gap then starts where its own record says)."""
        self.open.clear()


def pair_waits(state, seq, t, uid, pid, tid, opens, value, waited):
    """Closes of a chunk's waits (arrays in the chunk's order; ``opens`` True for an opening record;
    ``waited`` the closing record's own measure of the wait), updating ``state``.

    Returns (index of each closing record, in the given arrays; the start of its span): a close pairs with the
    latest opening of its key since the previous close (or one carried from an earlier chunk), else starts
    ``waited`` before it."""
    n = len(seq)
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = thread_order(seq, uid, pid, tid)
    starts = group_starts(uid[order], pid[order], tid[order])
    seg = segment_ids(n, starts)
    o_open = opens[order]
    pos = np.arange(n)
    last_open = np.maximum.accumulate(np.where(o_open, pos, -1))
    last_close = np.maximum.accumulate(np.where(~o_open, pos, -1))
    prev_close = np.concatenate(([-1], last_close[:-1]))
    first = starts[seg]
    closes = np.flatnonzero(~o_open)
    lo = last_open[closes]
    has_open = (lo >= first[closes]) & (lo > prev_close[closes])
    t_sorted = t[order]
    t0 = np.where(has_open, t_sorted[np.maximum(lo, 0)], t_sorted[closes] - waited[order][closes])
    # a close that is its key's first record in this chunk pairs with an opening carried from before
    keys = list(zip(uid[order][starts].tolist(), pid[order][starts].tolist(), tid[order][starts].tolist()))
    carried_first = closes[(~has_open) & (prev_close[closes] < first[closes])]
    for i in carried_first.tolist():
        opened = state.open.get(keys[seg[i]])
        if opened is not None:
            t0[np.searchsorted(closes, i)] = opened[0]
    # what stays open: a key whose last record opens
    ends = np.append(starts[1:], n) - 1
    v_sorted = value[order]
    for g, e in enumerate(ends.tolist()):
        if o_open[e]:
            state.open[keys[g]] = (int(t_sorted[e]), int(v_sorted[e]))
        else:
            state.open.pop(keys[g], None)
    return order[closes], t0
