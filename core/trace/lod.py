"""Where a layer's bars are, at every scale: a level-of-detail index a view draws any number of bars from.

A bar is (lane, t0, t1, colour), identified by its row in a table its owner keeps (the model's spans, the
timeline's task bars...); this index holds only rows and summaries.  Time is cut into bins of
``2**(BASE_SHIFT + LEVEL_BITS * level)`` ns at ``LEVELS`` levels.  At a level, a bar at least a bin long is
*long*: drawn as it is, found through the rows of its duration class (``classes``: class ``c`` holds bars a
bin of level ``c`` long to a bin of the next, class -1 shorter than a bin at every level).  A shorter bar is
*short* at that level: it counts in the cells (lane, colour, bin) it touches, each cell with how many bars
start in it and how much of its time they cover (ns, exact: a bar taken back leaves nothing behind).  So at
any zoom a frame draws the long bars in view and one cell per occupied (lane, colour, bin): what it costs
depends on the pixels, not on the bars.

Cells are built as bars arrive, level by level from the one below (a bar short at a level is short at every
coarser one, and the cells of a bin are the sums of its quarters'), in blocks of sorted keys; blocks are
merged as they pile up, so a level is a few sorted arrays.  A level whose cells would be nearly as many as
its bars summarises nothing: it is dropped (for good), and a view that zooms there draws the bars
themselves, which are then few in view.  Bars can be taken back (``add`` with ``sign=-1``: their cells get
the opposite counts), for a table whose rows change.

``frozen()`` gives an immutable picture for another thread: the reader thread adds, the GUI thread draws.
Keys are ``bin << KEY_SHIFT | lane << COLOR_BITS | colour`` with bins counted from ``origin``.  No Qt here.
"""
from typing import List, Optional, Tuple

import numpy as np

from .columns import BlockIndex, group_starts, ranges

#: The finest bin is 2**BASE_SHIFT ns (about 4 us); each level's bins are 2**LEVEL_BITS times the last's; the
#: coarsest are 2**(BASE_SHIFT + LEVEL_BITS * (LEVELS - 1)) ns (about 70 s).
BASE_SHIFT = 12
LEVEL_BITS = 2
LEVELS = 13
COLOR_BITS = 5
LANE_BITS = 19
KEY_SHIFT = COLOR_BITS + LANE_BITS
#: A level is dropped once its cells pass this share of the bars short at that level (and those are this
#: many): its bins hold too few bars to be worth summarising.
DROP_SHARE = 0.3
DROP_AFTER_BARS = 20_000
#: Before merging this many keys or more at a level (more than it may keep), their distinct count is estimated
#: from a sample (those whose hash falls in one bucket of a power of two, about ``SAMPLE_KEYS`` distinct): a
#: level sure to be dropped (the estimate past its share by ``DROP_MARGIN``) is dropped without the merge, the
#: largest of an add.  Measured on a hot run's 576,000 lock holds (2 million events): levels 0 and 1 held
#: 0.87 and 0.72 cells a bar, and their merges were a third of building the index.
ESTIMATE_FROM = 50_000
SAMPLE_KEYS = 4096
DROP_MARGIN = 1.25
#: Blocks of cells a level keeps before merging the newest ones, and how much smaller than the one before
#: the newest block may be and stay apart (size-tiered: every cell is merged a few times, not at every add).
MAX_BLOCKS = 12
MERGE_RATIO = 4
#: Bars are counted into the levels this many at a time: a batch's arrays stay in the processor's cache
#: (measured on a 2-million-event run: the level-of-detail index of 700,000 spans took 0.12 s added whole,
#: 0.09 s in such batches).
CELL_BATCH = 1 << 16
#: A duration class's rows are listed in blocks of at most this many, by start: a view counts the rows of
#: the blocks it overlaps (is it few enough to draw exactly?) and filters those.
BLOCK_ROWS = 2048



def duration_class(d):
    """Each bar's duration class (-1: shorter than the finest bin), an array: from the bit length of each
    duration (``frexp``: d = m * 2**e with 1/2 <= m < 1), seven times quicker than a search of the class
    starts.  Past 2**53 ns a duration's float may round up a power of two, but every class starts far below."""
    _, e = np.frexp(np.asarray(d, np.float64))
    return np.clip((e.astype(np.int64) - 1 - BASE_SHIFT) // LEVEL_BITS, -1, LEVELS - 1)


def bin_width(level):
    return 1 << (BASE_SHIFT + LEVEL_BITS * level)


def cells_of(lane, t0, t1, color, level, origin, sign=1):
    """The cells of bars shorter than a bin of ``level`` (arrays), unsorted, duplicates not merged: each bar
    counts once in the bin of its start and covers its time in the one or two bins it touches."""
    shift = BASE_SHIFT + LEVEL_BITS * level
    w = np.int64(1) << shift
    r0 = np.maximum(t0 - origin, 0)
    r1 = np.maximum(t1 - origin, r0)
    b0, b1 = r0 >> shift, r1 >> shift
    code = (lane.astype(np.int64) << COLOR_BITS) | color.astype(np.int64)
    split = b1 > b0
    first_cover = np.where(split, (b0 + 1) * w - r0, r1 - r0)
    keys = np.concatenate(((b0 << KEY_SHIFT) | code, (b1[split] << KEY_SHIFT) | code[split]))
    count = np.concatenate((np.full(len(b0), sign, np.int32), np.zeros(int(split.sum()), np.int32)))
    cover = np.concatenate((first_cover, (r1 - b1 * w)[split])) * sign
    return keys, count, cover


def merge_cells(keys, count, cover):
    """One cell per key, counts and covers summed; cells that summed to nothing dropped.  Sorted by key.
    Cells are (keys, counts, covers): three arrays."""
    if not len(keys):
        return keys, count, cover
    merged = _merge_dense(keys, count, cover)
    if merged is not None:
        return merged
    order = np.argsort(keys, kind="stable")       # keys come nearly sorted (by time): a stable sort is quick
    keys = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    count = np.add.reduceat(count[order], starts)
    cover = np.add.reduceat(cover[order], starts)
    keys = keys[starts]
    some = (count != 0) | (cover != 0)
    if not some.all():
        keys, count, cover = keys[some], count[some], cover[some]
    return keys, count, cover


#: ``merge_cells`` counts cells in a dense table (bins x codes present) instead of sorting when the table has
#: at most this many slots per key, and ...
DENSE_SLOTS_PER_KEY = 4
#: ... when the lane-colour codes are below this (their table of which are present stays small).
DENSE_MAX_CODE = 1 << 16
#: Sums in float64 are exact below 2**53: covers (ns) past this bound per key are merged by sorting.
_EXACT = float(1 << 52)


def _merge_dense(keys, count, cover):
    """``merge_cells`` without a sort, for keys that span few bins and codes (a batch of bars at a level: a
    slice of time on a few lanes): each cell's slot in a (bin, code) table is summed by ``bincount``.  None
    when the table would be much larger than the keys."""
    n = len(keys)
    code = keys & ((1 << KEY_SHIFT) - 1)
    top = int(code.max())
    if top >= DENSE_MAX_CODE or top > DENSE_SLOTS_PER_KEY * n:
        return None
    bins = keys >> KEY_SHIFT
    b0 = int(bins.min())
    present = np.bincount(code, minlength=top + 1) > 0
    codes = np.flatnonzero(present)
    width = len(codes)
    slots = (int(bins.max()) - b0 + 1) * width
    if slots > DENSE_SLOTS_PER_KEY * n or float(np.abs(cover).max()) * n >= _EXACT:
        return None
    rank = np.cumsum(present) - 1
    slot = (bins - b0) * width + rank[code]
    counts = np.bincount(slot, weights=count, minlength=slots)
    covers = np.bincount(slot, weights=cover, minlength=slots)
    some = np.flatnonzero((counts != 0) | (covers != 0))
    return (((some // width + b0) << KEY_SHIFT) | codes[some % width], counts[some].astype(count.dtype),
            covers[some].astype(cover.dtype))


def join_cells(a, b):
    """``merge_cells`` of two blocks of merged cells: only where their keys interleave (a level's blocks are of
    successive stretches of time, so they overlap a little, if at all) are they merged; the rest is copied."""
    ka, kb = a[0], b[0]
    if not len(ka) or not len(kb):
        return a if len(ka) else b
    lo = int(np.searchsorted(ka, kb[0]))
    hi = int(np.searchsorted(kb, ka[-1], side="right"))
    middle = merge_cells(*(np.concatenate((x[lo:], y[:hi])) for x, y in zip(a, b)))
    return tuple(np.concatenate((x[:lo], m, y[hi:])) for x, m, y in zip(a, middle, b))


def distinct_estimate(keys, near):
    """About how many distinct values ``keys`` (int64) holds, within a few percent of ``near`` for a count near
    it: the distinct keys of a sample taken by hash (a key is in it with all its copies or not at all), scaled
    up.  The sample keeps a key in ``2**bits``, so that about ``SAMPLE_KEYS`` distinct keys are in it when the
    count is ``near``."""
    bits = max(0, (int(near) // SAMPLE_KEYS).bit_length() - 1)
    if not bits:
        return len(np.unique(keys))
    hashed = keys.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    sample = np.sort(keys[hashed < np.uint64(1 << (64 - bits))])
    return (int(np.count_nonzero(sample[1:] != sample[:-1])) + (len(sample) > 0)) << bits


class _Level:
    """The cells of one level, as sorted blocks."""

    def __init__(self):
        self.blocks: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.cells = 0
        self.dropped = False

    def add(self, cells):
        if self.dropped or not len(cells[0]):
            return
        self.blocks.append(cells)
        self.cells += len(cells[0])
        # merge the newest blocks while they are near the size of the one before (a few blocks, mostly big)
        blocks = self.blocks
        while len(blocks) > 1 and (len(blocks) > MAX_BLOCKS or len(blocks[-1][0]) * MERGE_RATIO >= len(blocks[-2][0])):
            b = blocks.pop()
            a = blocks.pop()
            merged = join_cells(a, b)
            self.cells += len(merged[0]) - len(a[0]) - len(b[0])
            blocks.append(merged)

    def drop(self):
        self.dropped = True
        self.blocks = []
        self.cells = 0


#: Row numbers are 32-bit: a table of more than 2**31 bars could not be held in memory anyway, and an opened
#: run keeps one row number per bar (4 bytes an event instead of 8).
ROW_DTYPE = np.int32


class _Rows:
    """A growable array of row numbers, appended in blocks with their time extents."""

    def __init__(self):
        self.rows = np.zeros(64, ROW_DTYPE)
        self.n = 0
        self.blocks = BlockIndex()

    def trim(self):
        self.rows = self.rows[:self.n].copy()

    def add(self, rows, t0, t1):
        k = len(rows)
        if not k:
            return
        if self.n + k > len(self.rows):
            grown = np.zeros(max(self.n + k, 2 * len(self.rows)), ROW_DTYPE)
            grown[:self.n] = self.rows[:self.n]
            self.rows = grown
        # in order of start, in blocks of a bounded number of rows: a block's time extent stays tight
        order = np.argsort(t0, kind="stable")
        self.rows[self.n:self.n + k] = np.asarray(rows)[order]
        starts = np.arange(0, k, BLOCK_ROWS)
        self.blocks.add_many(self.n + starts, self.n + np.append(starts[1:], k),
                             np.minimum.reduceat(t0[order], starts), np.maximum.reduceat(t1[order], starts))
        self.n += k


class BarIndex:
    """The level-of-detail index of one layer (see the module's docstring)."""

    def __init__(self, origin):
        self.origin = int(origin)
        self.classes = [_Rows() for _ in range(LEVELS + 1)]      # index c + 1 for class c
        self.levels = [_Level() for _ in range(LEVELS)]
        self.bars = 0
        self.short = np.zeros(LEVELS, np.int64)       # bars short at each level (their class is below it)

    def add(self, rows, lane, t0, t1, color, sign=1):
        """Bars (arrays): their rows join the lists of their duration class (unless taken back: ``sign``
        -1), and their cells count at every level where they are short."""
        n = len(t0)
        if not n:
            return
        t0 = np.asarray(t0, np.int64)
        t1 = np.maximum(np.asarray(t1, np.int64), t0)
        lane = np.asarray(lane, np.int64)
        color = np.asarray(color, np.int64)
        cls = duration_class(t1 - t0)
        if sign > 0:
            self.bars += n
            by_class = np.argsort(cls.astype(np.int8), kind="stable")      # small integers: a radix sort
            sc = cls[by_class]
            starts = group_starts(sc)
            ends = np.append(starts[1:], n)
            for s, e in zip(starts.tolist(), ends.tolist()):
                i = by_class[s:e]
                self.classes[int(sc[s]) + 1].add(np.asarray(rows)[i], t0[i], t1[i])
        else:
            self.bars -= n
        for a in range(0, n, CELL_BATCH):
            b = a + CELL_BATCH
            self._add_cells(lane[a:b], t0[a:b], t1[a:b], color[a:b], cls[a:b], sign)

    def _add_cells(self, lane, t0, t1, color, cls, sign):
        self.short += sign * np.cumsum(np.bincount(cls + 1, minlength=LEVELS + 1))[:LEVELS]
        by_class = np.argsort(cls.astype(np.int8), kind="stable")
        sc = cls[by_class]
        keys = np.zeros(0, np.int64)
        count = np.zeros(0, np.int32)
        cover = np.zeros(0, np.int64)
        bounds = np.searchsorted(sc, np.arange(-1, LEVELS))
        waiting: List[np.ndarray] = []      # bars short at a dropped level: their cells are made at a kept one
        for level in range(LEVELS):
            if level and len(keys):
                keys = ((keys >> (KEY_SHIFT + LEVEL_BITS)) << KEY_SHIFT) | (keys & ((1 << KEY_SHIFT) - 1))
            # bars short from this level on: their class is just below it
            new = by_class[bounds[level]:bounds[level + 1]]
            lv = self.levels[level]
            if lv.dropped:
                # a dropped level's cells are carried up unmerged (merging is what costs), and a bar's cells at
                # a level are those it would have at a finer one carried up: made once, where they are kept
                if len(new):
                    waiting.append(new)
                continue
            if waiting:
                new = np.concatenate(waiting + [new])
                waiting = []
            if len(new):
                k, c, v = cells_of(lane[new], t0[new], t1[new], color[new], level, self.origin, sign)
                keys, count, cover = np.concatenate((keys, k)), np.concatenate((count, c)), np.concatenate((cover, v))
            if not len(keys):
                continue
            short = self.short[level]
            most = DROP_MARGIN * DROP_SHARE * short
            if (short >= DROP_AFTER_BARS and len(keys) >= ESTIMATE_FROM and lv.cells + len(keys) > most
                    and lv.cells + distinct_estimate(keys, most - lv.cells) > most):
                lv.drop()
                continue
            keys, count, cover = merge_cells(keys, count, cover)
            lv.add((keys, count, cover))
            if short >= DROP_AFTER_BARS and lv.cells > DROP_SHARE * short:
                lv.drop()

    def trim(self):
        """Give back the room kept for bars to come (all bars are in)."""
        for r in self.classes:
            r.trim()

    def frozen(self):
        return FrozenBarIndex(self)


class FrozenBarIndex:
    """A ``BarIndex`` as it was: safe to read from another thread while the index grows."""

    def __init__(self, index):
        self.origin = index.origin
        self.classes = [(r.rows[:r.n], r.blocks.frozen(r.n)) for r in index.classes]
        self.levels: List[Optional[Tuple[np.ndarray, ...]]] = [None if lv.dropped else tuple(lv.blocks)
                                                                for lv in index.levels]
        self.bars = index.bars

    def level_for(self, pixel_ns):
        """The finest level kept whose bin is at least ``pixel_ns`` (None: none is)."""
        for level in range(LEVELS):
            if bin_width(level) >= pixel_ns and self.levels[level] is not None:
                return level
        return None

    def rows_between(self, t0, t1, min_class=-1):
        """Rows of bars of duration class ``min_class`` or more whose class lists' blocks overlap [t0, t1]
        (candidates: the owner filters them by their times)."""
        parts = [rows[blocks.candidate_rows(t0, t1)] for rows, blocks in self.classes[min_class + 1:]]
        parts = [p for p in parts if len(p)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def count_between(self, t0, t1):
        """An upper bound of the bars overlapping [t0, t1]."""
        return sum(blocks.count_between(t0, t1) for _, blocks in self.classes)

    def estimate_between(self, t0, t1):
        """About how many bars overlap [t0, t1] (see ``columns.FrozenBlocks.estimate_between``)."""
        return sum(blocks.estimate_between(t0, t1) for _, blocks in self.classes)

    def cells(self, level, t0, t1):
        """The cells of ``level`` in bins overlapping [t0, t1], one per key (counts and covers summed), as
        (bin start ns, lane, colour, count, cover ns)."""
        blocks = self.levels[level]
        if not blocks:
            return _no_cells()
        shift = BASE_SHIFT + LEVEL_BITS * level
        lo = (max(int(t0) - self.origin, 0) >> shift) << KEY_SHIFT
        hi = ((max(int(t1) - self.origin, 0) >> shift) + 1) << KEY_SHIFT
        parts = []
        for b in blocks:
            i, j = np.searchsorted(b[0], [lo, hi])
            if j > i:
                parts.append(tuple(x[i:j] for x in b))
        if not parts:
            return _no_cells()
        if len(parts) == 1:
            key, count, cover = parts[0]
        else:
            key, count, cover = merge_cells(*(np.concatenate(x) for x in zip(*parts)))
        start = ((key >> KEY_SHIFT) << shift) + self.origin
        code = key & ((1 << KEY_SHIFT) - 1)
        return start, code >> COLOR_BITS, code & ((1 << COLOR_BITS) - 1), count, cover


def _no_cells():
    z = np.zeros(0, np.int64)
    return z, z, z, np.zeros(0, np.int32), np.zeros(0, np.int64)


def rows_in(index_rows, t0_col, t1_col, t0, t1):
    """Of candidate rows, those whose bar (columns ``t0_col``, ``t1_col``) overlaps [t0, t1], each once."""
    if not len(index_rows):
        return index_rows
    keep = (t0_col[index_rows] <= t1) & (t1_col[index_rows] >= t0)
    return np.unique(index_rows[keep])


__all__ = ["BarIndex", "FrozenBarIndex", "duration_class", "bin_width", "cells_of", "merge_cells", "rows_in",
           "ranges", "LEVELS", "BASE_SHIFT"]
