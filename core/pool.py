"""Placeholder until core's own Pool lands: the stdlib's Pool with core's context."""
from multiprocessing.pool import (AsyncResult, IMapIterator, IMapUnorderedIterator, MapResult,  # noqa
                                  ThreadPool, MaybeEncodingError, RemoteTraceback, ExceptionWithTraceback)
from multiprocessing import pool as _std


class Pool(_std.Pool):
    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None, context=None):
        from .context import resolve
        super().__init__(processes, initializer, initargs, maxtasksperchild, resolve(context))
