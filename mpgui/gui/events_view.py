"""The event log: the recorded events, filterable by process, object, kind and time.

The events are not in memory: they stay in the run file.  When the filters change (or, live, when the run
grew), a worker thread opens the file, reads the chunks whose time range (the chunks table's t0/t1) meets the
one asked for, and keeps the matching events, at most ``MAX_ROWS`` of them (the first ones of a finished
run, the newest of a live one, and the count says so); a live run is read on from where the last reading
stopped.  The table is a virtual view of that array.  The Qt thread never reads the file, and takes nothing
from the live model but copies of its names (each one step under the interpreter's lock).  Each event reads
in words from its kind's declaration in ``core.trace.schema``: its object, and its payload through the
kind's template.

A model that kept its events in memory (``RunModel(keep_events=True)``: tests, small tools) is shown from
there.
"""
import numpy as np
from PySide6 import QtCore, QtWidgets

from core.trace import schema
from core.trace.arrays import EVENT_DTYPE
from core.trace.store import RunFile

from .viewparts import ColumnsModel, in_background, with_bar

COLUMNS = ("Time", "PID", "Thread", "Event", "Object", "Details")
#: The most events the log holds at once (48 bytes each).
MAX_ROWS = 200_000
#: Time windows offered, in seconds back from the newest event (None: the whole run).
WINDOWS = (("Whole run", None), ("Last 10 s", 10.0), ("Last 1 s", 1.0))


class EventModel(ColumnsModel):
    COLUMNS = COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self.events = None
        self.rows = np.zeros(0, np.int64)
        self.t0 = 0
        self.names = {}
        self.strings = {}
        self.procnames = {}

    def set_rows(self, events, rows, t0, names, strings, procnames):
        self.beginResetModel()
        self.events, self.rows, self.t0 = events, rows, t0
        self.names, self.strings, self.procnames = names, strings, procnames
        self.endResetModel()

    def data(self, index, role=QtCore.Qt.DisplayRole):
        if role not in (QtCore.Qt.DisplayRole, QtCore.Qt.ToolTipRole) or not index.isValid():
            return None
        t, uid, a, b, kind, c, pid, tid = self.events[self.rows[index.row()]].tolist()
        col = index.column()
        if col == 0:
            return "%.6f" % ((t - self.t0) / 1e9)
        if col == 1:
            return "%d %s" % (pid, self.procnames.get(pid, ""))
        if col == 2:
            return str(tid)
        if col == 3:
            return schema.title(kind)
        if col == 4:
            return schema.subject_name(kind, uid, self.names, self.strings)
        return schema.describe(kind, a, b, c, self.strings)


class Reading:
    """What one reading of the run file asks for, and what it found so far (owned by the worker while it
    reads, then handed to the Qt thread)."""

    def __init__(self, path, filters, t_from, newest, generation):
        self.path = path
        self.filters = filters            # (pid, uid, kind), None for any
        self.t_from = t_from              # ns, or None
        self.newest = newest              # keep the newest rows (live) rather than the first
        self.generation = generation
        self.events = np.zeros(0, EVENT_DTYPE)
        self.matched = 0                  # matching events seen, kept or not
        self.after = 0                    # the last chunk id read
        self.problems = []

    def read_on(self):
        """Read the chunks after the last one read; returns self."""
        with RunFile(self.path) as rf:
            index = rf.chunk_index(after=self.after)
            wanted = [r for r in index if self.t_from is None or r[3] >= self.t_from]
            found = []
            for cid, _, t0, _ in wanted:
                if not self.newest and self._full(found) and t0 > self._last_kept(found):
                    continue                       # a finished run's first rows are in: skip what comes after
                for ev in rf.iter_chunks(ids=[cid]):
                    found.append(self._match(ev))
                if self.newest and sum(len(f) for f in found) > 2 * MAX_ROWS:
                    found = [self._trim(found)]
            self.events = self._trim([self.events] + found)
            if index:
                self.after = index[-1][0]
            self.problems = list(rf.problems)
        return self

    def _full(self, found):
        return len(self.events) + sum(len(f) for f in found) >= MAX_ROWS

    def _last_kept(self, found):
        times = [int(f["t"].max()) for f in [self.events] + found if len(f)]
        return max(times) if times else -1

    def _match(self, ev):
        pid, uid, kind = self.filters
        mask = np.ones(len(ev), bool)
        if pid is not None:
            mask &= ev["pid"] == pid
        if uid is not None:
            mask &= ev["uid"] == np.uint64(uid)
        if kind is not None:
            mask &= ev["kind"] == kind
        if self.t_from is not None:
            mask &= ev["t"] >= self.t_from
        found = ev[mask]
        self.matched += len(found)
        return found

    def _trim(self, parts):
        """The kept rows of ``parts``, in time order: the newest or the first ``MAX_ROWS``."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return np.zeros(0, EVENT_DTYPE)
        rows = np.concatenate(parts)
        rows = rows[np.argsort(rows["t"], kind="stable")]
        return rows[-MAX_ROWS:] if self.newest else rows[:MAX_ROWS]


class EventLogView(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay, bar = with_bar(self)
        self.proc_box = QtWidgets.QComboBox()
        self.obj_box = QtWidgets.QComboBox()
        self.kind_box = QtWidgets.QComboBox()
        self.time_box = QtWidgets.QComboBox()
        for label, box in (("Process", self.proc_box), ("Object", self.obj_box), ("Event", self.kind_box)):
            bar.addWidget(QtWidgets.QLabel(label))
            box.setMinimumContentsLength(14)
            box.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
            box.currentIndexChanged.connect(self._filter_changed)
            bar.addWidget(box)
        for label, secs in WINDOWS:
            self.time_box.addItem(label, secs)
        self.time_box.currentIndexChanged.connect(self._filter_changed)
        bar.addWidget(QtWidgets.QLabel("Time"))
        bar.addWidget(self.time_box)
        self.count = QtWidgets.QLabel()
        self.count.setObjectName("muted")
        bar.addStretch(1)
        bar.addWidget(self.count)
        self.model = EventModel(self)
        self.table = QtWidgets.QTableView()
        self.table.setObjectName("eventTable")
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setAlternatingRowColors(True)
        for col, width in enumerate((90, 170, 70, 120, 160)):
            self.table.setColumnWidth(col, width)
        lay.addWidget(self.table)
        self._source = None
        self._n = -1
        self._filters = (None, None, None)
        self._choices = (set(), set(), set())
        self._jobs = []
        self._generation = 0
        self._reading = None              # the Reading shown (or being extended)
        self._busy = False

    def _fill(self, box, items, current):
        box.blockSignals(True)
        box.clear()
        box.addItem("all", None)
        for value, label in items:
            box.addItem(label, value)
        idx = box.findData(current) if current is not None else 0
        box.setCurrentIndex(max(idx, 0))
        box.blockSignals(False)

    def _filter_changed(self, *_):
        self._filters = (self.proc_box.currentData(), self.obj_box.currentData(), self.kind_box.currentData())
        self._n = -1
        self._reading = None
        self._generation += 1
        self.refresh(self._source)

    def refresh(self, model):
        """Show ``model``'s events as filtered (call when the tab is visible and the model changed)."""
        if model is not self._source:
            self._reading = None
            self._generation += 1
        self._source = model
        if model is None:
            self.model.set_rows(None, np.zeros(0, np.int64), 0, {}, {}, {})
            self.count.setText("")
            return
        # copies of the model's names, each one step (the reader thread replaces, never mutates, them)
        names = {uid: o.get("name", "") for uid, o in dict(model.objects).items()}
        strings = dict(model.strings)
        procnames = {pid: p.name for pid, p in dict(model.procs).items()}
        seen = model.events_seen
        if seen == self._n:
            return
        if model.events is not None:
            self._n = seen
            self._show_kept(model, names, strings, procnames)
            return
        kinds = set(model.kind_counts())
        self._update_choices(set(procnames), set(names), kinds, names, procnames)
        if self._busy or model.path is None:
            return                     # a reading is under way: the next refresh reads on
        self._n = seen
        reading = self._reading
        if reading is None or reading.generation != self._generation:
            secs = self.time_box.currentData()
            t_from = None if secs is None or model.t_last is None else model.t_last - int(secs * 1e9)
            live = model.meta.get("status") == "running"
            reading = Reading(model.path, self._filters, t_from, live, self._generation)
        self._busy = True
        in_background(reading.read_on, lambda r: self._read(r, names, strings, procnames, model.t0),
                      self._failed, self._jobs)

    def _read(self, reading, names, strings, procnames, t0):
        self._busy = False
        if reading.generation != self._generation:
            self.refresh(self._source)              # the filters changed meanwhile: read again
            return
        self._reading = reading
        at_end = self.table.verticalScrollBar().value() >= self.table.verticalScrollBar().maximum() - 2
        self.model.set_rows(reading.events, np.arange(len(reading.events)), t0, names, strings, procnames)
        shown = len(reading.events)
        total = self._source.events_seen if self._source is not None else shown
        if shown >= MAX_ROWS:
            self.count.setText("the %s %d matching events of %d (narrow the filters or the time to see others)"
                               % ("newest" if reading.newest else "first", shown, total))
        else:
            self.count.setText("%d of %d events" % (shown, total))
        if self._n != (self._source.events_seen if self._source is not None else self._n):
            QtCore.QTimer.singleShot(0, lambda: self.refresh(self._source))    # it grew while we read
        if at_end and reading.newest:
            self.table.scrollToBottom()

    def _failed(self, exc):
        self._busy = False
        self.count.setText("The events could not be read (%s): open the run file again."
                           % (str(exc).splitlines() or [exc.__class__.__name__])[0])

    def _update_choices(self, pids, uids, kinds, names, procnames):
        uids &= set(names)
        if pids != self._choices[0]:
            self._fill(self.proc_box, [(p, "%d %s" % (p, procnames.get(p, ""))) for p in sorted(pids)],
                       self._filters[0])
        if uids != self._choices[1]:
            self._fill(self.obj_box, sorted(((u, names[u]) for u in uids), key=lambda x: x[1]), self._filters[1])
        if kinds != self._choices[2]:
            self._fill(self.kind_box, [(k, schema.title(k)) for k in sorted(kinds)], self._filters[2])
        self._choices = (pids, uids, kinds)

    def _show_kept(self, model, names, strings, procnames):
        """A model that kept its events: filter them here (they are few)."""
        with model.lock:
            ev = model.events.view()
        n = len(ev)
        pids = set(np.unique(ev["pid"]).tolist()) if n else set()
        uids = set(np.unique(ev["uid"]).tolist()) if n else set()
        kinds = set(np.unique(ev["kind"]).tolist()) if n else set()
        self._update_choices(pids, uids, kinds, names, procnames)
        mask = np.ones(n, bool)
        pid, uid, kind = self._filters
        if pid is not None:
            mask &= ev["pid"] == pid
        if uid is not None:
            mask &= ev["uid"] == uid
        if kind is not None:
            mask &= ev["kind"] == kind
        rows = np.nonzero(mask)[0]
        at_end = self.table.verticalScrollBar().value() >= self.table.verticalScrollBar().maximum() - 2
        self.model.set_rows(ev, rows, model.t0, names, strings, procnames)
        self.count.setText("%d of %d events" % (len(rows), n))
        if at_end:
            self.table.scrollToBottom()
