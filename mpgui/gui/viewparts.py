"""Pieces the views share: a table model over a list of rows with fixed columns, the layout of a view with a
small tool bar above its content, and running work off the Qt thread.  No logic of any view lives here."""
from PySide6 import QtCore, QtWidgets


class BackgroundJob(QtCore.QRunnable):
    """Runs ``fn()`` in Qt's thread pool; ``sigDone(result)`` or ``sigFailed(exception)`` arrive on the Qt thread.
    For what must not run on the Qt thread: disk (history, run files, exports) and anything slow."""

    class Signals(QtCore.QObject):
        sigDone = QtCore.Signal(object)
        sigFailed = QtCore.Signal(object)

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.signals = BackgroundJob.Signals()
        self.setAutoDelete(False)           # the caller keeps it until it reported

    def run(self):
        try:
            result = self.fn()
        except Exception as e:              # reported to the caller, who says it in one sentence
            self._report(self.signals.sigFailed, e)
        else:
            self._report(self.signals.sigDone, result)

    @staticmethod
    def _report(signal, value):
        try:
            signal.emit(value)
        except RuntimeError:                # the caller is gone (its window closed, the app quit): nobody to tell
            pass


def in_background(fn, on_done, on_failed, keep):
    """Start ``fn`` off the Qt thread; ``on_done(result)`` / ``on_failed(exc)`` on the Qt thread.  ``keep``: a
    list the job stays in until it reported (a QRunnable must outlive its run)."""
    job = BackgroundJob(fn)

    def done(result, job=job):
        if job in keep:
            keep.remove(job)
        on_done(result)

    def failed(exc, job=job):
        if job in keep:
            keep.remove(job)
        on_failed(exc)

    job.signals.sigDone.connect(done)
    job.signals.sigFailed.connect(failed)
    keep.append(job)
    QtCore.QThreadPool.globalInstance().start(job)
    return job


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
