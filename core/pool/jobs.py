"""core.pool.jobs: the pool's unfinished jobs, and every way their tasks end.

A job comes in through ``admit`` (a lazy job's input is handed to the feeder; ``check_lazy`` notices when
it ends).  A task ends one of three ways: a worker answers it (``deliver``), it fails without an answer
(``fail_range``: it could not be pickled, its worker died or was killed for it -- ``fail_dead`` words
those errors) or its whole job fails (``fail_job``: terminate(), a broken pool).  A job finishes when
every task has ended (``finish_job``); its inputs are dropped then, before the caller is woken.

Results reach the result objects directly from the manager thread, or, when the job has a callback, an
error_callback or a progress function, through the callback thread (``run_callbacks``), in order: user
code never runs in the manager, so a slow callback cannot delay death or timeout detection.

Used by the manager thread only (the caller threads add jobs to ``jobs`` under the pool's lock and start
the callback thread).  Must not import Qt, touch pipes or processes.
"""
import itertools
import queue
import signal
import threading
import weakref

from ..errors import TaskTimeoutError, WorkerLostError
from ..trace import recorder
from ..trace.events import Kind, Outcome
from .results import IMapIterator, report_callback_error
from .wire import unpack_error


class JobBook:
    """The unfinished jobs (the stdlib's ``Pool._cache``) and what ends their tasks."""

    def __init__(self, uid, name, sched, feeder):
        self.uid = uid
        self.name = name
        self.sched = sched
        self.feeder = feeder
        self.jobs = {}                      # id -> Job, every unfinished job
        self.ids = itertools.count()
        self.lock = threading.Lock()
        self.cb_queue = None
        self.cb_thread = None
        self.func_est = weakref.WeakKeyDictionary()   # function -> ns per task, from its last job
        self.broken = None                  # (tb, pickled exception) or an exception: every job fails
        self.lazy_jobs = []                 # jobs whose feeder has not reached the end of their input

    def ensure_cb_thread(self):
        """Start the callback thread (from a caller thread, when a job needs it)."""
        with self.lock:
            if self.cb_thread is None:
                self.cb_queue = queue.SimpleQueue()
                self.cb_thread = threading.Thread(target=run_callbacks, args=(self.cb_queue,),
                                                  name="%s-callbacks" % self.name, daemon=True)
                self.cb_thread.start()

    def stop(self):
        if self.cb_queue is not None:
            self.cb_queue.put(None)

    def admit(self, job):
        """A job the caller queued: failed at once if the pool is broken, finished at once if empty, else
        handed to the scheduler (and its input to the feeder).  A function measured before starts with
        that estimate."""
        if self.broken is not None:
            self.fail_job(job, self.broken_exc())
            return
        if job.est is None and job.funckey is not None:
            try:
                job.est = self.func_est.get(job.funckey)
            except TypeError:
                job.est = None
        if job.total == 0:
            self.finish_job(job)
            return
        self.sched.add_job(job)
        if job.lazy:
            job.feed.target = self.sched.feed_target(job)
            self.lazy_jobs.append(job)
            self.feeder.add(job)

    def check_lazy(self):
        """Keep the feeders' read-ahead in step with the measured task times; a lazy input that ended
        gives its job a length."""
        for job in list(self.lazy_jobs):
            if job.finished:
                self.lazy_jobs.remove(job)
                continue
            job.feed.target = self.sched.feed_target(job)
            if job.exhausted:
                self.lazy_jobs.remove(job)
                self.input_ended(job)

    # -- tasks end ----------------------------------------------------------------------------------------
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
        if job.lazy:
            job.exhausted = True        # the feeder stops; what it read is all there will be
            self.feeder.wake()
        ranges = self.sched.take_unanswered(job)
        if job.lazy:
            if job.total is None:
                job.total = job.done + sum(n for _, n in ranges)
                self.set_length(job)
            if job.input_error is not None:     # it waited for results that now fail: it fails with them
                ranges.append((job.input_error[0], 1))
                job.input_error = None
        if not ranges and job.done >= job.total:
            self.finish_job(job)
        for first, n in ranges:
            self.fail_range(job, first, n, exc, outcome)

    def fail_dead(self, s, pid, code):
        """A dead worker's tasks end as the scheduler settled them (``s``, a Settlement): the task the
        pool killed with TaskTimeoutError; those it was running, and those it had finished without
        reporting them, with WorkerLostError (one error per job and kind, naming its tasks)."""
        how = "pool worker %d %s" % (pid, describe_exit(code))
        if s.timed_out is not None:
            job, i, timeout = s.timed_out
            exc = TaskTimeoutError("task %d ran longer than its task_timeout of %gs; its worker (pid %d) "
                                   "was killed and replaced" % (i, timeout, pid), timeout, i, pid)
            self.fail_range(job, i, 1, exc, Outcome.TIMEOUT)
        for ranges_by_job, text in ((s.running, "%s while running %s of this call"),
                                    (s.finished, "%s after finishing %s of this call but before sending "
                                                 "the results, which were lost with it")):
            for job, ranges in ranges_by_job.items():
                tasks = [i for first, n in ranges for i in range(first, first + n)]
                if not tasks or job.finished:
                    continue
                exc = WorkerLostError(text % (how, tasks_text(tasks)), pid, code, tasks)
                for first, n in ranges:
                    self.fail_range(job, first, n, exc, Outcome.LOST)

    def fail_input(self, job):
        """The exception an imap's input raised ends the iteration at its position (the stdlib sends it as
        one more task).  Delivered once every result before it is: the stdlib's task is queued behind
        theirs, so imap_unordered never gives it before them either."""
        pos, exc = job.input_error
        job.input_error = None
        self.fail_range(job, pos, 1, exc, Outcome.ERROR)

    def input_ended(self, job):
        """A lazy job's feeder reached the end of its input (or an exception): its length is known."""
        total = job.feed.total
        err = job.feed.error
        if err is not None:
            total += 1
            job.input_error = err
        job.total = total
        self.set_length(job)
        if err is not None:
            if job.done >= err[0]:
                self.fail_input(job)
        elif job.done >= total:
            self.finish_job(job)

    def set_length(self, job):
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
        # its arguments alive (the job object itself may sit a while longer in the scheduler's queue or a
        # worker's load).  Requeued remainders of it go too.
        job.func = job.seq = job.buffer = job.funckey = job.result = None
        job.func_error = None
        if job.feed is not None:
            job.feed.iterable = job.feed.error = None
        self.sched.drop(job)
        if job.via_cb:
            self.cb_queue.put((res._finish, ()))
        else:
            res._finish()

    # -- a broken pool --------------------------------------------------------------------------------------
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


def run_callbacks(q):
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


def describe_exit(code):
    if code is None:
        return "ended"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "signal %d" % -code
        return "was killed by %s (exit code %d)" % (name, code)
    return "exited with code %d" % code


def tasks_text(tasks):
    tasks = sorted(tasks)
    if len(tasks) == 1:
        return "task %d" % tasks[0]
    shown = ", ".join(str(t) for t in tasks[:10])
    return "tasks [%s%s]" % (shown, ", ..." if len(tasks) > 10 else "")
