"""Run history: every run (scenario or traced script) with its parameters, machine and outcome.

An SQLite database ``history.sqlite`` in the mpgui home directory, next to a ``runs/`` folder holding the
run files.  The home is, in order: the ``--home`` option, the ``MPGUI_HOME`` environment variable, the
user's data directory (``$XDG_DATA_HOME/mpgui`` or ``~/.local/share/mpgui`` on Linux,
``%LOCALAPPDATA%\\mpgui`` on Windows, ``~/Library/Application Support/mpgui`` on macOS).

A run is entered when it starts (status ``running``, with the runner's pid) and updated when it ends; a run
whose runner died without saying so is shown as ``interrupted`` and its run file still opens.

Runs hold programs' arguments and output, so a home mpgui creates (and its ``runs/``) is its owner's only
(0700), and the history and run files are 0600.

No Qt here.
"""
import json
import os
import platform
import sqlite3
import sys
import time

from .trace.store import PRIVATE_DIR_MODE, create_private_file

HOME_ENV = "MPGUI_HOME"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs(
    id TEXT PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, scenario TEXT, title TEXT,
    params TEXT, start_method TEXT, machine TEXT, started REAL, ended REAL, status TEXT NOT NULL,
    lesson TEXT, events INTEGER DEFAULT 0, dropped INTEGER DEFAULT 0, exit_code INTEGER, runner_pid INTEGER
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started);
"""


def default_home():
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "mpgui")


def home_dir(override=None):
    return os.path.abspath(override or os.environ.get(HOME_ENV) or default_home())


def machine_facts():
    import multiprocessing
    return {"cpu_count": os.cpu_count(), "os": platform.platform(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "machine": platform.machine(),
            "start_methods": multiprocessing.get_all_start_methods()}


def _pid_alive(pid):
    if not pid:
        return False
    try:
        import psutil
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:
        return False


class RunHistory:
    def __init__(self, home=None):
        self.home = home_dir(home)
        self.runs_dir = os.path.join(self.home, "runs")
        os.makedirs(self.home, mode=PRIVATE_DIR_MODE, exist_ok=True)
        os.makedirs(self.runs_dir, mode=PRIVATE_DIR_MODE, exist_ok=True)
        self.path = os.path.join(self.home, "history.sqlite")
        create_private_file(self.path)
        self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def new_run_path(self, label):
        """A new run file's path in ``runs/``, named after the time and ``label``.  The name is taken at once
        (an empty private file), so runs started in the same second never get the same file."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in label)[:40] or "run"
        base = os.path.join(self.runs_dir, "%s-%s" % (stamp, safe))
        path, n = base + ".mpgrun", 1
        while True:
            try:
                create_private_file(path, exclusive=True)
                return path
            except FileExistsError:
                n += 1
                path = "%s-%d.mpgrun" % (base, n)

    def begin(self, run_id, path, kind, scenario=None, title=None, params=None, start_method=None):
        self._db.execute(
            "INSERT OR REPLACE INTO runs(id, path, kind, scenario, title, params, start_method, machine, started,"
            " status, runner_pid) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)",
            (run_id, os.path.abspath(path), kind, scenario, title, json.dumps(params or {}), start_method,
             json.dumps(machine_facts()), time.time(), os.getpid()))

    def finish(self, run_id, status, lesson=None, events=0, dropped=0, exit_code=None):
        self._db.execute("UPDATE runs SET ended=?, status=?, lesson=?, events=?, dropped=?, exit_code=?"
                         " WHERE id=?", (time.time(), status, lesson, events, dropped, exit_code, run_id))

    def list(self, limit=50):
        rows = self._db.execute(
            "SELECT id, path, kind, scenario, title, params, start_method, machine, started, ended, status,"
            " lesson, events, dropped, exit_code, runner_pid FROM runs ORDER BY started DESC LIMIT ?",
            (limit,)).fetchall()
        out = []
        for r in rows:
            d = dict(zip(("id", "path", "kind", "scenario", "title", "params", "start_method", "machine",
                          "started", "ended", "status", "lesson", "events", "dropped", "exit_code",
                          "runner_pid"), r))
            d["params"] = json.loads(d["params"] or "{}")
            d["machine"] = json.loads(d["machine"] or "{}")
            if d["status"] == "running" and not _pid_alive(d["runner_pid"]):
                d["status"] = "interrupted"
            out.append(d)
        return out

    def get(self, run_id):
        for d in self.list(limit=100000):
            if d["id"] == run_id or d["id"].startswith(run_id):
                return d
        return None

    def close(self):
        self._db.close()
