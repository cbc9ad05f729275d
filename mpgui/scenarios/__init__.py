"""The scenario catalog: one module per workload, each making one lesson of the reference notes measurable.

Modules are listed explicitly (not discovered) so a frozen app (PyInstaller) bundles every one of them.
"""
import difflib
import importlib

from .base import MAX_PROCESSES, Param, ParamError, Reporter, Result, Scenario, processes_param  # noqa: F401

#: Every scenario module, in the order the catalog lists them (grouped by category, as the GUI shows them).
MODULES = (
    # Basics and processes
    "threads_vs_processes",
    "process_lifecycle",
    # Start methods
    "start_cost",
    "start_methods",
    "spawn_main_guard",
    "fork_with_thread",
    # Pool
    "pool_methods",
    "async_not_lazy",
    "chunksize",
    "maxtasksperchild",
    # Sharing data
    "initializer_vs_args",
    "shared_data",
    # Synchronisation
    "lock_contention",
    "rlock",
    "semaphore",
    "barrier",
    "condition_event",
    # Queues and pipes
    "queues",
    "pipe",
    "ipc_kinds",
    # Managers
    "manager",
    "remote_manager",
)

_catalog = None


def catalog():
    """name -> Scenario, in catalog order."""
    global _catalog
    if _catalog is None:
        out = {}
        for mod in MODULES:
            sc = importlib.import_module("%s.%s" % (__name__, mod)).SCENARIO
            out[sc.name] = sc
        _catalog = out
    return _catalog


def get(name):
    """The scenario called ``name``; ParamError (one sentence, with close names) if there is none."""
    cat = catalog()
    if name in cat:
        return cat[name]
    close = difflib.get_close_matches(name, list(cat), n=3, cutoff=0.5)
    hint = " Did you mean %s?" % " or ".join(repr(c) for c in close) if close else ""
    raise ParamError("Unknown scenario %r.%s List them with 'main.py scenarios'." % (name, hint))
