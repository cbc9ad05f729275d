"""The launcher: scenario picker, a parameter form generated from the scenario's schema, start method, Run and
Stop, progress, and the lesson when a run ends.  Compare runs the same scenario and parameters under each
checked start method, N times each, and opens the comparison.  When a saved run is shown, the launcher shows
what it ran: its scenario, parameters and start methods are set in the form (Run runs it again).

Every field is checked as it is typed with the scenario's own ``Param.parse`` (the same check the command line
and the runner apply), so the reason a value is refused is the same sentence everywhere; Run stays disabled
while any field is invalid.
"""
from PySide6 import QtCore, QtGui, QtWidgets

from mpgui.scenarios import ParamError, catalog

from . import theme


def _narrow(combo):
    """A combo box whose width follows its layout, not its longest item (long scenario titles)."""
    combo.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(12)


class ParamField(QtWidgets.QWidget):
    """One parameter: the right widget for its type, its help as tooltip, its current error (or None)."""

    sigChanged = QtCore.Signal()

    def __init__(self, scenario, param, parent=None):
        super().__init__(parent)
        self.scenario = scenario
        self.param = param
        self.error = None
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        tip = "%s\n(%s)" % (param.help, param.describe())
        if param.type == "bool":
            self.editor = QtWidgets.QCheckBox()
            self.editor.setChecked(bool(param.default))
            self.editor.toggled.connect(self._changed)
        elif param.type == "choice":
            self.editor = QtWidgets.QComboBox()
            _narrow(self.editor)
            self.editor.addItems(list(param.choices))
            self.editor.setCurrentText(str(param.default))
            self.editor.currentTextChanged.connect(self._changed)
        else:
            self.editor = QtWidgets.QLineEdit(self._fmt(param.default))
            self.editor.setPlaceholderText(param.describe())
            self.editor.textChanged.connect(self._changed)
            self.editor.installEventFilter(self)
            if param.unit:
                unit = QtWidgets.QLabel(param.unit)
                unit.setObjectName("muted")
        self.editor.setToolTip(tip)
        lay.addWidget(self.editor, 1)
        if param.type in ("int", "float") and param.unit:
            lay.addWidget(unit)

    def _fmt(self, v):
        if self.param.type == "float":
            return ("%g" % v)
        return str(v)

    def raw(self):
        if self.param.type == "bool":
            return self.editor.isChecked()
        if self.param.type == "choice":
            return self.editor.currentText()
        return self.editor.text()

    def set_value(self, value):
        if self.param.type == "bool":
            self.editor.setChecked(str(value).lower() in ("1", "true", "yes", "on"))
        elif self.param.type == "choice":
            if str(value) in self.param.choices:
                self.editor.setCurrentText(str(value))
        else:
            self.editor.setText(str(value))

    def value(self):
        """The typed value, or raises ParamError."""
        return self.param.parse(self.raw(), self.scenario.name)

    def _changed(self, *_):
        try:
            self.value()
            self.error = None
        except ParamError as e:
            self.error = str(e)
        if isinstance(self.editor, QtWidgets.QLineEdit):
            self.editor.setProperty("invalid", self.error is not None)
            self.editor.style().unpolish(self.editor)
            self.editor.style().polish(self.editor)
        self.sigChanged.emit()

    def eventFilter(self, obj, ev):
        # Up/down arrows and the wheel step numeric fields, within bounds.
        if obj is self.editor and ev.type() in (QtCore.QEvent.KeyPress, QtCore.QEvent.Wheel):
            if ev.type() == QtCore.QEvent.KeyPress and ev.key() in (QtCore.Qt.Key_Up, QtCore.Qt.Key_Down):
                self.step(1 if ev.key() == QtCore.Qt.Key_Up else -1)
                return True
            if ev.type() == QtCore.QEvent.Wheel:
                self.step(1 if ev.angleDelta().y() > 0 else -1)
                return True
        return super().eventFilter(obj, ev)

    def step(self, direction):
        try:
            v = self.value()
        except ParamError:
            return
        p = self.param
        if p.type == "int":
            v = v + direction
        else:
            inc = 10 ** (len(str(abs(v)).split(".")[0]) - 2) if abs(v) >= 10 else (0.1 if abs(v) >= 1 else 0.01)
            v = round(v + direction * inc, 6)
        v = min(max(v, p.min), p.max)
        self.editor.setText(self._fmt(v))


class LauncherPanel(QtWidgets.QWidget):
    """Pick a scenario, set its knobs, choose a start method, Run / Stop."""

    sigRun = QtCore.Signal(object, dict, str)     # scenario, typed params, start method
    sigCompare = QtCore.Signal(object, dict, list, int)   # scenario, typed params, start methods, repeats
    sigStop = QtCore.Signal()

    def __init__(self, settings=None, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.fields = {}
        self.scenario = None
        self._running = False
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)

        self.picker = QtWidgets.QComboBox()
        self.picker.setObjectName("scenarioPicker")
        _narrow(self.picker)
        category = None
        for sc in catalog().values():
            if sc.category and sc.category != category:      # a header line per category, not selectable
                category = sc.category
                if self.picker.count():
                    self.picker.insertSeparator(self.picker.count())
                self.picker.addItem("— %s —" % category)
                header = self.picker.model().item(self.picker.count() - 1)
                header.setEnabled(False)
            self.picker.addItem(sc.title, sc.name)
            self.picker.setItemData(self.picker.count() - 1, sc.description, QtCore.Qt.ToolTipRole)
        lay.addWidget(QtWidgets.QLabel("Scenario"))
        lay.addWidget(self.picker)
        self.description = QtWidgets.QLabel()
        self.description.setWordWrap(True)
        self.description.setObjectName("muted")
        lay.addWidget(self.description)

        self.form_box = QtWidgets.QGroupBox("Parameters")
        self.form = QtWidgets.QFormLayout(self.form_box)
        self.form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)
        lay.addWidget(self.form_box)

        self.method = QtWidgets.QComboBox()
        _narrow(self.method)
        self.method.setToolTip("How worker processes start: fork (copy of this process), spawn (fresh "
                               "interpreter), forkserver (forked from a clean server process)")
        row = QtWidgets.QFormLayout()
        row.addRow("Start method", self.method)
        lay.addLayout(row)

        self.error = QtWidgets.QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)

        buttons = QtWidgets.QHBoxLayout()
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.setObjectName("run")
        self.run_button.setShortcut(QtGui.QKeySequence("Ctrl+R"))
        self.run_button.setToolTip("Run the scenario (Ctrl+R)")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setObjectName("stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop the run: every process of it ends within 2 seconds (Esc)")
        self.stop_button.setShortcut(QtGui.QKeySequence("Escape"))
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        lay.addLayout(buttons)

        self.compare_box = QtWidgets.QGroupBox("Compare start methods")
        cl = QtWidgets.QVBoxLayout(self.compare_box)
        self.compare_methods_row = QtWidgets.QHBoxLayout()
        cl.addLayout(self.compare_methods_row)
        self.compare_checks = {}
        crow = QtWidgets.QHBoxLayout()
        crow.addWidget(QtWidgets.QLabel("runs each"))
        self.repeat = QtWidgets.QSpinBox()
        self.repeat.setRange(1, 20)
        self.repeat.setValue(int(settings.value("launcher/repeat", 3)) if settings is not None else 3)
        self.repeat.setToolTip("How many times each start method runs: the comparison shows mean ± sd over them")
        crow.addWidget(self.repeat)
        crow.addStretch(1)
        self.compare_button = QtWidgets.QPushButton("Compare")
        self.compare_button.setObjectName("compare")
        self.compare_button.setShortcut(QtGui.QKeySequence("Ctrl+Shift+R"))
        crow.addWidget(self.compare_button)
        cl.addLayout(crow)
        lay.addWidget(self.compare_box)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        lay.addWidget(self.progress)

        self.lesson = QtWidgets.QLabel()
        self.lesson.setObjectName("lesson")
        self.lesson.setWordWrap(True)
        self.lesson.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.lesson.hide()
        lay.addWidget(self.lesson)
        self.context = QtWidgets.QLabel()
        self.context.setObjectName("muted")
        self.context.setWordWrap(True)
        self.context.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.context.hide()
        lay.addWidget(self.context)
        lay.addStretch(1)

        self.picker.currentIndexChanged.connect(self._scenario_changed)
        self.run_button.clicked.connect(self._run_clicked)
        self.compare_button.clicked.connect(self._compare_clicked)
        self.stop_button.clicked.connect(self.sigStop.emit)
        last = settings.value("launcher/scenario") if settings is not None else None
        idx = self.picker.findData(last) if last else -1
        if idx < 0:
            idx = self.picker.findData("pool_methods")
        self.picker.setCurrentIndex(idx)
        self._scenario_changed()

    # -- scenario and form ---------------------------------------------------------------------------------
    def select(self, name):
        idx = self.picker.findData(name)
        if idx < 0:
            raise KeyError(name)
        self.picker.setCurrentIndex(idx)

    def _scenario_changed(self, *_):
        name = self.picker.currentData()
        if name is None:                # a category header: keep the previous scenario
            return
        self.scenario = catalog()[name]
        self.description.setText(self.scenario.description)
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields = {}
        saved = self._saved_params()
        for p in self.scenario.params:
            f = ParamField(self.scenario, p)
            if p.name in saved:
                f.set_value(saved[p.name])
            f.sigChanged.connect(self._validate)
            label = QtWidgets.QLabel(p.name.replace("_", " "))
            label.setToolTip(p.help)
            self.form.addRow(label, f)
            self.fields[p.name] = f
        self.method.clear()
        self.method.addItems(self.scenario.available_methods())
        last_method = self.settings.value("launcher/method") if self.settings is not None else None
        if last_method and self.method.findText(last_method) >= 0:
            self.method.setCurrentText(last_method)
        self._fill_compare_methods()
        if self.settings is not None:
            self.settings.setValue("launcher/scenario", name)
        for f in self.fields.values():
            f._changed()
        self._validate()

    def _fill_compare_methods(self):
        """One check box per start method the scenario has here, checked as last time (all by default)."""
        for box in self.compare_checks.values():
            self.compare_methods_row.removeWidget(box)
            box.hide()                  # gone from the window now, not when the event loop next deletes it
            box.deleteLater()
        saved = self.settings.value("launcher/compare_methods") if self.settings is not None else None
        saved = [m for m in str(saved or "").split(",") if m]
        available = self.scenario.available_methods()
        checked = [m for m in saved if m in available] or available
        self.compare_checks = {}
        for m in available:
            box = QtWidgets.QCheckBox(m)
            box.setChecked(m in checked)
            box.toggled.connect(self._validate)
            self.compare_methods_row.addWidget(box)
            self.compare_checks[m] = box

    def compare_methods(self):
        """The start methods checked for a comparison, in the platform's order."""
        return [m for m, box in self.compare_checks.items() if box.isChecked()]

    def _saved_params(self):
        if self.settings is None:
            return {}
        v = self.settings.value("params/%s" % self.scenario.name)
        return dict(v) if isinstance(v, dict) else {}

    def values(self):
        """Typed parameters; raises ParamError with the first problem."""
        out = {name: f.value() for name, f in self.fields.items()}
        return self.scenario.validate(out)

    def _validate(self):
        errors = [f.error for f in self.fields.values() if f.error]
        if not errors:
            try:
                self.values()
            except ParamError as e:
                errors = [str(e)]
        self.error.setText(errors[0] if errors else "")
        self.run_button.setEnabled(not errors and not self._running)
        self.run_button.setToolTip(errors[0] if errors else "Run the scenario (Ctrl+R)")
        why_not = errors[0] if errors else (None if self.compare_methods() else "Check at least one start method.")
        self.compare_button.setEnabled(why_not is None and not self._running)
        self.compare_button.setToolTip(why_not or "Run the scenario with these parameters under each checked start "
                                       "method, the number of times given, one run after another, and compare "
                                       "them side by side (Ctrl+Shift+R)")

    def _run_clicked(self):
        try:
            params = self.values()
        except ParamError as e:
            self.error.setText(str(e))
            return
        method = self.method.currentText()
        if self.settings is not None:
            self.settings.setValue("params/%s" % self.scenario.name,
                                   {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()})
            self.settings.setValue("launcher/method", method)
        self.sigRun.emit(self.scenario, params, method)

    def _compare_clicked(self):
        try:
            params = self.values()
        except ParamError as e:
            self.error.setText(str(e))
            return
        methods = self.compare_methods()
        if not methods:
            return
        if self.settings is not None:
            self.settings.setValue("launcher/compare_methods", ",".join(methods))
            self.settings.setValue("launcher/repeat", self.repeat.value())
        self.sigCompare.emit(self.scenario, params, methods, self.repeat.value())

    # -- what a shown run ran ----------------------------------------------------------------------------------
    def show_run(self, meta, methods):
        """Show what a saved run ran (its run file's ``meta``; ``methods``: the start methods its processes
        used): its scenario, parameters and start method set in the form, and a line saying so.  A run that
        is not a scenario's (a traced program) is only described."""
        scenario = meta.get("scenario")
        said = meta.get("title") or scenario or "this run"
        where = ""
        if scenario and self.picker.findData(scenario) >= 0 and not self._running:
            self.select(scenario)
            for name, value in (meta.get("params") or {}).items():
                if name in self.fields:
                    self.fields[name].set_value(str(value).lower() if isinstance(value, bool) else value)
            if meta.get("start_method") and self.method.findText(meta["start_method"]) >= 0:
                self.method.setCurrentText(meta["start_method"])
            where = " Its scenario and parameters are set above: Run runs it again."
        used = ", ".join(methods) or meta.get("start_method")
        self.context.setText("Showing run%s: %s, %s.%s" % (
            " " + meta["run_id"][:12] if meta.get("run_id") else "", said,
            ("start method%s %s" % ("s" if len(methods) > 1 else "", used)) if used else "no start method recorded",
            where))
        self.context.show()

    def clear_run(self):
        self.context.hide()

    # -- run state ---------------------------------------------------------------------------------------------
    def set_running(self, running):
        self._running = running
        self.stop_button.setEnabled(running)
        self.picker.setEnabled(not running)
        self.form_box.setEnabled(not running)
        self.method.setEnabled(not running)
        self.compare_box.setEnabled(not running)
        if running:
            self.lesson.hide()
            self.progress.setRange(0, 0)            # busy until the scenario reports progress
            self.progress.setFormat("starting…")
        self._validate()

    def set_progress(self, done, total, elapsed, state):
        if total and total > 0:
            self.progress.setRange(0, int(total))
            self.progress.setValue(min(int(done), int(total)))
            self.progress.setFormat("%d / %d   %.1f s" % (done, total, elapsed))
        elif state in ("starting", "running", "stopping"):
            self.progress.setRange(0, 0)
            self.progress.setFormat("%s  %.1f s" % (state, elapsed))
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if state == "done" else 0)
            self.progress.setFormat("%s  %.1f s" % (state, elapsed))

    def show_lesson(self, text, error=False):
        if not text:
            self.lesson.hide()
            return
        self.lesson.setText(text)
        self.lesson.setStyleSheet("" if not error else "background: #fdf0ef; border-color: %s;" % theme.ERROR_TEXT)
        self.lesson.show()
