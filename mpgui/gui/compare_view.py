"""The comparison view: runs stacked, each with its own lanes, on one time axis, and their figures side by side.

A comparison is a scenario run under several start methods, N times each (the launcher's Compare: the app
starts ``main.py compare SCENARIO ... --control-stdin``, which runs them one after another and says on stdout
when each starts and ends), or runs picked in the history.  Runs appear as they finish; Stop cancels the run
going on and the rest.

Each run is drawn by the app's own timeline widget (``timeline.TimelineView``: ``set_data`` with
``timeline_data.build(model)``, its ViewBox ``vb`` for the shared axis), one per run.  The views pan and
zoom together: each run is aligned at its start (time 0 of its own timeline), or at its first pool task;
a view shows its run's own clock, shifted by that offset.  Below them: each group's figures (a start
method's runs, or runs of one configuration) as mean ± sd [min..max], the differences in words with their
uncertainty, every run's figures, and what differs between the runs' parameters (``mpgui.compare``).

Run files are read off the Qt thread; the Qt thread only builds widgets.  Nothing here runs a workload or
computes a figure: the command runs the runs, ``mpgui.compare`` computes.
"""
import json
import os

from PySide6 import QtCore, QtWidgets

from mpgui import compare
from mpgui.program import self_command

from . import timeline_data
from .timeline import TimelineView
from .viewparts import in_background

#: Height of one process lane in a comparison's timelines, and what a timeline needs besides its lanes (its
#: tool bar, time axis and details line).
LANE_PX = 18
TIMELINE_CHROME_PX = 92
#: How the runs are aligned on the shared axis.
ALIGN_START, ALIGN_FIRST_TASK = "run start", "first task"
#: Which runs get a timeline: every run, or the one with the median makespan of each group.
SHOW_ALL, SHOW_ONE = "every run", "one run per group (median makespan)"


def load_run(path, row=None):
    """What the view needs of a run (in a worker thread): its figures and its timeline's data."""
    run, model = compare.read_run(path, row)
    return run, timeline_data.build(model), len(model.processes_table())


class ComparisonSource(QtCore.QObject):
    """``main.py compare SCENARIO ... --control-stdin`` in a QProcess: when each run starts and ends, and Stop."""

    sigRunStarted = QtCore.Signal(dict)
    sigRunFinished = QtCore.Signal(dict)
    sigFinished = QtCore.Signal(int, str)         # exit code, the command's last sentence ("" if none)
    sigMessage = QtCore.Signal(str)

    def __init__(self, scenario, params, methods, repeat, home=None, parent=None):
        super().__init__(parent)
        self.scenario, self.params, self.methods, self.repeat = scenario, dict(params), list(methods), repeat
        self.comparison = None
        self.total = len(self.methods) * repeat
        self._buffer = b""
        self._stderr = []
        self.done = False
        args = ["compare", scenario.name, "--methods", ",".join(self.methods), "--repeat", str(repeat)]
        for k, v in self.params.items():
            if k == "methods" and any(p.name == "methods" for p in scenario.params):
                continue                          # compare runs one method a run: it sets this one itself
            args += ["--set", "%s=%s" % (k, str(v).lower() if isinstance(v, bool) else v)]
        cmd = self_command(*args, "--quiet", "--control-stdin")
        self.process = QtCore.QProcess(self)
        env = QtCore.QProcessEnvironment.systemEnvironment()
        if home:
            env.insert("MPGUI_HOME", home)
        env.remove("QT_QPA_PLATFORM")
        self.process.setProcessEnvironment(env)
        self.process.readyReadStandardOutput.connect(self._on_stdout)
        self.process.readyReadStandardError.connect(self._on_stderr)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self.process.start(cmd[0], cmd[1:])

    @property
    def running(self):
        return not self.done

    def stop(self):
        """Cancel the run going on and every run not started yet."""
        if self.process.state() != QtCore.QProcess.NotRunning:
            self.process.write(b"cancel\n")
            self.process.waitForBytesWritten(1000)

    def close(self, wait=True):
        """Stop (closing stdin cancels too) and, if ``wait``, wait for the command to end."""
        if self.process.state() != QtCore.QProcess.NotRunning:
            self.process.closeWriteChannel()
            if wait and not self.process.waitForFinished(10_000):
                self.process.kill()
                self.process.waitForFinished(2000)

    def _on_stdout(self):
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            try:
                event = json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                continue                            # the table printed at the end
            if not isinstance(event, dict) or "compare" not in event:
                continue
            self.comparison = event.get("comparison") or self.comparison
            (self.sigRunStarted if event["compare"] == "started" else self.sigRunFinished).emit(event)

    def _on_stderr(self):
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self._stderr.append(line)
                if line.startswith("mpgui:"):
                    self.sigMessage.emit(line[len("mpgui:"):].strip())
        del self._stderr[:-50]

    def last_sentence(self):
        said = [line for line in self._stderr if line.startswith("mpgui:")]
        return said[-1][len("mpgui:"):].strip() if said else ""

    def _on_finished(self, code, _status):
        self._on_stdout()
        self._on_stderr()
        self.done = True
        self.sigFinished.emit(code, self.last_sentence())

    def _on_error(self, err):
        if err == QtCore.QProcess.FailedToStart:
            self.done = True
            self.sigFinished.emit(-1, "Could not start the comparison (%s): check the installation."
                                  % self.process.program())


def share_label_width(views):
    """One label column for all ``views`` (timelines), as wide as the longest label of any needs: their time
    axes line up, and no lane's name is elided."""
    width = max([view.axis.needed_width() for view in views] + [0])
    for view in views:
        view.axis.setWidth(width)
    return width


class RunHeader(QtWidgets.QLabel):
    """The line above a run's timeline: what it ran and its figures; double-click opens the run alone."""

    sigOpen = QtCore.Signal(str)

    def __init__(self, text, path):
        super().__init__(text)
        self.path = path
        self.setObjectName("runHeader")
        self.setToolTip("%s\nDouble-click to open this run alone." % path)
        self.setContentsMargins(6, 2, 6, 2)
        self.setStyleSheet("background: #e8ecf1; font-weight: 600;")

    def mouseDoubleClickEvent(self, ev):
        self.sigOpen.emit(self.path)


def _table(headers, rows, tips=None, bold=None):
    """A read-only QTableWidget: ``rows`` of texts, optional tooltips and cells to show in bold."""
    t = QtWidgets.QTableWidget(len(rows), len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().hide()
    t.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
    t.setSelectionMode(QtWidgets.QAbstractItemView.NoSelection)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QtWidgets.QTableWidgetItem(text)
            if tips and tips.get((r, c)):
                item.setToolTip(tips[(r, c)])
            if bold and (r, c) in bold:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            t.setItem(r, c, item)
    t.resizeColumnsToContents()
    return t


class CompareView(QtWidgets.QWidget):
    """The runs of a comparison: stacked timelines on one axis, and tables of their figures."""

    sigOpenRun = QtCore.Signal(str)           # a run file to open alone in the main window
    sigStop = QtCore.Signal()

    def __init__(self, title="", by_method=True, parent=None):
        super().__init__(parent)
        self.by_method = by_method            # group the runs by start method (else by configuration)
        self.methods = []                     # the group order, for a comparison of start methods
        self.runs = []                        # RunFigures, in the order of the comparison
        self._order = []                      # each run's place in the comparison
        self._data = {}                       # path -> (timeline data, lanes)
        self.timelines = []                   # (RunFigures, TimelineView) shown, top to bottom
        self.align = ALIGN_START
        self.show_mode = SHOW_ALL
        self._syncing = False
        self._range = None                    # the shared x range, in aligned time

        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        bar = QtWidgets.QHBoxLayout()
        self.title = QtWidgets.QLabel(title)
        self.title.setObjectName("compareTitle")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        bar.addWidget(self.title, 1)
        bar.addWidget(QtWidgets.QLabel("Align at"))
        self.align_box = QtWidgets.QComboBox()
        self.align_box.addItems([ALIGN_START, ALIGN_FIRST_TASK])
        self.align_box.setToolTip("Line the runs up at their start, or at their first pool task (a run without "
                                  "one: its first process started)")
        self.align_box.currentTextChanged.connect(self.set_align)
        bar.addWidget(self.align_box)
        bar.addWidget(QtWidgets.QLabel("Timelines"))
        self.show_box = QtWidgets.QComboBox()
        self.show_box.addItems([SHOW_ALL, SHOW_ONE])
        self.show_box.currentTextChanged.connect(self.set_show)
        bar.addWidget(self.show_box)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setObjectName("stop")
        self.stop_button.setToolTip("Cancel the run going on and the runs not started yet")
        self.stop_button.clicked.connect(self.sigStop.emit)
        self.stop_button.hide()
        bar.addWidget(self.stop_button)
        lay.addLayout(bar)
        self.status = QtWidgets.QLabel("")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

        self.split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        self.lanes_box = QtWidgets.QWidget()
        self.lanes_layout = QtWidgets.QVBoxLayout(self.lanes_box)
        self.lanes_layout.setContentsMargins(0, 0, 0, 0)
        self.lanes_layout.setSpacing(6)
        self.lanes_layout.addStretch(1)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.lanes_box)
        self.split.addWidget(self.scroll)
        self.tabs = QtWidgets.QTabWidget()
        self.groups_page = QtWidgets.QWidget()
        gl = QtWidgets.QHBoxLayout(self.groups_page)       # the figures, and beside them the differences
        gl.setContentsMargins(0, 0, 0, 0)
        self.groups_table = _table(["figure"], [])
        gl.addWidget(self.groups_table, 2)
        self.differences = QtWidgets.QLabel("")
        self.differences.setObjectName("lesson")
        self.differences.setWordWrap(True)
        self.differences.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.differences.setAlignment(QtCore.Qt.AlignTop | QtCore.Qt.AlignLeft)
        self.differences.setMinimumWidth(280)
        self.differences.hide()
        gl.addWidget(self.differences, 1)
        self.tabs.addTab(self.groups_page, "Figures")
        self.runs_table = _table(["run"], [])
        self.runs_table.cellDoubleClicked.connect(self._open_row)
        self.tabs.addTab(self.runs_table, "Every run")
        self.params_table = _table(["parameter"], [])
        self.tabs.addTab(self.params_table, "What differs")
        self.split.addWidget(self.tabs)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        self.split.setSizes([620, 330])       # the timelines first; the tables below
        lay.addWidget(self.split, 1)

    # -- runs ---------------------------------------------------------------------------------------------------
    def add_run(self, run, data, lanes, place=None):
        """Add a finished run (its ``RunFigures``, its timeline data and its number of lanes) at ``place`` in
        the comparison's order (default: after the others)."""
        place = len(self._order) if place is None else place
        at = sum(1 for p in self._order if p <= place)
        self._order.insert(at, place)
        self.runs.insert(at, run)
        self._data[run.path] = (data, lanes)
        self._rebuild()

    def groups(self):
        if self.by_method:
            return compare.group_by_method([r for r in self.runs if r.status == "done"] or self.runs, self.methods)
        return compare.group_by_config(self.runs)

    def _shown_runs(self):
        if self.show_mode == SHOW_ALL:
            return list(self.runs)
        out = []
        for g in self.groups():
            key = "makespan_s" if all(r.figures.get("makespan_s") is not None for r in g.runs) else "duration_s"
            ranked = sorted(g.runs, key=lambda r: r.figures.get(key) or 0.0)
            out.append(ranked[(len(ranked) - 1) // 2])
        return out

    def _label_of(self, run):
        groups = self.groups()
        g = next((g for g in groups if run in g.runs), None)
        k = g.runs.index(run) + 1 if g else 1
        n = len(g.runs) if g else 1
        parts = ["%s" % (g.label if g else run.what), "run %d of %d" % (k, n) if n > 1 else "",
                 run.run_id[:12], run.status if run.status != "done" else ""]
        mk = run.figures.get("makespan_s")
        if mk is not None:
            parts.append("makespan %.3f s" % mk)
        if self.align == ALIGN_FIRST_TASK:
            parts.append("first task at %.3f s" % run.first_task_s)
        return "  ·  ".join(p for p in parts if p)

    def offset(self, run):
        """Where ``run``'s own time axis has the comparison's zero."""
        return run.first_task_s if self.align == ALIGN_FIRST_TASK else 0.0

    def _rebuild(self):
        self._fill_timelines()
        self._fill_tables()

    def _fill_timelines(self):
        for _, view in self.timelines:
            view.vb.sigXRangeChanged.disconnect(self._range_changed)
        while self.lanes_layout.count() > 1:
            item = self.lanes_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.timelines = []
        shown = self._shown_runs()
        max_offset = max([self.offset(run) for run in shown] + [0.0])
        for i, run in enumerate(shown):
            data, lanes = self._data[run.path]
            box = QtWidgets.QWidget()
            bl = QtWidgets.QVBoxLayout(box)
            bl.setContentsMargins(0, 0, 0, 0)
            bl.setSpacing(0)
            head = RunHeader(self._label_of(run), run.path)
            head.sigOpen.connect(self.sigOpenRun.emit)
            bl.addWidget(head)
            view = TimelineView(tracks=False)     # its processes' lanes only: the height is theirs
            view.set_follow(False)            # the comparison sets the range, for every view at once
            view.set_data(data)
            # a run aligned at a late first task is shifted right: its view must be allowed that far left
            view.vb.setLimits(xMin=-1.0 - max_offset)
            view.setFixedHeight(TIMELINE_CHROME_PX + LANE_PX * max(lanes, 1))
            bl.addWidget(view)
            self.lanes_layout.insertWidget(i, box)
            self.timelines.append((run, view))
            view.vb.sigXRangeChanged.connect(self._range_changed)
        share_label_width([view for _, view in self.timelines])
        self.fit()

    def _fill_tables(self):
        groups = self.groups()
        figs = [f for f in compare.FIGURES if any(g.stat(f.key) is not None for g in groups)]
        rows, tips, bold = [], {}, set()
        for r, f in enumerate(figs):
            stats = [g.stat(f.key) for g in groups]
            rows.append(["%s (%s)" % (f.label, f.unit)] + [s.text(f.fmt) if s else "-" for s in stats])
            means = [s.mean for s in stats if s is not None]
            for c, s in enumerate(stats):
                if s is None:
                    continue
                tips[(r, c + 1)] = "%d run(s): mean %s, sd %s, min %s, max %s %s" % (
                    s.n, f.fmt % s.mean, f.fmt % s.sd, f.fmt % s.min, f.fmt % s.max, f.unit)
                if len(means) > 1 and s.mean == min(means) and max(means) > min(means):
                    bold.add((r, c + 1))           # the best of the groups
        headers = ["figure"] + ["%s (%d run%s)" % (g.label, len(g.runs), "" if len(g.runs) == 1 else "s")
                                for g in groups]
        self._replace_table("groups_table", _table(headers, rows, tips, bold), self.groups_page.layout())
        diffs = compare.differences(groups)
        self.differences.setText("\n".join(d.sentence() + "." for d in diffs))
        self.differences.setVisible(bool(diffs))

        run_rows = []
        for run in self.runs:
            g = next((g for g in groups if run in g.runs), None)
            run_rows.append([run.run_id[:12] or os.path.basename(run.path), g.label if g else "-", run.status] +
                            ["-" if run.figures.get(f.key) is None else f.fmt % run.figures[f.key] for f in figs])
        t = _table(["run", "group", "status"] + ["%s (%s)" % (f.label, f.unit) for f in figs], run_rows)
        t.cellDoubleClicked.connect(self._open_row)
        self._replace_table("runs_table", t)

        prow = compare.parameter_rows(self.runs)
        if not prow and self.runs:
            prow = [("(all the same)", [compare.params_text(r.params) or "-" for r in self.runs])]
        self._replace_table("params_table", _table(["parameter"] + [r.run_id[:12] for r in self.runs],
                                                   [[name] + values for name, values in prow]))

    def _replace_table(self, name, table, layout=None):
        old = getattr(self, name)
        table.setObjectName(name)
        if layout is not None:
            layout.replaceWidget(old, table)
        else:
            i = self.tabs.indexOf(old)
            label = self.tabs.tabText(i)
            self.tabs.removeTab(i)
            self.tabs.insertTab(i, table, label)
        old.deleteLater()
        setattr(self, name, table)

    def _open_row(self, row, _col):
        if 0 <= row < len(self.runs):
            self.sigOpenRun.emit(self.runs[row].path)

    # -- the shared axis ------------------------------------------------------------------------------------
    def set_align(self, how):
        self.align = how
        if self.align_box.currentText() != how:
            self.align_box.setCurrentText(how)
        self._fill_timelines()

    def set_show(self, how):
        self.show_mode = how
        if self.show_box.currentText() != how:
            self.show_box.setCurrentText(how)
        self._fill_timelines()

    def fit(self):
        """Show every run whole, in aligned time."""
        if not self.timelines:
            return
        lo = min(-self.offset(run) for run, _ in self.timelines)
        hi = max(max(view.data.t_end, 0.1) - self.offset(run) for run, view in self.timelines)
        self.set_range(min(lo, 0.0), hi * 1.02)

    def set_range(self, x0, x1):
        """Show aligned time ``x0..x1`` in every timeline (each at its own offset)."""
        self._range = (x0, x1)
        self._syncing = True
        try:
            for run, view in self.timelines:
                off = self.offset(run)
                view.vb.setXRange(x0 + off, x1 + off, padding=0)
        finally:
            self._syncing = False

    def _range_changed(self, vb, rng):
        if self._syncing:
            return
        run = next((r for r, v in self.timelines if v.vb is vb), None)
        if run is None:
            return
        off = self.offset(run)
        self.set_range(rng[0] - off, rng[1] - off)

    def aligned_range(self, view_index):
        """The aligned x range a timeline shows (its own range less its offset): the same for every view."""
        run, view = self.timelines[view_index]
        x0, x1 = view.vb.viewRange()[0]
        return x0 - self.offset(run), x1 - self.offset(run)


class CompareWindow(QtWidgets.QMainWindow):
    """A window holding one comparison: started here (``for_scenario``) or of runs from the history
    (``for_runs``).  Closing it while its runs go on cancels them."""

    sigOpenRun = QtCore.Signal(str)
    sigDone = QtCore.Signal()

    def __init__(self, title, by_method, home=None, parent=None):
        super().__init__(parent)
        self.home = home
        self.source = None
        self._jobs = []
        self._loading = 0
        self.failed = []
        self.setWindowTitle("mpgui — compare: %s" % title)
        self.resize(1300, 900)
        self.view = CompareView(title, by_method=by_method)
        self.view.sigOpenRun.connect(self.sigOpenRun.emit)
        self.view.sigStop.connect(self.stop)
        self.setCentralWidget(self.view)

    @classmethod
    def for_scenario(cls, scenario, params, methods, repeat, home=None, parent=None):
        shown = {k: v for k, v in params.items() if not (k == "methods" and v != "chosen")}
        title = "%s under %s, %d run%s each  (%s)" % (scenario.name, ", ".join(methods), repeat,
                                                      "" if repeat == 1 else "s", compare.params_text(shown))
        w = cls(title, True, home, parent)
        w.view.methods = list(methods)
        w.source = ComparisonSource(scenario, params, methods, repeat, home, parent=w)
        w.source.sigRunStarted.connect(w._run_started)
        w.source.sigRunFinished.connect(w._run_finished)
        w.source.sigFinished.connect(w._finished)
        w.source.sigMessage.connect(lambda text: w.statusBar().showMessage(text, 10000))
        w.view.stop_button.show()
        if repeat > 1:
            w.view.set_show(SHOW_ONE)
        w.view.status.setText("starting %d runs…" % w.source.total)
        return w

    @classmethod
    def for_runs(cls, rows, home=None, parent=None):
        """``rows``: history rows (dicts with ``path``) or run file paths."""
        rows = [r if isinstance(r, dict) else {"path": r} for r in rows]
        same = len({r.get("comparison") for r in rows}) == 1 and rows[0].get("comparison")
        what = sorted({r.get("scenario") or r.get("title") or os.path.basename(r["path"]) for r in rows})
        if same:
            methods = compare.ordered_methods([m for r in rows for m in (r.get("methods") or [])])
            title = "%s under %s  (comparison %s)" % (", ".join(what), ", ".join(methods), same)
        else:
            title = "%d runs: %s" % (len(rows), ", ".join(what))
        w = cls(title, bool(same), home, parent)
        for i, row in enumerate(rows):
            w._load(row["path"], row, i)
        return w

    @property
    def running(self):
        return self.source is not None and self.source.running

    def stop(self):
        if self.running:
            self.source.stop()
            self.view.status.setText("stopping…")

    def _run_started(self, ev):
        self.view.status.setText("run %d of %d: %s, repeat %d of %d…" % (
            ev["index"] + 1, ev["total"], ev["method"], ev["repeat"] + 1, self.source.repeat))

    def _run_finished(self, ev):
        if ev.get("status") in ("done", "failed"):
            self._load(ev["path"], None, ev["index"])

    def _finished(self, code, sentence):
        self.view.stop_button.hide()
        n = len(self.view.runs) + self._loading
        if sentence and code != 0:
            self.view.status.setText("%s (%d of %d runs finished)" % (sentence, n, self.source.total))
        elif code == 0:
            self.view.status.setText("done: %d runs" % n)
        else:
            self.view.status.setText("ended (exit code %d) after %d of %d runs" % (code, n, self.source.total))
        self.sigDone.emit()

    def _load(self, path, row, place):
        self._loading += 1
        in_background(lambda: load_run(path, row), lambda res: self._loaded(res, place),
                      lambda e: self._load_failed(path, e), self._jobs)

    def _loaded(self, res, place):
        self._loading -= 1
        run, data, lanes = res
        self.view.add_run(run, data, lanes, place)
        if self.source is None:
            self.view.status.setText("%d runs" % len(self.view.runs) if not self._loading else "loading…")

    def _load_failed(self, path, error):
        self._loading -= 1
        self.failed.append((path, error))
        self.statusBar().showMessage("Could not read %s: %s" % (path, error), 15000)

    def closeEvent(self, ev):
        if self.source is not None:
            self.source.close(wait=True)
        super().closeEvent(ev)


