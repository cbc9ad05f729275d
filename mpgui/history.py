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
import errno
import json
import os
import sqlite3
import sys
import time

from core.trace.procs import pid_alive
from core.trace.runner import machine_facts
from core.trace.store import PRIVATE_DIR_MODE, create_private_file, sqlite_uri

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


def _is_damage(e):
    """Whether an SQLite error says the file is no (intact) database, rather than that it cannot be written."""
    name = getattr(e, "sqlite_errorname", "")
    if name:
        return name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "no such" in str(e)
    return any(w in str(e) for w in ("not a database", "malformed", "no such"))


def _json_or_empty(text):
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class HistoryError(Exception):
    """The history cannot be used; the message is one sentence that says what to do."""


_COLUMNS = ("id", "path", "kind", "scenario", "title", "params", "start_method", "machine", "started", "ended",
            "status", "lesson", "events", "dropped", "exit_code", "runner_pid")


class RunHistory:
    """The history in ``home``.  ``readonly`` (listing, looking a run up) creates nothing and works in a home
    this process cannot write; otherwise the home is created if needed and must be writable.  Either way a
    home that cannot be used raises ``HistoryError`` with one sentence."""

    def __init__(self, home=None, readonly=False):
        self.home = home_dir(home)
        self.runs_dir = os.path.join(self.home, "runs")
        self.path = os.path.join(self.home, "history.sqlite")
        self._db = None
        if os.path.exists(self.home) and not os.path.isdir(self.home):
            raise HistoryError("mpgui's home %s is a file, not a directory: give --home (or MPGUI_HOME) a "
                               "directory." % self.home)
        try:
            self._db = self._open_readonly() if readonly else self._open()
            if self._db is not None:        # a database of another schema is no history either
                self._db.execute("SELECT %s FROM runs LIMIT 0" % ", ".join(_COLUMNS))
        except OSError as e:
            self.close()
            raise HistoryError(self._unwritable(e.strerror or e)) from None
        except sqlite3.DatabaseError as e:
            self.close()
            if _is_damage(e):
                raise HistoryError("%s is not an mpgui history (%s): move it aside, and mpgui starts a new one."
                                   % (self.path, e)) from None
            raise HistoryError(self._unwritable(e)) from None

    def _unwritable(self, why):
        return ("mpgui cannot write its home %s (%s): give --home (or MPGUI_HOME) a directory you can write to."
                % (self.home, why))

    def _open(self):
        os.makedirs(self.home, mode=PRIVATE_DIR_MODE, exist_ok=True)
        os.makedirs(self.runs_dir, mode=PRIVATE_DIR_MODE, exist_ok=True)
        create_private_file(self.path)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db = db
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        # Runs are entered when they start and end: find out now, before a run starts, that it cannot be.
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        if not os.access(self.runs_dir, os.W_OK):
            raise PermissionError(errno.EACCES, "%s is not writable" % self.runs_dir)
        return db

    def _open_readonly(self):
        if not os.path.exists(self.path):
            return None                 # no history yet: no runs
        try:
            db = sqlite3.connect(sqlite_uri(self.path, "ro"), uri=True, timeout=10, check_same_thread=False)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            # A WAL database in a directory this process cannot write (no -shm can be made there): read the
            # file as it is.
            db = sqlite3.connect(sqlite_uri(self.path, "ro") + "&immutable=1", uri=True, check_same_thread=False)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db

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

    # -- as a run's observer (core.trace.runner.RunObserver) --------------------------------------------------
    def run_started(self, run):
        self.begin(run.run_id, run.out_path, run.kind, run.scenario, run.title, run.params, run.start_method)

    def run_finished(self, run):
        self.finish(run.run_id, str(run.status), run.lesson, run.events_written, run.dropped, run.exit_code)

    def finish(self, run_id, status, lesson=None, events=0, dropped=0, exit_code=None):
        self._db.execute("UPDATE runs SET ended=?, status=?, lesson=?, events=?, dropped=?, exit_code=?"
                         " WHERE id=?", (time.time(), status, lesson, events, dropped, exit_code, run_id))

    def list(self, limit=50):
        if self._db is None:
            return []
        rows = self._db.execute("SELECT %s FROM runs ORDER BY started DESC LIMIT ?" % ", ".join(_COLUMNS),
                                (limit,)).fetchall()
        out = []
        for r in rows:
            d = dict(zip(_COLUMNS, r))
            d["params"] = _json_or_empty(d["params"])
            d["machine"] = _json_or_empty(d["machine"])
            if d["status"] == "running" and not pid_alive(d["runner_pid"]):
                d["status"] = "interrupted"
            out.append(d)
        return out

    def get(self, run_id):
        for d in self.list(limit=100000):
            if d["id"] == run_id or d["id"].startswith(run_id):
                return d
        return None

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None
