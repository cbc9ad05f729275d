"""core.pool.manager: the pool's manager thread -- the one thread that owns every pipe and worker process.

One pass of ``Manager.run``::

  take_incoming    jobs the caller threads queued (with a wake-up byte)
  terminate_now    if terminate() was called: stop every worker, fail every unfinished job, return
  check_lazy       lazy inputs that ended: their length is known now (jobs.py)
  ensure_workers   keep ``processes`` workers
  dispatch         the scheduler picks a worker and cuts its batch; this thread pickles and writes it
  (closed)         once every job is done, tell the workers to stop; return when none is left
  select           every worker's result pipe and sentinel, the wake-up pipe, and a worker's task pipe
                   while a write to it is pending (writes are non-blocking: it never blocks on a pipe)
  handle           read results / a worker ended / drain the wake-up pipe / write more
  deadlines        while work is out: kill a worker whose task overran its timeout; poll exit status

A sentinel that fires means a worker ended: if it announced it was leaving (maxtasksperchild reached), it
is replaced silently; otherwise the scheduler settles what it held (``Scheduler.settle``) and this thread
fails its running and unreported tasks with ``WorkerLostError`` (``TaskTimeoutError`` for a task the pool
killed), requeues the rest, and replaces it.  A worker whose initializer raises breaks the pool: every
job fails with that exception (the stdlib respawns such workers forever and hangs).

The Manager holds no reference to the Pool, so an unreferenced Pool can be collected (its finalizer then
terminates the workers).  This module must not import Qt, and must not create core's traced primitives
for its own plumbing: it uses os-level pipes, the stdlib's RawArray and threading objects, so a trace shows
the pool's tasks, not its plumbing.  User callbacks never run in this thread (see jobs.py).
"""
import collections
import os
import pickle
import selectors
import signal
import threading
import time
import traceback
from multiprocessing import connection as _connection
from multiprocessing.pool import CLOSE, RUN, TERMINATE

from ..errors import PoolTerminatedError, WorkerLostError
from ..trace import recorder
from ..trace.events import Kind, Outcome, WorkerExit
from .feeder import Feeder
from .jobs import JobBook, describe_exit
from .results import report_callback_error
from .scheduler import Kill, Slot
from .wire import (INIT_FAILED, READY, RESULTS, Dumper, FrameReader, PipeWriter, Slots, Waker, frame,
                   now, parse, set_pipe_size, unpack_error)
from .worker import HAVE_SIGMASK, worker_main

#: How often (seconds) the manager reads the running tasks' start times while some task has a timeout.
TIMEOUT_POLL = 0.05
#: How often (seconds) the manager polls busy workers' exit status, in case a sentinel never fires (a
#: process forked by another thread at the wrong moment can hold a worker's sentinel pipe open).
LIVENESS_POLL = 0.5
#: After terminate() sends SIGTERM, seconds to wait before SIGKILL.
TERMINATE_GRACE = 1.0
#: Workers dying before any became ready, in a row, before the pool gives up (fails every job).
MAX_STARTUP_DEATHS = 5

# Selector tags.
_K_RESULT, _K_SENTINEL, _K_WAKE, _K_WRITE = 0, 1, 2, 3


class Worker:
    """The manager's view of one worker process: its pipes, its slot, its load and where it stands."""

    __slots__ = ("proc", "pid", "number", "task_conn", "task_fd", "tasks", "result_conn", "result_fd",
                 "reader", "slot", "load", "ready", "leaving", "stopping", "bye", "dead", "eof", "kill",
                 "init_failed")

    def __init__(self, proc, number, task_conn, result_conn, slot, load):
        self.proc = proc
        self.pid = proc.pid
        self.number = number
        self.task_conn = task_conn
        self.task_fd = task_conn.fileno()
        self.tasks = PipeWriter(self.task_fd)
        self.result_conn = result_conn
        self.result_fd = result_conn.fileno()
        self.reader = FrameReader(self.result_fd)
        self.slot = slot
        self.load = load              # what it holds (scheduler.Load)
        self.ready = False
        self.leaving = False          # will not take more work (maxtasks reached, or told to stop)
        self.stopping = False         # told to stop (close)
        self.bye = False              # said it leaves (maxtasksperchild)
        self.dead = False
        self.eof = False
        self.kill = None              # scheduler.Kill: the pool killed it for an overrunning task
        self.init_failed = False

    def can_take_work(self):
        return self.ready and not self.leaving and not self.tasks.pending and not self.dead

    def counts(self):
        """It holds one of the pool's ``processes`` places (a leaver keeps it until it has ended)."""
        return not (self.bye or self.stopping or self.dead or self.init_failed)


class Manager:
    """Everything the manager thread works on, and its steps.  The caller threads use ``lock``,
    ``state``, ``incoming``, ``book.jobs`` and ``wake`` only."""

    def __init__(self, ctx, process_factory, sched, setup, name):
        self.ctx = ctx
        self.process_factory = process_factory
        self.sched = sched                  # scheduler.Scheduler: the decisions
        self.setup = setup                  # worker.WorkerSetup: what every worker is started with
        self.processes = sched.processes
        self.uid = setup.uid
        self.name = name
        self.state = RUN
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.incoming = collections.deque()
        self.feeder = Feeder(self)
        self.book = JobBook(self.uid, name, sched, self.feeder)
        self.workers = []
        self.procs = []                     # the Process objects (Pool._pool)
        self.number = 0
        # twice the workers and two: a leaver keeps its slot until it is reaped, its replacement runs
        self.slots = Slots(2 * self.processes + 2)
        self.sel = selectors.PollSelector() if hasattr(selectors, "PollSelector") else \
            selectors.DefaultSelector()
        self.waker = Waker()
        self.sel.register(self.waker.r, selectors.EVENT_READ, (_K_WAKE, None))
        self.dumps = Dumper()
        self.startup_deaths = 0
        self.thread = None
        self.last_liveness = 0.0

    def wake(self):
        """(any thread) The manager's select returns soon; at the top of its loop it takes new jobs."""
        self.waker.wake()

    def start_thread(self):
        self.thread = threading.Thread(target=manage, args=(self,), name="%s-manager" % self.name,
                                       daemon=True)
        self.thread.start()

    # -- workers ----------------------------------------------------------------------------------------
    def start_worker(self):
        task_r, task_w = _connection.Pipe(duplex=False)
        res_r, res_w = _connection.Pipe(duplex=False)
        for fd in (task_w.fileno(), res_w.fileno()):
            set_pipe_size(fd)
        slot = self.slots.take()
        try:
            p = self.process_factory(self.ctx, target=worker_main,
                                     args=(self.setup, task_r, res_w, self.slots.array, slot))
            p.name = p.name.replace("Process", "PoolWorker")
            p.daemon = True
            p._trace_role = "worker"
            p.start()
        except BaseException:
            self.slots.give(slot)
            for c in (task_r, task_w, res_r, res_w):
                c.close()
            raise
        task_r.close()
        res_w.close()
        self.number += 1
        w = Worker(p, self.number, task_w, res_r, slot, self.sched.new_load())
        os.set_blocking(w.task_fd, False)
        os.set_blocking(w.result_fd, False)
        self.sel.register(w.result_fd, selectors.EVENT_READ, (_K_RESULT, w))
        self.sel.register(p.sentinel, selectors.EVENT_READ, (_K_SENTINEL, w))
        self.workers.append(w)
        self.procs.append(p)
        if recorder.ENABLED:
            recorder.emit(Kind.POOL_WORKER_UP, self.uid, w.pid, w.number)
        return w

    def abort_start(self):
        """The pool's first workers could not all start: stop those that did, release everything."""
        for w in self.workers:
            try:
                w.proc.terminate()
            except Exception:
                pass
        for w in list(self.workers):
            try:
                w.proc.join()
            except Exception:
                pass
            w.dead = True
        self.cleanup()

    def ensure_workers(self):
        """Keep ``processes`` workers.  A worker that got its last chunks (maxtasksperchild) keeps its place
        until it has answered them and said bye, so the pool never runs more than ``processes`` at once."""
        if self.state == TERMINATE or self.book.broken is not None:
            return
        if self.state != RUN and not self.book.jobs:
            return
        live = sum(1 for w in self.workers if w.counts())
        for _ in range(self.processes - live):
            if not self.slots.free:         # leavers not reaped yet: their sentinels will call us again
                return
            try:
                self.start_worker()
            except Exception as e:
                if not any(w.counts() for w in self.workers):
                    self.book.set_broken(e)     # no worker at all and none can start: fail, never hang
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
            self._unregister(fd)
        if w.tasks.drop():
            self._unregister(w.task_fd)
        try:
            w.proc.join(5)
        except Exception:
            pass
        code = w.proc.exitcode
        why = self.exit_reason(w)
        if why == WorkerExit.DIED and not w.ready:
            self.startup_deaths += 1
        if w.load.runs:
            self.settle(w, code)
        self.release(w)
        if recorder.ENABLED:
            recorder.emit(Kind.POOL_WORKER_EXIT, self.uid, w.pid, code if code is not None else -1, why)
        if self.startup_deaths >= MAX_STARTUP_DEATHS and self.book.broken is None:
            self.book.set_broken(WorkerLostError(
                "pool workers keep dying before they are ready (last: pid %d %s)"
                % (w.pid, describe_exit(code)), w.pid, code, ()))

    def exit_reason(self, w):
        if w.kill is not None:
            return WorkerExit.TIMED_OUT
        if self.state == TERMINATE or (w.stopping and not w.load.runs):
            return WorkerExit.STOPPED
        if w.bye and not w.load.runs:
            return WorkerExit.RECYCLED
        return WorkerExit.DIED

    def settle(self, w, code):
        """Fail what a dead worker had started, requeue what it had not (the scheduler decides which)."""
        s = self.sched.settle(w.load, Slot(*self.slots.read(w.slot)), w.kill)
        if recorder.ENABLED:
            for seg in s.requeued:
                for k in range(0, len(seg.items), seg.cs):
                    recorder.emit(Kind.POOL_CHUNK_QUEUED, self.uid, seg.job.id, seg.first + k,
                                  min(seg.cs, len(seg.items) - k))
        self.book.fail_dead(s, w.pid, code)

    def release(self, w):
        """A settled dead worker: forget it, close its pipes, free its slot."""
        self.sched.forget(w.load)
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
        self.slots.give(w.slot)
        try:
            w.proc.close()
        except Exception:
            pass

    def _unregister(self, fd):
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass

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
            if not final and not r.more_waiting(k):
                break                      # drained for now; the selector says when there is more
        if eof and not w.eof:
            w.eof = True
            self._unregister(w.result_fd)

    def on_frame(self, w, payload):
        header, off = parse(payload)
        tag = header[0]
        if tag == RESULTS:
            for piece in header[1]:
                blen = piece[5]
                self.on_piece(w, piece, payload[off:off + blen])
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
            if self.book.broken is None:
                self.book.set_broken((header[1], header[2]))

    def on_piece(self, w, piece, blob):
        """A worker's answer for ``n`` tasks of a job from ``first``: piece = (job id, first, n, errors,
        ns it took, blob length); ``blob``: the pickled values."""
        jid, first, n, errs, dur, _ = piece
        run = w.load.answered(jid, first, n)
        job = run.job if run is not None else self.book.jobs.get(jid)
        if job is None or job.finished:
            return
        try:
            values = pickle.loads(blob)
        except Exception as e:
            self.book.fail_range(job, first, n, e, Outcome.ERROR)
            return
        errd = None
        if errs:
            errd = {pos: unpack_error(tb, data) for pos, tb, data in errs}
            job.failed = True
        job.measure(n, dur)
        self.book.deliver(job, first, values, errd)

    # -- intake -----------------------------------------------------------------------------------------
    def take_incoming(self):
        while self.incoming:
            self.book.admit(self.incoming.popleft())

    # -- dispatch ---------------------------------------------------------------------------------------
    def dispatch(self):
        """Send batches while the scheduler finds a worker to send to and work to send."""
        sched = self.sched
        if not sched.has_work() or self.state == TERMINATE:
            return
        while True:
            w = sched.pick_worker([w for w in self.workers if w.can_take_work()])
            if w is None:
                return
            runs, doomed = sched.build_batch(w.load)
            for run in doomed:
                self.book.fail_range(run.job, run.first, run.n, run.job.func_error, Outcome.ERROR)
            if self.book.lazy_jobs:
                self.feeder.nudge(self.book.lazy_jobs)
            if not runs:
                return
            self.send(w, runs)
            if not sched.has_work():
                return

    def send(self, w, runs):
        """Pickle ``runs`` into one message to ``w`` and write it; a run that cannot be pickled fails."""
        headers = []
        blobs = []
        dumps = self.dumps
        load = w.load
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
                    runs.extendleft(reversed(run.chunks()))
                else:
                    self.book.fail_range(job, run.first, run.n, e, Outcome.ERROR)
                continue
            run.nbytes = len(blob)
            headers.append((job.id, run.first, run.cs, job.mode, run.n, bool(job.timeout_ns), len(blob)))
            blobs.append(blob)
            load.add(run)
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
        if self.sched.spent(load):
            w.leaving = True                # no more work for it; it says bye after answering these

    def write(self, w, parts):
        """Write a frame to ``w``'s task pipe; what the pipe cannot take now waits for the selector."""
        if w.tasks.write(parts):
            try:
                self.sel.register(w.task_fd, selectors.EVENT_WRITE, (_K_WRITE, w))
            except (KeyError, ValueError):
                pass

    def flush(self, w):
        if w.tasks.flush():
            self._unregister(w.task_fd)

    # -- deadlines and liveness -------------------------------------------------------------------------
    def check_deadlines(self):
        """Kill workers whose task overran its timeout; returns seconds to the next deadline (or None)."""
        t = now()
        nearest = None
        for w in self.workers:
            if not w.load.timed or w.kill is not None or w.dead:
                continue
            task = self.slots.running(w.slot)
            if task is None:
                continue
            cur, idx, s1 = task
            run = w.load.running(cur)
            if run is None or not run.job.timeout_ns:
                continue
            due = s1 + run.job.timeout_ns
            if t >= due:
                w.kill = Kill(run.job.id, idx, s1, run.job.timeout)
                try:
                    w.proc.kill()
                except Exception:
                    pass
            elif nearest is None or due < nearest:
                nearest = due
        return None if nearest is None else (nearest - t) / 1e9

    def check_liveness(self):
        for w in list(self.workers):
            if w.dead or not (w.load.runs or not w.ready):
                continue
            try:
                ended = w.proc._popen.poll() is not None
            except Exception:
                ended = False
            if ended:
                self.worker_ended(w)

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self):
        while True:
            if self.incoming:
                self.take_incoming()
            if self.state == TERMINATE:
                self.terminate_now()
                return
            if self.book.lazy_jobs:
                self.book.check_lazy()
            self.ensure_workers()
            self.dispatch()
            if self.state == CLOSE and not self.book.jobs and not self.incoming:
                self.stop_workers()
                if not self.workers:
                    return
            timeout = self.poll_timeout()
            for key, _mask in self.sel.select(timeout):
                self.handle(*key.data)
            if timeout is not None:
                if any(w.load.timed for w in self.workers):
                    self.check_deadlines()
                t = time.monotonic()
                if t - self.last_liveness >= LIVENESS_POLL:
                    self.last_liveness = t
                    self.check_liveness()

    def stop_workers(self):
        """Closed and every job done: each worker gets the stop message (it ends after reading it)."""
        for w in self.workers:
            if not w.stopping and not w.dead:
                w.stopping = w.leaving = True
                self.write(w, frame(None, ()))

    def poll_timeout(self):
        """How long the select may wait: forever when no work is out and every worker is ready."""
        workers = self.workers
        if not (any(w.load.runs for w in workers) or any(not w.ready for w in workers)):
            return None
        if any(w.load.timed for w in workers):
            nxt = self.check_deadlines()
            return TIMEOUT_POLL if nxt is None else max(0.001, min(TIMEOUT_POLL, nxt))
        return LIVENESS_POLL

    def handle(self, kind, w):
        if kind == _K_RESULT:
            if not w.dead:
                self.read_results(w)
        elif kind == _K_SENTINEL:
            self.worker_ended(w)
        elif kind == _K_WAKE:
            self.waker.drain()
        elif kind == _K_WRITE:
            if not w.dead:
                self.flush(w)

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
        book = self.book
        while self.incoming:
            job = self.incoming.popleft()
            book.jobs[job.id] = job
        for job in list(book.jobs.values()):
            book.fail_job(job, PoolTerminatedError("the pool was terminated before this task completed"),
                          Outcome.CANCELLED)
        self.sched.clear()
        for w in list(self.workers):
            w.load.clear()
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
        self.waker.close()
        try:
            self.sel.close()
        except Exception:
            pass
        self.feeder.stop()
        self.book.stop()


def manage(mgr):
    """The manager thread's body."""
    if HAVE_SIGMASK:                    # workers it starts inherit this (see worker.no_sigint)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        mgr.run()
    except BaseException as e:          # a bug: never leave callers hanging
        mgr.crash(e)
    finally:
        mgr.cleanup()
