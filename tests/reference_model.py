"""The run model of version one, kept unchanged as the reference the compact model (core/trace/model.py) is
tested against: one Python handler call per event, every rule written out one record at a time.

From events to tables: what the GUI, the exports and the summaries show.

``RunModel.ingest(events, registrations, samples, logs)`` takes batches (live or from a run file, in any
order across processes) and keeps:

* ``procs``: one ``ProcInfo`` per process (role, start method, created / started / first instruction /
  exit times, exit code or signal, latest CPU%, RSS, threads);
* ``spans``: finished intervals (lock waits and holds, condition/event/barrier waits, blocked queue and pipe
  operations, manager calls, joins) in a growable numpy table, plus the ones still open;
* ``tasks``: pool tasks (queued, sent to a worker, started, ended, outcome, result consumed);
* ``messages``: every put/get/send/recv with its size and time blocked;
* ``instants``: moments worth a mark on a process's lane (signals sent and handled, shared-memory segments
  created, attached, closed and unlinked, condition notifies, events set and cleared, barriers aborted and
  reset, refused releases, terminate and kill requests, pools created and closed, pipes closed), each kept as
  its event's raw payload so the schema describes it;
* ``counters``: time series (semaphore values, queue depths, barrier waiting, CPU per core, CPU%/RSS per
  process, free-form counters);
* ``objects`` and ``strings`` from registrations, marks, progress and log lines.

Ingestion is a Python loop over ``tolist()`` rows with a dispatch table (``handlers``: kind -> handler): about
1 us per event.  What each kind's payload means is declared in ``schema``; a handler's parameters are named
after its kind's declared fields (``_x`` for a slot it ignores, ``a``/``b``/``c`` for one it keeps raw), which
tests/core/test_schema.py checks, along with every kind being handled here or declared log-only.  Arrays are
built on demand (``spans_array()``, ``tasks_array()``...) so views get numpy, never per-event objects.

No Qt here: the GUI runs this in a worker thread.
"""
import enum
import signal
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from core.trace.arrays import EVENT_DTYPE
from core.trace.events import Kind, Outcome, StartMethod, WorkerExit
from core.trace.schema import enum_text, exit_text


class Span(enum.IntEnum):
    LOCK_WAIT = 1
    LOCK_HOLD = 2
    COND_WAIT = 3
    EVENT_WAIT = 4
    BARRIER_WAIT = 5
    QUEUE_PUT = 6       # blocked in put (bounded queue full)
    QUEUE_GET = 7       # blocked in get (queue empty)
    QUEUE_JOIN = 8
    PIPE_RECV = 9       # blocked in recv
    PIPE_SEND = 10      # blocked in send (pipe full)
    MANAGER_CALL = 11
    PROC_JOIN = 12
    INITIALIZER = 13    # a pool worker's initializer ran (on the worker's lane)


class SpanEnd(enum.IntEnum):
    OK = 0
    TIMEOUT = 1
    OPEN = 2
    BROKEN = 3


SPAN_DTYPE = np.dtype([("uid", "<u8"), ("pid", "<i4"), ("tid", "<i4"), ("kind", "<i2"), ("end", "<i2"),
                       ("t0", "<i8"), ("t1", "<i8"), ("value", "<i8")])
TASK_DTYPE = np.dtype([("pool", "<u8"), ("job", "<i8"), ("index", "<i8"), ("worker", "<i4"),
                       ("outcome", "<i2"), ("method", "<i2"), ("queued", "<i8"), ("sent", "<i8"),
                       ("start", "<i8"), ("end", "<i8"), ("used", "<i8")])
MESSAGE_DTYPE = np.dtype([("uid", "<u8"), ("pid", "<i4"), ("tid", "<i4"), ("kind", "<i2"), ("t", "<i8"),
                          ("nbytes", "<i8"), ("blocked", "<i8"), ("depth", "<i8")])
#: A moment on a lane: ``pid`` is the lane (a terminate request shows on its target's), ``by`` the process that
#: recorded it; ``kind``, ``uid`` and ``a``/``b``/``c`` are the event's, for ``schema.describe``.
INSTANT_DTYPE = np.dtype([("t", "<i8"), ("pid", "<i4"), ("by", "<i4"), ("tid", "<i4"), ("kind", "<u4"),
                          ("uid", "<u8"), ("a", "<i8"), ("b", "<i8"), ("c", "<i4")])

#: Blocking shorter than this in a queue or pipe operation is not worth a span (it is in ``messages``).
MIN_BLOCKED_NS = 50_000
#: A pool worker's initializer that took less is no span: a pool without one reports the few hundred ns
#: between two clock readings, while a real one (even a small one, under fork) takes microseconds.
MIN_INITIALIZER_NS = 2_000

NO_TIME = -1
_OUTCOME_PENDING = -1
#: Outcomes only the pool's parent gives (its worker cannot report them): they beat the worker's own record.
_PARENT_VERDICTS = (int(Outcome.LOST), int(Outcome.TIMEOUT), int(Outcome.CANCELLED))
#: What became of a task its worker was running when it ended, by the pool's reason for the worker's end.
_OUTCOME_BY_WORKER_EXIT = {"died": Outcome.LOST, "timed out": Outcome.TIMEOUT, "stopped": Outcome.CANCELLED}


class Table:
    """An append-only numpy structured table that grows by doubling."""

    def __init__(self, dtype, capacity=1024):
        self.dtype = dtype
        self._a = np.zeros(capacity, dtype=dtype)
        self.n = 0
        self.version = 0

    def append(self, row):
        if self.n == len(self._a):
            self._a = np.concatenate((self._a, np.zeros(len(self._a), dtype=self.dtype)))
        self._a[self.n] = row
        self.n += 1
        self.version += 1

    def extend(self, rows):
        if not len(rows):
            return
        need = self.n + len(rows)
        if need > len(self._a):
            cap = max(need, 2 * len(self._a))
            grown = np.zeros(cap, dtype=self.dtype)
            grown[:self.n] = self._a[:self.n]
            self._a = grown
        self._a[self.n:need] = rows
        self.n = need
        self.version += 1

    def view(self):
        """The rows so far (a view: copy it before keeping it across ingests)."""
        return self._a[:self.n]

    def __len__(self):
        return self.n


@dataclass
class ProcInfo:
    pid: int
    ppid: int = 0
    role: str = "process"
    name: str = ""
    method: str = ""
    daemon: bool = False
    created: int = NO_TIME      # Process() in the parent
    started: int = NO_TIME      # start() returned in the parent
    booted: int = NO_TIME       # first instruction in the child
    exit_recorded: int = NO_TIME    # the process recorded its own end (PROC_EXIT)
    end_seen: int = NO_TIME     # the earliest time another process saw it ended (reaped, gone, a zombie)
    end_reported: int = NO_TIME     # a pool saw its worker end: it waits on the worker's sentinel, so this is
    #                                 within moments of the death
    exitcode: object = None     # int; negative: killed by signal -exitcode
    first: int = NO_TIME        # first event or sample seen
    last: int = NO_TIME         # last sign of life: its latest event, or the latest sample showing it alive
    cpu: float = 0.0
    rss: int = 0
    threads: int = 0
    status: str = ""
    exit_reason: str = ""         # why a pool worker ended: recycled, died, timed_out, stopped
    traced: bool = False
    role_declared: bool = False   # the process said what it is (beats what its parent said)
    uid: int = 0                # the Process object's uid in the parent
    start_us: int = 0           # time inside start() in the parent, in us
    events: int = 0

    @property
    def exited(self):
        """When it ended (ns), or NO_TIME while it is not known to have ended.

        Its own record of its end is exact, and so (to a few ms) is a pool's record of its worker's end.  Any
        other process killed (or ending without recording it) ended between its last sign of life and the
        moment another process saw it gone, which can be much later (a parent joins when it likes): the
        former is shown.  Derived on each read, so the answer does not depend on the order records arrive
        in: live, the monitor's samples reach the run file up to a quarter of a second after the events."""
        if self.exit_recorded != NO_TIME:
            return self.exit_recorded
        if self.end_reported != NO_TIME:
            return self.end_reported
        if self.end_seen == NO_TIME or self.last == NO_TIME:
            return self.end_seen
        return min(self.last, self.end_seen)

    def saw_end(self, t):
        """Another process (a parent, the runner, the monitor) observed at ``t`` that this one had ended."""
        if self.end_seen == NO_TIME or t < self.end_seen:
            self.end_seen = t

    @property
    def state(self):
        if self.exitcode is not None or self.exited != NO_TIME:
            return "exited"
        if self.status == "gone":
            return "gone"
        return "running" if self.first != NO_TIME else "starting"

    @property
    def start_called(self):
        """When start() was called in the parent (ns), or NO_TIME."""
        return self.started - self.start_us * 1000 if self.started != NO_TIME else NO_TIME

    @property
    def start_latency(self):
        """ns from start() being called to the child's first instruction (None if unknown)."""
        if self.start_called == NO_TIME or self.booted == NO_TIME:
            return None
        return self.booted - self.start_called

    def exit_text(self):
        text = self._exit_code_text()
        if self.exit_reason == "stopped":
            # terminate(), close() or the pool's end: SIGTERM (or a clean exit) is how a pool stops its workers,
            # not a crash; only another end is worth naming
            if self.exitcode in (None, 0, -signal.SIGTERM):
                return "stopped by the pool"
            return "stopped by the pool (%s)" % text
        if self.exit_reason and text:
            return "%s (%s)" % (text, self.exit_reason)
        return text or self.exit_reason

    def _exit_code_text(self):
        return "" if self.exitcode is None else exit_text(self.exitcode)


@dataclass
class Series:
    """One counter's samples: times and values (lists; ``arrays()`` gives numpy)."""
    name: str
    unit: str = ""
    t: list = field(default_factory=list)
    v: list = field(default_factory=list)

    def add(self, t, v):
        self.t.append(t)
        self.v.append(v)

    def arrays(self):
        return np.asarray(self.t, dtype=np.int64), np.asarray(self.v, dtype=np.float64)


class RunModel:
    """Everything derived from one run's events.  Feed it with ``ingest``; read tables and arrays."""

    def __init__(self, keep_events=False):
        import threading
        #: Held while ingesting: a reader in another thread (the GUI) takes it to copy what it draws.
        self.lock = threading.RLock()
        #: All events, in time order per batch (for an event log); only if ``keep_events``.
        self.events = Table(EVENT_DTYPE) if keep_events else None
        self.meta = {}
        self.procs = {}                 # pid -> ProcInfo
        self.proc_uids = {}             # Process object uid -> child pid
        self.objects = {}               # uid -> registration dict (kind, name, ...)
        self.strings = {}               # string id -> text
        self.spans = Table(SPAN_DTYPE)
        self.open_spans = {}            # key -> (uid, pid, tid, kind, t0, value)
        self.tasks = Table(TASK_DTYPE)  # one row per pool task, updated in place as the task progresses
        self.task_rows = {}             # (pool, job, index) -> row in ``tasks``
        self._groups = {}               # (pool, job, first index) -> start of a group of tasks still running
        self.jobs = {}                  # (pool, job) -> dict(method, total, submitted, done, failed)
        self.chunks = {}                # (pool, job, first) -> (size, worker pid)
        self.messages = Table(MESSAGE_DTYPE)
        self.instants = Table(INSTANT_DTYPE)
        self.series = {}                # key -> Series (counters over time)
        self.marks = []                 # (t, pid, label, value)
        self.progress = {}              # label -> (t, done, total)
        self.logs = []                  # (t, kind, text)
        self.cpu_cores = []             # list of Series, one per core
        self.cpu_total = Series("CPU total", "%")
        self.t_first = None
        self.t_last = None
        self.events_seen = 0
        self.dropped = 0
        self._holds = defaultdict(list)     # (uid, pid, tid) -> stack of (t_acquired, depth)
        self._barrier_waiting = defaultdict(int)
        #: kind -> handler(t, uid, <the kind's fields a, b, c>, pid, tid); see the module's docstring.
        self.handlers = self._make_handlers()
        self.version = 0

    # ------------------------------------------------------------------------------------------------------
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

    # ------------------------------------------------------------------------------------------------------
    def ingest(self, events=None, regs=(), samples=(), logs=()):
        """Take one batch.  Registrations first, so events can be named; events in time order."""
        with self.lock:
            self._ingest(events, regs, samples, logs)

    def _ingest(self, events, regs, samples, logs):
        for r in regs:
            self._registration(r)
        if events is not None and len(events):
            if events.dtype != EVENT_DTYPE:
                events = events.astype(EVENT_DTYPE)
            order = np.argsort(events["t"], kind="stable")
            events = events[order]
            if self.events is not None:
                self.events.extend(events)
            t_lo, t_hi = int(events["t"][0]), int(events["t"][-1])
            self.t_first = t_lo if self.t_first is None else min(self.t_first, t_lo)
            self.t_last = t_hi if self.t_last is None else max(self.t_last, t_hi)
            self.events_seen += len(events)
            dispatch = self.handlers
            procs = self.procs
            for row in events.tolist():
                t, uid, a, b, kind, c, pid, tid = row
                p = procs.get(pid)
                if p is None:
                    p = self.proc(pid)
                # batches from different rings (and the monitor's samples) may arrive out of order
                if p.first == NO_TIME or t < p.first:
                    p.first = t
                if t > p.last:
                    p.last = t
                p.traced = True
                p.events += 1
                fn = dispatch.get(kind)
                if fn is not None:
                    fn(t, uid, a, b, c, pid, tid)
        for t, s in samples:
            self._sample(t, s)
        for item in logs:
            self.logs.append(tuple(item))
        self.version += 1

    # -- registrations --------------------------------------------------------------------------------------
    def _registration(self, r):
        kind = r.get("t")
        if kind == "proc":                    # the process about itself: authoritative
            p = self.proc(r["pid"])
            if not p.ppid:
                p.ppid = r.get("ppid", 0)
            if not p.role_declared or r.get("role") != "process":
                p.role = r.get("role") or p.role
            p.role_declared = True
            p.name = r.get("name") or p.name
            p.traced = True
        elif kind == "role":
            p = self.proc(r["pid"])
            p.role = r.get("role") or p.role
            p.role_declared = True
            if r.get("name"):
                p.name = r["name"]
        elif kind == "spawned":               # the parent about its child
            p = self.proc(r["pid"])
            p.name = r.get("name") or p.name
            if not p.role_declared:
                p.role = r.get("role") or p.role
            p.method = r.get("method") or p.method
            p.daemon = bool(r.get("daemon"))
            p.uid = r.get("uid", 0)
            self.proc_uids[p.uid] = p.pid
            parent = r.get("parent")
            if parent:
                p.ppid = parent
        elif kind == "extproc":
            p = self.proc(r["pid"])
            p.role = r.get("role") or p.role
            p.name = r.get("name") or p.role
            p.ppid = p.ppid or r.get("ppid", 0)
        elif kind == "exit":                  # the runner saw the program's main process end
            p = self.proc(r["pid"])
            p.exitcode = r.get("exitcode")
            if r.get("time"):
                p.saw_end(r["time"])
        elif kind == "obj":
            self.objects[r["uid"]] = r
        elif kind == "str":
            self.strings[r["id"]] = r["s"]

    # -- events -----------------------------------------------------------------------------------------------
    def _make_handlers(self):
        K = Kind
        handlers = {
            K.PROC_CREATED: self._proc_created, K.PROC_START: self._proc_start, K.PROC_BOOT: self._proc_boot,
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
            K.MARK: self._mark, K.COUNTER: self._counter, K.PROGRESS: self._progress, K.PHASE: self._phase,
        }
        # Moments on the lane of the process that recorded them (the schema says what each one means).
        for kind in (K.RELEASE_ERROR, K.COND_NOTIFY, K.EVENT_SET, K.EVENT_CLEAR, K.BARRIER_ABORT, K.BARRIER_RESET,
                     K.PIPE_CLOSE, K.SHM_CREATE, K.SHM_ATTACH, K.SHM_CLOSE, K.SHM_UNLINK, K.MANAGER_START,
                     K.SIGNAL_SEND, K.SIGNAL_RECV, K.POOL_CREATED, K.POOL_CLOSED):
            handlers[kind] = self._instant(kind)
        return handlers

    def _series(self, key, name, unit=""):
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = Series(name, unit)
        return s

    def _span(self, uid, pid, tid, kind, t0, t1, end=SpanEnd.OK, value=0):
        self.spans.append((uid, pid, tid, kind, end, t0, t1, value))

    def _instant(self, kind):
        def fn(t, uid, a, b, c, pid, tid):
            self.instants.append((t, pid, pid, tid, kind, uid, a, b, c))
        return fn

    # processes
    def _proc_created(self, t, uid, _a, _b, _c, pid, tid):
        child = self.proc_uids.get(uid)
        if child is not None:
            self.procs[child].created = t
        else:
            self._pending_created = getattr(self, "_pending_created", {})
            self._pending_created[uid] = t

    def _proc_start(self, t, uid, child, method, took, pid, tid):
        p = self.proc(child)
        p.started = t
        p.start_us = took
        p.uid = uid
        if not p.ppid or p.ppid != pid:
            p.ppid = pid
        self.proc_uids[uid] = child
        if not p.method:
            p.method = StartMethod(method).name.lower() if method in StartMethod._value2member_map_ else ""
        pending = getattr(self, "_pending_created", None)
        if pending and uid in pending:
            p.created = pending.pop(uid)

    def _proc_boot(self, t, uid, _parent, _b, _c, pid, tid):
        p = self.proc(pid)
        p.booted = t
        if uid:
            self.proc_uids.setdefault(uid, pid)

    def _proc_exit(self, t, uid, code, _b, _c, pid, tid):
        p = self.proc(pid)
        p.exit_recorded = t
        if p.exitcode is None:
            p.exitcode = code

    def _proc_reaped(self, t, uid, child, code, _c, pid, tid):
        p = self.proc(child)
        p.exitcode = code
        p.saw_end(t)

    def _proc_join(self, t, uid, wait, _ended, timed_out, pid, tid):
        if wait >= MIN_BLOCKED_NS:
            self._span(uid, pid, tid, Span.PROC_JOIN, t - wait, t, SpanEnd.TIMEOUT if timed_out else SpanEnd.OK)

    def _asked_to_end(self, kind):
        """terminate() or kill(): a moment on the lane of the process asked to end, next to when it did."""
        def fn(t, uid, target, b, c, pid, tid):
            self.instants.append((t, target, pid, tid, kind, uid, target, b, c))
        return fn

    # locks
    def _acq_request(self, t, uid, _timeout, _b, _c, pid, tid):
        self.open_spans[(Span.LOCK_WAIT, uid, pid, tid)] = (t, 0)

    def _acq_ok(self, t, uid, wait, value, depth, pid, tid):
        if wait > 0:
            self.open_spans.pop((Span.LOCK_WAIT, uid, pid, tid), None)
            self._span(uid, pid, tid, Span.LOCK_WAIT, t - wait, t)
        stack = self._holds[(uid, pid, tid)]
        if not stack or depth <= 1:
            stack.append(t)
            self.open_spans[(Span.LOCK_HOLD, uid, pid, tid, len(stack))] = (t, 0)
        if value >= 0:
            self._series(("value", uid), self.name_of(uid)).add(t, value)

    def _acq_timeout(self, t, uid, wait, _b, _c, pid, tid):
        self.open_spans.pop((Span.LOCK_WAIT, uid, pid, tid), None)
        if wait > 0:
            self._span(uid, pid, tid, Span.LOCK_WAIT, t - wait, t, SpanEnd.TIMEOUT)

    def _release(self, t, uid, hold, value, depth, pid, tid):
        if value >= 0:
            self._series(("value", uid), self.name_of(uid)).add(t, value)
        if depth > 0:                 # an RLock still held at this depth
            return
        key = (uid, pid, tid)
        stack = self._holds.get(key)
        if stack:
            t_acq = stack.pop()
            self.open_spans.pop((Span.LOCK_HOLD, uid, pid, tid, len(stack) + 1), None)
            self._span(uid, pid, tid, Span.LOCK_HOLD, t_acq, t)
        elif hold > 0:                # released by the thread that acquired, but the acquire was not seen
            self._span(uid, pid, tid, Span.LOCK_HOLD, t - hold, t)

    # generic waits
    def _open(self, kind):
        def fn(t, uid, _a, _b, _c, pid, tid):
            self.open_spans[(kind, uid, pid, tid)] = (t, 0)
        return fn

    def _close(self, kind, uid, pid, tid, t, waited, end=SpanEnd.OK):
        """A wait opened by ``_open`` ended at ``t`` after ``waited`` ns (its start, if the opening was not seen)."""
        opened = self.open_spans.pop((kind, uid, pid, tid), None)
        self._span(uid, pid, tid, kind, opened[0] if opened else t - waited, t, end)

    def _cond_woken(self, t, uid, wait, notified, _c, pid, tid):
        self._close(Span.COND_WAIT, uid, pid, tid, t, wait, SpanEnd.OK if notified else SpanEnd.TIMEOUT)

    def _event_wait_end(self, t, uid, wait, flag, _c, pid, tid):
        self._close(Span.EVENT_WAIT, uid, pid, tid, t, wait, SpanEnd.OK if flag else SpanEnd.TIMEOUT)

    def _queue_join(self, t, uid, blocked, _b, _c, pid, tid):
        self._close(Span.QUEUE_JOIN, uid, pid, tid, t, blocked)

    # barrier
    def _barrier_count(self, t, uid, delta):
        self._barrier_waiting[uid] = max(0, self._barrier_waiting[uid] + delta)
        self._series(("waiting", uid), self.name_of(uid) + " waiting").add(t, self._barrier_waiting[uid])

    def _barrier_arrive(self, t, uid, _parties, generation, _waiting, pid, tid):
        self.open_spans[(Span.BARRIER_WAIT, uid, pid, tid)] = (t, generation)
        self._barrier_count(t, uid, +1)

    def _barrier_leave(self, end):
        """A wait at a barrier ended: passed (OK) or broken."""
        def fn(t, uid, wait, generation, _c, pid, tid):
            opened = self.open_spans.pop((Span.BARRIER_WAIT, uid, pid, tid), None)
            self._span(uid, pid, tid, Span.BARRIER_WAIT, opened[0] if opened else t - wait, t, end, generation)
            self._barrier_count(t, uid, -1)
        return fn

    # queues, pipes, ipc, manager
    def _queue_put(self, t, uid, blocked, depth, _c, pid, tid):
        self.messages.append((uid, pid, tid, Kind.QUEUE_PUT, t, -1, blocked, depth))
        if blocked >= MIN_BLOCKED_NS:
            self._span(uid, pid, tid, Span.QUEUE_PUT, t - blocked, t)
        if depth >= 0:
            self._series(("depth", uid), self.name_of(uid) + " depth").add(t, depth)

    def _queue_send(self, t, uid, size, _b, _c, pid, tid):
        self.messages.append((uid, pid, tid, Kind.QUEUE_SEND, t, size, 0, -1))

    def _queue_get(self, t, uid, blocked, size, depth, pid, tid):
        self.messages.append((uid, pid, tid, Kind.QUEUE_GET, t, size, blocked, depth))
        if blocked >= MIN_BLOCKED_NS:
            self._span(uid, pid, tid, Span.QUEUE_GET, t - blocked, t)
        if depth >= 0:
            self._series(("depth", uid), self.name_of(uid) + " depth").add(t, depth)

    def _queue_gave_up(self, kind):
        def fn(t, uid, blocked, _b, _c, pid, tid):
            if blocked >= MIN_BLOCKED_NS:
                self._span(uid, pid, tid, kind, t - blocked, t, SpanEnd.TIMEOUT)
        return fn

    def _queue_task_done(self, t, uid, unfinished, _b, _c, pid, tid):
        if unfinished >= 0:
            self._series(("unfinished", uid), self.name_of(uid) + " unfinished").add(t, unfinished)

    def _pipe_send(self, t, uid, size, blocked, _c, pid, tid):
        self.messages.append((uid, pid, tid, Kind.PIPE_SEND, t, size, blocked, -1))
        if blocked >= MIN_BLOCKED_NS:
            self._span(uid, pid, tid, Span.PIPE_SEND, t - blocked, t, SpanEnd.OK, size)

    def _pipe_recv(self, t, uid, size, blocked, _c, pid, tid):
        self.messages.append((uid, pid, tid, Kind.PIPE_RECV, t, size, blocked, -1))
        if blocked >= MIN_BLOCKED_NS:
            self._span(uid, pid, tid, Span.PIPE_RECV, t - blocked, t, SpanEnd.OK, size)

    def _ipc(self, kind):
        def fn(t, uid, size, channel, _c, pid, tid):
            self.messages.append((uid, pid, tid, kind, t, size, 0, channel))
        return fn

    def _manager_call(self, t, uid, duration, method, raised, pid, tid):
        self._span(uid, pid, tid, Span.MANAGER_CALL, t - duration, t, SpanEnd.BROKEN if raised else SpanEnd.OK,
                   method)

    # pool: tasks live in a numpy table; these handlers fill in their columns as the events arrive
    def _task(self, pool, job, index):
        key = (pool, job, index)
        i = self.task_rows.get(key)
        if i is None:
            j = self.jobs.get((pool, job))
            i = self.task_rows[key] = self.tasks.n
            self.tasks.append((pool, job, index, 0, _OUTCOME_PENDING, j["method"] if j else 0,
                               NO_TIME, NO_TIME, NO_TIME, NO_TIME, NO_TIME))
        return i

    def _set_task(self, i, **cols):
        a = self.tasks._a
        for name, value in cols.items():
            a[name][i] = value
        self.tasks.version += 1

    def _pool_job(self, t, uid, job, tasks, method, pid, tid):
        self.jobs[(uid, job)] = {"method": method, "total": tasks, "submitted": t, "done": 0, "failed": 0,
                                 "ended": NO_TIME, "pid": pid}

    def _chunk_queued(self, t, uid, job, first, size, pid, tid):
        for i in range(first, first + max(size, 1)):
            self._set_task(self._task(uid, job, i), queued=t)
        self.chunks[(uid, job, first)] = (max(size, 1), 0)

    def _chunk_sent(self, t, uid, job, first, worker, pid, tid):
        size, _ = self.chunks.get((uid, job, first), (1, 0))
        self.chunks[(uid, job, first)] = (size, worker)
        for i in range(first, first + size):
            self._set_task(self._task(uid, job, i), sent=t, worker=worker)

    def _task_t0(self, t, uid, job, index, _c, pid, tid):
        self._set_task(self._task(uid, job, index), start=t, worker=pid)

    def _task_end(self, t, uid, job, index, outcome, pid, tid):
        i = self._task(uid, job, index)
        row = self.tasks._a[i]
        if row["outcome"] in _PARENT_VERDICTS:
            # The pool failed it first (this record was read late): the worker finished it but its result
            # never arrived.  The worker's time is the exact end; the verdict stands.
            self._set_task(i, end=t, worker=pid)
            return
        self._set_task(i, end=t, worker=pid, outcome=outcome)
        self._count_end(uid, job, outcome)

    def _count_end(self, pool, job, outcome):
        j = self.jobs.get((pool, job))
        if j is not None:
            j["done"] += 1
            if outcome != Outcome.OK:
                j["failed"] += 1

    def _group_t0(self, t, uid, job, first, count, pid, tid):
        self._groups[(uid, job, first)] = t
        rows = [self._task(uid, job, i) for i in range(first, first + count)]
        tab = self.tasks._a
        pending = [r for r in rows if tab["start"][r] == NO_TIME]
        tab["start"][pending] = t
        tab["worker"][pending] = pid
        self.tasks.version += 1

    def _group_end(self, t, uid, job, first, count, pid, tid):
        """A group of tasks too short to record one by one: each gets an equal share of the group's time."""
        t0 = self._groups.pop((uid, job, first), t)
        rows = np.array([self._task(uid, job, i) for i in range(first, first + count)], dtype=np.int64)
        tab = self.tasks._a
        open_ = rows[tab["end"][rows] == NO_TIME]           # failures were recorded alone, and keep theirs
        k = np.arange(len(rows))[np.isin(rows, open_)]
        step = (t - t0) / max(count, 1)
        tab["start"][open_] = t0 + (k * step).astype(np.int64)
        tab["end"][open_] = t0 + ((k + 1) * step).astype(np.int64)
        tab["worker"][open_] = pid
        tab["outcome"][open_] = Outcome.OK
        j = self.jobs.get((uid, job))
        if j is not None:
            j["done"] += len(open_)
        self.tasks.version += 1

    def _task_lost(self, t, uid, job, index, outcome, pid, tid):
        """The pool failed a task without its worker's answer.  ``t`` is when the pool noticed; a task its
        worker had finished (result not yet sent) keeps the worker's end, and ``tasks_array`` ends any other
        no later than its worker did."""
        i = self._task(uid, job, index)
        row = self.tasks._a[i]
        if row["end"] != NO_TIME:
            if row["outcome"] == Outcome.OK:
                j = self.jobs.get((uid, job))
                if j is not None:
                    j["failed"] += 1
            self._set_task(i, outcome=outcome)
            return
        start = row["start"] if row["start"] != NO_TIME else (row["sent"] if row["sent"] != NO_TIME else t)
        self._set_task(i, end=t, outcome=outcome, start=start)
        self._count_end(uid, job, outcome)

    def _result_used(self, t, uid, job, index, _c, pid, tid):
        if index >= 0:
            self._set_task(self._task(uid, job, index), used=t)
            return
        tab = self.tasks.view()
        sel = (tab["pool"] == uid) & (tab["job"] == job) & (tab["used"] == NO_TIME)
        tab["used"][sel] = t
        self.tasks.version += 1

    def _job_done(self, t, uid, job, _b, _failed, pid, tid):
        j = self.jobs.get((uid, job))
        if j is not None:
            j["ended"] = t

    def _worker_init(self, t, uid, duration, worker, _c, pid, tid):
        """The worker's initializer ran until ``t`` (the worker's own clock reading): a span on its lane, on
        its main thread (whose native id is the pid on Linux)."""
        if duration >= MIN_INITIALIZER_NS:
            self._span(uid, worker, worker, Span.INITIALIZER, t - duration, t)

    def _worker_exit(self, t, uid, worker, code, reason, pid, tid):
        p = self.proc(worker)
        if p.exitcode is None:
            p.exitcode = code
        p.saw_end(t)
        if p.end_reported == NO_TIME:
            p.end_reported = t
        if reason in WorkerExit._value2member_map_:
            p.exit_reason = enum_text(WorkerExit, reason)

    # free-form
    def _mark(self, t, uid, label, value, _c, pid, tid):
        self.marks.append((t, pid, self.strings.get(label, str(label)), value))

    def _phase(self, t, uid, label, _b, _c, pid, tid):
        self.marks.append((t, pid, self.strings.get(label, str(label)), None))

    def _counter(self, t, uid, value, name, _c, pid, tid):
        self._series(("counter", name), self.strings.get(name, "counter %d" % name)).add(t, value)

    def _progress(self, t, uid, done, total, _c, pid, tid):
        self.progress[self.strings.get(uid, "progress")] = (t, done, total)

    # samples from the resource monitor
    def _sample(self, t, s):
        if self.t_first is None or t < self.t_first:
            self.t_first = t
        self.t_last = t if self.t_last is None else max(self.t_last, t)
        cores = s.get("cores")
        if cores is not None:
            while len(self.cpu_cores) < len(cores):
                self.cpu_cores.append(Series("CPU %d" % len(self.cpu_cores), "%"))
            for series, v in zip(self.cpu_cores, cores):
                series.add(t, v)
            self.cpu_total.add(t, sum(cores) / max(1, len(cores)))
        for pr in s.get("procs", ()):
            pid = pr["pid"]
            p = self.procs.get(pid)
            if p is None:
                p = self.proc(pid)
                p.ppid = pr.get("ppid", 0)
                p.name = pr.get("name", "")
                p.role = pr.get("role", "other")
            if p.first == NO_TIME or t < p.first:
                p.first = t
            if pr.get("status") == "zombie":     # ended; its parent has not reaped it yet
                p.saw_end(t)
            else:
                p.last = max(p.last, t)
            p.cpu = pr.get("cpu", 0.0)
            p.rss = pr.get("rss", 0)
            p.threads = pr.get("threads", 0)
            p.status = pr.get("status", p.status)
            self._series(("cpu", pid), "CPU %d" % pid, "%").add(t, p.cpu)
            self._series(("rss", pid), "RSS %d" % pid, "B").add(t, p.rss)
        for pid in s.get("gone", ()):
            p = self.procs.get(pid)
            if p is not None:
                p.saw_end(t)
                p.status = "gone"

    # ------------------------------------------------------------------------------------------------------
    # Tables for views and exports
    # ------------------------------------------------------------------------------------------------------
    def spans_array(self, include_open=True, now=None):
        """Finished spans plus (optionally) the open ones cut at ``now`` (default: the last time seen)."""
        done = self.spans.view()
        if not include_open or not self.open_spans:
            return done.copy()
        now = self.t_last if now is None else now
        rows = []
        for key, (t0, value) in self.open_spans.items():
            kind, uid, pid, tid = key[:4]
            rows.append((uid, pid, tid, kind, SpanEnd.OPEN, t0, max(now or t0, t0), value))
        return np.concatenate((done, np.array(rows, dtype=SPAN_DTYPE)))

    def tasks_array(self):
        """The task table (a copy), with what the workers' ends imply: a task ends when its worker does.

        A task still open when its worker's end is known ends then, as the pool said of the worker (died:
        lost, timed out, stopped: cancelled) or, without a word from the pool, cancelled if the run was
        stopped and lost otherwise.  A task the pool failed after its worker died ends at the death, not when
        the pool noticed.  Derived on each call, so records arriving later (the pool's verdict, the
        monitor's last samples) still count."""
        tab = self.tasks.view().copy()
        ran = np.nonzero(tab["start"] != NO_TIME)[0]
        if not len(ran):
            return tab
        workers = np.unique(tab["worker"][ran])
        info = [self.procs.get(pid) for pid in workers.tolist()]
        died_of = np.array([p.exited if p is not None else NO_TIME for p in info], dtype=np.int64)
        outcome_of = np.array([self._outcome_of_open_task(p) if p is not None else _OUTCOME_PENDING for p in info],
                              dtype=tab["outcome"].dtype)
        w = np.searchsorted(workers, tab["worker"][ran])         # each task's worker, as an index
        known = died_of[w] != NO_TIME
        rows, w = ran[known], w[known]
        died = died_of[w]
        end, start = tab["end"][rows], tab["start"][rows]
        still_open = end == NO_TIME
        tab["outcome"][rows[still_open]] = outcome_of[w[still_open]]
        tab["end"][rows] = np.where(still_open | (end > died), np.maximum(died, start), end)
        return tab

    def _outcome_of_open_task(self, worker):
        outcome = _OUTCOME_BY_WORKER_EXIT.get(worker.exit_reason)
        if outcome is None:
            outcome = Outcome.CANCELLED if self.meta.get("status") == "cancelled" else Outcome.LOST
        return outcome

    def messages_array(self):
        return self.messages.view().copy()

    def instants_array(self):
        """The moments on the lanes (a copy), in the order they were ingested."""
        return self.instants.view().copy()

    def processes_table(self):
        """Processes sorted main first, then by role and creation."""
        order = {"main": 0, "manager": 2, "worker": 3, "process": 4, "forkserver": 5, "resource tracker": 6}
        return sorted(self.procs.values(), key=lambda p: (order.get(p.role, 7), p.created if p.created >= 0
                                                          else (p.first if p.first >= 0 else 1 << 62), p.pid))

    def sync_intervals(self):
        """Lock/semaphore/condition/event/barrier spans as dict rows (the run-file API)."""
        out = []
        for r in self.spans_array(include_open=True):
            out.append({"object": self.name_of(int(r["uid"])), "kind": Span(int(r["kind"])).name.lower(),
                        "pid": int(r["pid"]), "tid": int(r["tid"]), "start_ns": int(r["t0"]),
                        "end_ns": int(r["t1"]), "outcome": SpanEnd(int(r["end"])).name.lower(),
                        "value": int(r["value"])})
        return out

    def counters(self):
        """{name: (times ns, values)} for every counter series."""
        out = {}
        for s in list(self.series.values()) + self.cpu_cores + ([self.cpu_total] if self.cpu_total.t else []):
            out[s.name] = s.arrays()
        return out

    def contention(self):
        """Per lock-like object: acquisitions, contended ones, total/max wait and hold, timeouts."""
        spans = self.spans.view()
        out = {}
        for kind, key_w in ((Span.LOCK_WAIT, "wait"), (Span.LOCK_HOLD, None)):
            sel = spans[spans["kind"] == kind]
            for uid in np.unique(sel["uid"]):
                rows = sel[sel["uid"] == uid]
                d = out.setdefault(int(uid), {"name": self.name_of(int(uid)), "kind": self.kind_of(int(uid)),
                                              "acquired": 0, "contended": 0, "timeouts": 0,
                                              "wait_total_ns": 0, "wait_max_ns": 0, "hold_total_ns": 0,
                                              "hold_max_ns": 0})
                dur = rows["t1"] - rows["t0"]
                if key_w:
                    d["contended"] = int((rows["end"] == SpanEnd.OK).sum())
                    d["timeouts"] = int((rows["end"] == SpanEnd.TIMEOUT).sum())
                    d["wait_total_ns"] = int(dur.sum())
                    d["wait_max_ns"] = int(dur.max()) if len(dur) else 0
                else:
                    d["acquired"] = len(rows)
                    d["hold_total_ns"] = int(dur.sum())
                    d["hold_max_ns"] = int(dur.max()) if len(dur) else 0
        return sorted(out.values(), key=lambda d: -d["wait_total_ns"])

    def summary(self):
        return {"processes": len(self.procs), "events": self.events_seen, "dropped": self.dropped,
                "tasks": len(self.tasks), "spans": len(self.spans), "messages": len(self.messages),
                "instants": len(self.instants),
                "duration_s": ((self.t_last or 0) - self.t0) / 1e9 if self.t_last else 0.0}
