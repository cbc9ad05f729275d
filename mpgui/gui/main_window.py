"""The main window: launcher and run history on the left, the timeline in the middle, CPU, processes,
contention, events and the run's output below, and a status bar with events recorded, dropped and elapsed
time.

It owns at most one RunSource (a live run or a saved one) and refreshes the views from its latest snapshot
on a timer (30 Hz at most), never per event.  Exports run in a thread pool.  The window title says what the
shown run ran (scenario, parameters, every start method its processes used), and so does the launcher for a
saved run.

The contention panel follows the timeline: a click on the timeline shows every object's state at that
moment, a wait clicked there shows who let it go, and its figures can be asked for the time range the
timeline shows (or one dragged on it, when the timeline offers ``sigRangeSelected``).

Comparisons open in windows of their own (``compare_view.CompareWindow``): the launcher's Compare runs the
scenario under several start methods (one comparison runs at a time, never beside a live run: they would
measure each other), and the history's Compare shows runs picked there.
"""
import os

from PySide6 import QtCore, QtGui, QtWidgets

from mpgui.labels import ordered_methods, params_text
from mpgui.scenarios import catalog
from core.trace.export import write_chrome, write_csv
from core.trace.store import RunFile

from . import theme, trace_dialog
from .compare_view import CompareWindow
from .contention_view import ContentionView
from .cpu_view import CpuView
from .events_view import EventLogView
from .launcher import LauncherPanel
from .process_view import ProcessView
from .runs_view import RunsView
from .runsource import RunSource
from .timeline import TimelineView
from .viewparts import in_background

REFRESH_MS = 33
FINAL_STATES = ("done", "failed", "cancelled", "cut short", "interrupted", "error")
APP_TITLE = "mpgui — multiprocessing lab"
#: The window title gives at most this many characters of a run's parameters.
TITLE_PARAMS_CHARS = 90


def run_title(meta, methods):
    """The window title for a run: what it ran, its parameters, every start method it used."""
    what = meta.get("scenario") or meta.get("title") or "run"
    params = params_text(meta.get("params") or {})
    if len(params) > TITLE_PARAMS_CHARS:
        params = params[:TITLE_PARAMS_CHARS - 1] + "…"
    parts = ["mpgui", what + (" (%s)" % params if params else "")]
    if methods:
        parts.append(", ".join(methods))
    return " — ".join(parts)


def run_methods(snap):
    """Every start method a run's processes used (or the run's own, or what its run file names)."""
    meta = snap.meta if snap is not None else {}
    named = [m.strip() for m in str(meta.get("start_methods") or "").split(",") if m.strip()]
    used = [p.method for p in (snap.procs if snap is not None else ()) if getattr(p, "method", "")]
    return ordered_methods(used + named + [meta.get("start_method") or ""])


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, home=None, settings=None):
        super().__init__()
        self.home = home
        self.settings = settings or QtCore.QSettings("mpgui", "mpgui")
        self.source = None
        self._shown_version = None
        self._jobs = []
        #: Comparison windows open, and the one whose runs go on (if any).
        self.compare_windows = []
        self.comparison = None
        self.setWindowTitle(APP_TITLE)
        self.resize(1400, 880)

        # left: launcher and history
        self.launcher = LauncherPanel(self.settings)
        self.launcher.sigRun.connect(self.start_run)
        self.launcher.sigCompare.connect(self.start_comparison)
        self.launcher.sigStop.connect(self.stop_run)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(self.launcher)
        scroll.setWidgetResizable(True)
        self.launcher_dock = QtWidgets.QDockWidget("Launcher")
        self.launcher_dock.setObjectName("launcherDock")
        self.launcher_dock.setWidget(scroll)
        self.addDockWidget(QtCore.Qt.LeftDockWidgetArea, self.launcher_dock)
        self.runs = RunsView(home)
        self.runs.sigOpen.connect(self.open_run)
        self.runs.sigCompare.connect(self.compare_runs)
        self.runs_dock = QtWidgets.QDockWidget("Runs")
        self.runs_dock.setObjectName("runsDock")
        self.runs_dock.setWidget(self.runs)
        self.addDockWidget(QtCore.Qt.LeftDockWidgetArea, self.runs_dock)

        # centre: timeline over tabs
        self.timeline = TimelineView()
        self.cpu = CpuView()
        self.cpu.link_x(self.timeline.plot, self.timeline.stop_following)   # one time axis for both
        self.processes = ProcessView()
        self.processes.sigMessage.connect(self.status_message)
        self.processes.sigSignal.connect(self.signal_process)
        self.contention = ContentionView()
        self.events = EventLogView()
        self.output = QtWidgets.QPlainTextEdit()
        self.output.setObjectName("runOutput")
        self.output.setReadOnly(True)
        self.output.setMaximumBlockCount(20000)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setObjectName("bottomTabs")
        self.tabs.addTab(self.cpu, "CPU")
        self.tabs.addTab(self.processes, "Processes")
        self.tabs.addTab(self.contention, "Contention")
        self.tabs.addTab(self.events, "Events")
        self.tabs.addTab(self.output, "Output")
        self.tabs.currentChanged.connect(lambda *_: self._refresh(force=True))
        self.split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        self.split.setObjectName("mainSplit")
        self.split.addWidget(self.timeline)
        self.split.addWidget(self.tabs)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        self.setCentralWidget(self.split)
        self._wire_contention()

        # status bar
        sb = self.statusBar()
        self.state_label = QtWidgets.QLabel("ready")
        self.events_label = QtWidgets.QLabel("events: 0")
        self.dropped_label = QtWidgets.QLabel("dropped: 0")
        self.elapsed_label = QtWidgets.QLabel("elapsed: 0.0 s")
        for w in (self.state_label, self.events_label, self.dropped_label, self.elapsed_label):
            w.setContentsMargins(8, 0, 8, 0)
            sb.addPermanentWidget(w)

        self._make_menus()
        self.resizeDocks([self.launcher_dock, self.runs_dock], [640, 240], QtCore.Qt.Vertical)
        self.resizeDocks([self.launcher_dock], [420], QtCore.Qt.Horizontal)
        self._restore()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._refresh)
        self.timer.start()
        self.runs.refresh()

    # -- the contention panel and the timeline ------------------------------------------------------------------
    def _wire_contention(self):
        """The panel and the timeline follow each other: the timeline's cursor (a click) replays the state at
        that moment, a range dragged on it (Shift) sets the figures' range, a wait clicked on it shows who let
        it go, and an object selected in either is selected in the other (the timeline then draws its
        "unblocked by" arrows)."""
        tl, panel = self.timeline, self.contention
        tl.sigCursor.connect(panel.set_cursor)
        tl.sigRangeSelected.connect(panel.set_range)
        panel.visible_button.clicked.connect(lambda: panel.set_range(*tl.vb.viewRange()[0]))
        tl.sigWaitSelected.connect(self._wait_selected)
        tl.sigObjectSelected.connect(panel.select_object)
        panel.sigObjectSelected.connect(self._panel_object_selected)

    def _wait_selected(self, wait):
        """A wait clicked on the timeline (a process lane's or an object track's): the panel shows who let it
        go and how long the handoff took."""
        if self.source is None:
            return
        self.contention.show_wait(wait["uid"], wait["pid"], wait["tid"], wait["t1"])
        self.tabs.setCurrentWidget(self.contention)

    def _panel_object_selected(self, uid):
        if self.timeline.selected_object != uid:
            self.timeline.select_object(uid)

    # -- menus ----------------------------------------------------------------------------------------------
    def _make_menus(self):
        m = self.menuBar().addMenu("&File")
        a = m.addAction("&Open run file…", self.choose_run_file)
        a.setShortcut(QtGui.QKeySequence.Open)
        t = m.addAction("&Trace a program…", self.choose_program)
        t.setShortcut(QtGui.QKeySequence("Ctrl+T"))
        exp = m.addMenu("&Export")
        exp.addAction("Timeline as PNG…", lambda: self.export_png(self.timeline.plot, "timeline"))
        exp.addAction("CPU plot as PNG…", lambda: self.export_png(self.cpu.plot, "cpu"))
        exp.addAction("Tables as CSV…", self.export_csv)
        exp.addAction("Perfetto / Chrome trace JSON…", self.export_chrome)
        m.addSeparator()
        q = m.addAction("&Quit", self.close)
        q.setShortcut(QtGui.QKeySequence.Quit)
        c = self.menuBar().addMenu("&Compare")
        a = c.addAction("Compare start &methods", self.launcher.compare_button.click)
        a.setToolTip("Run the launcher's scenario under each checked start method and compare them")
        c.addAction("Compare &selected runs", self.runs.compare_button.click)
        v = self.menuBar().addMenu("&View")
        v.addAction(self.launcher_dock.toggleViewAction())
        v.addAction(self.runs_dock.toggleViewAction())
        v.addAction("Fit timeline", self.timeline.fit)
        h = self.menuBar().addMenu("&Help")
        h.addAction("About mpgui", self._about)

    def _about(self):
        QtWidgets.QMessageBox.about(self, "About mpgui", "mpgui — a desktop lab for Python multiprocessing.\n\n"
                                    "%d scenarios; runs are traced by core, a drop-in for multiprocessing."
                                    % len(catalog()))

    # -- settings ----------------------------------------------------------------------------------------------
    def _restore(self):
        geo = self.settings.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        split = self.settings.value("window/split")
        if split is not None:
            self.split.restoreState(split)
        tab = self.settings.value("window/tab")
        if tab is not None:
            self.tabs.setCurrentIndex(int(tab))

    def _save(self):
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/split", self.split.saveState())
        self.settings.setValue("window/tab", self.tabs.currentIndex())
        self.settings.sync()

    def closeEvent(self, ev):
        self._save()
        self.timer.stop()
        if self.source is not None:
            self.source.close(wait=True)
        self.contention.close_jobs()
        for w in list(self.compare_windows):
            w.close()
        QtCore.QThreadPool.globalInstance().waitForDone(10000)
        super().closeEvent(ev)

    # -- runs -------------------------------------------------------------------------------------------------
    def _replace_source(self, source):
        if self.source is not None:
            self.source.close(wait=True)
            self.source.deleteLater()
        self.source = source
        self._shown_version = None
        self.timeline.clear()
        self.output.clear()
        self.launcher.show_lesson("")
        self.launcher.clear_run()
        self.setWindowTitle(APP_TITLE)
        source.sigStateChanged.connect(self._state_changed)
        source.sigMessage.connect(self.status_message)

    def start_run(self, scenario, params, method):
        if self.source is not None and self.source.controls_run or self.comparison is not None:
            return
        self._follow(RunSource.start_scenario(scenario, params, method, home=self.home, parent=self),
                     "%s (%s)" % (scenario.name, method))

    def choose_program(self):
        """File ▸ Trace a program…"""
        if self.source is not None and self.source.controls_run:
            QtWidgets.QMessageBox.information(self, "A run is in progress",
                                              "Stop the current run before tracing a program.")
            return
        target = trace_dialog.ask(self, self.settings)
        if target is not None:
            self.start_trace(target)

    def start_trace(self, target):
        """Run a user's program (a ``trace_dialog.TraceTarget``) traced, live like a scenario."""
        if self.source is not None and self.source.controls_run:
            return
        self._follow(RunSource.start_trace(target.command_args(), target.stem, "trace " + target.title,
                                           home=self.home, parent=self), target.title)

    def _follow(self, src, what):
        """Show a run this window just started, live; Stop (the launcher's) ends it."""
        self._replace_source(src)
        self.launcher.set_running(True)
        self.timeline.set_follow(True)
        self.state_label.setText("starting %s" % what)

    def signal_process(self, pid, kill):
        """Kill or terminate one process of the run shown, through the runner that owns its tree."""
        if self.source is None or not self.source.signal_process(pid, kill):
            self.status_message("Only a run started in this window can have its processes stopped.")
        else:
            self.status_message("Asked the runner to %s pid %d…" % ("kill" if kill else "terminate", pid))

    def stop_run(self):
        if self.comparison is not None:
            self.comparison.stop()
            self.state_label.setText("stopping the comparison…")
        elif self.source is not None and self.source.controls_run:
            self.source.stop()
            self.state_label.setText("stopping…")

    # -- comparisons ----------------------------------------------------------------------------------------
    def start_comparison(self, scenario, params, methods, repeat):
        """The launcher's Compare: the scenario under each of ``methods``, ``repeat`` times, in a window of its
        own that fills in as the runs finish."""
        if self.comparison is not None or (self.source is not None and self.source.controls_run):
            QtWidgets.QMessageBox.information(self, "A run is in progress",
                                              "Stop the current run or comparison first: runs side by side "
                                              "would measure each other.")
            return
        w = CompareWindow.for_scenario(scenario, params, methods, repeat, home=self.home)
        self.comparison = w
        w.sigDone.connect(lambda w=w: self._comparison_done(w))
        self.launcher.set_running(True)
        self.state_label.setText("comparing %s under %s" % (scenario.name, ", ".join(methods)))
        self._show_compare(w)

    def compare_runs(self, rows):
        """The history's Compare: runs picked there, side by side."""
        self._show_compare(CompareWindow.for_runs(rows, home=self.home))

    def _show_compare(self, w):
        w.sigOpenRun.connect(self.open_run)
        w.destroyed.connect(lambda *_, w=w: self.compare_windows.remove(w) if w in self.compare_windows else None)
        w.setAttribute(QtCore.Qt.WA_DeleteOnClose)
        self.compare_windows.append(w)
        w.show()
        w.raise_()

    def _comparison_done(self, w):
        if self.comparison is w:
            self.comparison = None
            self.launcher.set_running(False)
            self.state_label.setText("comparison ended")
        self.runs.refresh()

    def open_run(self, path):
        if self.source is not None and self.source.controls_run:
            QtWidgets.QMessageBox.information(self, "A run is in progress",
                                              "Stop the current run before opening another one.")
            return
        if not os.path.exists(path):
            self.status_message("Run file %s no longer exists." % path)
            return
        self._replace_source(RunSource.open_file(path, parent=self))
        self.state_label.setText("loading %s" % os.path.basename(path))

    def choose_run_file(self):
        start = self.settings.value("dirs/runs") or ""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open run file", start, "mpgui runs (*.mpgrun)")
        if path:
            self.settings.setValue("dirs/runs", os.path.dirname(path))
            self.open_run(path)

    def _state_changed(self, state):
        src = self.source
        if src is None:
            return
        self.state_label.setText(state)
        if state == "running" and not src.live:     # a run another runner is recording: follow it
            self.timeline.set_follow(True)
        if state in FINAL_STATES:
            self.launcher.set_running(False)
            self._refresh(force=True)
            snap = src.snapshot
            meta = snap.meta if snap is not None else {}
            result = meta.get("result") or {}
            if result.get("lesson"):
                self.launcher.show_lesson(result["lesson"])
            elif meta.get("error") or src.error:
                self.launcher.show_lesson(meta.get("error") or src.error, error=True)
            elif state == "failed" and meta.get("kind") == "trace":
                self.launcher.show_lesson("The program ended with exit code %s: what it printed is in the Output "
                                          "tab." % meta.get("exit_code"), error=True)
            elif state == "cancelled":
                self.launcher.show_lesson("Stopped. Everything recorded until then is kept.")
            if src.problems:
                self.status_message("This run file is damaged; showing what was valid. Skipped: %s"
                                    % "; ".join(src.problems))
            self.runs.refresh()
            if not src.live:
                self.timeline.fit()
                if snap is not None:
                    self.launcher.show_run(meta, run_methods(snap))

    # -- refresh (timer) ----------------------------------------------------------------------------------------
    def _refresh(self, force=False):
        src = self.source
        if src is None:
            return
        snap = src.snapshot
        if snap is None:
            self.launcher.set_progress(0, 0, 0.0, src.state)
            return
        if snap.version != self._shown_version or force:
            self._shown_version = snap.version
            self.setWindowTitle(run_title(snap.meta, run_methods(snap)))
            self.timeline.set_data(snap.timeline)
            tab = self.tabs.currentWidget()
            self.processes.set_procs(snap.procs, src.controls_run)
            self.cpu.show_run(snap)
            if tab is self.contention:
                self.contention.set_snapshot(snap, src, final=src.state in FINAL_STATES)
            if tab is self.events:
                self.events.refresh(src.model)
            if tab is self.output:
                self._show_output(snap)
            self.events_label.setText("events: %d" % snap.events)
            self.dropped_label.setText("dropped: %d" % snap.dropped)
            self.dropped_label.setStyleSheet("color: %s;" % theme.ERROR_TEXT if snap.dropped else "")
            self.elapsed_label.setText("elapsed: %.1f s" % snap.elapsed)
        done, total = snap.progress or (0, 0)
        self.launcher.set_progress(done, total, snap.elapsed, src.state)

    def _show_output(self, snap):
        lines = ["[%s] %s" % (kind, text) for t, kind, text in snap.logs]
        if self.output.blockCount() - 1 != len(lines):
            self.output.setPlainText("\n".join(lines))
            self.output.moveCursor(QtGui.QTextCursor.End)

    def status_message(self, text):
        self.statusBar().showMessage(text, 10000)

    # -- exports ------------------------------------------------------------------------------------------------
    def _ask_path(self, title, suggestion, filt, directory=False):
        start = os.path.join(self.settings.value("dirs/export") or os.path.expanduser("~"), suggestion)
        if directory:
            path = QtWidgets.QFileDialog.getExistingDirectory(self, title, os.path.dirname(start))
        else:
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, title, start, filt)
        if path:
            self.settings.setValue("dirs/export", os.path.dirname(path) if not directory else path)
        return path

    def _run_path(self):
        if self.source is None:
            self.status_message("Nothing to export: run a scenario or open a run first.")
            return None
        return self.source.path

    def export_png(self, widget, name):
        path = self._ask_path("Export %s as PNG" % name, "%s.png" % name, "PNG images (*.png)")
        if path:
            ok = widget.grab().save(path, "PNG")
            self.status_message(("Saved %s" % path) if ok else "Could not write %s." % path)

    def _background(self, fn):
        in_background(fn, self.status_message, lambda e: self.status_message("Export failed: %s" % e), self._jobs)

    def export_csv(self):
        run = self._run_path()
        if not run:
            return
        d = self._ask_path("Export tables as CSV into a folder", "", "", directory=True)
        if d:
            def work():
                with RunFile(run) as rf:
                    files = write_csv(rf.model(), d, rf.read_all()[0])
                return "Wrote %d CSV files to %s" % (len(files), d)
            self._background(work)

    def export_chrome(self):
        run = self._run_path()
        if not run:
            return
        path = self._ask_path("Export a Perfetto / Chrome trace", os.path.splitext(os.path.basename(run))[0] + ".json",
                              "Trace JSON (*.json)")
        if path:
            def work():
                with RunFile(run) as rf:
                    n = write_chrome(rf.model(), path)
                return "Wrote %s (%d trace events): open it in ui.perfetto.dev" % (path, n)
            self._background(work)
