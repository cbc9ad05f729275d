"""The run history: every run with its scenario, start methods (all of them, for a run that used several),
parameters, status and lesson; double-click to open.  Select two or more runs (or one run of a comparison)
and Compare shows them side by side.

The history (SQLite) is read off the Qt thread; the table is filled when it arrives (``sigRefreshed``)."""
import time

from PySide6 import QtCore, QtWidgets

from mpgui.labels import params_text
from mpgui.history import RunHistory

from .viewparts import in_background

COLUMNS = ("Started", "Scenario", "Methods", "Parameters", "Status", "Events", "Lesson")


def load_runs(home, limit=200):
    """The newest runs of the history at ``home`` (runs in a worker thread)."""
    h = RunHistory(home, readonly=True)
    try:
        return h.list(limit=limit)
    finally:
        h.close()


class RunsView(QtWidgets.QWidget):
    sigOpen = QtCore.Signal(str)
    sigCompare = QtCore.Signal(list)          # history rows to compare
    sigRefreshed = QtCore.Signal()

    def __init__(self, home=None, parent=None):
        super().__init__(parent)
        self.home = home
        self.runs = []
        self._jobs = []
        self._generation = 0
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("runsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.ExtendedSelection)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(lambda row, col: self._open(row))
        lay.addWidget(self.table)
        row = QtWidgets.QHBoxLayout()
        open_button = QtWidgets.QPushButton("Open")
        open_button.clicked.connect(lambda: self._open(self.table.currentRow()))
        self.compare_button = QtWidgets.QPushButton("Compare")
        self.compare_button.setEnabled(False)
        self.compare_button.setToolTip("Select two or more runs (Ctrl+click), or one run of a comparison, to see "
                                       "them side by side")
        self.compare_button.clicked.connect(self._compare)
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        row.addWidget(open_button)
        row.addWidget(self.compare_button)
        row.addWidget(refresh)
        row.addStretch(1)
        lay.addLayout(row)

    def refresh(self):
        """Reload the history in the background; the newest request wins."""
        self._generation += 1
        gen = self._generation
        in_background(lambda: load_runs(self.home), lambda runs: self._loaded(gen, runs, None),
                      lambda e: self._loaded(gen, [], e), self._jobs)

    def _loaded(self, gen, runs, error):
        if gen != self._generation:
            return
        self.runs = runs
        # an unreadable history (or none yet) must not take the app down: the table says why it is empty
        self.table.setToolTip("" if error is None else "The run history could not be read: %s" % error)
        self._fill()
        self.sigRefreshed.emit()

    def _fill(self):
        self.table.setRowCount(len(self.runs))
        for r, run in enumerate(self.runs):
            when = time.strftime("%m-%d %H:%M:%S", time.localtime(run["started"])) if run["started"] else ""
            values = (when, run["scenario"] or run["title"] or run["kind"],
                      ", ".join(run.get("methods") or []) or run["start_method"] or "", params_text(run["params"]),
                      run["status"], str(run["events"] or 0), run["lesson"] or "")
            for c, v in enumerate(values):
                item = QtWidgets.QTableWidgetItem(v)
                tip = run["path"] if COLUMNS[c] not in ("Parameters", "Lesson") else v
                if run.get("comparison") and c == 0:
                    tip += "\npart of comparison %s" % run["comparison"]
                item.setToolTip(tip)
                self.table.setItem(r, c, item)
        self._selection_changed()

    def _open(self, row):
        if 0 <= row < len(self.runs):
            self.sigOpen.emit(self.runs[row]["path"])

    def selected(self):
        """The history rows selected, in the table's order."""
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.runs[r] for r in rows if 0 <= r < len(self.runs)]

    def to_compare(self):
        """What Compare compares: the runs selected, or every run of the comparison the one selected run is
        part of (oldest first); [] when that is not two runs or more."""
        picked = self.selected()
        if len(picked) == 1 and picked[0].get("comparison"):
            cid = picked[0]["comparison"]
            picked = sorted((r for r in self.runs if r.get("comparison") == cid), key=lambda r: r["started"] or 0)
        return picked if len(picked) >= 2 else []

    def _selection_changed(self):
        self.compare_button.setEnabled(bool(self.to_compare()))

    def _compare(self):
        rows = self.to_compare()
        if rows:
            self.sigCompare.emit(rows)
