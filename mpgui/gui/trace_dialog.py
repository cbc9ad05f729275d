"""File ▸ Trace a program…: which program to trace, as a user would run it.

A script (``python SCRIPT ARGS``) or a module (``python -m MODULE ARGS``), its arguments (as a shell splits
them), the folder it runs in, a start method for a program that chooses none itself, and extra environment
variables (NAME=VALUE, one a line).  Every field is checked as it is typed with the command line's own checks
(``mpgui.cli.record``), so a refused program gets the same sentence here and in ``main.py trace``; Trace stays
disabled until everything is valid.  The programs traced before are remembered in the settings (most recent
first) and can be picked again.

The dialog only gathers a ``TraceTarget``; the main window runs it (``RunSource.start_trace``: the runner is
``main.py trace ... --control-stdin``, so Stop, the history, reopening and exports work as for a scenario).
"""
import json
import multiprocessing
import os
import shlex
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from PySide6 import QtWidgets

from mpgui.cli.common import UsageError
from mpgui.cli.record import parse_env, traced_program

#: How many traced programs the dialog remembers.
RECENT_MAX = 10
#: Where they are kept in the settings (a JSON list of TraceTarget fields).
RECENT_KEY = "trace/recent"
#: The start-method choice that leaves the program's own default.
DEFAULT_METHOD = "the program's default"


@dataclass(frozen=True)
class TraceTarget:
    """One program to trace, as ``main.py trace`` takes it."""
    program: str                        # a script's path (relative to cwd, or absolute), or a module's name
    as_module: bool = False
    args: List[str] = field(default_factory=list)
    cwd: str = ""
    start_method: Optional[str] = None
    env: Dict[str, str] = field(default_factory=dict)

    @property
    def title(self):
        return ("-m %s" % self.program) if self.as_module else os.path.basename(self.program)

    @property
    def stem(self):
        """What the run file's name starts with."""
        return "trace-" + (self.program if self.as_module else os.path.splitext(os.path.basename(self.program))[0])

    def describe(self):
        """One line for the recent-programs list: the command, and where it runs."""
        cmd = " ".join(shlex.quote(a) for a in ([("-m " + self.program) if self.as_module else self.program]
                                                 + list(self.args)))
        return "%s   (in %s)" % (cmd, self.cwd) if self.cwd else cmd

    def command_args(self):
        """The arguments of ``main.py trace`` for this program (the runner's own options come before)."""
        out = ["--cwd", self.cwd] if self.cwd else []
        if self.start_method:
            out += ["--start-method", self.start_method]
        for name, value in self.env.items():
            out += ["--env", "%s=%s" % (name, value)]
        return out + (["-m", self.program] if self.as_module else [self.program]) + list(self.args)

    def check(self):
        """UsageError with one sentence if this program cannot be traced (the command line's checks)."""
        if self.cwd and not os.path.isdir(self.cwd):
            raise UsageError("%s is not a folder: give the folder the program runs in." % self.cwd)
        traced_program([self.program] + list(self.args) if self.program else [], self.as_module,
                       os.path.abspath(self.cwd or os.curdir), self.env)

    def to_json(self):
        return asdict(self)

    @classmethod
    def from_json(cls, d):
        """A remembered target, or None if the settings hold something else."""
        try:
            return cls(program=str(d["program"]), as_module=bool(d.get("as_module")),
                       args=[str(a) for a in d.get("args") or ()], cwd=str(d.get("cwd") or ""),
                       start_method=d.get("start_method") or None,
                       env={str(k): str(v) for k, v in (d.get("env") or {}).items()})
        except (KeyError, TypeError, AttributeError):
            return None


def recent_targets(settings):
    """The remembered programs, most recent first."""
    try:
        items = json.loads(settings.value(RECENT_KEY) or "[]")
    except (TypeError, ValueError):
        return []
    targets = [TraceTarget.from_json(d) for d in items if isinstance(d, dict)] if isinstance(items, list) else []
    return [t for t in targets if t is not None]


def remember(settings, target):
    """Put ``target`` first in the remembered programs (once), keeping RECENT_MAX."""
    targets = [target] + [t for t in recent_targets(settings) if t != target]
    settings.setValue(RECENT_KEY, json.dumps([t.to_json() for t in targets[:RECENT_MAX]]))


class TraceDialog(QtWidgets.QDialog):
    """Choose a program to trace.  ``target()`` after it was accepted."""

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Trace a program")
        self.setMinimumWidth(620)
        lay = QtWidgets.QVBoxLayout(self)
        intro = QtWidgets.QLabel("Runs a Python program that uses multiprocessing or concurrent.futures, unchanged, "
                                 "and shows its processes, pool tasks, locks and queues live.")
        intro.setWordWrap(True)
        intro.setObjectName("muted")
        lay.addWidget(intro)

        form = QtWidgets.QFormLayout()
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)
        self.recent = QtWidgets.QComboBox()
        self.recent.setObjectName("recentPrograms")
        self.recent.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.recent.setMinimumContentsLength(30)
        self._recent = recent_targets(settings)
        self.recent.addItem("—" if not self._recent else "pick a program traced before…")
        for t in self._recent:
            self.recent.addItem(t.describe())
        self.recent.setEnabled(bool(self._recent))
        form.addRow("Recent", self.recent)

        kind = QtWidgets.QHBoxLayout()
        self.as_script = QtWidgets.QRadioButton("Script")
        self.as_module = QtWidgets.QRadioButton("Module (python -m)")
        self.as_script.setChecked(True)
        kind.addWidget(self.as_script)
        kind.addWidget(self.as_module)
        kind.addStretch(1)
        form.addRow("Run", kind)

        self.program = QtWidgets.QLineEdit()
        self.program.setPlaceholderText("path/to/program.py")
        self.browse_program = QtWidgets.QPushButton("Browse…")
        form.addRow("Program", self._with_button(self.program, self.browse_program))
        self.args = QtWidgets.QLineEdit()
        self.args.setPlaceholderText("arguments, as a shell splits them")
        form.addRow("Arguments", self.args)
        self.cwd = QtWidgets.QLineEdit()
        self.cwd.setPlaceholderText(os.getcwd())
        self.browse_cwd = QtWidgets.QPushButton("Browse…")
        form.addRow("Working folder", self._with_button(self.cwd, self.browse_cwd))
        self.method = QtWidgets.QComboBox()
        self.method.addItems([DEFAULT_METHOD] + multiprocessing.get_all_start_methods())
        self.method.setToolTip("The start method of a program that chooses none itself; one that calls "
                               "set_start_method keeps its own.")
        form.addRow("Start method", self.method)
        self.env = QtWidgets.QPlainTextEdit()
        self.env.setPlaceholderText("NAME=VALUE, one a line")
        self.env.setFixedHeight(72)
        form.addRow("Environment", self.env)
        lay.addLayout(form)

        self.error = QtWidgets.QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Cancel)
        self.trace_button = self.buttons.addButton("Trace", QtWidgets.QDialogButtonBox.AcceptRole)
        self.trace_button.setObjectName("run")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)

        self.recent.activated.connect(self._pick_recent)
        self.browse_program.clicked.connect(self._browse_program)
        self.browse_cwd.clicked.connect(self._browse_cwd)
        for w in (self.program, self.args, self.cwd):
            w.textChanged.connect(self._validate)
        self.env.textChanged.connect(self._validate)
        self.as_module.toggled.connect(self._kind_changed)
        self.method.currentIndexChanged.connect(self._validate)
        if self._recent:
            self.fill(self._recent[0])
        self._kind_changed()

    @staticmethod
    def _with_button(edit, button):
        w = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(w)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        return w

    # -- the form ----------------------------------------------------------------------------------------------
    def fill(self, target):
        """Show ``target`` in the form."""
        (self.as_module if target.as_module else self.as_script).setChecked(True)
        self.program.setText(target.program)
        self.args.setText(" ".join(shlex.quote(a) for a in target.args))
        self.cwd.setText(target.cwd)
        self.method.setCurrentText(target.start_method or DEFAULT_METHOD)
        self.env.setPlainText("\n".join("%s=%s" % kv for kv in target.env.items()))
        self._validate()

    def target(self):
        """The program the form describes; raises UsageError with the first problem."""
        try:
            args = shlex.split(self.args.text())
        except ValueError as e:
            raise UsageError("The arguments cannot be split as a shell would (%s): check the quotes."
                             % str(e).lower()) from None
        env = parse_env([line.strip() for line in self.env.toPlainText().splitlines() if line.strip()])
        method = self.method.currentText()
        target = TraceTarget(program=self.program.text().strip(), as_module=self.as_module.isChecked(),
                             args=args, cwd=self.cwd.text().strip(),
                             start_method=None if method == DEFAULT_METHOD else method, env=env)
        target.check()
        return target

    def _validate(self, *_):
        try:
            self.target()
        except UsageError as e:
            problem = str(e)
        else:
            problem = ""
        self.error.setText(problem)
        self.trace_button.setEnabled(not problem)
        self.trace_button.setToolTip(problem or "Run the program and record it")
        return not problem

    def _kind_changed(self, *_):
        module = self.as_module.isChecked()
        self.program.setPlaceholderText("package.module" if module else "path/to/program.py")
        self.browse_program.setEnabled(not module)
        self._validate()

    def _pick_recent(self, index):
        if 1 <= index <= len(self._recent):
            self.fill(self._recent[index - 1])

    def _browse_program(self):
        start = self.cwd.text() or (self.settings.value("dirs/programs") or "")
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Program to trace", start, "Python programs (*.py)")
        if path:
            self.settings.setValue("dirs/programs", os.path.dirname(path))
            if not self.cwd.text().strip():
                self.cwd.setText(os.path.dirname(path))
            self.program.setText(path)

    def _browse_cwd(self):
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder the program runs in", self.cwd.text())
        if path:
            self.cwd.setText(path)

    def _accept(self):
        if self._validate():
            remember(self.settings, self.target())
            self.accept()


def ask(parent, settings):
    """Show the dialog; the TraceTarget chosen, or None."""
    dialog = TraceDialog(settings, parent)
    try:
        if dialog.exec() == QtWidgets.QDialog.Accepted:
            return dialog.target()
        return None
    finally:
        dialog.deleteLater()
