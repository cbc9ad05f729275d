"""The project's standing checks, run by the one test command: lint (ruff), the packages' import contracts
(import-linter, in pyproject.toml), types of the trace layer and the boundary APIs (mypy), and where Qt may
be imported.  A failure prints the tool's own report."""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
QT = ("PySide6", "pyqtgraph", "shiboken6")


def _tool(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        pytest.fail("%s is not installed: install the test extras (pip install -e '.[test]')" % name)
    return path


def _run(argv):
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, "%s\n%s\n%s" % (" ".join(argv), p.stdout[-6000:], p.stderr[-3000:])


def test_ruff():
    _run([_tool("ruff"), "check", "core", "mpgui", "main.py", "tests", "resources"])


def test_import_contracts():
    _run([_tool("lint-imports")])


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, node.lineno


def test_qt_only_in_the_gui_package():
    """Every import statement, lazy ones inside functions included: Qt (and mpgui.gui, which is Qt) is
    imported only by mpgui/gui/ and by main.py, the entry point that starts the app."""
    found = []
    for top in ("core", "mpgui"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            if os.path.join(ROOT, "mpgui", "gui") in folder:
                continue
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(folder, f)
                    for mod, line in _imports(path):
                        if mod.split(".")[0] in QT or mod.startswith("mpgui.gui"):
                            found.append("%s:%d imports %s" % (os.path.relpath(path, ROOT), line, mod))
    assert found == []


def test_types():
    _run([_tool("mypy")])


def test_a_command_starts_a_run_without_numpy():
    """What ``trace`` and ``run`` import before they start the program (the command line, the history, the
    runner, the collector process's handle, the run file's writer) does without numpy and the run model:
    they cost a traced program's start about a tenth of a second here, and come in with the summary after."""
    code = ("import sys; import mpgui.cli.main, mpgui.history, core.trace.runner, core.trace.collect_process, "
            "core.trace.store, core.trace.tracedir, core.trace.monitor; "
            "print(sorted(m for m in ('numpy', 'core.trace.model', 'mpgui.compare') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
