"""The event log: every recorded event, filterable by process, object and kind.

A virtual table over the model's event array (a million rows cost nothing until they are scrolled to);
filters are numpy masks, recomputed when the filters or the data change.  Each event reads in words from its
kind's declaration in ``core.trace.schema``: its object, and its payload through the kind's template.
"""
import numpy as np
from PySide6 import QtCore, QtWidgets

from core.trace import schema

from .viewparts import ColumnsModel, with_bar

COLUMNS = ("Time", "PID", "Thread", "Event", "Object", "Details")


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


class EventLogView(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay, bar = with_bar(self)
        self.proc_box = QtWidgets.QComboBox()
        self.obj_box = QtWidgets.QComboBox()
        self.kind_box = QtWidgets.QComboBox()
        for label, box in (("Process", self.proc_box), ("Object", self.obj_box), ("Event", self.kind_box)):
            bar.addWidget(QtWidgets.QLabel(label))
            box.setMinimumContentsLength(14)
            box.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
            box.currentIndexChanged.connect(self._filter_changed)
            bar.addWidget(box)
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
        self.refresh(self._source)

    def refresh(self, model):
        """Re-filter if the model gained events (call when the tab is visible)."""
        self._source = model
        if model is None or model.events is None:
            self.model.set_rows(None, np.zeros(0, np.int64), 0, {}, {}, {})
            self.count.setText("")
            return
        with model.lock:
            ev = model.events.view()
            n = len(ev)
            if n == self._n:
                return
            names = {uid: o.get("name", "") for uid, o in model.objects.items()}
            strings = dict(model.strings)
            procnames = {p.pid: p.name for p in model.procs.values()}
            t0 = model.t0
        self._n = n
        pids = set(np.unique(ev["pid"]).tolist()) if n else set()
        uids = set(np.unique(ev["uid"]).tolist()) & set(names) if n else set()
        kinds = set(np.unique(ev["kind"]).tolist()) if n else set()
        if pids != self._choices[0]:
            self._fill(self.proc_box, [(p, "%d %s" % (p, procnames.get(p, ""))) for p in sorted(pids)],
                       self._filters[0])
        if uids != self._choices[1]:
            self._fill(self.obj_box, sorted(((u, names[u]) for u in uids), key=lambda x: x[1]), self._filters[1])
        if kinds != self._choices[2]:
            self._fill(self.kind_box, [(k, schema.title(k)) for k in sorted(kinds)], self._filters[2])
        self._choices = (pids, uids, kinds)
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
        self.model.set_rows(ev, rows, t0, names, strings, procnames)
        self.count.setText("%d of %d events" % (len(rows), n))
        if at_end:
            self.table.scrollToBottom()
