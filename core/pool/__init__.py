"""core.pool: core's own process Pool -- the stdlib's API, traced, faster where it can be, never hangs.

``Pool`` keeps ``multiprocessing.Pool``'s API exactly (same arguments, result classes, errors and messages)
and adds what the stdlib lacks: a worker that dies (SIGKILL, OOM killer, segfault, ``os._exit``) fails the
tasks it held with ``core.WorkerLostError`` and is replaced; ``task_timeout=`` stops an overrunning task by
killing its worker (``core.TaskTimeoutError``); ``progress=`` reports ``(done, total)``; Ctrl+C in the caller
terminates the pool; and, when tracing is on, every worker and task is recorded (``Kind.POOL_*``).

Data flow::

  |============================ caller's process ==============================|== workers ===|

  caller threads            manager thread (one per pool, owns every pipe)
  --------------            ----------------------------------------------------
  map / imap / apply  ->    jobs: {id: _Job}   open jobs (FIFO)  requeued segments
     (job + wake byte)         |                                       ^
                               | cut runs of chunks; pickle;           | untouched tasks of a
                               | one message per batch, one task       | dead worker
                               v pipe per worker                       |
                            +---------+  task pipe  (frames)    +----------+
                            | _Worker | ----------------------> |  worker  |  runs each chunk,
                            | records | <---------------------- | process  |  item by item
                            +---------+  result pipe (frames)   +----------+
                               |   ^ sentinels (exit)  ^ shared slots: chunk seq, task, start
                               |   +-------------------+---------+
                               v
  result objects   <-- delivered in the manager thread, or in the callback thread when the
  (get / next)         job has callback / error_callback / progress (user code never runs in
                       the manager, so a slow callback cannot delay death or timeout detection)

  feeder thread: iterates the caller's generator for imap/imap_unordered lazily (read-ahead bounded);
                 lists, tuples and ranges are sliced by the manager directly.  An exception from the
                 generator ends the results at its position, after every result before it (with
                 chunksize > 1 the items of the chunk it interrupted are not run), as in the stdlib.

The manager waits on one selector: every worker's result pipe, every worker's sentinel, a wake-up pipe
for the caller threads, and a worker's task pipe while a write to it is pending (writes are non-blocking,
so the manager never blocks on a pipe).  A sentinel that fires means a worker ended: if it announced it was
leaving (maxtasksperchild reached), it is replaced silently; otherwise the tasks it held fail with
``WorkerLostError`` and it is replaced.

Dispatch.  A worker gets work when it is idle.  While a job's tasks are measured to be short, the manager
keeps up to ``PREFETCH_SECONDS`` of measured work queued per worker and packs several chunks into one
message (``BATCH_SECONDS``); for long tasks a worker holds one chunk at a time, so chunksize=1 spreads
uneven tasks as evenly as the stdlib's shared queue.  Each message is one *batch* of *runs*; a run is a
contiguous range of one job's tasks made of whole chunks.  Workers answer once per batch (with a
``task_timeout``: also before starting a task, once ``BATCH_SECONDS`` have passed since they last sent).

Death accounting.  Each worker owns a slot of a shared int64 array: the sequence number of the chunk it
is running and (with a timeout) the task and its start time.  When a worker dies, the chunk it was running
fails with ``WorkerLostError``, and so do chunks it had finished but not yet reported (their results died
with it; at most about ``BATCH_SECONDS`` of short tasks; a separate error says so): tasks are never run
twice.  Chunks it had not started are requeued onto other workers.  With a ``task_timeout`` the slot also
names the running task and workers send finished results before starting a task (once ``BATCH_SECONDS``
have passed), so killing an overrunning task fails it (``TaskTimeoutError``), fails at most that much of
short finished tasks, and requeues the rest of its chunk.  A worker whose initializer raises breaks the pool: every job fails with that exception
(the stdlib respawns such workers forever and hangs).

Where core deliberately differs from the stdlib (everything else is checked against it by
tests/core/test_pool_diff.py):

* results that wait forever in the stdlib raise here: ``PoolTerminatedError`` after ``terminate()``,
  ``WorkerLostError``/``TaskTimeoutError``, a task exception the parent cannot unpickle
  (``pickle.UnpicklingError`` with the remote traceback), a callback that raises (reported on stderr, the
  result still completes);
* an unpicklable result fails only its own task with the stdlib's ``MaybeEncodingError`` (the stdlib fails
  the whole chunk, and names its internal wrapper for an unpicklable exception);
* ``imap``/``imap_unordered`` with chunksize > 1 return the iterator classes (``next(timeout)`` works) and a
  failing task fails alone (the stdlib's flattening generator fails the rest of the chunk and stops);
* ``map``/``starmap`` with chunksize < 1 and a non-empty input raise ``ValueError`` (the stdlib hangs, or
  for 0 returns ``[None] * n``); a sized input that is not a list, tuple or range is materialised first;
* ``Pool._pool`` lists the live workers only.

Tracing (only when ``recorder.ENABLED``; untraced, no event is built).  Parent: POOL_CREATED, POOL_JOB,
POOL_CHUNK_QUEUED, POOL_CHUNK_SENT, POOL_TASK_LOST, POOL_RESULT_USED, POOL_WORKER_UP/INIT/EXIT,
POOL_JOB_DONE, POOL_CLOSED.  Worker: POOL_TASK_T0 and POOL_TASK per task (two emits, nothing more); the
worker process records its own lifecycle with role "worker".

Signals.  Workers ignore SIGINT; they are started with SIGINT blocked in the starting thread (children
inherit the mask), so a Ctrl+C during a spawn worker's start-up cannot kill it either.  (Under forkserver
the forkserver forks the worker, with its own mask: the first milliseconds of a worker remain exposed.)

This module must not import Qt, and must not create core's traced primitives for its own plumbing: it
uses os-level pipes, the stdlib's RawArray and threading objects, so a trace shows the pool's tasks, not
its plumbing.  The worker entry point is the module-level ``_worker_main`` (picklable for spawn).
"""
import collections
import itertools
import os
import pickle
import selectors
import signal
import threading
import time
import traceback
import warnings
import weakref
from multiprocessing import connection as _connection
from multiprocessing import sharedctypes as _sharedctypes
from multiprocessing import util
from multiprocessing.context import ProcessError, TimeoutError
from multiprocessing.pool import (CLOSE, INIT, RUN, TERMINATE, ExceptionWithTraceback,  # noqa: F401
                                  MaybeEncodingError, RemoteTraceback, ThreadPool, mapstar, rebuild_exc,
                                  starmapstar)

from ..errors import PoolTerminatedError, TaskTimeoutError, WorkerLostError  # noqa: F401 (re-exported)
from ..trace import recorder
from ..trace.events import JobMethod, Kind, Outcome, WorkerExit
from .results import (ApplyResult, AsyncResult, IMapIterator, IMapUnorderedIterator, MapResult,  # noqa: F401
                      report_callback_error)
from .worker import (GROUP_BELOW_NS, GROUP_PROBE, HAVE_SIGMASK, WORKER_IDLE_CHECK,  # noqa: F401 (re-exported)
                     WorkerSetup, no_sigint, worker_main)
from .wire import (APPLY, IDX, INIT_FAILED, MAP, READ_SIZE, READY, RESULTS, SEQ, SLOT, STARMAP, START,
                   Dumper, FrameReader, frame, now, parse, set_pipe_size, unpack_error, views_of,
                   write_some)

__all__ = ["Pool", "ThreadPool", "AsyncResult", "ApplyResult", "MapResult", "IMapIterator",
           "IMapUnorderedIterator", "RemoteTraceback", "MaybeEncodingError", "ExceptionWithTraceback",
           "TimeoutError", "WorkerLostError", "TaskTimeoutError", "PoolTerminatedError"]

# ------------------------------------------------------------------------------------------------------
# Tunables
# ------------------------------------------------------------------------------------------------------

#: Measured work (seconds) the manager may keep queued at one worker, counting the chunk it runs.  Below
#: it, several chunks are sent ahead; a chunk measured longer than this is sent only to an idle worker.
PREFETCH_SECONDS = 0.005
#: Measured work (seconds) packed into one message when several chunks go together.
BATCH_SECONDS = 0.001
#: At most this many chunks in one message.
MAX_BATCH_CHUNKS = 1024
#: A busy worker gets nothing more while this many bytes sent to it are unanswered (big payloads go to
#: idle workers only, so they do not wait in a pipe behind a long task).
PREFETCH_MAX_BYTES = 256 * 1024
#: How often (seconds) the manager reads the running tasks' start times while some task has a timeout.
TIMEOUT_POLL = 0.05
#: How often (seconds) the manager polls busy workers' exit status, in case a sentinel never fires (a
#: process forked by another thread at the wrong moment can hold a worker's sentinel pipe open).
LIVENESS_POLL = 0.5
#: After terminate() sends SIGTERM, seconds to wait before SIGKILL.
TERMINATE_GRACE = 1.0
#: Seconds terminate() waits for the feeder and callback threads (they may be stuck in user code).
HELPER_JOIN_TIMEOUT = 5.0
#: An untouched chunk of a dead worker is requeued at most this many times, then fails.
MAX_REQUEUES = 3
#: Workers dying before any became ready, in a row, before the pool gives up (fails every job).
MAX_STARTUP_DEATHS = 5
#: Read-ahead of the feeder thread, in chunks per worker, on top of what prefetching needs.
FEED_AHEAD = 2
#: The longest task_timeout accepted (seconds): the longest wait the threading module can do (about 292
#: years); longer is no limit, which is None.
MAX_TASK_TIMEOUT = int(threading.TIMEOUT_MAX)

_PREFETCH_NS = int(PREFETCH_SECONDS * 1e9)
_BATCH_NS = int(BATCH_SECONDS * 1e9)

# Selector tags.
_K_RESULT, _K_SENTINEL, _K_WAKE, _K_WRITE = 0, 1, 2, 3


_SLICEABLE = (list, tuple, range)
_DEFAULT = object()              # "use the pool's task_timeout"

job_counter = itertools.count()  # the stdlib module has it; core's job ids are per pool

# The result classes say they live here, where users import them from (reprs and pickles name core.pool.X)
for _cls in (ApplyResult, MapResult, IMapIterator, IMapUnorderedIterator):
    _cls.__module__ = __name__


# ------------------------------------------------------------------------------------------------------
# Messages for people
# ------------------------------------------------------------------------------------------------------

def _describe_exit(code):
    if code is None:
        return "ended"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "signal %d" % -code
        return "was killed by %s (exit code %d)" % (name, code)
    return "exited with code %d" % code


def _tasks_text(tasks):
    tasks = sorted(tasks)
    if len(tasks) == 1:
        return "task %d" % tasks[0]
    shown = ", ".join(str(t) for t in tasks[:10])
    return "tasks [%s%s]" % (shown, ", ..." if len(tasks) > 10 else "")


# ------------------------------------------------------------------------------------------------------
# Manager-side records
# ------------------------------------------------------------------------------------------------------

class _Job:
    """One call (apply, map, imap...): what the manager needs to cut, send and account its tasks."""

    __slots__ = ("id", "func", "mode", "method", "cs", "timeout", "timeout_ns", "result", "seq", "total",
                 "next", "lazy", "iterable", "buffer", "exhausted", "feed_total", "feed_error",
                 "feed_target", "feeder_waiting", "done", "failed", "est", "est_sum", "est_n", "via_cb",
                 "progress", "funckey", "finished", "func_error", "input_error")

    def __init__(self, jid, func, mode, method, cs, timeout, result, progress, via_cb):
        self.id = jid
        self.func = func
        self.mode = mode
        self.method = method
        self.cs = cs
        self.timeout = timeout
        self.timeout_ns = int(timeout * 1e9) if timeout else 0
        self.result = result
        self.seq = None
        self.total = None
        self.next = 0
        self.lazy = False
        self.iterable = None
        self.buffer = None
        self.exhausted = False
        self.feed_total = 0
        self.feed_error = None
        self.feed_target = 0
        self.feeder_waiting = False
        self.done = 0
        self.failed = False
        self.est = None               # measured ns per task
        self.est_sum = 0
        self.est_n = 0
        self.via_cb = via_cb
        self.progress = progress
        self.funckey = None
        self.finished = False
        self.func_error = None
        self.input_error = None       # (position, exception) of a lazy input, once its length is known


class _Segment:
    """Tasks to (re)send: a requeued remainder of a dead worker's chunk."""

    __slots__ = ("job", "first", "items", "pos", "cs", "requeues")

    def __init__(self, job, first, items, cs, requeues):
        self.job = job
        self.first = first
        self.items = items
        self.pos = 0
        self.cs = cs
        self.requeues = requeues


class _Run:
    """A contiguous range of one job's tasks sent to one worker (whole chunks of ``cs`` tasks)."""

    __slots__ = ("job", "first", "items", "n", "cs", "nchunks", "seq0", "reported", "est", "nbytes",
                 "requeues")

    def __init__(self, job, first, items, cs, requeues=0):
        self.job = job
        self.first = first
        self.items = items
        self.n = len(items)
        self.cs = cs
        self.nchunks = (self.n + cs - 1) // cs
        self.seq0 = 0
        self.reported = 0
        self.est = job.est * self.n if job.est is not None else None
        self.nbytes = 0
        self.requeues = requeues


class _Worker:
    """The manager's view of one worker process."""

    __slots__ = ("proc", "pid", "number", "task_conn", "task_fd", "result_conn", "result_fd", "reader",
                 "slot", "ready", "leaving", "stopping", "bye", "dead", "eof", "outstanding", "out_est",
                 "out_unknown", "out_bytes", "timed", "sent", "seq", "wbuf", "kill_info", "init_failed")

    def __init__(self, proc, number, task_conn, result_conn, slot):
        self.proc = proc
        self.pid = proc.pid
        self.number = number
        self.task_conn = task_conn
        self.task_fd = task_conn.fileno()
        self.result_conn = result_conn
        self.result_fd = result_conn.fileno()
        self.reader = FrameReader(self.result_fd)
        self.slot = slot
        self.ready = False
        self.leaving = False          # will not take more work (maxtasks reached, or told to stop)
        self.stopping = False         # told to stop (close)
        self.bye = False              # said it leaves (maxtasksperchild)
        self.dead = False
        self.eof = False
        self.outstanding = collections.deque()
        self.out_est = 0
        self.out_unknown = 0
        self.out_bytes = 0
        self.timed = 0
        self.sent = 0                 # chunks sent (maxtasksperchild)
        self.seq = 0                  # last chunk sequence number assigned
        self.wbuf = None
        self.kill_info = None
        self.init_failed = False


# ------------------------------------------------------------------------------------------------------
# The pool's shared state and its manager thread
# ------------------------------------------------------------------------------------------------------

class _PoolState:
    """Everything the manager thread works on.  Holds no reference to the Pool, so an unreferenced Pool
    can be collected (its finalizer then terminates the workers)."""

    def __init__(self, ctx, process_factory, processes, initializer, initargs, maxtasks, uid, name):
        self.ctx = ctx
        self.process_factory = process_factory
        self.processes = processes
        self.initializer = initializer
        self.initargs = initargs
        self.maxtasks = maxtasks
        self.uid = uid
        self.name = name
        self.setup = WorkerSetup(initializer, initargs, maxtasks, uid, _BATCH_NS)
        self.state = RUN
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.jobs = {}                      # id -> _Job, every unfinished job (the stdlib's _cache)
        self.job_ids = itertools.count()
        self.incoming = collections.deque()
        self.open_jobs = collections.deque()
        self.lazy_jobs = []
        self.requeue = collections.deque()
        self.workers = []
        self.procs = []                     # the Process objects (Pool._pool)
        self.number = 0
        nslots = 2 * processes + 2
        import ctypes
        self.slots = _sharedctypes.RawArray(ctypes.c_int64, nslots * SLOT)
        self.slot_view = memoryview(self.slots).cast("B").cast("q")
        self.free_slots = list(range(nslots - 1, -1, -1))
        self.sel = selectors.PollSelector() if hasattr(selectors, "PollSelector") else \
            selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.wake_pending = False
        self.wake_lock = threading.Lock()
        self.sel.register(self.wake_r, selectors.EVENT_READ, (_K_WAKE, None))
        self.dumps = Dumper()
        self.broken = None                  # (tb, pickled exception) or an exception
        self.startup_deaths = 0
        self.func_est = weakref.WeakKeyDictionary()
        self.manager = None
        self.cb_queue = None
        self.cb_thread = None
        self.feed_queue = None
        self.feed_cond = threading.Condition(threading.Lock())
        self.feeder = None
        self.last_liveness = 0.0

    # -- used by caller threads -------------------------------------------------------------------------
    def wake(self):
        if not self.wake_pending:
            self.wake_pending = True
            with self.wake_lock:
                if self.wake_w >= 0:
                    try:
                        os.write(self.wake_w, b"\0")
                    except OSError:
                        pass

    def ensure_cb_thread(self):
        with self.lock:
            if self.cb_thread is None:
                import queue
                self.cb_queue = queue.SimpleQueue()
                self.cb_thread = threading.Thread(target=_run_callbacks, args=(self.cb_queue,),
                                                  name="%s-callbacks" % self.name, daemon=True)
                self.cb_thread.start()

    # -- workers ----------------------------------------------------------------------------------------
    def start_worker(self):
        task_r, task_w = _connection.Pipe(duplex=False)
        res_r, res_w = _connection.Pipe(duplex=False)
        for fd in (task_w.fileno(), res_w.fileno()):
            set_pipe_size(fd)
        slot = self.free_slots.pop()
        self.slot_view[slot * SLOT:(slot + 1) * SLOT] = memoryview(bytes(8 * SLOT)).cast("q")
        try:
            p = self.process_factory(self.ctx, target=worker_main,
                                     args=(self.setup, task_r, res_w, self.slots, slot))
            p.name = p.name.replace("Process", "PoolWorker")
            p.daemon = True
            p._trace_role = "worker"
            p.start()
        except BaseException:
            self.free_slots.append(slot)
            for c in (task_r, task_w, res_r, res_w):
                c.close()
            raise
        task_r.close()
        res_w.close()
        self.number += 1
        w = _Worker(p, self.number, task_w, res_r, slot)
        os.set_blocking(w.task_fd, False)
        os.set_blocking(w.result_fd, False)
        self.sel.register(w.result_fd, selectors.EVENT_READ, (_K_RESULT, w))
        self.sel.register(p.sentinel, selectors.EVENT_READ, (_K_SENTINEL, w))
        self.workers.append(w)
        self.procs.append(p)
        if recorder.ENABLED:
            recorder.emit(Kind.POOL_WORKER_UP, self.uid, w.pid, w.number)
        return w

    def ensure_workers(self):
        """Keep ``processes`` workers.  A worker that got its last chunks (maxtasksperchild) keeps its place
        until it has answered them and said bye, so the pool never runs more than ``processes`` at once."""
        if self.state == TERMINATE or self.broken is not None:
            return
        if self.state != RUN and not self.jobs:
            return
        live = sum(1 for w in self.workers if not (w.bye or w.stopping or w.dead or w.init_failed))
        for _ in range(self.processes - live):
            if not self.free_slots:         # leavers not reaped yet: their sentinels will call us again
                return
            try:
                self.start_worker()
            except Exception as e:
                if not any(not (w.bye or w.stopping or w.dead or w.init_failed) for w in self.workers):
                    self.set_broken(e)      # no worker at all and none can start: fail, never hang
                else:
                    report_callback_error("core.pool: starting a worker")
                return

    def worker_ended(self, w):
        if w.dead:
            return
        w.dead = True
        if not w.eof:
            self.read_results(w, final=True)
        for fd in (w.result_fd, w.proc.sentinel):
            try:
                self.sel.unregister(fd)
            except (KeyError, ValueError):
                pass
        if w.wbuf is not None:
            try:
                self.sel.unregister(w.task_fd)
            except (KeyError, ValueError):
                pass
            w.wbuf = None
        try:
            w.proc.join(5)
        except Exception:
            pass
        code = w.proc.exitcode
        base = w.slot * SLOT
        sv = self.slot_view
        cur, idx, start = sv[base + SEQ], sv[base + IDX], sv[base + START]
        if w.kill_info is not None:
            why = WorkerExit.TIMED_OUT
        elif self.state == TERMINATE or (w.stopping and not w.outstanding):
            why = WorkerExit.STOPPED
        elif w.bye and not w.outstanding:
            why = WorkerExit.RECYCLED
        else:
            why = WorkerExit.DIED
        if why == WorkerExit.DIED and not w.ready:
            self.startup_deaths += 1
        if w.outstanding:
            self._settle_dead(w, code, cur, idx, start)
        self.workers.remove(w)
        try:
            self.procs.remove(w.proc)
        except ValueError:
            pass
        for c in (w.task_conn, w.result_conn):
            try:
                c.close()
            except OSError:
                pass
        self.free_slots.append(w.slot)
        try:
            w.proc.close()
        except Exception:
            pass
        if recorder.ENABLED:
            recorder.emit(Kind.POOL_WORKER_EXIT, self.uid, w.pid, code if code is not None else -1, why)
        if self.startup_deaths >= MAX_STARTUP_DEATHS and self.broken is None:
            self.set_broken(WorkerLostError(
                "pool workers keep dying before they are ready (last: pid %d %s)"
                % (w.pid, _describe_exit(code)), w.pid, code, ()))

    def _settle_dead(self, w, code, cur, idx, start):
        """Fail what a dead worker had started, requeue what it had not.

        ``cur`` is the sequence number of the last chunk the worker began; with a timeout, ``idx`` and
        ``start`` are the task it began last and its start time (0: it had finished it)."""
        running = collections.defaultdict(list)     # job -> [(first, n)]: the chunk (or task) in progress
        finished = collections.defaultdict(list)    # job -> [(first, n)]: done, results not sent yet
        timed_out = None
        requeue = []
        for run in w.outstanding:
            job = run.job
            lo = run.reported
            if lo >= run.n or job.finished:         # (a finished job's remainder is not requeued)
                continue
            if cur < run.seq0:                          # not begun: requeue all of it
                fin_hi = run_hi = lo
            elif cur >= run.seq0 + run.nchunks:         # every chunk begun before the one running
                fin_hi = run_hi = run.n
            else:
                c_lo = (cur - run.seq0) * run.cs
                c_hi = min(c_lo + run.cs, run.n)
                if job.timeout_ns:
                    pos = idx - run.first
                    if c_lo <= pos < c_hi:
                        if start:
                            fin_hi, run_hi = pos, pos + 1
                            ki = w.kill_info
                            if ki is not None and ki[0] == job.id and ki[1] == idx and ki[2] == start:
                                timed_out = (job, idx, ki[3])
                        else:
                            fin_hi = run_hi = pos + 1
                    else:
                        fin_hi = run_hi = c_lo          # chunk begun, none of its tasks started
                else:
                    fin_hi, run_hi = c_lo, c_hi
            fin_hi = max(fin_hi, lo)
            run_hi = max(run_hi, fin_hi)
            if fin_hi > lo:
                finished[job].append((run.first + lo, fin_hi - lo))
            if run_hi > fin_hi:
                running[job].append((run.first + fin_hi, run_hi - fin_hi))
            if run_hi < run.n:
                requeue.append(_Segment(job, run.first + run_hi, run.items[run_hi:], run.cs,
                                        run.requeues + 1))
        w.outstanding.clear()
        w.out_est = w.out_unknown = w.out_bytes = w.timed = 0
        segs = []
        for seg in requeue:
            if seg.requeues > MAX_REQUEUES:             # keeps killing its workers before starting
                running[seg.job].append((seg.first, len(seg.items)))
            else:
                segs.append(seg)
                if recorder.ENABLED:
                    for k in range(0, len(seg.items), seg.cs):
                        recorder.emit(Kind.POOL_CHUNK_QUEUED, self.uid, seg.job.id, seg.first + k,
                                      min(seg.cs, len(seg.items) - k))
        self.requeue.extendleft(reversed(segs))
        how = "pool worker %d %s" % (w.pid, _describe_exit(code))
        if timed_out is not None:
            job, i, timeout = timed_out
            running[job] = [r for r in running[job] if not (r[0] == i and r[1] == 1)]
            exc = TaskTimeoutError("task %d ran longer than its task_timeout of %gs; its worker (pid %d) "
                                   "was killed and replaced" % (i, timeout, w.pid), timeout, i, w.pid)
            self.fail_range(job, i, 1, exc, Outcome.TIMEOUT)
        for ranges_by_job, text in ((running, "%s while running %s of this call"),
                                    (finished, "%s after finishing %s of this call but before sending "
                                               "the results, which were lost with it")):
            for job, ranges in ranges_by_job.items():
                tasks = [i for first, n in ranges for i in range(first, first + n)]
                if not tasks or job.finished:
                    continue
                exc = WorkerLostError(text % (how, _tasks_text(tasks)), w.pid, code, tasks)
                for first, n in ranges:
                    self.fail_range(job, first, n, exc, Outcome.LOST)

    def set_broken(self, err):
        """Workers cannot start (initializer raised, or they keep dying): fail every job, now and later."""
        self.broken = err
        for job in list(self.jobs.values()):
            self.fail_job(job, self.broken_exc())

    def broken_exc(self):
        err = self.broken
        if isinstance(err, tuple):
            return unpack_error(*err)
        return err

    # -- results ----------------------------------------------------------------------------------------
    def read_results(self, w, final=False):
        """Read what a worker's result pipe holds (never blocks) and handle every whole frame."""
        r = w.reader
        eof = False
        while True:
            try:
                k = r.fill()
            except BlockingIOError:
                break
            except OSError:
                eof = True
                break
            if not k:
                eof = True
                break
            for payload in r.frames():     # after every read: a finished big frame leaves big mode
                self.on_frame(w, payload)
            if k < READ_SIZE and not final and r.big is None:
                break                      # drained for now; the selector says when there is more
        if eof and not w.eof:
            w.eof = True
            try:
                self.sel.unregister(w.result_fd)
            except (KeyError, ValueError):
                pass

    def on_frame(self, w, payload):
        header, off = parse(payload)
        tag = header[0]
        if tag == RESULTS:
            for jid, first, n, errs, dur, blen in header[1]:
                self.on_piece(w, jid, first, n, errs, dur, payload[off:off + blen])
                off += blen
            if header[2]:
                w.bye = w.leaving = True
        elif tag == READY:
            w.ready = True
            self.startup_deaths = 0
            if recorder.ENABLED:
                recorder.emit_at(header[1], Kind.POOL_WORKER_INIT, self.uid, header[2], w.pid)
        elif tag == INIT_FAILED:
            w.leaving = w.init_failed = True
            if self.broken is None:
                self.set_broken((header[1], header[2]))

    def on_piece(self, w, jid, first, n, errs, dur, blob):
        out = w.outstanding
        run = out[0] if out else None
        if run is None or run.job.id != jid or run.first + run.reported != first:
            run = None
            for r in out:
                if r.job.id == jid and r.first + r.reported == first:
                    run = r
                    break
        if run is not None:
            run.reported += n
            if run.reported >= run.n:
                if out[0] is run:
                    out.popleft()
                else:
                    out.remove(run)
                if run.est is None:
                    w.out_unknown -= 1
                else:
                    w.out_est -= run.est
                w.out_bytes -= run.nbytes
                if run.job.timeout_ns:
                    w.timed -= 1
            job = run.job
        else:
            job = self.jobs.get(jid)
        if job is None or job.finished:
            return
        try:
            values = pickle.loads(blob)
        except Exception as e:
            self.fail_range(job, first, n, e, Outcome.ERROR)
            return
        errd = None
        if errs:
            errd = {pos: unpack_error(tb, data) for pos, tb, data in errs}
            job.failed = True
        if n:
            job.est_sum += dur
            job.est_n += n
            job.est = job.est_sum // job.est_n or 1
        self.deliver(job, first, values, errd)

    def deliver(self, job, first, values, errd):
        job.done += len(values)
        res = job.result
        if job.via_cb:
            q = self.cb_queue
            q.put((res._put, (first, values, errd, job.done)))
            if job.progress is not None:
                q.put((job.progress, (job.done, job.total)))
        else:
            res._put(first, values, errd, job.done)
        if job.input_error is not None:
            if job.done >= job.input_error[0]:
                self.fail_input(job)
        elif job.total is not None and job.done >= job.total:
            self.finish_job(job)

    def fail_range(self, job, first, n, exc, outcome):
        """Tasks first..first+n-1 of ``job`` end with ``exc`` without a worker's answer."""
        if job.finished or n <= 0:
            return
        job.failed = True
        if recorder.ENABLED:
            for i in range(first, first + n):
                recorder.emit(Kind.POOL_TASK_LOST, self.uid, job.id, i, outcome)
        if isinstance(job.result, IMapIterator):
            errd = dict.fromkeys(range(n), exc)
        else:
            errd = {0: exc}             # a map keeps only its first error
        self.deliver(job, first, [None] * n, errd)

    def fail_job(self, job, exc, outcome=Outcome.LOST):
        """Every task of ``job`` not answered yet ends with ``exc`` (terminate, broken pool)."""
        if job.finished:
            return
        ranges = []
        for w in self.workers:
            for run in w.outstanding:
                if run.job is job and run.reported < run.n:
                    ranges.append((run.first + run.reported, run.n - run.reported))
                    run.reported = run.n
        for seg in self.requeue:
            if seg.job is job and seg.pos < len(seg.items):
                ranges.append((seg.first + seg.pos, len(seg.items) - seg.pos))
                seg.pos = len(seg.items)
        if not job.lazy:
            if job.next < job.total:
                ranges.append((job.next, job.total - job.next))
                job.next = job.total
        else:
            job.exhausted = True        # the feeder stops; what it read is all there will be
            with self.feed_cond:
                self.feed_cond.notify_all()
            while job.buffer:
                first, items = job.buffer.popleft()
                ranges.append((first, len(items)))
            if job.total is None:
                job.total = job.done + sum(n for _, n in ranges)
                self._set_length(job)
            if job.input_error is not None:     # it waited for results that now fail: it fails with them
                ranges.append((job.input_error[0], 1))
                job.input_error = None
        if not ranges and job.done >= job.total:
            self.finish_job(job)
        for first, n in ranges:
            self.fail_range(job, first, n, exc, outcome)

    def _set_length(self, job):
        res = job.result
        if job.via_cb:
            self.cb_queue.put((res._set_length, (job.total,)))
            if job.progress is not None:
                self.cb_queue.put((job.progress, (job.done, job.total)))
        else:
            res._set_length(job.total)

    def finish_job(self, job):
        if job.finished:
            return
        job.finished = True
        self.jobs.pop(job.id, None)
        if recorder.ENABLED:
            recorder.emit(Kind.POOL_JOB_DONE, self.uid, job.id, 0, int(job.failed))
        if job.funckey is not None and job.est is not None:
            try:
                self.func_est[job.funckey] = job.est
            except TypeError:
                pass
        res = job.result
        # Drop the job's inputs before the caller is woken: once it has its results, nothing here keeps
        # its arguments alive (the job object itself may sit a while longer in open_jobs or a worker's
        # record).  Requeued remainders of it go too.
        job.func = job.seq = job.iterable = job.buffer = job.funckey = job.result = None
        job.feed_error = job.func_error = None
        if any(seg.job is job for seg in self.requeue):
            self.requeue = collections.deque(seg for seg in self.requeue if seg.job is not job)
        if job.via_cb:
            self.cb_queue.put((res._finish, ()))
        else:
            res._finish()

    # -- intake and lazy input --------------------------------------------------------------------------
    def take_incoming(self):
        while self.incoming:
            job = self.incoming.popleft()
            if self.broken is not None:
                self.fail_job(job, self.broken_exc())
                continue
            if job.est is None and job.funckey is not None:
                try:
                    job.est = self.func_est.get(job.funckey)
                except TypeError:
                    job.est = None
            if job.total == 0:
                self.finish_job(job)
                continue
            self.open_jobs.append(job)
            if job.lazy:
                job.feed_target = self.processes * (FEED_AHEAD + 1)
                self.lazy_jobs.append(job)
                if self.feeder is None:
                    import queue
                    self.feed_queue = queue.SimpleQueue()
                    self.feeder = threading.Thread(target=_feed, args=(self,), name="%s-feeder" % self.name,
                                                   daemon=True)
                    self.feeder.start()
                self.feed_queue.put(job)

    def check_lazy(self):
        for job in list(self.lazy_jobs):
            if job.finished:
                self.lazy_jobs.remove(job)
                continue
            if job.est is not None and job.cs:
                ahead = min(MAX_BATCH_CHUNKS, _PREFETCH_NS // max(job.est * job.cs, 1))
                job.feed_target = self.processes * (FEED_AHEAD + 1 + int(ahead))
            if not job.exhausted:
                continue
            self.lazy_jobs.remove(job)
            total = job.feed_total
            err = job.feed_error
            if err is not None:
                total += 1
                job.input_error = err
            job.total = total
            self._set_length(job)
            if err is not None:
                if job.done >= err[0]:
                    self.fail_input(job)
            elif job.done >= total:
                self.finish_job(job)

    def fail_input(self, job):
        """The exception an imap's input raised ends the iteration at its position (the stdlib sends it as
        one more task).  Delivered once every result before it is: the stdlib's task is queued behind
        theirs, so imap_unordered never gives it before them either."""
        pos, exc = job.input_error
        job.input_error = None
        self.fail_range(job, pos, 1, exc, Outcome.ERROR)

    # -- dispatch ---------------------------------------------------------------------------------------
    def next_source(self):
        """The requeued segment or open job to cut from next, or None."""
        rq = self.requeue
        while rq:
            seg = rq[0]
            if seg.job.finished or seg.pos >= len(seg.items):
                rq.popleft()
                continue
            return seg
        oj = self.open_jobs
        while oj:                       # drop finished and fully cut jobs from the head (O(1) each)
            job = oj[0]
            if job.finished or (job.next >= job.total if not job.lazy else
                                (job.exhausted and not job.buffer)):
                oj.popleft()
                continue
            break
        for job in oj:                  # usually the head; a lazy job waiting for its feeder is skipped
            if job.finished:
                continue
            if job.lazy:
                if job.buffer:
                    return job
            elif job.next < job.total:
                return job
        return None

    def cut(self, src, k):
        """Up to ``k`` chunks from ``src`` as one run."""
        if isinstance(src, _Segment):
            job = src.job
            lo = src.pos
            hi = min(lo + k * src.cs, len(src.items))
            src.pos = hi
            return _Run(job, src.first + lo, src.items[lo:hi], src.cs, src.requeues)
        job = src
        if not job.lazy:
            lo = job.next
            hi = min(lo + k * job.cs, job.total)
            job.next = hi
            return _Run(job, lo, job.seq[lo:hi], job.cs)
        buf = job.buffer
        first, items = buf.popleft()
        if k > 1 and buf:
            items = list(items)
            for _ in range(k - 1):
                if not buf:
                    break
                items.extend(buf.popleft()[1])
        if job.feeder_waiting and len(buf) < job.feed_target // 2 + 1:
            with self.feed_cond:
                self.feed_cond.notify_all()
        return _Run(job, first, items, job.cs)

    def dispatch(self):
        if not (self.requeue or self.open_jobs) or self.state == TERMINATE:
            return
        maxtasks = self.maxtasks
        while True:
            best = best_key = None
            for w in self.workers:
                if not w.ready or w.leaving or w.wbuf is not None or w.dead:
                    continue
                if maxtasks and w.sent >= maxtasks:
                    continue
                if w.outstanding:
                    if w.out_unknown or w.out_est >= _PREFETCH_NS or w.out_bytes >= PREFETCH_MAX_BYTES:
                        continue
                key = (bool(w.outstanding), w.out_est)
                if best is None or key < best_key:
                    best, best_key = w, key
            if best is None:
                return
            runs = self.build_batch(best)
            if not runs:
                return
            self.send(best, runs)
            if not (self.requeue or self.open_jobs):
                return

    def build_batch(self, w):
        idle = not w.outstanding
        budget = MAX_BATCH_CHUNKS
        if self.maxtasks:
            budget = min(budget, self.maxtasks - w.sent)
        room_total = _PREFETCH_NS - w.out_est
        batch_ns = 0
        runs = []
        while budget > 0:
            src = self.next_source()
            if src is None:
                break
            job = src.job if isinstance(src, _Segment) else src
            if job.func_error is not None:
                self.fail_rest(src, job)
                continue
            cs = src.cs
            est = job.est
            if est is None:
                if runs or not idle:
                    break
                k = 1
            else:
                chunk_ns = est * cs
                if runs or not idle:
                    room = min(_BATCH_NS - batch_ns, room_total - batch_ns)
                else:
                    room = _BATCH_NS
                k = int(room // chunk_ns) if chunk_ns > 0 else budget
                if k < 1:
                    if runs or not idle:
                        break
                    k = 1
            k = min(k, budget)
            run = self.cut(src, k)
            runs.append(run)
            budget -= run.nchunks
            if est is None:
                break
            batch_ns += run.est
        return runs

    def fail_rest(self, src, job):
        """The job's function cannot be pickled: every task not yet sent fails with that error."""
        while True:
            if isinstance(src, _Segment):
                if src.pos >= len(src.items):
                    break
            elif job.lazy:
                if not job.buffer:
                    break
            elif job.next >= job.total:
                break
            run = self.cut(src, MAX_BATCH_CHUNKS)
            self.fail_range(job, run.first, run.n, job.func_error, Outcome.ERROR)

    def send(self, w, runs):
        headers = []
        blobs = []
        dumps = self.dumps
        sent = []
        runs = collections.deque(runs)
        while runs:
            run = runs.popleft()
            job = run.job
            if job.finished:
                continue
            try:
                blob = dumps((job.func, run.items))
            except Exception as e:
                try:
                    dumps(job.func)
                except Exception:
                    job.func_error = e
                if run.nchunks > 1 and job.func_error is None:
                    # fail only the chunks that cannot be pickled, as the stdlib (one pickle per chunk)
                    runs.extendleft(reversed([_Run(job, run.first + k, run.items[k:k + run.cs], run.cs,
                                                   run.requeues) for k in range(0, run.n, run.cs)]))
                else:
                    self.fail_range(job, run.first, run.n, e, Outcome.ERROR)
                continue
            run.nbytes = len(blob)
            headers.append((job.id, run.first, run.cs, job.mode, run.n, bool(job.timeout_ns), len(blob)))
            blobs.append(blob)
            run.seq0 = w.seq + 1
            w.seq += run.nchunks
            w.sent += run.nchunks
            w.outstanding.append(run)
            if run.est is None:
                w.out_unknown += 1
            else:
                w.out_est += run.est
            w.out_bytes += run.nbytes
            if job.timeout_ns:
                w.timed += 1
            sent.append(run)
        if not headers:
            return
        if recorder.ENABLED:                # before the write: the worker may start at once
            emit = recorder.emit
            for run in sent:
                jid = run.job.id
                for k in range(0, run.n, run.cs):
                    emit(Kind.POOL_CHUNK_SENT, self.uid, jid, run.first + k, w.pid)
        self.write(w, frame(headers, blobs))
        if self.maxtasks and w.sent >= self.maxtasks:
            w.leaving = True                # no more work for it; it says bye after answering these

    def write(self, w, parts):
        if w.wbuf is not None:
            w.wbuf.extend(memoryview(p) for p in parts)
            return
        views = views_of(parts)
        self._write_views(w, views)
        if views:
            w.wbuf = views
            try:
                self.sel.register(w.task_fd, selectors.EVENT_WRITE, (_K_WRITE, w))
            except (KeyError, ValueError):
                pass

    def _write_views(self, w, views):
        fd = w.task_fd
        while views:
            try:
                write_some(fd, views)
            except BlockingIOError:
                return
            except OSError:                 # the worker is gone; its sentinel will tell
                views.clear()
                return

    def flush(self, w):
        views = w.wbuf
        if views is None:
            return
        self._write_views(w, views)
        if not views:
            w.wbuf = None
            try:
                self.sel.unregister(w.task_fd)
            except (KeyError, ValueError):
                pass

    # -- deadlines and liveness -------------------------------------------------------------------------
    def check_deadlines(self):
        """Kill workers whose task overran its timeout; returns seconds to the next deadline (or None)."""
        t = now()
        nearest = None
        sv = self.slot_view
        for w in self.workers:
            if not w.timed or w.kill_info is not None or w.dead:
                continue
            base = w.slot * SLOT
            s1 = sv[base + START]
            if not s1:
                continue
            idx = sv[base + IDX]
            cur = sv[base + SEQ]
            if sv[base + START] != s1:
                continue
            run = None
            for r in w.outstanding:
                if r.seq0 <= cur < r.seq0 + r.nchunks:
                    run = r
                    break
            if run is None or not run.job.timeout_ns:
                continue
            due = s1 + run.job.timeout_ns
            if t >= due:
                w.kill_info = (run.job.id, idx, s1, run.job.timeout)
                try:
                    w.proc.kill()
                except Exception:
                    pass
            elif nearest is None or due < nearest:
                nearest = due
        return None if nearest is None else (nearest - t) / 1e9

    def check_liveness(self):
        for w in list(self.workers):
            if w.dead or not (w.outstanding or not w.ready):
                continue
            try:
                ended = w.proc._popen.poll() is not None
            except Exception:
                ended = False
            if ended:
                self.worker_ended(w)

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self):
        sel = self.sel
        while True:
            if self.incoming:
                self.take_incoming()
            if self.state == TERMINATE:
                self.terminate_now()
                return
            if self.lazy_jobs:
                self.check_lazy()
            self.ensure_workers()
            self.dispatch()
            if self.state == CLOSE and not self.jobs and not self.incoming:
                for w in self.workers:
                    if not w.stopping and not w.dead:
                        w.stopping = w.leaving = True
                        self.write(w, frame(None, ()))
                if not self.workers:
                    return
            timeout = None
            busy = any(w.outstanding for w in self.workers)
            if busy or any(not w.ready for w in self.workers):
                timeout = LIVENESS_POLL
                if any(w.timed for w in self.workers):
                    nxt = self.check_deadlines()
                    timeout = TIMEOUT_POLL if nxt is None else max(0.001, min(TIMEOUT_POLL, nxt))
            events = sel.select(timeout)
            for key, _mask in events:
                kind, w = key.data
                if kind == _K_RESULT:
                    if not w.dead:
                        self.read_results(w)
                elif kind == _K_SENTINEL:
                    self.worker_ended(w)
                elif kind == _K_WAKE:
                    # drain first, then clear: a byte written after the clear wakes the next select; a
                    # job queued before it is taken at the top of the loop
                    try:
                        os.read(self.wake_r, 4096)
                    except OSError:
                        pass
                    self.wake_pending = False
                elif kind == _K_WRITE:
                    if not w.dead:
                        self.flush(w)
            if timeout is not None:
                if any(w.timed for w in self.workers):
                    self.check_deadlines()
                t = time.monotonic()
                if t - self.last_liveness >= LIVENESS_POLL:
                    self.last_liveness = t
                    self.check_liveness()

    def terminate_now(self):
        """Stop every worker now; fail every unfinished job with PoolTerminatedError."""
        for w in self.workers:
            try:
                if w.proc.exitcode is None:
                    w.proc.terminate()
            except Exception:
                pass
        deadline = time.monotonic() + TERMINATE_GRACE
        for w in self.workers:
            try:
                w.proc.join(max(0.0, deadline - time.monotonic()))
                if w.proc.exitcode is None:
                    w.proc.kill()
                    w.proc.join(5)
            except Exception:
                pass
        while self.incoming:
            job = self.incoming.popleft()
            self.jobs[job.id] = job
        for job in list(self.jobs.values()):
            self.fail_job(job, PoolTerminatedError("the pool was terminated before this task completed"),
                          Outcome.CANCELLED)
        self.requeue.clear()
        self.open_jobs.clear()
        for w in list(self.workers):
            w.outstanding.clear()
            self.worker_ended(w)

    def crash(self, exc):
        """The manager itself failed (a bug): report it, stop the workers, fail the jobs; never hang."""
        report_callback_error("core.pool manager thread")
        self.state = TERMINATE
        try:
            self.terminate_now()
        except Exception:
            traceback.print_exc()

    def cleanup(self):
        with self.wake_lock:
            for fd in (self.wake_r, self.wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.wake_r = self.wake_w = -1
        try:
            self.sel.close()
        except Exception:
            pass
        if self.feed_queue is not None:
            self.feed_queue.put(None)
        with self.feed_cond:
            self.feed_cond.notify_all()
        if self.cb_queue is not None:
            self.cb_queue.put(None)


def _manage(st):
    """The manager thread's body."""
    if HAVE_SIGMASK:                   # workers it starts inherit this (see no_sigint)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        st.run()
    except BaseException as e:          # a bug: never leave callers hanging
        st.crash(e)
    finally:
        st.cleanup()


def _run_callbacks(q):
    """The callback thread: user callbacks and progress, in order, off the manager thread."""
    while True:
        op = q.get()
        if op is None:
            return
        fn, args = op
        try:
            fn(*args)
        except Exception:
            report_callback_error(fn)
        op = fn = args = None


def _feed(st):
    """The feeder thread: reads imap's input iterables lazily, a bounded number of chunks ahead."""
    while True:
        job = st.feed_queue.get()
        if job is None:
            return
        i = 0
        cs = job.cs
        try:
            it = iter(job.iterable)
            while True:
                if st.state == TERMINATE or job.finished or job.exhausted:
                    break
                if len(job.buffer) >= job.feed_target:
                    with st.feed_cond:
                        job.feeder_waiting = True
                        while (len(job.buffer) >= job.feed_target and st.state != TERMINATE
                               and not job.finished and not job.exhausted):
                            st.feed_cond.wait(0.1)
                        job.feeder_waiting = False
                    continue
                if cs == 1:
                    try:
                        items = [next(it)]
                    except StopIteration:
                        break
                else:
                    # An exception mid-chunk drops the items read for this chunk, as the stdlib's
                    # _get_tasks does (its tuple(islice(...)) never completes): they are not run.
                    items = []
                    try:
                        for _ in range(cs):
                            items.append(next(it))
                    except StopIteration:
                        pass
                    if not items:
                        break
                _feed_chunk(st, job, i, items)
                i += len(items)
                if len(items) < cs:
                    break
        except Exception as e:
            job.feed_error = (i, e)
        job.feed_total = i
        job.exhausted = True
        job.iterable = None
        st.wake()
        # while it waits for the next job, this thread holds nothing of this one (its last chunk, its
        # iterator, its result object)
        job = it = items = None


def _feed_chunk(st, job, i, items):
    if recorder.ENABLED:
        recorder.emit(Kind.POOL_CHUNK_QUEUED, st.uid, job.id, i, len(items))
    job.buffer.append((i, items))
    st.wake()


def _terminate_pool(st):
    """Finalizer: terminate() and garbage collection/interpreter exit of an unclosed pool."""
    with st.lock:
        st.state = TERMINATE
    st.wake()
    me = threading.current_thread()
    mt = st.manager
    if mt is not None and mt is not me:
        mt.join()
    # (the feeder is not waited for: it may be inside the caller's generator; it stops at its next item)
    t = st.cb_thread
    if t is not None and t is not me:
        t.join(HELPER_JOIN_TIMEOUT)


# ------------------------------------------------------------------------------------------------------
# The Pool
# ------------------------------------------------------------------------------------------------------

def _check_timeout(t):
    """A task_timeout as given (to the Pool or to one call) -> float seconds or None; anything else is
    refused here, in one sentence, rather than failing every later call (inf would overflow the
    nanosecond deadline)."""
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= MAX_TASK_TIMEOUT:
        raise ValueError("task_timeout must be a positive number of seconds up to %d, or None for no "
                         "limit, not %r" % (MAX_TASK_TIMEOUT, t))
    return float(t)


class Pool:
    """A process pool with ``multiprocessing.Pool``'s API; see the module docstring for what it adds.

    Keywords beyond the stdlib's: ``task_timeout`` (seconds up to ``MAX_TASK_TIMEOUT``, or None: a task
    running longer is stopped by killing its worker and fails with ``TaskTimeoutError``; every call can
    override it with its own ``task_timeout=``) and ``name`` (shown in traces).  Every map-family call
    also takes ``progress=``, a callable ``progress(done, total)`` called from a pool thread as chunks
    complete (``total`` is None for an imap over an iterator until it is exhausted); result objects have
    ``.progress``.
    """

    _wrap_exception = True

    @staticmethod
    def Process(ctx, *args, **kwds):
        return ctx.Process(*args, **kwds)

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None, context=None,
                 *, task_timeout=None, name=None):
        self._pool = []
        self._state = INIT
        self._st = None
        from ..context import resolve
        self._ctx = resolve(context)
        self._cache = {}
        self._maxtasksperchild = maxtasksperchild
        self._initializer = initializer
        self._initargs = initargs

        if processes is None:
            processes = os.cpu_count() or 1
        if processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None:
            if not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0:
                raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError('initializer must be a callable')
        self._task_timeout = _check_timeout(task_timeout)
        self._processes = processes
        self._uid = recorder.new_uid()
        self._name = name or recorder.default_name("Pool")
        if recorder.ENABLED:
            recorder.register_object(self._uid, "Pool", self._name, processes=processes)
            recorder.emit(Kind.POOL_CREATED, self._uid, processes, maxtasksperchild or 0)

        st = _PoolState(self._ctx, type(self).Process, processes, initializer, initargs, maxtasksperchild,
                        self._uid, self._name)
        self._st = st
        self._cache = st.jobs
        self._pool = st.procs
        try:
            with no_sigint():
                for _ in range(processes):
                    st.start_worker()
        except BaseException:
            for w in st.workers:
                try:
                    w.proc.terminate()
                except Exception:
                    pass
            for w in list(st.workers):
                try:
                    w.proc.join()
                except Exception:
                    pass
                w.dead = True
            st.cleanup()
            raise
        st.manager = threading.Thread(target=_manage, args=(st,), name="%s-manager" % self._name, daemon=True)
        st.manager.start()
        self._terminate = util.Finalize(self, _terminate_pool, args=(st,), exitpriority=15)
        self._state = RUN

    def __del__(self, _warn=warnings.warn, RUN=RUN):
        if getattr(self, "_state", None) == RUN:
            _warn(f"unclosed running multiprocessing pool {self!r}", ResourceWarning, source=self)

    def __repr__(self):
        cls = self.__class__
        return (f'<{cls.__module__}.{cls.__qualname__} '
                f'state={self._state} '
                f'pool_size={len(self._pool)}>')

    def __reduce__(self):
        raise NotImplementedError('pool objects cannot be passed between processes or pickled')

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.terminate()

    def _check_running(self):
        if self._state != RUN:
            raise ValueError("Pool not running")

    def _timeout_for(self, task_timeout):
        if task_timeout is _DEFAULT:
            return self._task_timeout
        return _check_timeout(task_timeout)

    # -- submission -------------------------------------------------------------------------------------
    def _new_job(self, func, mode, method, cs, timeout, result_factory, progress, via_cb):
        st = self._st
        jid = next(st.job_ids)
        job = _Job(jid, func, mode, method, cs, timeout, None, progress, via_cb)
        job.result = result_factory(jid)
        try:
            job.funckey = func if func.__hash__ is not None else None
            weakref.ref(func)
        except TypeError:
            job.funckey = None
        if via_cb:
            st.ensure_cb_thread()
        return job

    def _submit(self, job, chunks_known):
        """Hand ``job`` to the manager; returns its result object (read before: once the job is finished,
        the manager drops its reference to it)."""
        st = self._st
        result = job.result
        if recorder.ENABLED:
            emit = recorder.emit
            emit(Kind.POOL_JOB, self._uid, job.id, -1 if job.total is None else job.total, job.method)
            if chunks_known and job.total:
                for first in range(0, job.total, job.cs):
                    emit(Kind.POOL_CHUNK_QUEUED, self._uid, job.id, first, min(job.cs, job.total - first))
        with st.lock:
            if st.state != RUN or self._state != RUN:
                raise ValueError("Pool not running")
            if os.getpid() != st.pid:
                raise ValueError("Pool not running (this process inherited it through fork: its "
                                 "workers and threads belong to process %d)" % st.pid)
            st.jobs[job.id] = job
            st.incoming.append(job)
        st.wake()
        return result

    def apply(self, func, args=(), kwds={}, *, task_timeout=_DEFAULT):
        '''
        Equivalent of `func(*args, **kwds)`.
        Pool must be running.
        '''
        return self.apply_async(func, args, kwds, task_timeout=task_timeout).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None, *,
                    task_timeout=_DEFAULT):
        '''
        Asynchronous version of `apply()` method.
        '''
        self._check_running()
        timeout = self._timeout_for(task_timeout)
        via_cb = callback is not None or error_callback is not None
        job = self._new_job(func, APPLY, JobMethod.APPLY, 1, timeout,
                            lambda jid: ApplyResult(self, callback, error_callback, job=jid), None, via_cb)
        job.seq = [(args, kwds)]
        job.total = 1
        return self._submit(job, True)

    def map(self, func, iterable, chunksize=None, *, task_timeout=_DEFAULT, progress=None):
        '''
        Apply `func` to each element in `iterable`, collecting the results
        in a list that is returned.
        '''
        return self._map_async(func, iterable, MAP, chunksize, None, None, task_timeout, progress,
                               JobMethod.MAP).get()

    def starmap(self, func, iterable, chunksize=None, *, task_timeout=_DEFAULT, progress=None):
        '''
        Like `map()` method but the elements of the `iterable` are expected to
        be iterables as well and will be unpacked as arguments. Hence
        `func` and (a, b) becomes func(a, b).
        '''
        return self._map_async(func, iterable, STARMAP, chunksize, None, None, task_timeout, progress,
                               JobMethod.STARMAP).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None, *,
                      task_timeout=_DEFAULT, progress=None):
        '''
        Asynchronous version of `starmap()` method.
        '''
        return self._map_async(func, iterable, STARMAP, chunksize, callback, error_callback, task_timeout,
                               progress, JobMethod.STARMAP)

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None, *,
                  task_timeout=_DEFAULT, progress=None):
        '''
        Asynchronous version of `map()` method.
        '''
        return self._map_async(func, iterable, MAP, chunksize, callback, error_callback, task_timeout,
                               progress, JobMethod.MAP)

    def _map_async(self, func, iterable, mode, chunksize, callback, error_callback, task_timeout, progress,
                   method):
        self._check_running()
        timeout = self._timeout_for(task_timeout)     # before the input is read: a refusal consumes nothing
        if type(iterable) not in _SLICEABLE:
            iterable = list(iterable)
        n = len(iterable)
        if chunksize is None:
            chunksize, extra = divmod(n, self._processes * 4)
            if extra:
                chunksize += 1
        if n == 0:
            chunksize = 0
        elif not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError("Chunksize must be 1+, not {0!r}".format(chunksize))
        if n == 0:
            res = MapResult(self, 0, 0, callback, error_callback, job=next(self._st.job_ids))
            if recorder.ENABLED:
                recorder.emit(Kind.POOL_JOB, self._uid, res._job, 0, method)
                recorder.emit(Kind.POOL_JOB_DONE, self._uid, res._job, 0, 0)
            return res
        via_cb = callback is not None or error_callback is not None or progress is not None
        job = self._new_job(func, mode, method, chunksize, timeout,
                            lambda jid: MapResult(self, chunksize, n, callback, error_callback, job=jid),
                            progress, via_cb)
        job.seq = iterable
        job.total = n
        return self._submit(job, True)

    def imap(self, func, iterable, chunksize=1, *, task_timeout=_DEFAULT, progress=None):
        '''
        Equivalent of `map()` -- can be MUCH slower than `Pool.map()`.
        '''
        self._check_running()
        if chunksize != 1 and (not isinstance(chunksize, int) or chunksize < 1):
            if isinstance(chunksize, (int, float)) and chunksize < 1:
                raise ValueError("Chunksize must be 1+, not {0:n}".format(chunksize))
            raise ValueError("Chunksize must be 1+, not {0!r}".format(chunksize))
        return self._imap(func, iterable, chunksize, task_timeout, progress, IMapIterator, JobMethod.IMAP)

    def imap_unordered(self, func, iterable, chunksize=1, *, task_timeout=_DEFAULT, progress=None):
        '''
        Like `imap()` method but ordering of results is arbitrary.
        '''
        self._check_running()
        if chunksize != 1 and (not isinstance(chunksize, int) or chunksize < 1):
            raise ValueError("Chunksize must be 1+, not {0!r}".format(chunksize))
        return self._imap(func, iterable, chunksize, task_timeout, progress, IMapUnorderedIterator,
                          JobMethod.IMAP_UNORDERED)

    def _imap(self, func, iterable, chunksize, task_timeout, progress, cls, method):
        timeout = self._timeout_for(task_timeout)
        chunksize = int(chunksize)
        sliceable = type(iterable) in _SLICEABLE
        length = len(iterable) if sliceable else None
        job = self._new_job(func, MAP, method, chunksize, timeout,
                            lambda jid: cls(self, job=jid, length=length), progress, progress is not None)
        if sliceable:
            job.seq = iterable
            job.total = length
            if length == 0:
                job.result._finish()
                if recorder.ENABLED:
                    recorder.emit(Kind.POOL_JOB, self._uid, job.id, 0, method)
                    recorder.emit(Kind.POOL_JOB_DONE, self._uid, job.id, 0, 0)
                return job.result
        else:
            job.lazy = True
            job.iterable = iterable
            job.buffer = collections.deque()
        return self._submit(job, sliceable)

    # -- lifecycle --------------------------------------------------------------------------------------
    def close(self):
        util.debug('closing pool')
        if self._state == RUN:
            st = self._st
            with st.lock:
                self._state = CLOSE
                if st.state == RUN:
                    st.state = CLOSE
            if recorder.ENABLED:
                recorder.emit(Kind.POOL_CLOSED, self._uid, 0, 0, 0)
            st.wake()

    def terminate(self):
        util.debug('terminating pool')
        if self._state != TERMINATE and recorder.ENABLED and self._st is not None:
            recorder.emit(Kind.POOL_CLOSED, self._uid, 0, 0, 1)
        self._state = TERMINATE
        if self._st is not None:
            self._terminate()

    def join(self):
        util.debug('joining pool')
        if self._state == RUN:
            raise ValueError("Pool is still running")
        elif self._state not in (CLOSE, TERMINATE):
            raise ValueError("In unknown state")
        st = self._st
        me = threading.current_thread()
        if st.manager is not None and st.manager is not me:
            st.manager.join()
        if st.cb_thread is not None and st.cb_thread is not me:
            st.cb_thread.join()
        if st.feeder is not None and st.feeder is not me:
            st.feeder.join(HELPER_JOIN_TIMEOUT)
        for p in list(self._pool):
            p.join()
