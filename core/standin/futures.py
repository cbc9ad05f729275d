"""concurrent.futures' ProcessPoolExecutor, traced: its workers, queues and work items in the trace.

``install(module)`` runs right after a traced program first imports ``concurrent.futures.process`` (which
imports multiprocessing first, so the stand-in is already in place: the executor's context, result queue and
wake-up pipe are core's).  It makes ``ProcessPoolExecutor`` (also as ``concurrent.futures.ProcessPoolExecutor``)
the subclass below, and the module's ``_SafeQueue`` (the call queue, a ``multiprocessing.queues.Queue``, which
the stand-in cannot replace) one that is also a core Queue.  Neither changes behaviour; when tracing is on
they record:

* the executor as a pool (registered as a "Pool" named ``ProcessPoolExecutor#1``, POOL_CREATED), its worker
  processes with the role ``worker``, its queues and wake-up pipe named after it;
* the ``submit()`` calls as one job (JobMethod.APPLY) with a task each, numbered in the order they came, and
  each ``map()`` as one job (MAP) with a task per element: queued when submitted (POOL_CHUNK_QUEUED), run in
  a worker (POOL_TASK_T0 and POOL_TASK, ok or error: the work item's callable is wrapped in ``TracedCall``,
  which pickles with it), consumed when the caller takes its result (POOL_RESULT_USED: ``Future.result()``,
  or the next element of ``map``'s iterator); a future cancelled before it ran, or failed by a broken pool,
  is recorded so (POOL_TASK_LOST).

The stdlib's executor itself is untouched: its manager thread, its queues' protocol, its errors
(``BrokenProcessPool``) and its exceptions' remote tracebacks are the stdlib's (the traceback shows one frame
more, ``TracedCall.__call__``).

No Qt here, nothing of mpgui.
"""
import functools
import itertools
import threading
from concurrent.futures import _base

from ..trace import recorder
from ..trace.events import JobMethod, Kind, Outcome

#: The stdlib's ``_process_chunk``, the callable of every work item ``map`` submits (once ``install`` ran).
_process_chunk = None
#: What ``install`` defines in this module: classes built on the stdlib module's own.
_BUILT = ("ProcessPoolExecutor", "CallQueue")


def install(module):
    """Make ``module`` (concurrent.futures.process) give out the traced executor and call queue (once)."""
    global _process_chunk
    if _process_chunk is not None or not all(hasattr(module, n) for n in ("_process_chunk", "_SafeQueue")):
        return
    _process_chunk = module._process_chunk
    module._SafeQueue = _call_queue_class(module)
    module.ProcessPoolExecutor = _executor_class(module)


def __getattr__(name):
    """A worker that unpickles a call queue before it has imported concurrent.futures.process (the import
    builds the class) finds it all the same."""
    if name in _BUILT:
        import concurrent.futures.process as std
        install(std)
        if name in globals():
            return globals()[name]
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def _call_queue_class(std):
    """The executor's call queue: the stdlib's ``_SafeQueue`` (its feeder-error handling) on core's Queue."""
    from ..queues import Queue

    class CallQueue(std._SafeQueue, Queue):
        __doc__ = std._SafeQueue.__doc__

    CallQueue.__module__, CallQueue.__qualname__ = __name__, "CallQueue"      # pickled by reference
    globals()["CallQueue"] = CallQueue
    return CallQueue


def _executor_class(std):
    """The traced subclass of ``std.ProcessPoolExecutor``.  Built when the stdlib module is hooked, not when
    this module is imported: a worker may import this module first (to unpickle a TracedCall), and importing
    the stdlib module from here would hook it while this module is half made."""

    base = std.ProcessPoolExecutor

    class ProcessPoolExecutor(base):
        __doc__ = base.__doc__

        @functools.wraps(base.__init__)         # the stdlib's signature and documentation
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._trace_uid = None
            self._trace_map = threading.local()       # the map() job whose chunks this thread submits
            self._trace_jobs = itertools.count(1)
            self._trace_submits = None                 # (job, count of its tasks) once submit() was called
            self._trace_lock = threading.Lock()
            self._mp_context = WorkerContext(self._mp_context)
            if recorder.ENABLED:
                self._trace_uid = recorder.new_uid()
                name = recorder.default_name("ProcessPoolExecutor")
                recorder.register_object(self._trace_uid, "Pool", name, processes=self._max_workers)
                recorder.emit(Kind.POOL_CREATED, self._trace_uid, self._max_workers,
                              getattr(self, "_max_tasks_per_child", None) or 0)
                _rename(self._call_queue, "Queue", name + " call queue")
                _rename(self._result_queue, "SimpleQueue", name + " result queue")
                wakeup = self._executor_manager_thread_wakeup
                _rename_pipe(getattr(wakeup, "_reader", None), getattr(wakeup, "_writer", None), name + " wake-up")

        @functools.wraps(base.submit)
        def submit(self, fn, /, *args, **kwargs):
            uid = self._trace_uid
            if uid is None or not recorder.ENABLED:
                return super().submit(fn, *args, **kwargs)
            t = recorder.now()
            job = getattr(self._trace_map, "job", None)
            if job is None:                     # a submit of its own: the next task of the submits' job
                number, index = self._submit_job()
                size = 1
            else:                               # one of map()'s chunks: the next `size` tasks of its job
                number, index = job
                size = len(args[0]) if len(args) == 1 and not kwargs else 1
                self._trace_map.job = (number, index + size)
            future = super().submit(TracedCall(fn, uid, number, index), *args, **kwargs)
            if job is None:
                future.__class__ = _ConsumedFuture
                future._trace_task = (uid, number, index)
            recorder.emit_at(t, Kind.POOL_CHUNK_QUEUED, uid, number, index, size)
            future.add_done_callback(functools.partial(_settled, uid, number, index, size))
            return future

        @functools.wraps(base.map)
        def map(self, fn, *iterables, timeout=None, chunksize=1):
            uid = self._trace_uid
            if uid is None or not recorder.ENABLED:
                return super().map(fn, *iterables, timeout=timeout, chunksize=chunksize)
            t = recorder.now()
            number = next(self._trace_jobs)
            self._trace_map.job = (number, 0)
            try:
                # The stdlib's map submits every chunk (through submit above) before it returns.
                results = super().map(fn, *iterables, timeout=timeout, chunksize=chunksize)
                tasks = self._trace_map.job[1]
            finally:
                self._trace_map.job = None
            recorder.emit_at(t, Kind.POOL_JOB, uid, number, tasks, JobMethod.MAP)
            return _consumed(results, uid, number)

        def _submit_job(self):
            """(job, task index) of the next submit(): the job is made at the first (its size unknown)."""
            with self._trace_lock:
                if self._trace_submits is None:
                    self._trace_submits = (next(self._trace_jobs), itertools.count())
                    recorder.emit(Kind.POOL_JOB, self._trace_uid, self._trace_submits[0], -1, JobMethod.APPLY)
                return self._trace_submits[0], next(self._trace_submits[1])

    ProcessPoolExecutor.__module__, ProcessPoolExecutor.__qualname__ = __name__, "ProcessPoolExecutor"
    globals()["ProcessPoolExecutor"] = ProcessPoolExecutor
    return ProcessPoolExecutor


def _rename(obj, kind, name, **extra):
    """Give a traced object the executor made (registered under a default name) a name that says what it is:
    registered again, the later registration wins."""
    uid = getattr(obj, "_trace_uid", 0)
    if uid:
        obj._trace_name = name
        recorder.register_object(uid, kind, name, **extra)


def _rename_pipe(reader, writer, name):
    """The executor's wake-up pipe (reader, writer), named as core names a pipe's ends."""
    ends = (reader, writer)
    if all(getattr(end, "_trace_uid", 0) for end in ends):
        for i, (end, peer) in enumerate(zip(ends, reversed(ends))):
            _rename(end, "Connection", "%s[%d]" % (name, i), pipe=name, peer=peer._trace_uid, duplex=False)


class WorkerContext:
    """The executor's multiprocessing context, whose processes are the executor's workers (role ``worker``).
    Everything else is the context's own."""

    def __init__(self, ctx):
        self._ctx = ctx

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def Process(self, *args, **kwargs):
        p = self._ctx.Process(*args, **kwargs)
        p._trace_role = "worker"
        return p


class TracedCall:
    """A work item's callable with the task it is: the worker records the task's start and end around the
    call.  A chunk of ``map`` (``_process_chunk(fn, chunk)``) is one task per element, run as the stdlib runs
    them (``[fn(*args) for args in chunk]``); elements after one that raised never run, and are recorded
    cancelled."""

    __slots__ = ("fn", "pool", "job", "index")

    def __init__(self, fn, pool, job, index):
        self.fn = fn
        self.pool = pool
        self.job = job
        self.index = index

    def __call__(self, *args, **kwargs):
        fn = self.fn
        if not recorder.ENABLED:
            return fn(*args, **kwargs)
        if not _is_chunk(fn, args, kwargs):
            return self._run(fn, args, kwargs, self.index)
        each, chunk, first = fn.args[0], args[0], self.index
        results = []
        for k, element in enumerate(chunk):
            try:
                results.append(self._run(each, element, {}, first + k))
            except BaseException:
                # The chunk stops here, as the stdlib's does: its later elements never run.
                for skipped in range(first + k + 1, first + len(chunk)):
                    recorder.emit(Kind.POOL_TASK_LOST, self.pool, self.job, skipped, Outcome.CANCELLED)
                raise
        return results

    def _run(self, fn, args, kwargs, index):
        uid, job = self.pool, self.job
        recorder.emit(Kind.POOL_TASK_T0, uid, job, index)
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            recorder.emit(Kind.POOL_TASK, uid, job, index, Outcome.ERROR)
            raise
        recorder.emit(Kind.POOL_TASK, uid, job, index, Outcome.OK)
        return result

    def __getstate__(self):
        return (self.fn, self.pool, self.job, self.index)

    def __setstate__(self, state):
        self.fn, self.pool, self.job, self.index = state


def _is_chunk(fn, args, kwargs):
    """Whether the call is the stdlib's ``_process_chunk(fn, chunk)``, as ``map`` submits it."""
    return (type(fn) is functools.partial and fn.func is _process_chunk and _process_chunk is not None
            and len(fn.args) == 1 and not fn.keywords and len(args) == 1 and not kwargs)


class _ConsumedFuture(_base.Future):
    """A submit()'s future that records when the caller takes its result (once)."""

    def result(self, timeout=None):
        try:
            return super().result(timeout)
        finally:
            task = self.__dict__.get("_trace_task")
            if task is not None and self.done():        # not when it timed out: the result is still to take
                del self._trace_task
                if not self.cancelled() and recorder.ENABLED:
                    recorder.emit(Kind.POOL_RESULT_USED, *task)


def _consumed(results, uid, job):
    """``map``'s result iterator, recording each element as the caller takes it."""
    index = 0
    try:
        for result in results:
            recorder.emit(Kind.POOL_RESULT_USED, uid, job, index)
            index += 1
            yield result
    finally:
        results.close()


def _settled(uid, job, index, size, future):
    """A future's end: one cancelled before it ran, or failed because the pool broke (its worker died), never
    got a task's end from a worker."""
    if future.cancelled():
        outcome = Outcome.CANCELLED
    elif isinstance(future.exception(), _base.BrokenExecutor):
        outcome = Outcome.LOST
    else:
        return
    for i in range(index, index + size):
        recorder.emit(Kind.POOL_TASK_LOST, uid, job, i, outcome)
