"""Run files: one SQLite database (WAL) per run, written while the run goes and readable at any time.

Why SQLite: a run must survive a crash of anything (GUI, workload, the runner itself) with what was recorded
so far, be readable while it is written (the GUI tails it live), and answer queries for the history.  WAL
gives one writer and many readers without blocking; each poll of the collector is one short transaction.

Events are stored in chunks: a BLOB of up to ``CHUNK_EVENTS`` records per collector batch, so writing costs
one INSERT per batch instead of one per event, and a reader holds one chunk at a time (``iter_chunks``).  A
chunk is compressed (its ``codec``, see ``chunks``): times as differences, the records' bytes grouped by
position, Zstandard.  A hot lock loop's events take 1.3 to 2 bytes each instead of 48.  Files written before
chunks had a codec hold raw records, and still read.  Registrations (processes, objects, strings), resource
samples and log lines are JSON rows.

A run file may have a size cap (``max_size``): past it, new events are dropped and counted (the ``size
cap`` row of the drops table, and the ``size_cap`` metadata), and the run goes on.

``RunWriter`` writes (one per run, thread-safe); ``RunFile`` reads, also from a file another process is
writing, and tolerates corrupt or truncated files: it returns what is valid and says what was not.

No Qt here.
"""
import json
import os
import pathlib
import sqlite3
import threading
import time
from typing import Any, Dict, List, Optional

from .chunks import (CHUNK_EVENTS, CODEC_RAW, CODEC_WRITTEN, CODEC_ZSHUFFLE, CODEC_ZSTD, ZLIB_LEVEL,  # noqa: F401
                     ZSTD_LEVEL, ChunkError, count_from_data, decode_events, encode_events)

#: Run files hold a program's output and arguments, so only their owner may read them (SQLite creates the
#: ``-wal`` and ``-shm`` companions with the permissions of the database file).  Directories mpgui makes
#: for them are the owner's only too.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

FORMAT_NAME = "mpgui-run"
#: 2: event chunks have a codec (version 1 files have raw chunks and no codec column: still read).
FORMAT_VERSION = 2
RUN_SUFFIX = ".mpgrun"
#: A run file's default size cap (``--max-size``): past it, new events are dropped and counted.
DEFAULT_MAX_SIZE = 2 << 30
#: The smallest cap (an empty run file takes a few 4 KiB pages; the rest is room for the run).
MIN_MAX_SIZE = 1 << 20
#: Events stop this far below the cap (an eighth of the cap, at most 16 MiB), so that the rest of the run
#: (registrations, the program's output, samples, the final status) still fits under it.
CAP_ROOM_DIVISOR = 8
CAP_ROOM_MAX = 16 << 20
#: The row of the drops table that counts events dropped because the run file reached its cap.
CAP_DROPS_ROW = "size cap"
#: How long a writer waits for another connection's write to the same file to end (the runner and its
#: collector process write one after the other; a reader leaving WAL mode takes the lock for a moment).
BUSY_TIMEOUT_MS = 10_000
#: Space a run holds beside its file and gives back when a write fails for lack of room, so that the run's
#: final metadata (a few of the run file's pages in its log) and the history can still be written.
RESERVE_BYTES = 1 << 20
#: The files SQLite keeps beside a database while it is open (and after a crash).
_COMPANIONS = ("-wal", "-shm", "-journal")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS regs(id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, t0 INTEGER NOT NULL,
                                  t1 INTEGER NOT NULL, data BLOB NOT NULL, codec INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS samples(id INTEGER PRIMARY KEY, t INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS drops(ring TEXT PRIMARY KEY, dropped INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY, t INTEGER NOT NULL, kind TEXT NOT NULL,
                               text TEXT NOT NULL);
"""


class RunFileError(Exception):
    """A run file that cannot be read at all; the message says what to do."""


def sqlite_uri(path, mode):
    """The SQLite URI that opens ``path`` with ``mode`` (ro, rw...).  The path is percent-encoded: a ``#``
    or ``?`` in a directory name would otherwise end the path and start the URI's fragment or query."""
    return "%s?mode=%s" % (pathlib.Path(os.path.abspath(path)).as_uri(), mode)


def create_private_file(path, exclusive=False):
    """Create ``path`` readable by its owner only.  An existing file is kept as it is, or, if ``exclusive``,
    is an error (FileExistsError)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
    os.close(os.open(path, flags, PRIVATE_FILE_MODE))


def _hold_space(directory, size):
    """An anonymous file of ``size`` bytes in ``directory`` (so on the run file's disk), or None if there is no
    room for it.  Closing it gives the space back; so does the end of this process, however it ends."""
    import tempfile
    try:
        f = tempfile.TemporaryFile(dir=directory)
    except OSError:
        return None
    try:
        f.write(b"\0" * size)
        f.flush()
        return f
    except OSError:
        f.close()
        return None


def _leave_wal(db):
    """Close ``db``, a run file's connection, leaving the file whole and alone: the log checkpointed into it
    and the file switched out of WAL mode, so SQLite removes the -wal and -shm files and readers of the
    finished file make none.  While another connection has the file open (a live writer, a reader), the
    switch is refused and left to the last one to close."""
    for statement in ("PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA journal_mode=DELETE"):
        try:
            db.execute(statement)
        except sqlite3.Error:
            break
    db.close()


def _exists_message(path):
    return ("%s already holds a run: choose another path for --out, or add --force to replace it." % path)


def _check_replaceable(path, replace):
    """Raise RunFileError unless ``path`` is a run file and ``replace`` says it may go."""
    try:
        RunFile(path).close()
    except RunFileError:
        raise RunFileError("%s is not an mpgui run file, and mpgui does not overwrite other files: choose "
                           "another path for --out." % path) from None
    if not replace:
        raise RunFileError(_exists_message(path))


def _writer_pragmas(db):
    # synchronous=OFF: no fsync.  A crash of any process (GUI, runner, workload) cannot corrupt a WAL
    # database without fsync; only losing power can, and a run is not worth the 3x write cost.
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA busy_timeout=%d" % BUSY_TIMEOUT_MS)


def _claim_run_file(path, replace):
    """The connection of a new run's own file at ``path``, or RunFileError with one sentence.

    A run never writes into another run's file: the file is new, or empty (a name reserved by
    ``RunHistory.new_run_path``), and it is claimed by one exclusive transaction that finds it without
    tables, so of two runners given one path only the first gets it.  An existing run file is replaced only
    with ``replace``; any other file is left as it is."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=PRIVATE_DIR_MODE, exist_ok=True)
        if os.path.isdir(path):
            raise RunFileError("%s is a directory: give --out the path of a file (a name ending in %s)."
                               % (path, RUN_SUFFIX))
        if os.path.exists(path) and os.path.getsize(path) > 0:
            _check_replaceable(path, replace)
            for p in (path,) + tuple(path + s for s in _COMPANIONS):
                if os.path.exists(p):
                    os.unlink(p)
        create_private_file(path)
    except OSError as e:
        raise RunFileError("Cannot create the run file %s (%s): choose a path in a directory you can write "
                           "to." % (path, e.strerror or e)) from None
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        # 4 KiB pages: compressed event chunks are BLOBs of a few to a few hundred KiB, and larger pages leave
        # more of a chunk's last page empty (with 64 KiB pages, a hot run's file was a fifth larger).  The
        # page size is taken when the first table is created, so it is set before the claim.
        db.execute("PRAGMA page_size=4096")
        # no disk syncs, as the writer (_writer_pragmas): the claim is one exclusive transaction whether or not
        # it is synced, and syncing it cost a few ms at every run's start
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN EXCLUSIVE")
        if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            db.execute("ROLLBACK")
            raise RunFileError(_exists_message(path))
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode=WAL")
        _writer_pragmas(db)
    except sqlite3.DatabaseError as e:
        db.close()
        raise RunFileError("%s cannot be used for a run (%s): choose another path for --out." % (path, e)) from None
    except RunFileError:
        db.close()
        raise
    return db


class RunWriter:
    """Appends to a run file.  Every method commits, so a crash loses at most the batch being written.

    ``RunWriter(path, meta)`` claims a new run's file; ``RunWriter.attach(path)`` writes into a file another
    writer claimed (the runner claims, its collector process writes the events while the program runs, and
    the runner writes the final status after the collector is done: one writer at a time).

    With ``max_size`` (bytes), the file stops growing there: event chunks stop ``CAP_ROOM_DIVISOR``-th of the
    cap below it (so the program's output, registrations and the final status still fit), everything else at
    it; what is left out is counted (``cap``, stored as the ``size_cap`` metadata and, for events, as the
    ``CAP_DROPS_ROW`` row of the drops table, so the run's drops include them) and the run goes on.

    A write that fails (the disk is full, the file may grow no more) never raises into the threads that
    record: the first failure is kept in ``failure``, everything committed before it stays, and later writes
    are dropped; the runner sees ``failure`` and stops the run.  ``finish()`` still stores the final metadata
    then: the writer holds ``RESERVE_BYTES`` of disk in an anonymous file (gone with the writer, even if it is
    killed) and gives them back first, and if the file itself may grow no more, a checkpoint moves the log
    into the database to make room in the log."""

    def __init__(self, path, meta=None, replace=False, max_size=None):
        self._setup(path, max_size)
        self._db = _claim_run_file(self.path, replace)
        self._reserve = _hold_space(os.path.dirname(os.path.abspath(self.path)), RESERVE_BYTES)
        base = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "status": "running",
                "created_wall": time.time(), "created_perf": time.perf_counter_ns(), "max_size": self.max_size}
        base.update(meta or {})
        self.created_perf = base["created_perf"]
        if not self.set_meta(**base):
            self.close()
            raise RunFileError("Cannot write the run file %s (%s): free some space or choose another path for "
                               "--out." % (self.path, self.failure))

    @classmethod
    def attach(cls, path, max_size=None):
        """A writer of the run file at ``path``, which another writer claimed and set up and which writes its
        final status (and holds the reserve for it); RunFileError with one sentence if it cannot be opened
        for writing."""
        self = cls.__new__(cls)
        self._setup(path, max_size)
        try:
            self._db = sqlite3.connect(sqlite_uri(self.path, "rw"), uri=True, check_same_thread=False,
                                       isolation_level=None)
            _writer_pragmas(self._db)
        except sqlite3.Error as e:
            raise RunFileError("Cannot write the run file %s (%s): check that it exists and is writable."
                               % (self.path, e)) from None
        return self

    def _setup(self, path, max_size):
        self.path = os.fspath(path)
        self.created_perf = None
        self._lock = threading.Lock()
        self._db = None
        self._reserve = None
        self.events_written = 0
        #: Events dropped in all: by the rings (their totals, as the collector reported them) and by the cap.
        self.dropped = 0
        self._drops = {}
        #: The first write that failed (sqlite3.Error or OSError), or None.
        self.failure: Optional[BaseException] = None
        self.max_size: Optional[int] = int(max_size) if max_size else None
        room = min(self.max_size // CAP_ROOM_DIVISOR, CAP_ROOM_MAX) if self.max_size else 0
        self._event_limit = self.max_size - room if self.max_size else None
        #: What the cap left out, once it was reached (``hit_perf``: when, perf_counter ns).
        self.cap: Dict[str, Any] = {"limit": self.max_size, "hit_perf": None, "events_dropped": 0, "lines_dropped": 0,
                    "samples_dropped": 0, "registrations_dropped": 0}
        self._events_capped = False
        self._cap_changed = False
        self._page_size = None

    # -- writing -----------------------------------------------------------------------------------------------
    def _commit(self, work):
        """Run ``work(db)`` in one transaction; False (and ``failure`` set) if it could not be stored."""
        with self._lock:
            if self._db is None or self.failure is not None:
                return False
            try:
                # IMMEDIATE: the write lock first (waiting up to the busy timeout for it), not after reading.  A
                # deferred transaction that reads, then writes, fails at once with "database is locked" when
                # another connection (the run's other writer, a checkpoint) wrote in between: a cut-short run.
                self._db.execute("BEGIN IMMEDIATE")
                work(self._db)
                self._write_cap(self._db)
                self._db.execute("COMMIT")
                return True
            except (sqlite3.Error, OSError) as e:
                self.failure = e
                self._rollback()
                return False

    def _rollback(self):
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass                            # nothing was begun, or the failure already ended it

    @staticmethod
    def _meta_rows(items):
        return [(k, json.dumps(v)) for k, v in items.items()]

    # -- the size cap --------------------------------------------------------------------------------------
    def _size(self, db):
        """The database's size in bytes now, including what this transaction added (pages in the log
        count: they are the file's once checkpointed)."""
        if self._page_size is None:
            self._page_size = db.execute("PRAGMA page_size").fetchone()[0]
        return db.execute("PRAGMA page_count").fetchone()[0] * self._page_size

    def _fits(self, db, nbytes, limit=None):
        """Whether ``nbytes`` more stay under the cap (``limit``: the cap itself unless given)."""
        if self.max_size is None:
            return True
        return self._size(db) + nbytes <= (self.max_size if limit is None else limit)

    def _left_out(self, what, n):
        """Count ``n`` items of ``what`` (events, lines, samples, registrations) the cap left out."""
        if not n:
            return
        if self.cap["hit_perf"] is None:
            self.cap["hit_perf"] = time.perf_counter_ns()
        self.cap[what + "_dropped"] += n
        self._cap_changed = True

    def _write_cap(self, db):
        if not self._cap_changed:
            return
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", ("size_cap", json.dumps(self.cap)))
        db.execute("INSERT OR REPLACE INTO drops(ring, dropped) VALUES(?, ?)",
                   (CAP_DROPS_ROW, self.cap["events_dropped"]))
        self._cap_changed = False

    def adopt_cap(self, cap):
        """Carry on from what another writer of this file (a collector process) reported of the cap."""
        self.cap = dict(cap)
        self._events_capped = self.cap.get("events_dropped", 0) > 0

    def totals(self):
        """(events stored, events dropped) as the file has them, whoever wrote them; None if it cannot say."""
        with self._lock:
            if self._db is None:
                return None
            try:
                events = self._db.execute("SELECT coalesce(sum(n), 0) FROM chunks").fetchone()[0]
                dropped = self._db.execute("SELECT coalesce(sum(dropped), 0) FROM drops").fetchone()[0]
            except sqlite3.Error:
                return None
        return int(events), int(dropped)

    @property
    def capped(self):
        """Whether the run file reached its cap (new events are dropped)."""
        return self.cap["hit_perf"] is not None

    # -- what is stored --------------------------------------------------------------------------------------
    def set_meta(self, **items):
        rows = self._meta_rows(items)
        return self._commit(lambda db: db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", rows))

    def add_batch(self, batch):
        """Store one collector ``Batch``: events as chunks of at most ``CHUNK_EVENTS`` (compressed),
        registrations, drop totals."""
        ev = batch.events
        # Encoded before taking the lock: the CPU-heavy part of storing events.
        chunks = [(len(part), int(part["t"].min()), int(part["t"].max()), encode_events(part))
                  for part in (ev[i:i + CHUNK_EVENTS] for i in range(0, len(ev), CHUNK_EVENTS))]
        regs = [(json.dumps(m, separators=(",", ":")),) for m in batch.metas]
        stored = [0]

        def work(db):
            for n, t0, t1, data in chunks:
                if self._events_capped or not self._fits(db, len(data), self._event_limit):
                    self._events_capped = True
                    self._left_out("events", n)
                    continue
                db.execute("INSERT INTO chunks(n, t0, t1, data, codec) VALUES(?, ?, ?, ?, ?)",
                           (n, t0, t1, data, CODEC_WRITTEN))
                stored[0] += n
            self._add_regs(db, regs)
            if batch.drops:
                db.executemany("INSERT OR REPLACE INTO drops(ring, dropped) VALUES(?, ?)", list(batch.drops.items()))

        if not self._commit(work):
            return False
        self.events_written += stored[0]
        if batch.drops:
            self._drops.update(batch.drops)
        self.dropped = sum(self._drops.values()) + self.cap["events_dropped"]
        return True

    def _add_regs(self, db, rows):
        if not rows:
            return
        if self._fits(db, sum(len(r[0]) for r in rows)):
            db.executemany("INSERT INTO regs(body) VALUES(?)", rows)
        else:
            self._left_out("registrations", len(rows))

    def add_registrations(self, records):
        """Registrations from the runner itself (the program's exit, notes): same table as the processes'."""
        rows = [(json.dumps(m, separators=(",", ":")),) for m in records]
        return self._commit(lambda db: self._add_regs(db, rows))

    def add_samples(self, samples):
        """``samples``: list of (t_perf_ns, dict) from the resource monitor."""
        if not samples:
            return True
        rows = [(t, json.dumps(s, separators=(",", ":"))) for t, s in samples]

        def work(db):
            if self._fits(db, sum(len(r[1]) for r in rows)):
                db.executemany("INSERT INTO samples(t, body) VALUES(?, ?)", rows)
            else:
                self._left_out("samples", len(rows))
        return self._commit(work)

    def add_logs(self, rows):
        """``rows``: list of (t_perf_ns, kind, text): lines the program printed, the runner's notes."""
        if not rows:
            return True

        def work(db):
            if self._fits(db, sum(len(r[2]) for r in rows)):
                db.executemany("INSERT INTO log(t, kind, text) VALUES(?, ?, ?)", rows)
            else:
                self._left_out("lines", len(rows))
        return self._commit(work)

    def add_log(self, kind, text, t=None):
        return self.add_logs([(t if t is not None else time.perf_counter_ns(), kind, text)])

    def finish(self, registrations=(), **items):
        """Store the run's final metadata (its status...) and ``registrations`` (the program's exit), also when
        the disk is full: the reserve is given back first, which leaves room for a few pages in the log; if
        that is not enough, a checkpoint moves what the log holds into the database and empties the log.
        Returns whether it was stored."""
        rows = self._meta_rows(items)
        regs = [(json.dumps(m, separators=(",", ":")),) for m in registrations]
        with self._lock:
            # The reserve goes first, whoever found the disk full: the collector process may have, while this
            # writer wrote nothing since.  A checkpoint comes only on the second try: it fills the room the
            # reserve gave back with the log's pages, and fails if they do not all fit.
            self._release_reserve()
            for retry in (False, True):
                if self._db is None:
                    return False
                try:
                    if retry:
                        self._checkpoint()
                    self._db.execute("BEGIN IMMEDIATE")
                    self._add_regs(self._db, regs)
                    self._db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", rows)
                    self._write_cap(self._db)
                    self._db.execute("COMMIT")
                    return True
                except (sqlite3.Error, OSError):
                    self._rollback()
            return False

    def _checkpoint(self):
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass                            # no room for the log's pages: the write may still fit

    def _release_reserve(self):
        if self._reserve is not None:
            self._reserve.close()
            self._reserve = None

    def close(self):
        self._release_reserve()
        with self._lock:
            if self._db is not None:
                _leave_wal(self._db)
                self._db = None


#: The tables every run file has.
_RUN_TABLES = {"meta", "regs", "chunks", "samples", "drops", "log"}

_NUMBER = (int, float)
_OPTIONAL_TEXT = (str, type(None))
#: The type of each metadata value mpgui writes.  A value of another type is damage and is left out, so no
#: reader meets a text where it expects a time; keys not named here are kept as they are.
META_TYPES = {
    "format": str, "version": int, "status": str, "run_id": str, "kind": str, "command": list,
    "title": _OPTIONAL_TEXT, "scenario": _OPTIONAL_TEXT, "params": dict, "start_method": _OPTIONAL_TEXT,
    "machine": dict, "script": str, "args": list, "created_wall": _NUMBER, "created_perf": int,
    "started_wall": _NUMBER, "ended_wall": _NUMBER, "ended_perf": int, "runner_pid": int, "program_pid": int,
    "exit_code": (int, type(None)), "dropped": int, "events": int, "lesson": _OPTIONAL_TEXT,
    "result": (dict, type(None)), "error": _OPTIONAL_TEXT, "max_size": (int, type(None)), "size_cap": dict,
}


def _meta_value_ok(key, value):
    expected = META_TYPES.get(key)
    if expected is None:
        return True
    if isinstance(value, bool):             # JSON true is no number, whatever Python's bool says
        return bool in (expected if isinstance(expected, tuple) else (expected,))
    return isinstance(value, expected)  # type: ignore[arg-type]


class RunFile:
    """Reads a run file, finished or still being written.

    ``read_new()`` returns what was added since the last call (the GUI tails a live run with it);
    ``read_all()`` everything.  Damaged chunks are skipped and described in ``problems``.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise RunFileError("Run file %s does not exist: check the path, or list runs with "
                               "'main.py runs'." % self.path)
        if os.path.isdir(self.path):
            raise RunFileError("%s is a directory: give the path of a .mpgrun file, or a run id from "
                               "'main.py runs'." % self.path)
        try:
            with open(self.path, "rb") as f:
                head = f.read(16)
        except OSError as e:
            raise RunFileError("Cannot read %s (%s): check its permissions, or copy the file somewhere you can "
                               "read it." % (self.path, e.strerror or e)) from None
        if not head:
            raise RunFileError("%s is empty: its run never started recording; record the run again." % self.path)
        if not head.startswith(b"SQLite format 3"):
            raise RunFileError("%s is not an mpgui run file (it is not an SQLite database): open a "
                               ".mpgrun file written by 'main.py run' or 'main.py trace'." % self.path)
        self.problems: List[str] = []
        self._undecodable = 0
        try:
            self._db = sqlite3.connect(sqlite_uri(self.path, "ro"), uri=True, check_same_thread=False)
            # Text that is not UTF-8 (damage) is read with replacement characters and reported, rather than
            # failing every query that meets it.
            self._db.text_factory = self._decode
            self._db.execute("PRAGMA query_only=1")
            # A file cut short still gives its old length in its header, and SQLite calls that corrupt unless
            # told to read the pages that are there (nothing is written: the connection is read-only).
            self._db.execute("PRAGMA writable_schema=1")
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise RunFileError("%s cannot be read as a run file (%s): it is damaged beyond recovery; "
                               "record the run again." % (self.path, e)) from None
        self._meta = self._read_meta()
        if self._meta.get("format") != FORMAT_NAME:
            # Without its format mark, a file is still a run file if the mark was lost to damage and the
            # file has a run file's tables.
            if "format" in self._meta or not self.problems or not _RUN_TABLES <= tables:
                raise RunFileError("%s is an SQLite database but not an mpgui run file: open a .mpgrun file "
                                   "written by 'main.py run' or 'main.py trace'." % self.path)
        # Files from before chunks had a codec hold raw records only.
        try:
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(chunks)")}
        except sqlite3.DatabaseError:
            columns = {"codec"}
        self._chunk_cols = "n, data, %s" % ("codec" if "codec" in columns else CODEC_RAW)
        self._query_model = None
        self._cursor = {"chunks": 0, "regs": 0, "samples": 0, "log": 0}
        self._lock = threading.Lock()

    def _decode(self, raw):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self._undecodable += 1
            return raw.decode("utf-8", "replace")

    def _read_meta(self):
        """The metadata, without what damage made of it: keys that are not text, values that are not JSON or
        not of their key's type (each reported in ``problems``)."""
        out = {}
        for _, key, raw in self._rows("meta", "key, value", 0, id_column="rowid"):
            if not isinstance(key, str):
                self._problem("run metadata: a key that is not text (%r) skipped" % (key,))
                continue
            try:
                value = json.loads(raw)
            except (TypeError, ValueError):
                self._problem("run metadata %r is not valid JSON; ignored" % key)
                continue
            if not _meta_value_ok(key, value):
                self._problem("run metadata %r has a value of the wrong type (%r); ignored" % (key, value))
                continue
            out[key] = value
        return out

    def meta(self, refresh=True):
        if refresh:
            self._meta = self._read_meta()
        return dict(self._meta)

    def _problem(self, text):
        if text not in self.problems:
            self.problems.append(text)

    # -- reading rows, one at a time on damage --------------------------------------------------------------
    def _rows(self, table, cols, after, id_column="id"):
        """Rows of ``table`` with id > after, in id order.  On damage, fall back to row-by-row and skip."""
        undecodable = self._undecodable
        try:
            return self._fetch(table, cols, after, id_column)
        finally:
            if self._undecodable > undecodable:
                self._problem("%s: %d text value(s) are not valid UTF-8 (read with replacement characters)"
                              % (table, self._undecodable - undecodable))

    def _fetch(self, table, cols, after, id_column):
        row_q = "SELECT {id}, {cols} FROM {table} WHERE {id} {op} ? ORDER BY {id}".format
        try:
            rows = self._db.execute(row_q(id=id_column, cols=cols, table=table, op=">"), (after,)).fetchall()
        except sqlite3.DatabaseError as e:
            rows = list(self._damaged_rows(table, cols, after, id_column, e))
        return self._ascending(table, rows, after)

    def _ascending(self, table, rows, after):
        """Of rows asked for with an id above ``after`` in id order, those that are: a damaged table can answer
        with rows that are not (an id of 0, the same rows again), and a reader that goes on from the last id
        it got would then read them forever."""
        out = []
        for r in rows:
            if type(r[0]) is int and r[0] > after:
                out.append(r)
                after = r[0]
        if len(out) < len(rows):
            self._problem("%s: %d row(s) out of place (damage) skipped" % (table, len(rows) - len(out)))
        return out

    def _damaged_rows(self, table, cols, after, id_column, first_err):
        """Rows of ``table`` with id > after read one at a time, skipping those that cannot be read (reported,
        with ``first_err``, the error that sent the reading here)."""
        row_q = "SELECT {id}, {cols} FROM {table} WHERE {id} {op} ? ORDER BY {id}".format
        id_q = "SELECT {id} FROM {table} WHERE {id} {op} ? ORDER BY {id}".format
        try:
            ids = [r[0] for r in self._db.execute(id_q(id=id_column, table=table, op=">"), (after,))]
        except sqlite3.DatabaseError:
            ids = []
            # The index itself is damaged: probe ids upward until a long run of misses.
            misses, i = 0, after + 1
            while misses < 1000:
                try:
                    r = self._db.execute(id_q(id=id_column, table=table, op="="), (i,)).fetchone()
                except sqlite3.DatabaseError:
                    r = None
                if r is None:
                    misses += 1
                else:
                    misses = 0
                    ids.append(i)
                i += 1
        bad = 0
        for i in ids:
            try:
                r = self._db.execute(row_q(id=id_column, cols=cols, table=table, op="="), (i,)).fetchone()
            except sqlite3.DatabaseError:
                bad += 1
                continue
            if r is not None:
                yield r
        self._problem("%s: %d damaged row(s) skipped (%s)" % (table, max(bad, 1), first_err))

    def _iter_rows(self, table, cols, batch=64):
        """Rows of ``table`` in id order, ``batch`` at a time: what a pass over a run of any size holds."""
        query = "SELECT id, %s FROM %s WHERE id > ? ORDER BY id LIMIT ?" % (cols, table)
        after = 0
        while True:
            undecodable = self._undecodable
            try:
                rows = self._ascending(table, self._db.execute(query, (after, batch)).fetchall(), after)
            except sqlite3.DatabaseError as e:
                yield from self._ascending(table, list(self._damaged_rows(table, cols, after, "id", e)), after)
                return
            finally:
                if self._undecodable > undecodable:
                    self._problem("%s: %d text value(s) are not valid UTF-8 (read with replacement characters)"
                                  % (table, self._undecodable - undecodable))
            if not rows:
                return
            yield from rows
            after = rows[-1][0]

    def _chunk_events(self, cid, n, data, codec, scratch=None):
        """A chunk row's events (EVENT_DTYPE), or None (and a problem told) if its events cannot be had
        (``scratch``: see ``decode_events``)."""
        if not isinstance(data, bytes):
            self._problem("event chunk %d has no event data; its events are skipped" % cid)
            return None
        if not isinstance(codec, int) or isinstance(codec, bool):
            self._problem("event chunk %d lost the mark of its encoding; its events are skipped" % cid)
            return None
        if not isinstance(n, int) or isinstance(n, bool):
            n = count_from_data(data, codec)     # the count only repeats what the data says
            if n is None:
                self._problem("event chunk %d has neither an event count nor whole events; skipped" % cid)
                return None
            self._problem("event chunk %d lost its event count; its %d events were counted from its data"
                          % (cid, n))
        try:
            return decode_events(data, n, codec, scratch)
        except ChunkError as e:
            self._problem("event chunk %d %s; its events are skipped" % (cid, e))
            return None

    def iter_chunks(self, with_ids=False, ids=None):
        """The run's events one chunk at a time (EVENT_DTYPE arrays of at most ``CHUNK_EVENTS``), in the order
        they were stored: a pass over a run of any size in bounded memory.  Damaged chunks are skipped and
        described in ``problems``.  Independent of ``read_new``'s cursor.  ``with_ids``: (chunk id, events)
        pairs; ``ids``: only those chunks (a time range a view asks for: see ``chunk_index``)."""
        if ids is not None:
            rows = (r for r in (self._one_row("chunks", self._chunk_cols, cid) for cid in sorted(ids))
                    if r is not None)
        else:
            rows = self._iter_rows("chunks", self._chunk_cols, batch=4)
        scratch: list = []
        for cid, n, data, codec in rows:
            events = self._chunk_events(cid, n, data, codec, scratch)
            if events is not None and len(events):
                yield (cid, events) if with_ids else events

    def _one_row(self, table, cols, rid):
        try:
            return self._db.execute("SELECT id, %s FROM %s WHERE id = ?" % (cols, table), (rid,)).fetchone()
        except sqlite3.DatabaseError as e:
            self._problem("%s: row %d cannot be read (%s); skipped" % (table, rid, e))
            return None

    def chunk_index(self, after=0):
        """(id, events, t0, t1) of each event chunk (with an id above ``after``), in the order stored, from the
        chunks table's own columns (no event data is read): which chunks hold a time range, how far chunks
        overlap in time, what a live reader has yet to read."""
        return [(cid, n, t0, t1) for cid, n, t0, t1 in self._rows("chunks", "n, t0, t1", after)
                if all(isinstance(x, int) and not isinstance(x, bool) for x in (n, t0, t1))]

    def iter_registrations(self):
        """Every registration (dicts), in the order stored, a few at a time."""
        for rid, body in self._iter_rows("regs", "body", batch=1024):
            reg = self._json_dict(body)
            if reg is None:
                self._problem("registration %d is not valid JSON; skipped" % rid)
            else:
                yield reg

    def iter_samples(self):
        """Every resource sample as (t, dict), in the order stored, a few at a time."""
        for sid, t, body in self._iter_rows("samples", "t, body", batch=256):
            sample = self._json_dict(body)
            if sample is not None and isinstance(t, int):
                yield t, sample
            else:
                self._problem("resource sample %d is not valid; skipped" % sid)

    def iter_log(self):
        """Every log line (the program's output, notes) as (t, kind, text), in the order stored."""
        for _, t, kind, text in self._iter_rows("log", "t, kind, text", batch=1024):
            yield t, kind, text

    @staticmethod
    def _json_dict(body):
        try:
            value = json.loads(body)
        except (TypeError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def read_new(self, events=True):
        """Everything added since the last call: (events ndarray, registrations, samples, log rows).  Without
        ``events``, the event chunks are left to the caller (``chunk_index``, ``iter_chunks``) and none is
        returned."""
        with self._lock:
            cur = self._cursor
            parts = []
            for cid, n, data, codec in (self._rows("chunks", self._chunk_cols, cur["chunks"]) if events else ()):
                cur["chunks"] = cid
                chunk = self._chunk_events(cid, n, data, codec)
                if chunk is not None:
                    parts.append(chunk)
            import numpy as np

            from .arrays import EVENT_DTYPE
            new_events = np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)
            regs = []
            for rid, body in self._rows("regs", "body", cur["regs"]):
                cur["regs"] = rid
                try:
                    reg = json.loads(body)
                except (TypeError, ValueError):
                    reg = None
                if isinstance(reg, dict):
                    regs.append(reg)
                else:
                    self._problem("registration %d is not valid JSON; skipped" % rid)
            samples = []
            for sid, t, body in self._rows("samples", "t, body", cur["samples"]):
                cur["samples"] = sid
                try:
                    sample = json.loads(body)
                except (TypeError, ValueError):
                    sample = None
                if isinstance(sample, dict) and isinstance(t, int):
                    samples.append((t, sample))
                else:
                    self._problem("resource sample %d is not valid; skipped" % sid)
            logs = []
            for lid, t, kind, text in self._rows("log", "t, kind, text", cur["log"]):
                cur["log"] = lid
                logs.append((t, kind, text))
            return new_events, regs, samples, logs

    def read_all(self):
        """The whole run from the start (resets the ``read_new`` cursor)."""
        with self._lock:
            self._cursor = {"chunks": 0, "regs": 0, "samples": 0, "log": 0}
        return self.read_new()

    def dropped(self):
        """Events the rings had to drop, in total (counts lost to damage are reported and left out)."""
        total = 0
        for _, ring, n in self._rows("drops", "ring, dropped", 0, id_column="rowid"):
            if isinstance(n, int) and n >= 0:
                total += n
            else:
                self._problem("the drop count of ring %s is damaged (%r); left out" % (ring, n))
        return total

    def model(self):
        """A ``RunModel`` of the whole run (processes, tasks, sync intervals, messages, counters), read a chunk
        at a time."""
        from .model import RunModel
        return RunModel.from_run_file(self)

    # The query API a user reaches for first; each returns plain Python rows or numpy arrays.  They share
    # one model, read from the file on the first query.
    def _queries(self):
        if self._query_model is None:
            self._query_model = self.model()
        return self._query_model

    def processes(self):
        return self._queries().processes_table()

    def sync_intervals(self):
        return self._queries().sync_intervals()

    def messages(self):
        return self._queries().messages_array()

    def counters(self):
        return self._queries().counters()

    def tasks(self):
        return self._queries().tasks_array()

    def close(self):
        live = self._written_now()
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        # A read-only connection cannot remove the -wal and -shm files it found or made; the last reader of a
        # run file whose writer is gone does it through a connection of its own (never while a writer works:
        # its checkpoint would hold the writer up).
        if not live and any(os.path.exists(self.path + c) for c in ("-wal", "-shm")):
            try:
                db = sqlite3.connect(sqlite_uri(self.path, "rw"), uri=True, timeout=0)
            except sqlite3.Error:
                return                          # a file this process may only read: leave it as it is
            _leave_wal(db)

    def _written_now(self):
        """Whether a runner still writes this run: its status says running and its process is alive."""
        try:
            meta = self._read_meta()
        except sqlite3.Error:
            return False
        if meta.get("status") != "running":
            return False
        pid = meta.get("runner_pid")
        from .procs import pid_alive            # psutil: only for a file that says it is still being written
        return isinstance(pid, int) and pid_alive(pid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
