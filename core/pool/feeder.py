"""core.pool.feeder: the feeder thread -- reads the input of ``imap``/``imap_unordered`` lazily.

Only iterators are fed (lists, tuples and ranges are sliced by the manager directly).  The feeder iterates
the caller's generator in its own thread, so a slow or blocking generator never delays the manager, and
keeps at most ``Feed.target`` chunks read ahead (the scheduler sets it: ``FEED_AHEAD`` per worker plus what
prefetching can use); the manager nudges it when a cut leaves the buffer half empty.

An exception from the generator ends the input at its position (``Feed.error``): every result before it
is delivered first, and with chunksize > 1 the items of the chunk it interrupted are not run, as in the
stdlib.

This module must not import Qt; it never blocks the manager (the manager only appends, pops and notifies).
"""
import queue
import threading

from multiprocessing.pool import TERMINATE

from ..trace import recorder
from ..trace.events import Kind


class Feed:
    """A lazy job's input as the feeder reads it: the iterable, how many items it gave (``total``, set
    when it ends), the exception that ended it ``(position, exc)``, the read-ahead ``target`` in chunks,
    and whether the feeder is ``waiting`` for the buffer to drain."""

    __slots__ = ("iterable", "total", "error", "target", "waiting")

    def __init__(self, iterable):
        self.iterable = iterable
        self.total = 0
        self.error = None
        self.target = 0
        self.waiting = False


class Feeder:
    """The pool's feeder thread (started with the first lazy job) and the condition it waits on."""

    def __init__(self, mgr):
        self.mgr = mgr                      # the manager: its state, its wake-up, the pool's uid
        self.cond = threading.Condition(threading.Lock())
        self.queue = None
        self.thread = None

    def add(self, job):
        if self.thread is None:
            self.queue = queue.SimpleQueue()
            self.thread = threading.Thread(target=self.run, name="%s-feeder" % self.mgr.name, daemon=True)
            self.thread.start()
        self.queue.put(job)

    def nudge(self, jobs):
        """Wake the feeder if it waits on one of ``jobs`` whose buffer is down to half its target."""
        for job in jobs:
            feed = job.feed
            if feed.waiting and job.buffer is not None and len(job.buffer) < feed.target // 2 + 1:
                self.wake()
                return

    def wake(self):
        with self.cond:
            self.cond.notify_all()

    def stop(self):
        if self.queue is not None:
            self.queue.put(None)
        self.wake()

    def run(self):
        """The thread: feeds each lazy job in turn, a bounded number of chunks ahead."""
        mgr = self.mgr
        while True:
            job = self.queue.get()
            if job is None:
                return
            feed = job.feed
            i = 0
            cs = job.cs
            try:
                it = iter(feed.iterable)
                while True:
                    if mgr.state == TERMINATE or job.finished or job.exhausted:
                        break
                    if len(job.buffer) >= feed.target:
                        self._wait_for_room(job)
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
                    self._put(job, i, items)
                    i += len(items)
                    if len(items) < cs:
                        break
            except Exception as e:
                feed.error = (i, e)
            feed.total = i
            job.exhausted = True
            feed.iterable = None
            mgr.wake()
            # while it waits for the next job, this thread holds nothing of this one (its last chunk, its
            # iterator, its result object)
            job = feed = it = items = None

    def _wait_for_room(self, job):
        feed = job.feed
        mgr = self.mgr
        with self.cond:
            feed.waiting = True
            while (len(job.buffer) >= feed.target and mgr.state != TERMINATE
                   and not job.finished and not job.exhausted):
                self.cond.wait(0.1)
            feed.waiting = False

    def _put(self, job, i, items):
        if recorder.ENABLED:
            recorder.emit(Kind.POOL_CHUNK_QUEUED, self.mgr.uid, job.id, i, len(items))
        job.buffer.append((i, items))
        self.mgr.wake()
