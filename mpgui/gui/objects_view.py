"""Contention per lock-like object: acquisitions, how many had to wait, wait and hold totals and maxima."""
from PySide6 import QtCore, QtWidgets

COLUMNS = ("Object", "Kind", "Acquired", "Waited", "Timeouts", "Total wait", "Max wait", "Total hold", "Max hold")


def fmt_ns(ns):
    if ns >= 1e9:
        return "%.2f s" % (ns / 1e9)
    if ns >= 1e6:
        return "%.1f ms" % (ns / 1e6)
    return "%.0f µs" % (ns / 1e3)


class ObjectsView(QtWidgets.QTableWidget):
    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("objectsTable")
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.setSortingEnabled(True)
        self.horizontalHeader().setStretchLastSection(True)
        self._last = None

    def set_rows(self, contention):
        key = [(c["name"], c["acquired"], c["contended"]) for c in contention]
        if key == self._last:
            return
        self._last = key
        self.setSortingEnabled(False)
        self.setRowCount(len(contention))
        for r, c in enumerate(contention):
            values = (c["name"], c["kind"], c["acquired"], c["contended"], c["timeouts"], c["wait_total_ns"],
                      c["wait_max_ns"], c["hold_total_ns"], c["hold_max_ns"])
            for col, v in enumerate(values):
                item = QtWidgets.QTableWidgetItem()
                if col >= 5:
                    item.setData(QtCore.Qt.DisplayRole, fmt_ns(v))
                    item.setData(QtCore.Qt.UserRole, v)
                else:
                    item.setData(QtCore.Qt.DisplayRole, v)
                if col >= 2:
                    item.setTextAlignment(int(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter))
                self.setItem(r, col, item)
        self.setSortingEnabled(True)
