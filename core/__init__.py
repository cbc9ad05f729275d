"""core: a traced drop-in for Python's multiprocessing.

``import core as multiprocessing`` works: the package exposes the bound methods of its default context,
exactly as ``multiprocessing/__init__.py`` does, and submodules mirror the stdlib's names (``core.pool``,
``core.managers``, ``core.shared_memory``, ``core.connection``, ...).  When a trace directory is set (the
``trace`` and ``run`` commands set it), every process, lock, queue, pipe, pool task and manager call is
recorded; when it is not, the objects behave and cost as the stdlib's.

Beyond the stdlib: ``Pool`` fails tasks of a dead worker with ``WorkerLostError`` instead of hanging, takes
``task_timeout=`` (``TaskTimeoutError``) and reports progress; any object takes ``name=``; ``core.ipc`` has
traced file, socket, shared-memory and signal channels.

This package holds no logic and never imports Qt.
"""
import sys

from . import _stdlib  # noqa: F401  (first: fails clearly on an interpreter that lacks what core needs)
from . import context
from . import process, reduction  # noqa: F401  (attributes after a bare import, as in the stdlib)

__all__ = [x for x in dir(context._default_context) if not x.startswith('_')]
globals().update((name, getattr(context._default_context, name)) for name in __all__)

from .errors import PoolTerminatedError, TaskTimeoutError, WorkerLostError  # noqa: E402

__all__ += ["WorkerLostError", "TaskTimeoutError", "PoolTerminatedError"]

SUBDEBUG = 5
SUBWARNING = 25

if '__main__' in sys.modules:
    sys.modules['__mp_main__'] = sys.modules['__main__']
