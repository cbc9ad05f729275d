"""The run history: every run with its scenario, start method, status and lesson; double-click to open."""
import time

from PySide6 import QtCore, QtWidgets

from mpgui.history import RunHistory

COLUMNS = ("Started", "Scenario", "Method", "Status", "Events", "Lesson")


class RunsView(QtWidgets.QWidget):
    sigOpen = QtCore.Signal(str)

    def __init__(self, home=None, parent=None):
        super().__init__(parent)
        self.home = home
        self.runs = []
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("runsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(lambda row, col: self._open(row))
        lay.addWidget(self.table)
        row = QtWidgets.QHBoxLayout()
        open_button = QtWidgets.QPushButton("Open")
        open_button.clicked.connect(lambda: self._open(self.table.currentRow()))
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        row.addWidget(open_button)
        row.addWidget(refresh)
        row.addStretch(1)
        lay.addLayout(row)

    def refresh(self):
        try:
            h = RunHistory(self.home)
            self.runs = h.list(limit=200)
            h.close()
        except Exception as e:          # an unreadable history must not take the app down
            self.runs = []
            self.table.setToolTip("The run history could not be read: %s" % e)
        self.table.setRowCount(len(self.runs))
        for r, run in enumerate(self.runs):
            when = time.strftime("%m-%d %H:%M:%S", time.localtime(run["started"])) if run["started"] else ""
            values = (when, run["scenario"] or run["title"] or run["kind"], run["start_method"] or "",
                      run["status"], str(run["events"] or 0), run["lesson"] or "")
            for c, v in enumerate(values):
                item = QtWidgets.QTableWidgetItem(v)
                item.setToolTip(run["path"] if c < 5 else v)
                self.table.setItem(r, c, item)

    def _open(self, row):
        if 0 <= row < len(self.runs):
            self.sigOpen.emit(self.runs[row]["path"])
