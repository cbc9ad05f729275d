"""Colours and fonts of the app, in one place (views import names, never literals)."""

# Task outcomes (core.trace.events.Outcome) and states
TASK_RUNNING = "#4c8ef7"
TASK_OK = "#3aa76d"
TASK_ERROR = "#e0464e"
TASK_TIMEOUT = "#f0a030"
TASK_LOST = "#8e44ad"

LOCK_HOLD = "#5b6abf"
LOCK_WAIT = "#f2c744"
OTHER_WAIT = "#b0b6c0"
BLOCKED_IO = "#9ccbe8"
MANAGER_CALL = "#d07cc0"

LIFETIME = "#e9edf3"
STARTING = "#f7d9b5"
RESULT_USED = "#20252d"
MOMENT = "#16808c"              # an instant on a lane: a notify, a segment created, a pool closed...
SIGNAL_MOMENT = "#c2185b"       # a signal sent or handled, a terminate or kill request
SELECTION = "#ff5a1f"

LANE_TEXT = "#2b3440"
BACKGROUND = "#ffffff"
MUTED_TEXT = "#6b7785"
ERROR_TEXT = "#c0392b"

ROLE_COLORS = {"main": "#20252d", "worker": "#2f6fd6", "manager": "#8e44ad", "process": "#3a7d5c",
               "forkserver": "#7f8c8d", "resource tracker": "#7f8c8d", "other": "#7f8c8d"}

# One colour per CPU core, cycling; the total is drawn thick and dark.
CORE_COLORS = ["#4c8ef7", "#3aa76d", "#f0a030", "#e0464e", "#8e44ad", "#16a2b8", "#c0a000", "#d35400"]
CPU_TOTAL = "#20252d"




STYLE = """
QMainWindow { background: #f4f6f9; }
QDockWidget::title { padding: 4px 8px; background: #e8ecf1; font-weight: 600; }
QGroupBox { font-weight: 600; border: 1px solid #d5dbe3; border-radius: 6px; margin-top: 10px; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; }
QPushButton#run { background: #2f6fd6; color: white; font-weight: 600; padding: 6px 18px; border-radius: 4px; }
QPushButton#run:disabled { background: #a9bfe6; }
QPushButton#stop { background: #e0464e; color: white; font-weight: 600; padding: 6px 18px; border-radius: 4px; }
QPushButton#stop:disabled { background: #f0b5b8; }
QLineEdit[invalid="true"] { border: 1px solid #c0392b; background: #fdf0ef; }
QLabel#error { color: #c0392b; }
QLabel#lesson { background: #fffbe6; border: 1px solid #f0dc82; border-radius: 4px; padding: 6px; }
QLabel#muted { color: #6b7785; }
QTabWidget::pane { border-top: 1px solid #d5dbe3; }
"""
