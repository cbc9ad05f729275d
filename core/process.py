"""Traced Process classes: the stdlib's BaseProcess with its lifecycle recorded.

Parent side: created, started (with the start method and the child's pid), terminate/kill requested, joined,
and the exit status once the parent sees it.  Child side (``_bootstrap``): the first instruction of the child
and its exit code.  The classes are the stdlib's Fork/Spawn/ForkServer process classes with a mixin, so the
Popen machinery, pickling for spawn and every assertion message are the stdlib's own.

Roles (main, worker, manager, ...) are set by whoever starts a process for a purpose (the Pool, a Manager)
through ``_trace_role`` before ``start()``.
"""
import os
import sys

from multiprocessing import context as _std
from multiprocessing import process as _stdprocess

from .trace import recorder
from .trace.events import Kind, StartMethod

__all__ = ["BaseProcess", "Process", "current_process", "parent_process", "active_children"]

BaseProcess = _stdprocess.BaseProcess
current_process = _stdprocess.current_process
parent_process = _stdprocess.parent_process
active_children = _stdprocess.active_children

_helpers_noted = set()
_traced_popen_classes = {}


def _traced_popen(cls):
    """A subclass of the stdlib's Popen class ``cls`` that records the child's exit status (PROC_REAPED) the
    first time the parent learns it, whichever way it does: ``join()``, ``is_alive()``, ``exitcode``, or
    ``active_children()`` reaping it behind the Process's back (as ``multiprocessing.util._exit_function``
    does for a daemon child it just terminated).  A class, not a wrapped method, so the Popen object holds no
    reference cycle (its finalizer closes file descriptors)."""
    traced = _traced_popen_classes.get(cls)
    if traced is None:
        def poll(self, *args, **kwargs):
            code = cls.poll(self, *args, **kwargs)
            if code is not None:
                _reaped(self, code)
            return code

        def wait(self, *args, **kwargs):
            code = cls.wait(self, *args, **kwargs)
            if code is not None:
                _reaped(self, code)
            return code

        traced = type(cls.__name__, (cls,), {"poll": poll, "wait": wait, "__module__": cls.__module__,
                                            "__qualname__": cls.__qualname__})
        _traced_popen_classes[cls] = traced
    return traced


def _reaped(popen, code):
    if not popen.__dict__.get("_trace_reaped") and recorder.ENABLED:
        popen._trace_reaped = True
        recorder.emit(Kind.PROC_REAPED, popen.__dict__.get("_trace_uid", 0), popen.pid, code)


def note_helper_processes():
    """Record the pids of the stdlib's helper processes (forkserver, resource tracker) once they exist."""
    if not recorder.ENABLED:
        return
    from ._stdlib import forkserver_pid, resource_tracker_pid
    for role, pid in (("forkserver", forkserver_pid()), ("resource tracker", resource_tracker_pid())):
        if pid and (role, pid) not in _helpers_noted:
            _helpers_noted.add((role, pid))
            recorder.note_process(pid, role)


class TracedProcessMixin:
    """Lifecycle tracing for any BaseProcess subclass.  Keeps the stdlib's signatures and behaviour."""

    _trace_role = None

    def __init__(self, group=None, target=None, name=None, args=(), kwargs={}, *, daemon=None):
        super().__init__(group, target, name, args, kwargs, daemon=daemon)
        self._trace_uid = recorder.new_uid()
        if recorder.ENABLED:
            recorder.register_object(self._trace_uid, "Process", self._name)
            recorder.emit(Kind.PROC_CREATED, self._trace_uid)

    def _trace_method(self):
        if self._start_method is not None:
            return self._start_method
        from .context import _default_context
        return _default_context.get_start_method()

    def start(self):
        # Remember the start method the parent resolved, so the child forces the same default.
        self._core_start_method = self._trace_method()
        t0 = recorder.now()
        super().start()
        if recorder.ENABLED:
            uid = getattr(self, "_trace_uid", 0)
            recorder.write_note({"t": "spawned", "uid": uid, "pid": self.pid, "name": self._name,
                                 "role": self._trace_role or "process", "method": self._core_start_method,
                                 "daemon": bool(self.daemon)})
            t1 = recorder.now()         # one timestamp: the event's time and the end of start() agree
            recorder.emit_at(t1, Kind.PROC_START, uid, self.pid, StartMethod.of(self._core_start_method),
                             min((t1 - t0) // 1000, 2**31 - 1))
            note_helper_processes()
            popen = self._popen
            popen.__class__ = _traced_popen(type(popen))
            popen._trace_uid = uid

    def terminate(self):
        if recorder.ENABLED and self._popen is not None:
            recorder.emit(Kind.PROC_TERMINATE, getattr(self, "_trace_uid", 0), self._popen.pid)
        super().terminate()

    def kill(self):
        if recorder.ENABLED and self._popen is not None:
            recorder.emit(Kind.PROC_KILL, getattr(self, "_trace_uid", 0), self._popen.pid)
        super().kill()

    def join(self, timeout=None):
        if not recorder.ENABLED:
            return super().join(timeout)
        t0 = recorder.now()
        super().join(timeout)
        ended = self._popen.returncode is not None
        recorder.emit(Kind.PROC_JOIN, getattr(self, "_trace_uid", 0), recorder.now() - t0, int(ended),
                      int(timeout is not None and not ended))

    def __reduce_ex__(self, protocol):
        # Unpickled in a spawn/forkserver child: the rebuild runs before the state (the target's arguments)
        # is unpickled, so tracing is on in the child before any lock or queue in the arguments is rebuilt,
        # even when the child inherited a stale environment (a forkserver started before tracing was).
        # The state is whatever the object's own pickling gives (a subclass's __getstate__ included).
        rv = super().__reduce_ex__(protocol)
        if not isinstance(rv, tuple):
            return rv
        func, args = rv[0], rv[1]
        return (_rebuild_process, (recorder.trace_dir if recorder.ENABLED else None, func, args)) + tuple(rv[2:])

    def _bootstrap(self, parent_sentinel=None):
        # The child's first instruction, read before tracing sets itself up here (registering the process,
        # making its rings: milliseconds after a fork), so the start latency is the start method's alone.
        booted = recorder.now()
        from . import context
        method = getattr(self, "_core_start_method", None)
        if method in context._concrete_contexts:
            context._force_start_method(method)
        if recorder.ENABLED:
            recorder.set_role(self._trace_role or "process", name=self._name)
            recorder.emit_at(booted, Kind.PROC_BOOT, getattr(self, "_trace_uid", 0), self._parent_pid)
        code = super()._bootstrap(parent_sentinel)
        if recorder.ENABLED:
            recorder.emit(Kind.PROC_EXIT, getattr(self, "_trace_uid", 0), code)
            recorder.close_rings()
        return code


def _rebuild_process(trace_dir, func, args):
    """The child follows its parent: traced into the parent's trace directory, or not traced at all; then
    the object is rebuilt as its own pickling says."""
    if trace_dir and recorder.trace_dir != trace_dir and os.path.isdir(trace_dir):
        recorder.enable(trace_dir)
    elif not trace_dir and recorder.ENABLED:
        recorder.disable()
    return func(*args)


class Process(TracedProcessMixin, _stdprocess.BaseProcess):
    """core's default Process: the start method is core's default context's."""

    _start_method = None

    @staticmethod
    def _Popen(process_obj):
        from .context import _default_context
        return _default_context.get_context().Process._Popen(process_obj)

    @staticmethod
    def _after_fork():
        from .context import _default_context
        return _default_context.get_context().Process._after_fork()


def preload_core():
    """Have the stdlib's forkserver import core when it starts, as it imports what ``set_forkserver_preload``
    names: every child it forks then has core already, instead of importing it (a tenth of a forkserver
    child's start) in each.  The program's own preload list is kept; a forkserver already running is left
    as it is."""
    from . import _stdlib
    _stdlib.require("forkserver")
    from multiprocessing import forkserver
    server = forkserver._forkserver
    if server._forkserver_pid is None and "core" not in server._preload_modules:
        server._preload_modules = list(server._preload_modules) + ["core"]


if sys.platform != "win32":

    class ForkProcess(TracedProcessMixin, _std.ForkProcess):
        _start_method = "fork"

    class SpawnProcess(TracedProcessMixin, _std.SpawnProcess):
        _start_method = "spawn"

    class ForkServerProcess(TracedProcessMixin, _std.ForkServerProcess):
        _start_method = "forkserver"

        @staticmethod
        def _Popen(process_obj):
            preload_core()
            return _std.ForkServerProcess._Popen(process_obj)


else:

    class SpawnProcess(TracedProcessMixin, _std.SpawnProcess):
        _start_method = "spawn"
