"""From events to tables: what the GUI, the exports and the summaries show, in columns built a chunk at a time.

``RunModel.ingest(events, registrations, samples, logs)`` takes batches (live, or a run file's chunks one at a
time: ``RunModel.from_run_file``) and keeps:

* ``procs``: one ``ProcInfo`` per process (role, start method, created / started / first instruction /
  exit times, exit code or signal, latest CPU%, RSS, threads), from ``lifecycle.ProcessTable``;
* ``spans``: finished intervals (lock waits and holds, condition/event/barrier waits, blocked queue and pipe
  operations, manager calls, joins, pool workers' initializers) as columns (``columns.Columns``), appended
  a chunk at a time with a block index by time (``span_blocks``), plus the ones still open;
* ``tasks``: pool tasks (queued, sent to a worker, started, ended, outcome, result consumed), a row per task
  updated as its records arrive (``pooltasks.PoolTasks``); ``jobs``;
* ``messages``: every put/get/send/recv with its size and time blocked;
* ``instants``: moments worth a mark on a process's lane (signals, shared-memory segments, notifies, events
  set and cleared, barriers aborted and reset, refused releases, requests to end, pools created and closed,
  pipes closed), each kept as its event's raw payload so the schema describes it;
* counter series (``counters.SeriesStore``): semaphore values, queue depths, barrier waiting, free-form
  counters, CPU per core, CPU%/RSS per process;
* ``objects`` and ``strings`` from registrations; marks, progress and log lines.

The raw events are not kept (they stay in the run file: ``store.RunFile.events_between`` reads a time
range): an opened run costs its tables, about 30 to 60 bytes per event, and a pass over a chunk is a few
dozen numpy operations, well under a microsecond per event.

How a chunk is read: its records are put in time order (records of equal time in the order they came, as
version one's model did), grouped by kind, and each kind's handler gets its records' columns as arrays
(``handlers``: kind -> handler(t, uid, <the kind's fields a, b, c>, pid, tid); its parameters are named after
the fields ``schema`` declares, ``_x`` for a slot it ignores, ``a``/``b``/``c`` for one it keeps raw, which
tests/core/test_schema.py checks).  Handlers of kinds whose records pair up (a lock's acquire and release,
a wait's start and end, a pool task's records) gather their columns, and a pass per family pairs them
(``pairing``, ``pooltasks``) with what the previous chunks left open.  Where a record's order among others
matters (the latest start method, the last progress), records carry their position in the run (``seq``).

Two rules differ from version one's model, on purpose:

* a release by a thread that holds nothing closes the object's oldest open acquisition (a semaphore
  acquired in one process and released in another: version one left the hold open forever);
* a wait's span carries ``site``: the call site (``CALLSITE`` records, kind 124: the interned
  "path:line in function") the waiting thread recorded just before the record of that wait; 0 if none.

Queries for views (by object, by time range): ``spans_between``, ``span_rows_of``, ``messages_between``;
``tasks.rows_of(pool, job)``.  They and the other read-only tables (``spans_array``, ``tasks_array``,
``series``, ``contention``, ...) live in ``views.RunViews``, which ``RunModel`` inherits, with the row types
(``Span``, ``SpanEnd``, the dtypes; importable from here too): this module builds the tables, that one reads
them.  No Qt here: the GUI runs this in a worker thread under ``lock``.
"""
import threading
from typing import Dict, List, Optional

import numpy as np

from .arrays import EVENT_DTYPE
from .columns import BlockIndex, Columns, full, group_starts, key_hash, thread_order
from .counters import SampleSeries, Series, SeriesStore
from .events import Kind
from .lifecycle import NO_TIME, PROCESS_KINDS, ProcessTable, ProcInfo, name_the_program
from .pairing import ACQUIRE, RELEASE, LockState, OpenWaits, pair_holds, pair_waits
from .pooltasks import TASK_DTYPE, PoolTasks
from .schema import SCHEMA
from .views import INSTANT_DTYPE, MESSAGE_DTYPE, SPAN_COLUMNS, SPAN_DTYPE, RunViews, Span, SpanEnd

__all__ = ["RunModel", "ProcInfo", "Series", "Span", "SpanEnd", "NO_TIME", "SPAN_DTYPE", "SPAN_COLUMNS", "TASK_DTYPE",
           "MESSAGE_DTYPE", "INSTANT_DTYPE", "MIN_BLOCKED_NS", "MIN_INITIALIZER_NS", "CALLSITE_KIND"]

_MARK_DTYPE = [("t", "<i8"), ("seq", "<i8"), ("pid", "<i4"), ("label", "<i8"), ("value", "<i8"), ("phase", "?")]
_BARRIER_DTYPE = [("t", "<i8"), ("seq", "<i8"), ("uid", "<u8"), ("delta", "<i8")]

#: Blocking shorter than this in a queue or pipe operation is not worth a span (it is in ``messages``).
MIN_BLOCKED_NS = 50_000
#: A pool worker's initializer that took less is no span: a pool without one reports the few hundred ns
#: between two clock readings, while a real one (even a small one, under fork) takes microseconds.
MIN_INITIALIZER_NS = 2_000
#: The kind number reserved for CALLSITE (where a waiting thread blocked): attached to the span of the wait
#: it precedes.  Read by number, so files that have it read the same before ``events.Kind`` names it.
CALLSITE_KIND = 124
#: Records ``in_time_order`` holds back for later chunks, at most (a damaged chunk's start time could make it
#: hold everything).  Normally chunks overlap by a few milliseconds of records.
MAX_HELD_EVENTS = 1 << 20
#: Records that end a wait: the thread's pending call site (a CALLSITE before it) is this wait's.
_WAIT_ENDS = (Kind.ACQ_OK, Kind.ACQ_TIMEOUT, Kind.COND_WOKEN, Kind.EVENT_WAIT_END, Kind.BARRIER_PASS,
              Kind.BARRIER_BROKEN, Kind.QUEUE_GET, Kind.QUEUE_PUT, Kind.QUEUE_FULL, Kind.QUEUE_EMPTY,
              Kind.QUEUE_JOIN, Kind.PIPE_SEND, Kind.PIPE_RECV, Kind.MANAGER_CALL)
_WAIT_END_KINDS = np.array([int(k) for k in _WAIT_ENDS], np.uint32)
#: Records are counted per kind up to this number (the last counts every later kind).
_KIND_COUNT_SIZE = 256
#: Wait families: the span kind, its opening kind, and its closing kinds.
_WAIT_FAMILIES = (Span.COND_WAIT, Span.EVENT_WAIT, Span.QUEUE_JOIN, Span.BARRIER_WAIT)


def in_time_order(run_file):
    """A run file's events as (chunk, rows of it in time order) pieces, together in the order a run read whole
    takes them: by time, records of equal time in the order stored.

    Chunks overlap in time (each holds every ring's records since the collector's last poll, and a ring read
    late holds older ones), so each piece is what is certain: the records no later chunk can precede, those
    up to the smallest start time (``chunk_index``) of the chunks after it.  The rest waits for the next
    chunk; it is what the chunks overlap by, normally a few milliseconds of records."""
    index = run_file.chunk_index()
    ids = np.array([r[0] for r in index], np.int64)
    t0s = np.array([r[2] for r in index], np.int64)
    # the smallest start of the chunks after each one (np.inf past the last)
    after = np.minimum.accumulate(t0s[::-1])[::-1]
    after = np.append(after[1:], np.iinfo(np.int64).max) if len(after) else after
    pending = None
    for cid, events in run_file.iter_chunks(with_ids=True):
        i = np.searchsorted(ids, cid, side="right")         # chunks listed after this one
        mark = after[i - 1] if i > 0 else (t0s.min() if len(t0s) else np.iinfo(np.int64).max)
        buf = events if pending is None else np.concatenate((pending, events))
        order = np.argsort(buf["t"], kind="stable")
        k = int(np.searchsorted(buf["t"][order], mark, side="right"))
        # a damaged start time must not hold back the rest of the run: past a bound, the oldest go anyway
        k = max(k, len(buf) - MAX_HELD_EVENTS)
        if k:
            yield buf, order[:k]
        pending = buf[order[k:]] if k < len(buf) else None
    if pending is not None:
        yield pending, np.arange(len(pending))


def seq_order(seq):
    """``np.argsort(seq, kind="stable")`` for a chunk's rows of one family: their record numbers are mostly
    distinct and close together, so each is put in its place in a table of the numbers' range (a pass, not a
    sort); numbers spread too far, or repeated (a record that closes two spans), are sorted."""
    n = len(seq)
    if n < 2:
        return np.arange(n)
    lo = int(seq.min())
    span = int(seq.max()) - lo + 1
    if span <= 8 * n:
        slot = np.full(span, -1, np.int64)
        slot[seq - lo] = np.arange(n)
        order = slot[slot >= 0]
        if len(order) == n:
            return order
    return np.argsort(seq, kind="stable")


class _Table(Columns):
    """An append-only table: the old name and ``view()`` of all rows as records, for callers that want them."""

    def view(self, name=None):
        if name is None:
            return self.records()
        return super().view(name)


class RunModel(RunViews):
    """Everything derived from one run's events.  Feed it with ``ingest``; read tables and arrays."""

    def __init__(self, keep_events=False):
        #: Held while ingesting: a reader in another thread (the GUI) takes it to copy what it draws.
        self.lock = threading.RLock()
        #: All events, in time order per batch (tests and small tools only: the GUI reads the run file).
        self.events = _Table(EVENT_DTYPE) if keep_events else None
        self.meta: dict = {}
        #: The run file this model reads, if any (a view that needs raw events reads them there).
        self.path: Optional[str] = None
        self.procs: Dict[int, ProcInfo] = {}
        self.objects: Dict[int, dict] = {}
        self.strings: Dict[int, str] = {}
        self.spans = _Table(SPAN_COLUMNS)
        self.span_blocks = BlockIndex()
        self.tasks_book = PoolTasks()
        self.messages = _Table(MESSAGE_DTYPE)
        self.message_blocks = BlockIndex()
        self.instants = _Table(INSTANT_DTYPE)
        self.logs: List[tuple] = []
        self.t_first: Optional[int] = None
        self.t_last: Optional[int] = None
        self.events_seen = 0
        self.dropped = 0
        self._kind_counts = np.zeros(_KIND_COUNT_SIZE, np.int64)
        #: (t0, t1) of stretches a live reader skipped (``note_skipped``).
        self.skipped: List[tuple] = []
        #: How many events those stretches held.
        self.skipped_events = 0
        self.version = 0
        self._processes = ProcessTable()
        self._locks = LockState()
        self._lock_waits: Dict[tuple, int] = {}           # (uid, pid, tid) -> when its ACQ_REQUEST came
        self._waits = {kind: OpenWaits() for kind in _WAIT_FAMILIES}
        self._sites: Dict[tuple, int] = {}                # (uid, pid, tid) -> call site not yet used
        self._event_series = SeriesStore()
        self._sample_series = SampleSeries()
        self._barriers = Columns(_BARRIER_DTYPE)
        self._marks = Columns(_MARK_DTYPE)
        self._progress: Dict[int, tuple] = {}             # label string id -> (t, seq, done, total)
        self._contention: Dict[int, list] = {}
        self._cpu_cores = 0
        self._forgotten = {"spans": 0, "messages": 0, "instants": 0}     # rows ``forget_rows`` dropped
        self._seq = 0
        self._chunk: dict = {}
        self._chunk_sites: Optional[tuple] = None
        self._at = np.zeros(0, np.int64)
        #: kind -> handler(t, uid, <the kind's fields a, b, c>, pid, tid) over arrays; see the docstring.
        self.handlers = self._make_handlers()

    # ------------------------------------------------------------------------------------------------------
    @classmethod
    def from_run_file(cls, run_file):
        """The model of a whole run file (``store.RunFile``), read a chunk at a time: memory for the tables,
        never for all the events at once."""
        m = cls()
        m.path = run_file.path
        with m.lock:
            for reg in run_file.iter_registrations():
                m._registration(reg)
            for events, order in in_time_order(run_file):
                m._ingest_events(events, order)
            for t, s in run_file.iter_samples():
                m._sample(t, s)
            m.logs.extend(run_file.iter_log())
            m.set_meta(run_file.meta())
            m.dropped = run_file.dropped()
            m._settle()
            m.trim()
        return m

    def trim(self):
        """Give back the room the tables keep for rows to come (the run is read whole)."""
        for table in (self.spans, self.messages, self.instants, self.tasks_book.table, self.tasks_book.created,
                      self._event_series.points, self._barriers, self._marks):
            table.trim()

    def set_meta(self, meta):
        self.meta = dict(meta)
        if self.t_first is None and meta.get("created_perf"):
            self.t_first = int(meta["created_perf"])

    @property
    def t0(self):
        """The run's time origin (ns, perf_counter clock)."""
        start = self.meta.get("created_perf")
        if start:
            return int(start) if self.t_first is None else min(int(start), self.t_first)
        return self.t_first or 0

    def name_of(self, uid):
        o = self.objects.get(uid)
        if o is not None:
            return o.get("name") or "#%x" % uid
        return "#%x" % uid

    def kind_of(self, uid):
        o = self.objects.get(uid)
        return o.get("kind", "") if o is not None else ""

    def proc(self, pid):
        p = self.procs.get(pid)
        if p is None:
            p = self.procs[pid] = ProcInfo(pid)
        return p

    @property
    def proc_uids(self):
        return self._processes.proc_uids

    @property
    def tasks(self):
        """The task table's columns (``tasks_array()`` for the table with what workers' ends imply)."""
        return self.tasks_book.table

    @property
    def jobs(self):
        return self.tasks_book.jobs

    # ------------------------------------------------------------------------------------------------------
    def ingest(self, events=None, regs=(), samples=(), logs=()):
        """Take one batch.  Registrations first, so events can be named; events in time order."""
        with self.lock:
            for r in regs:
                self._registration(r)
            if events is not None and len(events):
                self._ingest_events(events)
            for t, s in samples:
                self._sample(t, s)
            for item in logs:
                self.logs.append(tuple(item))
            self._settle()

    def _settle(self):
        procs = self._processes.settle()
        name_the_program(procs, self.meta)
        self.procs.clear()
        self.procs.update(procs)
        self.version += 1

    def _registration(self, r):
        kind = r.get("t")
        if kind == "obj":
            self.objects[r["uid"]] = r
        elif kind == "str":
            self.strings[r["id"]] = r["s"]
        else:
            self._processes.registration(r)

    # -- a chunk of events ---------------------------------------------------------------------------------
    def _ingest_events(self, events, order=None):
        """One chunk: ``order``, if given, the rows to take, in time order (else all, sorted here)."""
        if events.dtype != EVENT_DTYPE:
            events = events.astype(EVENT_DTYPE)
        if order is None:
            order = np.argsort(events["t"], kind="stable")
            self._per_process(events["pid"], events["t"])
        else:
            taken = np.zeros(len(events), bool)   # in storage order: runs of one ring, as the pass likes them
            taken[order] = True
            rows = np.flatnonzero(taken)
            self._per_process(events["pid"][rows], events["t"][rows])
        n = len(order)
        if not n:
            return
        if self.events is not None:
            self.events.extend_records(events[order])
        t_all = events["t"]
        t_lo, t_hi = int(t_all[order[0]]), int(t_all[order[-1]])
        self.t_first = t_lo if self.t_first is None else min(self.t_first, t_lo)
        self.t_last = t_hi if self.t_last is None else max(self.t_last, t_hi)
        kinds = events["kind"][order]
        counts = np.bincount(np.minimum(kinds, _KIND_COUNT_SIZE - 1), minlength=_KIND_COUNT_SIZE)
        self._kind_counts[:len(counts)] += counts
        # kinds above 254 (none is, but damage can make them) share 255, which nothing handles: a byte, sorted
        # by radix
        small = np.minimum(kinds, 255).astype(np.uint8)
        by_kind = np.argsort(small, kind="stable")
        sorted_kinds = small[by_kind]
        bounds = group_starts(sorted_kinds)
        ends = np.append(bounds[1:], n)
        base = self._seq
        self._seq += n
        self.events_seen += n
        self._chunk = {}
        self._sites_before(events, order, kinds, base)
        dispatch = self.handlers
        for lo, hi in zip(bounds.tolist(), ends.tolist()):
            kind = int(sorted_kinds[lo])
            rank = by_kind[lo:hi]
            rows = order[rank]
            if kind in PROCESS_KINDS:
                self._process_records(events[rows], base + rank)
            fn = dispatch.get(kind)
            if fn is None:
                continue
            self._at = base + rank                   # the records' order in the run (see the docstring)
            fn(events["t"][rows], events["uid"][rows], events["a"][rows], events["b"][rows], events["c"][rows],
               events["pid"][rows], events["tid"][rows])
        self._finish_chunk()

    def _per_process(self, pids, t):
        # Records come in runs of one ring (one thread of one process): a few runs a chunk.
        starts = group_starts(pids)
        firsts = np.minimum.reduceat(t, starts)
        lasts = np.maximum.reduceat(t, starts)
        counts = np.diff(np.append(starts, len(t)))
        run_pids = pids[starts]
        if len(np.unique(run_pids)) < len(run_pids):
            u, inv = np.unique(run_pids, return_inverse=True)
            f = np.full(len(u), np.iinfo(np.int64).max)
            la = np.full(len(u), np.iinfo(np.int64).min)
            np.minimum.at(f, inv, firsts)
            np.maximum.at(la, inv, lasts)
            c = np.bincount(inv, weights=counts, minlength=len(u)).astype(np.int64)
            run_pids, firsts, lasts, counts = u, f, la, c
        self._processes.add_seen(run_pids, firsts, lasts, counts)

    def _process_records(self, rows, seq):
        self._processes.add_records({"t": rows["t"], "seq": seq, "kind": rows["kind"], "uid": rows["uid"],
                                     "a": rows["a"], "b": rows["b"], "c": rows["c"], "pid": rows["pid"]})

    def _gather(self, family, **cols):
        self._chunk.setdefault(family, []).append(cols)

    def _family(self, family):
        parts = self._chunk.get(family)
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([full(p[name], len(p["seq"])) for p in parts])
                for name in parts[0]}

    # -- call sites --------------------------------------------------------------------------------------------
    def _sites_before(self, events, order, kinds, base):
        """Which wait-ending records of this chunk have a call site: the CALLSITE their thread recorded on the
        same object since its previous wait-ending record there (carried across chunks: ``_sites``)."""
        self._chunk_sites = None
        is_site = kinds == CALLSITE_KIND
        if not is_site.any() and not self._sites:
            return
        rank = np.flatnonzero(is_site | np.isin(kinds, _WAIT_END_KINDS))
        rows = order[rank]
        uid, pid, tid = events["uid"][rows], events["pid"][rows], events["tid"][rows]
        # only the threads and objects with a call site (this chunk's or a pending one) matter
        site_u = np.concatenate((uid[is_site[rank]], np.array([k[0] for k in self._sites], np.uint64)))
        site_p = np.concatenate((pid[is_site[rank]], np.array([k[1] for k in self._sites], np.int32)))
        site_t = np.concatenate((tid[is_site[rank]], np.array([k[2] for k in self._sites], np.int32)))
        keep = np.isin(key_hash(uid, pid, tid), key_hash(site_u, site_p, site_t))
        rank, rows, uid, pid, tid = rank[keep], rows[keep], uid[keep], pid[keep], tid[keep]
        if not len(rank):
            return
        order2 = np.lexsort((rank, tid, pid, uid))
        rank, rows, uid, pid, tid = rank[order2], rows[order2], uid[order2], pid[order2], tid[order2]
        site = is_site[rank]
        a = events["a"][rows].astype(np.uint64)
        starts = group_starts(uid, pid, tid)
        first = np.zeros(len(rank), bool)
        first[starts] = True
        prev_site = np.zeros(len(rank), bool)
        prev_site[1:] = site[:-1] & ~first[1:]
        ender = ~site
        got = ender & prev_site
        found_seq = [base + rank[got]]
        found_site = [a[np.flatnonzero(got) - 1]]
        # a thread's first wait end in this chunk takes the site it left pending in an earlier one
        keys = list(zip(uid[starts].tolist(), pid[starts].tolist(), tid[starts].tolist()))
        pending = self._sites
        for g, key in enumerate(keys):
            s0 = int(starts[g])
            if key in pending and ender[s0]:
                found_seq.append(np.array([base + rank[s0]]))
                found_site.append(np.array([pending.pop(key)], np.uint64))
        # what stays pending: a thread whose last record here is a call site
        ends = np.append(starts[1:], len(rank)) - 1
        for g, key in enumerate(keys):
            e = int(ends[g])
            if site[e]:
                pending[key] = int(a[e])
            elif key in pending:
                del pending[key]
        seqs = np.concatenate(found_seq).astype(np.int64)
        if len(seqs):
            o = np.argsort(seqs)
            self._chunk_sites = (seqs[o], np.concatenate(found_site).astype(np.uint64)[o])

    def _site_of(self, seq):
        """The call site of each wait-ending record (by its ``seq``), 0 where none."""
        found = self._chunk_sites
        if found is None or not len(seq):
            return np.uint64(0)
        seqs, sites = found
        i = np.clip(np.searchsorted(seqs, seq), 0, len(seqs) - 1)
        return np.where(seqs[i] == seq, sites[i], np.uint64(0))

    # -- handlers ------------------------------------------------------------------------------------------
    def _make_handlers(self):
        K = Kind
        handlers = {
            K.PROC_CREATED: self._proc_record, K.PROC_START: self._proc_start, K.PROC_BOOT: self._proc_boot,
            K.PROC_EXIT: self._proc_exit, K.PROC_REAPED: self._proc_reaped, K.PROC_JOIN: self._proc_join,
            K.PROC_TERMINATE: self._asked_to_end(K.PROC_TERMINATE), K.PROC_KILL: self._asked_to_end(K.PROC_KILL),
            K.ACQ_REQUEST: self._acq_request, K.ACQ_OK: self._acq_ok, K.ACQ_TIMEOUT: self._acq_timeout,
            K.RELEASE: self._release,
            K.COND_WAIT: self._open(Span.COND_WAIT), K.COND_WOKEN: self._cond_woken,
            K.EVENT_WAIT: self._open(Span.EVENT_WAIT), K.EVENT_WAIT_END: self._event_wait_end,
            K.BARRIER_ARRIVE: self._barrier_arrive, K.BARRIER_PASS: self._barrier_leave(SpanEnd.OK),
            K.BARRIER_BROKEN: self._barrier_leave(SpanEnd.BROKEN),
            K.QUEUE_PUT: self._queue_put, K.QUEUE_GET: self._queue_get, K.QUEUE_SEND: self._queue_send,
            K.QUEUE_FULL: self._queue_gave_up(Span.QUEUE_PUT), K.QUEUE_EMPTY: self._queue_gave_up(Span.QUEUE_GET),
            K.QUEUE_TASK_DONE: self._queue_task_done,
            K.QUEUE_JOIN_WAIT: self._open(Span.QUEUE_JOIN), K.QUEUE_JOIN: self._queue_join,
            K.PIPE_SEND: self._pipe_send, K.PIPE_RECV: self._pipe_recv,
            K.IPC_SEND: self._ipc(Kind.IPC_SEND), K.IPC_RECV: self._ipc(Kind.IPC_RECV),
            K.MANAGER_CALL: self._manager_call,
            K.POOL_JOB: self._pool_job, K.POOL_CHUNK_QUEUED: self._chunk_queued, K.POOL_CHUNK_SENT: self._chunk_sent,
            K.POOL_TASK_T0: self._task_t0, K.POOL_TASK: self._task_end, K.POOL_TASK_LOST: self._task_lost,
            K.POOL_RESULT_USED: self._result_used, K.POOL_JOB_DONE: self._job_done,
            K.POOL_GROUP_T0: self._group_t0, K.POOL_GROUP: self._group_end,
            K.POOL_WORKER_INIT: self._worker_init, K.POOL_WORKER_EXIT: self._worker_exit,
            K.MARK: self._mark, K.COUNTER: self._counter, K.PROGRESS: self._progress_record, K.PHASE: self._phase,
        }
        # Moments on the lane of the process that recorded them (the schema says what each one means).
        for kind in (K.RELEASE_ERROR, K.COND_NOTIFY, K.EVENT_SET, K.EVENT_CLEAR, K.BARRIER_ABORT, K.BARRIER_RESET,
                     K.PIPE_CLOSE, K.SHM_CREATE, K.SHM_ATTACH, K.SHM_CLOSE, K.SHM_UNLINK, K.MANAGER_START,
                     K.SIGNAL_SEND, K.SIGNAL_RECV, K.POOL_CREATED, K.POOL_CLOSED):
            handlers[kind] = self._instant(kind)
        # CALLSITE is read by its number (see ``_sites_before``); it is a handler once the schema says the
        # model reads it (until then the schema declares it for the log only).
        spec = SCHEMA.get(CALLSITE_KIND)
        if spec is not None and spec.model:
            handlers[spec.kind] = self._call_site
        return handlers

    def _span(self, uid, pid, tid, kind, t0, t1, end=SpanEnd.OK, value=0, site=0):
        """Spans closed by records of this chunk (arrays; ``self._at`` their records' order)."""
        self._gather("spans", seq=self._at, uid=uid, pid=pid, tid=tid, kind=int(kind), end=end, t0=t0, t1=t1,
                     value=value, site=site)

    def _instant(self, kind):
        def fn(t, uid, a, b, c, pid, tid):
            self._gather("instants", seq=self._at, t=t, pid=pid, by=pid, tid=tid, kind=int(kind), uid=uid, a=a,
                         b=b, c=c)
        return fn

    def _call_site(self, t, uid, site, _b, _c, pid, tid):
        """Read before the other handlers (``_sites_before``): nothing more to do."""

    # processes: replayed in time order by the process table (``lifecycle``)
    def _proc_record(self, t, uid, _a, _b, _c, pid, tid):
        """PROC_CREATED: when the Process object was made (the process table matches it to its child)."""

    def _proc_start(self, t, uid, child, method, took, pid, tid):
        """The child's start() in the parent (process table)."""

    def _proc_boot(self, t, uid, _parent, _b, _c, pid, tid):
        """The child's first instruction (process table)."""

    def _proc_exit(self, t, uid, code, _b, _c, pid, tid):
        """The process recorded its own end (process table)."""

    def _proc_reaped(self, t, uid, child, code, _c, pid, tid):
        """Another process saw it end (process table)."""

    def _worker_exit(self, t, uid, worker, code, reason, pid, tid):
        """A pool saw its worker end (process table)."""

    def _proc_join(self, t, uid, wait, _ended, timed_out, pid, tid):
        sel = wait >= MIN_BLOCKED_NS
        if sel.any():
            self._at = self._at[sel]
            self._span(uid[sel], pid[sel], tid[sel], Span.PROC_JOIN, t[sel] - wait[sel], t[sel],
                       np.where(timed_out[sel] != 0, SpanEnd.TIMEOUT, SpanEnd.OK))

    def _asked_to_end(self, kind):
        """terminate() or kill(): a moment on the lane of the process asked to end, next to when it did."""
        def fn(t, uid, target, b, c, pid, tid):
            self._gather("instants", seq=self._at, t=t, pid=target, by=pid, tid=tid, kind=int(kind), uid=uid,
                         a=target, b=b, c=c)
        return fn

    # locks: gathered, then paired per chunk (``_pair_locks``)
    def _acq_request(self, t, uid, _timeout, _b, _c, pid, tid):
        self._gather("lock_requests", seq=self._at, t=t, uid=uid, pid=pid, tid=tid)

    def _acq_ok(self, t, uid, wait, value, depth, pid, tid):
        waited = wait > 0
        if waited.any():
            at = self._at
            self._at = at[waited]
            self._span(uid[waited], pid[waited], tid[waited], Span.LOCK_WAIT, t[waited] - wait[waited], t[waited],
                       site=self._site_of(self._at))
            self._at = at
        self._gather("lock_wait_ends", seq=self._at[waited], uid=uid[waited], pid=pid[waited], tid=tid[waited])
        self._gather("holds", seq=self._at, t=t, uid=uid, pid=pid, tid=tid, op=ACQUIRE, depth=depth,
                     hold=np.int64(-1))
        self._value_points(t, uid, value)

    def _acq_timeout(self, t, uid, wait, _b, _c, pid, tid):
        self._gather("lock_wait_ends", seq=self._at, uid=uid, pid=pid, tid=tid)
        waited = wait > 0
        if waited.any():
            self._at = self._at[waited]
            self._span(uid[waited], pid[waited], tid[waited], Span.LOCK_WAIT, t[waited] - wait[waited], t[waited],
                       SpanEnd.TIMEOUT, site=self._site_of(self._at))

    def _release(self, t, uid, hold, value, depth, pid, tid):
        self._value_points(t, uid, value)
        sel = depth <= 0              # an RLock still held at a depth > 0 is not released
        self._gather("holds", seq=self._at[sel], t=t[sel], uid=uid[sel], pid=pid[sel], tid=tid[sel], op=RELEASE,
                     depth=depth[sel], hold=hold[sel])

    def _value_points(self, t, uid, value):
        sel = value >= 0
        if sel.any():
            s = self._event_series
            s.add(s.sids("value", uid[sel]), t[sel], value[sel], order=self._at[sel])

    # generic waits: gathered, then paired per chunk (``_pair_waits``)
    def _open(self, kind):
        def fn(t, uid, _a, _b, _c, pid, tid):
            self._gather(("wait", kind), seq=self._at, t=t, uid=uid, pid=pid, tid=tid, opens=True,
                         value=np.int64(0), waited=np.int64(0), end=SpanEnd.OK)
        return fn

    def _close(self, kind, t, uid, pid, tid, waited, end, value=np.int64(0)):
        self._gather(("wait", kind), seq=self._at, t=t, uid=uid, pid=pid, tid=tid, opens=False, value=value,
                     waited=waited, end=end)

    def _cond_woken(self, t, uid, wait, notified, _c, pid, tid):
        self._close(Span.COND_WAIT, t, uid, pid, tid, wait, np.where(notified != 0, SpanEnd.OK, SpanEnd.TIMEOUT))

    def _event_wait_end(self, t, uid, wait, flag, _c, pid, tid):
        self._close(Span.EVENT_WAIT, t, uid, pid, tid, wait, np.where(flag != 0, SpanEnd.OK, SpanEnd.TIMEOUT))

    def _queue_join(self, t, uid, blocked, _b, _c, pid, tid):
        self._close(Span.QUEUE_JOIN, t, uid, pid, tid, blocked, SpanEnd.OK)

    # barrier: its wait, and its waiting counter (computed when asked: ``_barrier_series``)
    def _barrier_arrive(self, t, uid, _parties, generation, _waiting, pid, tid):
        self._gather(("wait", Span.BARRIER_WAIT), seq=self._at, t=t, uid=uid, pid=pid, tid=tid, opens=True,
                     value=generation, waited=np.int64(0), end=SpanEnd.OK)
        self._barriers.extend(t=t, seq=self._at, uid=uid, delta=1)

    def _barrier_leave(self, end):
        """A wait at a barrier ended: passed (OK) or broken."""
        def fn(t, uid, wait, generation, _c, pid, tid):
            self._close(Span.BARRIER_WAIT, t, uid, pid, tid, wait, end, generation)
            self._barriers.extend(t=t, seq=self._at, uid=uid, delta=-1)
        return fn

    # queues, pipes, ipc, manager
    def _message(self, uid, pid, tid, kind, t, nbytes, blocked, depth):
        self._gather("messages", seq=self._at, uid=uid, pid=pid, tid=tid, kind=int(kind), t=t, nbytes=nbytes,
                     blocked=blocked, depth=depth)

    def _blocked(self, uid, pid, tid, kind, t, blocked, end=SpanEnd.OK, value=np.int64(0)):
        sel = blocked >= MIN_BLOCKED_NS
        if sel.any():
            at = self._at
            self._at = at[sel]
            self._span(uid[sel], pid[sel], tid[sel], kind, t[sel] - blocked[sel], t[sel], end,
                       value[sel] if np.ndim(value) else value, site=self._site_of(self._at))
            self._at = at

    def _depth_points(self, what, t, uid, depth):
        sel = depth >= 0
        if sel.any():
            s = self._event_series
            s.add(s.sids(what, uid[sel]), t[sel], depth[sel], order=self._at[sel])

    def _queue_put(self, t, uid, blocked, depth, _c, pid, tid):
        self._message(uid, pid, tid, Kind.QUEUE_PUT, t, -1, blocked, depth)
        self._blocked(uid, pid, tid, Span.QUEUE_PUT, t, blocked)
        self._depth_points("depth", t, uid, depth)

    def _queue_send(self, t, uid, size, _b, _c, pid, tid):
        self._message(uid, pid, tid, Kind.QUEUE_SEND, t, size, 0, -1)

    def _queue_get(self, t, uid, blocked, size, depth, pid, tid):
        self._message(uid, pid, tid, Kind.QUEUE_GET, t, size, blocked, depth)
        self._blocked(uid, pid, tid, Span.QUEUE_GET, t, blocked)
        self._depth_points("depth", t, uid, depth.astype(np.int64))

    def _queue_gave_up(self, kind):
        def fn(t, uid, blocked, _b, _c, pid, tid):
            self._blocked(uid, pid, tid, kind, t, blocked, SpanEnd.TIMEOUT)
        return fn

    def _queue_task_done(self, t, uid, unfinished, _b, _c, pid, tid):
        self._depth_points("unfinished", t, uid, unfinished)

    def _pipe_send(self, t, uid, size, blocked, _c, pid, tid):
        self._message(uid, pid, tid, Kind.PIPE_SEND, t, size, blocked, -1)
        self._blocked(uid, pid, tid, Span.PIPE_SEND, t, blocked, value=size)

    def _pipe_recv(self, t, uid, size, blocked, _c, pid, tid):
        self._message(uid, pid, tid, Kind.PIPE_RECV, t, size, blocked, -1)
        self._blocked(uid, pid, tid, Span.PIPE_RECV, t, blocked, value=size)

    def _ipc(self, kind):
        def fn(t, uid, size, channel, _c, pid, tid):
            self._message(uid, pid, tid, kind, t, size, 0, channel)
        return fn

    def _manager_call(self, t, uid, duration, method, raised, pid, tid):
        self._span(uid, pid, tid, Span.MANAGER_CALL, t - duration, t,
                   np.where(raised != 0, SpanEnd.BROKEN, SpanEnd.OK), method, site=self._site_of(self._at))

    # pool: gathered, then applied per chunk by the task table (``pooltasks``)
    def _pool_record(self, name, t, uid, x, y, pid):
        self._gather(("pool", name), seq=self._at, t=t, pool=uid, job=x, first=y[0], value=y[1], pid=pid)

    def _pool_job(self, t, uid, job, tasks, method, pid, tid):
        self._pool_record("job", t, uid, job, (tasks, method), pid)

    def _chunk_queued(self, t, uid, job, first, size, pid, tid):
        self._pool_record("queued", t, uid, job, (first, size), pid)

    def _chunk_sent(self, t, uid, job, first, worker, pid, tid):
        self._pool_record("sent", t, uid, job, (first, worker), pid)

    def _task_t0(self, t, uid, job, index, _c, pid, tid):
        self._pool_record("start", t, uid, job, (index, 0), pid)

    def _task_end(self, t, uid, job, index, outcome, pid, tid):
        self._pool_record("end", t, uid, job, (index, outcome), pid)

    def _task_lost(self, t, uid, job, index, outcome, pid, tid):
        self._pool_record("lost", t, uid, job, (index, outcome), pid)

    def _result_used(self, t, uid, job, index, _c, pid, tid):
        self._pool_record("used", t, uid, job, (index, 0), pid)

    def _job_done(self, t, uid, job, _b, _failed, pid, tid):
        self._pool_record("done", t, uid, job, (0, 0), pid)

    def _group_t0(self, t, uid, job, first, count, pid, tid):
        self._pool_record("group_start", t, uid, job, (first, count), pid)

    def _group_end(self, t, uid, job, first, count, pid, tid):
        self._pool_record("group_end", t, uid, job, (first, count), pid)

    def _worker_init(self, t, uid, duration, worker, _c, pid, tid):
        """The worker's initializer ran until ``t`` (the worker's own clock reading): a span on its lane, on
        its main thread (whose native id is the pid on Linux)."""
        sel = duration >= MIN_INITIALIZER_NS
        if sel.any():
            self._at = self._at[sel]
            w = worker[sel].astype(np.int32)
            self._span(uid[sel], w, w, Span.INITIALIZER, t[sel] - duration[sel], t[sel])

    # free-form
    def _mark(self, t, uid, label, value, _c, pid, tid):
        self._marks.extend(t=t, seq=self._at, pid=pid, label=label, value=value, phase=False)

    def _phase(self, t, uid, label, _b, _c, pid, tid):
        self._marks.extend(t=t, seq=self._at, pid=pid, label=label, value=0, phase=True)

    def _counter(self, t, uid, value, name, _c, pid, tid):
        s = self._event_series
        s.add(s.sids("counter", name), t, value, order=self._at)

    def _progress_record(self, t, uid, done, total, _c, pid, tid):
        for label, tt, s, d, n in zip(uid.tolist(), t.tolist(), self._at.tolist(), done.tolist(), total.tolist()):
            old = self._progress.get(label)
            if old is None or (tt, s) >= old[:2]:
                self._progress[label] = (tt, s, d, n)

    # -- the end of a chunk: the families' passes, then the tables ------------------------------------------
    def _finish_chunk(self):
        self._pair_locks()
        for kind in _WAIT_FAMILIES:
            self._pair_waits(kind)
        pool = {name: self._family(("pool", name)) for name in ("job", "queued", "sent", "start", "end", "lost",
                                                                   "used", "done", "group_start", "group_end")}
        pool = {name: tuple(full(f[c], len(f["seq"])) for c in ("seq", "t", "pool", "job", "first",
                                                                                   "value", "pid"))
                for name, f in pool.items() if f is not None}
        if pool:
            self.tasks_book.ingest(pool)
        self._append_spans()
        self._append("messages", self.messages, self.message_blocks)
        self._append("instants", self.instants)
        self._event_series.flush()
        self._chunk = {}
        self._chunk_sites = None

    def _pair_locks(self):
        req = self._family("lock_requests")
        ends = self._family("lock_wait_ends")
        if req is not None or ends is not None:
            # an ACQ_REQUEST opens the thread's wait; an ACQ_OK that waited, or an ACQ_TIMEOUT, ends it: what
            # counts is each thread's last such record
            parts = [p for p in (req, ends) if p is not None]
            seq = np.concatenate([p["seq"] for p in parts])
            uid = np.concatenate([p["uid"] for p in parts])
            pid = np.concatenate([p["pid"] for p in parts])
            tid = np.concatenate([p["tid"] for p in parts])
            t = np.concatenate([req["t"] if p is req else np.full(len(p["seq"]), NO_TIME, np.int64) for p in parts])
            o = thread_order(seq, uid, pid, tid)
            if not len(o):
                o = np.zeros(0, np.int64)
            last = np.append(group_starts(uid[o], pid[o], tid[o])[1:], len(o)) - 1 if len(o) else o
            li = o[last]
            for u, p, th, tt in zip(uid[li].tolist(), pid[li].tolist(), tid[li].tolist(), t[li].tolist()):
                if tt == NO_TIME:
                    self._lock_waits.pop((u, p, th), None)
                else:
                    self._lock_waits[(u, p, th)] = tt
        h = self._family("holds")
        if h is None or not len(h["seq"]):
            return
        n = len(h["seq"])
        col = {name: full(h[name], n) for name in ("op", "depth", "hold")}
        spans = pair_holds(self._locks, h["seq"], h["t"], h["uid"], h["pid"], h["tid"], col["op"], col["depth"],
                           col["hold"])
        if len(spans.t0):
            self._at = spans.seq
            self._span(spans.uid, spans.pid, spans.tid, Span.LOCK_HOLD, spans.t0, spans.t1)

    def _pair_waits(self, kind):
        f = self._family(("wait", kind))
        if f is None:
            return
        n = len(f["seq"])
        opens = full(f["opens"], n)
        value = full(f["value"], n).astype(np.int64)
        waited = full(f["waited"], n).astype(np.int64)
        end = full(f["end"], n)
        closes, t0 = pair_waits(self._waits[kind], f["seq"], f["t"], f["uid"], f["pid"], f["tid"], opens, value,
                                waited)
        if len(closes):
            self._at = f["seq"][closes]
            self._span(f["uid"][closes], f["pid"][closes], f["tid"][closes], kind, t0, f["t"][closes], end[closes],
                       value[closes], site=self._site_of(self._at))

    def _append(self, family, table, blocks=None):
        f = self._family(family)
        if f is None:
            return None
        o = seq_order(f["seq"])
        n = len(o)
        first = table.extend(**{name: full(f[name], n)[o] for name in table.names})
        if blocks is not None:
            t = table.view("t")[first:]
            blocks.add(first, len(table), t, t)
        return first

    def _append_spans(self):
        first = self._append("spans", self.spans)
        if first is None:
            return
        sp = self.spans
        t0, t1 = sp.view("t0")[first:], sp.view("t1")[first:]
        self.span_blocks.add(first, len(sp), t0, t1)
        self._count_contention(first)

    def _count_contention(self, first):
        """Per lock-like object: what ``contention()`` reports, kept up to date as spans arrive."""
        sp = self.spans
        kind = sp.view("kind")[first:]
        for k, is_wait in ((Span.LOCK_WAIT, True), (Span.LOCK_HOLD, False)):
            sel = np.flatnonzero(kind == k) + first
            if not len(sel):
                continue
            uid = sp.view("uid")[sel]
            dur = sp.view("t1")[sel] - sp.view("t0")[sel]
            end = sp.view("end")[sel]
            u, inv = np.unique(uid, return_inverse=True)
            total = np.zeros(len(u), np.int64)
            np.add.at(total, inv, dur)
            top = np.full(len(u), np.iinfo(np.int64).min)
            np.maximum.at(top, inv, dur)
            count = np.bincount(inv, minlength=len(u))
            ok = np.bincount(inv, weights=end == SpanEnd.OK, minlength=len(u)).astype(np.int64)
            timeouts = np.bincount(inv, weights=end == SpanEnd.TIMEOUT, minlength=len(u)).astype(np.int64)
            for i, key in enumerate(u.tolist()):
                c = self._contention.get(key)
                if c is None:
                    # acquired, contended, timeouts, wait total, wait max, hold total, hold max, has waits, holds
                    c = self._contention[key] = [0, 0, 0, 0, 0, 0, 0, False, False]
                if is_wait:
                    c[1] += int(ok[i])
                    c[2] += int(timeouts[i])
                    c[3] += int(total[i])
                    c[4] = max(c[4], int(top[i])) if c[7] else int(top[i])
                    c[7] = True
                else:
                    c[0] += int(count[i])
                    c[5] += int(total[i])
                    c[6] = max(c[6], int(top[i])) if c[8] else int(top[i])
                    c[8] = True

    # samples from the resource monitor
    def _sample(self, t, s):
        if self.t_first is None or t < self.t_first:
            self.t_first = t
        self.t_last = t if self.t_last is None else max(self.t_last, t)
        series = self._sample_series
        cores = s.get("cores")
        if cores is not None:
            self._cpu_cores = max(self._cpu_cores, len(cores))
            for i, v in enumerate(cores):
                series.add_point(("core", i), "%", t, v)
            series.add_point(("total", 0), "%", t, sum(cores) / max(1, len(cores)))
        self._processes.sample(t, s, series.add_point)

    # ------------------------------------------------------------------------------------------------------
    # Tables for views and exports: ``views.RunViews``; what follows changes the tables
    # ------------------------------------------------------------------------------------------------------
    def note_skipped(self, n, t0, t1):
        """A live reader that could not keep up skipped ``n`` events between t0 and t1 (ns): they count, and
        the stretch is listed in ``skipped`` (the run file has them; a model read from it has them all)."""
        with self.lock:
            self.events_seen += n
            self.skipped_events += n
            self._seq += n
            self.t_first = t0 if self.t_first is None else min(self.t_first, t0)
            self.t_last = t1 if self.t_last is None else max(self.t_last, t1)
            # what was open before the gap may have closed in it: no span is paired across it
            self._locks.skipped(t1)
            for waits in self._waits.values():
                waits.skipped()
            self._lock_waits.clear()
            if self.skipped and t0 <= self.skipped[-1][1]:
                self.skipped[-1] = (self.skipped[-1][0], max(t1, self.skipped[-1][1]))
            else:
                self.skipped.append((t0, t1))
            self.version += 1

    def forget_rows(self):
        """Drop the finished spans, messages, instants and counter points (of events) kept so far: for a
        reader that streams them out a chunk at a time (``export.export_run``) and needs only what is still
        open, the tasks and the processes.  Their totals (``summary``, ``contention``) stay."""
        for name, table in (("spans", self.spans), ("messages", self.messages), ("instants", self.instants)):
            self._forgotten[name] += len(table)
            table.n = 0
            table.version += 1
        self.span_blocks = BlockIndex()
        self.message_blocks = BlockIndex()
        self._event_series.points.n = 0
        self._event_series.points.version += 1
        self._event_series._cache = None

    def nbytes(self):
        """What the model's tables take, in bytes (an estimate: the Python objects are not counted)."""
        tables = (self.spans, self.messages, self.instants, self.tasks_book.table, self.tasks_book.created,
                  self._event_series.points, self._barriers, self._marks)
        return sum(t.nbytes() for t in tables) + self._sample_series.nbytes()
