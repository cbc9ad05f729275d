"""Run history: every run (scenario or traced script) with its parameters, machine and outcome.

An SQLite database ``history.sqlite`` in the mpgui home directory, next to a ``runs/`` folder holding the
run files.  The home is, in order: the ``--home`` option, the ``MPGUI_HOME`` environment variable, the
user's data directory (``$XDG_DATA_HOME/mpgui`` or ``~/.local/share/mpgui`` on Linux,
``%LOCALAPPDATA%\\mpgui`` on Windows, ``~/Library/Application Support/mpgui`` on macOS).

A run is entered when it starts (status ``running``, with the runner's pid) and updated when it ends.  A run
whose runner is gone while its entry still says ``running`` is shown as its run file's final status says
(the history could not be updated: its disk was full), or as ``interrupted`` if the run file has none (the
runner died); either way its run file still opens.

A run's start methods are every method its processes used, not only the run's default: a scenario that runs
spawn, fork and forkserver one after another in one run is entered with the methods its parameters name, and
when it ends, with the methods its run file shows were used.  Runs of one comparison (``main.py compare``)
share a comparison id.  A history made before these columns existed gains them when opened to write; read
only, it is read without them (its multi-method runs are labelled from their parameters).

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
from core.trace.store import PRIVATE_DIR_MODE, RunFile, RunFileError, create_private_file, sqlite_uri

from .labels import ordered_methods, params_text

HOME_ENV = "MPGUI_HOME"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs(
    id TEXT PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, scenario TEXT, title TEXT,
    params TEXT, start_method TEXT, machine TEXT, started REAL, ended REAL, status TEXT NOT NULL,
    lesson TEXT, events INTEGER DEFAULT 0, dropped INTEGER DEFAULT 0, exit_code INTEGER, runner_pid INTEGER,
    methods TEXT, comparison TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started);
"""
#: Columns added since the first history: (name, type).  ``_open`` adds those an older database lacks.
_ADDED_COLUMNS = (("methods", "TEXT"), ("comparison", "TEXT"))


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


def _json_list(text):
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class HistoryError(Exception):
    """The history cannot be used; the message is one sentence that says what to do."""


_COLUMNS = ("id", "path", "kind", "scenario", "title", "params", "start_method", "machine", "started", "ended",
            "status", "lesson", "events", "dropped", "exit_code", "runner_pid")
_ALL_COLUMNS = _COLUMNS + tuple(name for name, _ in _ADDED_COLUMNS)


def _outcome_in_run_file(path):
    """How a run whose runner is gone ended, as its run file says: its final status, exit code, events and
    dropped events (the run was finished but the history not updated), else status ``interrupted``."""
    try:
        with RunFile(path) as rf:
            meta = rf.meta()
    except (RunFileError, sqlite3.Error, OSError):
        meta = {}
    status = meta.get("status")
    if not isinstance(status, str) or status == "running":
        return {"status": "interrupted"}
    outcome = {"status": status, "ended": meta.get("ended_wall"), "lesson": meta.get("lesson"),
               "exit_code": meta.get("exit_code")}
    outcome.update((k, meta[k]) for k in ("events", "dropped") if isinstance(meta.get(k), int))
    return outcome


def planned_methods(scenario, params, method):
    """The start methods a scenario run uses: those its ``methods`` parameter names (start_cost, start_methods
    and fork_with_thread run several in one run: "all" is every method the scenario has here, "chosen" the
    run's own), otherwise the run's start method."""
    from .scenarios import ParamError, get
    choice = (params or {}).get("methods")
    if scenario and choice and choice != "chosen":
        try:
            sc = get(scenario)
        except ParamError:
            sc = None
        if sc is not None and any(p.name == "methods" for p in sc.params):
            return sc.available_methods() if choice == "all" else [choice]
    return [method] if method else []


def context_meta(scenario, params, method, comparison=None):
    """What a scenario run's file says of its context besides ``params`` (a dict, which the Perfetto export
    leaves out): the parameters as one line of text and the start methods as text, so every reader of the
    run's metadata (the export's ``otherData``) carries them; and the comparison it belongs to, if any."""
    meta = {"parameters": params_text(params or {}),
            "start_methods": ", ".join(planned_methods(scenario, params, method))}
    if comparison:
        meta["comparison"] = comparison
    return meta


def methods_in_run_file(path):
    """The start methods of the processes a run file shows were started ([] if it cannot be read)."""
    from core.trace.store import RunFile, RunFileError
    try:
        with RunFile(path) as rf:
            return ordered_methods(r.get("method") for r in rf.iter_registrations()
                                   if r.get("t") == "spawned" and isinstance(r.get("method"), str))
    except (RunFileError, OSError, sqlite3.Error):
        return []


#: How long opening the history may wait for another process that holds it (seconds).
OPEN_TIMEOUT = 10.0


class RunHistory:
    """The history in ``home``.  ``readonly`` (listing, looking a run up) creates nothing and works in a home
    this process cannot write; otherwise the home is created if needed and must be writable.  Either way a
    home that cannot be used raises ``HistoryError`` with one sentence."""

    def __init__(self, home=None, readonly=False):
        self.home = home_dir(home)
        self.runs_dir = os.path.join(self.home, "runs")
        self.path = os.path.join(self.home, "history.sqlite")
        self._db = None
        self._columns = set(_COLUMNS)       # what the database has (an older one lacks _ADDED_COLUMNS)
        if os.path.exists(self.home) and not os.path.isdir(self.home):
            raise HistoryError("mpgui's home %s is a file, not a directory: give --home (or MPGUI_HOME) a "
                               "directory." % self.home)
        try:
            self._db = self._open_readonly() if readonly else self._open()
            if self._db is not None:        # a database of another schema is no history either
                self._db.execute("SELECT %s FROM runs LIMIT 0" % ", ".join(_COLUMNS))
                self._columns = {r[1] for r in self._db.execute("PRAGMA table_info(runs)")}
        except OSError as e:
            self.close()
            raise HistoryError(self._unwritable(e.strerror or e)) from None
        except sqlite3.DatabaseError as e:
            self.close()
            if _is_damage(e):
                raise HistoryError("%s is not an mpgui history (%s): move it aside, and mpgui starts a new one."
                                   % (self.path, e)) from None
            raise HistoryError(self._unwritable(e)) from None

    @property
    def _writer(self):
        """The database, for a change: a history opened read-only (or with none on disk) records nothing."""
        if self._db is None:
            raise HistoryError("this history of %s is read-only: open it writable to record runs." % self.home)
        return self._db

    def _unwritable(self, why):
        return ("mpgui cannot write its home %s (%s): give --home (or MPGUI_HOME) a directory you can write to."
                % (self.home, why))

    def _open(self):
        os.makedirs(self.home, mode=PRIVATE_DIR_MODE, exist_ok=True)
        os.makedirs(self.runs_dir, mode=PRIVATE_DIR_MODE, exist_ok=True)
        create_private_file(self.path)
        db = sqlite3.connect(self.path, timeout=OPEN_TIMEOUT, isolation_level=None, check_same_thread=False)
        self._db = db
        deadline = time.monotonic() + OPEN_TIMEOUT
        while True:
            try:
                self._set_up(db)
                break
            except sqlite3.OperationalError as e:
                # Runs started together (a comparison, two commands) open a new history at once: switching
                # it to WAL or creating its tables can find the file locked without SQLite's busy wait.
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        # Runs are entered when they start and end: find out now, before a run starts, that it cannot be.
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        if not os.access(self.runs_dir, os.W_OK):
            raise PermissionError(errno.EACCES, "%s is not writable" % self.runs_dir)
        return db

    @staticmethod
    def _set_up(db):
        """The history's journal mode and tables (what an older history lacks added)."""
        db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL cannot corrupt the history; only losing power can lose its last entries (a run's
        # file has them too), and FULL would sync the disk at every entry (a few ms at each run's start).
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        have = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in have:
                try:
                    db.execute("ALTER TABLE runs ADD COLUMN %s %s" % (name, kind))
                except sqlite3.OperationalError as e:
                    if "duplicate column" not in str(e):     # another process added it meanwhile
                        raise

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

    def begin(self, run_id, path, kind, scenario=None, title=None, params=None, start_method=None, methods=None,
              comparison=None):
        """Enter a run that starts.  ``methods``: every start method it uses (default: those its parameters
        name); ``comparison``: the id of the comparison it is part of."""
        if methods is None:
            methods = planned_methods(scenario, params, start_method)
        self._writer.execute(
            "INSERT OR REPLACE INTO runs(id, path, kind, scenario, title, params, start_method, machine, started,"
            " status, runner_pid, methods, comparison) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
            (run_id, os.path.abspath(path), kind, scenario, title, json.dumps(params or {}), start_method,
             json.dumps(machine_facts()), time.time(), os.getpid(), json.dumps(list(methods)), comparison))

    # -- as a run's observer (core.trace.runner.RunObserver) --------------------------------------------------
    def run_started(self, run):
        meta = getattr(getattr(run, "spec", None), "meta", None) or {}
        methods = [m.strip() for m in (meta.get("start_methods") or "").split(",") if m.strip()] or None
        self.begin(run.run_id, run.out_path, run.kind, run.scenario, run.title, run.params, run.start_method,
                   methods, meta.get("comparison"))

    def run_finished(self, run):
        self.finish(run.run_id, str(run.status), run.lesson, run.events_written, run.dropped, run.exit_code)
        used = methods_in_run_file(run.out_path)
        if used:
            row = self._writer.execute("SELECT methods FROM runs WHERE id=?", (run.run_id,)).fetchone()
            before = _json_list(row[0]) if row else []
            self._writer.execute("UPDATE runs SET methods=? WHERE id=?",
                             (json.dumps(ordered_methods(before + used)), run.run_id))

    def finish(self, run_id, status, lesson=None, events=0, dropped=0, exit_code=None):
        self._writer.execute("UPDATE runs SET ended=?, status=?, lesson=?, events=?, dropped=?, exit_code=?"
                         " WHERE id=?", (time.time(), status, lesson, events, dropped, exit_code, run_id))

    def _select(self, where="", args=(), order="started DESC", limit=None):
        """Rows as dicts: params and machine decoded, ``methods`` a list (from the parameters where the history
        has none), a dead runner's run ``interrupted``."""
        if self._db is None:
            return []
        cols = ", ".join(c if c in self._columns else "NULL AS %s" % c for c in _ALL_COLUMNS)
        query = "SELECT %s FROM runs %s ORDER BY %s" % (cols, where, order)
        if limit is not None:
            query += " LIMIT %d" % int(limit)
        out = []
        for r in self._db.execute(query, args).fetchall():
            d = dict(zip(_ALL_COLUMNS, r))
            d["params"] = _json_or_empty(d["params"])
            d["machine"] = _json_or_empty(d["machine"])
            d["methods"] = _json_list(d["methods"]) or planned_methods(d["scenario"], d["params"],
                                                                        d["start_method"])
            if d["status"] == "running" and not pid_alive(d["runner_pid"]):
                d.update(_outcome_in_run_file(d["path"]))
            out.append(d)
        return out

    def list(self, limit=50):
        return self._select(limit=limit)

    def comparison_runs(self, comparison):
        """The runs of one comparison, in the order they started."""
        if "comparison" not in self._columns:
            return []
        return self._select("WHERE comparison = ?", (comparison,), order="started, rowid")

    def get(self, run_id):
        for d in self.list(limit=100000):
            if d["id"] == run_id or d["id"].startswith(run_id):
                return d
        return None

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None
