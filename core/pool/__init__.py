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
  map / imap / apply  ->    jobs: {id: Job}    open jobs (FIFO)  requeued segments
     (job + wake byte)         |                                       ^
                               | the scheduler cuts runs of chunks;    | untouched tasks of a
                               | pickled, one message per batch, one   | dead worker
                               v task pipe per worker                  |
                            +---------+  task pipe  (frames)    +----------+
                            | Worker  | ----------------------> |  worker  |  runs each chunk,
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

The package, by responsibility:

  pool.py       the Pool class: the stdlib's API, in the caller's threads
  results.py    ApplyResult, MapResult, IMapIterator, IMapUnorderedIterator
  manager.py    the manager thread: selector loop, workers' start and end, reading results, writing
                batches, deadlines and liveness; it applies the scheduler's decisions
  scheduler.py  the decisions, pure: who gets work, how much per message, what a dead worker's tasks
                come to (dispatch and death accounting are explained there)
  jobs.py       the unfinished jobs and every way their tasks end; the callback thread
  feeder.py     the feeder thread
  worker.py     the worker process: its loop and its task runners
  wire.py       frames on pipes, the reused pickler, task errors for the wire

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
* a worker whose initializer raises breaks the pool: every job fails with that exception (the stdlib
  respawns such workers forever and hangs);
* ``Pool._pool`` lists the live workers only.

Tracing (only when ``recorder.ENABLED``; untraced, no event is built).  Parent: POOL_CREATED, POOL_JOB,
POOL_CHUNK_QUEUED, POOL_CHUNK_SENT, POOL_TASK_LOST, POOL_RESULT_USED, POOL_WORKER_UP/INIT/EXIT,
POOL_JOB_DONE, POOL_CLOSED.  Worker: POOL_TASK_T0 and POOL_TASK per task (two emits, nothing more); the
worker process records its own lifecycle with role "worker".

The tunables are named constants of the module that reads them, all re-exported here; setting one here
sets it in its module too.  The scheduler's are read when a pool starts; the worker's in the worker (a
forked worker inherits the parent's values, a spawned one imports the defaults).

This package must not import Qt, and must not create core's traced primitives for its own plumbing: it
uses os-level pipes, the stdlib's RawArray and threading objects, so a trace shows the pool's tasks, not
its plumbing.  This file holds no logic: it only re-exports.
"""
import itertools
import sys
import types
from multiprocessing.context import ProcessError, TimeoutError  # noqa: F401 (re-exported)
from multiprocessing.pool import (CLOSE, INIT, RUN, TERMINATE, ExceptionWithTraceback,  # noqa: F401
                                  MaybeEncodingError, RemoteTraceback, ThreadPool, mapstar, rebuild_exc,
                                  starmapstar)

from .. import _stdlib
from ..errors import PoolTerminatedError, TaskTimeoutError, WorkerLostError  # noqa: F401 (re-exported)
from . import manager, pool, scheduler, wire, worker
from .manager import LIVENESS_POLL, MAX_STARTUP_DEATHS, TERMINATE_GRACE, TIMEOUT_POLL  # noqa: F401
from .pool import HELPER_JOIN_TIMEOUT, MAX_TASK_TIMEOUT, Pool  # noqa: F401
from .results import ApplyResult, AsyncResult, IMapIterator, IMapUnorderedIterator, MapResult  # noqa: F401
from .scheduler import (BATCH_SECONDS, FEED_AHEAD, MAX_BATCH_CHUNKS, MAX_REQUEUES,  # noqa: F401
                        PREFETCH_MAX_BYTES, PREFETCH_SECONDS)
from .wire import BIG_FRAME, PIPE_BUFFER, READ_SIZE  # noqa: F401
from .worker import GROUP_BELOW_NS, GROUP_PROBE, WORKER_IDLE_CHECK  # noqa: F401

_stdlib.require("pool")    # the stdlib internals this package builds on (core/_stdlib.py)

__all__ = ["Pool", "ThreadPool", "AsyncResult", "ApplyResult", "MapResult", "IMapIterator",
           "IMapUnorderedIterator", "RemoteTraceback", "MaybeEncodingError", "ExceptionWithTraceback",
           "TimeoutError", "WorkerLostError", "TaskTimeoutError", "PoolTerminatedError"]

job_counter = itertools.count()  # the stdlib module has it; core's job ids are per pool

# The public classes say they live here, where users import them from (reprs and pickles name core.pool.X)
for _cls in (Pool, ApplyResult, MapResult, IMapIterator, IMapUnorderedIterator):
    _cls.__module__ = __name__
del _cls

# Each tunable is read from the module that owns it.  Setting one here (a test, a benchmark, a program
# tuning its pool before creating it) sets it there too, as when core.pool was a single module.
_OWNERS = {name: module for module, names in (
    (scheduler, ("PREFETCH_SECONDS", "BATCH_SECONDS", "MAX_BATCH_CHUNKS", "PREFETCH_MAX_BYTES",
                 "MAX_REQUEUES", "FEED_AHEAD")),
    (worker, ("GROUP_BELOW_NS", "GROUP_PROBE", "WORKER_IDLE_CHECK")),
    (manager, ("TIMEOUT_POLL", "LIVENESS_POLL", "TERMINATE_GRACE", "MAX_STARTUP_DEATHS")),
    (wire, ("PIPE_BUFFER", "READ_SIZE", "BIG_FRAME")),
    (pool, ("HELPER_JOIN_TIMEOUT", "MAX_TASK_TIMEOUT"))) for name in names}


class _Package(types.ModuleType):
    """core.pool itself (the data model's way to customise a module's attribute setting)."""

    def __setattr__(self, name, value):
        owner = _OWNERS.get(name)
        if owner is not None:
            setattr(owner, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
