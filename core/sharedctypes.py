"""Shared ctypes objects.  ``Value`` and ``Array`` are the stdlib's, guarded by a traced RLock named after
the object (``Value(name="counter")`` shows up as the lock ``counter``), so every ``.value`` access shows
as an acquire/release in the trace.  ``RawValue`` and ``RawArray`` are plain shared memory: nothing to
trace, so they are the stdlib's own.
"""
from multiprocessing import sharedctypes as _std
from multiprocessing.sharedctypes import (RawArray, RawValue, copy, synchronized,  # noqa: F401
                                          Synchronized, SynchronizedArray, SynchronizedBase,
                                          SynchronizedString)

from .trace import recorder

__all__ = ["RawValue", "RawArray", "Value", "Array", "copy", "synchronized"]


def _guard(kind, lock, ctx, name):
    if lock in (True, None):
        from .synchronize import RLock
        lock = RLock(ctx=ctx, name=name or recorder.default_name(kind))
    if not hasattr(lock, 'acquire'):
        raise AttributeError("%r has no method 'acquire'" % lock)
    return lock


def Value(typecode_or_type, *args, lock=True, ctx=None, name=None):
    '''Return a synchronization wrapper for a Value'''
    obj = RawValue(typecode_or_type, *args)
    if lock is False:
        return obj
    return synchronized(obj, _guard("Value", lock, ctx, name), ctx=ctx)


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None, name=None):
    '''Return a synchronization wrapper for a RawArray'''
    obj = RawArray(typecode_or_type, size_or_initializer)
    if lock is False:
        return obj
    return synchronized(obj, _guard("Array", lock, ctx, name), ctx=ctx)


del _std
