"""Growable columnar tables for the run model: one numpy array per column, appended to in blocks.

A ``Columns`` table holds its rows as one array per field (not an array of records), so a view that needs two
columns of ten million rows reads two arrays and nothing else, and appending a block is one slice assignment
per column.  Rows once written are never moved or changed (``Columns``) or only by their owner under its
lock (the task table): ``view(name)`` hands out the first ``len()`` rows of a column without copying, and a
reader may keep it across later appends (growing allocates new arrays; the old ones stay as they were).

``BlockIndex`` answers "which rows overlap [t0, t1]" for a table appended in blocks that are each about one
stretch of time (a chunk of events): it keeps each block's row range and its smallest start and largest end,
so a query filters the rows of the few blocks that overlap instead of all of them.

No Qt here, and nothing about events: the model (``model``) decides what the columns mean.
"""
from typing import Dict, Tuple

import numpy as np

#: Rows a new table has room for before it first grows (it grows by doubling).
INITIAL_CAPACITY = 256


class Columns:
    """An append-only table of named columns (a numpy dtype gives their names and types)."""

    def __init__(self, dtype, capacity: int = INITIAL_CAPACITY):
        self.dtype = np.dtype(dtype)
        self.names: Tuple[str, ...] = tuple(self.dtype.names or ())
        self._cols: Dict[str, np.ndarray] = {name: np.zeros(capacity, self.dtype[name]) for name in self.names}
        self.n = 0
        #: Bumped by every change: a reader that kept a view knows whether it is still the whole table.
        self.version = 0

    def __len__(self):
        return self.n

    def _reserve(self, need):
        cap = len(self._cols[self.names[0]]) if self.names else 0
        if need <= cap:
            return
        cap = max(need, 2 * cap, INITIAL_CAPACITY)
        for name, col in self._cols.items():
            grown = np.zeros(cap, col.dtype)
            grown[:self.n] = col[:self.n]
            self._cols[name] = grown

    def extend(self, **cols):
        """Append rows given as one array (or scalar) per column; columns not given are zero.  Returns the
        index of the first new row."""
        n = max((len(v) for v in cols.values() if np.ndim(v)), default=0)
        first = self.n
        if not n:
            return first
        self._reserve(first + n)
        for name, value in cols.items():
            self._cols[name][first:first + n] = value
        self.n = first + n
        self.version += 1
        return first

    def extend_records(self, records):
        """Append rows from a structured array with (at least) this table's fields."""
        if not len(records):
            return self.n
        return self.extend(**{name: records[name] for name in self.names})

    def trim(self):
        """Give back the room kept for rows to come (a table that is complete: a saved run read whole)."""
        if self.names and len(self._cols[self.names[0]]) > self.n:
            for name, col in self._cols.items():
                self._cols[name] = col[:self.n].copy()

    def view(self, name) -> np.ndarray:
        """The column's rows so far, without a copy (see the module's docstring)."""
        return self._cols[name][:self.n]

    def column(self, name) -> np.ndarray:
        """The column's whole buffer, for its owner's in-place updates of rows below ``len()``."""
        return self._cols[name]

    def views(self) -> Dict[str, np.ndarray]:
        return {name: self.view(name) for name in self.names}

    def records(self, rows=None) -> np.ndarray:
        """The rows (all, or those given) as a structured array of this table's dtype: a copy."""
        idx = slice(None) if rows is None else rows
        out = np.zeros(self.n if rows is None else len(rows), self.dtype)
        for name in self.names:
            out[name] = self.view(name)[idx]
        return out

    def nbytes(self):
        return sum(col.nbytes for col in self._cols.values())


class BlockIndex:
    """Row ranges of an append-only table, one per appended block, with each block's time extent."""

    def __init__(self):
        self._table = Columns([("first", "<i8"), ("end", "<i8"), ("lo", "<i8"), ("hi", "<i8")], capacity=16)

    def add(self, first, end, t0, t1):
        """Rows [first, end) were appended; their intervals lie within [min t0, max t1]."""
        if end <= first:
            return
        self._table.extend(first=np.array([first]), end=np.array([end]), lo=np.array([np.min(t0)]),
                           hi=np.array([np.max(t1)]))

    def add_many(self, first, end, lo, hi):
        """Blocks at once (arrays): rows [first[i], end[i]) lie within [lo[i], hi[i]]."""
        self._table.extend(first=first, end=end, lo=lo, hi=hi)

    def __len__(self):
        return len(self._table)

    def arrays(self):
        t = self._table
        return t.view("first"), t.view("end"), t.view("lo"), t.view("hi")

    def frozen(self, n_rows=None):
        """The index as it is (views: blocks are never changed once added) covering the first ``n_rows``
        rows, for a reader in another thread."""
        first, end, lo, hi = self.arrays()
        if n_rows is not None and len(end) and end[-1] > n_rows:
            keep = first < n_rows
            first, end, lo, hi = first[keep], np.minimum(end[keep], n_rows), lo[keep], hi[keep]
        return FrozenBlocks(first, end, lo, hi)


class FrozenBlocks:
    """A ``BlockIndex`` as it was: safe to query from any thread."""

    __slots__ = ("first", "end", "lo", "hi")

    def __init__(self, first, end, lo, hi):
        self.first, self.end, self.lo, self.hi = first, end, lo, hi

    def candidate_rows(self, t0, t1):
        """Rows of the blocks whose extent overlaps [t0, t1], in table order."""
        hit = np.flatnonzero((self.lo <= t1) & (self.hi >= t0))
        if not len(hit):
            return np.zeros(0, np.int64)
        return ranges(self.first[hit], self.end[hit])

    def count_between(self, t0, t1):
        """An upper bound of the rows overlapping [t0, t1] (the rows of the blocks that overlap it)."""
        hit = (self.lo <= t1) & (self.hi >= t0)
        return int((self.end[hit] - self.first[hit]).sum())

    def estimate_between(self, t0, t1):
        """About how many rows overlap [t0, t1]: each block's rows in the share of its extent the range
        covers (rows spread evenly over their block's time)."""
        hit = np.flatnonzero((self.lo <= t1) & (self.hi >= t0))
        if not len(hit):
            return 0.0
        lo, hi = self.lo[hit], self.hi[hit]
        share = (np.minimum(hi, t1) - np.maximum(lo, t0) + 1) / (hi - lo + 1)
        return float(((self.end[hit] - self.first[hit]) * share).sum())


def full(value, n):
    """``value`` as an array of ``n`` items: itself if it is one (the usual case: no numpy call), else a
    read-only broadcast of the scalar."""
    if type(value) is np.ndarray and value.shape == (n,):
        return value
    return np.broadcast_to(value, (n,))


def key_hash(uid, pid, tid):
    """A 64-bit mix of (uid, pid, tid) for a quick membership test or grouping (equal keys, equal hashes)."""
    h = uid.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    h ^= pid.astype(np.int64).astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= tid.astype(np.int64).astype(np.uint64) * np.uint64(0x165667B19E3779F9)
    return h


#: Below this many records ``thread_order`` sorts by the keys themselves (its own passes cost more).
_THREAD_ORDER_MIN = 4096


def thread_order(seq, uid, pid, tid):
    """The order that groups records by thread key (uid, pid, tid), each group in order of ``seq``: what
    ``np.lexsort((seq, tid, pid, uid))`` gives, but with the groups in no particular order.  A chunk's records
    come from a few threads: they are sorted by ``seq``, given their group's number (a hash of their key,
    ranked) and ordered by that small number (a radix sort), not sorted by four keys."""
    n = len(seq)
    if n >= _THREAD_ORDER_MIN:
        by_seq = np.argsort(seq, kind="stable")
        hashes, group = np.unique(key_hash(uid[by_seq], pid[by_seq], tid[by_seq]), return_inverse=True)
        if len(hashes) < (1 << 15):
            order = by_seq[np.argsort(group.astype(np.int16), kind="stable")]
            # two keys with one hash would share a group, their records interleaved: then keys change inside it
            if len(group_starts(uid[order], pid[order], tid[order])) == len(hashes):
                return order
    return np.lexsort((seq, tid, pid, uid))


def ranges(starts, ends):
    """The concatenation of ``arange(s, e)`` for each pair: without a Python loop."""
    starts = np.asarray(starts, np.int64)
    lengths = np.asarray(ends, np.int64) - starts
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, np.int64)
    # each range's first element jumps from the previous range's last; the rest step by one
    steps = np.ones(total, np.int64)
    heads = np.cumsum(lengths)[:-1]
    steps[0] = starts[0]
    steps[heads] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(steps)


def group_starts(*keys):
    """Where runs of equal values (in all ``keys`` together) start, for arrays sorted by those keys."""
    n = len(keys[0])
    if not n:
        return np.zeros(0, np.int64)
    change = np.zeros(n - 1, bool)
    for k in keys:
        change |= k[1:] != k[:-1]
    return np.concatenate(([0], np.flatnonzero(change) + 1))


def segment_ids(n, starts):
    """For ``n`` items in runs beginning at ``starts``: each item's run number."""
    ids = np.zeros(n, np.int64)
    if len(starts) > 1:
        ids[starts[1:]] = 1
    return np.cumsum(ids)


def segmented_running_min(values, seg):
    """The running minimum of ``values`` restarted at each run (``seg``: each item's run number, ascending)."""
    if not len(values):
        return values.copy()
    span = int(values.max()) - int(values.min()) + 1
    shifted = values - seg * span           # later runs lie wholly below earlier ones: the minimum restarts
    return np.minimum.accumulate(shifted) + seg * span


def last_index_where(mask, seg_start_of_item):
    """For each item, the index of the latest item at or before it (in its run) where ``mask`` holds, or -1.
    ``seg_start_of_item``: the index where each item's run begins."""
    idx = np.where(mask, np.arange(len(mask)), -1)
    best = np.maximum.accumulate(idx) if len(idx) else idx
    return np.where(best >= seg_start_of_item, best, -1)
