"""Pieces the views share: a table model over a list of rows with fixed columns, and the layout of a view
with a small tool bar above its content.  No logic of any view lives here."""
from PySide6 import QtCore, QtWidgets


class ColumnsModel(QtCore.QAbstractTableModel):
    """A read-only table model: ``COLUMNS`` (headers) and ``self.rows``; subclasses implement ``data``."""

    COLUMNS = ()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows = []

    def rowCount(self, parent=QtCore.QModelIndex()):
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QtCore.QModelIndex()):
        return len(self.COLUMNS)

    def headerData(self, section, orientation, role=QtCore.Qt.DisplayRole):
        if role == QtCore.Qt.DisplayRole and orientation == QtCore.Qt.Horizontal:
            return self.COLUMNS[section]
        return None


def with_bar(widget):
    """Lay ``widget`` out as a view: returns (its vertical layout, an empty tool-bar row at the top)."""
    lay = QtWidgets.QVBoxLayout(widget)
    lay.setContentsMargins(0, 0, 0, 0)
    bar = QtWidgets.QHBoxLayout()
    bar.setContentsMargins(6, 2, 6, 0)
    lay.addLayout(bar)
    return lay, bar
