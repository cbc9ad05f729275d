"""The private parts of the standard library's multiprocessing that core relies on, in one place.

core subclasses the stdlib's classes and overrides or reads some of their private members (a Queue's
``_reset`` and ``_send_bytes``, a SemLock's ``_semlock``, a Process's ``_bootstrap``, the contexts' registry,
...).  They are not an API: another CPython version may rename or drop them.  ``check()`` runs when core is
imported and fails with one clear message naming what this interpreter lacks, instead of an AttributeError
deep inside a traced program.  Module-level internals core needs are taken from here.

Nothing here imports Qt or the rest of core.
"""
import importlib
import sys

#: The interpreters core is tested on (pyproject.toml's requires-python says the same).
TESTED = "CPython 3.11"

#: (module, dotted attribute) pairs core uses, by the core module that needs them: each checks its own group
#: when it is imported (``require``), so ``import core`` imports no more of the stdlib than it needs.
REQUIRED = {
    # context.py: the one factory, and one start-method state shared with the stdlib
    "context": (("multiprocessing.context", "_concrete_contexts"),
                ("multiprocessing.context", "_default_context._actual_context"),
                ("multiprocessing.context", "_default_context._default_context"),
                ("multiprocessing.context", "BaseContext"),
                ("multiprocessing.reduction", "ForkingPickler._extra_reducers")),
    # process.py: lifecycle tracing
    "process": (("multiprocessing.process", "BaseProcess._bootstrap"),
                ("multiprocessing.process", "BaseProcess._Popen"),
                ("multiprocessing.process", "BaseProcess._after_fork"),
                ("multiprocessing.process", "_ParentProcess")),
    # synchronize.py: traced SemLocks, Condition, Event, Barrier
    "synchronize": (("multiprocessing.synchronize", "SemLock._make_methods"),
                    ("multiprocessing.synchronize", "SemLock.__getstate__"),
                    ("multiprocessing.synchronize", "SEMAPHORE"),
                    ("multiprocessing.synchronize", "RECURSIVE_MUTEX"),
                    ("multiprocessing.synchronize", "SEM_VALUE_MAX"),
                    ("multiprocessing.synchronize", "Barrier._release"),
                    ("multiprocessing.heap", "BufferWrapper"),
                    ("_multiprocessing", "SemLock._get_value"),
                    ("_multiprocessing", "SemLock._count")),
    # queues.py: traced puts, gets and feeder writes
    "queues": (("multiprocessing.queues", "Queue._reset"),
               ("multiprocessing.queues", "Queue._after_fork")),
    # connection.py: traced pipe ends
    "connection": (("multiprocessing.connection", "Connection._send_bytes"),
                   ("multiprocessing.connection", "Connection._recv_bytes")),
    # managers.py: traced proxies and server
    "managers": (("multiprocessing.managers", "BaseProxy._callmethod"),
                 ("multiprocessing.managers", "BaseManager._run_server"),
                 ("multiprocessing.managers", "BaseManager._registry"),
                 ("multiprocessing.managers", "listener_client"),
                 ("multiprocessing.managers", "dispatch"),
                 ("multiprocessing.managers", "MakeProxyType")),
    # pool: the stdlib's exception wrappers and states, reused for identical messages
    "pool": (("multiprocessing.pool", "ExceptionWithTraceback"),
             ("multiprocessing.pool", "MaybeEncodingError"),
             ("multiprocessing.pool", "RemoteTraceback"),
             ("multiprocessing.pool", "rebuild_exc")),
    # process.py: core preloaded in the forkserver (preload_core)
    "forkserver": (("multiprocessing.forkserver", "_forkserver._preload_modules"),
                   ("multiprocessing.forkserver", "_forkserver._forkserver_pid")),
    # the helper processes a run notes (forkserver, resource tracker)
    "helpers": (("multiprocessing.forkserver", "_forkserver"),
                ("multiprocessing.resource_tracker", "_resource_tracker")),
}

#: Only where the platform has them (POSIX shared memory's unlink, used to clean up after a program).
OPTIONAL = (("_posixshmem", "shm_unlink"),)


class UnsupportedPython(ImportError):
    """This interpreter's multiprocessing lacks internals core needs."""


def _lookup(module, dotted):
    obj = importlib.import_module(module)
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def missing(required=None):
    """The ``module.attribute`` names of ``required`` (pairs; default: every group) this interpreter lacks."""
    if required is None:
        required = [pair for group in REQUIRED.values() for pair in group]
    out = []
    for module, dotted in required:
        try:
            _lookup(module, dotted)
        except (ImportError, AttributeError):
            out.append("%s.%s" % (module, dotted))
    return out


def check(required=None):
    """Raise UnsupportedPython naming what of ``required`` (pairs; default: every group) is missing."""
    lacking = missing(required)
    if lacking:
        raise UnsupportedPython(
            "core cannot run on Python %s: its multiprocessing lacks %s, which core builds on (core is tested on "
            "%s; use that interpreter, or plain multiprocessing)."
            % (sys.version.split()[0], ", ".join(lacking), TESTED))


_checked = set()


def require(*groups):
    """Check the internals the named groups of ``REQUIRED`` need (once each): a core module calls it for its
    own group as it is imported."""
    todo = [g for g in groups if g not in _checked]
    if todo:
        check([pair for g in todo for pair in REQUIRED[g]])
        _checked.update(todo)


require("context", "process")       # what core's package itself imports

from multiprocessing.context import _concrete_contexts as std_concrete_contexts  # noqa: E402,F401
from multiprocessing.context import _default_context as std_default_context  # noqa: E402,F401
from multiprocessing.reduction import ForkingPickler  # noqa: E402

#: The stdlib's reducers registered with ForkingPickler (class -> reduce function).
extra_reducers = ForkingPickler._extra_reducers


def forkserver_pid():
    """The stdlib forkserver's pid in this process, or None."""
    require("helpers")
    from multiprocessing import forkserver
    return getattr(forkserver._forkserver, "_forkserver_pid", None)


def resource_tracker_pid():
    """The stdlib resource tracker's pid in this process, or None."""
    from multiprocessing import resource_tracker
    return getattr(resource_tracker._resource_tracker, "_pid", None)


def shm_unlink(name):
    """Unlink a POSIX shared-memory segment by name; OSError or ImportError where it cannot be."""
    import _posixshmem
    _posixshmem.shm_unlink(name if name.startswith("/") else "/" + name)
