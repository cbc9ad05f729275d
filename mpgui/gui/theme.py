"""Colours and fonts of the app, in one place (views import names, never literals)."""

# Task outcomes (core.trace.events.Outcome) and states
TASK_RUNNING = "#4c8ef7"
TASK_OK = "#3aa76d"
TASK_ERROR = "#e0464e"
TASK_TIMEOUT = "#f0a030"
TASK_LOST = "#8e44ad"

LOCK_HOLD = "#5b6abf"
SEMAPHORE_HOLD = "#2a9d8f"      # a semaphore's holds: several at once, not a lock's one owner
LOCK_WAIT = "#f2c744"
OTHER_WAIT = "#b0b6c0"
BARRIER_WAIT = "#e07a5f"        # waiting at a barrier for the slower parties
GENERATION = "#3d405b"          # a barrier released a generation
BROKEN = "#d62828"              # a barrier broken or aborted, a release refused
FEEDER_WRITE = "#5a7fa8"        # a queue's feeder thread writing a message into the pipe
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

# An object track's owner slices: one colour per process (its pid picks it), cycling.
PROCESS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
# Counters drawn on lanes
WAITING_COUNT = "#c0392b"
SEM_VALUE = "#2a9d8f"
BARRIER_COUNT = "#e07a5f"
EVENT_STATE = "#16808c"
QUEUE_DEPTH = "#2f6fd6"
CPU_PROC = "#2f6fd6"
RSS = "#8e44ad"
HANDOFF = "#ff5a1f"             # "unblocked by": a release (notify, set...) to the wait it ended
GROUP_BAND = "#f6f7f9"          # a group's header row (lighter than a lifetime)
CURSOR = "#6b7785"

# One colour per CPU core, cycling; the total is drawn thick and dark.
CORE_COLORS = ["#4c8ef7", "#3aa76d", "#f0a030", "#e0464e", "#8e44ad", "#16a2b8", "#c0a000", "#d35400"]
CPU_TOTAL = "#20252d"
GRID_LINE = "#e3e7ed"           # a plot's reference lines (solid: translucent ones cost a frame)
CPU_MACHINE = "#b8c0cc"         # the whole machine's load, a faint reference under the run's own




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
