"""core.pool.results: what the Pool's methods return -- ApplyResult (AsyncResult), MapResult, IMapIterator
and IMapUnorderedIterator, with the stdlib's semantics (get/wait/ready/successful, next(timeout), the
callbacks), plus ``.progress``.

The caller's threads wait on them; the pool's threads fill them through ``_put``, ``_set_length`` and
``_finish``: the manager thread directly, or the callback thread when the job has a callback, an
error_callback or a progress function (user code never runs in the manager thread).  A Ctrl+C while a
caller waits terminates the pool, then goes on.

This module must not import Qt, start threads or processes, or know how results arrive (no pipes here).
"""
import collections
import sys
import threading
import time
import traceback
import types
from multiprocessing.context import TimeoutError

from ..trace import recorder
from ..trace.events import Kind


def report_callback_error(fn):
    """Report the exception being handled (a user callback's, or the pool's own) on stderr, and go on."""
    try:
        sys.stderr.write("Exception in core.pool callback %r:\n" % (fn,))
        traceback.print_exc()
    except Exception:
        pass


class _Failure:
    """A failed item in an iterator's queue."""
    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def _interrupted(result):
    """Ctrl+C while the caller waits: terminate the pool cleanly, then let the interrupt go on."""
    pool = result._pool
    if pool is not None:
        try:
            pool.terminate()
        except Exception:
            pass


class ApplyResult:
    """What ``apply_async`` returns (``AsyncResult``): ``get``, ``wait``, ``ready``, ``successful``."""

    def __init__(self, pool, callback=None, error_callback=None, *, job=None, total=1):
        self._pool = pool
        self._event = threading.Event()
        self._job = job
        self._cache = pool._cache
        self._callback = callback
        self._error_callback = error_callback
        self._success = True
        self._value = None
        self._done = 0
        self._total = total
        self._uid = pool._uid
        self._used = False

    def ready(self):
        return self._event.is_set()

    def successful(self):
        if not self.ready():
            raise ValueError("{0!r} not ready".format(self))
        return self._success

    def wait(self, timeout=None):
        try:
            self._event.wait(timeout)
        except KeyboardInterrupt:
            _interrupted(self)
            raise

    def get(self, timeout=None):
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError
        if not self._used:
            self._used = True
            if recorder.ENABLED:
                recorder.emit(Kind.POOL_RESULT_USED, self._uid, self._job, -1)
        if self._success:
            return self._value
        raise self._value

    @property
    def progress(self):
        """(tasks done, total tasks)."""
        return (self._done, self._total)

    # -- called by the pool's threads -------------------------------------------------------------------
    def _put(self, first, values, errs, done):
        if errs:
            if self._success:
                self._success = False
                self._value = errs[min(errs)]
        elif self._success:
            self._value = values[0]
        self._done = done

    def _finish(self):
        if self._success:
            cb, arg = self._callback, self._value
        else:
            cb, arg = self._error_callback, self._value
        if cb is not None:
            try:
                cb(arg)
            except Exception:
                report_callback_error(cb)
        self._event.set()
        self._pool = None

    __class_getitem__ = classmethod(types.GenericAlias)


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    """What ``map_async``/``starmap_async`` return: the list of results, in order, or the first error
    (ready only when every task has ended, like the stdlib's)."""

    def __init__(self, pool, chunksize, length, callback=None, error_callback=None, *, job=None):
        ApplyResult.__init__(self, pool, callback, error_callback, job=job, total=length)
        self._value = [None] * length
        self._chunksize = chunksize
        if chunksize <= 0:               # empty: ready at once, no callback (the stdlib's behaviour)
            self._event.set()
            self._pool = None

    def _put(self, first, values, errs, done):
        if errs:
            if self._success:
                self._success = False
                self._value = errs[min(errs)]
        elif self._success:
            self._value[first:first + len(values)] = values
        self._done = done


class IMapIterator:
    """What ``imap`` returns: results in submission order, each as soon as it and those before it are
    ready; a failed task raises when iteration reaches it."""

    _ordered = True

    def __init__(self, pool, *, job=None, length=None):
        self._pool = pool
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._job = job
        self._cache = pool._cache
        self._items = collections.deque()
        self._index = 0                 # items delivered to _items
        self._length = length
        self._unsorted = {}
        self._uid = pool._uid
        self._traced = recorder.ENABLED
        self._order = collections.deque() if self._traced and not self._ordered else None
        self._consumed = 0
        self._done = 0

    def __iter__(self):
        return self

    def next(self, timeout=None):
        try:
            item = self._items.popleft()
        except IndexError:
            item = self._wait_item(timeout)
        if self._traced:
            if self._order is not None:
                try:
                    idx = self._order.popleft()
                except IndexError:
                    idx = -1
            else:
                idx = self._consumed
            if recorder.ENABLED:
                recorder.emit(Kind.POOL_RESULT_USED, self._uid, self._job, idx)
        self._consumed += 1
        if type(item) is _Failure:
            raise item.exc
        return item

    __next__ = next

    def _wait_item(self, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with self._lock:
                while True:
                    try:
                        return self._items.popleft()
                    except IndexError:
                        pass
                    if self._index == self._length:
                        self._pool = None
                        raise StopIteration
                    if deadline is None:
                        self._cond.wait()
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise TimeoutError
                        self._cond.wait(left)
        except KeyboardInterrupt:
            _interrupted(self)
            raise

    @property
    def progress(self):
        """(tasks done, total tasks or None while the input is not exhausted)."""
        return (self._done, self._length)

    # -- called by the pool's threads -------------------------------------------------------------------
    def _put(self, first, values, errs, done):
        if errs:
            values = list(values)
            for pos, exc in errs.items():
                values[pos] = _Failure(exc)
        with self._lock:
            if first == self._index:
                self._items.extend(values)
                self._index += len(values)
                unsorted = self._unsorted
                while self._index in unsorted:
                    more = unsorted.pop(self._index)
                    self._items.extend(more)
                    self._index += len(more)
                self._cond.notify(len(self._items))
            else:
                self._unsorted[first] = values
            self._done = done

    def _set_length(self, length):
        with self._lock:
            self._length = length
            if self._index == length:
                self._cond.notify_all()

    def _finish(self):
        self._pool = None


class IMapUnorderedIterator(IMapIterator):
    """What ``imap_unordered`` returns: results in completion order."""

    _ordered = False

    def _put(self, first, values, errs, done):
        if errs:
            values = list(values)
            for pos, exc in errs.items():
                values[pos] = _Failure(exc)
        with self._lock:
            if self._order is not None:
                self._order.extend(range(first, first + len(values)))
            self._items.extend(values)
            self._index += len(values)
            self._done = done
            self._cond.notify(len(values))

