"""The run's processes: pid, role, start method, state, CPU%, RSS, threads, start latency, exit code or
signal; sortable; exited processes stay listed.  A live process can be killed or terminated from its context
menu (to watch a Pool notice and recover)."""
from PySide6 import QtCore, QtGui, QtWidgets

from . import theme
from .viewparts import ColumnsModel

COLUMNS = ("PID", "Role", "Name", "Start method", "State", "CPU %", "RSS", "Threads", "Start latency", "Exit")


def fmt_bytes(n):
    if not n:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return "%.0f %s" % (n, unit) if unit == "B" else "%.1f %s" % (n, unit)
        n /= 1024.0


class ProcessModel(ColumnsModel):
    COLUMNS = COLUMNS

    def set_procs(self, procs):
        pids_before = [p.pid for p in self.rows]
        self.rows = list(procs)
        if pids_before == [p.pid for p in self.rows]:
            if self.rows:
                self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS) - 1))
        else:
            self.beginResetModel()
            self.endResetModel()

    def _values(self, p):
        lat = p.start_latency
        return (p.pid, p.role, p.name, p.method or "—", p.state, p.cpu if p.state == "running" else 0.0, p.rss,
                p.threads, lat / 1e6 if lat is not None else None, p.exit_text())

    def data(self, index, role=QtCore.Qt.DisplayRole):
        if not index.isValid():
            return None
        p = self.rows[index.row()]
        col = index.column()
        v = self._values(p)[col]
        if role == QtCore.Qt.DisplayRole:
            if col == 5:
                return "%.0f" % v if p.state == "running" else ""
            if col == 6:
                return fmt_bytes(v) if p.state == "running" or v else ""
            if col == 7:
                return str(v) if v else ""
            if col == 8:
                return "%.1f ms" % v if v is not None else ""
            return str(v)
        if role == QtCore.Qt.UserRole:           # sort key
            return -1 if v is None else v
        if role == QtCore.Qt.ForegroundRole:
            if col == 1:
                return QtGui.QColor(theme.ROLE_COLORS.get(p.role, theme.MUTED_TEXT))
            if p.state in ("exited", "gone"):
                # red for an end nobody asked for; a pool stopping its workers, or recycling one, is normal
                planned = p.exit_reason in ("stopped", "recycled")
                if col == 9 and p.exitcode not in (None, 0) and not planned:
                    return QtGui.QColor(theme.ERROR_TEXT)
                return QtGui.QColor(theme.MUTED_TEXT)
        if role == QtCore.Qt.TextAlignmentRole and col in (0, 5, 6, 7, 8):
            return int(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
        if role == QtCore.Qt.ToolTipRole:
            return "%s %s (pid %d, parent %d)" % (p.role, p.name, p.pid, p.ppid)
        return None


class ProcessView(QtWidgets.QWidget):
    """The process table.  Killing or terminating a process is asked of the run's runner, which owns the tree
    (``sigSignal``): the app never signals a process itself."""

    sigMessage = QtCore.Signal(str)
    sigSignal = QtCore.Signal(int, bool)        # pid, kill (True: SIGKILL, False: SIGTERM)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.live = False
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.model = ProcessModel(self)
        self.proxy = QtCore.QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(QtCore.Qt.UserRole)
        self.table = QtWidgets.QTableView()
        self.table.setObjectName("processTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, QtCore.Qt.AscendingOrder)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setContextMenuPolicy(QtCore.Qt.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._menu)
        lay.addWidget(self.table)

    def set_procs(self, procs, live):
        self.live = live
        self.model.set_procs(procs)

    def pid_at(self, row):
        src = self.proxy.mapToSource(self.proxy.index(row, 0))
        return self.model.rows[src.row()]

    def _menu(self, pos):
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        p = self.pid_at(index.row())
        menu = QtWidgets.QMenu(self)
        alive = self.live and p.state == "running" and p.role not in ("main",)
        kill = menu.addAction("Kill %s (SIGKILL)" % p.name)
        term = menu.addAction("Terminate %s (SIGTERM)" % p.name)
        for a in (kill, term):
            a.setEnabled(alive)
        if not alive:
            menu.addAction("(only running processes of a live run; stop the main process with Stop)").setEnabled(False)
        chosen = menu.exec(self.table.viewport().mapToGlobal(pos))
        if chosen in (kill, term):
            self.signal_process(p.pid, kill=chosen is kill)

    def signal_process(self, pid, kill=True):
        """Ask for ``pid`` to be killed (or terminated): the main window passes it to the runner."""
        self.sigSignal.emit(int(pid), bool(kill))
