"""The one factory: contexts whose methods build core's traced objects, mirroring multiprocessing.context.

``core.get_context(method)`` returns a ``TracedContext``; every factory method (``Lock``, ``Queue``,
``Pool``...) imports its module lazily and passes ``ctx=``, exactly as the stdlib does, so the only
difference between the fork, spawn and forkserver contexts is their Process class.  Each traced context
wraps the stdlib's concrete context of the same name (``_stdlib``), which the traced classes use for their
untraced internals (a Queue's own locks, a Condition's semaphores).

The default context (``core.set_start_method``, ``core.get_start_method``, ``core.Lock()``...) keeps no state
of its own: it is a view of the stdlib's default context, so a program that mixes core with libraries that
use ``multiprocessing`` directly has one start method, as it would with the stdlib alone.

Exceptions and helpers (``TimeoutError``, ``cpu_count``, ``get_logger``, ``freeze_support``...) are the
stdlib's own, so code that catches ``multiprocessing.TimeoutError`` catches core's too.
"""
import os
import sys

from multiprocessing import context as _std
from multiprocessing import reduction as _reduction

from . import process
from ._stdlib import std_concrete_contexts, std_default_context

__all__ = ()

ProcessError = _std.ProcessError
BufferTooShort = _std.BufferTooShort
TimeoutError = _std.TimeoutError
AuthenticationError = _std.AuthenticationError


class TracedContext(_std.BaseContext):
    """Factory methods of the stdlib's BaseContext, building core's traced classes."""

    _name = None
    Process = process.Process

    @property
    def _stdlib(self):
        """The stdlib context this one stands for (used for untraced internals)."""
        return std_concrete_contexts[self.get_start_method()]

    def get_context(self, method=None):
        if method is None:
            return self
        try:
            ctx = _concrete_contexts[method]
        except KeyError:
            raise ValueError('cannot find context for %r' % method) from None
        ctx._check_available()
        return ctx

    # -- processes and managers ------------------------------------------------------------------------
    def Manager(self):
        '''Returns a manager associated with a running server process'''
        from .managers import SyncManager
        m = SyncManager(ctx=self.get_context())
        m.start()
        return m

    def Pool(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None, **kwds):
        '''Returns a process pool object (core.pool.Pool: the stdlib's API, traced, never hangs)'''
        from .pool import Pool
        return Pool(processes, initializer, initargs, maxtasksperchild, context=self.get_context(), **kwds)

    # -- connections and queues -------------------------------------------------------------------------
    def Pipe(self, duplex=True, *, name=None):
        '''Returns two connection object connected by a pipe'''
        from .connection import Pipe
        return Pipe(duplex, name=name)

    def Queue(self, maxsize=0, *, name=None):
        '''Returns a queue object'''
        from .queues import Queue
        return Queue(maxsize, ctx=self.get_context(), name=name)

    def JoinableQueue(self, maxsize=0, *, name=None):
        '''Returns a queue object'''
        from .queues import JoinableQueue
        return JoinableQueue(maxsize, ctx=self.get_context(), name=name)

    def SimpleQueue(self, *, name=None):
        '''Returns a queue object'''
        from .queues import SimpleQueue
        return SimpleQueue(ctx=self.get_context(), name=name)

    # -- synchronisation ----------------------------------------------------------------------------------
    def Lock(self, *, name=None):
        '''Returns a non-recursive lock object'''
        from .synchronize import Lock
        return Lock(ctx=self.get_context(), name=name)

    def RLock(self, *, name=None):
        '''Returns a recursive lock object'''
        from .synchronize import RLock
        return RLock(ctx=self.get_context(), name=name)

    def Condition(self, lock=None, *, name=None):
        '''Returns a condition object'''
        from .synchronize import Condition
        return Condition(lock, ctx=self.get_context(), name=name)

    def Semaphore(self, value=1, *, name=None):
        '''Returns a semaphore object'''
        from .synchronize import Semaphore
        return Semaphore(value, ctx=self.get_context(), name=name)

    def BoundedSemaphore(self, value=1, *, name=None):
        '''Returns a bounded semaphore object'''
        from .synchronize import BoundedSemaphore
        return BoundedSemaphore(value, ctx=self.get_context(), name=name)

    def Event(self, *, name=None):
        '''Returns an event object'''
        from .synchronize import Event
        return Event(ctx=self.get_context(), name=name)

    def Barrier(self, parties, action=None, timeout=None, *, name=None):
        '''Returns a barrier object'''
        from .synchronize import Barrier
        return Barrier(parties, action, timeout, ctx=self.get_context(), name=name)

    # -- shared memory ----------------------------------------------------------------------------------------
    def RawValue(self, typecode_or_type, *args):
        '''Returns a shared object'''
        from .sharedctypes import RawValue
        return RawValue(typecode_or_type, *args)

    def RawArray(self, typecode_or_type, size_or_initializer):
        '''Returns a shared array'''
        from .sharedctypes import RawArray
        return RawArray(typecode_or_type, size_or_initializer)

    def Value(self, typecode_or_type, *args, lock=True, name=None):
        '''Returns a synchronized shared object'''
        from .sharedctypes import Value
        return Value(typecode_or_type, *args, lock=lock, ctx=self.get_context(), name=name)

    def Array(self, typecode_or_type, size_or_initializer, *, lock=True, name=None):
        '''Returns a synchronized shared array'''
        from .sharedctypes import Array
        return Array(typecode_or_type, size_or_initializer, lock=lock, ctx=self.get_context(), name=name)

    def freeze_support(self):
        '''Check whether this is a fake forked process in a frozen executable; if so run it and exit.'''
        if getattr(sys, 'frozen', False):
            # The module-level function: PyInstaller's runtime hook replaces it for every platform.
            import multiprocessing
            multiprocessing.freeze_support()


class DefaultContext(TracedContext):
    """core's default context: its start method can be chosen once (or again with ``force``).

    It has no state of its own: it reads and writes the stdlib's default context, so core and the stdlib
    have one global default, as the stdlib alone has.  A program that calls ``core.set_start_method`` and
    a library that builds objects through ``multiprocessing`` directly (or the reverse) agree on the start
    method, and the objects of one can be passed to the processes of the other."""

    Process = process.Process

    def __init__(self, std_default):
        self._std_default = std_default         # multiprocessing.context._default_context

    @property
    def _default_context(self):
        return _traced(self._std_default._default_context)

    @property
    def _actual_context(self):
        actual = self._std_default._actual_context
        return None if actual is None else _traced(actual)

    @_actual_context.setter
    def _actual_context(self, ctx):
        self._std_default._actual_context = None if ctx is None else ctx._stdlib

    def get_context(self, method=None):
        if method is None:
            if self._actual_context is None:
                self._actual_context = self._default_context
            return self._actual_context
        return super().get_context(method)

    def set_start_method(self, method, force=False):
        if self._actual_context is not None and not force:
            raise RuntimeError('context has already been set')
        if method is None and force:
            self._actual_context = None
            return
        self._actual_context = self.get_context(method)

    def get_start_method(self, allow_none=False):
        if self._actual_context is None:
            if allow_none:
                return None
            self._actual_context = self._default_context
        return self._actual_context._name

    def get_all_start_methods(self):
        return self._std_default.get_all_start_methods()


#: A start method named here (``main.py trace --start-method``) is the default of a program that chooses
#: none, core's and the stdlib's alike, as if it were the platform's; the program's own choice still wins.
START_METHOD_ENV = "MPGUI_START_METHOD"

if os.environ.get(START_METHOD_ENV) in std_concrete_contexts and std_default_context._actual_context is None:
    std_default_context._default_context = std_concrete_contexts[os.environ[START_METHOD_ENV]]


if sys.platform != 'win32':

    class ForkContext(TracedContext):
        _name = 'fork'
        Process = process.ForkProcess

    class SpawnContext(TracedContext):
        _name = 'spawn'
        Process = process.SpawnProcess

    class ForkServerContext(TracedContext):
        _name = 'forkserver'
        Process = process.ForkServerProcess

        def _check_available(self):
            if not _reduction.HAVE_SEND_HANDLE:
                raise ValueError('forkserver start method not available')

    _concrete_contexts = {
        'fork': ForkContext(),
        'spawn': SpawnContext(),
        'forkserver': ForkServerContext(),
    }

else:

    class SpawnContext(TracedContext):
        _name = 'spawn'
        Process = process.SpawnProcess

    _concrete_contexts = {'spawn': SpawnContext()}


def _traced(std_ctx):
    """core's concrete context of the same start method as the stdlib context ``std_ctx``."""
    try:
        return _concrete_contexts[std_ctx._name]
    except KeyError:
        raise ValueError('cannot find context for %r' % (std_ctx._name,)) from None


_default_context = DefaultContext(std_default_context)


def _force_start_method(method):
    _default_context._actual_context = _concrete_contexts[method]


def resolve(ctx):
    """The traced context for ``ctx``: None -> core's default; a stdlib context -> core's same-named one."""
    if ctx is None:
        return _default_context.get_context()
    if isinstance(ctx, TracedContext):
        return ctx.get_context()
    return _concrete_contexts[ctx.get_start_method()]
