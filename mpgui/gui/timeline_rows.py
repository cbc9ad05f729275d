"""The timeline's rows and their labels: which rows there are, top to bottom (``layout_rows``: the processes
grouped by role, a group of several under a header row, each process followed by its threads' sub-lanes and
its counters' row; then the objects' tracks, grouped too), and the left axis that labels them (``LaneAxis``:
one label per row, elided in a column as wide as the longest label needs, within bounds; the wheel over it
scrolls the rows).

Every row has a lane key: the key its bars carry (a process's pid, a thread's or a track's negative key), or
for a header and a counters row, a key no bar has.  The view (``timeline.TimelineView``) scrolls and
collapses the rows; the item (``timeline_item``) draws each lane key's bars on its row.
"""
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

#: Rows are at least this many pixels high: with more rows than fit, the view scrolls.
MIN_ROW_PX = 18
#: The labels' column: as wide as the longest label, within these bounds (longer ones are elided).
LABEL_MIN_PX, LABEL_MAX_PX = 110, 340


@dataclass
class Row:
    """One row of the timeline, top to bottom: a group's header, a process, a thread of one, a process's
    counters, an object's track or a semaphore's further holder slot."""
    key: int                    # the lane key its bars carry (a header's and a counters row's: none has it)
    label: str
    kind: str                   # header, process, thread, counters, object, slot
    group: str = ""
    uid: int = 0                # an object's
    pid: int = 0                # a process's, a thread's process, a counters row's process


class LaneAxis(pg.AxisItem):
    """Left axis: one label per row, at the row's middle; the wheel over it scrolls the rows."""

    def __init__(self):
        super().__init__("left")
        self.labels = []
        self.on_wheel = None            # (steps) -> None: set by the view
        self.setWidth(170)
        self.setStyle(tickLength=0, autoExpandTextSpace=False, hideOverlappingLabels=False)

    def wheelEvent(self, ev):
        if self.on_wheel is not None:
            self.on_wheel(-ev.delta() / 120.0)
            ev.accept()
        else:
            super().wheelEvent(ev)

    def needed_width(self):
        """How wide the longest label needs the column, within LABEL_MIN_PX..LABEL_MAX_PX."""
        fm = QtGui.QFontMetricsF(self.style.get("tickFont") or QtWidgets.QApplication.font())
        widest = max([fm.horizontalAdvance(t) for t in self.labels] + [0.0])
        return int(min(LABEL_MAX_PX, max(LABEL_MIN_PX, widest + self.style["tickTextOffset"][0] + 12)))

    def fit_width(self):
        """As wide as the longest label needs (a comparison sets one width for all its timelines instead)."""
        self.setWidth(self.needed_width())

    def tickValues(self, minVal, maxVal, size):
        n = len(self.labels)
        if not n:
            return []
        minVal, maxVal = min(minVal, maxVal), max(minVal, maxVal)      # the lanes' axis is inverted
        lo, hi = max(0, int(np.floor(minVal))), min(n - 1, int(np.ceil(maxVal)))
        visible = max(1, hi - lo + 1)
        step = max(1, int(np.ceil(visible * 14 / max(size, 1))))      # keep labels >= 14 px apart
        return [(1, [i + 0.5 for i in range(lo, hi + 1, step)])]

    def tickStrings(self, values, scale, spacing):
        # pyqtgraph drops a label that does not fit the axis: elide long process names instead.
        fm = QtGui.QFontMetricsF(self.style.get("tickFont") or QtWidgets.QApplication.font())
        room = self.width() - self.style["tickTextOffset"][0] - 6
        out = []
        for v in values:
            i = int(v)
            text = self.labels[i] if 0 <= i < len(self.labels) else ""
            out.append(fm.elidedText(text, QtCore.Qt.ElideMiddle, room))
        return out


_GROUP_TITLES = {"main": "main process", "manager": "managers", "worker": "pool workers", "process": "processes",
                 "other": "other processes", "forkserver": "forkserver", "resource tracker": "resource tracker",
                 "objects": "synchronisation objects", "queues": "queues"}
#: Keys of rows no bar is drawn on (headers, counters rows): far below every lane key.
_NO_BARS = -(1 << 60)


def _header_key(i):
    return _NO_BARS - 2 * i


def _counter_key(key):
    """The key of the counters row under the lane ``key`` (a process's: positive, or a track's: negative)."""
    return _NO_BARS - 4 * abs(int(key)) - (1 if key > 0 else 3)


def layout_rows(d, tracks, show_counters, collapsed):
    """The rows of TimelineData ``d`` top to bottom, the counters drawn on some (row index -> counters) and the
    lane keys drawn on another's row (key -> row index, or None).  ``tracks``: with group headers, threads'
    sub-lanes and the objects' tracks (else the process lanes alone, a thread's bars on its process's lane);
    ``show_counters``: a CPU% and RSS row under each process; ``collapsed``: the groups whose rows are hidden."""
    if not tracks:
        rows = [Row(lane.pid, lane.label, "process", lane.role, pid=lane.pid) for lane in d.lanes]
        at = {lane.pid: i for i, lane in enumerate(d.lanes)}
        aliases = {t.pid: at[t.parent] for t in d.threads if t.parent in at}
        return rows, {}, aliases
    threads = {}
    for t in d.threads:
        threads.setdefault(t.parent, []).append(t)
    groups = []                 # (group name, title, [rows])
    for lane in d.lanes:
        g = lane.role
        if not groups or groups[-1][0] != g:
            groups.append((g, _GROUP_TITLES.get(g, g + "s"), []))
        rows = groups[-1][2]
        rows.append(Row(lane.pid, lane.label, "process", g, pid=lane.pid))
        for t in threads.get(lane.pid, ()):
            rows.append(Row(t.pid, "  ↳ " + t.label, "thread", g, pid=lane.pid))
        if show_counters and lane.pid in d.proc_counters:
            rows.append(Row(_counter_key(lane.pid), "  CPU % · RSS", "counters", g, pid=lane.pid))
    track_lanes = list(d.tracks)
    for i, tr in enumerate(track_lanes):
        g = tr.group
        if not groups or groups[-1][0] != g:
            groups.append((g, _GROUP_TITLES.get(g, g), []))
        label = tr.label if tr.kind == "object" else "  " + tr.label
        groups[-1][2].append(Row(tr.pid, label, tr.kind, g, uid=tr.uid))
        if tr.kind == "object":
            owner = tr
        last = i + 1 == len(track_lanes) or track_lanes[i + 1].kind == "object"
        if last and owner.pid in d.counters:    # its counters: a row of their own under its holder rows
            names = " · ".join(c.name for c in d.counters[owner.pid])
            groups[-1][2].append(Row(_counter_key(owner.pid), "  " + names, "counters", g, uid=owner.uid,
                                     pid=owner.pid))
    out, counters = [], {}
    for g, title, rows in groups:
        members = sum(1 for r in rows if r.kind in ("process", "object"))
        if members > 1 or g in ("objects", "queues"):
            mark = "▸" if g in collapsed else "▾"
            out.append(Row(_header_key(len(out)), "%s %s (%d)" % (mark, title, members), "header", g))
            if g in collapsed:
                continue
        for r in rows:
            if r.kind == "counters":
                counters[len(out)] = d.counters.get(r.pid, []) if r.uid else d.proc_counters.get(r.pid, [])
            out.append(r)
    return out, counters, None
