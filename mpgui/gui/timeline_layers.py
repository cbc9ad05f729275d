"""The timeline's layers: what a layer of bars shows in a time range, and where its bars live.  No Qt here.

A layer answers ``visible(t0, t1, pixel)`` (a ``Visible``: the bars to draw exactly and the cells of its level
of detail standing for the rest), ``near(pid, t, tolerance)`` for hovering and ``bar(ref)`` for a selected
bar.  ``Bars`` is a small layer given whole (process lifetimes); an ``IndexedLayer`` is a layer of many bars:
its rows in a ``BarSource`` (columns of the model's tables that a snapshot shares, read up to its row count),
a frozen level-of-detail index of them (``core.trace.lod``) and the few bars that change at every snapshot
(open spans, running tasks).  A source gives a row's lane key (``lane_keys``: a thread's sub-lane or its
process's), its times and its colour key (``timeline_colors``).

``timeline_data.TimelineBuilder`` makes the layers, in the reader thread; the view only reads them.
"""

import numpy as np

from core.trace.lod import bin_width

from .timeline_colors import C_SEND, MOMENT_COLOR, span_colors, track_span_colors
from .tracks import lookup

#: A layer draws every bar in view, exactly, while there are at most this many (else its level of detail).
EXACT_BARS = 12_000
#: ... found among the bars of the index blocks the view overlaps, while those are at most this many and,
#: spread evenly over their blocks, would be at most ESTIMATE_SLACK times EXACT_BARS in view.
CANDIDATE_BARS = 64_000
ESTIMATE_SLACK = 1.5
#: What an object track's mark is, beyond the moments it copies (their kinds): a barrier generation
#: released, a barrier broken.
MARK_GENERATION, MARK_BROKEN = -1, -2


class Visible:
    """What a layer shows in a time range: ``bars`` to draw exactly (pid, t0, t1, colour, ref: arrays, ns) and
    ``cells`` standing for the bars too short to see (pid, t0, width, colour, cover share: arrays, ns)."""

    __slots__ = ("bars", "cells", "level")

    def __init__(self, bars, cells=None, level=None):
        self.bars = bars
        self.cells = cells
        self.level = level


EMPTY_BARS = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8),
               np.zeros(0, np.int64))


class Bars:
    """A small layer given whole: pid, x0, x1 (seconds from the run's start), colour, ref."""

    def __init__(self, pid, x0, x1, color, ref, t0=0):
        self.pid, self.x0, self.x1, self.color, self.ref = pid, x0, x1, color, ref
        self.t0 = t0

    @classmethod
    def empty(cls):
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int8), np.zeros(0, np.int64))

    def __len__(self):
        return len(self.pid)

    def _ns(self, x):
        return np.round(np.asarray(x, np.float64) * 1e9).astype(np.int64) + self.t0

    def visible(self, t0, t1, pixel):
        lo, hi = (t0 - pixel - self.t0) / 1e9, (t1 + pixel - self.t0) / 1e9
        keep = np.flatnonzero((self.x1 >= lo) & (self.x0 <= hi))
        return Visible((self.pid[keep], self._ns(self.x0[keep]), self._ns(self.x1[keep]), self.color[keep],
                        self.ref[keep]))

    def near(self, pid, t, tol):
        a, b = self._ns(self.x0), self._ns(self.x1)
        cand = np.flatnonzero((self.pid == pid) & (a - tol <= t) & (b + tol >= t))
        if not len(cand):
            return None
        return int(self.ref[cand[np.argmin(np.abs((a[cand] + b[cand]) / 2 - t))]])

    def bar(self, ref):
        i = np.flatnonzero(self.ref == ref)
        if not len(i):
            return None
        i = int(i[0])
        return int(self.pid[i]), float(self.x0[i]), float(self.x1[i])


class BarSource:
    """Where an indexed layer's bars live: columns a snapshot shares (rows up to ``n``)."""

    def times(self, rows):
        """(t0, t1) of ``rows``."""
        return self.t0[rows], self.t1[rows]

    def cols(self, rows):
        """(pid, t0, t1, colour, ref, alive) of ``rows``."""
        raise NotImplementedError

    def bar_of(self, ref):
        """(pid, t0, t1) of the bar ``ref``, or None."""
        raise NotImplementedError

    def _row(self, ref):
        ref = int(ref)
        if 0 <= ref < len(self.pid):
            pid, a, b, _, _, alive = self.cols(np.array([ref]))
            if alive[0]:
                return int(pid[0]), int(a[0]), int(b[0])
        return None


class SpanSource(BarSource):
    """The model's spans on the process lanes: a thread's on its sub-lane (``thread_codes`` -> keys), a
    semaphore's holds in their colour."""

    def __init__(self, spans, n, thread_codes=None, thread_keys=None, semaphores=None):
        self.pid = spans.view("pid")[:n]
        self.tid = spans.view("tid")[:n]
        self.uid = spans.view("uid")[:n]
        self.t0 = spans.view("t0")[:n]
        self.t1 = spans.view("t1")[:n]
        self.kind = spans.view("kind")[:n]
        self.thread_codes = thread_codes if thread_codes is not None else np.zeros(0, np.int64)
        self.thread_keys = thread_keys if thread_keys is not None else np.zeros(0, np.int64)
        self.semaphores = semaphores if semaphores is not None else np.zeros(0, np.uint64)

    def cols(self, rows):
        pid = self.pid[rows].astype(np.int64)
        key = lane_keys(pid, self.tid[rows], self.thread_codes, self.thread_keys)
        kind = self.kind[rows]
        color = span_colors(kind, self.uid[rows], self.semaphores)
        return key, self.t0[rows], self.t1[rows], color, rows, np.ones(len(rows), bool)

    def bar_of(self, ref):
        return self._row(ref)


class TrackSpanSource(BarSource):
    """The model's spans on the object tracks: holds on their object's track (a semaphore's on the slot
    they got), coloured by their process; waits on it, in their kind's colour (broken: red)."""

    def __init__(self, spans, n, track_uids, track_rows, slot_table, slot_of):
        self.pid = spans.view("pid")[:n]
        self.uid = spans.view("uid")[:n]
        self.t0 = spans.view("t0")[:n]
        self.t1 = spans.view("t1")[:n]
        self.kind = spans.view("kind")[:n]
        self.end = spans.view("end")[:n]
        self.track_uids, self.track_rows = track_uids, track_rows     # sorted uids -> row of ``slot_table``
        self.slot_table = slot_table            # (tracks, slots) -> lane key
        self.slot_of = slot_of[:n]

    def cols(self, rows):
        row = lookup(self.track_uids, self.track_rows, self.uid[rows], -1)
        alive = row >= 0
        slot = self.slot_of[rows].astype(np.int64)
        key = np.where(alive, self.slot_table[np.maximum(row, 0), np.minimum(slot, self.slot_table.shape[1] - 1)], 0)
        kind = self.kind[rows]
        return (key, self.t0[rows], self.t1[rows], track_span_colors(kind, self.end[rows], self.pid[rows]), rows,
                alive & (key != 0))

    def bar_of(self, ref):
        return self._row(ref)


class HoldSource(BarSource):
    """Holds of managed locks and semaphores (``TimelineBuilder.managed``), on their object's track."""

    DTYPE = [("key", "<i8"), ("t0", "<i8"), ("t1", "<i8"), ("color", "<i1"), ("uid", "<u8"), ("pid", "<i4"),
             ("tid", "<i4")]

    def __init__(self, holds, n):
        self.pid = holds.view("key")[:n]
        self.t0 = holds.view("t0")[:n]
        self.t1 = holds.view("t1")[:n]
        self.color = holds.view("color")[:n]

    def cols(self, rows):
        return self.pid[rows], self.t0[rows], self.t1[rows], self.color[rows], rows, np.ones(len(rows), bool)

    def bar_of(self, ref):
        return self._row(ref)


class SendSource(BarSource):
    """The model's messages that are a feeder's writes (QUEUE_SEND), as ticks on their thread's lane."""

    def __init__(self, messages, n, thread_codes, thread_keys):
        self.pid = messages.view("pid")[:n]
        self.tid = messages.view("tid")[:n]
        self.t = messages.view("t")[:n]
        self.thread_codes, self.thread_keys = thread_codes, thread_keys

    def times(self, rows):
        t = self.t[rows]
        return t, t

    def cols(self, rows):
        t = self.t[rows]
        key = lane_keys(self.pid[rows].astype(np.int64), self.tid[rows], self.thread_codes, self.thread_keys)
        return key, t, t, np.full(len(rows), C_SEND, np.int8), rows, np.ones(len(rows), bool)

    def bar_of(self, ref):
        return self._row(ref)


class MarkSource(BarSource):
    """Marks on the object tracks (``TimelineBuilder.obj_marks``): ticks at ``t``."""

    DTYPE = [("key", "<i8"), ("t", "<i8"), ("color", "<i1"), ("uid", "<u8"), ("pid", "<i4"), ("kind", "<i4"),
             ("value", "<i8"), ("instant", "<i8")]

    def __init__(self, marks, n):
        self.pid = marks.view("key")[:n]
        self.t = marks.view("t")[:n]
        self.color = marks.view("color")[:n]

    def times(self, rows):
        t = self.t[rows]
        return t, t

    def cols(self, rows):
        t = self.t[rows]
        return self.pid[rows], t, t, self.color[rows], rows, np.ones(len(rows), bool)

    def bar_of(self, ref):
        return self._row(ref)


def lane_keys(pid, tid, thread_codes, thread_keys):
    """The lane key of records of (pid, tid): their thread's sub-lane if it has one, else the process's."""
    pid = np.asarray(pid, np.int64)
    if not len(thread_codes) or not len(pid):
        return pid
    codes = (pid << 32) | (np.asarray(tid, np.int64) & 0xFFFFFFFF)
    return lookup(thread_codes, thread_keys, codes, 0) + np.where(np.isin(codes, thread_codes), 0, pid)



class InstantSource(BarSource):
    """The model's moments, as ticks on their process's lane (a signal's, a request to end's in a colour of
    their own)."""

    def __init__(self, instants, n):
        self.pid = instants.view("pid")[:n]
        self.t = instants.view("t")[:n]
        self.kind = instants.view("kind")[:n]

    def times(self, rows):
        t = self.t[rows]
        return t, t

    def cols(self, rows):
        t = self.t[rows]
        return (self.pid[rows].astype(np.int64), t, t, MOMENT_COLOR[np.minimum(self.kind[rows], 255)], rows,
                np.ones(len(rows), bool))

    def bar_of(self, ref):
        return self._row(ref)


class VersionSource(BarSource):
    """Bars of a table whose rows change (pool tasks): each version of a bar is a row here; a version
    replaced by a newer one is dead."""

    DTYPE = [("ref", "<i8"), ("pid", "<i4"), ("t0", "<i8"), ("t1", "<i8"), ("color", "<i1")]

    def __init__(self, versions, dead, n, version_of):
        self.version_of = version_of          # the table's row -> its bar's live version (-1: none)
        self.ref = versions.view("ref")[:n]
        self.pid = versions.view("pid")[:n]
        self.t0 = versions.view("t0")[:n]
        self.t1 = versions.view("t1")[:n]
        self.color = versions.view("color")[:n]
        self.dead = dead[:n]

    def cols(self, rows):
        return (self.pid[rows].astype(np.int64), self.t0[rows], self.t1[rows], self.color[rows], self.ref[rows],
                ~self.dead[rows])

    def bar_of(self, ref):
        ref = int(ref)
        v = int(self.version_of[ref]) if 0 <= ref < len(self.version_of) else -1
        return self._row(v) if v >= 0 else None


class IndexedLayer:
    """A layer of many bars: a source, its level-of-detail index (frozen), and the few bars that change on
    every snapshot (open spans, running tasks), drawn exactly."""

    def __init__(self, name, source, index, lane_pids, live=EMPTY_BARS, t0=0):
        self.name = name
        self.source = source
        self.index = index
        self.lane_pids = lane_pids            # LOD lane id -> pid
        self.live = live                      # (pid, t0, t1, colour, ref)
        self.t0 = t0
        self._all = None

    def __len__(self):
        return int(self.index.bars) + len(self.live[0])

    def visible(self, t0, t1, pixel):
        """What to draw of [t0, t1] at ``pixel`` ns per pixel (see ``Visible``)."""
        live = _clip_bars(self.live, t0 - pixel, t1 + pixel)
        exact = None
        a, b = t0 - pixel, t1 + pixel
        if (self.index.count_between(a, b) <= CANDIDATE_BARS
                and self.index.estimate_between(a, b) <= EXACT_BARS * ESTIMATE_SLACK):
            exact = self._bars(self.index.rows_between(t0 - pixel, t1 + pixel), t0 - pixel, t1 + pixel)
            if len(exact[0]) <= EXACT_BARS:
                return Visible(_concat_bars(exact, live))
        level = self.index.level_for(pixel)
        if level is None:
            if exact is None:
                exact = self._bars(self.index.rows_between(t0 - pixel, t1 + pixel), t0 - pixel, t1 + pixel)
            return Visible(_concat_bars(exact, live))
        bars = self._bars(self.index.rows_between(t0 - pixel, t1 + pixel, min_class=level), t0 - pixel, t1 + pixel)
        start, lane, color, count_, cover = self.index.cells(level, t0 - pixel, t1 + pixel)
        width = bin_width(level)
        keep = count_ >= 0
        cells = (self.lane_pids[lane[keep]], start[keep], np.full(int(keep.sum()), width, np.int64),
                 color[keep].astype(np.int8), np.clip(cover[keep] / width, 0.0, 1.0))
        return Visible(_concat_bars(bars, live), cells, level)

    def _bars(self, rows, t0, t1):
        if not len(rows):
            return EMPTY_BARS
        a, b = self.source.times(rows)            # the times first: only the bars in range are gathered whole
        rows = rows[(a <= t1) & (b >= t0)]
        if not len(rows):
            return EMPTY_BARS
        pid, a, b, color, ref, alive = self.source.cols(rows)
        if not alive.all():
            pid, a, b, color, ref = pid[alive], a[alive], b[alive], color[alive], ref[alive]
        return pid, a, b, color, ref

    def near(self, pid, t, tol):
        """The ref of the bar of ``pid``'s lane nearest ``t`` within ``tol`` ns, or None."""
        bars = self._bars(self.index.rows_between(t - tol, t + tol), t - tol, t + tol)
        pids, a, b, _, ref = _concat_bars(bars, _clip_bars(self.live, t - tol, t + tol))
        cand = np.flatnonzero((pids == pid) & (a - tol <= t) & (b + tol >= t))
        if not len(cand):
            return None
        return int(ref[cand[np.argmin(np.abs((a[cand] + b[cand]) / 2 - t))]])

    def bar(self, ref):
        """(pid, x0, x1) of the bar ``ref`` (x: seconds from the run's start), or None."""
        i = np.flatnonzero(self.live[4] == ref)
        if len(i):
            i = int(i[0])
            found = (int(self.live[0][i]), int(self.live[1][i]), int(self.live[2][i]))
        else:
            found = self.source.bar_of(ref)
        if found is None:
            return None
        pid, a, b = found
        return pid, (a - self.t0) / 1e9, (b - self.t0) / 1e9

    def all_ns(self):
        """Every bar (pid, t0, t1, colour, ref), sorted by start: built once, on demand."""
        if self._all is None:
            rows = np.unique(self.index.rows_between(-(1 << 62), 1 << 62))
            bars = _concat_bars(self._bars(rows, -(1 << 62), 1 << 62), self.live)
            order = np.lexsort((bars[4], bars[3], bars[0], bars[2], bars[1]))
            self._all = tuple(x[order] for x in bars)
        return self._all

    @property
    def pid(self):
        return self.all_ns()[0]

    @property
    def x0(self):
        return (self.all_ns()[1] - self.t0) / 1e9

    @property
    def x1(self):
        return (self.all_ns()[2] - self.t0) / 1e9

    @property
    def color(self):
        return self.all_ns()[3]

    @property
    def ref(self):
        return self.all_ns()[4]


def _clip_bars(bars, t0, t1):
    keep = (bars[1] <= t1) & (bars[2] >= t0)
    return tuple(x[keep] for x in bars)


def _concat_bars(a, b):
    if not len(b[0]):
        return a
    if not len(a[0]):
        return b
    return tuple(np.concatenate((x, y)).astype(x.dtype) for x, y in zip(a, b))
