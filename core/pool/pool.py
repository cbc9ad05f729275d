"""core.pool.pool: the Pool class -- the stdlib's API, in the caller's threads.

Each call checks its arguments the way the stdlib does (same messages), builds a ``scheduler.Job`` with its
result object, queues it for the manager thread and wakes it; a sliceable input (list, tuple, range) is
sliced by the manager, an iterator given to imap is read by the feeder thread.  ``close``/``terminate``/
``join`` and the finalizer (an unclosed pool that is collected, or the interpreter exiting) stop the
manager, which stops the workers.

This module must not import Qt; nothing here runs in the manager thread.
"""
import collections
import os
import threading
import warnings
import weakref
from multiprocessing import util
from multiprocessing.pool import CLOSE, INIT, RUN, TERMINATE

from ..trace import recorder
from ..trace.events import JobMethod, Kind
from .feeder import Feed
from .manager import Manager
from .results import ApplyResult, IMapIterator, IMapUnorderedIterator, MapResult
from .scheduler import Job, Scheduler
from .wire import APPLY, MAP, STARMAP
from .worker import WorkerSetup, no_sigint

#: Seconds terminate() waits for the feeder and callback threads (they may be stuck in user code).
HELPER_JOIN_TIMEOUT = 5.0
#: The longest task_timeout accepted (seconds): the longest wait the threading module can do (about 292
#: years); longer is no limit, which is None.
MAX_TASK_TIMEOUT = int(threading.TIMEOUT_MAX)

_SLICEABLE = (list, tuple, range)
_DEFAULT = object()              # "use the pool's task_timeout"
# How each method applies a task's item in the worker.
_MODES = {JobMethod.APPLY: APPLY, JobMethod.MAP: MAP, JobMethod.STARMAP: STARMAP, JobMethod.IMAP: MAP,
          JobMethod.IMAP_UNORDERED: MAP}


def _terminate_pool(mgr):
    """Finalizer: terminate() and garbage collection/interpreter exit of an unclosed pool."""
    with mgr.lock:
        mgr.state = TERMINATE
    mgr.wake()
    me = threading.current_thread()
    mt = mgr.thread
    if mt is not None and mt is not me:
        mt.join()
    # (the feeder is not waited for: it may be inside the caller's generator; it stops at its next item)
    t = mgr.book.cb_thread
    if t is not None and t is not me:
        t.join(HELPER_JOIN_TIMEOUT)


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
    """A process pool with ``multiprocessing.Pool``'s API; see the package docstring for what it adds.

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
        self._mgr = None
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

        sched = Scheduler(processes, maxtasksperchild)
        setup = WorkerSetup(initializer, initargs, maxtasksperchild, self._uid, sched.limits.batch_ns)
        mgr = Manager(self._ctx, type(self).Process, sched, setup, self._name)
        self._mgr = mgr
        self._cache = mgr.book.jobs
        self._pool = mgr.procs
        try:
            with no_sigint():
                for _ in range(processes):
                    mgr.start_worker()
        except BaseException:
            mgr.abort_start()
            raise
        mgr.start_thread()
        self._terminate = util.Finalize(self, _terminate_pool, args=(mgr,), exitpriority=15)
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
    def _new_job(self, method, func, cs, timeout, progress=None, via_cb=False):
        """A Job for the manager (its ``result`` is for the caller to set)."""
        book = self._mgr.book
        job = Job(next(book.ids), func, _MODES[method], cs, timeout)
        job.method = method
        job.progress = progress
        job.via_cb = via_cb
        try:
            job.funckey = func if func.__hash__ is not None else None
            weakref.ref(func)
        except TypeError:
            job.funckey = None
        if via_cb:
            book.ensure_cb_thread()
        return job

    def _submit(self, job, chunks_known):
        """Hand ``job`` to the manager; returns its result object (read before: once the job is finished,
        the manager drops its reference to it)."""
        mgr = self._mgr
        result = job.result
        if recorder.ENABLED:
            emit = recorder.emit
            emit(Kind.POOL_JOB, self._uid, job.id, -1 if job.total is None else job.total, job.method)
            if chunks_known and job.total:
                for first in range(0, job.total, job.cs):
                    emit(Kind.POOL_CHUNK_QUEUED, self._uid, job.id, first, min(job.cs, job.total - first))
        with mgr.lock:
            if mgr.state != RUN or self._state != RUN:
                raise ValueError("Pool not running")
            if os.getpid() != mgr.pid:
                raise ValueError("Pool not running (this process inherited it through fork: its "
                                 "workers and threads belong to process %d)" % mgr.pid)
            mgr.book.jobs[job.id] = job
            mgr.incoming.append(job)
        mgr.wake()
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
        job = self._new_job(JobMethod.APPLY, func, 1, timeout, via_cb=via_cb)
        job.result = ApplyResult(self, callback, error_callback, job=job.id)
        job.seq = [(args, kwds)]
        job.total = 1
        return self._submit(job, True)

    def map(self, func, iterable, chunksize=None, *, task_timeout=_DEFAULT, progress=None):
        '''
        Apply `func` to each element in `iterable`, collecting the results
        in a list that is returned.
        '''
        return self._map_async(JobMethod.MAP, func, iterable, chunksize, task_timeout, progress).get()

    def starmap(self, func, iterable, chunksize=None, *, task_timeout=_DEFAULT, progress=None):
        '''
        Like `map()` method but the elements of the `iterable` are expected to
        be iterables as well and will be unpacked as arguments. Hence
        `func` and (a, b) becomes func(a, b).
        '''
        return self._map_async(JobMethod.STARMAP, func, iterable, chunksize, task_timeout, progress).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None, *,
                      task_timeout=_DEFAULT, progress=None):
        '''
        Asynchronous version of `starmap()` method.
        '''
        return self._map_async(JobMethod.STARMAP, func, iterable, chunksize, task_timeout, progress,
                               callback, error_callback)

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None, *,
                  task_timeout=_DEFAULT, progress=None):
        '''
        Asynchronous version of `map()` method.
        '''
        return self._map_async(JobMethod.MAP, func, iterable, chunksize, task_timeout, progress,
                               callback, error_callback)

    def _map_async(self, method, func, iterable, chunksize, task_timeout, progress, callback=None,
                   error_callback=None):
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
            res = MapResult(self, 0, 0, callback, error_callback, job=next(self._mgr.book.ids))
            if recorder.ENABLED:
                recorder.emit(Kind.POOL_JOB, self._uid, res._job, 0, method)
                recorder.emit(Kind.POOL_JOB_DONE, self._uid, res._job, 0, 0)
            return res
        via_cb = callback is not None or error_callback is not None or progress is not None
        job = self._new_job(method, func, chunksize, timeout, progress, via_cb)
        job.result = MapResult(self, chunksize, n, callback, error_callback, job=job.id)
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
        return self._imap(JobMethod.IMAP, func, iterable, chunksize, task_timeout, progress)

    def imap_unordered(self, func, iterable, chunksize=1, *, task_timeout=_DEFAULT, progress=None):
        '''
        Like `imap()` method but ordering of results is arbitrary.
        '''
        self._check_running()
        if chunksize != 1 and (not isinstance(chunksize, int) or chunksize < 1):
            raise ValueError("Chunksize must be 1+, not {0!r}".format(chunksize))
        return self._imap(JobMethod.IMAP_UNORDERED, func, iterable, chunksize, task_timeout, progress)

    def _imap(self, method, func, iterable, chunksize, task_timeout, progress):
        cls = IMapIterator if method == JobMethod.IMAP else IMapUnorderedIterator
        timeout = self._timeout_for(task_timeout)
        chunksize = int(chunksize)
        sliceable = type(iterable) in _SLICEABLE
        length = len(iterable) if sliceable else None
        job = self._new_job(method, func, chunksize, timeout, progress, progress is not None)
        job.result = cls(self, job=job.id, length=length)
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
            job.feed = Feed(iterable)
            job.buffer = collections.deque()
        return self._submit(job, sliceable)

    # -- lifecycle --------------------------------------------------------------------------------------
    def close(self):
        util.debug('closing pool')
        if self._state == RUN:
            mgr = self._mgr
            with mgr.lock:
                self._state = CLOSE
                if mgr.state == RUN:
                    mgr.state = CLOSE
            if recorder.ENABLED:
                recorder.emit(Kind.POOL_CLOSED, self._uid, 0, 0, 0)
            mgr.wake()

    def terminate(self):
        util.debug('terminating pool')
        if self._state != TERMINATE and recorder.ENABLED and self._mgr is not None:
            recorder.emit(Kind.POOL_CLOSED, self._uid, 0, 0, 1)
        self._state = TERMINATE
        if self._mgr is not None:
            self._terminate()

    def join(self):
        util.debug('joining pool')
        if self._state == RUN:
            raise ValueError("Pool is still running")
        elif self._state not in (CLOSE, TERMINATE):
            raise ValueError("In unknown state")
        mgr = self._mgr
        me = threading.current_thread()
        if mgr.thread is not None and mgr.thread is not me:
            mgr.thread.join()
        cb_thread = mgr.book.cb_thread
        if cb_thread is not None and cb_thread is not me:
            cb_thread.join()
        feeder = mgr.feeder.thread
        if feeder is not None and feeder is not me:
            feeder.join(HELPER_JOIN_TIMEOUT)
        for p in list(self._pool):
            p.join()
